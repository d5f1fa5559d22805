"""Realism diagnostics of the simulated RVS spectra against real Gaia DR3 spectra.

Used by the tests and figures of the simulator: Ca II triplet equivalent widths
measured against a median continuum, residual RMS in and out of the Ca II lines, and the
cross-correlation lag of the weak-line forest.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.table import Table

from ..constants import rvs_wavelength_nm
from ..preprocess import continuum_mask
from ..utils.arrays import masked_to_nan

__all__ = ["CA_TRIPLET_NM", "REFERENCE_STARS", "REFERENCE_FILES", "read_rvs_csv",
           "load_reference_spectra", "ca_triplet_ew", "ca_line_mask", "residual_rms",
           "weak_line_lag"]

#: Ca II triplet rest wavelengths in vacuum [nm] (air: 849.802, 854.209, 866.214 nm).
CA_TRIPLET_NM = (850.035, 854.444, 866.452)

#: Real stars of the test data with labels (Teff [K], log g, [M/H]) and their origin.
REFERENCE_STARS = {
    "Kepler-93": ((5669.0, 4.47, -0.18), "Ballard et al. (2014), dwarf"),
    "Kepler-409": ((5460.0, 4.50, 0.08), "Kepler-409 literature values, dwarf"),
    "KOI-001": ((5850.0, 4.40, -0.15), "TrES-2 host, Sozzetti et al. (2007), dwarf"),
    "HD176650": ((4700.0, 3.0, -0.20),
                 "evolved K star: Teff from Hipparcos B-V = 1.035; log g, [M/H] approximate"),
}


#: Gaia DR3 RVS DataLink CSV files of `REFERENCE_STARS`, relative to the test-data directory.
REFERENCE_FILES = {
    "Kepler-93": "sim_realism/Kepler-93.csv",
    "Kepler-409": "sim_realism/Kepler-409.csv",
    "KOI-001": "gaia_real/rvs_datalink_csv/KOI-001.csv",
    "HD176650": "gaia_real/rvs_datalink_csv/HD176650.csv",
}


def read_rvs_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Gaia DR3 RVS DataLink CSV: (flux, flux_error) on the 2401-pixel grid, NaN kept."""
    t = Table.read(path, format="ascii.csv")
    order = np.argsort(np.asarray(t["wavelength"], dtype=float))
    flux = masked_to_nan(t["flux"])[order]
    err = masked_to_nan(t["flux_error"])[order]
    return flux, err


def load_reference_spectra(data_dir, renormalise: bool = True) -> dict[str, tuple]:
    """Read `REFERENCE_FILES` below ``data_dir``: name -> (flux, flux_error).

    With ``renormalise`` the flux (and error) are divided by the median flux in the
    continuum windows (a pseudo-continuum re-normalisation, robust for noisy spectra).
    """
    out = {}
    for name, rel in REFERENCE_FILES.items():
        flux, err = read_rvs_csv(Path(data_dir) / rel)
        if renormalise:
            cont = np.nanmedian(flux[continuum_mask()])
            flux, err = flux / cont, err / cont
        out[name] = (flux, err)
    return out


def ca_line_mask(half_width_nm: float = 1.0) -> np.ndarray:
    """Pixels within ``half_width_nm`` of a Ca II triplet line."""
    wl = rvs_wavelength_nm()
    return np.any([np.abs(wl - c) < half_width_nm for c in CA_TRIPLET_NM], axis=0)


def ca_triplet_ew(flux: np.ndarray, half_width_nm: float = 0.8) -> np.ndarray:
    """Equivalent widths [nm] of the three Ca II lines, shape (..., 3).

    The flux is divided by its median in the continuum windows of paper Sect. 2.1
    (a robust pseudo-continuum for noisy spectra); NaN pixels count as continuum.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=float))
    wl = rvs_wavelength_nm()
    cont = np.nanmedian(flux[:, continuum_mask()], axis=1)[:, None]
    depth = np.nan_to_num(1.0 - flux / cont)
    step = wl[1] - wl[0]
    out = np.stack([depth[:, np.abs(wl - c) < half_width_nm].sum(axis=1) * step
                    for c in CA_TRIPLET_NM], axis=-1)
    return out[0] if np.ndim(out) == 2 and out.shape[0] == 1 else out


def residual_rms(real: np.ndarray, model: np.ndarray) -> tuple[float, float]:
    """RMS of real - model inside and outside the Ca II lines (+-1 nm), NaN pixels ignored."""
    resid = np.asarray(real, float) - np.asarray(model, float)
    inside = ca_line_mask()
    return (float(np.sqrt(np.nanmean(resid[inside] ** 2))),
            float(np.sqrt(np.nanmean(resid[~inside] ** 2))))


def weak_line_lag(real: np.ndarray, model: np.ndarray, max_lag: int = 20) -> tuple[int, float]:
    """Lag [pixels] and normalised height of the cross-correlation peak of the weak lines.

    The Ca II regions (+-1 nm) and NaN pixels are excluded; the line depths ``1 - flux``
    are mean-subtracted. A positive lag means the model lines are blue of the real ones.
    """
    keep = ~ca_line_mask() & np.isfinite(real)
    a = np.where(keep, 1.0 - np.asarray(real, float), 0.0)
    b = np.where(keep, 1.0 - np.asarray(model, float), 0.0)
    a[keep] -= a[keep].mean()
    b[keep] -= b[keep].mean()
    lags = np.arange(-max_lag, max_lag + 1)
    cc = np.array([np.sum(a * np.roll(b, k)) for k in lags])
    i = int(np.argmax(cc))
    return int(lags[i]), float(cc[i] / np.sqrt(np.sum(a * a) * np.sum(b * b)))
