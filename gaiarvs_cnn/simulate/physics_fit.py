"""Physics fit: least-squares fit of the simulator's forward model to one RVS spectrum.

The model of an observed normalised spectrum is the simulator's noise-free spectrum
(`~gaiarvs_cnn.simulate.spectra.SpectrumModel`) of the five labels, shifted by a residual
radial velocity and multiplied by a low-order Legendre polynomial in wavelength (the error of
the DR3 pseudo-continuum normalisation):

.. math::

    f(\\lambda) = P_c(x) \\, F(\\lambda; T_\\mathrm{eff}, \\log g, [M/H], [\\alpha/M], [Fe/H], v),
    \\qquad x = (\\lambda - 858\\,\\mathrm{nm}) / 12\\,\\mathrm{nm}.

The labels and the velocity are fitted with `scipy.optimize.least_squares` (bounded by
the simulator's label ranges, several deterministic starting points, each preceded by a
velocity scan); the continuum coefficients, linear in the model, are solved exactly at every
step (variable projection). Pixels whose flux or error is NaN, infinite or not positive
(the error) are left out. BLAS runs on one thread during a fit: the problems are small
(2401 x 6), multi-threaded BLAS only slows them down on a shared machine (measured 10x)
and would make the last bits depend on the core count.

Two uses (issue 24): a per-star **consistency check** of network labels, the
:math:`\\chi^2` of the spectrum at the network's labels (velocity and continuum re-fitted)
against the best fit (`check_labels`, `fit_spectra`), and a **fallback diagnostic** where
the network cannot be trusted (`fit_spectrum`). Its accuracy is that of the forward model:
on the real spectrum of Kepler-93 (S/N 127) the fit lands within 25 K, 0.2 dex and 0.05
dex of the SWEET-Cat Teff, log g and [Fe/H].

Examples
--------
>>> import numpy as np
>>> from gaiarvs_cnn.simulate.survey import forward
>>> from gaiarvs_cnn.simulate.physics_fit import fit_spectrum
>>> truth = np.array([5200.0, 3.6, -0.2, 0.1, -0.22])
>>> flux = forward(truth)
>>> fit = fit_spectrum(flux, np.full(flux.shape, 0.01))
>>> bool(abs(fit.labels[0] - 5200.0) < 20.0)
True
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table
from numpy.polynomial import legendre
from scipy.optimize import least_squares
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ..constants import LABELS, PAPER_TRAINING_RANGES, RVS_NPIX, rvs_wavelength_nm
from ..exceptions import InputDataError
from ..utils.arrays import masked_to_nan
from .spectra import SpectrumModel

__all__ = ["SpectrumFit", "LabelCheck", "fit_spectrum", "fit_at_labels", "check_labels",
           "fit_spectra", "fit_store", "label_bounds", "DEFAULT_STARTS"]

#: Starting labels of the multi-start fit (Teff [K], log g, [M/H], [alpha/M], [Fe/H]):
#: a solar-type dwarf, a red-clump/RGB giant, a metal-poor giant and a warm subgiant.
DEFAULT_STARTS = (
    (5700.0, 4.4, 0.0, 0.0, 0.0),
    (4700.0, 2.5, -0.2, 0.1, -0.2),
    (4400.0, 1.5, -1.2, 0.3, -1.2),
    (6200.0, 3.9, -0.3, 0.05, -0.3),
)
_N_PAR = len(LABELS) + 1                                     # five labels + radial velocity
# central-difference steps of the Jacobian (K, dex x 4, km/s): large enough for the
# float32 forward model, small against the curvature of chi2
_STEP = np.array([10.0, 0.02, 0.02, 0.02, 0.02, 0.3])
_X_SCALE = np.array([200.0, 0.3, 0.2, 0.1, 0.2, 1.0])
_MIN_PIXELS = 100


def label_bounds() -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper label bounds of the fit: the simulator's (paper Table 1) label ranges.

    Returns
    -------
    lo, hi : ndarray, shape (5,)
        In `~gaiarvs_cnn.constants.LABELS` order (K, dex, dex, dex, dex).
    """
    lo = np.array([PAPER_TRAINING_RANGES[k][0] for k in LABELS])
    hi = np.array([PAPER_TRAINING_RANGES[k][1] for k in LABELS])
    return lo, hi


@dataclass(frozen=True)
class SpectrumFit:
    """Result of a forward-model fit to one spectrum.

    Attributes
    ----------
    labels : ndarray, shape (5,)
        Teff [K], log g, [M/H], [alpha/M], [Fe/H] [dex]: fitted, or the given ones
        (`fit_at_labels`).
    label_errors : ndarray, shape (5,)
        Formal 1-sigma errors from the Jacobian at the solution, scaled by
        ``sqrt(max(1, reduced_chi2))``; NaN for labels held fixed.
    rv_kms : float
        Residual radial velocity [km/s] (positive = redshift).
    continuum : ndarray, shape (degree + 1,)
        Legendre coefficients of the multiplicative continuum in ``x = (lambda - 858 nm) / 12 nm``.
    chi2 : float
        Sum of squared normalised residuals over the used pixels.
    n_pixels : int
        Pixels used (finite flux and positive finite error).
    n_free : int
        Fitted parameters (labels, velocity and continuum coefficients).
    model_flux : ndarray, shape (2401,)
        The fitted model (continuum times shifted forward model) on the RVS grid.
    success : bool
        `scipy.optimize.least_squares` converged (status > 0).
    """

    labels: np.ndarray
    label_errors: np.ndarray
    rv_kms: float
    continuum: np.ndarray
    chi2: float
    n_pixels: int
    n_free: int
    model_flux: np.ndarray = field(repr=False)
    success: bool = True

    @property
    def reduced_chi2(self) -> float:
        """``chi2 / (n_pixels - n_free)``."""
        return self.chi2 / max(self.n_pixels - self.n_free, 1)


@dataclass(frozen=True)
class LabelCheck:
    """Consistency of given labels (e.g. the network's) with a spectrum.

    Attributes
    ----------
    best : SpectrumFit
        The best forward-model fit (`fit_spectrum`).
    at_labels : SpectrumFit
        The fit with the labels held at the given values (`fit_at_labels`).
    """

    best: SpectrumFit
    at_labels: SpectrumFit

    @property
    def delta_chi2(self) -> float:
        """``at_labels.chi2 - best.chi2`` (>= 0 up to the optimiser's tolerance): how much worse
        the given labels explain the spectrum than the best labels of the forward model."""
        return self.at_labels.chi2 - self.best.chi2


class _Problem:
    """One spectrum, its weights and the forward model: residuals with the continuum solved."""

    def __init__(self, flux, flux_error, *, continuum_degree: int, error_floor: float,
                 model: SpectrumModel | None):
        flux = np.asarray(flux, dtype=float)
        err = np.asarray(flux_error, dtype=float)
        if flux.shape != (RVS_NPIX,) or err.shape != (RVS_NPIX,):
            raise InputDataError(f"flux and flux_error must have shape ({RVS_NPIX},) (the Gaia "
                                 f"DR3 RVS grid); got {flux.shape} and {err.shape}.")
        if continuum_degree < 0:
            raise InputDataError(f"continuum_degree must be >= 0, got {continuum_degree}.")
        with np.errstate(invalid="ignore"):
            self.good = np.isfinite(flux) & np.isfinite(err) & (err > 0)
        self.n_pixels = int(self.good.sum())
        if self.n_pixels < _MIN_PIXELS:
            raise InputDataError(f"Only {self.n_pixels} pixels have a finite flux and a positive "
                                 f"flux_error; the physics fit needs at least {_MIN_PIXELS}.")
        self.model = _default_model() if model is None else model
        wl = rvs_wavelength_nm()
        x = (wl - 0.5 * (wl[0] + wl[-1])) / (0.5 * (wl[-1] - wl[0]))
        self.basis = legendre.legvander(x, int(continuum_degree))          # (2401, deg + 1)
        self.weight = 1.0 / np.hypot(err[self.good], float(error_floor))
        self.wflux = flux[self.good] * self.weight
        self.wbasis = self.basis[self.good] * self.weight[:, None]

    def spectra(self, params: np.ndarray) -> np.ndarray:
        """Forward-model flux (M, 2401) of parameter rows (M, 6)."""
        p = np.atleast_2d(params)
        return self.model.flux(p[:, :_N_PAR - 1], p[:, -1]).astype(float)

    def residuals(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted residuals (M, n_used) and continuum coefficients (M, deg + 1)."""
        spec = self.spectra(params)[:, self.good]
        res = np.empty_like(spec)
        coef = np.empty((len(spec), self.basis.shape[1]))
        for i, s in enumerate(spec):
            design = self.wbasis * s[:, None]
            coef[i] = np.linalg.lstsq(design, self.wflux, rcond=None)[0]
            res[i] = self.wflux - design @ coef[i]
        return res, coef

    def jacobian(self, params: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Central-difference Jacobian of the residuals w.r.t. the free parameters."""
        idx = np.flatnonzero(free)
        rows = np.repeat(params[None, :], 2 * idx.size, axis=0)
        for k, i in enumerate(idx):
            rows[2 * k, i] += _STEP[i]
            rows[2 * k + 1, i] -= _STEP[i]
        res, _ = self.residuals(rows)
        return ((res[0::2] - res[1::2]) / (2.0 * _STEP[idx, None])).T

    def rv_scan(self, params: np.ndarray, rv_max: float) -> float:
        """Velocity of least chi2 on a 1 km/s grid within +-rv_max at fixed labels."""
        grid = np.arange(-np.floor(rv_max), np.floor(rv_max) + 0.5, 1.0)
        rows = np.repeat(params[None, :], grid.size, axis=0)
        rows[:, -1] = grid
        res, _ = self.residuals(rows)
        return float(grid[np.argmin(np.einsum("ij,ij->i", res, res))])

    def solve(self, start: np.ndarray, free: np.ndarray, lo: np.ndarray, hi: np.ndarray,
              max_nfev: int) -> SpectrumFit:
        p0 = np.clip(np.asarray(start, dtype=float), lo, hi)

        def full(q):
            p = p0.copy()
            p[free] = q
            return p

        fit = least_squares(lambda q: self.residuals(full(q))[0][0], p0[free],
                            jac=lambda q: self.jacobian(full(q), free),
                            bounds=(lo[free], hi[free]), x_scale=_X_SCALE[free],
                            max_nfev=max_nfev)
        p = full(fit.x)
        res, coef = self.residuals(p)
        chi2 = float(res[0] @ res[0])
        n_free = int(free.sum()) + self.basis.shape[1]
        errors = np.full(_N_PAR, np.nan)
        jac = self.jacobian(p, free)
        cov = np.linalg.pinv(jac.T @ jac)
        scale = max(1.0, chi2 / max(self.n_pixels - n_free, 1))
        errors[free] = np.sqrt(np.clip(np.diag(cov), 0.0, None) * scale)
        model_flux = (self.spectra(p)[0] * (self.basis @ coef[0])).astype(np.float32)
        return SpectrumFit(labels=p[:-1], label_errors=errors[:-1], rv_kms=float(p[-1]),
                           continuum=coef[0], chi2=chi2, n_pixels=self.n_pixels,
                           n_free=n_free, model_flux=model_flux, success=bool(fit.status > 0))


_MODEL: list[SpectrumModel] = []


def _default_model() -> SpectrumModel:
    if not _MODEL:
        _MODEL.append(SpectrumModel())
    return _MODEL[0]


def fit_spectrum(flux, flux_error, *, starts=DEFAULT_STARTS, continuum_degree: int = 2,
                 rv_max_kms: float = 20.0, error_floor: float = 0.0, bounds=None,
                 max_nfev: int = 100, model: SpectrumModel | None = None) -> SpectrumFit:
    """Fit labels, residual radial velocity and continuum of the forward model to a spectrum.

    Parameters
    ----------
    flux, flux_error : array_like, shape (2401,)
        Normalised RVS flux and its 1-sigma error on the Gaia DR3 grid (NaN pixels and
        non-positive errors are left out).
    starts : sequence of label 5-tuples
        Starting labels of the multi-start fit (default `DEFAULT_STARTS`); the fit of least
        chi2 wins. Deterministic: no random draw.
    continuum_degree : int
        Degree of the multiplicative Legendre continuum (0: a scale factor).
    rv_max_kms : float
        Bound of the residual radial velocity [km/s]; each start first scans it on a
        1 km/s grid.
    error_floor : float
        Added in quadrature to ``flux_error`` (forward-model imperfection); 0 uses the
        errors as given.
    bounds : (lo, hi) of arrays (5,), optional
        Label bounds; default `label_bounds` (the simulator's label ranges).
    max_nfev : int
        Maximum iterations of each `scipy.optimize.least_squares` run.
    model : `~gaiarvs_cnn.simulate.spectra.SpectrumModel`, optional
        Forward model; default the simulator's.

    Returns
    -------
    SpectrumFit

    Raises
    ------
    InputDataError
        If the arrays are not on the RVS grid or fewer than 100 pixels are usable.
    """
    prob = _Problem(flux, flux_error, continuum_degree=continuum_degree,
                    error_floor=error_floor, model=model)
    lo5, hi5 = label_bounds() if bounds is None else (np.asarray(b, float) for b in bounds)
    lo, hi = np.r_[lo5, -rv_max_kms], np.r_[hi5, rv_max_kms]
    free = np.ones(_N_PAR, bool)
    best = None
    with threadpool_limits(limits=1, user_api="blas"):
        for labels in starts:
            p0 = np.clip(np.r_[np.asarray(labels, float), 0.0], lo, hi)
            p0[-1] = prob.rv_scan(p0, rv_max_kms)
            fit = prob.solve(p0, free, lo, hi, max_nfev)
            if best is None or fit.chi2 < best.chi2:
                best = fit
    return best


def fit_at_labels(flux, flux_error, labels, *, continuum_degree: int = 2,
                  rv_max_kms: float = 20.0, error_floor: float = 0.0, max_nfev: int = 50,
                  model: SpectrumModel | None = None) -> SpectrumFit:
    """Fit only the radial velocity and continuum with the labels held at ``labels``.

    Parameters
    ----------
    flux, flux_error : array_like, shape (2401,)
        As in `fit_spectrum`.
    labels : array_like, shape (5,)
        Teff [K], log g, [M/H], [alpha/M], [Fe/H] [dex] (e.g. the network's), not bounded.
    continuum_degree, rv_max_kms, error_floor, max_nfev, model
        As in `fit_spectrum`.

    Returns
    -------
    SpectrumFit
        With ``labels`` as given and NaN ``label_errors``.
    """
    labels = np.asarray(labels, dtype=float)
    if labels.shape != (len(LABELS),) or not np.all(np.isfinite(labels)):
        raise InputDataError(f"labels must be {len(LABELS)} finite values ({', '.join(LABELS)}); "
                             f"got {labels!r}.")
    prob = _Problem(flux, flux_error, continuum_degree=continuum_degree,
                    error_floor=error_floor, model=model)
    lo, hi = np.r_[labels - 1.0, -rv_max_kms], np.r_[labels + 1.0, rv_max_kms]
    free = np.zeros(_N_PAR, bool)
    free[-1] = True
    with threadpool_limits(limits=1, user_api="blas"):
        p0 = np.r_[labels, 0.0]
        p0[-1] = prob.rv_scan(p0, rv_max_kms)
        return prob.solve(p0, free, lo, hi, max_nfev)


def check_labels(flux, flux_error, labels, **kwargs) -> LabelCheck:
    """Best fit and fit at ``labels`` of one spectrum: the per-star consistency check.

    Parameters
    ----------
    flux, flux_error : array_like, shape (2401,)
        As in `fit_spectrum`.
    labels : array_like, shape (5,)
        Labels to check (e.g. the network's).
    **kwargs
        ``continuum_degree``, ``rv_max_kms``, ``error_floor``, ``model`` (both fits) and
        ``starts``, ``bounds`` (the best fit).

    Returns
    -------
    LabelCheck
        ``delta_chi2`` says how much worse ``labels`` explain the spectrum than the best fit.
    """
    shared = {k: kwargs.pop(k) for k in ("continuum_degree", "rv_max_kms", "error_floor", "model")
              if k in kwargs}
    best = fit_spectrum(flux, flux_error, **shared, **kwargs)
    return LabelCheck(best=best, at_labels=fit_at_labels(flux, flux_error, labels, **shared))


def fit_spectra(flux, flux_error, *, labels=None, source_ids=None, progress: bool = False,
                **kwargs) -> Table:
    """Physics fit of many spectra, with the consistency check where ``labels`` are given.

    Parameters
    ----------
    flux, flux_error : array_like, shape (N, 2401)
        Normalised RVS fluxes and their errors.
    labels : array_like, shape (N, 5), optional
        Labels to check (e.g. the network's predictions); rows with a NaN are not checked.
    source_ids : array_like of int, shape (N,), optional
        Copied to the ``source_id`` column.
    progress : bool
        Show a tqdm bar.
    **kwargs
        Passed to `fit_spectrum` (and the shared ones to `fit_at_labels`).

    Returns
    -------
    `~astropy.table.Table`
        One row per spectrum: ``source_id`` (if given), ``fit_labels`` and
        ``fit_label_errors`` (N, 5), ``fit_rv`` [km/s], ``fit_chi2``, ``fit_reduced_chi2``,
        ``fit_npix``, ``fit_success``; with ``labels`` also ``chi2_at_labels`` and
        ``delta_chi2``. A spectrum that cannot be fitted (fewer than 100 usable pixels)
        gets NaN values and ``fit_success`` False.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=float))
    flux_error = np.atleast_2d(np.asarray(flux_error, dtype=float))
    n = len(flux)
    if flux.shape[1:] != (RVS_NPIX,) or flux_error.shape != flux.shape:
        raise InputDataError(f"flux and flux_error must both have shape (N, {RVS_NPIX}); got "
                             f"{flux.shape} and {flux_error.shape}.")
    if labels is not None:
        labels = np.asarray(labels, dtype=float)
        if labels.shape != (n, len(LABELS)):
            raise InputDataError(f"labels must have shape ({n}, {len(LABELS)}); "
                                 f"got {labels.shape}.")
    with np.errstate(invalid="ignore"):
        usable = (np.isfinite(flux) & np.isfinite(flux_error) & (flux_error > 0)).sum(axis=1)
    shared = {k: kwargs[k] for k in ("continuum_degree", "rv_max_kms", "error_floor", "model")
              if k in kwargs}
    cols = {"fit_labels": np.full((n, len(LABELS)), np.nan),
            "fit_label_errors": np.full((n, len(LABELS)), np.nan),
            "fit_rv": np.full(n, np.nan), "fit_chi2": np.full(n, np.nan),
            "fit_reduced_chi2": np.full(n, np.nan), "fit_npix": np.zeros(n, np.int32),
            "fit_success": np.zeros(n, bool)}
    if labels is not None:
        cols.update(chi2_at_labels=np.full(n, np.nan), delta_chi2=np.full(n, np.nan))
    for i in tqdm(range(n), disable=not progress, desc="physics fit", unit="star"):
        if usable[i] < _MIN_PIXELS:
            continue
        fit = fit_spectrum(flux[i], flux_error[i], **kwargs)
        cols["fit_labels"][i], cols["fit_label_errors"][i] = fit.labels, fit.label_errors
        cols["fit_rv"][i], cols["fit_chi2"][i] = fit.rv_kms, fit.chi2
        cols["fit_reduced_chi2"][i], cols["fit_npix"][i] = fit.reduced_chi2, fit.n_pixels
        cols["fit_success"][i] = fit.success
        if labels is not None and np.all(np.isfinite(labels[i])):
            at = fit_at_labels(flux[i], flux_error[i], labels[i], **shared)
            cols["chi2_at_labels"][i] = at.chi2
            cols["delta_chi2"][i] = at.chi2 - fit.chi2
    table = Table()
    if source_ids is not None:
        table["source_id"] = np.asarray(source_ids, dtype=np.int64)
    units = {"fit_rv": "km / s"}
    for name, values in cols.items():
        table[name] = values
        if name in units:
            table[name].unit = units[name]
    table["fit_labels"].description = f"Physics-fit labels ({', '.join(LABELS)}; K, dex x 4)"
    return table


def fit_store(path, *, labels: Table | None = None, limit: int | None = None, out=None,
              overwrite: bool = False, progress: bool = False, **kwargs) -> Table:
    """`fit_spectra` of the stars of an HDF5 store (with the check of ``labels`` if given).

    Parameters
    ----------
    path : path-like
        Store written by ``store ingest``, ``fetch gaia`` or ``simulate``
        (`~gaiarvs_cnn.io.store.Store`), with ``flux`` and ``flux_error``.
    labels : `~astropy.table.Table`, optional
        Labels to check, matched on ``source_id``: a table with ``source_id`` and the
        columns ``teff``, ``logg``, ``mh``, ``alpham``, ``feh`` (e.g. a catalogue of
        ``predict`` read with `~gaiarvs_cnn.catalog.read_catalog`). Stars missing from it
        are fitted but not checked.
    limit : int, optional
        Fit only the first ``limit`` stars.
    out : path-like, optional
        Also write the table there (atomically; format from the suffix, e.g. ``.ecsv``,
        ``.fits``).
    overwrite : bool
        Replace an existing ``out``.
    progress : bool
        Show a tqdm bar.
    **kwargs
        Passed to `fit_spectrum`.

    Returns
    -------
    `~astropy.table.Table`
        As `fit_spectra`, one row per star in store order, with ``source_id``.

    Raises
    ------
    OutputExistsError
        If ``out`` exists and ``overwrite`` is False (checked before fitting).
    """
    from ..io.store import Store
    from ..utils.atomic import atomic_path, refuse_existing

    if out is not None:
        refuse_existing(out, overwrite=overwrite, what="physics-fit table")

    with Store.open(path) as store:
        stop = len(store) if limit is None else min(int(limit), len(store))
        batch = store.read(0, stop, columns=["flux", "flux_error"])
    ids = np.asarray(batch["source_id"], dtype=np.int64)
    given = None
    if labels is not None:
        missing = [c for c in ("source_id", *LABELS) if c not in labels.colnames]
        if missing:
            raise InputDataError(f"The labels table lacks column(s) {', '.join(missing)}; it "
                                 f"needs source_id and {', '.join(LABELS)}.")
        lab_ids = np.asarray(labels["source_id"], dtype=np.int64)
        values = np.stack([masked_to_nan(labels[c])
                           for c in LABELS], axis=1)
        order = np.argsort(lab_ids, kind="stable")
        pos = np.clip(np.searchsorted(lab_ids[order], ids), 0, max(len(lab_ids) - 1, 0))
        given = np.full((len(ids), len(LABELS)), np.nan)
        if len(lab_ids):
            hit = lab_ids[order][pos] == ids
            given[hit] = values[order][pos[hit]]
    table = fit_spectra(batch["flux"], batch["flux_error"], labels=given, source_ids=ids,
                        progress=progress, **kwargs)
    table.meta["store"] = str(Path(path).name)
    if out is not None:
        out = Path(out)
        with atomic_path(out, suffix=out.suffix) as tmp:
            table.write(tmp, overwrite=True)
    return table
