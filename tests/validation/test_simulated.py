"""Validation on the built-in simulated survey: references from the simulator, injected
offsets recovered, and the parent store regenerated from the catalogue's provenance."""
import json
import warnings

import numpy as np
import pytest
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from click.testing import CliRunner

from gaiarvs_cnn.cli import main
from gaiarvs_cnn.constants import LABELS
from gaiarvs_cnn.io.store import Store
from gaiarvs_cnn.simulate.survey import simulate_store
from gaiarvs_cnn.validation.crossmatch import add_store_columns
from gaiarvs_cnn.validation.precision import cramer_rao_table
from gaiarvs_cnn.validation.runner import simulator_bounds
from gaiarvs_cnn.validation.synthetic import synthetic_catalog

SEED, N = 17, 1500


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    root = tmp_path_factory.mktemp("simvalidate")
    store = simulate_store(root / "obs.h5", N, seed=SEED, kind="observed", progress=False)
    with Store.open(store) as st:
        batch = st.read(columns=["true_labels"])
    truth = Table({"source_id": batch["source_id"]})
    for i, label in enumerate(LABELS):
        truth[f"true_{label}"] = batch["true_labels"][:, i].astype(float)
    cat = synthetic_catalog(truth, seed=18, bias={"logg": 0.03})
    cat.meta["INPUTSEL"] = json.dumps({"source": "simulated", "seed": SEED, "n_stars": N})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        cat.write(root / "cat.fits")
    return {"root": root, "store": store, "cat": cat}


def test_simulated_references_offsets_are_recovered(survey):
    root = survey["root"]
    result = CliRunner().invoke(main, [
        "validate", "--catalog", str(root / "cat.fits"), "--store", str(survey["store"]),
        "--against", "galah", "--against", "seismic", "--source", "simulated",
        "--out", str(root / "report"), "--formats", "none"])
    assert result.exit_code == 0, result.output
    for name in ("galah", "seismic"):
        rec = Table.read(root / "report" / f"{name}_recovery.ecsv")
        assert len(rec) >= 1
        assert np.all(np.abs(rec["pull_offset"]) < 3.5), rec
        assert np.all(np.abs(rec["pull_bias"]) < 3.5), rec
        assert np.all(np.abs(rec["pull_std"]) < 3.5), rec
        assert np.all(rec["std_cnn_ref"] > 0)
    seis = Table.read(root / "report" / "seismic_stats.ecsv")
    row = seis[(seis["label"] == "logg") & (seis["subset"] == "all")][0]
    # CNN log g = truth + 0.03 + N(0, 0.10); seismic log g scatter ~0.009 dex
    assert row["bias"] == pytest.approx(0.03, abs=3.5 * row["e_bias"])
    assert row["sigma_mad"] == pytest.approx(0.10, rel=0.2)


def test_store_regenerated_from_catalogue_provenance(survey):
    root = survey["root"]
    result = CliRunner().invoke(main, [
        "validate", "--catalog", str(root / "cat.fits"), "--against", "bimodality",
        "--out", str(root / "regen"), "--formats", "none"])
    assert result.exit_code == 0, result.output
    grid = Table.read(root / "regen" / "bimodality_grid.ecsv")
    data = add_store_columns(survey["cat"], survey["store"])
    snr, logg = np.asarray(data["rvs_snr"]), np.asarray(data["logg"])
    good = np.asarray(data["flag_boundary"]) == "00000000"
    assert grid["n_bin"][0] == np.sum(good & (logg < 2.2) & (snr >= 15) & (snr <= 25))


def test_cramer_rao_ratio_on_the_simulator(survey):
    data = add_store_columns(survey["cat"], survey["store"])
    cr = cramer_rao_table(data, simulator_bounds(), max_stars=20)
    assert list(cr["label"]) == list(LABELS)
    for name in ("free", "conditional", "simulator"):
        assert np.all(cr[f"bound_{name}"] > 0)
        np.testing.assert_allclose(cr[f"ratio_{name}"],
                                   cr["precision_std"] / cr[f"bound_{name}"])
    # the bound with the other labels known is never larger than the marginal one
    assert np.all(cr["bound_conditional"] <= cr["bound_free"] * (1 + 1e-9))
    # tying [Fe/H] to [M/H] and [alpha/M] removes their near-degeneracy
    mh = list(cr["label"]).index("mh")
    assert cr["bound_simulator"][mh] < cr["bound_free"][mh]


def test_shard_manifest_gives_the_same_reference_and_columns(survey, tmp_path):
    from gaiarvs_cnn.io.shards import shard_store
    from gaiarvs_cnn.validation.references import get_reference

    manifest = shard_store(survey["store"], tmp_path / "shards", stars_per_shard=600)
    whole = get_reference("galah", "simulated", store=survey["store"], seed=3)
    sharded = get_reference("galah", "simulated", store=manifest, seed=3)
    assert len(whole) > 0
    for name in ("source_id", "teff", "alpham", "snr_c3_iraf"):
        np.testing.assert_array_equal(whole[name], sharded[name])
    a = add_store_columns(survey["cat"], survey["store"])
    b = add_store_columns(survey["cat"], manifest)
    for name in ("source_id", "rvs_snr", "parallax", "true_mh"):
        np.testing.assert_array_equal(a[name], b[name])
