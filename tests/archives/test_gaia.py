"""ESA Gaia archive adapter against the loopback archive (real DR3 products)."""
from __future__ import annotations

import numpy as np
import pytest

from gaiarvs_cnn.archives.gaia import GaiaArchive, data_structure_value, paper_cuts_adql
from gaiarvs_cnn.exceptions import ArchiveError
from gaiarvs_cnn.io.store import Store

from .conftest import REAL

NO_SPECTRUM = 1000000000000000001


def _sky(archive):
    return sorted(archive.rvs)


def test_fetch_fills_store_with_real_spectra(archive, fast_client, tmp_path):
    sky = _sky(archive)
    gaia = GaiaArchive(client=fast_client)
    report = gaia.fetch_to_store(tmp_path / "s.h5", source_ids=sky + [NO_SPECTRUM],
                                 progress=False)
    assert report.ok and report.stored == 4
    assert report.missing["RVS"] == [NO_SPECTRUM]
    with Store.open(tmp_path / "s.h5") as store:
        batch = store.read()
    assert sorted(batch["source_id"].tolist()) == sky
    # flux equals the real DataLink CSV of HD 176650 (no NaN pixels)
    from astropy.table import Table

    hd = Table.read(next(p for p in REAL.rvs_csv if p.name == "HD176650.csv"), format="ascii.csv")
    row = batch["source_id"].tolist().index(4268620287278693120)
    np.testing.assert_allclose(batch["flux"][row], np.asarray(hd["flux"]), rtol=1e-6)
    assert np.all(np.isfinite(batch["bp_coefficients"]))
    assert batch["phot_g_mean_mag_error"][row] == pytest.approx(
        2.5 / np.log(10) / float(archive.tables["gaiadr3.gaia_source"][
            "phot_g_mean_flux_over_error"][sky.index(4268620287278693120)]), rel=1e-5)
    assert np.all(np.isnan(batch["labels"]))


def test_datalink_requests_respect_the_id_limit(archive, fast_client, tmp_path):
    gaia = GaiaArchive(client=fast_client, max_ids=3)
    report = gaia.fetch_to_store(tmp_path / "s.h5", source_ids=_sky(archive), progress=False)
    assert report.stored == 4
    calls = [p for p, _ in archive.log if p.endswith("/data")]
    ids_per_call = [len(params["ID"].split(",")) for p, params in archive.log
                    if p.endswith("/data")]
    assert len(calls) == 4 and max(ids_per_call) == 3  # 2 chunks x (RVS, XP)


def test_rerun_skips_stored_chunks(archive, fast_client, tmp_path):
    gaia = GaiaArchive(client=fast_client, max_ids=2, refresh=True)
    gaia.fetch_to_store(tmp_path / "s.h5", source_ids=_sky(archive), progress=False)
    n_data = archive.count("/data")
    report = gaia.fetch_to_store(tmp_path / "s.h5", source_ids=_sky(archive), progress=False)
    assert report.stored == 0 and report.skipped_chunks == 2
    assert archive.count("/data") == n_data


def test_server_error_midway_then_resume(archive, fast_client, tmp_path):
    from gaiarvs_cnn.archives.http import HTTPClient

    # the first chunk's RVS request fails on every attempt (1 + 2 retries); the second is stored
    archive.fail("/data", "500", times=3, when="'RETRIEVAL_TYPE': 'RVS'")
    gaia = GaiaArchive(client=HTTPClient(timeout=5, retries=2, backoff=0.01), max_ids=2)
    store_path = tmp_path / "s.h5"
    first = gaia.fetch_to_store(store_path, source_ids=_sky(archive), progress=False)
    assert not first.ok and first.stored == 2
    assert len(first.failed_chunks) == 1 and "HTTP 500" in first.failed_chunks[0][1]
    with Store.open(store_path) as store:
        assert len(store) == 2 and store.meta["fetch_failed"] == [first.failed_chunks[0][0]]
    second = gaia.fetch_to_store(store_path, source_ids=_sky(archive), progress=False)
    assert second.ok and second.stored == 2 and second.skipped_chunks == 1
    with Store.open(store_path) as store:
        assert sorted(store.source_ids().tolist()) == _sky(archive)


def test_transient_500_is_retried(archive, fast_client, tmp_path):
    archive.fail("/data", "500", times=1)
    report = GaiaArchive(client=fast_client).fetch_to_store(
        tmp_path / "s.h5", source_ids=_sky(archive), progress=False)
    assert report.ok and report.stored == 4


def test_truncated_zip_is_rejected_then_retried(archive, fast_client, tmp_path):
    archive.fail("/data", "truncate", times=1)
    report = GaiaArchive(client=fast_client).fetch_to_store(
        tmp_path / "s.h5", source_ids=_sky(archive), progress=False)
    assert report.ok and report.stored == 4
    assert archive.count("/data") == 3


def test_truncated_zip_every_time_stores_nothing(archive, fast_client, tmp_path):
    archive.fail("/data", "truncate", times=10)
    report = GaiaArchive(client=fast_client).fetch_to_store(
        tmp_path / "s.h5", source_ids=_sky(archive), progress=False)
    assert report.stored == 0 and "partial or corrupt DataLink zip" in report.failed_chunks[0][1]
    with Store.open(tmp_path / "s.h5") as store:
        assert len(store) == 0


def test_timeout_is_retried(archive, tmp_path):
    from gaiarvs_cnn.archives.http import HTTPClient

    archive.slow_s = 3.0  # the time-out leaves the other requests room on a loaded machine
    archive.fail("/data", "slow", times=1)
    client = HTTPClient(timeout=1.5, retries=1, backoff=0.01)
    report = GaiaArchive(client=client).fetch_to_store(
        tmp_path / "s.h5", source_ids=_sky(archive)[:2], progress=False)
    assert report.ok and report.stored == 2


def test_timeout_after_retries_names_the_service(archive, tmp_path):
    from gaiarvs_cnn.archives.http import HTTPClient

    archive.slow_s = 1.0
    archive.fail("/esa/tap/sync", "slow", times=5)
    gaia = GaiaArchive(client=HTTPClient(timeout=0.3, retries=1, backoff=0.01))
    with pytest.raises(ArchiveError, match=r"TAP query at .*/esa/tap.*2 attempt"):
        gaia.select_sources(_sky(archive))


def test_http_400_is_not_retried(archive, fast_client):
    gaia = GaiaArchive(client=fast_client, product_format="fits")
    with pytest.raises(ArchiveError, match="HTTP 400"):
        gaia.download_products(_sky(archive), "RVS")
    assert archive.count("/data") == 1


def test_case_drift_in_gaia_source(archive, fast_client, tmp_path):
    archive.uppercase = True  # SOURCE_ID, PHOT_G_MEAN_MAG, ...
    report = GaiaArchive(client=fast_client).fetch_to_store(
        tmp_path / "s.h5", source_ids=_sky(archive), progress=False)
    assert report.stored == 4
    with Store.open(tmp_path / "s.h5") as store:
        assert np.all(np.isfinite(store.read()["phot_g_mean_mag"]))


def test_missing_ids_are_listed_not_fatal(archive, fast_client, tmp_path):
    unknown = 42
    report = GaiaArchive(client=fast_client).fetch_to_store(
        tmp_path / "s.h5", source_ids=[unknown, NO_SPECTRUM, _sky(archive)[0]], progress=False)
    assert report.ok and report.stored == 1
    assert report.not_selected == [unknown]
    assert report.missing == {"RVS": [NO_SPECTRUM], "XP_CONTINUOUS": [NO_SPECTRUM]}
    assert "not selected" in report.summary()


def test_query_selection_and_async_overflow(archive, fast_client, tmp_path):
    archive.sync_max_rows = 3  # the sync answer overflows -> async job
    gaia = GaiaArchive(client=fast_client)
    ids = gaia.ids_from_query("SELECT TOP 10 source_id FROM gaiadr3.gaia_source")
    assert len(ids) == 5
    assert archive.count("/esa/tap/async") >= 3  # create, run, result
    assert not archive.jobs  # deleted after fetching the result


def test_malformed_votable_is_retried_then_reported(archive, fast_client):
    archive.fail("/esa/tap/sync", "malformed", times=10)
    with pytest.raises(ArchiveError, match="TAP query"):
        GaiaArchive(client=fast_client).select_sources(_sky(archive))


def test_cache_avoids_second_download(archive, fast_client, tmp_path):
    gaia = GaiaArchive(client=fast_client)
    gaia.download_products(_sky(archive), "RVS")
    gaia.download_products(_sky(archive), "RVS")
    assert archive.count("/data") == 1
    GaiaArchive(client=fast_client, refresh=True).download_products(_sky(archive), "RVS")
    assert archive.count("/data") == 2


def test_data_structure_spellings():
    assert data_structure_value("INDIVIDUAL", new_spelling=False) == "INDIVIDUAL"
    assert data_structure_value("individual", new_spelling=True) == "DATAMODEL_STANDARD"
    assert data_structure_value("DATAMODEL_GAIA", new_spelling=False) == "RAW"
    assert data_structure_value("RAW", new_spelling=True) == "DATAMODEL_GAIA"
    with pytest.raises(Exception, match="COMBINED"):
        data_structure_value("COMBINED")


def test_selection_adql_has_the_paper_cuts():
    adql = paper_cuts_adql("g", "ap")
    for cond in ("g.has_rvs = 'true'", "g.non_single_star = 0", "ap.classlabel_espels IS NULL",
                 "g.phot_bp_mean_flux_over_error > 500", "g.parallax > 0"):
        assert cond in adql


def test_tap_4xx_is_reported_without_retry(archive, fast_client):
    gaia = GaiaArchive(client=fast_client)
    with pytest.raises(ArchiveError, match=r"HTTP 400.*Check the query"):
        gaia.query("SELECT source_id FROM gaiadr3.no_such_table")
    assert archive.count("/esa/tap/sync") == 1


def test_invalid_products_are_rejected_not_stored(archive, fast_client, tmp_path):
    sky = _sky(archive)
    short = archive.rvs[sky[0]].rstrip("\n").rsplit("\n", 1)[0] + "\n"  # 2400 pixels
    archive.rvs[sky[0]] = short
    header, *rows = archive.rvs[sky[1]].splitlines()
    cells = rows[1000].split(",")
    cells[6] = ""  # flux_error missing where the flux is finite
    rows[1000] = ",".join(cells)
    archive.rvs[sky[1]] = "\n".join([header, *rows]) + "\n"
    report = GaiaArchive(client=fast_client).fetch_to_store(
        tmp_path / "s.h5", source_ids=sky, progress=False)
    assert report.ok and report.stored == 2
    assert set(report.rejected) == {sky[0], sky[1]}
    assert "1 RVS pixel(s) with finite flux but no finite positive flux_error" in \
        report.rejected[sky[1]]
    with Store.open(tmp_path / "s.h5") as store:
        assert sorted(store.source_ids().tolist()) == sky[2:]


def test_empty_query_result_is_an_error(archive, fast_client):
    with pytest.raises(ArchiveError, match="returned no rows"):
        GaiaArchive(client=fast_client).ids_from_query(
            "SELECT source_id FROM gaiadr3.gaia_source WHERE source_id IN (1)")


def test_identifiers_agree_with_installed_astroquery():
    from astroquery.gaia import conf as aq_conf

    from gaiarvs_cnn import conf
    from gaiarvs_cnn.archives.gaia import RETRIEVAL_TYPES

    assert set(RETRIEVAL_TYPES) <= set(aq_conf.VALID_DATALINK_RETRIEVAL_TYPES)
    assert conf.gaia_tap_url.endswith("/tap-server/tap")
    assert conf.gaia_datalink_url.endswith("/data-server/data")


def test_data_structure_from_conf():
    from gaiarvs_cnn import conf
    from gaiarvs_cnn.archives.gaia import other_spelling

    assert conf.datalink_data_structure == "INDIVIDUAL"  # the operational server's spelling
    assert data_structure_value("INDIVIDUAL") == "INDIVIDUAL"
    with conf.set_temp("datalink_data_structure", "DATAMODEL_STANDARD"):
        assert data_structure_value("INDIVIDUAL") == "DATAMODEL_STANDARD"
        assert data_structure_value("RAW") == "DATAMODEL_GAIA"
    with conf.set_temp("datalink_data_structure", "COMBINED"), \
            pytest.raises(Exception, match="conf.datalink_data_structure"):
        data_structure_value("INDIVIDUAL")
    assert other_spelling("INDIVIDUAL") == "DATAMODEL_STANDARD"
    assert other_spelling("DATAMODEL_GAIA") == "RAW"


@pytest.mark.parametrize("server, configured", [
    (("DATAMODEL_STANDARD", "DATAMODEL_GAIA"), "INDIVIDUAL"),   # the server renamed
    (("INDIVIDUAL", "RAW"), "DATAMODEL_STANDARD")])            # the renaming is not live
def test_data_structure_spelling_fallback(archive, fast_client, server, configured):
    from gaiarvs_cnn import conf

    archive.data_structures = server
    with conf.set_temp("datalink_data_structure", configured):
        gaia = GaiaArchive(client=fast_client)
        batch, _ = gaia.load_products(_sky(archive)[:2], "RVS")
        assert len(batch) == 2 and gaia.data_structure == server[0]
        sent = [p["DATA_STRUCTURE"] for path, p in archive.log if path.endswith("/data")]
        assert sent == [configured, server[0]]  # one automatic retry with the other spelling
        gaia.load_products(_sky(archive)[2:4], "XP_CONTINUOUS")  # the working one is kept
        assert archive.log[-1][1]["DATA_STRUCTURE"] == server[0]


def test_data_structure_refused_in_both_spellings(archive, fast_client):
    archive.data_structures = ("COMBINED",)
    with pytest.raises(ArchiveError, match=r"HTTP 400.*DATA_STRUCTURE"):
        GaiaArchive(client=fast_client).load_products(_sky(archive)[:1], "RVS")
    assert archive.count("/data") == 2  # one retry, not a loop


def test_other_400_is_not_retried_with_the_other_spelling(archive, fast_client):
    gaia = GaiaArchive(client=fast_client, product_format="fits")  # the loopback serves csv
    with pytest.raises(ArchiveError, match="HTTP 400"):
        gaia.load_products(_sky(archive)[:1], "RVS")
    assert archive.count("/data") == 1


def test_fetch_makes_batches_one_chunk_at_a_time(archive, fast_client, tmp_path, monkeypatch):
    # a StarBatch holds the spectra columns (about 20 kB a star, NaN until filled): the
    # selection becomes batches chunk by chunk, so a fetch's memory follows max_ids, not
    # the number of stars (100 000 stars held 2 GB at once before, issue 28)
    import gaiarvs_cnn.archives.gaia as gaia_module

    sizes, convert = [], gaia_module.gaia_source_to_batch

    def spy(table, *args, **kwargs):
        sizes.append(len(table))
        return convert(table, *args, **kwargs)

    monkeypatch.setattr(gaia_module, "gaia_source_to_batch", spy)
    report = GaiaArchive(client=fast_client, max_ids=3).fetch_to_store(
        tmp_path / "s.h5", source_ids=_sky(archive) + [NO_SPECTRUM], progress=False)
    assert report.stored == 4 and report.missing["RVS"] == [NO_SPECTRUM]
    assert sizes and max(sizes) == 3
    with Store.open(tmp_path / "s.h5") as store:
        assert sorted(store.source_ids().tolist()) == _sky(archive)
