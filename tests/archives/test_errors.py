"""Archive error handling: non-standard TAP answers, HTTP 429 Retry-After, fetch exit codes."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from gaiarvs_cnn.archives import http
from gaiarvs_cnn.archives.gaia import GaiaArchive
from gaiarvs_cnn.archives.http import HTTPClient
from gaiarvs_cnn.archives.retry import retry_after_seconds
from gaiarvs_cnn.archives.tap import run_tap
from gaiarvs_cnn.cli import main
from gaiarvs_cnn.cli.fetch import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from gaiarvs_cnn.exceptions import ArchiveError


@pytest.fixture
def sleeps(monkeypatch):
    """The delays `HTTPClient` sleeps between attempts (recorded, not slept)."""
    record = []
    monkeypatch.setattr(http.time, "sleep", record.append)
    return record


def test_tap_answer_without_query_status_is_a_clear_error(archive, fast_client):
    archive.fail("/esa/tap/sync", "nostatus", times=1)
    with pytest.raises(ArchiveError, match=r"esa/tap.*without the QUERY_STATUS INFO.*TAP base"):
        run_tap(fast_client, archive.url + "/esa/tap",
                "SELECT TOP 1 * FROM gaiadr3.gaia_source", mode="sync")
    # the standard answer of the same query is accepted
    assert len(run_tap(fast_client, archive.url + "/esa/tap",
                       "SELECT TOP 1 * FROM gaiadr3.gaia_source", mode="sync")) == 1


def test_tap_429_retry_after_is_honoured(archive, sleeps):
    client = HTTPClient(timeout=5, retries=2, backoff=0.01)
    archive.retry_after = "7"
    archive.fail("/esa/tap/sync", "429", times=1)
    t = run_tap(client, archive.url + "/esa/tap", "SELECT TOP 2 * FROM gaiadr3.gaia_source",
                mode="sync")
    assert len(t) == 2 and sleeps == [7.0]  # not the 0.01 s backoff


def test_datalink_429_retry_after_is_honoured(archive, sleeps, tmp_path):
    archive.retry_after = "3"
    archive.fail("/data", "429", times=2)
    gaia = GaiaArchive(client=HTTPClient(timeout=5, retries=2, backoff=0.01))
    batch, rejected = gaia.load_products(sorted(archive.rvs)[:2], "RVS")
    assert len(batch) == 2 and not rejected
    assert sleeps == [3.0, 3.0]


def test_retry_after_longer_than_the_cap_fails_at_once(archive, sleeps):
    archive.retry_after = "86400"
    archive.fail("/data", "429", times=5)
    client = HTTPClient(timeout=5, retries=3, backoff=0.01, max_retry_after=60)
    with pytest.raises(ArchiveError, match=r"rate-limiting.*Retry-After 86400 s.*later"):
        GaiaArchive(client=client).load_products(sorted(archive.rvs)[:1], "RVS")
    assert sleeps == [] and archive.count("/data") == 1


def test_retry_after_values():
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(" 5 ") == 5.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 + 60) == 0.0


def test_fetch_exit_codes(archive, tmp_path):
    """0 complete, 3 partial (re-run resumes), 1 error, 2 usage."""
    from gaiarvs_cnn import conf

    assert (EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL) == (0, 1, 2, 3)
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(map(str, sorted(archive.rvs))))
    out = str(tmp_path / "s.h5")
    args = ["fetch", "gaia", "--source-ids", str(ids), "-o", out, "--max-ids", "2"]
    archive.fail("/data", "500", times=1, when="'RETRIEVAL_TYPE': 'RVS'")
    with conf.set_temp("retries", 0):
        partial = CliRunner().invoke(main, args)
    assert partial.exit_code == EXIT_PARTIAL, partial.output
    resumed = CliRunner().invoke(main, args)
    assert resumed.exit_code == EXIT_OK, resumed.output
    assert "stored 2 star(s); skipped 1 chunk(s)" in resumed.output
    archive.fail("/esa/tap/sync", "nostatus", times=1)
    hard = CliRunner().invoke(main, ["fetch", "gaia", "--source-ids", str(ids), "-o",
                                     str(tmp_path / "t.h5"), "--refresh"])
    assert hard.exit_code == EXIT_ERROR and "QUERY_STATUS" in hard.output
    assert "Traceback" not in hard.output
    usage = CliRunner().invoke(main, ["fetch", "gaia", "-o", out, "--bogus"])
    assert usage.exit_code == EXIT_USAGE
