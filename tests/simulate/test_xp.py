"""Realism of the simulated XP spectra (gaiarvs_cnn.simulate.xp) against real Gaia DR3 rows.

Real data (tests/data/gaia_real, see tests/data/README.md): the XP_CONTINUOUS rows of
5853498713190525696 and 5762406957886626816 (GaiaXPy test files) and the DataLink bundle of
5937083312263887616 (XP_CONTINUOUS and XP_SAMPLED, astroquery test data).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

from gaiarvs_cnn.simulate import xp
from gaiarvs_cnn.simulate.photometry import xp_coefficients
from gaiarvs_cnn.simulate.survey import simulate_batch

DATA = Path(__file__).parents[1] / "data" / "gaia_real"
BUNDLE = DATA / "astroquery_gaia" / "gaia_dr3_source_id_5937083312263887616_dl_products_csv.zip"
SOLAR_LIKE, RED, BLUE = 5937083312263887616, 5853498713190525696, 5762406957886626816


def _array(cell) -> np.ndarray:
    return np.asarray(str(cell).strip("()[]").split(","), dtype=float)


@pytest.fixture(scope="module")
def real_rows() -> dict[int, dict[str, np.ndarray]]:
    """The three real XP_CONTINUOUS rows, read from the test copies (not the shipped file)."""
    rows = {}
    gaiaxpy_rows = Table.read(DATA / "xp_continuous" / "XP_CONTINUOUS_RAW.ecsv")
    with zipfile.ZipFile(BUNDLE) as z:
        aq = Table.read(io.BytesIO(z.read("XP_CONTINUOUS-Gaia DR3 5937083312263887616.csv")),
                        format="ascii.csv")
    for r in gaiaxpy_rows:
        rows[int(r["source_id"])] = {k: np.asarray(r[k], dtype=float) for k in r.colnames
                                     if "coefficient" in k}
    r = aq[0]
    rows[int(r["source_id"])] = {k: _array(r[k]) for k in aq.colnames if "coefficient" in k}
    return rows


@pytest.fixture(scope="module")
def real_sampled() -> tuple[np.ndarray, np.ndarray]:
    with zipfile.ZipFile(BUNDLE) as z:
        t = Table.read(io.BytesIO(z.read("XP_SAMPLED-Gaia DR3 5937083312263887616.csv")),
                       format="ascii.csv")
    return np.asarray(t["wavelength"], float), np.asarray(t["flux"], float)


@pytest.fixture(scope="module")
def observed():
    return simulate_batch(600, seed=3, kind="observed")


@pytest.fixture(scope="module")
def out_of_range():
    return simulate_batch(600, seed=4, kind="out-of-range")


def _ratios(c: np.ndarray) -> np.ndarray:
    """(c1/c0, c2/c0, max_k>=4 |c_k/c0|) per star, shape (N, 3)."""
    c = np.atleast_2d(c)
    return np.stack([c[:, 1] / c[:, 0], c[:, 2] / c[:, 0],
                     np.abs(c[:, 4:] / c[:, :1]).max(axis=1)], axis=1)


def _near_colour(batch, colour: float, width: float = 0.15) -> np.ndarray:
    sim = xp.xp_colour(batch["bp_coefficients"], batch["rp_coefficients"])
    return np.abs(sim - colour) < width


def test_shipped_reference_rows_are_the_real_rows(real_rows):
    shipped = xp.read_reference_rows()
    assert sorted(int(s) for s in shipped["source_id"]) == sorted(real_rows)
    for row in shipped:
        real = real_rows[int(row["source_id"])]
        for col, values in real.items():
            np.testing.assert_allclose(np.asarray(row[col], float), values, rtol=1e-6)


def test_unpack_correlations_matches_gaiaxpy(real_rows):
    xp._import_gaiaxpy()          # first import through the guard (gaiaxpy sets usetex)
    from gaiaxpy.core.generic_functions import array_to_symmetric_matrix

    packed = real_rows[RED]["bp_coefficient_correlations"]
    np.testing.assert_array_equal(xp.unpack_correlations(packed),
                                  array_to_symmetric_matrix(packed, 55))
    with pytest.raises(ValueError, match="1485 values"):
        xp.unpack_correlations(packed[:-1])


def test_dr3_basis_comes_from_gaiaxpy_and_calibrates_to_the_archive_product(real_rows,
                                                                             real_sampled):
    band = xp.xp_band("bp")
    assert band.design.shape == (55, xp.XP_PWL.size)
    covered = band.wavelength[band.photon_weight > 0]
    assert covered.min() < 330 and covered.max() > 643          # DR3 BP range 330-643 nm
    wl, flux = xp.sampled_spectrum(real_rows[SOLAR_LIKE]["bp_coefficients"],
                                   real_rows[SOLAR_LIKE]["rp_coefficients"])
    np.testing.assert_allclose(wl, real_sampled[0])
    # GaiaXPy's calibrate on the real coefficients reproduces the archive's XP_SAMPLED
    np.testing.assert_allclose(flux, real_sampled[1], rtol=2e-3)


def test_forward_model_recovers_real_coefficients_from_the_real_sampled_spectrum(
        real_rows, real_sampled):
    """The DR3 XP_SAMPLED flux as SED -> instrument model -> basis gives the real c_k."""
    wl, flux = real_sampled
    hc = 1e9 * 2.99792458e8 * 6.62607004e-34          # h c [J nm]
    for band in xp.XP_BANDS:
        b = xp.xp_band(band)
        photon = np.interp(b.wavelength, wl, flux * wl / hc, left=0.0, right=0.0)
        coeff = xp.project_sed(photon, band)
        real = real_rows[SOLAR_LIKE][f"{band}_coefficients"]
        assert coeff[0] == pytest.approx(real[0], rel=0.12)
        assert np.sqrt(np.mean((coeff / coeff[0] - real / real[0]) ** 2)) < 0.01
        assert coeff[1] / coeff[0] == pytest.approx(real[1] / real[0], abs=0.04)


def test_coefficient_ratios_match_the_real_solar_like_star_of_similar_colour(real_rows,
                                                                              observed):
    real = real_rows[SOLAR_LIKE]
    colour = xp.xp_colour(real["bp_coefficients"], real["rp_coefficients"])
    near = _near_colour(observed, colour)
    assert near.sum() >= 30
    g = observed["phot_g_mean_mag"][near]
    assert 10 < np.median(g) < 14.5           # the real star: RP ~ 13.3 mag
    for band, c1_tol in (("bp", 0.1), ("rp", 0.05)):
        sim = np.median(_ratios(observed[f"{band}_coefficients"][near]), axis=0)
        ref = _ratios(real[f"{band}_coefficients"])[0]
        assert sim[0] == pytest.approx(ref[0], abs=c1_tol), band          # c1/c0
        assert sim[1] == pytest.approx(ref[1], abs=0.06), band            # c2/c0
        assert sim[2] < 0.04, band                                        # k >= 4
        assert abs(sim[0]) > 0.02, band          # odd terms do not vanish (old toy basis)


def test_coefficient_ratios_of_the_very_red_real_star(real_rows, out_of_range):
    """Gaia DR3 5853498713190525696 (BP-RP 3.8) against the simulated M giants (TiO)."""
    real = real_rows[RED]
    colour = xp.xp_colour(real["bp_coefficients"], real["rp_coefficients"])
    assert colour > 3.5
    near = _near_colour(out_of_range, colour)
    assert near.sum() >= 10
    for band, tol in (("bp", 0.2), ("rp", 0.1)):
        sim = np.median(_ratios(out_of_range[f"{band}_coefficients"][near]), axis=0)
        assert sim[0] == pytest.approx(_ratios(real[f"{band}_coefficients"])[0, 0], abs=tol)


def test_simulated_sampled_spectrum_matches_the_real_xp_sampled(real_rows, real_sampled,
                                                                observed):
    """Tolerance: median |sim/real - 1| < 8 % and 90th percentile < 25 % at 400-950 nm,
    each spectrum normalised by its mean flux there (the five nearest-colour stars)."""
    real = real_rows[SOLAR_LIKE]
    colour = xp.xp_colour(real["bp_coefficients"], real["rp_coefficients"])
    sim_colour = xp.xp_colour(observed["bp_coefficients"], observed["rp_coefficients"])
    idx = np.argsort(np.abs(sim_colour - colour))[:5]
    wl, flux = xp.sampled_spectrum(observed["bp_coefficients"][idx],
                                   observed["rp_coefficients"][idx])
    m = (wl >= 400) & (wl <= 950)
    ref = real_sampled[1][m] / real_sampled[1][m].mean()
    for f in flux:
        dev = np.abs(f[m] / f[m].mean() / ref - 1.0)
        assert np.median(dev) < 0.08
        assert np.percentile(dev, 90) < 0.25


@pytest.mark.parametrize("source_id", [SOLAR_LIKE, RED, BLUE])
def test_noise_model_errors_scale_with_flux_like_the_real_rows(real_rows, source_id):
    for band in xp.XP_BANDS:
        real = real_rows[source_id]
        model = xp.xp_noise_model(band).errors(real[f"{band}_coefficients"])[0]
        ratio = model / real[f"{band}_coefficient_errors"]
        assert 0.65 < np.sqrt(np.mean(ratio[:10] ** 2)) < 1.5, (band, ratio[:10])
        assert 0.4 < np.median(ratio) < 2.5, (band, ratio)


@pytest.mark.parametrize("band", ["bp", "rp"])
def test_noise_is_correlated_like_the_real_rows(real_rows, band):
    """Neighbouring-coefficient correlations of the simulated noise follow the real rows'."""
    real = real_rows[SOLAR_LIKE]
    noise, err = xp.xp_noise_model(band).draw(np.tile(real[f"{band}_coefficients"], (20000, 1)),
                                              np.random.default_rng(5))
    sim = np.corrcoef(noise[:, :12], rowvar=False)
    mean_real = np.mean([xp.unpack_correlations(r[f"{band}_coefficient_correlations"])[:12, :12]
                         for r in real_rows.values()], axis=0)
    off = ~np.eye(12, dtype=bool)
    assert np.sqrt(np.mean((sim - mean_real)[off] ** 2)) < 0.5 * np.sqrt(
        np.mean(mean_real[off] ** 2))
    assert np.all(err > 0)


def test_noise_free_coefficients_set_the_band_flux_from_the_magnitude():
    c = xp_coefficients(np.array([5000.0, 4200.0]), np.zeros(2), np.array([0.2, 0.5]),
                        np.array([12.0, 13.0]), np.array([11.0, 11.8]), None)
    for band, mag in (("bp", [12.0, 13.0]), ("rp", [11.0, 11.8])):
        rate = xp.band_photon_rate(c[f"{band}_coefficients"], band)
        np.testing.assert_allclose(-2.5 * np.log10(rate) + xp.XP_ZERO_POINTS[band], mag)
        assert np.all(c[f"{band}_coefficient_errors"] > 0)


def test_importing_gaiaxpy_keeps_matplotlib_usetex_off():
    import matplotlib

    with matplotlib.rc_context({"text.usetex": False}):
        xp._import_gaiaxpy()
        assert matplotlib.rcParams["text.usetex"] is False


def test_xp_label_correlation_of_the_training_set_carries_teff_in_the_odd_terms():
    """Paper Fig. 10 (top) on the new simulated training set: c1/c0 of both bands, the
    colour terms of the real basis, correlate with Teff (they vanished in the old basis)."""
    from gaiarvs_cnn.model.gradients import xp_label_correlation

    corr = xp_label_correlation(simulate_batch(800, seed=21, kind="training"),
                                labels=("teff", "logg", "mh"))
    assert corr[0, 1] < -0.7 and corr[0, 56] < -0.7          # BP c1/c0, RP c1/c0 vs Teff
    assert np.nanmax(np.abs(corr[0, 20:55])) < np.abs(corr[0, 1])
