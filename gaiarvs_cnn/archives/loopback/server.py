"""The loopback archive's HTTP server: a threaded server on 127.0.0.1 that routes each
request to a service of `~gaiarvs_cnn.archives.loopback.services.Archive` (TAP sync and
async/UWS, VOSI capabilities, DataLink, XMatch) and applies the injected fault
(`gaiarvs_cnn.archives.loopback.faults`).

Request parameters come from the query string, a form body or ``multipart/form-data``
(uploaded files, e.g. the VOTable of a TAP upload, read with `astropy.io.votable`).
"""
from __future__ import annotations

import contextlib
import io
import re
import threading
import time
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from .faults import STREAM_FAULTS, empty_zip, zip_bomb
from .services import Archive, uws_job

__all__ = ["serve"]


class _Handler(BaseHTTPRequestHandler):
    archive: Archive
    #: the fault mode of the request being answered (None: a normal answer)
    mode: str | None = None

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _params(self) -> dict:
        """Request parameters; uploaded files (multipart) go to ``self.files``."""
        query = {k.upper(): v[-1] for k, v in parse_qs(urlparse(self.path).query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.files = {}
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            from email.parser import BytesParser
            from email.policy import HTTP

            msg = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if part.get_filename() is not None:
                    self.files[name] = payload
                else:
                    query[name.upper()] = payload.decode()
        else:
            query.update({k.upper(): v[-1] for k, v in parse_qs(body.decode()).items()})
        return query

    def _uploads(self, params: dict) -> tuple[dict, dict]:
        """The TAP ``UPLOAD`` tables (``name,param:part``), read as VOTables."""
        from astropy.io.votable import parse

        tables, sizes = {}, {}
        for item in filter(None, params.get("UPLOAD", "").split(";")):
            name, ref = item.split(",", 1)
            if not ref.startswith("param:"):
                raise KeyError(f"only inline uploads are served, not {ref!r}")
            raw = self.files[ref[len("param:"):]]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tables[name.lower()] = parse(io.BytesIO(raw)).get_first_table().to_table()
            sizes[name.lower()] = len(raw)
        return tables, sizes

    def _send(self, code: int, body: bytes = b"", ctype: str = "text/xml",
              headers: dict | None = None) -> None:
        with self.archive.lock:
            self.archive.served[urlparse(self.path).path] += len(body)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")

    def _route(self, method: str) -> None:
        arc = self.archive
        path = urlparse(self.path).path
        params = self._params()
        arc.log.append((path, params))
        mode = self.mode = arc.take_failure(path, params)
        if mode == "500":
            return self._send(500, b"Internal error (injected)", "text/plain")
        if mode == "429":
            return self._send(429, b"Too many requests (injected)", "text/plain",
                              {"Retry-After": arc.retry_after})
        if mode == "slow":
            time.sleep(arc.slow_s)
        try:
            code, body, ctype, headers = self._dispatch(method, path, params)
        except KeyError as exc:
            return self._send(400, f"Bad request: {exc}".encode(), "text/plain")
        if mode == "truncate":
            body = body[: len(body) // 2]
        if mode == "malformed":
            body = body[: len(body) // 3] + b"<<<"
        if mode == "nostatus":  # a valid VOTable without the standard QUERY_STATUS INFO
            body = re.sub(rb'<INFO name="QUERY_STATUS"[^>]*/>', b"", body)
        if mode == "empty":
            body = empty_zip()
        if mode == "zipbomb":
            body = zip_bomb(arc.bomb_bytes)
        try:
            if mode in STREAM_FAULTS:
                STREAM_FAULTS[mode](self, body)
            else:
                self._send(code, body, ctype, headers)
        except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout test)
            pass
        if arc.after_response is not None:
            arc.after_response(path, params)

    def _dispatch(self, method: str, path: str, params: dict):
        arc = self.archive
        if path.endswith("/data"):
            code, body = arc.datalink_zip(params)
            return code, body, "application/zip", {}
        service = path.strip("/").split("/")[0]
        if service == "xmatch":
            code, body, ctype = arc.xmatch(path, params, self.files)
            return code, body, ctype, {}
        if path.endswith("/capabilities"):
            code, body = arc.capabilities(service, arc.url + path.rsplit("/", 1)[0])
            return code, body, "text/xml", {}
        if path.endswith("/sync"):
            uploads, sizes = self._uploads(params)
            arc.check_uploads(service, uploads, sizes)
            table, overflow = arc.run_adql(params["QUERY"], uploads)
            if self.mode == "fewcolumns":
                table = table[table.colnames[:1]]
            if self.mode == "extrarows":
                table = arc.with_extra_rows(table)
            return 200, arc.votable(table, overflow), "text/xml", {}
        m = re.search(r"^(.*/async)(?:/(\w+))?(/phase|/results/result)?$", path)
        if not m:
            return 404, b"Not found", "text/plain", {}
        base, job_id, tail = arc.url + m.group(1), m.group(2), m.group(3)
        if job_id is None:  # job creation
            job_id = f"job{len(arc.jobs) + 1}"
            uploads, sizes = self._uploads(params)
            arc.check_uploads(service, uploads, sizes)
            arc.jobs[job_id] = {"phase": "PENDING", "query": params["QUERY"],
                                "uploads": uploads}
            return 303, b"", "text/plain", {"Location": f"{base}/{job_id}"}
        job = arc.jobs[job_id]
        if tail == "/phase" and method == "POST":
            if params.get("PHASE") == "RUN":
                table, _ = arc.run_adql(job["query"], job["uploads"])
                job["result"], job["phase"] = arc.votable(table), "COMPLETED"
            return 303, b"", "text/plain", {"Location": f"{base}/{job_id}"}
        if tail == "/phase":
            return 200, job["phase"].encode(), "text/plain", {}
        if tail == "/results/result":
            return 200, job["result"], "text/xml", {}
        if method == "DELETE" or params.get("ACTION") == "DELETE":
            arc.jobs.pop(job_id)
            return 303, b"", "text/plain", {"Location": base}
        return 200, uws_job(job_id, job, base), "text/xml", {}


@contextlib.contextmanager
def serve(arc: Archive) -> Iterator[Archive]:
    """Serve ``arc`` on a free port of 127.0.0.1 (threaded) while the context is open;
    ``arc.url`` is set to the server root."""
    handler = type("Handler", (_Handler,), {"archive": arc})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    arc.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield arc
    finally:
        server.shutdown()
        server.server_close()

