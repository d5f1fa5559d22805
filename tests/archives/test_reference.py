"""Reference-catalogue adapters against the loopback VizieR / Gaia TAP services."""
from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest

from gaiarvs_cnn.archives.apogee import apogee_from_table, query_apogee
from gaiarvs_cnn.archives.clusters import dr2_to_dr3, query_clusters
from gaiarvs_cnn.archives.gaia_ap import good_gspspec_flags, query_gsp
from gaiarvs_cnn.archives.galah import query_galah
from gaiarvs_cnn.archives.k2gap import query_k2gap
from gaiarvs_cnn.archives.loopback.reference_tables import DR2, reference_ids
from gaiarvs_cnn.exceptions import ArchiveError
from gaiarvs_cnn.io.reference import check_reference


@pytest.fixture
def sky(archive):
    """The six ids of the reference tables (four loopback-sky stars, then two others)."""
    return reference_ids(sorted(archive.rvs))


def test_apogee_cuts_and_duplicates(archive, fast_client, sky):
    t = query_apogee(client=fast_client)
    assert t["source_id"].tolist() == [sky[0], sky[1], sky[2], sky[5]]
    assert t["teff"][0] == 4800  # the duplicate with the higher SNR is kept
    assert t["teff"].unit == u.K and t["logg"].unit == u.dex(u.cm / u.s**2)
    assert t["e_mh"][2] == pytest.approx(0.15)  # [M/H] < -0.5 allows errors < 0.2
    check_reference(t, "apogee")


def test_apogee_by_ids_and_allstar_names(archive, fast_client, sky):
    archive.services["vizier"]["uploads"] = False  # the documented IN-list fallback
    t = query_apogee([sky[1], sky[3]], client=fast_client, cuts=False)
    assert sorted(t["source_id"].tolist()) == sorted([sky[1], sky[3]])
    query = archive.log[-1][1]["QUERY"]
    assert '"GaiaEDR3" IN (' in query and not query.startswith("SELECT *")
    assert '"e_[Fe/H]"' in query and "APOGEE," not in query  # only the mapped columns
    # the same rows with allStar FITS column names (upper case) give the same table
    raw = archive.tables["iii/286/catalog"].copy()
    raw.rename_columns(["GaiaEDR3", "Teff", "e_Teff", "logg", "e_logg", "[M/H]", "e_[M/H]",
                        "[a/M]", "e_[a/M]", "[Fe/H]", "e_[Fe/H]", "AFlag"],
                       ["GAIAEDR3_SOURCE_ID", "TEFF", "TEFF_ERR", "LOGG", "LOGG_ERR", "M_H",
                        "M_H_ERR", "ALPHA_M", "ALPHA_M_ERR", "FE_H", "FE_H_ERR", "ASPCAPFLAG"])
    assert apogee_from_table(raw)["source_id"].tolist() == [sky[0], sky[1], sky[2], sky[5]]
    # ... and so do flag names instead of the integer bitmask
    raw["ASPCAPFLAG"] = np.where(np.asarray(raw["ASPCAPFLAG"]) == 0, "", "STAR_BAD,COLORTE_WARN")
    assert apogee_from_table(raw)["source_id"].tolist() == [sky[0], sky[1], sky[2], sky[5]]


def test_galah_flags_and_snr(archive, fast_client, sky):
    t = query_galah(client=fast_client)
    assert t["source_id"].tolist() == [sky[0], sky[3]]
    np.testing.assert_allclose(t["alpham"], t["alpha_fe"])
    assert t["feh"][0] == pytest.approx(-0.22) and t["feh"].unit == u.dex


def test_clusters_dr2_mapping(archive, fast_client, sky):
    t = query_clusters(client=fast_client)
    assert t["source_id"].tolist() == [sky[0], sky[2], sky[3]]  # 111 -> closest neighbour
    assert t["cluster"].tolist() == ["NGC_2539", "NGC_2539", "Melotte_22"]
    assert t.meta["unmatched_dr2"] == [DR2[2]]
    assert query_clusters(client=fast_client, min_proba=0.7)["source_id"].tolist() == \
        [sky[0], sky[2]]
    assert dr2_to_dr3([111, 333], client=fast_client) == {111: sky[0]}


def test_k2gap_numax(archive, fast_client, sky):
    t = query_k2gap(client=fast_client)
    assert t["source_id"].tolist() == [sky[0], sky[2]]
    assert t["numax"].unit == u.uHz and t["numax"][1] == 60.0


def test_gsp_spec_and_phot(archive, fast_client, sky):
    spec = query_gsp("gsp-spec", sky, client=fast_client)
    assert spec["source_id"].tolist() == [s for i, s in enumerate(sky) if i != 1]
    assert spec["feh"][0] == pytest.approx(-0.15) and spec.meta["calibrated"] is False
    good = query_gsp("gsp-spec", sky, client=fast_client, good_flags=True)
    assert sky[2] not in good["source_id"].tolist() and len(good) == 4
    phot = query_gsp("gsp-phot", sky, client=fast_client)
    assert len(phot) == 6 and phot["teff"][0] == 4500.0
    assert good_gspspec_flags(["0" * 41, "0" * 13 + "9" * 28, "0" * 12 + "1", ""]).tolist() \
        == [True, True, False, False]


def test_reference_case_drift(archive, fast_client, sky):
    archive.uppercase = True  # TEFF, [M/H] -> [M/H], GAIAEDR3, ...
    assert query_galah(client=fast_client)["source_id"].tolist() == [sky[0], sky[3]]


def test_reference_http_error_is_clear(archive, fast_client):
    archive.fail("/vizier/tap/sync", "500", times=10)
    with pytest.raises(ArchiveError, match=r"vizier/tap.*3 attempt.*HTTP 500"):
        query_galah(client=fast_client)


def test_reference_missing_column_is_named(archive, fast_client):
    archive.tables["j/mnras/506/150/stars"] = archive.tables["j/mnras/506/150/stars"][
        ["GaiaEDR3", "Teff"]]
    with pytest.raises(ArchiveError, match="GALAH DR3 result lacks column"):
        query_galah(client=fast_client)


def test_empty_result(archive, fast_client):
    t = query_galah([12345], client=fast_client)
    assert len(t) == 0 and "alpham" in t.colnames
