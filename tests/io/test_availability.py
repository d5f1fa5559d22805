"""Inputs the network does not use are never required (issue 24): per-branch availability,
and ``store ingest`` keeps stars without XP or photometry and says which networks can use
them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner

from gaiarvs_cnn.cli import main
from gaiarvs_cnn.constants import PHOT_INPUTS
from gaiarvs_cnn.io.availability import input_availability, network_coverage
from gaiarvs_cnn.io.ingest import ingest_to_store
from gaiarvs_cnn.io.store import Store
from gaiarvs_cnn.simulate.survey import simulate_batch

DATA = Path(__file__).parents[1] / "data" / "gaia_real"
KOI, HD, S863 = 2131314401800665344, 4268620287278693120, 863983115982280448
RVS_FILES = [DATA / "rvs_datalink_csv" / "KOI-001.csv",
             DATA / "rvs_datalink_fits" / "RVS-Gaia DR3 863983115982280448.fits",
             DATA / "rvs_datalink_csv" / "HD176650.csv"]


def _mixed_batch():
    """Four simulated stars: full; without XP; without parallax; with an absurd spectrum."""
    batch = simulate_batch(4, seed=3, kind="calibration", snr=50.0)
    for col in ("bp_coefficients", "rp_coefficients"):
        values = batch[col].copy()
        values[1] = np.nan
        batch[col] = values
    plx = batch["parallax"].copy()
    plx[2] = np.nan
    batch["parallax"] = plx
    flux = batch["flux"].copy()
    flux[3] = 50.0                       # not a normalised spectrum
    batch["flux"] = flux
    return batch


def test_input_availability_per_branch():
    have = input_availability(_mixed_batch())
    assert have["rvs"].tolist() == [True, True, True, False]
    assert have["phot"].tolist() == [True, True, False, True]
    assert have["xp"].tolist() == [True, False, True, True]
    only = input_availability(_mixed_batch(), ("phot",))
    assert list(only) == ["phot"]
    assert network_coverage(_mixed_batch()) == {"rvs+phot+xp": 1, "rvs+phot": 2,
                                                "rvs+xp": 2, "rvs": 3}


def _gaia_source_rows(ids):
    """The real gaia_source VOTable rows (astroquery test data), re-labelled with ``ids``."""
    table = Table.read(DATA / "astroquery_gaia" / "1710099405832VAL-result.vot")
    table = table[[0, 1, 1][:len(ids)]]
    table["SOURCE_ID"] = ids
    return table


@pytest.mark.filterwarnings("ignore::astropy.io.votable.exceptions.W50")
def test_ingest_of_rvs_and_gaia_source_without_xp_writes_every_star(tmp_path):
    out = ingest_to_store(RVS_FILES, [], tmp_path / "noxp.h5",
                          gaia_source=_gaia_source_rows([KOI, S863, HD]), on_error="raise")
    with Store.open(out) as store:
        batch = store.read()
        meta = store.meta
    assert batch["source_id"].tolist() == [KOI, S863, HD]
    assert np.isnan(batch["bp_coefficients"]).all() and np.isnan(batch["rp_coefficients"]).all()
    for col in PHOT_INPUTS:
        assert np.isfinite(batch[col]).all(), col
    assert meta["n_skipped"] == 0
    assert meta["network_coverage"] == {"rvs+phot+xp": 0, "rvs+phot": 3, "rvs+xp": 0, "rvs": 3}


@pytest.mark.filterwarnings("ignore::astropy.io.votable.exceptions.W50")
def test_cli_ingest_without_photometry_keeps_stars_and_says_which_networks_can_use_them(
        tmp_path):
    gaia = tmp_path / "gaia_source.vot"
    _gaia_source_rows([KOI]).write(gaia, format="votable")   # one star with photometry
    out = tmp_path / "stars.h5"
    args = ["store", "ingest", "-o", str(out), "--gaia-source", str(gaia)]
    for path in RVS_FILES:
        args += ["--rvs", str(path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "3 stars (0 skipped)" in result.output
    assert ("Usable by networks with inputs: rvs+phot+xp 0, rvs+phot 1, rvs+xp 0, rvs 3"
            in result.output)
    with Store.open(out) as store:
        batch = store.read()
    assert np.isfinite(batch["parallax"]).tolist() == [True, False, False]
