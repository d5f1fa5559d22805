"""Positional cross-matches with Gaia DR3 through astroquery's XMatch client, against the
loopback CDS XMatch service (answer layout of astroquery's recorded
``astroquery/xmatch/tests/data/query_res.csv``; see ``conftest.py``)."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from gaiarvs_cnn import conf
from gaiarvs_cnn.archives.k2gap import query_k2gap
from gaiarvs_cnn.archives.loopback.reference_tables import reference_ids
from gaiarvs_cnn.archives.xmatch import GAIA_DR3_TABLE, xmatch_gaia_dr3
from gaiarvs_cnn.exceptions import ArchiveError

ARCSEC = 1 / 3600


@pytest.fixture
def sky(archive):
    return reference_ids(sorted(archive.rvs))


def _position(archive, source_id):
    gaia = archive.tables["i/355/gaiadr3"]
    row = gaia[gaia["Source"] == source_id][0]
    return float(row["RA_ICRS"]), float(row["DE_ICRS"])


def _xmatch_posts(archive):
    return [p for path, p in archive.log
            if path.endswith("/xmatch/api/v1/sync") and p.get("REQUEST") == "xmatch"]


def test_default_service_is_astroquerys_own():
    from urllib.parse import urlparse

    from astroquery.xmatch import conf as astroquery_conf

    ours = type(conf).xmatch_url.defaultvalue
    # the API path of astroquery's own default; the host is the CDS domain astroquery
    # moved to after 0.4.11 (astropy/astroquery#3465, astroquery/xmatch/__init__.py)
    assert urlparse(ours).path == urlparse(astroquery_conf.url).path == "/xmatch/api/v1/sync"
    assert urlparse(ours).netloc == "cdsxmatch.cds.unistra.fr"
    assert type(conf).xmatch_max_distance.defaultvalue == 2.0


def test_k2gap_without_gaia_ids_is_matched_by_position(archive, fast_client, sky):
    k2 = archive.tables["j/apj/926/191/table2"].copy()
    k2.remove_column("GaiaDR2")  # a table keyed on EPIC and positions only
    archive.tables["j/apj/926/191/table2"] = k2
    t = query_k2gap(client=fast_client)
    assert t["source_id"].tolist() == [sky[0], sky[2]]  # the same stars as the DR2 path
    assert t["numax"][1] == 60.0
    assert t.meta["xmatch_service"] == conf.xmatch_url
    assert t.meta["xmatch_table"] == GAIA_DR3_TABLE and t.meta["xmatch_unmatched"] == 0
    (post,) = _xmatch_posts(archive)
    assert post["CAT2"] == "vizier:I/355/gaiadr3" and float(post["DISTMAXARCSEC"]) == 2.0
    assert (post["COLRA1"], post["COLDEC1"]) == ("ra", "dec")
    assert archive.count("/esa/tap") == 0  # no DR2 -> DR3 mapping was needed


def test_k2gap_prefers_gaia_ids_over_positions(archive, fast_client, sky):
    t = query_k2gap(client=fast_client)  # GaiaDR2 present: dr2_neighbourhood, no XMatch
    assert t["source_id"].tolist() == [sky[0], sky[2]]
    assert not _xmatch_posts(archive) and "xmatch_service" not in t.meta


def test_nearest_counterpart_within_the_distance(archive, fast_client, sky):
    ra0, dec0 = _position(archive, sky[0])
    gaia = archive.tables["i/355/gaiadr3"].copy()
    gaia.add_row({"Source": 42, "RA_ICRS": ra0, "DE_ICRS": dec0 + 1.0 * ARCSEC,
                  "Gmag": 15.0})  # a fainter neighbour 0.6 arcsec beyond the target
    archive.tables["i/355/gaiadr3"] = gaia
    ra = [ra0, 10.0, np.nan]
    dec = [dec0 + 0.4 * ARCSEC, -89.0, 0.0]  # near s0, far from everything, no position
    t = xmatch_gaia_dr3(ra, dec, client=fast_client)
    assert t["source_id"].tolist() == [sky[0], 0, 0]
    assert t["ang_dist"].unit == "arcsec" and t["ang_dist"][0] == pytest.approx(0.4, abs=1e-3)
    assert np.isnan(t["ang_dist"][1]) and t.meta["xmatch_unmatched"] == 2
    # a tighter distance leaves the star unmatched; only finite positions were uploaded
    tight = xmatch_gaia_dr3(ra, dec, max_distance=0.3, client=fast_client)
    assert tight["source_id"].tolist() == [0, 0, 0]
    assert float(_xmatch_posts(archive)[-1]["DISTMAXARCSEC"]) == 0.3


def test_answers_are_cached_and_refreshed_on_request(archive, fast_client, sky):
    ra0, dec0 = _position(archive, sky[1])
    first = xmatch_gaia_dr3([ra0], [dec0], client=fast_client)
    again = xmatch_gaia_dr3([ra0], [dec0], client=fast_client)
    assert first["source_id"].tolist() == again["source_id"].tolist() == [sky[1]]
    assert len(_xmatch_posts(archive)) == 1
    xmatch_gaia_dr3([ra0], [dec0], client=fast_client, refresh=True)
    assert len(_xmatch_posts(archive)) == 2


def test_server_error_is_retried(archive, fast_client, sky):
    archive.fail("/xmatch/api/v1/sync", "500", times=1, when="'xmatch'")
    ra0, dec0 = _position(archive, sky[0])
    t = xmatch_gaia_dr3([ra0], [dec0], client=fast_client)
    assert t["source_id"].tolist() == [sky[0]]
    assert len(_xmatch_posts(archive)) == 2


def test_rate_limit_and_persistent_failure_name_the_service(archive, fast_client, sky):
    archive.fail("/xmatch/api/v1/sync", "500", times=10, when="'xmatch'")
    ra0, dec0 = _position(archive, sky[0])
    with pytest.raises(ArchiveError, match=r"CDS XMatch .*xmatch/api/v1/sync.*3 attempt.*"
                                           r"HTTP 500"):
        xmatch_gaia_dr3([ra0], [dec0], client=fast_client)


def test_rejected_request_is_final(archive, fast_client, sky):
    del archive.tables["i/355/gaiadr3"]  # the service cannot match with it: HTTP 400
    ra0, dec0 = _position_from_source(archive, sky[0])
    with pytest.raises(ArchiveError, match="HTTP 400"):
        xmatch_gaia_dr3([ra0], [dec0], client=fast_client)
    assert len(_xmatch_posts(archive)) == 1  # not retried


def _position_from_source(archive, source_id):
    gaia = archive.tables["gaiadr3.gaia_source"]
    row = gaia[gaia["source_id"] == source_id][0]
    return float(row["ra"]), float(row["dec"])


def test_answer_without_gaia_ids_is_a_clear_error(archive, fast_client, sky):
    gaia = archive.tables["i/355/gaiadr3"].copy()
    gaia.rename_column("Source", "DR3Name")
    archive.tables["i/355/gaiadr3"] = gaia
    ra0, dec0 = _position_from_source(archive, sky[0])
    with pytest.raises(ArchiveError, match=r"XMatch with Gaia DR3 result lacks column.*"
                                           r"source_id \(as Source/source_id\)"):
        xmatch_gaia_dr3([ra0], [dec0], client=fast_client)


def test_mismatched_coordinates_are_refused():
    from gaiarvs_cnn.exceptions import InputDataError

    with pytest.raises(InputDataError, match="2 RA but 1 Dec"):
        xmatch_gaia_dr3([1.0, 2.0], [3.0])


def test_k2gap_without_ids_or_positions_says_what_to_do(archive, fast_client):
    k2 = archive.tables["j/apj/926/191/table2"]
    archive.tables["j/apj/926/191/table2"] = Table(
        {c: k2[c] for c in k2.colnames if c not in ("GaiaDR2", "RAJ2000", "DEJ2000")})
    with pytest.raises(ArchiveError, match="no Gaia id column.*by position"):
        query_k2gap(client=fast_client)


def test_client_import_keeps_stdout_clean():
    """astroquery.xmatch prints a note on import when ``regions`` is missing; the command
    line's stdout must not carry it."""
    import importlib.util
    import os
    import subprocess
    import sys
    from pathlib import Path

    if importlib.util.find_spec("regions") is not None:
        pytest.skip("regions is installed: astroquery prints nothing to hide")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", "from gaiarvs_cnn.archives.xmatch import "
                          "_xmatch_class; print(_xmatch_class().__name__)"],
                         capture_output=True, text=True, env=env, check=True)
    assert out.stdout == "XMatchClass\n"


@pytest.mark.parametrize("mode", ["endless", "trickle"])
def test_the_request_is_bounded_like_every_archive_request(archive, sky, mode):
    """astroquery sends on the client's session: an endless answer stops at the byte
    limit (final), a trickling one at the request deadline."""
    from gaiarvs_cnn.archives.http import HTTPClient

    ra0, dec0 = _position(archive, sky[0])
    archive.fail("/xmatch/api/v1/sync", mode, times=1, when="'xmatch'")
    client = HTTPClient(timeout=10, retries=0, deadline=1.5, max_bytes=2 ** 20)
    pattern = "than the limit of 1048576 bytes" if mode == "endless" else "deadline of 1.5 s"
    with pytest.raises(ArchiveError, match=pattern):
        xmatch_gaia_dr3([ra0], [dec0], client=client)
