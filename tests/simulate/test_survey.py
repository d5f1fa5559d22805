"""Tests of the simulated Gaia-RVS survey (gaiarvs_cnn.simulate.survey): physics in numbers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gaiarvs_cnn.constants import LABELS, PAPER_TRAINING_RANGES, RVS_NPIX, XP_NCOEFF
from gaiarvs_cnn.exceptions import InputDataError
from gaiarvs_cnn.io.batch import CORE_COLUMNS
from gaiarvs_cnn.io.reference import REFERENCE_KINDS
from gaiarvs_cnn.io.store import Store
from gaiarvs_cnn.preprocess import continuum_mask
from gaiarvs_cnn.simulate import realism
from gaiarvs_cnn.simulate.calibrate import fit_line_strengths
from gaiarvs_cnn.simulate.spectra import load_linelist
from gaiarvs_cnn.simulate.survey import (
    SIM_EXTRA_COLUMNS,
    LogUniformSNR,
    SpectrumModel,
    cramer_rao_bound,
    forward,
    jacobian,
    reference_catalog,
    simulate_batch,
    simulate_store,
)

DATA = Path(__file__).parents[1] / "data"
WL = 846.0 + 0.01 * np.arange(RVS_NPIX)


@pytest.fixture(scope="module")
def model():
    return SpectrumModel()


@pytest.fixture(scope="module")
def observed():
    return simulate_batch(3000, seed=11, kind="observed")


@pytest.fixture(scope="module")
def training():
    return simulate_batch(1500, seed=12, kind="training")


def _labels(teff, logg, mh, alpham=0.0, feh=None):
    return [teff, logg, mh, alpham, mh - 0.1 * alpham if feh is None else feh]


# -- columns, determinism, cuts ------------------------------------------------------
@pytest.mark.parametrize("kind", ["training", "observed", "out-of-range"])
def test_batch_has_every_store_column_with_its_shape(kind):
    b = simulate_batch(12, seed=3, kind=kind)
    for spec in (*CORE_COLUMNS, *SIM_EXTRA_COLUMNS):
        assert b[spec.name].shape == (12, *spec.shape), spec.name
        assert b[spec.name].dtype == np.dtype(spec.dtype), spec.name
    assert b["flux"].shape == (12, RVS_NPIX)
    assert b["bp_coefficients"].shape == (12, XP_NCOEFF)
    assert np.unique(b["source_id"]).size == 12
    assert np.all(np.isfinite(b["bp_coefficients"])) and np.all(np.isfinite(b["parallax"]))
    assert np.isfinite(b["labels"]).all() == (kind == "training")


def test_same_seed_same_stars_other_seed_other_stars():
    a = simulate_batch(30, seed=5, kind="observed")
    b = simulate_batch(30, seed=5, kind="observed")
    c = simulate_batch(30, seed=6, kind="observed")
    for name in ("flux", "true_labels", "bp_coefficients", "parallax", "source_id"):
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.allclose(a["true_labels"], c["true_labels"])


def test_training_sample_satisfies_the_paper_cuts(training):
    b = training
    assert b["rvs_snr"].min() >= 30.0
    assert np.all(b["parallax_error"] < 0.2 * b["parallax"])
    assert b["ruwe"].max() < 1.4
    for name, (lo, hi) in PAPER_TRAINING_RANGES.items():
        val = b[name] if name in b else b["labels"][:, LABELS.index(name)]
        assert lo <= val.min() and val.max() <= hi, name
    # APOGEE-like labels: truth + errors (teff ~35 K, logg ~0.035 dex)
    pull = (b["labels"] - b["true_labels"]) / b["label_errors"]
    assert np.allclose(pull.std(axis=0), 1.0, atol=0.1)
    assert 25 < np.median(b["label_errors"][:, 0]) < 50
    # giants dominate (paper: 70 % with log g < 3.5)
    assert 0.6 < np.mean(b["labels"][:, 1] < 3.5) < 0.8


def test_training_s_n_below_floor_is_refused():
    with pytest.raises(InputDataError, match="S/N floor"):
        simulate_batch(5, seed=1, kind="training", snr=20.0)
    with pytest.raises(InputDataError, match="Unknown simulation kind"):
        simulate_batch(5, seed=1, kind="galaxy")
    with pytest.raises(InputDataError, match="n must be >= 0"):
        simulate_batch(-1, seed=1)
    assert len(simulate_batch(0, seed=1)) == 0


def test_observed_s_n_and_magnitudes_like_dr3(observed):
    snr, g = observed["rvs_snr"], observed["phot_g_mean_mag"]
    assert snr.min() >= 15.0
    assert 0.27 < np.mean(snr < 25.0) < 0.40          # about one third at 15-25
    inside = np.mean((g >= 9.01) & (g <= 14.21))
    assert 0.90 < inside < 0.99                      # a few % outside the training G range
    # S/N anti-correlates with magnitude
    assert np.corrcoef(g, np.log(snr))[0, 1] < -0.6
    # a few % of out-of-range stars and cluster members
    pop = observed["population"]
    assert 0.01 < np.mean(np.isin(pop, (3, 4))) < 0.05
    assert 0.005 < np.mean(pop == 5) < 0.04


def test_label_distribution_has_two_alpha_sequences(observed):
    tl = observed["true_labels"]
    sel = (tl[:, 2] > -0.7) & (tl[:, 2] < -0.2) & (observed["population"] < 2)
    hist, edges = np.histogram(tl[sel, 3], bins=np.arange(-0.1, 0.4, 0.025))
    centres = 0.5 * (edges[1:] + edges[:-1])
    low = hist[(centres > -0.02) & (centres < 0.1)].max()
    high = hist[(centres > 0.15) & (centres < 0.3)].max()
    gap = hist[(centres > 0.1) & (centres < 0.15)].min()
    assert gap < 0.4 * min(low, high)
    # metal-poor tail to [M/H] ~ -2.3; [Fe/H] consistent with [M/H] and [alpha/M]
    field = (observed["population"] <= 2) & (tl[:, 2] > -2.4)   # without the very metal-poor
    assert -2.31 <= tl[field, 2].min() < -1.9
    assert 0.02 < np.mean(tl[field, 2] < -1) < 0.1
    assert 0.0 < np.mean(tl[:, 2] <= -2.4) < 0.02
    resid = tl[:, 4] - (tl[:, 2] - 0.1 * tl[:, 3])
    assert abs(resid.mean()) < 0.005 and resid.std() < 0.03


def test_parallax_and_g_constrain_logg(training):
    b = training
    abs_g = b["phot_g_mean_mag"] + 5 * np.log10(b["parallax"] / 100.0) - 0.83 * b["a_v"]
    assert np.corrcoef(abs_g, b["true_labels"][:, 1])[0, 1] > 0.85
    # thick disc stars sit higher above the plane
    z = np.abs(b["galactic_Z"])
    assert np.median(z[b["population"] == 1]) > 1.5 * np.median(z[b["population"] == 0])


def test_out_of_range_stars_are_out_of_range():
    b = simulate_batch(200, seed=4, kind="out-of-range")
    tl, pop = b["true_labels"], b["population"]
    assert set(np.unique(pop)) == {2, 3, 4}
    assert tl[pop == 3, 0].min() >= 7000
    assert tl[pop == 4, 0].max() < 3700
    assert tl[pop == 2, 2].max() < -2.4


# -- spectra physics ---------------------------------------------------------------
def test_noise_std_matches_one_over_snr_in_continuum(model):
    b = simulate_batch(200, seed=8, kind="observed", snr=40.0, rv_sigma=0.0)
    clean = model.flux(b["true_labels"])
    cont = continuum_mask()
    resid = (b["flux"] - clean)[:, cont]
    assert np.nanstd(resid) == pytest.approx(1 / 40.0, rel=0.04)
    assert np.nanmedian(b["flux_error"][:, cont]) == pytest.approx(1 / 40.0, rel=0.03)
    # a few NaN pixels at the edges, as in DR3
    nan_frac = np.mean(np.isnan(b["flux"]).any(axis=1))
    assert 0.4 < nan_frac < 0.75
    assert not np.isnan(b["flux"][:, 100:2300]).any()


def test_calcium_triplet_ew_rises_with_metallicity(model):
    mhs = np.array([-2.0, -1.0, -0.5, 0.0, 0.4])
    for teff, logg in ((4750.0, 2.45), (5777.0, 4.44)):
        ew = realism.ca_triplet_ew(model.flux(np.array([_labels(teff, logg, m) for m in mhs])))
        total = ew.sum(axis=1)
        assert np.all(np.diff(total) > 0)
        assert total[3] / total[1] > 1.3          # [M/H] = 0 vs -1


def test_calcium_wings_grow_with_logg(model):
    loggs = np.array([1.5, 2.5, 3.5, 4.5])
    flux = model.flux(np.array([_labels(5000.0, g, 0.0) for g in loggs]))
    dist = np.abs(WL - realism.CA_TRIPLET_NM[1])
    wing = (dist > 0.3) & (dist < 1.2)
    wing_depth = (1 - flux[:, wing]).mean(axis=1)
    assert np.all(np.diff(wing_depth) > 0)
    assert wing_depth[-1] / wing_depth[0] > 1.2
    # ... while the core is deepest in giants
    core = np.abs(WL - realism.CA_TRIPLET_NM[1]) < 0.03
    assert flux[0, core].min() < flux[-1, core].min()


def test_paschen_lines_only_above_7000_k(model):
    teffs = np.array([5000.0, 6000.0, 6400.0, 7000.0, 7500.0, 8500.0])
    labs = np.array([_labels(t, 4.0, 0.0) for t in teffs])
    lines = model.lines
    no_h = SpectrumModel(lines=lines[lines["species"] != "H I"])
    paschen = no_h.flux(labs) - model.flux(labs)          # depth due to the Paschen lines
    depth = paschen.max(axis=1)
    ew = paschen.sum(axis=1) * 0.01                        # nm
    assert np.all(depth[:3] < 0.02) and ew[0] < 1e-4
    assert depth[3] > 0.1 and depth[4] > 0.3 and depth[5] > 0.6
    assert np.all(np.diff(ew) >= 0)
    # the strongest Paschen depression sits at the Paschen 14 line (859.84 nm air)
    sel = np.flatnonzero((WL > 858) & (WL < 862))
    assert abs(WL[sel[np.argmax(paschen[-1, sel])]] - 860.075) < 0.06   # FWHM ~ 0.4 nm


def test_tio_only_in_cool_giants(model):
    band = (WL > 846.1) & (WL < 846.9)                # just red of the 845.1 nm TiO head
    labs = np.array([_labels(3400.0, 0.5, 0.0), _labels(3650.0, 0.8, 0.0),
                     _labels(4200.0, 1.6, 0.0), _labels(4750.0, 2.45, 0.0),
                     _labels(5000.0, 4.6, 0.0)])
    level = np.median(model.flux(labs)[:, band], axis=1)
    assert level[0] < 0.75
    assert level[1] < level[2]
    assert np.all(level[2:] > 0.95)


def test_jacobian_matches_finite_differences(model):
    lab = np.array(_labels(4800.0, 2.6, -0.3, 0.1))
    jac = jacobian(lab)
    assert jac.shape == (RVS_NPIX, 5)
    steps = np.array([20.0, 0.02, 0.02, 0.02, 0.02])
    for i, h in enumerate(steps):
        up, down = lab.copy(), lab.copy()
        up[i] += h
        down[i] -= h
        fd = (forward(up).astype(float) - forward(down).astype(float)) / (2 * h)
        scale = np.abs(fd).max()
        assert scale > 0
        assert np.abs(jac[:, i] - fd).max() < 0.03 * scale, LABELS[i]
    # [Fe/H] moves Fe lines, [alpha/M] moves Ca/Si/Ti lines: independent columns
    assert np.linalg.matrix_rank(jac, tol=1e-6 * np.abs(jac).max()) == 5


def test_cramer_rao_bound_scales_with_snr_and_is_tight_for_giants():
    rc = _labels(4750.0, 2.45, -0.3, 0.1)
    b20, b50 = cramer_rao_bound(rc, 20.0), cramer_rao_bound(rc, 50.0)
    np.testing.assert_allclose(b20 / b50, 2.5, rtol=1e-6)
    assert 30 < b20[0] < 300 and 0.03 < b20[1] < 0.3 and 0.01 < b20[3] < 0.1
    # with [Fe/H] free the spectrum cannot separate [M/H] from [alpha/M]: bounds grow
    free = cramer_rao_bound(rc, 20.0, feh_free=True)
    assert np.all(free >= b20 * 0.999) and free[2] > 5 * b20[2]
    # metal-poor stars have fewer lines: worse [Fe/H] bound
    assert cramer_rao_bound(_labels(4750.0, 2.45, -1.5, 0.3), 20.0)[4] > b20[4]


def test_rv_shift_moves_lines(model):
    lab = np.array([_labels(5777.0, 4.44, 0.0)])
    lag, _ = realism.weak_line_lag(model.flux(lab, np.array([7.0]))[0], model.flux(lab)[0])
    assert lag == 2                                    # 7 km/s = 0.020 nm = 2 px
    lag, _ = realism.weak_line_lag(model.flux(lab, np.array([-12.0]))[0], model.flux(lab)[0])
    assert lag == -3                                   # -12 km/s = -0.034 nm


# -- realism against real Gaia DR3 spectra ------------------------------------------
@pytest.fixture(scope="module")
def real_spectra():
    return realism.load_reference_spectra(DATA)


@pytest.mark.parametrize("name", ["Kepler-93", "Kepler-409", "KOI-001"])
def test_simulated_dwarfs_match_real_spectra(name, real_spectra, model, record_property):
    flux, err = real_spectra[name]                       # re-normalised to the continuum
    teff, logg, mh = realism.REFERENCE_STARS[name][0]
    sim = model.flux(np.array([_labels(teff, logg, mh, 0.0, mh)]))[0]
    rms_in, rms_out = realism.residual_rms(flux, sim)
    ew_real, ew_sim = realism.ca_triplet_ew(flux), realism.ca_triplet_ew(sim)
    lag, peak = realism.weak_line_lag(flux, sim)
    noise = float(np.nanmedian(err))
    record_property("rms_in_ca", rms_in)
    record_property("rms_out_ca", rms_out)
    record_property("ew_ratio", (ew_sim / ew_real).round(3).tolist())
    # residuals approach the noise level (plus a small model error)
    assert rms_out < np.hypot(noise, 0.012) * 1.3
    assert rms_in < np.hypot(noise, 0.02) * 1.3
    # Ca II triplet equivalent widths within 15 % (each line where S/N > 50, else the sum)
    if noise < 0.02:
        np.testing.assert_allclose(ew_sim, ew_real, rtol=0.15)
    else:
        assert ew_sim.sum() == pytest.approx(ew_real.sum(), rel=0.15)
    # the weak-line forest is at the right wavelengths
    assert lag == 0
    assert peak > (0.9 if noise < 0.02 else 0.4)


def test_shipped_line_strengths_are_the_fit_to_the_real_dwarfs():
    """Perturbed Fe I strengths refitted on the three dwarfs return to the shipped values."""
    lines = load_linelist()
    spectra = realism.load_reference_spectra(DATA, renormalise=False)
    names = ["Kepler-93", "Kepler-409", "KOI-001"]
    labs = np.array([_labels(*realism.REFERENCE_STARS[n][0], 0.0) for n in names])
    idx = np.flatnonzero(np.asarray(lines["species"]) == "Fe I")[[0, 4, 8, 17]]
    start = lines.copy()
    start["log_tau0"][idx] += np.array([0.4, -0.4, 0.3, -0.3])
    free = np.zeros(len(lines), bool)
    free[idx] = True
    fitted = fit_line_strengths(start, [spectra[n][0] for n in names],
                                [spectra[n][1] for n in names], labs, free=free,
                                fit_core_depth=False)
    np.testing.assert_allclose(fitted["log_tau0"][idx], lines["log_tau0"][idx], atol=0.03)


def test_simulated_evolved_star_is_close_to_hd176650(real_spectra, model):
    flux, _ = real_spectra["HD176650"]
    teff, logg, mh = realism.REFERENCE_STARS["HD176650"][0]
    sim = model.flux(np.array([_labels(teff, logg, mh, 0.0, mh)]))[0]
    rms_in, rms_out = realism.residual_rms(flux, sim)
    assert rms_out < 0.03 and rms_in < 0.04
    assert realism.weak_line_lag(flux, sim)[0] == 0


# -- references, store, CLI ---------------------------------------------------------
@pytest.mark.parametrize("kind", REFERENCE_KINDS)
def test_reference_catalogues_follow_the_schema_and_the_truth(kind, observed):
    t = reference_catalog(kind, observed, seed=2)
    assert len(t) > (10 if kind == "clusters" else 300)
    assert set(t.meta["injected_offset"]) == set(t.meta["injected_scatter"])
    truth = {int(s): tl for s, tl in zip(observed["source_id"], observed["true_labels"])}
    true = np.array([truth[int(s)] for s in t["source_id"]])
    for col, label in enumerate(LABELS):
        if label not in t.colnames:
            continue
        offset = t.meta["injected_offset"].get(label, 0.0)
        scatter = t.meta["injected_scatter"].get(label, 0.0)
        # reference = truth + offset + N(0, hypot(injected scatter, quoted error))
        pull = (np.asarray(t[label]) - true[:, col] - offset) / np.hypot(scatter, t[f"e_{label}"])
        assert abs(np.median(pull)) < 0.12, label
        assert np.std(pull) == pytest.approx(1.0, abs=0.1), label


def test_seismic_numax_follows_the_scaling_relation(observed):
    t = reference_catalog("seismic", observed, seed=1)
    truth = {int(s): tl for s, tl in zip(observed["source_id"], observed["true_labels"])}
    tl = np.array([truth[int(s)] for s in t["source_id"]])
    assert tl[:, 1].max() < 3.3
    expected = 3090.0 * 10 ** (tl[:, 1] - 4.438) * (tl[:, 0] / 5777.0) ** -0.5
    ratio = np.asarray(t["numax"]) / expected
    assert np.median(ratio) == pytest.approx(1.0, abs=0.005)
    assert ratio.std() == pytest.approx(0.02, rel=0.2)
    assert str(t["numax"].unit) == "uHz"


def test_cluster_members_share_metallicity():
    b = simulate_batch(1200, seed=21, kind="observed")
    b = b[b["population"] == 5]
    t = reference_catalog("clusters", b, seed=1)
    assert len(t) == len(b) and (t["proba"] >= 0.5).all()
    for cid in np.unique(b["cluster_id"]):
        mh = b["true_labels"][b["cluster_id"] == cid, 2]
        if len(mh) > 2:
            assert mh.std() < 0.05


def test_reference_needs_truth():
    b = simulate_batch(5, seed=1)
    with pytest.raises(InputDataError, match="Unknown reference kind"):
        reference_catalog("rave", b)


def test_simulate_store_streams_chunks(tmp_path):
    path = simulate_store(tmp_path / "s.h5", 300, seed=2, kind="training", chunk_size=128,
                          snr=LogUniformSNR(40, 80), progress=False)
    with Store.open(path) as store:
        assert len(store) == 300
        assert store.meta["kind"] == "training"
        assert [c.name for c in store.extra_columns] == [c.name for c in SIM_EXTRA_COLUMNS]
        b = store.read()
    assert np.unique(b["source_id"]).size == 300
    assert 40 <= b["rvs_snr"].min() and b["rvs_snr"].max() <= 80
    assert reference_catalog("apogee", path)["teff"].shape == (300,)


def test_cli_simulate(tmp_path):
    from gaiarvs_cnn.cli import main

    out = tmp_path / "cli.h5"
    res = CliRunner().invoke(main, ["simulate", "--n", "40", "--seed", "3", "-o", str(out),
                                    "--kind", "out-of-range", "--snr", "60", "--quiet"])
    assert res.exit_code == 0, res.output
    with Store.open(out) as store:
        assert len(store) == 40 and store.meta["kind"] == "out-of-range"
        assert np.allclose(store.read(columns=["rvs_snr"])["rvs_snr"], 60.0)
    res = CliRunner().invoke(main, ["simulate", "--n", "5", "-o", str(out), "--quiet"])
    assert res.exit_code != 0                      # exists, no --overwrite
