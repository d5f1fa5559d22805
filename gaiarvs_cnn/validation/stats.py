"""Robust statistics of label differences: bias, dispersion, running and binned statistics.

Conventions (used by every comparison of the validation suite):

* ``bias`` is the median of the difference (CNN - reference), ``e_bias`` its standard
  error ``sqrt(pi/2) * sigma_mad / sqrt(n)``; ``mean`` is the plain mean.
* ``sigma_mad`` is the MAD-based dispersion ``1.4826 * median(|d - median(d)|)``
  (equal to the standard deviation for Gaussian differences); ``std`` the plain one.
* Non-finite values are dropped before any statistic.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from astropy.table import Table

from ..constants import LABEL_UNITS
from ..utils.arrays import masked_to_nan

__all__ = ["MAD_TO_SIGMA", "column", "finite", "robust_sigma", "difference_stats",
           "comparison_table", "running_stats", "binned_stats", "STAT_COLUMNS"]

#: Factor turning a median absolute deviation into a Gaussian standard deviation.
MAD_TO_SIGMA = 1.482602218505602
#: Columns of every statistics row, in order.
STAT_COLUMNS = ("n", "bias", "e_bias", "mean", "std", "sigma_mad")


def column(table: Table, name: str, missing_ok: bool = False) -> np.ndarray:
    """Column ``name`` of ``table`` as floats (masked -> NaN).

    Parameters
    ----------
    table : `~astropy.table.Table`
    name : str
        Column name.
    missing_ok : bool
        Return all-NaN for an absent column instead of raising `KeyError`.

    Returns
    -------
    numpy.ndarray of float
    """
    if missing_ok and name not in table.colnames:
        return np.full(len(table), np.nan)
    return masked_to_nan(table[name])


def finite(*arrays) -> np.ndarray:
    """Boolean mask of rows where every array is finite (masked values count as missing).

    Parameters
    ----------
    *arrays : array-like
        Arrays of the same length (plain, masked or `~astropy.table.Column`).

    Returns
    -------
    numpy.ndarray of bool
    """
    mask = None
    for arr in arrays:
        ok = np.isfinite(masked_to_nan(arr))
        mask = ok if mask is None else mask & ok
    return mask


def robust_sigma(x: np.ndarray) -> float:
    """MAD-based dispersion ``1.4826 * median(|x - median(x)|)`` of the finite values.

    Parameters
    ----------
    x : array-like
        Values (any unit; the result has the same unit).

    Returns
    -------
    float
        The dispersion, NaN for an empty input.
    """
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.nan
    return float(MAD_TO_SIGMA * np.median(np.abs(x - np.median(x))))


def difference_stats(diff: np.ndarray) -> dict:
    """Return ``n, bias, e_bias, mean, std, sigma_mad`` of the finite values of ``diff``.

    Parameters
    ----------
    diff : array-like
        Differences (e.g. CNN - reference, in the label's unit); NaN/masked are dropped.

    Returns
    -------
    dict
        ``n`` (int) and the float statistics (module docstring), NaN when empty.

    Examples
    --------
    >>> d = difference_stats([0.1, 0.2, 0.3])
    >>> round(d["bias"], 3), d["n"]
    (0.2, 3)
    """
    d = masked_to_nan(diff)
    d = d[np.isfinite(d)]
    n = int(d.size)
    if n == 0:
        return {"n": 0, "bias": np.nan, "e_bias": np.nan, "mean": np.nan, "std": np.nan,
                "sigma_mad": np.nan}
    sig = robust_sigma(d)
    std = float(np.std(d, ddof=1)) if n > 1 else np.nan
    return {"n": n, "bias": float(np.median(d)),
            "e_bias": float(np.sqrt(np.pi / 2.0) * sig / np.sqrt(n)),
            "mean": float(np.mean(d)), "std": std, "sigma_mad": sig}


def comparison_table(table: Table, pairs: Mapping[str, tuple[str, str]],
                     subsets: Mapping[str, np.ndarray] | None = None,
                     comparison: str = "") -> Table:
    """Statistics of ``table[a] - table[b]`` for each label pair and each subset of rows.

    Parameters
    ----------
    table : `~astropy.table.Table`
        Matched catalogue (one row per star).
    pairs : mapping of label -> (column a, column b)
        E.g. ``{"teff": ("teff", "ref_teff")}``; difference is ``a - b`` in the unit of
        the label (`~gaiarvs_cnn.constants.LABEL_UNITS`).
    subsets : mapping of str -> boolean array, optional
        Named row selections; default a single subset ``"all"``.
    comparison : str
        Name written in the ``comparison`` column (e.g. ``"galah"``).

    Returns
    -------
    `~astropy.table.Table`
        One row per (label, subset): ``comparison, label, subset, unit`` and `STAT_COLUMNS`.
    """
    subsets = {"all": np.ones(len(table), bool)} if subsets is None else subsets
    rows = []
    for label, (a, b) in pairs.items():
        diff = column(table, a) - column(table, b)
        for name, mask in subsets.items():
            st = difference_stats(diff[np.asarray(mask, bool)])
            rows.append({"comparison": comparison, "label": label, "subset": name,
                         "unit": str(LABEL_UNITS.get(label, "")), **st})
    out = Table(rows=rows, names=("comparison", "label", "subset", "unit", *STAT_COLUMNS)
                ) if rows else Table(names=("comparison", "label", "subset", "unit",
                                            *STAT_COLUMNS),
                                     dtype=(str, str, str, str, int, float, float, float,
                                            float, float))
    out.meta["definition"] = ("bias = median(a - b); sigma_mad = 1.4826 MAD; "
                              "e_bias = sqrt(pi/2) sigma_mad / sqrt(n)")
    return out


def binned_stats(x: np.ndarray, y: np.ndarray, edges: Sequence[float]) -> Table:
    """`difference_stats` of ``y`` in bins of ``x`` (``edges[i] <= x < edges[i+1]``).

    Parameters
    ----------
    x : array-like
        Binning quantity (e.g. RVS S/N).
    y : array-like
        Differences to summarise.
    edges : sequence of float
        Bin edges (the last may be ``inf``).

    Returns
    -------
    `~astropy.table.Table`
        ``lo, hi`` and `STAT_COLUMNS` per bin (empty bins have n = 0).
    """
    x = masked_to_nan(x)
    y = masked_to_nan(y)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (x >= lo) & (x < hi)
        rows.append({"lo": float(lo), "hi": float(hi), **difference_stats(y[sel])})
    return Table(rows=rows, names=("lo", "hi", *STAT_COLUMNS))


def running_stats(x: np.ndarray, y: np.ndarray, nbins: int = 12,
                  edges: Sequence[float] | None = None, min_count: int = 5) -> Table:
    """Running median and dispersion of ``y`` in bins of ``x``.

    Parameters
    ----------
    x, y : array-like
        Abscissa and values; pairs with a non-finite member are dropped.
    nbins : int
        Number of equal-count (quantile) bins of ``x``, used unless ``edges`` is given.
    edges : sequence of float, optional
        Explicit bin edges.
    min_count : int
        Bins with fewer points are dropped.

    Returns
    -------
    `~astropy.table.Table`
        Columns ``x`` (median x of the bin), ``n``, ``median``, ``sigma_mad``, ``p16``,
        ``p84``.
    """
    ok = finite(x, y)
    xs = np.asarray(x, dtype=float)[ok]
    ys = np.asarray(y, dtype=float)[ok]
    names = ("x", "n", "median", "sigma_mad", "p16", "p84")
    if xs.size == 0:
        return Table(names=names, dtype=[float, int, float, float, float, float])
    if edges is None:
        edges = np.unique(np.quantile(xs, np.linspace(0.0, 1.0, nbins + 1)))
    edges = np.asarray(edges, dtype=float)
    idx = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for i in range(len(edges) - 1):
        sel = idx == i
        if sel.sum() < min_count:
            continue
        yy = ys[sel]
        rows.append((float(np.median(xs[sel])), int(sel.sum()), float(np.median(yy)),
                     robust_sigma(yy), *np.percentile(yy, [16, 84]).tolist()))
    if not rows:
        return Table(names=names, dtype=[float, int, float, float, float, float])
    return Table(rows=rows, names=names)
