"""The running-dispersion term of the total uncertainty (paper Sect. 3.4, Fig. 8).

The catalogue's total uncertainty is ``sigma = sqrt(e**2 + d**2)``: ``e`` the spread of
the ensemble members, ``d`` a running dispersion of (CNN - reference) residuals.

`ResidualFit` (the paper's definition): for each label, the robust dispersion of the
training stars' out-of-fold residuals in running bins of the CNN label, fitted with a
low-order polynomial and evaluated at the predicted label (clipped to the fitted range).

`CalibratedDispersion` (a recalibration of the same term, issue 16): the paper's ``d``
is measured on training stars (S/N >= 30) and already contains the noise-driven error
that ``e`` measures, so ``sigma`` double-counts it (on the default simulated catalogue at
S/N 15-25, 71-82 % of the stars fell within 1 sigma instead of 68 %). The calibrated ``d``
is fitted on held-out labelled stars spanning the survey's S/N range: in each bin of S/N
and predicted label it is the smallest value for which 68.27 % of the stars have
``|CNN - reference| < sqrt(e**2 + d**2 + e_ref**2)`` (``e_ref`` the reference's own
error), i.e. ``d**2`` is the 68.27 % quantile of ``residual**2 - e**2 - e_ref**2``.
Where that quantile is negative, the member spread alone puts more than 68.27 % of the
stars within 1 sigma (the spread of individual members overstates the error of their
mean); there ``d = 0`` and the spread is scaled by ``k < 1``, ``k**2`` the 68.27 %
quantile of ``(residual**2 - e_ref**2) / e**2``, so the total uncertainty is
``sigma = sqrt((k e)**2 + d**2)`` with ``k = 1`` wherever ``d > 0``. The catalogue's
``e<label>`` stays the member spread. ``d`` and ``k`` are interpolated linearly in the
predicted label between the bins' medians and in log S/N between the S/N bins' medians
(constant beyond the outermost bins); a star without an S/N takes the largest value over
the S/N bins at its label value.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..exceptions import InputDataError

__all__ = ["ResidualFit", "running_dispersion", "fit_residual_dispersion",
           "CalibratedDispersion", "fit_calibrated_dispersion", "COVERAGE_LEVEL",
           "CALIBRATION_SNR_EDGES", "CALIBRATION_MIN_PER_BIN", "calibration_min_stars"]

#: Fraction of stars within 1 sigma of a Gaussian (the calibration target).
COVERAGE_LEVEL = 0.6826894921370859
#: Default S/N bin edges of `fit_calibrated_dispersion` (RVS ``rvs_snr``).
CALIBRATION_SNR_EDGES = (15.0, 25.0, 40.0, 80.0, float("inf"))
#: Default minimum stars per (S/N, label) bin of `fit_calibrated_dispersion`: a
#: calibration needs at least twice as many usable held-out stars
#: (`calibration_min_stars`).
CALIBRATION_MIN_PER_BIN = 60


def calibration_min_stars(min_per_bin: int = CALIBRATION_MIN_PER_BIN) -> int:
    """The fewest usable held-out stars `fit_calibrated_dispersion` calibrates on (and the
    fewest it keeps in one S/N bin): two label bins of ``min_per_bin`` stars."""
    return 2 * int(min_per_bin)


def _robust_std(x: np.ndarray) -> float:
    """1.4826 x median absolute deviation (robust to a few outliers)."""
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def running_dispersion(x: np.ndarray, residual: np.ndarray, n_bins: int = 20,
                       min_per_bin: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dispersion of ``residual`` in equal-count bins of ``x``.

    Parameters
    ----------
    x : array
        The label the dispersion depends on (physical units).
    residual : array
        CNN minus reference label (same units as the label of interest).
    n_bins : int
        Maximum number of equal-count bins.
    min_per_bin : int
        Minimum stars per bin (fewer bins are used for small samples).

    Returns
    -------
    centres, dispersion, counts : arrays
        Median ``x``, robust standard deviation of ``residual`` and star count per bin.
    """
    ok = np.isfinite(x) & np.isfinite(residual)
    x, residual = np.asarray(x, float)[ok], np.asarray(residual, float)[ok]
    if x.size < 2 * min_per_bin:
        raise InputDataError(f"Only {x.size} finite residuals; need at least {2 * min_per_bin} "
                             "to measure a running dispersion.")
    n_bins = int(max(2, min(n_bins, x.size // min_per_bin)))
    order = np.argsort(x)
    groups = np.array_split(order, n_bins)
    centres = np.array([np.median(x[g]) for g in groups])
    disp = np.array([_robust_std(residual[g]) for g in groups])
    counts = np.array([g.size for g in groups])
    return centres, disp, counts


@dataclass(frozen=True)
class ResidualFit:
    """Polynomial model of the residual dispersion of one label.

    Calling the instance with label value(s) returns the dispersion (physical units of
    the label). The parameters are also available as attributes.

    Parameters
    ----------
    coefficients : tuple of float
        Power-series coefficients (lowest degree first) in the scaled variable
        ``t = (x - centre) / half_width``.
    domain : (float, float)
        Label range covered by the fit (physical units of the label); evaluation clips
        ``x`` to it.
    floor : float
        Smallest dispersion returned (the minimum binned dispersion, so that a polynomial
        dipping towards zero never claims a better precision than measured).
    """

    coefficients: tuple[float, ...]
    domain: tuple[float, float]
    floor: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Residual dispersion at label value(s) ``x`` (physical units)."""
        lo, hi = self.domain
        centre, half = 0.5 * (lo + hi), max(0.5 * (hi - lo), 1e-12)
        t = (np.clip(np.asarray(x, float), lo, hi) - centre) / half
        return np.maximum(np.polynomial.polynomial.polyval(t, self.coefficients), self.floor)

    def to_dict(self) -> dict:
        """Plain-JSON dict of the fit.

        Returns
        -------
        dict
            ``coefficients`` and ``domain`` (lists of float) and ``floor`` (float).
        """
        return {"coefficients": list(self.coefficients), "domain": list(self.domain),
                "floor": self.floor}

    @classmethod
    def from_dict(cls, d: Mapping) -> ResidualFit:
        """Build from `to_dict` output.

        Parameters
        ----------
        d : Mapping
            With keys ``coefficients``, ``domain`` (two values) and ``floor``.

        Returns
        -------
        ResidualFit
            The fit, with every value converted to float.

        Raises
        ------
        KeyError
            If a key is missing.
        """
        return cls(tuple(float(c) for c in d["coefficients"]),
                   (float(d["domain"][0]), float(d["domain"][1])), float(d["floor"]))


def fit_residual_dispersion(x: np.ndarray, residual: np.ndarray, degree: int = 3,
                            n_bins: int = 20, min_per_bin: int = 20) -> ResidualFit:
    """Fit a polynomial of ``degree`` to the running dispersion of ``residual`` vs ``x``.

    Bins are weighted by the square root of their star count.

    Parameters
    ----------
    x : ndarray
        Label value of each star (physical units, e.g. teff [K], logg/[M/H] [dex]).
    residual : ndarray
        Prediction minus reference of each star, same shape and units as ``x``.
    degree : int
        Polynomial degree (lowered to the number of bins minus one if needed).
    n_bins : int
        Maximum number of equally populated bins in ``x`` (at least 2).
    min_per_bin : int
        Minimum stars per bin; limits the number of bins for small samples.

    Returns
    -------
    ResidualFit
        Fit of the robust dispersion per bin against the bin's median ``x``; its domain
        spans the bin centres and its floor is the smallest binned dispersion.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> x = rng.uniform(0, 1, 5000)
    >>> fit = fit_residual_dispersion(x, rng.normal(0, 0.1 + 0.1 * x))
    >>> bool(abs(fit(0.5) - 0.15) < 0.02)
    True
    """
    centres, disp, counts = running_dispersion(x, residual, n_bins, min_per_bin)
    lo, hi = float(centres.min()), float(centres.max())
    centre, half = 0.5 * (lo + hi), max(0.5 * (hi - lo), 1e-12)
    deg = int(min(degree, len(centres) - 1))
    coeffs = np.polynomial.polynomial.polyfit((centres - centre) / half, disp, deg,
                                              w=np.sqrt(counts))
    return ResidualFit(tuple(float(c) for c in coeffs), (lo, hi), float(disp.min()))


@dataclass(frozen=True)
class CalibratedDispersion:
    """The running-dispersion term of one label, calibrated in predicted label and S/N.

    Calling the instance with label value(s) and S/N value(s) returns the term ``d``;
    `scale` returns the factor ``k`` (<= 1) applied to the member spread, and `sigma`
    the total uncertainty ``sqrt((k e)**2 + d**2)``. See the module documentation.

    Parameters
    ----------
    snr_centres : tuple of float
        Median ``rvs_snr`` of each S/N bin (increasing).
    knots : tuple of tuple of float
        For each S/N bin, the median predicted label of each label bin (increasing).
    terms : tuple of tuple of float
        For each S/N bin, ``d`` at each knot (physical units, >= 0).
    scales : tuple of tuple of float
        For each S/N bin, ``k`` at each knot (1 where ``d > 0``; below 1 where the member
        spread alone puts more than 68.27 % of the stars within 1 sigma). Empty: all 1.
    counts : tuple of tuple of int
        Stars in each (S/N, label) bin of the fit.
    """

    snr_centres: tuple[float, ...]
    knots: tuple[tuple[float, ...], ...]
    terms: tuple[tuple[float, ...], ...]
    scales: tuple[tuple[float, ...], ...] = ()
    counts: tuple[tuple[int, ...], ...] = ()

    def _evaluate(self, table, x, snr) -> np.ndarray:
        """``table`` (per S/N bin, per knot) interpolated at ``x`` and ``snr``."""
        x = np.asarray(x, float)
        shape = x.shape
        flat = x.ravel()
        per_bin = np.stack([np.interp(flat, k, t) for k, t in zip(self.knots, table)])
        worst = per_bin.max(axis=0)
        if snr is None:
            return worst.reshape(shape)
        s = np.broadcast_to(np.asarray(snr, float), shape).ravel()
        known = np.isfinite(s) & (s > 0)
        if len(self.snr_centres) == 1:
            out = per_bin[0]
        else:
            lc = np.log(np.asarray(self.snr_centres))
            t = np.clip(np.log(np.where(known, s, 1.0)), lc[0], lc[-1])
            i = np.clip(np.searchsorted(lc, t), 1, len(lc) - 1)
            w = (t - lc[i - 1]) / (lc[i] - lc[i - 1])
            cols = np.arange(flat.size)
            out = (1 - w) * per_bin[i - 1, cols] + w * per_bin[i, cols]
        return np.where(known, out, worst).reshape(shape)

    def __call__(self, x: np.ndarray, snr: np.ndarray | None = None) -> np.ndarray:
        """The term ``d`` at label value(s) ``x`` and S/N value(s) ``snr``.

        Parameters
        ----------
        x : array-like
            Predicted label value(s) (physical units).
        snr : array-like, optional
            RVS S/N of each star (broadcast against ``x``); None or NaN takes the
            largest term over the S/N bins at that label value.

        Returns
        -------
        ndarray
            ``d`` for each star (NaN where ``x`` is NaN).
        """
        return self._evaluate(self.terms, x, snr)

    def scale(self, x: np.ndarray, snr: np.ndarray | None = None) -> np.ndarray:
        """The factor ``k`` of the member spread at ``x`` and ``snr`` (as `__call__`)."""
        if not self.scales:
            return np.where(np.isnan(np.asarray(x, float)), np.nan, 1.0)
        return self._evaluate(self.scales, x, snr)

    def sigma(self, x: np.ndarray, spread: np.ndarray,
              snr: np.ndarray | None = None) -> np.ndarray:
        """Total uncertainty ``sqrt((k e)**2 + d**2)`` of stars with member spread ``e``.

        Parameters
        ----------
        x : array-like
            Predicted label value(s) (physical units).
        spread : array-like
            Member spread ``e`` of each star (same units).
        snr : array-like, optional
            RVS S/N of each star (None or NaN: the largest ``d`` and ``k``).

        Returns
        -------
        ndarray
        """
        return np.hypot(self.scale(x, snr) * np.asarray(spread, float), self(x, snr))

    def to_dict(self) -> dict:
        """Plain-JSON dict of the calibration (lists of float/int)."""
        return {"snr_centres": list(self.snr_centres),
                "knots": [list(k) for k in self.knots], "terms": [list(t) for t in self.terms],
                "scales": [list(k) for k in self.scales],
                "counts": [list(c) for c in self.counts]}

    @classmethod
    def from_dict(cls, d: Mapping) -> CalibratedDispersion:
        """Build from `to_dict` output.

        Parameters
        ----------
        d : Mapping
            With keys ``snr_centres``, ``knots``, ``terms`` (and optionally ``scales``,
            ``counts``).

        Returns
        -------
        CalibratedDispersion

        Raises
        ------
        KeyError
            If a key is missing.
        """
        return cls(tuple(float(v) for v in d["snr_centres"]),
                   tuple(tuple(float(v) for v in k) for k in d["knots"]),
                   tuple(tuple(float(v) for v in t) for t in d["terms"]),
                   tuple(tuple(float(v) for v in k) for k in d.get("scales", ())),
                   tuple(tuple(int(v) for v in c) for c in d.get("counts", ())))


def _merge_sparse(edges: list[float], snr: np.ndarray, min_stars: int) -> list[float]:
    """Drop inner edges until every S/N bin holds at least ``min_stars`` stars."""
    edges = list(edges)
    while len(edges) > 2:
        counts = np.histogram(snr, bins=np.asarray(edges))[0]
        k = int(np.argmin(counts))
        if counts[k] >= min_stars:
            break
        # merge the sparsest bin with its smaller neighbour (drop the shared edge)
        if k == 0:
            drop = 1
        elif k == len(counts) - 1:
            drop = k
        else:
            drop = k if counts[k - 1] <= counts[k + 1] else k + 1
        del edges[drop]
    return edges


def fit_calibrated_dispersion(pred: np.ndarray, reference: np.ndarray, spread: np.ndarray,
                              snr: np.ndarray, *, reference_error: np.ndarray | None = None,
                              snr_edges=CALIBRATION_SNR_EDGES, n_label_bins: int = 6,
                              min_per_bin: int = CALIBRATION_MIN_PER_BIN,
                              level: float = COVERAGE_LEVEL) -> CalibratedDispersion:
    """Fit the calibrated running-dispersion term of one label on held-out stars.

    Parameters
    ----------
    pred : ndarray
        Ensemble-mean label of each held-out star (physical units).
    reference : ndarray
        Its reference label (same units).
    spread : ndarray
        The ensemble spread ``e`` of each star.
    snr : ndarray
        RVS S/N of each star.
    reference_error : ndarray, optional
        Uncertainty of each reference label, removed in quadrature (default 0).
    snr_edges : sequence of float
        S/N bin edges (stars outside them are not used); sparse bins are merged so that
        each holds at least ``2 * min_per_bin`` stars.
    n_label_bins : int
        Equally populated bins of ``pred`` per S/N bin (fewer if stars are few).
    min_per_bin : int
        Minimum stars per (S/N, label) bin.
    level : float
        Target fraction of stars within 1 sigma (default `COVERAGE_LEVEL`).

    Returns
    -------
    CalibratedDispersion

    Raises
    ------
    InputDataError
        If fewer than ``2 * min_per_bin`` usable stars lie within ``snr_edges``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> n = 20000
    >>> truth, snr = rng.uniform(0, 1, n), rng.uniform(15, 100, n)
    >>> e = np.full(n, 0.05)
    >>> pred = truth + rng.normal(0, np.hypot(e, 0.10), n)   # 0.10 beyond the spread
    >>> cal = fit_calibrated_dispersion(pred, truth, e, snr)
    >>> bool(abs(float(cal(0.5, 50.0)) - 0.10) < 0.015)
    True
    """
    arrays = [np.asarray(a, float) for a in (pred, reference, spread, snr)]
    eref = (np.zeros_like(arrays[0]) if reference_error is None
            else np.asarray(reference_error, float))
    pred, reference, spread, snr = arrays
    lo, hi = float(snr_edges[0]), float(snr_edges[-1])
    ok = (np.isfinite(pred) & np.isfinite(reference) & np.isfinite(spread) & np.isfinite(eref)
          & np.isfinite(snr) & (snr >= lo) & (snr < hi))
    need = calibration_min_stars(min_per_bin)
    if ok.sum() < need:
        raise InputDataError(f"Only {int(ok.sum())} held-out stars with finite labels, "
                             f"uncertainties and S/N in [{lo}, {hi}); need at least "
                             f"{need} to calibrate the uncertainties.")
    pred, snr, e = pred[ok], snr[ok], spread[ok]
    res2 = (pred - reference[ok]) ** 2 - eref[ok] ** 2
    excess = res2 - e**2
    ratio = np.where(e > 0, res2 / np.where(e > 0, e, 1.0) ** 2, np.inf)
    edges = _merge_sparse([float(v) for v in snr_edges], snr, need)
    centres, knots, terms, scales, counts = [], [], [], [], []
    for a, b in zip(edges[:-1], edges[1:]):
        sel = np.flatnonzero((snr >= a) & (snr < b))
        nb = int(max(1, min(n_label_bins, sel.size // min_per_bin)))
        groups = np.array_split(sel[np.argsort(pred[sel])], nb)
        centres.append(float(np.median(snr[sel])))
        knots.append(tuple(float(np.median(pred[g])) for g in groups))
        q = [float(np.quantile(excess[g], level)) for g in groups]
        terms.append(tuple(float(np.sqrt(v)) if v > 0 else 0.0 for v in q))
        # where the spread alone over-covers: k**2 = quantile of (res**2 - e_ref**2) / e**2
        scales.append(tuple(1.0 if v > 0 else
                            float(np.sqrt(np.clip(np.quantile(ratio[g], level), 0.0, 1.0)))
                            for v, g in zip(q, groups)))
        counts.append(tuple(int(g.size) for g in groups))
    return CalibratedDispersion(tuple(centres), tuple(knots), tuple(terms), tuple(scales),
                                tuple(counts))
