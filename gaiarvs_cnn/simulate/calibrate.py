"""Calibration of the simulator's line strengths on real Gaia DR3 RVS spectra.

The ``log_tau0`` column of ``gaiarvs_cnn/data/rvs_linelist.ecsv`` (lines of kind
``core``, ``wing``, ``atom`` and ``unid``) and its ``core_depth`` metadata were obtained with
`fit_line_strengths` on the spectra of Kepler-93, Kepler-409 and KOI-001 at their
literature labels (`gaiarvs_cnn.simulate.realism.REFERENCE_STARS`), with every other
coefficient (abundance, excitation/ionisation and pressure sensitivities, widths) fixed by
physics: "astrophysical" oscillator strengths, as is usual for differential abundance work.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy.table import Table
from scipy.optimize import least_squares

from .spectra import SpectrumModel

__all__ = ["fit_line_strengths", "FITTED_KINDS"]

#: Line kinds whose strengths are fitted.
FITTED_KINDS = ("core", "wing", "atom", "unid")


def fit_line_strengths(lines: Table, fluxes: Sequence[np.ndarray], errors: Sequence[np.ndarray],
                       labels: np.ndarray, free: np.ndarray | None = None,
                       fit_core_depth: bool = True, error_floor: float = 0.01,
                       max_nfev: int = 40) -> Table:
    """Fit ``log_tau0`` of the ``free`` lines (and ``core_depth``) to observed spectra.

    Parameters
    ----------
    lines : `~astropy.table.Table`
        Line list (as `~gaiarvs_cnn.simulate.spectra.load_linelist`).
    fluxes, errors : sequence of arrays (2401,)
        Observed normalised fluxes and their uncertainties (NaN pixels are ignored).
    labels : array, shape (n_spectra, 5)
        Labels of the observed stars (Teff [K], log g, [M/H], [alpha/M], [Fe/H]).
    free : bool array, optional
        Lines to fit; default every line of a kind in `FITTED_KINDS`.
    fit_core_depth : bool
        Also fit the maximum depth ``core_depth`` (table metadata).
    error_floor : float
        Added in quadrature to ``errors`` (model imperfection; keeps bright stars from
        dominating).
    max_nfev : int
        Maximum number of residual evaluations of `scipy.optimize.least_squares`.

    Returns
    -------
    `~astropy.table.Table`
        A copy of ``lines`` with fitted ``log_tau0`` (bounded to [-6, 3]) and ``core_depth``.
    """
    table = lines.copy()
    if free is None:
        free = np.isin(np.asarray(table["kind"]).astype(str), FITTED_KINDS)
    model = SpectrumModel(lines=table)
    start = np.asarray(table["log_tau0"], dtype=float)
    sigma = [np.hypot(np.asarray(e, float), error_floor) for e in errors]
    good = [np.isfinite(f) & np.isfinite(s) for f, s in zip(fluxes, sigma)]
    labels = np.atleast_2d(np.asarray(labels, dtype=float))

    def unpack(p):
        log_tau0 = start.copy()
        log_tau0[free] = p[:free.sum()]
        depth = p[-1] if fit_core_depth else model.core_depth
        return log_tau0, depth

    def residuals(p):
        model._log_tau0, model.core_depth = unpack(p)
        sim = model.flux(labels)
        return np.concatenate([((s - f) / e)[g] for s, f, e, g in zip(sim, fluxes, sigma, good)])

    p0 = start[free]
    lo, hi = np.full(p0.size, -6.0), np.full(p0.size, 3.0)
    if fit_core_depth:
        p0, lo, hi = np.r_[p0, model.core_depth], np.r_[lo, 0.5], np.r_[hi, 0.99]
    res = least_squares(residuals, np.clip(p0, lo, hi), bounds=(lo, hi), x_scale=0.3,
                        diff_step=1e-3, max_nfev=max_nfev)
    log_tau0, depth = unpack(res.x)
    table["log_tau0"] = np.round(log_tau0, 3)
    table.meta["core_depth"] = round(float(depth), 4)
    return table
