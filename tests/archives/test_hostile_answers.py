"""Answers of a broken archive that must never be stored, cached or marked done
(issue 27 items 1-3, 13): an empty DataLink zip, a TAP answer without the gaia_source
columns, rows for ids not requested, a connection reset in the middle of an answer."""
from __future__ import annotations

import logging
import zipfile

import pytest
from click.testing import CliRunner

from gaiarvs_cnn import conf
from gaiarvs_cnn.archives.cache import DiskCache
from gaiarvs_cnn.archives.gaia import GaiaArchive
from gaiarvs_cnn.archives.http import HTTPClient
from gaiarvs_cnn.archives.tap import run_tap
from gaiarvs_cnn.cli import main
from gaiarvs_cnn.cli.fetch import EXIT_OK, EXIT_PARTIAL
from gaiarvs_cnn.exceptions import ArchiveError, InputDataError
from gaiarvs_cnn.io.store import Store

RVS = "'RETRIEVAL_TYPE': 'RVS'"


def _sky(archive):
    return sorted(archive.rvs)


def _stored(path) -> list[int]:
    with Store.open(path) as store:
        return sorted(store.source_ids().tolist())


def test_empty_datalink_answer_is_retried_and_never_cached(archive, fast_client, tmp_path):
    archive.fail("/data", "empty", times=1, when=RVS)
    report = GaiaArchive(client=fast_client).fetch_to_store(
        tmp_path / "s.h5", source_ids=_sky(archive), progress=False)
    assert report.ok and report.stored == 4
    assert archive.count("/data", RETRIEVAL_TYPE="RVS") == 2  # the empty answer, again
    assert _stored(tmp_path / "s.h5") == _sky(archive)


def test_persistent_empty_answer_fails_the_chunk_and_a_rerun_fetches_it(archive, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(map(str, _sky(archive))))
    out = tmp_path / "s.h5"
    args = ["fetch", "gaia", "--source-ids", str(ids), "-o", str(out)]
    archive.fail("/data", "empty", times=3, when=RVS)
    with conf.set_temp("retries", 2):
        first = CliRunner().invoke(main, args)
    assert first.exit_code == EXIT_PARTIAL, first.output       # not a silent exit 0
    assert "no RVS product" in first.output and "stored 0 star(s)" in first.output
    with Store.open(out) as store:
        assert store.meta.get("fetch_done_chunks", []) == []   # not recorded as done
        assert len(store.meta["fetch_failed"]) == 1
    assert not any(zipfile.is_zipfile(p) for p in (tmp_path / "cache" / "esa").iterdir())
    second = CliRunner().invoke(main, args)
    assert second.exit_code == EXIT_OK, second.output
    assert _stored(out) == _sky(archive)


def test_refresh_fetches_a_chunk_recorded_as_done(archive, fast_client, tmp_path):
    """A store that records a chunk as done without its stars (what an empty answer left
    before this was fixed): ``refresh=True`` asks the archive again."""
    sky = _sky(archive)
    out = tmp_path / "s.h5"
    GaiaArchive(client=fast_client, max_ids=2).fetch_to_store(out, source_ids=sky[:2],
                                                              progress=False)
    with Store.open(out, "a") as store:
        store.update_meta(fetch_done_chunks=[DiskCache.key(sky[2:4])])
    plain = GaiaArchive(client=fast_client, max_ids=2).fetch_to_store(
        out, source_ids=sky, progress=False)
    assert plain.stored == 0 and _stored(out) == sky[:2]       # trusted the record
    refreshed = GaiaArchive(client=fast_client, max_ids=2, refresh=True).fetch_to_store(
        out, source_ids=sky, progress=False)
    assert refreshed.stored == 2 and _stored(out) == sky


def test_tap_answer_without_gaia_source_columns_is_not_cached(archive, fast_client, tmp_path):
    archive.fail("/esa/tap/sync", "fewcolumns", times=1)
    gaia = GaiaArchive(client=fast_client)
    with pytest.raises(ArchiveError, match=r"lacks column\(s\) \['ra', .*not cached.*"
                                           r"run the command again.*--refresh"):
        gaia.select_sources(_sky(archive))
    n = archive.count("/esa/tap/sync")
    # the service is fixed: the same call asks it again (nothing cached) and succeeds
    table = gaia.select_sources(_sky(archive))
    assert archive.count("/esa/tap/sync") == n + 1
    assert sorted(table["source_id"].tolist()) == _sky(archive)


def test_a_bad_cached_tap_answer_is_dropped_and_asked_again(archive, fast_client, caplog):
    url, adql = archive.url + "/esa/tap", "SELECT TOP 2 source_id FROM gaiadr3.gaia_source"
    cache = DiskCache("esa")

    def needs_ra(table):
        if "ra" not in table.colnames:
            raise ArchiveError("no ra")

    run_tap(fast_client, url, adql, cache=cache, mode="sync")   # cached without ra
    n = archive.count("/esa/tap/sync")
    with caplog.at_level(logging.WARNING, logger="astropy"), pytest.raises(ArchiveError):
        run_tap(fast_client, url, adql, cache=cache, mode="sync", validate=needs_ra)
    assert archive.count("/esa/tap/sync") == n + 1 and "is unusable" in caplog.text
    assert not any(cache.directory.iterdir())                  # dropped, nothing re-cached


def test_rows_for_ids_not_requested_are_dropped(archive, fast_client, tmp_path, caplog):
    sky = _sky(archive)
    archive.fail("/esa/tap/sync", "extrarows", times=1)
    with caplog.at_level(logging.WARNING, logger="astropy"):
        report = GaiaArchive(client=fast_client).fetch_to_store(
            tmp_path / "s.h5", source_ids=sky[:2], progress=False)
    assert report.stored == 2 and _stored(tmp_path / "s.h5") == sky[:2]
    assert "not requested" in caplog.text and "dropped" in caplog.text
    # no DataLink request named an id that was not asked for
    asked = {int(i) for p, q in archive.log if p.endswith("/data") for i in q["ID"].split(",")}
    assert asked == set(sky[:2])


@pytest.mark.parametrize("path", ["/data", "/esa/tap/sync"])
def test_connection_reset_mid_answer_is_retried(archive, path):
    archive.fail(path, "reset", times=1)
    client = HTTPClient(timeout=5, retries=1, backoff=0.01)
    if path == "/data":
        batch, rejected = GaiaArchive(client=client).load_products(_sky(archive)[:2], "RVS")
        assert len(batch) == 2 and not rejected
    else:
        t = run_tap(client, archive.url + "/esa/tap",
                    "SELECT TOP 3 source_id FROM gaiadr3.gaia_source", mode="sync")
        assert len(t) == 3
    assert archive.count(path) == 2


def test_connection_reset_without_retries_is_reported(archive):
    archive.fail("/data", "reset", times=1)
    client = HTTPClient(timeout=5, retries=0)
    with pytest.raises(ArchiveError, match=r"failed after 1 attempt.*connection failed or "
                                           r"cut: ChunkedEncodingError"):
        GaiaArchive(client=client).load_products(_sky(archive)[:2], "RVS")
    assert not any(zipfile.is_zipfile(p) for p in DiskCache("esa").directory.glob("*"))


def test_datalink_products_of_ids_not_requested_are_dropped(archive, fast_client, caplog):
    sky = _sky(archive)
    gaia = GaiaArchive(client=fast_client)
    path = gaia.download_products(sky[:3], "RVS")       # cached: the answer for 3 ids ...
    key = DiskCache.key(gaia.datalink_url, sorted(gaia._datalink_params(sky[:2], "RVS").items()))
    gaia.cache.path(key).write_bytes(path.read_bytes())  # ... served for a request of 2
    with caplog.at_level(logging.WARNING, logger="astropy"):
        batch, rejected = gaia.load_products(sky[:2], "RVS")
    assert sorted(batch["source_id"].tolist()) == sky[:2] and not rejected
    assert f"not requested ([{sky[2]}])" in caplog.text


def test_fetch_into_a_directory_fails_before_asking_the_archive(archive, fast_client, tmp_path):
    with pytest.raises(InputDataError, match=r"is a directory; give the file name.*stars.h5"):
        GaiaArchive(client=fast_client).fetch_to_store(tmp_path, source_ids=_sky(archive))
    assert archive.log == []
