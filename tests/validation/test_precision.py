"""Precision vs S/N, uncertainty calibration, Cramér-Rao bound, galactocentric R-Z, bimodality."""
import astropy.coordinates as coord
import astropy.units as u
import numpy as np
import pytest
from astropy.table import join

from gaiarvs_cnn.validation.bimodality import (
    add_galactocentric,
    alpha_sequences,
    bimodality_grid,
    galactocentric_frame,
    galactocentric_rz,
    select_giants,
)
from gaiarvs_cnn.validation.precision import (
    GAUSS_1SIGMA,
    calibration_check,
    cramer_rao_bound,
    cramer_rao_table,
    fisher_bounds,
    fisher_matrix,
    precision_vs_snr,
)
from gaiarvs_cnn.validation.synthetic import synthetic_catalog, synthetic_truth
from gaiarvs_cnn.validation.truth import sequence_recovery


@pytest.fixture(scope="module")
def data():
    truth = synthetic_truth(4000, seed=21)
    return join(synthetic_catalog(truth, seed=22), truth, keys="source_id")


def test_calibration_of_calibrated_and_underestimated_errors(data):
    cal = calibration_check(data, "true_")
    assert list(cal["label"]) == ["teff", "logg", "mh", "alpham", "feh"]
    np.testing.assert_allclose(cal["frac_within_1sigma"], GAUSS_1SIGMA, atol=0.03)
    np.testing.assert_allclose(cal["std_z"], 1.0, atol=0.05)
    # e* (model-to-model) is half the true scatter: P(|z| < 0.5) = 0.383
    np.testing.assert_allclose(cal["frac_within_1sigma_internal"], 0.383, atol=0.03)


def test_precision_vs_snr_bins(data):
    prec = precision_vs_snr(data, ref_prefix="true_", edges=(15, 25, 50, np.inf))
    teff = prec[prec["label"] == "teff"]
    assert len(teff) == 3
    good = np.asarray(data["flag_boundary"]) == "00000000"
    assert teff["n"].sum() == good.sum()
    np.testing.assert_allclose(teff["std_ref"], 60.0, rtol=0.1)
    np.testing.assert_allclose(teff["median_sigma"], 60.0)
    np.testing.assert_allclose(teff["median_e"], 30.0)
    assert np.all(np.isnan(teff["std_gsp"]))


def test_cramer_rao_bound_of_a_linear_model():
    # flux = 1 + a x + b y over 1000 pixels; a, b orthogonal patterns; noise 0.05
    npix = 1000
    a = np.where(np.arange(npix) % 2 == 0, 0.02, 0.0)
    b = np.where(np.arange(npix) % 2 == 1, 0.01, 0.0)
    jac = np.column_stack([a, b])
    fisher = fisher_matrix(jac, 0.05)
    np.testing.assert_allclose(fisher, np.diag([500 * 0.02**2 / 0.05**2,
                                                500 * 0.01**2 / 0.05**2]))
    bound = cramer_rao_bound(jac, 0.05)
    np.testing.assert_allclose(bound, [0.05 / (0.02 * np.sqrt(500)),
                                       0.05 / (0.01 * np.sqrt(500))])
    # correlated columns: the bound is sqrt(diag(inv(F)))
    jac2 = np.column_stack([a + b, b])
    expected = np.sqrt(np.diag(np.linalg.inv(jac2.T @ jac2 / 0.05**2)))
    np.testing.assert_allclose(cramer_rao_bound(jac2, 0.05), expected, rtol=1e-8)


def test_cramer_rao_bound_of_degenerate_labels_is_infinite():
    a = np.linspace(-0.01, 0.01, 500)
    jac = np.column_stack([a, 2 * a, np.zeros(500), np.cos(np.arange(500)) * 0.01])
    bound = cramer_rao_bound(jac, 0.1)
    assert np.isinf(bound[0]) and np.isinf(bound[1]) and np.isinf(bound[2])
    # label 3 stays identifiable: its bound is that of the reduced model (x0 + 2 x1, x3)
    reduced = np.column_stack([a, jac[:, 3]])
    expected = np.sqrt(np.linalg.inv(reduced.T @ reduced / 0.1**2)[1, 1])
    assert bound[3] == pytest.approx(expected, rel=1e-6)


def test_cramer_rao_table_ratio_is_one_for_an_efficient_estimator():
    truth = synthetic_truth(3000, seed=8)
    rng = np.random.default_rng(9)
    npix = 400
    jmat = rng.normal(0, 0.01, (npix, 5))

    def jacobian(labels):
        return jmat

    snr = np.asarray(truth["rvs_snr"], float)
    sel = (snr >= 15) & (snr < 25)
    cat = synthetic_catalog(truth, seed=10, bad_fraction=0.0)
    data = join(cat, truth, keys="source_id")
    snr = np.asarray(data["rvs_snr"], float)
    cov = np.linalg.inv(jmat.T @ jmat)    # per unit noise
    draws = rng.multivariate_normal(np.zeros(5), cov, len(data)) / snr[:, None]
    for j, label in enumerate(("teff", "logg", "mh", "alpham", "feh")):
        data[label] = np.asarray(data[f"true_{label}"], float) + draws[:, j]
    cr = cramer_rao_table(data, fisher_bounds(jacobian), max_stars=100)
    assert cr["n"][0] == sel.sum()
    assert cr.colnames[4:] == ["bound_free", "ratio_free", "bound_conditional",
                               "ratio_conditional"]
    np.testing.assert_allclose(cr["ratio_free"], 1.0, rtol=0.15)
    # knowing the other labels can only tighten the bound
    assert np.all(cr["bound_conditional"] <= cr["bound_free"] * (1 + 1e-12))


def test_galactocentric_rz_of_known_positions():
    frame = galactocentric_frame()
    in_plane = np.sqrt(frame.galcen_distance**2 - frame.z_sun**2).to_value(u.kpc)
    assert in_plane == pytest.approx(8.19, abs=1e-9)
    np.testing.assert_allclose(frame.galcen_v_sun.xyz.to_value(u.km / u.s),
                               [11.1, 240.0 + 12.24, 7.25])

    def rz(l_deg, b_deg, d_kpc):
        icrs = coord.SkyCoord(l=l_deg * u.deg, b=b_deg * u.deg, distance=d_kpc * u.kpc,
                              frame="galactic").icrs
        return galactocentric_rz(icrs.ra.deg, icrs.dec.deg, 1.0 / np.atleast_1d(d_kpc))

    r, z = rz(0.0, 0.0, 1e-6)                       # the Sun
    assert r[0] == pytest.approx(8.19, abs=1e-3) and z[0] == pytest.approx(0.0208, abs=1e-3)
    r, z = rz(180.0, 0.0, 2.0)                      # anticentre
    assert r[0] == pytest.approx(10.19, abs=0.01) and abs(z[0]) < 0.03
    r, z = rz(0.0, 90.0, 1.0)                       # north Galactic pole
    assert r[0] == pytest.approx(8.19, abs=0.01) and z[0] == pytest.approx(1.02, abs=0.01)
    r, z = rz(90.0, 0.0, 3.0)                       # direction of rotation
    assert r[0] == pytest.approx(np.hypot(8.19, 3.0), abs=0.01)
    r, z = galactocentric_rz([10.0], [10.0], [-1.0])
    assert np.isnan(r[0]) and np.isnan(z[0])


def test_alpha_sequences_recover_two_injected_sequences(data):
    res = alpha_sequences(data["true_mh"], data["true_alpham"])
    # synthetic truth: low sequence 0.02 - 0.08 [M/H], high 0.20 - 0.10 ([M/H] + 0.5)
    assert res["delta_bic"] > 100
    assert res["mu_low"] == pytest.approx(0.05, abs=0.03)
    assert res["mu_high"] == pytest.approx(0.20, abs=0.03)
    one = np.random.default_rng(1).normal(0.05, 0.03, 2000)
    single = alpha_sequences(np.full(2000, -0.5), one)
    assert single["delta_bic"] < 10


def test_bimodality_grid_counts_and_sequences(data):
    table = add_galactocentric(data.copy())
    mask = select_giants(table)
    snr = np.asarray(table["rvs_snr"], float)
    expected = ((np.asarray(table["logg"]) < 2.2) & (snr >= 15) & (snr <= 25)
                & (np.asarray(table["flag_boundary"]) == "00000000"))
    assert np.array_equal(mask, expected)
    grid = bimodality_grid(table, mask, r_edges=(0, 8.5, 30), z_edges=(0, 1, 50))
    assert grid["n_bin"][0] == mask.sum()
    inside = np.isfinite(np.asarray(table["R_gc"], float))[mask].sum()
    assert grid["n_bin"][1:].sum() == inside
    seq = sequence_recovery(table, np.asarray(table["flag_boundary"]) == "00000000")
    assert seq["mu_high"][0] == pytest.approx(seq["mu_high"][1], abs=0.02)
    assert seq["mu_low"][0] == pytest.approx(seq["mu_low"][1], abs=0.02)
