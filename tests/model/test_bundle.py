"""Tests of gaiarvs_cnn.model: config, network, bundle I/O and checks, prediction, bad input.

Bundles here are built from *untrained* members (seeded initial weights) written with
`ModelBundle.write`, so every check is exact and fast; training is tested in
test_training.py, accuracy in test_accuracy.py and test_demo.py.
"""
import json

import keras
import numpy as np
import pytest
import tables

from gaiarvs_cnn.constants import LABELS, RVS_NPIX
from gaiarvs_cnn.exceptions import BadStarError, InputDataError, ModelBundleError
from gaiarvs_cnn.io.batch import CORE_COLUMNS, StarBatch
from gaiarvs_cnn.io.store import Store
from gaiarvs_cnn.model import (
    FusedEnsemble,
    ModelBundle,
    NetworkConfig,
    build_model,
    output_keys,
    predict_batch,
    predict_store,
)
from gaiarvs_cnn.model.bundle import RANGE_KEYS
from gaiarvs_cnn.model.network import input_shapes
from gaiarvs_cnn.model.predict import grid_slice, prepare_inputs, summarise
from gaiarvs_cnn.model.residuals import ResidualFit, fit_residual_dispersion
from gaiarvs_cnn.model.training import make_splits, member_seed
from gaiarvs_cnn.preprocess import InputScalers
from gaiarvs_cnn.simulate.survey import simulate_batch, simulate_store

TINY = NetworkConfig(conv_filters=(4, 4, 2), pool_after=(1, 2, 3), rvs_dense=8, phot_dense=4,
                     xp_dense=4, head_dense=(8,), jit_compile=False)


def write_untrained_bundle(path, config, batch, n_members=3, residual=0.1):
    """A complete bundle whose members are freshly initialised (seeds 0..n-1)."""
    files = []
    for i in range(n_members):
        keras.utils.set_random_seed(i)
        (path / "members").mkdir(parents=True, exist_ok=True)
        build_model(config).save(path / "members" / f"m{i}.keras")
        files.append(f"members/m{i}.keras")
    scalers = InputScalers.fit(batch)
    ranges = {k: (0.0, 1.0) for k in RANGE_KEYS}
    fits = {k: ResidualFit((residual,), (-1e9, 1e9), residual) for k in LABELS}
    return ModelBundle.write(path, config, scalers, ranges, fits, {"note": "untrained"}, files)


@pytest.fixture(scope="module")
def sim_batch():
    return simulate_batch(160, seed=11, kind="training")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, sim_batch):
    return write_untrained_bundle(tmp_path_factory.mktemp("bundle"), TINY, sim_batch)


# -- config and network -----------------------------------------------------------------
def test_default_config_is_the_paper_network():
    model = build_model(NetworkConfig())
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv1D)]
    assert [c.filters for c in convs] == [32, 16, 8]
    assert {c.kernel_size for c in convs} == {(8,)}
    assert model.get_layer("merge").output.shape[-1] == 224
    assert [model.get_layer(n).units for n in ("head_dense1", "head_dense2", "labels")] == [
        128, 32, 5]
    assert model.get_layer("rvs_dense").units == 128
    assert isinstance(model.get_layer("rvs_pool2"), keras.layers.MaxPooling1D)
    assert "rvs_pool1" not in [la.name for la in model.layers]


def test_rvs_only_variant_needs_no_code_change():
    model = build_model(NetworkConfig(inputs=("rvs",)))
    assert [t.name for t in model.inputs] == ["rvs"]
    assert model.output.shape == (None, 5)


def test_config_json_round_trip_and_validation():
    cfg = NetworkConfig(conv_filters=(8, 8), pool_after=(1,), inputs=("rvs", "xp"))
    assert NetworkConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(InputDataError, match="pool_after"):
        NetworkConfig(conv_filters=(8,), pool_after=(2,))
    with pytest.raises(InputDataError, match="inputs"):
        NetworkConfig(inputs=("rvs", "spectra"))
    with pytest.raises(InputDataError, match="Unknown NetworkConfig field"):
        NetworkConfig.from_dict({"n_filters": 3})


def test_flops_per_star_counts_the_convolutions():
    cfg = NetworkConfig(inputs=("rvs",), conv_filters=(2,), pool_after=(), rvs_dense=1,
                        head_dense=())
    n = RVS_NPIX - 7
    assert cfg.flops_per_star() == 2 * n * 8 * 2 + 2 * n * 2 * 1 + 2 * 1 * 5


# -- splits and seeds ----------------------------------------------------------------------
def test_splits_are_75_25_seeded_and_differ_between_splits():
    a = make_splits(1000, 7, seed=3)
    b = make_splits(1000, 7, seed=3)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert {len(v) for _, v in a} == {250} and {len(t) for t, _ in a} == {750}
    assert not np.array_equal(a[0][1], a[1][1])
    tr, va = a[0]
    assert np.intersect1d(tr, va).size == 0 and len(np.union1d(tr, va)) == 1000
    seeds = {member_seed(3, s, m) for s in range(7) for m in range(4)}
    assert len(seeds) == 28


# -- residual dispersion -----------------------------------------------------------------
def test_residual_fit_recovers_a_linear_dispersion_and_clips():
    rng = np.random.default_rng(2)
    x = rng.uniform(4000, 6000, 20000)
    fit = fit_residual_dispersion(x, rng.normal(0, 40 + 0.02 * (x - 4000)))
    assert fit(4500) == pytest.approx(50, rel=0.1)
    assert fit(5500) == pytest.approx(70, rel=0.1)
    assert fit(1e5) == pytest.approx(fit(fit.domain[1]))
    assert ResidualFit.from_dict(json.loads(json.dumps(fit.to_dict()))) == fit


# -- bundle -----------------------------------------------------------------------------
def test_bundle_attributes(bundle):
    assert bundle.n_members == 3
    assert set(bundle.ranges) == set(RANGE_KEYS)
    assert len(bundle.bundle_id) == 16
    assert bundle.tsne_dir == bundle.path / "tsne"
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    assert set(manifest["versions"]) == {"gaiarvs_cnn", "tensorflow", "keras", "numpy"}
    assert "scalers.json" in manifest["files"] and "members/m0.keras" in manifest["files"]


def _copy_bundle(bundle, tmp_path):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(bundle.path, dst)
    return dst


def test_bundle_from_other_keras_major_is_refused(bundle, tmp_path):
    path = _copy_bundle(bundle, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["versions"]["keras"] = "2.15.0"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelBundleError, match=r"keras 2\.15\.0"):
        ModelBundle.load(path)


def test_bundle_with_modified_file_is_refused(bundle, tmp_path):
    path = _copy_bundle(bundle, tmp_path)
    (path / "scalers.json").write_text((path / "scalers.json").read_text() + " ")
    with pytest.raises(ModelBundleError, match="scalers.json differs from the checksum"):
        ModelBundle.load(path)


def test_bundle_member_with_wrong_input_shape_is_refused(bundle, tmp_path, sim_batch):
    path = _copy_bundle(bundle, tmp_path)
    wrong = TINY.replace(n_pixels=2000)
    build_model(wrong).save(path / "members" / "m1.keras")
    manifest = json.loads((path / "manifest.json").read_text())
    from gaiarvs_cnn.utils.checksum import sha256_file as _sha256

    manifest["files"]["members/m1.keras"] = _sha256(path / "members" / "m1.keras")
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelBundleError, match="m1.keras has inputs"):
        ModelBundle.load(path)


def test_unfinished_bundle_is_refused(tmp_path):
    (tmp_path / "members").mkdir()
    with pytest.raises(ModelBundleError, match="manifest"):
        ModelBundle.load(tmp_path)


# -- prediction -------------------------------------------------------------------------
def test_predict_batch_keys_and_members_mean_in_physical_units(bundle, sim_batch):
    pred = predict_batch(bundle, sim_batch)
    assert list(pred) == output_keys(LABELS)
    assert all(pred[k].dtype == np.float32 for k in pred if k != "source_id")
    np.testing.assert_array_equal(pred["source_id"], sim_batch["source_id"])
    inputs = prepare_inputs(bundle, sim_batch)
    each = np.stack([m.predict(inputs, verbose=0) for m in bundle.members]).astype(float)
    lab = bundle.scalers.labels
    physical = each * lab.range + lab.minimum
    np.testing.assert_allclose(pred["teff"], physical[..., 0].mean(0), rtol=1e-5)
    np.testing.assert_allclose(pred["emh"], physical[..., 2].std(0, ddof=1), rtol=1e-3,
                               atol=1e-6)


def test_uncertainties_are_unscaled_with_the_label_range(bundle):
    """A scaled spread of 0.01 is 0.01 x (Teff max - min) K, not 0.01 K (peer-tool bug)."""
    stacked = np.zeros((4, 1, 5), dtype=np.float32)
    stacked[:, 0, :] = np.array([0.49, 0.49, 0.51, 0.51])[:, None]
    out = summarise(bundle, stacked, np.array([7]))
    spread = np.std([0.49, 0.49, 0.51, 0.51], ddof=1)
    teff_range = bundle.scalers.labels.maximum[0] - bundle.scalers.labels.minimum[0]
    assert teff_range > 1000
    assert out["eteff"][0] == pytest.approx(spread * teff_range, rel=1e-5)
    assert out["sigma_teff"][0] == pytest.approx(np.hypot(spread * teff_range, 0.1), rel=1e-5)
    assert out["teff"][0] == pytest.approx(bundle.scalers.labels.minimum[0] + 0.5 * teff_range,
                                           rel=1e-6)


def test_fused_ensemble_equals_member_loop(bundle, sim_batch):
    inputs = prepare_inputs(bundle, sim_batch)
    ensemble = FusedEnsemble(bundle.members, bundle.config, batch_size=64)
    assert ensemble.n_raw == bundle.n_members  # every member as raw tf.nn operations
    fused = ensemble(inputs)
    loop = np.stack([m.predict(inputs, verbose=0) for m in bundle.members])
    np.testing.assert_allclose(fused, loop, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("config", [NetworkConfig(), NetworkConfig(inputs=("rvs",)),
                                    TINY.replace(inputs=("xp", "phot"))],
                         ids=["paper", "rvs-only", "no-rvs"])
def test_raw_member_graph_equals_keras_model(config):
    keras.utils.set_random_seed(3)
    members = [build_model(config) for _ in range(2)]
    rng = np.random.default_rng(1)
    inputs = {k: rng.random((5, *s), dtype=np.float32) for k, s in input_shapes(config).items()}
    ensemble = FusedEnsemble(members, config, batch_size=4)
    assert ensemble.n_raw == 2
    loop = np.stack([m.predict(inputs, verbose=0) for m in members])
    np.testing.assert_allclose(ensemble(inputs), loop, rtol=1e-5, atol=1e-6)


def test_bfloat16_prediction_is_close_to_float32_but_not_the_same_arithmetic(bundle,
                                                                              sim_batch):
    inputs = prepare_inputs(bundle, sim_batch)
    f32 = FusedEnsemble(bundle.members, bundle.config, batch_size=64)(inputs)
    b16 = FusedEnsemble(bundle.members, bundle.config, batch_size=64,
                        precision="bfloat16")(inputs)
    assert b16.dtype == np.float32 and b16.shape == f32.shape
    diff = np.abs(b16 - f32)
    assert diff.max() > 0  # really bfloat16 (8-bit mantissa), not float32 again
    # scaled outputs are O(1): bfloat16 rounding (2**-8 relative) stays far below 0.05
    assert diff.max() < 0.05 and np.median(diff) < 0.01
    pred = predict_batch(bundle, sim_batch, precision="bfloat16")
    assert np.isfinite(pred["teff"]).all()


def test_unknown_precision_is_refused_with_the_choices(bundle):
    with pytest.raises(InputDataError, match="float16.*float32.*bfloat16"):
        FusedEnsemble(bundle.members, bundle.config, precision="float16")


def test_fused_ensemble_calls_other_keras_models_as_they_are():
    config = TINY.replace(inputs=("xp",))
    keras.utils.set_random_seed(4)
    inp = keras.Input((config.n_xp,), name="xp")
    other = keras.Model({"xp": inp}, keras.layers.Dense(5, name="labels")(inp))
    members = [build_model(config), other]
    x = {"xp": np.random.default_rng(2).random((3, config.n_xp), dtype=np.float32)}
    ensemble = FusedEnsemble(members, config)
    assert ensemble.n_raw == 1
    np.testing.assert_allclose(ensemble(x)[1], other.predict(x, verbose=0), rtol=1e-5,
                               atol=1e-6)


def test_predict_store_streams_chunks_equal_to_batch(bundle, tmp_path, sim_batch):
    path = simulate_store(tmp_path / "obs.h5", 90, seed=5, kind="observed")
    chunks = list(predict_store(bundle, path, chunk_size=40))
    assert [len(c["source_id"]) for c in chunks] == [40, 40, 10]
    with Store.open(path) as store:
        whole = predict_batch(bundle, store.read())
    np.testing.assert_allclose(np.concatenate([c["logg"] for c in chunks]), whole["logg"],
                               rtol=1e-5)
    part = list(predict_store(bundle, path, chunk_size=40, start=50, stop=70))
    np.testing.assert_array_equal(part[0]["source_id"], whole["source_id"][50:70])


# -- input grid ------------------------------------------------------------------------
def test_model_on_a_cropped_grid_reads_the_matching_pixels(tmp_path, sim_batch):
    cfg = TINY.replace(wave_start_nm=847.0, n_pixels=2201)
    assert grid_slice(cfg) == slice(100, 2301)
    b = write_untrained_bundle(tmp_path / "crop", cfg, sim_batch, n_members=1)
    assert prepare_inputs(b, sim_batch)["rvs"].shape == (len(sim_batch), 2201, 1)
    assert np.isfinite(predict_batch(b, sim_batch)["teff"]).all()


def test_model_grid_off_the_rvs_grid_is_refused():
    with pytest.raises(InputDataError, match="not part of the Gaia DR3 RVS grid"):
        grid_slice(TINY.replace(wave_start_nm=846.005))
    with pytest.raises(InputDataError, match="not part of the Gaia DR3 RVS grid"):
        grid_slice(TINY.replace(wave_step_nm=0.02))


def test_flux_with_other_pixel_count_is_refused(bundle, sim_batch):
    data = {k: v for k, v in sim_batch[:3].items()}
    data["flux"] = data["flux"][:, :2400]
    with pytest.raises(InputDataError, match=r"shape \(3, 2400\)"):
        predict_batch(bundle, data)


# -- bad input -------------------------------------------------------------------------
def test_non_finite_parallax_names_the_star(bundle, sim_batch):
    bad = sim_batch[:5]
    bad["parallax"] = np.where(np.arange(5) == 3, np.inf, bad["parallax"])
    with pytest.raises(BadStarError, match=str(bad["source_id"][3])):
        predict_batch(bundle, bad)


def test_batch_missing_a_column_is_named(bundle, sim_batch):
    specs = [s for s in CORE_COLUMNS if s.name != "rp_coefficients"]
    batch = StarBatch({k: v for k, v in sim_batch[:4].items() if k in {s.name for s in specs}},
                      specs)
    with pytest.raises(InputDataError, match="rp_coefficients"):
        predict_batch(bundle, batch)


def test_store_missing_a_column_is_refused_before_any_output(bundle, tmp_path):
    # A store of the current layout whose column specifications lack one input column
    # (as written by a foreign or damaged writer).
    path = tmp_path / "partial.h5"
    Store.create(path).close()
    with tables.open_file(str(path), "a") as h5:
        tab = h5.get_node("/stars")
        specs = [s for s in CORE_COLUMNS if s.name != "phot_bp_mean_mag"]
        tab.attrs.column_specs = json.dumps([s.to_dict() for s in specs])
    with pytest.raises(InputDataError, match="phot_bp_mean_mag"):
        next(predict_store(bundle, path))


# -- gradients ---------------------------------------------------------------------------
def test_gradients_match_finite_differences_in_physical_units(bundle, sim_batch):
    from gaiarvs_cnn.model import label_gradients

    star = sim_batch[:1]
    maps = label_gradients(bundle, star)
    assert maps.rvs.shape == (5, RVS_NPIX) and maps.xp.shape == (5, 110)
    assert maps.wavelength_nm[0] == pytest.approx(846.0)
    i = int(np.argmax(np.abs(maps.rvs[0])))
    h = 2e-3
    up, down = star[:1], star[:1]
    up["flux"] = star["flux"] + h * (np.arange(RVS_NPIX) == i)
    down["flux"] = star["flux"] - h * (np.arange(RVS_NPIX) == i)
    fd = (predict_batch(bundle, up)["teff"] - predict_batch(bundle, down)["teff"]) / (2 * h)
    assert fd[0] == pytest.approx(maps.rvs[0, i], rel=0.05)
    # XP: d teff / d (bp_1 / bp_0), the normalised second BP coefficient
    j = 1
    up, down = star[:1], star[:1]
    dx = 1e-3 * star["bp_coefficients"][0, 0]
    up["bp_coefficients"] = star["bp_coefficients"] + dx * (np.arange(55) == j)
    down["bp_coefficients"] = star["bp_coefficients"] - dx * (np.arange(55) == j)
    fd = (predict_batch(bundle, up)["teff"] - predict_batch(bundle, down)["teff"]) / (2e-3)
    assert fd[0] == pytest.approx(maps.xp[0, j], rel=0.05, abs=1e-3 * np.abs(maps.xp[0]).max())


def test_rvs_only_bundle_has_no_xp_gradients(tmp_path, sim_batch):
    from gaiarvs_cnn.model import label_gradients, plot_rvs_gradients

    b = write_untrained_bundle(tmp_path / "rvs", TINY.replace(inputs=("rvs",)), sim_batch,
                               n_members=1)
    maps = label_gradients(b, sim_batch[:4])
    assert maps.xp is None and maps.rvs.shape == (5, RVS_NPIX)
    b2 = write_untrained_bundle(tmp_path / "xp", TINY.replace(inputs=("xp",)), sim_batch,
                                n_members=1)
    with pytest.raises(InputDataError, match="no RVS input"):
        plot_rvs_gradients(label_gradients(b2, sim_batch[:4]))


def test_xp_label_correlation_matches_numpy_and_skips_unusable_stars(sim_batch):
    from gaiarvs_cnn.model import xp_label_correlation
    from gaiarvs_cnn.preprocess import normalise_xp

    batch = sim_batch[:60]
    batch["labels"][3, 1] = np.nan  # no logg: left out
    batch["bp_coefficients"][7, 0] = 0.0  # no usable XP spectrum: left out
    corr = xp_label_correlation(batch, labels=("teff", "logg"))
    assert corr.shape == (2, 110)
    keep = np.setdiff1d(np.arange(60), [3, 7])
    xp = normalise_xp(batch["bp_coefficients"][keep], batch["rp_coefficients"][keep])
    for j in (2, 30, 57, 109):
        expected = np.corrcoef(batch["labels"][keep, 0], xp[:, j])[0, 1]
        assert corr[0, j] == pytest.approx(expected, abs=1e-9)
    assert np.isnan(corr[:, [0, 55]]).all()  # first coefficients are 1 after normalisation
    with pytest.raises(InputDataError, match=">= 3 stars"):
        xp_label_correlation(sim_batch[:2])
