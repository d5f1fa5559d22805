"""Tests of gaiarvs_cnn.flags: the eight flag_boundary digits and the t-SNE classification.

Out-of-range stars are constructed with the simulator (hot Paschen-line stars, TiO M
giants) or by setting G / parallax / labels beyond the training ranges; the t-SNE tests
use the tiny session reference of tests/conftest.py (300 training spectra).
"""
import json

import numpy as np
import pytest

from gaiarvs_cnn import conf
from gaiarvs_cnn.constants import LABELS, PAPER_TRAINING_RANGES, RVS_NPIX
from gaiarvs_cnn.exceptions import InputDataError, ModelBundleError
from gaiarvs_cnn.flags import (
    FLAG_POSITIONS,
    GOOD_FLAG,
    TSNEReference,
    decode_flag,
    estimate_noise,
    flag_boundary,
    joint_training_like,
)
from gaiarvs_cnn.simulate.survey import simulate_batch

RANGES = PAPER_TRAINING_RANGES
HOT, M_GIANT = 3, 4


def inside_star_values(n):
    """Labels, G and parallax in the middle of every training range."""
    mid = {k: np.full(n, 0.5 * (lo + hi)) for k, (lo, hi) in RANGES.items()}
    pred = {k: mid[k].astype(np.float32) for k in LABELS}
    batch = {"phot_g_mean_mag": mid["phot_g_mean_mag"], "parallax": mid["parallax"]}
    return pred, batch


@pytest.fixture(scope="module")
def reference(tiny_tsne_reference):
    return TSNEReference.load(tiny_tsne_reference)


@pytest.fixture(scope="module")
def odd_stars():
    """Strong-featured out-of-range stars: Paschen-line stars > 7800 K, TiO giants < 3300 K."""
    batch = simulate_batch(80, seed=22, kind="out-of-range")
    teff = batch["true_labels"][:, 0]
    keep = ((batch["population"] == HOT) & (teff > 7800)) | (
        (batch["population"] == M_GIANT) & (teff < 3300))
    return batch[keep]


@pytest.fixture(scope="module")
def thin_disc_stars():
    batch = simulate_batch(120, seed=21, kind="observed")
    return batch[batch["population"] == 0]


# -- digits 1-7: ranges ---------------------------------------------------------------
def test_star_inside_every_range_and_training_like_gets_all_zeros():
    pred, batch = inside_star_values(3)
    assert flag_boundary(pred, batch, RANGES, np.ones(3, bool)).tolist() == [GOOD_FLAG] * 3


@pytest.mark.parametrize("position", range(7))
def test_each_quantity_beyond_its_range_sets_only_its_digit(position):
    name = FLAG_POSITIONS[position]
    pred, batch = inside_star_values(4)
    lo, hi = RANGES[name]
    target = pred if name in LABELS else batch
    target[name] = np.array([lo - 0.01 * abs(lo) - 0.01, hi + 0.01 * abs(hi) + 0.01, lo, hi])
    flags = flag_boundary(pred, batch, RANGES, np.ones(4, bool))
    expected = GOOD_FLAG[:position] + "1" + GOOD_FLAG[position + 1:]
    # below, above: flagged; exactly on the limits: inside (ranges are inclusive)
    assert flags.tolist() == [expected, expected, GOOD_FLAG, GOOD_FLAG]


def test_extreme_parallax_and_faint_g_set_digits_6_and_7():
    pred, batch = inside_star_values(3)
    batch["parallax"] = np.array([25.0, 0.01, 3.0])        # mas: very near, very far, fine
    batch["phot_g_mean_mag"] = np.array([12.0, 16.5, 7.5])  # mag: fine, too faint, too bright
    flags = flag_boundary(pred, batch, RANGES, np.ones(3, bool))
    assert flags.tolist() == ["00000010", "00000110", "00000100"]


def test_missing_value_counts_as_outside_and_tsne_digit_is_last():
    pred, batch = inside_star_values(2)
    pred["alpham"][0] = np.nan
    flags = flag_boundary(pred, batch, RANGES, np.array([True, False]))
    assert flags.tolist() == ["00010000", "00000001"]
    assert flags.dtype == np.dtype("<U8")


def test_missing_range_is_an_input_error():
    pred, batch = inside_star_values(1)
    ranges = {k: v for k, v in RANGES.items() if k != "parallax"}
    with pytest.raises(InputDataError, match="parallax"):
        flag_boundary(pred, batch, ranges, np.ones(1, bool))


def test_decode_flag_round_trip_and_malformed_flags():
    decoded = decode_flag(["10000001", "00000110"])
    assert decoded["teff"].tolist() == [True, False]
    assert decoded["parallax"].tolist() == [False, True]
    assert decoded["tsne"].tolist() == [True, False]
    with pytest.raises(InputDataError, match="Malformed"):
        decode_flag(["1000001"])


# -- digit 8: t-SNE -------------------------------------------------------------------
def test_hot_paschen_stars_and_m_giants_are_not_training_like(reference, odd_stars):
    assert {HOT, M_GIANT} <= set(np.unique(odd_stars["population"]).tolist())
    assert len(odd_stars) >= 20
    with conf.set_temp("threads", 1):
        like = reference.training_like(odd_stars["flux"])
    assert not like.any()


def test_ordinary_thin_disc_stars_are_training_like(reference, thin_disc_stars):
    with conf.set_temp("threads", 1):
        like = reference.training_like(thin_disc_stars["flux"])
    assert like.mean() >= 0.85


def test_out_of_range_stars_get_the_right_digits(reference, odd_stars):
    """With their true labels as predictions: Teff and t-SNE digits always set, and every
    digit equal to the star's own position against its training range."""
    pred = {k: odd_stars["true_labels"][:, j] for j, k in enumerate(LABELS)}
    with conf.set_temp("threads", 1):
        like = reference.training_like(odd_stars["flux"])
    flags = flag_boundary(pred, odd_stars, RANGES, like)
    for i, flag in enumerate(flags.tolist()):
        values = [pred[k][i] for k in LABELS] + [odd_stars["phot_g_mean_mag"][i],
                                                 odd_stars["parallax"][i]]
        expected = "".join("0" if RANGES[name][0] <= v <= RANGES[name][1] else "1"
                           for name, v in zip(FLAG_POSITIONS[:7], values)) + "1"
        assert flag == expected
        assert flag[0] == "1" and flag[7] == "1"
    decoded = decode_flag(flags)
    giants = odd_stars["population"] == M_GIANT
    assert decoded["logg"][giants].any()               # some TiO giants below log g 0.58
    assert not decoded["logg"][~giants].any()          # hot dwarfs: log g inside


def test_all_nan_spectrum_is_not_training_like(reference, thin_disc_stars):
    flux = thin_disc_stars["flux"][:3].copy()
    flux[1] = np.nan
    with conf.set_temp("threads", 1):
        assert reference.training_like(flux)[1] == np.False_


def test_reference_save_load_round_trip_gives_same_classification(reference, tmp_path,
                                                                  thin_disc_stars):
    path = reference.save(tmp_path / "tsne")
    again = TSNEReference.load(path)
    assert again.perplexities == reference.perplexities
    assert again.map_threshold == reference.map_threshold
    flux = thin_disc_stars["flux"][:20]
    with conf.set_temp("threads", 1):
        np.testing.assert_array_equal(again.training_like(flux), reference.training_like(flux))
    assert sum(f.stat().st_size for f in path.iterdir()) < 400_000


def test_classification_is_repeatable_call_after_call(reference, odd_stars, thin_disc_stars):
    flux = np.concatenate([thin_disc_stars["flux"][:10], odd_stars["flux"][:5]])
    with conf.set_temp("threads", 1):
        first = reference.classify(flux)
        reference.training_like(flux[::-1])
        second = reference.classify(flux)
    np.testing.assert_array_equal(first["map_distance_5"], second["map_distance_5"])


def test_load_refuses_missing_or_unknown_version(reference, tmp_path):
    with pytest.raises(ModelBundleError, match="Rebuild"):
        TSNEReference.load(tmp_path / "nothing")
    path = reference.save(tmp_path / "tsne")
    manifest = json.loads((path / "tsne_reference.json").read_text())
    manifest["format_version"] = 99
    (path / "tsne_reference.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelBundleError, match="version 99"):
        TSNEReference.load(path)


def test_fit_needs_more_spectra_than_three_times_the_perplexity():
    flux = np.ones((50, RVS_NPIX), np.float32)
    with pytest.raises(InputDataError, match="more than 3 x the largest perplexity"):
        TSNEReference.fit(flux, perplexities=(30,))


def test_joint_embedding_separates_paschen_and_tio_stars(tiny_training_store, odd_stars,
                                                       thin_disc_stars):
    from gaiarvs_cnn.io.store import Store

    with Store.open(tiny_training_store) as store:
        train = store.read(columns=["flux"])["flux"]
    flux = np.concatenate([thin_disc_stars["flux"], odd_stars["flux"]])
    with conf.set_temp("threads", 1):
        like = joint_training_like(train, flux, perplexities=(5, 10), n_pca=10,
                                   n_iter=(50, 100))
    n = len(thin_disc_stars)
    assert like[:n].mean() >= 0.8
    assert like[n:].mean() <= 0.1


def test_estimate_noise_recovers_white_noise_on_a_line_spectrum():
    rng = np.random.default_rng(1)
    wl = np.linspace(846, 870, RVS_NPIX)
    clean = 1 - 0.6 * np.exp(-0.5 * ((wl - 854.2) / 0.08) ** 2)
    noisy = clean + rng.normal(0, 0.02, (5, RVS_NPIX))
    np.testing.assert_allclose(estimate_noise(noisy), 0.02, rtol=0.06)


_FIT_SCRIPT = """
import sys, numpy as np
from gaiarvs_cnn import conf
from gaiarvs_cnn.flags import TSNEReference
a = np.load(sys.argv[1])
with conf.set_temp("threads", 1):
    ref = TSNEReference.fit(a["train"], perplexities=(5, 10), n_pca=10, seed=0, n_iter=(20, 30))
    d = ref.classify(a["obs"])
np.savez(sys.argv[2], pca=ref.train_pca, components=ref.pca_components, map_5=ref.maps[5.0],
         map_10=ref.maps[10.0], like=d["training_like"], position_10=d["position_10"],
         pca_distance=d["pca_distance"])
"""


def test_fit_and_classification_do_not_depend_on_the_cpu_kernels(tmp_path):
    """The same spectra give bit-identical maps and classes with another CPU's kernels.

    The subprocess runs with OpenBLAS's Sandybridge (AVX) kernels instead of the ones this
    CPU selects and with numpy's best SIMD dispatch targets disabled: what an AVX2 (or
    older) machine computes. Before the float64 projection, the exact neighbour distances
    and the initialisation from the PCs, the maps differed (the figure test's map was
    rotated on an Intel AVX-512 machine).
    """
    import os
    import subprocess
    import sys

    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    disable = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
    if not disable:
        pytest.skip("numpy has no SIMD dispatch target to disable on this CPU")
    spectra = tmp_path / "spectra.npz"
    train = simulate_batch(120, seed=41, kind="training")["flux"]
    obs = np.concatenate([simulate_batch(30, seed=42, kind="observed")["flux"],
                          simulate_batch(10, seed=43, kind="out-of-range")["flux"]])
    np.savez(spectra, train=train, obs=obs)
    env = dict(os.environ, OPENBLAS_CORETYPE="Sandybridge",
               NPY_DISABLE_CPU_FEATURES=" ".join(disable))
    subprocess.run([sys.executable, "-c", _FIT_SCRIPT, str(spectra), str(tmp_path / "other.npz")],
                   env=env, check=True, capture_output=True)
    other = np.load(tmp_path / "other.npz")
    with conf.set_temp("threads", 1):
        ref = TSNEReference.fit(train, perplexities=(5, 10), n_pca=10, seed=0, n_iter=(20, 30))
        details = ref.classify(obs)
    here = {"pca": ref.train_pca, "components": ref.pca_components, "map_5": ref.maps[5.0],
            "map_10": ref.maps[10.0], "like": details["training_like"],
            "position_10": details["position_10"], "pca_distance": details["pca_distance"]}
    for key, value in here.items():
        assert np.array_equal(other[key], value), key


def test_a_reference_holding_an_object_array_is_refused_not_unpickled(reference, tmp_path):
    path = reference.save(tmp_path / "tsne")
    arrays = dict(np.load(path / "tsne_reference.npz"))
    arrays["pca_mean"] = np.array([{"x": 1}], dtype=object)
    np.savez(path / "tsne_reference.npz", **arrays)
    with pytest.raises(ModelBundleError, match="Cannot read the t-SNE reference"):
        TSNEReference.load(path)
