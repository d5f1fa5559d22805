"""Answers of a broken or hostile archive, injected per request with `Archive.fail`.

The modes: ``"500"`` (HTTP 500), ``"slow"`` (sleep ``archive.slow_s`` before answering),
``"truncate"`` (half of the payload), ``"malformed"`` (a broken VOTable), ``"429"`` (HTTP
429 with ``Retry-After: archive.retry_after``) and ``"nostatus"`` (a VOTable without the
``QUERY_STATUS`` INFO); ``"empty"`` (a valid zip without any file, HTTP 200),
``"fewcolumns"`` (a valid TAP answer, QUERY_STATUS=OK, holding only its first column),
``"extrarows"`` (a TAP answer plus the gaia_source rows of ids that were not asked for),
``"zipbomb"`` (a DataLink zip whose one member inflates to ``archive.bomb_bytes``), and the
modes that write the answer themselves (`STREAM_FAULTS`): ``"endless"`` (an answer that
never ends: its start, then spaces without a Content-Length, up to
``archive.endless_bytes``), ``"gzipbomb"`` (``Content-Encoding: gzip`` inflating to
``archive.bomb_bytes``, about a thousandth of that on the wire), ``"trickle"`` (the answer
at one byte every ``archive.trickle_s``) and ``"reset"`` (half of the answer in chunked
encoding, then a TCP reset). The request handler (`gaiarvs_cnn.archives.loopback.server`)
applies them.
"""
from __future__ import annotations

import functools
import io
import time
import zipfile
import zlib

__all__ = ["empty_zip", "zip_bomb", "STREAM_FAULTS"]


def empty_zip() -> bytes:
    """A valid zip archive without any file."""
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    return buf.getvalue()


@functools.lru_cache(maxsize=2)
def zip_bomb(size: int) -> bytes:
    """A valid DataLink-named zip (CRC right) whose one member inflates to ``size`` zero
    bytes (whole MiB, < 4 GiB), about ``size / 1000`` zipped.

    Written by hand (PKWARE APPNOTE 4.3: local header, data, central directory, end
    record) from one deflated MiB of zeros repeated: after a full flush the deflate
    state restarts, so each MiB deflates to the same bytes and nothing is compressed
    ``size`` times.
    """
    import struct

    block, n = bytes(2 ** 20), max(1, size // 2 ** 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    data = one * n + deflate.flush()
    crc = 0
    for _ in range(n):
        crc = zlib.crc32(block, crc)
    name = b"RVS-Gaia DR3 1.csv"
    fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, crc, len(data), n * len(block))
    local = b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name
    central = (b"PK\x01\x02" + struct.pack("<H", 20) + fields
               + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, 0) + name)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(central),
                                          len(local) + len(data), 0)
    return local + data + central + end


@functools.lru_cache(maxsize=2)
def _gzip_bomb(size: int) -> bytes:
    """A gzip stream (concatenated members, as RFC 1952 allows) of ``size`` zero bytes."""
    import gzip

    member = gzip.compress(bytes(2 ** 20), compresslevel=9, mtime=0)
    return member * max(1, size // 2 ** 20)


def _endless(handler, body: bytes) -> None:
    """The first half of the answer (of a VOTable: up to its ``<TABLEDATA>``), then spaces
    without end (no Content-Length) until the client leaves or ``endless_bytes`` are
    sent."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    cut = body.find(b"<TABLEDATA>")  # a VOTable goes on with rows of blanks
    handler.wfile.write(body[: cut + len(b"<TABLEDATA>") if cut >= 0 else len(body) // 2])
    block = b" " * 2 ** 16
    for _ in range(handler.archive.endless_bytes // len(block)):
        handler.wfile.write(block)


def _gzipped_bomb(handler, body: bytes) -> None:
    """A gzip-encoded answer that inflates to ``bomb_bytes``."""
    wire = _gzip_bomb(handler.archive.bomb_bytes)
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Encoding", "gzip")
    handler.send_header("Content-Length", str(len(wire)))
    handler.end_headers()
    handler.wfile.write(wire)


def _trickle(handler, body: bytes) -> None:
    """The answer, one byte every ``trickle_s`` seconds."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    for i in range(len(body)):
        handler.wfile.write(body[i:i + 1])
        handler.wfile.flush()
        time.sleep(handler.archive.trickle_s)


def _reset(handler, body: bytes) -> None:
    """Half of the answer in chunked transfer encoding, then a TCP reset (RST)."""
    import socket
    import struct

    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    half = body[: len(body) // 2] or b"x"
    handler.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
    handler.wfile.flush()
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()


#: Fault modes that write the answer themselves (see `Archive.fail`).
STREAM_FAULTS = {"endless": _endless, "gzipbomb": _gzipped_bomb, "trickle": _trickle,
                  "reset": _reset}

