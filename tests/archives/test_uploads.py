"""Id selections by TAP table upload (TAP_UPLOAD), chunked by the published limits."""
from __future__ import annotations

import numpy as np
import pytest

from gaiarvs_cnn.archives.gaia import GaiaArchive
from gaiarvs_cnn.archives.tap import (
    ASYNC_JOB_REQUESTS,
    TAPLimits,
    id_query_requests,
    id_upload_bytes,
    ids_votable,
    query_by_ids,
    tap_limits,
)
from gaiarvs_cnn.exceptions import ArchiveError

NO_SPECTRUM = 1000000000000000001


def _ids(archive):
    return sorted(sorted(archive.rvs) + [NO_SPECTRUM])


def test_capabilities_are_read(archive, fast_client):
    esa = tap_limits(fast_client, archive.url + "/esa/tap")
    assert esa == TAPLimits(uploads=True, upload_rows=5, output_rows=3000000,
                            source="capabilities")
    viz = tap_limits(fast_client, archive.url + "/vizier/tap")
    assert viz.uploads and viz.upload_bytes == 100000 and viz.upload_rows is None
    assert not tap_limits(fast_client, archive.url + "/aip/tap").uploads


def test_ids_per_upload_follows_the_tightest_limit():
    assert TAPLimits(uploads=True).ids_per_upload(50000) == 50000
    assert TAPLimits(uploads=True, upload_rows=2000).ids_per_upload(50000) == 2000
    n = TAPLimits(uploads=True, upload_bytes=100000).ids_per_upload(50000)
    assert id_upload_bytes(n) <= 90000 < id_upload_bytes(n + 1)   # 10 % margin
    assert TAPLimits(uploads=True, output_rows=10).ids_per_upload(50000) == 10


def test_selection_uploads_chunks_within_the_row_limit(archive, fast_client):
    archive.services["esa"]["upload_limit"] = (2, "row")
    got = GaiaArchive(client=fast_client).select_sources(_ids(archive), cuts=False)
    assert sorted(got["source_id"].tolist()) == _ids(archive)
    sent = [n for svc, _, n in archive.uploads_received if svc == "esa"]
    assert sent == [2, 2, 1]  # 5 ids, 2 per upload, every upload parsed by the server
    queries = [p["QUERY"] for path, p in archive.log if path.endswith("/esa/tap/sync")]
    assert all("FROM TAP_UPLOAD.gaiarvs_ids AS u\nJOIN gaiadr3.gaia_source AS g ON "
               "g.source_id = u.source_id" in q for q in queries)
    assert all(" IN (" not in q for q in queries)


def test_upload_and_in_list_give_the_same_rows(archive, fast_client):
    ids = _ids(archive)
    by_upload = GaiaArchive(client=fast_client).select_sources(ids)
    archive.services["esa"]["capabilities"] = False  # no capabilities: IN-list fallback
    from gaiarvs_cnn.archives.http import HTTPClient

    other = HTTPClient(timeout=5, retries=0, backoff=0.01)
    by_list = GaiaArchive(client=other, refresh=True).select_sources(ids)
    assert not tap_limits(other, archive.url + "/esa/tap").uploads
    assert " IN (" in archive.log[-1][1]["QUERY"]
    for col in ("source_id", "ra", "parallax", "rvs_spec_sig_to_noise"):
        np.testing.assert_array_equal(np.sort(by_upload[col]), np.sort(by_list[col]))


def test_upload_overflowing_sync_runs_async_with_the_upload(archive, fast_client):
    archive.sync_max_rows = 2
    got = GaiaArchive(client=fast_client).select_sources(_ids(archive)[:4], cuts=False)
    assert len(got) == 4
    assert archive.count("/esa/tap/async") >= 3  # job created, run, result fetched
    assert [n for _, _, n in archive.uploads_received] == [4, 4]  # sync, then async


def test_reference_by_upload_joins_vizier(archive, fast_client):
    from gaiarvs_cnn.archives.galah import query_galah

    sky = sorted(archive.rvs)
    t = query_galah([sky[0], sky[3], 12345], client=fast_client)
    assert t["source_id"].tolist() == [sky[0], sky[3]]
    assert ("vizier", "gaiarvs_ids", 3) in archive.uploads_received
    assert 'JOIN "J/MNRAS/506/150/stars" AS t ON t."GaiaEDR3" = u.source_id' in \
        archive.log[-1][1]["QUERY"]


def test_upload_beyond_the_published_limit_is_refused(archive, fast_client):
    archive.services["esa"]["upload_limit"] = (2, "row")
    with pytest.raises(ArchiveError, match=r"HTTP 400.*limit 2"):
        query_by_ids(fast_client, archive.url + "/esa/tap", _ids(archive), select="g.source_id",
                     table="gaiadr3.gaia_source AS g", id_column="g.source_id",
                     uploads=True, upload_size=5)


def test_chunk_larger_than_the_sync_cap_goes_async_at_once(archive, fast_client):
    archive.sync_max_rows = 3  # 5 ids per upload (published limit) > 3 rows per sync query
    got = query_by_ids(fast_client, archive.url + "/esa/tap", _ids(archive),
                       select="g.source_id", table="gaiadr3.gaia_source AS g",
                       id_column="g.source_id", sync_max_rows=3)
    assert len(got) == 5
    assert archive.count("/esa/tap/sync") == 0 and archive.count("/esa/tap/async") >= 3


@pytest.mark.parametrize("upload_rows, cap, sent", [
    (5, 3, {"sync": 0, "jobs": 1}),    # 5 ids > 3: a job at once
    (5, 5, {"sync": 1, "jobs": 1}),    # 5 rows reach the cap: re-run as a job
    (2, 2, {"sync": 3, "jobs": 2}),    # chunks of 2, 2 (each re-run), 1
    (2, 3, {"sync": 3, "jobs": 0}),
])
def test_id_query_requests_are_the_requests_sent(archive, fast_client, upload_rows, cap,
                                                 sent):
    """What the plan of ``gaiarvs-cnn run`` counts is what `query_by_ids` sends: the
    capabilities, the synchronous queries and each job's requests by endpoint
    (`ASYNC_JOB_REQUESTS`; the loopback job is done at its first phase check)."""
    from gaiarvs_cnn.archives.http import HTTPClient

    archive.services["esa"]["upload_limit"] = (upload_rows, "row")
    url = archive.url + "/esa/tap"
    ids = _ids(archive)   # 5 ids, each one gaia_source row
    planned = id_query_requests(HTTPClient(retries=0), url, len(ids), sync_max_rows=cap,
                                rows_per_id=1)
    least = id_query_requests(HTTPClient(retries=0), url, len(ids), sync_max_rows=cap)
    since = len(archive.log)
    got = query_by_ids(fast_client, url, ids, select="g.source_id",
                       table="gaiadr3.gaia_source AS g", id_column="g.source_id",
                       sync_max_rows=cap)
    assert sorted(got["source_id"].tolist()) == ids
    job = {"/esa/tap" + k: v * sent["jobs"] for k, v in ASYNC_JOB_REQUESTS.items()}
    expected = {"/esa/tap/capabilities": 1, "/esa/tap/sync": sent["sync"], **job}
    assert archive.requests_by_endpoint(since) == {k: v for k, v in expected.items() if v}
    assert planned == len(archive.log) - since == 1 + sent["sync"] + 8 * sent["jobs"]
    # rows not known: a re-run is not counted, a job at once is
    reruns = min(sent["sync"], sent["jobs"])
    assert least == planned - 8 * reruns


def test_id_upload_bytes_are_the_bytes_pyvo_sends():
    from pyvo.dal.query import Upload

    for n in (1, 7, 1000):
        widest = ids_votable([np.iinfo(np.int64).max] * n)
        assert len(Upload("gaiarvs_ids", widest).fileobj().read()) == id_upload_bytes(n)
        real = ids_votable(np.arange(n) + 4_000_000_000_000_000_000)   # 19 digits
        assert len(Upload("gaiarvs_ids", real).fileobj().read()) <= id_upload_bytes(n)


def test_reference_ids_beyond_one_upload_go_in_chunks_within_the_byte_limit(tmp_path):
    """4 000 ids are 224 kB as a VOTable: more than VizieR's 100 kB upload limit."""
    import contextlib
    from pathlib import Path

    from gaiarvs_cnn import conf
    from gaiarvs_cnn.archives.catalogues import (
        probe_reference,
        query_reference,
        reference_requests,
    )
    from gaiarvs_cnn.archives.http import HTTPClient
    from gaiarvs_cnn.archives.loopback import (
        RealProducts,
        build_synthetic_archive,
        conf_values,
        serve,
        synthetic_ids,
    )

    real = RealProducts(Path(__file__).resolve().parents[1] / "data" / "gaia_real")
    ids = synthetic_ids(4000)
    with serve(build_synthetic_archive(ids.size, real, references=True)) as arc, \
            contextlib.ExitStack() as stack:
        for name, value in conf_values(arc, tmp_path / "cache", retries=0).items():
            stack.enter_context(conf.set_temp(name, value))
        assert id_upload_bytes(ids.size) > 100000
        planned = reference_requests("galah", ids.size, client=HTTPClient(retries=0))
        probe_reference("galah")   # as `gaiarvs-cnn run` does first: the probe row is cached
        since = len(arc.log)
        got = query_reference("galah", ids[::-1])
        sent = [n for svc, _, n in arc.uploads_received if svc == "vizier"]
        assert len(sent) == 3 and sum(sent) == ids.size   # every id once, 3 uploads
        assert max(id_upload_bytes(n) for n in sent) <= 100000
        # every GALAH star (every 3rd synthetic star) once
        assert sorted(got["source_id"].tolist()) == ids[::3].tolist()
        assert planned == len(arc.log) - since == 4   # capabilities + 3 uploads
