"""``fetch bulk`` against a loopback bulk-download area (files in the DR3 bulk layout,
written from real RVS/XP products by the helpers of ``tests/io/test_readers.py``)."""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from astropy.config.paths import set_temp_cache
from click.testing import CliRunner

from gaiarvs_cnn import conf
from gaiarvs_cnn.archives.bulk import fetch_bulk, parse_md5sums
from gaiarvs_cnn.cli import main
from gaiarvs_cnn.exceptions import ArchiveError
from gaiarvs_cnn.io.shards import open_source

_spec = importlib.util.spec_from_file_location(
    "_bulk_writers", Path(__file__).resolve().parents[1] / "io" / "test_readers.py")
readers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readers)

RANGES = ("000000-003111", "003111-006222")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def bulk_area(tmp_path):
    """Two ranges per product, _MD5SUM.txt in each directory, served over loopback HTTP."""
    root = tmp_path / "area"
    rvs_rows = readers._real_rvs_rows()
    sids = [r["source_id"] for r in rvs_rows]
    xp_rows = readers._real_xp_rows(sids[:2]) + readers._real_xp_rows(sids[2:])
    for sub, prefix, rows, arrays in (
            ("rvs_mean_spectrum", "RvsMeanSpectrum_", rvs_rows, ("flux", "flux_error")),
            ("xp_continuous_mean_spectrum", "XpContinuousMeanSpectrum_", xp_rows,
             readers.XP_ARRAYS)):
        d = root / sub
        d.mkdir(parents=True)
        sums = []
        for i, rng in enumerate(RANGES):  # range 0: first two stars, range 1: the third
            part = rows[:2] if i == 0 else rows[2:]
            f = readers.write_bulk(d / f"{prefix}{rng}.csv.gz", part, arrays)
            sums.append(f"{_md5(f)}  {f.name}")
        (d / "_MD5SUM.txt").write_text("\n".join(sums) + "\n")
    requests = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with set_temp_cache(tmp_path / "astropy_cache"), conf.set_temp("gaia_bulk_url", url), \
            conf.set_temp("retries", 0):
        yield root, requests, [r["source_id"] for r in rvs_rows]
    server.shutdown()
    server.server_close()


def test_bulk_download_ingests_one_shard_per_range(bulk_area, tmp_path):
    root, requests, ids = bulk_area
    report = fetch_bulk(tmp_path / "out", progress=False)
    assert report.ok and report.stored == list(RANGES)
    assert [p.name for p in report.shards] == [f"{r}.h5" for r in RANGES]
    with open_source(report.manifest) as src:
        assert sorted(src.source_ids().tolist()) == sorted(ids)
        batch = next(iter(src.iter_chunks()))
    assert batch["flux"].shape[1] == 2401 and np.isfinite(batch["bp_coefficients"]).all()
    downloads = [r for r in requests if r.endswith(".csv.gz")]
    assert len(downloads) == 4
    # re-run: every shard exists, nothing is downloaded again
    again = fetch_bulk(tmp_path / "out", progress=False)
    assert again.skipped == list(RANGES) and again.stored == []
    assert len([r for r in requests if r.endswith(".csv.gz")]) == 4


def test_interrupted_run_resumes_and_cache_is_used(bulk_area, tmp_path):
    root, requests, _ = bulk_area
    first = fetch_bulk(tmp_path / "out", limit=1, progress=False)
    assert first.stored == [RANGES[0]] and first.manifest is not None
    (tmp_path / "out" / f"{RANGES[0]}.h5").unlink()  # a lost shard is rebuilt from cache
    second = fetch_bulk(tmp_path / "out", progress=False)
    assert second.stored == list(RANGES)
    fetched = [r for r in requests if r.endswith(".csv.gz")]
    assert len(fetched) == 4 and len(set(fetched)) == 4  # range 0 came from the cache


def test_md5_mismatch_is_downloaded_again_then_fails(bulk_area, tmp_path):
    root, requests, _ = bulk_area
    bad = root / "rvs_mean_spectrum" / f"RvsMeanSpectrum_{RANGES[1]}.csv.gz"
    bad.write_bytes(bad.read_bytes()[:-10] + b"0123456789")  # corrupt at the source
    report = fetch_bulk(tmp_path / "out", progress=False)
    assert report.stored == [RANGES[0]] and report.manifest is None
    assert report.failed[0][0] == RANGES[1] and "differs from the archive's checksum" in \
        report.failed[0][1]
    assert requests.count(f"/rvs_mean_spectrum/{bad.name}") == 2  # one fresh retry
    assert not (tmp_path / "out" / f"{RANGES[1]}.h5").exists()


def test_fetch_bulk_command_exit_codes(bulk_area, tmp_path):
    root, _, _ = bulk_area
    out = tmp_path / "cli"
    ok = CliRunner().invoke(main, ["fetch", "bulk", "-o", str(out), "--quiet",
                                   "--range", RANGES[1]])
    assert ok.exit_code == 0, ok.output
    assert "1 bulk range(s) ingested" in ok.output and (out / "manifest.json").exists()
    unknown = CliRunner().invoke(main, ["fetch", "bulk", "-o", str(out), "--range", "1-2"])
    assert unknown.exit_code == 1 and "not listed" in unknown.output
    (root / "xp_continuous_mean_spectrum" / "_MD5SUM.txt").write_text(
        f"{'0' * 32}  XpContinuousMeanSpectrum_{RANGES[1]}.csv.gz\n")
    partial = CliRunner().invoke(main, ["fetch", "bulk", "-o", str(tmp_path / "p"),
                                        "--quiet"])
    assert partial.exit_code == 3 and "FAILED 000000-003111" in partial.output


def test_md5sum_parsing():
    assert parse_md5sums("\n" + "a" * 32 + " *dir/X_1-2.csv.gz\n") == {"X_1-2.csv.gz": "a" * 32}
    with pytest.raises(ArchiveError, match="line 1"):
        parse_md5sums("not a checksum line")
