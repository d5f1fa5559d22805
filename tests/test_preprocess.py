"""Tests of gaiarvs_cnn.preprocess: NaN filling, grid check, XP normalisation, scalers."""
import json
from pathlib import Path

import numpy as np
import pytest

from gaiarvs_cnn.constants import LABELS, PHOT_INPUTS, RVS_NPIX, rvs_wavelength_nm
from gaiarvs_cnn.exceptions import BadStarError, InputDataError
from gaiarvs_cnn.io.batch import StarBatch
from gaiarvs_cnn.io.spectra import read_rvs_datalink
from gaiarvs_cnn.preprocess import (
    InputScalers,
    MinMaxScaler,
    check_rvs_grid,
    continuum_mask,
    fill_nan_pixels,
    fill_nan_pixels_masked,
    normalise_xp,
    xp_available,
)

DATA = Path(__file__).parent / "data" / "gaia_real"


def test_continuum_mask_covers_the_three_windows():
    wl = rvs_wavelength_nm()
    mask = continuum_mask()
    # 847.5-849.5 (201 px), 856.1-858.2 (211 px), 862.7-864.8 (211 px)
    assert mask.sum() == 201 + 211 + 211
    assert mask[np.argmin(abs(wl - 847.5))] and mask[np.argmin(abs(wl - 864.8))]
    assert not mask[np.argmin(abs(wl - 854.2))]          # Ca II line core


def test_fill_nan_uses_q3_of_continuum_windows_hand_computed():
    flux = np.ones((2, RVS_NPIX), dtype=np.float32)
    wl = rvs_wavelength_nm()
    # star 0: continuum values 0.90, 0.95, 1.00, 1.05 repeated in the three windows
    windows = [(wl >= lo - 1e-9) & (wl <= hi + 1e-9)
               for lo, hi in ((847.5, 849.5), (856.1, 858.2), (862.7, 864.8))]
    cont = np.flatnonzero(windows[0] | windows[1] | windows[2])
    flux[0, cont] = np.resize(np.array([0.90, 0.95, 1.00, 1.05], dtype=np.float32), cont.size)
    flux[0, :5] = np.nan
    flux[0, 1000] = np.inf
    flux[1, -3:] = np.nan
    filled = fill_nan_pixels(flux, source_ids=[1, 2])
    expected = np.percentile(flux[0, cont].astype(np.float64), 75)
    assert 1.0 <= expected <= 1.05
    np.testing.assert_allclose(filled[0, :5], expected, rtol=1e-6)
    np.testing.assert_allclose(filled[0, 1000], expected, rtol=1e-6)
    np.testing.assert_array_equal(filled[1, -3:], 1.0)
    np.testing.assert_array_equal(filled[0, 5:1000], flux[0, 5:1000])   # untouched pixels
    assert np.isnan(flux[0, 0])                                         # input not modified
    one = fill_nan_pixels(flux[1])
    assert one.shape == (RVS_NPIX,) and np.isfinite(one).all()


def test_fill_nan_on_a_real_spectrum():
    batch = read_rvs_datalink(DATA / "rvs_datalink_fits" / "RVS-Gaia DR3 863983115982280448.fits")
    flux = batch["flux"][0].astype(np.float64)
    q3 = np.nanpercentile(flux[continuum_mask()], 75)
    filled = fill_nan_pixels(batch["flux"], batch["source_id"])
    nan = np.isnan(flux)
    assert nan.sum() == 83
    np.testing.assert_allclose(filled[0, nan], q3, rtol=1e-6)
    assert 0.9 < q3 < 1.1


def test_all_nan_spectrum_raises_bad_star_naming_source_id():
    flux = np.ones((3, RVS_NPIX))
    flux[1] = np.nan
    with pytest.raises(BadStarError, match="Gaia DR3 42") as info:
        fill_nan_pixels(flux, source_ids=[41, 42, 43])
    assert info.value.source_id == 42
    with pytest.raises(InputDataError, match="2400 pixels"):
        fill_nan_pixels(np.ones((1, 2400)))


def test_fill_nan_pixels_masked_marks_spectra_without_continuum_instead_of_raising():
    flux = np.ones((3, RVS_NPIX))
    flux[0, :5] = np.nan
    flux[1] = np.nan
    flux[2, continuum_mask()] = np.inf
    flux[2, 0] = 0.5
    filled, usable = fill_nan_pixels_masked(flux)
    assert usable.tolist() == [True, False, False]
    assert filled.dtype == np.float32 and np.isfinite(filled).all()
    np.testing.assert_array_equal(filled[0], fill_nan_pixels(flux[0]))
    np.testing.assert_array_equal(filled[1], 1.0)                     # flat continuum
    assert filled[2, 0] == 0.5 and (filled[2, continuum_mask()] == 1.0).all()
    assert fill_nan_pixels_masked(flux[0])[0].shape == (1, RVS_NPIX)
    with pytest.raises(InputDataError, match="2400 pixels"):
        fill_nan_pixels_masked(np.ones((1, 2400)))


def test_check_rvs_grid():
    check_rvs_grid(rvs_wavelength_nm())
    with pytest.raises(InputDataError, match="Gaia DR3 7: RVS spectrum has 2400 pixels"):
        check_rvs_grid(rvs_wavelength_nm()[:-1], source_id=7)
    shifted = rvs_wavelength_nm().copy()
    shifted[100:] += 0.005
    with pytest.raises(InputDataError, match="pixel 100"):
        check_rvs_grid(shifted)
    with pytest.raises(InputDataError, match="pixel 0"):
        check_rvs_grid(rvs_wavelength_nm() * 10)      # Angstrom instead of nm


def test_xp_normalisation_divides_by_first_coefficient():
    bp = np.array([[2.0, 4.0, -1.0] + [1.0] * 52, [10.0] * 55])
    rp = np.array([[4.0, 1.0, 2.0] + [8.0] * 52, [5.0] * 55])
    out = normalise_xp(bp, rp)
    assert out.shape == (2, 110)
    np.testing.assert_allclose(out[0, :3], [1.0, 2.0, -0.5])
    np.testing.assert_allclose(out[0, 55:58], [1.0, 0.25, 0.5])
    np.testing.assert_allclose(out[1], 1.0)
    np.testing.assert_array_equal(xp_available(bp, rp), [True, True])


def test_missing_xp_raises_bad_star():
    bp = np.ones((2, 55))
    rp = np.ones((2, 55))
    rp[1, 0] = np.nan
    assert xp_available(bp, rp).tolist() == [True, False]
    with pytest.raises(BadStarError, match="Gaia DR3 99.*XP"):
        normalise_xp(bp, rp, source_ids=[98, 99])
    bp[0, 0] = 0.0
    with pytest.raises(BadStarError, match="row 0"):
        normalise_xp(bp, rp)


def test_minmax_scaler_json_round_trip_and_exact_inverse():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3)) * [1000.0, 1.0, 0.1] + [5000.0, 2.5, -0.3]
    x[3, 1] = np.nan
    scaler = MinMaxScaler.fit(x, ["a", "b", "c"])
    y = scaler.transform(x)
    assert np.nanmin(y, axis=0) == pytest.approx([0, 0, 0])
    assert np.nanmax(y, axis=0) == pytest.approx([1, 1, 1])
    again = MinMaxScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(again.minimum, scaler.minimum)
    np.testing.assert_array_equal(again.maximum, scaler.maximum)
    np.testing.assert_allclose(again.inverse_transform(again.transform(x)), x, rtol=1e-14)
    with pytest.raises(InputDataError, match="'b'"):
        MinMaxScaler.fit(np.column_stack([x[:, 0], np.full(50, np.nan)]), ["a", "b"])


def test_errors_are_scaled_by_range_only():
    scaler = MinMaxScaler(["teff"], [4000.0], [6000.0])
    assert scaler.transform_error(np.array([100.0]))[0] == pytest.approx(0.05)
    assert scaler.inverse_transform_error(np.array([0.05]))[0] == pytest.approx(100.0)
    assert scaler.transform(np.array([5000.0]))[0] == pytest.approx(0.5)
    flat = MinMaxScaler(["x"], [3.0], [3.0])          # zero range: no division by zero
    assert flat.transform(np.array([3.0]))[0] == 0.0


def _training_batch(n=6, seed=2):
    rng = np.random.default_rng(seed)
    batch = StarBatch({"source_id": np.arange(n) + 1})
    batch["flux"] = 1 + 0.01 * rng.normal(size=(n, RVS_NPIX))
    batch["labels"] = rng.normal(size=(n, 5)) + [5000, 3, 0, 0.1, 0]
    for i, col in enumerate(PHOT_INPUTS):
        batch[col] = rng.uniform(1, 10, n) + i
    batch["bp_coefficients"] = rng.uniform(1, 2, (n, 55))
    batch["rp_coefficients"] = rng.uniform(1, 2, (n, 55))
    return batch


def test_input_scalers_fit_transform_and_json():
    batch = _training_batch()
    scalers = InputScalers.fit(batch)
    assert scalers.labels.names == list(LABELS)
    again = InputScalers.from_json(scalers.to_json())
    inputs = again.transform_inputs(batch)
    assert inputs["rvs"].shape == (6, RVS_NPIX, 1) and inputs["rvs"].dtype == np.float32
    assert inputs["phot"].shape == (6, 4)
    assert inputs["xp"].shape == (6, 110)
    assert inputs["phot"].min() == pytest.approx(0) and inputs["phot"].max() == pytest.approx(1)
    np.testing.assert_allclose(inputs["xp"][:, 0], 0.0)     # bp_0 / bp_0 == 1 for all stars
    bad = _training_batch()
    rp = bad["rp_coefficients"].copy()
    rp[4, 0] = np.nan
    bad["rp_coefficients"] = rp
    with pytest.raises(BadStarError, match="Gaia DR3 5"):
        scalers.transform_inputs(bad)
    bad = _training_batch()
    bad["parallax"] = [1, 2, np.nan, 1, 1, 1]
    with pytest.raises(BadStarError, match="Gaia DR3 3.*photometry"):
        scalers.transform_inputs(bad)
