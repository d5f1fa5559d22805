"""Inputs the network does not use are never required (issue 24): an RVS-only bundle trains
on stars without photometry or XP (fixture ``tiny_rvs_only_bundle``) and ``predict``
parameterises every star of a store without them."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from gaiarvs_cnn.catalog import read_catalog
from gaiarvs_cnn.cli import main
from gaiarvs_cnn.constants import PHOT_INPUTS
from gaiarvs_cnn.io import CORE_COLUMNS, Store, atomic_store

N_STARS = 40


@pytest.fixture(scope="module")
def rvs_only_store(tiny_observed_store, tmp_path_factory):
    """The first 40 tiny observed stars with photometry, parallax and XP removed (NaN)."""
    with Store.open(tiny_observed_store) as store:
        batch = store.read(0, N_STARS, columns=[c.name for c in CORE_COLUMNS])
    for col in (*PHOT_INPUTS, "bp_coefficients", "rp_coefficients"):
        batch[col] = np.full_like(batch[col], np.nan)
    path = tmp_path_factory.mktemp("rvs_only_store") / "rvs_only.h5"
    with atomic_store(path) as store:
        store.append(batch)
    return path


def test_rvs_only_bundle_trained_without_photometry_or_xp(tiny_rvs_only_bundle):
    from gaiarvs_cnn.model import ModelBundle

    bundle = ModelBundle.load(tiny_rvs_only_bundle)
    assert bundle.config.inputs == ("rvs",)
    # the scalers of the unused branches are not fitted (identity); no training G/parallax
    assert np.all(bundle.scalers.phot.minimum == 0) and np.all(bundle.scalers.xp.maximum == 1)
    assert np.isnan(bundle.ranges["parallax"]).all()
    assert bundle.ranges["teff"][0] < bundle.ranges["teff"][1]


def test_rvs_only_bundle_predicts_every_star_of_a_store_without_photometry(
        rvs_only_store, tiny_rvs_only_bundle, tmp_path):
    out = tmp_path / "cat.fits"
    result = CliRunner().invoke(main, ["predict", "--store", str(rvs_only_store), "--model",
                                       str(tiny_rvs_only_bundle), "--out", str(out),
                                       "--format", "fits", "--quiet"])
    assert result.exit_code == 0, result.output
    table = read_catalog(out)
    with Store.open(rvs_only_store) as store:
        assert table["source_id"].tolist() == store.source_ids().tolist()
    assert len(table) == N_STARS
    assert np.isfinite(np.asarray(table["teff"], dtype=float)).all()
    provenance = str(table.meta)                  # the input cuts of the RVS-only network
    assert "plausible RVS flux" in provenance and "XP coefficients" not in provenance
    # G and parallax are unknown: their flag digits say "outside the training range"
    assert all(flag[5:7] == "11" for flag in table["flag_boundary"])


def test_full_bundle_on_the_same_store_names_the_cuts_it_needs(rvs_only_store, tiny_bundle,
                                                               tmp_path):
    result = CliRunner().invoke(main, ["predict", "--store", str(rvs_only_store), "--model",
                                       str(tiny_bundle), "--out", str(tmp_path / "cat.fits"),
                                       "--format", "fits", "--quiet"])
    assert result.exit_code == 1
    assert "passed the input cuts" in result.output
    assert "XP coefficients, G, BP, RP, parallax" in result.output
