"""Tests of the physics fit (gaiarvs_cnn.simulate.physics_fit): the forward model fitted to
simulated and real RVS spectra recovers their labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from numpy.polynomial import legendre

from gaiarvs_cnn.constants import RVS_NPIX, rvs_wavelength_nm
from gaiarvs_cnn.exceptions import InputDataError
from gaiarvs_cnn.simulate.physics_fit import (
    check_labels,
    fit_at_labels,
    fit_spectra,
    fit_spectrum,
    label_bounds,
)
from gaiarvs_cnn.simulate.realism import read_rvs_csv
from gaiarvs_cnn.simulate.survey import forward

DATA = Path(__file__).parents[1] / "data"
X = (rvs_wavelength_nm() - 858.0) / 12.0
CONTINUUM = np.array([1.02, 0.01, -0.004])
GIANT = np.array([4700.0, 2.4, -0.5, 0.2, -0.52])
DWARF = np.array([5900.0, 4.3, 0.1, 0.0, 0.1])


def _spectrum(labels, *, rv=3.0, snr=None, seed=0):
    flux = forward(labels, [rv]).astype(float) * legendre.legval(X, CONTINUUM)
    err = np.full(RVS_NPIX, 1.0 / (snr or 100.0))
    if snr is not None:
        flux = flux + np.random.default_rng(seed).normal(0.0, 1.0 / snr, RVS_NPIX)
    flux[:7] = np.nan     # NaN edge pixels, as in DR3 mean spectra
    err[-3:] = np.nan
    return flux, err


@pytest.mark.parametrize("truth", [GIANT, DWARF], ids=["giant", "dwarf"])
def test_noiseless_spectrum_gives_back_labels_velocity_and_continuum(truth):
    flux, err = _spectrum(truth)
    fit = fit_spectrum(flux, err)
    assert fit.success
    tolerance = np.array([3.0, 0.01, 0.02, 0.02, 0.005])
    assert np.all(np.abs(fit.labels - truth) < tolerance), fit.labels - truth
    assert fit.rv_kms == pytest.approx(3.0, abs=0.03)
    np.testing.assert_allclose(fit.continuum, CONTINUUM, atol=2e-4)
    assert fit.n_pixels == RVS_NPIX - 10
    assert fit.n_free == 6 + 3
    assert fit.chi2 < 1.0                      # noise-free: residuals far below the errors
    assert np.nanmax(np.abs(fit.model_flux - flux)) < 2e-3


def test_noisy_spectrum_gives_labels_within_their_errors():
    truth = np.array([5200.0, 3.6, -0.2, 0.1, -0.22])
    flux, err = _spectrum(truth, snr=50.0, seed=4)
    fit = fit_spectrum(flux, err)
    dev = np.abs(fit.labels - truth)
    # Teff, log g, [Fe/H] are well constrained; [M/H] and [alpha/M] are nearly degenerate
    assert np.all(dev[[0, 1, 4]] < 3.0 * fit.label_errors[[0, 1, 4]])
    assert dev[0] < 150.0 and dev[1] < 0.2 and dev[4] < 0.1
    assert fit.reduced_chi2 == pytest.approx(1.0, abs=0.08)
    assert fit.rv_kms == pytest.approx(3.0, abs=0.5)
    lo, hi = label_bounds()
    assert np.all((fit.labels >= lo) & (fit.labels <= hi))


def test_chi2_at_true_labels_is_close_to_best_and_wrong_labels_are_flagged():
    truth = DWARF
    flux, err = _spectrum(truth, snr=50.0, seed=1)
    right = check_labels(flux, err, truth)
    wrong = check_labels(flux, err, truth + [500.0, 0.0, 0.0, 0.0, 0.0])
    assert right.best.chi2 == pytest.approx(wrong.best.chi2)
    # at the truth chi2 exceeds the best fit by about chi2(5 dof) (measured 2.9); 500 K off by
    # far more (measured 331)
    assert -1e-3 * right.best.chi2 < right.delta_chi2 < 25.0
    assert wrong.delta_chi2 > 100.0
    assert right.at_labels.rv_kms == pytest.approx(3.0, abs=0.5)
    assert np.all(np.isnan(right.at_labels.label_errors))
    np.testing.assert_array_equal(right.at_labels.labels, truth)


def _sweetcat(name):
    t = Table.read(DATA / "sweetcat" / "sweetcat_dwarfs.csv", format="ascii.csv", comment="#")
    row = t[t["name"] == name][0]
    return np.array([row["teff"], row["logg"], row["feh"]])


def test_real_kepler93_spectrum_lands_near_the_sweetcat_labels():
    """Kepler-93 (Gaia DR3 2052747119115620352, RVS S/N 127): the fit gave +24 K, +0.20 dex,
    +0.04 dex against SWEET-Cat (5681 K, 4.45, -0.08)."""
    flux, err = read_rvs_csv(DATA / "sim_realism" / "Kepler-93.csv")
    assert np.isnan(flux).sum() == 7
    fit = fit_spectrum(flux, err)
    ref = _sweetcat("Kepler-93")
    delta = fit.labels[[0, 1, 4]] - ref
    assert abs(delta[0]) < 100.0
    assert abs(delta[1]) < 0.3
    assert abs(delta[2]) < 0.1
    assert abs(fit.rv_kms) < 3.0
    assert fit.reduced_chi2 < 2.5
    assert fit.continuum[0] == pytest.approx(1.0, abs=0.02)


def test_fit_spectra_table_matches_single_fits_and_skips_unusable_spectra():
    a, ea = _spectrum(GIANT, snr=80.0, seed=2)
    b, eb = _spectrum(DWARF, snr=80.0, seed=3)
    blank = np.full(RVS_NPIX, np.nan)
    labels = np.array([GIANT, DWARF + [200.0, 0, 0, 0, 0], GIANT])
    labels[0, 2] = np.nan                                  # a star the network did not label
    table = fit_spectra([a, b, blank], [ea, eb, eb], labels=labels, source_ids=[11, 12, 13])
    assert list(table["source_id"]) == [11, 12, 13]
    assert list(table["fit_success"]) == [True, True, False]
    single = fit_spectrum(b, eb)
    np.testing.assert_array_equal(table["fit_labels"][1], single.labels)
    assert table["fit_chi2"][1] == single.chi2
    assert table["fit_npix"][2] == 0 and np.all(np.isnan(table["fit_labels"][2]))
    assert np.isnan(table["delta_chi2"][0]) and np.isnan(table["delta_chi2"][2])
    at = fit_at_labels(b, eb, labels[1])
    assert table["delta_chi2"][1] == pytest.approx(at.chi2 - single.chi2)
    assert table["delta_chi2"][1] > 50.0
    assert str(table["fit_rv"].unit) == "km / s"


def test_bad_inputs_give_clear_errors():
    flux, err = _spectrum(GIANT)
    with pytest.raises(InputDataError, match="shape"):
        fit_spectrum(flux[:100], err[:100])
    few = np.full(RVS_NPIX, np.nan)
    few[:50] = 1.0
    with pytest.raises(InputDataError, match="Only 50 pixels"):
        fit_spectrum(few, err)
    with pytest.raises(InputDataError, match="labels must be 5 finite values"):
        fit_at_labels(flux, err, [5000.0, np.nan, 0.0, 0.0, 0.0])


def test_fit_spectra_command_checks_a_catalogue_against_a_store(tmp_path):
    from click.testing import CliRunner

    from gaiarvs_cnn.catalog import build_catalog_table, write_catalog
    from gaiarvs_cnn.cli import main
    from gaiarvs_cnn.constants import LABELS
    from gaiarvs_cnn.io.store import Store
    from gaiarvs_cnn.simulate.survey import simulate_store

    store = tmp_path / "stars.h5"
    simulate_store(store, 3, seed=5, kind="calibration", snr=60.0)
    with Store.open(store) as s:
        batch = s.read()
    truth = np.asarray(batch["true_labels"], dtype=float)
    ids = np.asarray(batch["source_id"])
    pred = {"source_id": ids[:2]}
    for j, lab in enumerate(LABELS):
        pred[lab] = truth[:2, j] + ([0.0, 500.0] if lab == "teff" else 0.0)
        pred[f"e{lab}"] = pred[f"sigma_{lab}"] = np.full(2, 0.1)
    catalog = tmp_path / "cat.ecsv"
    write_catalog(build_catalog_table(pred, np.array(["00000000"] * 2)), catalog)
    out = tmp_path / "fit.ecsv"
    args = ["fit-spectra", str(store), "-o", str(out), "--catalog", str(catalog), "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "3 of 3 spectra fitted" in result.output and "2 checked" in result.output
    table = Table.read(out)
    assert list(table["source_id"]) == list(ids)
    assert np.all(np.abs(table["fit_labels"][:, 0] - truth[:, 0]) < 300.0)
    assert table["delta_chi2"][0] < 30.0 < 100.0 < table["delta_chi2"][1]   # 500 K off
    assert np.isnan(table["delta_chi2"][2])                                   # not in catalogue
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "--overwrite" in again.output
