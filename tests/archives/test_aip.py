"""AIP Gaia DR3 mirror adapter (spectra from array-valued TAP tables)."""
from __future__ import annotations

import numpy as np

from gaiarvs_cnn.archives.aip import AIPArchive
from gaiarvs_cnn.archives.gaia import GaiaArchive
from gaiarvs_cnn.io.store import Store


def test_aip_fetch_matches_esa(archive, fast_client, tmp_path):
    from gaiarvs_cnn.archives.http import HTTPClient

    sky = sorted(archive.rvs)
    aip = AIPArchive(client=fast_client, max_ids=3)
    # what `gaiarvs-cnn run --plan` counts (another client reads the capabilities)
    planned = AIPArchive(client=HTTPClient(retries=0), max_ids=3).fetch_requests(len(sky))
    since = len(archive.log)
    report = aip.fetch_to_store(tmp_path / "aip.h5", source_ids=sky, progress=False)
    assert report.ok and report.stored == 4
    assert archive.count("/aip/tap/sync") == 1 + 4  # selection + 2 chunks x 2 products
    assert archive.count("/esa/") == 0
    assert planned == len(archive.log) - since == 1 + 1 + 4   # and the capabilities
    planned = GaiaArchive(client=HTTPClient(retries=0)).fetch_requests(len(sky))
    since = len(archive.log)
    GaiaArchive(client=fast_client).fetch_to_store(tmp_path / "esa.h5", source_ids=sky,
                                                   progress=False)
    # capabilities, one upload, one DataLink chunk x 2 products
    assert planned == len(archive.log) - since == 4
    with Store.open(tmp_path / "aip.h5") as a, Store.open(tmp_path / "esa.h5") as e:
        ba, be = a.read_ids(sky), e.read_ids(sky)
        assert a.meta["fetch_service"] == "aip" and e.meta["fetch_service"] == "esa"
    for col in ("flux", "flux_error", "bp_coefficients", "rp_coefficient_errors", "parallax"):
        np.testing.assert_array_equal(ba[col], be[col])


def test_aip_case_drift_and_missing(archive, fast_client, tmp_path):
    archive.uppercase = True
    report = AIPArchive(client=fast_client).fetch_to_store(
        tmp_path / "aip.h5", source_ids=sorted(archive.rvs)[:2] + [1000000000000000001],
        progress=False)
    assert report.stored == 2
    assert report.missing["RVS"] == [1000000000000000001]
