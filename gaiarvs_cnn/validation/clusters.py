"""Open clusters (Cantat-Gaudin et al. 2020 members; paper Sect. 6.4, Fig. 23).

Members of one cluster share their chemistry, so the CNN dispersion of [M/H], [alpha/M]
and [Fe/H] within a cluster measures its precision, and a trend of the member abundances
with log g reveals gravity-dependent systematics. Where GALAH DR3 observed members too,
the cluster means are compared.

Members are stars of the membership list with ``proba >= 0.7`` (Cantat-Gaudin et al.
2020 use 0.7 for their reference sample); clusters need at least four such members
("more than three members", paper Sect. 6.4).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy.table import Table
from matplotlib.figure import Figure

from .crossmatch import good_mask
from .stats import column, difference_stats, finite
from .style import COLOURS, add_colorbar, axis_label, new_figure, styled, zero_line

__all__ = ["MIN_PROBA", "MIN_MEMBERS", "CLUSTER_LABELS", "member_mask", "cluster_statistics",
           "cluster_logg_trends", "plot_clusters"]

#: Minimum membership probability.
MIN_PROBA = 0.7
#: Minimum number of members per cluster.
MIN_MEMBERS = 4
#: Labels examined within clusters.
CLUSTER_LABELS = ("mh", "alpham", "feh")


def member_mask(matched: Table, prefix: str = "ref_", min_proba: float = MIN_PROBA,
                good_only: bool = True) -> np.ndarray:
    """Rows that are cluster members (``proba >= min_proba``, flag good if ``good_only``).

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue matched with a membership list.
    prefix : str
        Prefix of the membership columns (``ref_proba``).
    min_proba : float
        Minimum membership probability.
    good_only : bool
        Also require ``flag_boundary == "00000000"``.

    Returns
    -------
    numpy.ndarray of bool
    """
    mask = column(matched, f"{prefix}proba") >= min_proba
    return mask & good_mask(matched) if good_only else mask


def _cluster_groups(matched: Table, mask: np.ndarray, prefix: str, min_members: int):
    names = np.asarray(matched[f"{prefix}cluster"]).astype(str)
    for name in np.unique(names[mask]):
        rows = np.flatnonzero(mask & (names == name))
        if rows.size >= min_members:
            yield name, rows


def cluster_statistics(matched: Table, prefix: str = "ref_", galah_prefix: str = "galah_",
                       labels: Sequence[str] = CLUSTER_LABELS, min_members: int = MIN_MEMBERS,
                       min_proba: float = MIN_PROBA, good_only: bool = True) -> Table:
    """Per-cluster mean and dispersion of the CNN labels, and the GALAH comparison.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue matched with a cluster membership list (``ref_cluster``, ``ref_proba``),
        optionally also with GALAH (columns ``galah_feh``) and simulation truth
        (``true_feh``).
    prefix, galah_prefix : str
        Prefixes of the membership and GALAH columns.
    labels : sequence of str
        CNN labels summarised per cluster.
    min_members : int
        Minimum number of members.
    min_proba : float
        Minimum membership probability.
    good_only : bool
        Keep only ``flag_boundary == "00000000"``.

    Returns
    -------
    `~astropy.table.Table`
        One row per cluster: ``cluster, n``; ``mean_<label>, std_<label>`` for each label;
        ``n_galah, galah_mean_feh, galah_std_feh, cnn_minus_galah_feh`` (mean over the
        members GALAH observed; NaN without GALAH); ``true_mean_feh`` when the truth is
        present.
    """
    mask = member_mask(matched, prefix, min_proba, good_only)
    has_galah = f"{galah_prefix}feh" in matched.colnames
    rows = []
    for name, idx in _cluster_groups(matched, mask, prefix, min_members):
        row = {"cluster": name, "n": idx.size}
        for label in labels:
            vals = column(matched, label)[idx]
            row[f"mean_{label}"] = float(np.nanmean(vals))
            row[f"std_{label}"] = float(np.nanstd(vals, ddof=1))
        galah = column(matched, f"{galah_prefix}feh")[idx] if has_galah else np.full(idx.size,
                                                                                   np.nan)
        both = np.isfinite(galah) & np.isfinite(column(matched, "feh")[idx])
        row["n_galah"] = int(both.sum())
        row["galah_mean_feh"] = float(np.mean(galah[both])) if both.any() else np.nan
        row["galah_std_feh"] = float(np.std(galah[both], ddof=1)) if both.sum() > 1 else np.nan
        row["cnn_minus_galah_feh"] = (float(np.mean(column(matched, "feh")[idx][both]))
                                      - row["galah_mean_feh"]) if both.any() else np.nan
        if "true_feh" in matched.colnames:
            row["true_mean_feh"] = float(np.nanmean(column(matched, "true_feh")[idx]))
        rows.append(row)
    if not rows:
        return Table(names=("cluster", "n"), dtype=(str, int))
    table = Table(rows=rows)
    table.meta["selection"] = (f"proba >= {min_proba:g}, >= {min_members} members"
                               + (", flag_boundary = 00000000" if good_only else ""))
    return table


def _residual_from_cluster_mean(matched: Table, label: str, mask: np.ndarray, prefix: str,
                                min_members: int) -> np.ndarray:
    res = np.full(len(matched), np.nan)
    vals = column(matched, label)
    for _, idx in _cluster_groups(matched, mask, prefix, min_members):
        res[idx] = vals[idx] - np.nanmean(vals[idx])
    return res


def cluster_logg_trends(matched: Table, prefix: str = "ref_",
                        labels: Sequence[str] = CLUSTER_LABELS, min_members: int = MIN_MEMBERS,
                        min_proba: float = MIN_PROBA, good_only: bool = True) -> Table:
    """Trend of member abundances with CNN log g (pooled over clusters).

    Each member's label minus its cluster mean is fitted as ``a + slope * log g`` by least
    squares; a slope compatible with zero means no gravity-dependent systematics.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        As for `cluster_statistics`.
    prefix : str
        Prefix of the membership columns.
    labels : sequence of str
        Labels to fit.
    min_members, min_proba, good_only
        As for `cluster_statistics`.

    Returns
    -------
    `~astropy.table.Table`
        ``label, n, slope, e_slope`` (dex per dex) and ``scatter`` (MAD-based dispersion of
        the member residuals, the within-cluster precision).
    """
    mask = member_mask(matched, prefix, min_proba, good_only)
    logg = column(matched, "logg")
    rows = []
    for label in labels:
        res = _residual_from_cluster_mean(matched, label, mask, prefix, min_members)
        ok = finite(res, logg)
        if ok.sum() < 3:
            rows.append((label, int(ok.sum()), np.nan, np.nan, np.nan))
            continue
        coef, cov = np.polyfit(logg[ok], res[ok], 1, cov="unscaled")
        resid = res[ok] - np.polyval(coef, logg[ok])
        var = np.sum(resid**2) / max(ok.sum() - 2, 1)
        rows.append((label, int(ok.sum()), float(coef[0]), float(np.sqrt(cov[0, 0] * var)),
                     difference_stats(res[ok])["sigma_mad"]))
    return Table(rows=rows, names=("label", "n", "slope", "e_slope", "scatter"),
                 dtype=(str, int, float, float, float))


@styled
def plot_clusters(matched: Table, stats: Table, prefix: str = "ref_",
                  min_members: int = MIN_MEMBERS, min_proba: float = MIN_PROBA,
                  good_only: bool = True) -> Figure:
    """Cluster [Fe/H]: CNN vs GALAH cluster means (left) and member residuals vs log g (right).

    Left: mean CNN [Fe/H] of each cluster against the GALAH mean with standard-deviation
    error bars (paper Fig. 23); clusters without GALAH members are plotted against their
    CNN mean on a separate strip. Right: member [Fe/H] minus cluster mean against CNN
    log g, coloured by cluster mean [Fe/H], with the pooled linear trend.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        As for `cluster_statistics`.
    stats : `~astropy.table.Table`
        Output of `cluster_statistics`.
    prefix, min_members, min_proba, good_only
        As for `cluster_statistics`.

    Returns
    -------
    `~matplotlib.figure.Figure`
    """
    fig, axes = new_figure(1, 2, panel_size=(3.0, 2.8))
    left, right = axes[0]
    has = np.isfinite(np.asarray(stats["galah_mean_feh"], float)) if len(stats) else []
    for i, row in enumerate(stats):
        if not has[i]:
            continue
        left.errorbar(row["galah_mean_feh"], row["mean_feh"], xerr=row["galah_std_feh"],
                      yerr=row["std_feh"], fmt="o", ms=3, capsize=1.5, color=COLOURS["cnn"])
        left.annotate(f"{row['cluster']} ({row['cnn_minus_galah_feh']:+.2f})",
                      (row["galah_mean_feh"], row["mean_feh"]), fontsize=5,
                      xytext=(3, -6), textcoords="offset points")
    left.set_xlim(-0.7, 0.5)
    left.set_ylim(-0.7, 0.5)
    zero_line(left, horizontal=False)
    left.set_xlabel(axis_label("feh", suffix=" (GALAH, cluster mean)"))
    left.set_ylabel(axis_label("feh", suffix=" (CNN, cluster mean)"))
    left.set_title(f"{int(np.sum(has))} clusters with GALAH members")
    mask = member_mask(matched, prefix, min_proba, good_only)
    res = _residual_from_cluster_mean(matched, "feh", mask, prefix, min_members)
    logg = column(matched, "logg")
    ok = finite(res, logg)
    means = np.full(len(matched), np.nan)
    means[ok] = (column(matched, "feh") - res)[ok]
    sc = right.scatter(logg[ok], res[ok], c=means[ok], s=4, lw=0, cmap="viridis",
                       vmin=-0.6, vmax=0.4, rasterized=True)
    if ok.sum() >= 3:
        coef = np.polyfit(logg[ok], res[ok], 1)
        xx = np.linspace(np.min(logg[ok]), np.max(logg[ok]), 10)
        right.plot(xx, np.polyval(coef, xx), color=COLOURS["median"],
                   label=f"slope {coef[0]:+.3f} dex/dex")
        right.legend(loc="upper right", frameon=False)
    zero_line(right)
    right.set_ylim(-0.4, 0.4)
    right.set_xlabel(axis_label("logg", suffix=" (CNN)"))
    right.set_ylabel(axis_label("feh", prefix="member ", suffix=" $-$ cluster mean"))
    add_colorbar(fig, sc, right, axis_label("feh", suffix=" cluster mean"))
    return fig
