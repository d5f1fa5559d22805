"""Running dispersion of training residuals and its polynomial fit (paper Sect. 3.4, Fig. 8).

For each label, the dispersion of (CNN - reference) residuals is computed in running
bins of the CNN label, and a low-order polynomial is fitted to it. At prediction time
the polynomial, evaluated at the predicted label (clipped to the fitted range), is added
in quadrature to the ensemble spread to give the total uncertainty ``sigma_*``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..exceptions import InputDataError

__all__ = ["ResidualFit", "running_dispersion", "fit_residual_dispersion"]


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
