"""Every request is bounded in memory and in time (issue 27 items 9-12), against the
hostile modes of the loopback archive.

Memory bounds are measured as the peak resident set size (``ru_maxrss``) of a child
process, before and after the hostile request, not timed: a body read whole into memory
(or a member inflated whole) raises the peak by at least the body's size, hundreds of MiB
here, while a streamed, limited request stays within `GROWTH_MAX`.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gaiarvs_cnn
from gaiarvs_cnn.archives.gaia import GaiaArchive
from gaiarvs_cnn.archives.http import HTTPClient
from gaiarvs_cnn.archives.tap import run_tap
from gaiarvs_cnn.exceptions import ArchiveError

MiB = 2 ** 20
#: Largest growth of the child's peak RSS allowed for a bounded request (KiB, as
#: ``ru_maxrss`` counts on Linux); every hostile answer below is >= 4x larger.
GROWTH_MAX = 48 * 1024
#: The checkout whose code the test imported; the child runs the same code.
CODE = str(Path(gaiarvs_cnn.__file__).resolve().parents[1])

CHILD = r"""
import json, resource, sys
from gaiarvs_cnn import conf
from gaiarvs_cnn.archives.gaia import GaiaArchive
from gaiarvs_cnn.archives.http import HTTPClient
from gaiarvs_cnn.exceptions import ArchiveError

args = json.loads(sys.argv[1])
conf.cache_dir = args["cache"]
client = HTTPClient(timeout=20, retries=0, max_bytes=args["max_bytes"])
gaia = GaiaArchive(datalink_url=args["url"], client=client)
gaia.load_products(args["warm"], "RVS")  # imports and one normal answer first
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    gaia.load_products(args["ids"], "RVS")
    error = None
except ArchiveError as exc:
    error = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before": before, "after": after, "error": error}))
"""


def _child(archive, tmp_path, *, max_bytes: int) -> dict:
    sky = sorted(archive.rvs)
    args = {"cache": str(tmp_path / "child-cache"), "url": archive.url + "/esa/data",
            "max_bytes": max_bytes, "warm": sky[:1], "ids": sky[1:3]}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], cwd=CODE,
                         capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _hostile(archive, mode: str) -> None:
    """The DataLink request of the child's second call (ids sky[1:3]) gets ``mode``."""
    archive.fail("/data", mode, times=1, when=str(sorted(archive.rvs)[1]))


def test_endless_answer_is_cut_at_the_byte_limit_without_memory_growth(archive, tmp_path):
    archive.endless_bytes = 2 * 1024 * MiB
    _hostile(archive, "endless")
    run = _child(archive, tmp_path, max_bytes=192 * MiB)
    assert run["error"] is not None and "than the limit of 201326592 bytes" in run["error"]
    assert run["after"] - run["before"] < GROWTH_MAX, run


def test_gzip_bomb_stops_at_the_limit_without_memory_growth(archive, tmp_path):
    archive.bomb_bytes = 1024 * MiB         # about 1 MB on the wire
    _hostile(archive, "gzipbomb")
    run = _child(archive, tmp_path, max_bytes=192 * MiB)
    assert run["error"] is not None and "counted after decompression" in run["error"]
    assert run["after"] - run["before"] < GROWTH_MAX, run


def test_zip_bomb_member_is_refused_before_it_is_read(archive, tmp_path):
    archive.bomb_bytes = 1024 * MiB         # one member of 1 GiB, about 1 MB zipped
    _hostile(archive, "zipbomb")
    run = _child(archive, tmp_path, max_bytes=64 * MiB)
    assert run["error"] is not None
    assert "member 'RVS-Gaia DR3 1.csv' inflates to 1073741824 bytes" in run["error"]
    assert "conf.zip_member_max_bytes" in run["error"]
    assert run["after"] - run["before"] < GROWTH_MAX, run
    assert not list((tmp_path / "child-cache" / "esa").glob("*.*"))  # nothing cached


def test_endless_tap_answer_is_cut_and_not_retried(archive):
    archive.fail("/esa/tap/sync", "endless", times=3)
    client = HTTPClient(timeout=10, retries=2, backoff=0.01, max_bytes=4 * MiB)
    with pytest.raises(ArchiveError, match=r"than the limit of 4194304 bytes.*"
                                           r"conf.max_response_bytes"):
        run_tap(client, archive.url + "/esa/tap",
                "SELECT TOP 3 * FROM gaiadr3.gaia_source", mode="sync")
    assert archive.count("/esa/tap/sync") == 1  # final: not asked three times


@pytest.mark.parametrize("path", ["/data", "/esa/tap/sync"])
def test_trickling_answer_hits_the_request_deadline(archive, path):
    """A server sending one byte every 0.05 s (the answers here would take minutes) is cut
    off by the total deadline; the per-read time-out (10 s) alone would never fire."""
    archive.trickle_s = 0.05
    archive.fail(path, "trickle", times=1)
    client = HTTPClient(timeout=10, retries=0, deadline=1.5)
    start = time.monotonic()
    with pytest.raises(ArchiveError, match=r"not complete within the request deadline of "
                                           r"1.5 s \(conf.request_deadline\)"):
        if path == "/data":
            GaiaArchive(client=client).load_products(sorted(archive.rvs)[:2], "RVS")
        else:
            run_tap(client, archive.url + "/esa/tap",
                    "SELECT TOP 3 * FROM gaiadr3.gaia_source", mode="sync")
    assert time.monotonic() - start < 15


def test_trickle_within_the_deadline_is_retried_then_succeeds(archive):
    archive.trickle_s = 0.05
    archive.fail("/data", "trickle", times=1)
    client = HTTPClient(timeout=10, retries=1, backoff=0.01, deadline=3.0)
    batch, _ = GaiaArchive(client=client).load_products(sorted(archive.rvs)[:2], "RVS")
    assert len(batch) == 2 and archive.count("/data") == 2
