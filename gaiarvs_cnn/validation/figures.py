"""Generic validation figures: Kiel diagrams and 1:1 + residual comparison panels.

Comparison-specific figures live next to their statistics (`seismic`, `galah`,
`clusters`, `gaia_ap`, `precision`, `bimodality`); all share `style`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy.table import Table
from matplotlib.figure import Figure

from ..constants import LABELS
from ..exceptions import InputDataError
from .stats import column, finite
from .style import (
    add_colorbar,
    annotate_stats,
    axis_label,
    density_panel,
    label_limits,
    new_figure,
    present_labels,
    running_line,
    styled,
    zero_line,
)

__all__ = ["plot_comparison", "plot_kiel"]

#: S/N bins of the paper's Fig. 11.
KIEL_SNR_BINS = ((15.0, 25.0), (25.0, 35.0), (35.0, 75.0), (75.0, np.inf))


@styled
def plot_comparison(matched: Table, prefix: str = "ref_", labels: Sequence[str] = LABELS,
                    reference_name: str = "reference", bins: int = 40) -> Figure:
    """One-to-one (top row) and residual CNN - reference (bottom row) panels per label.

    Both rows are density maps; the residual panels carry the running median with its
    MAD-based dispersion band, and the bias ``b`` and dispersion ``sigma`` (paper Fig. 7,
    20 and 22 style).

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Output of `~gaiarvs_cnn.validation.crossmatch.match_reference`.
    prefix : str
        Prefix of the reference columns (``"ref_"``; ``"true_"`` for the simulation truth).
    labels : sequence of str
        Labels to show (those absent from either side are skipped).
    reference_name : str
        Name of the reference on the axes (``"GALAH DR3"``).
    bins : int
        Number of bins per axis of the density maps.

    Returns
    -------
    `~matplotlib.figure.Figure`
    """
    show = present_labels(matched, prefix, labels)
    if not show:
        raise InputDataError(f"No label is shared by the catalogue and the {reference_name} "
                             f"columns '{prefix}*'.")
    fig, axes = new_figure(2, len(show))
    for j, label in enumerate(show):
        ref, cnn = column(matched, prefix + label), column(matched, label)
        lims = label_limits(label)
        top, bottom = axes[0, j], axes[1, j]
        image = density_panel(top, ref, cnn, bins=np.linspace(*lims, bins + 1))
        top.set_xlim(*lims)
        top.set_ylim(*lims)
        zero_line(top, horizontal=False)
        top.set_xlabel(axis_label(label, suffix=f" ({reference_name})"))
        top.set_ylabel(axis_label(label, suffix=" (CNN)"))
        diff = cnn - ref
        ok = finite(ref, diff)
        span = 4.0 * max(np.nanpercentile(np.abs(diff[ok]), 84) if ok.any() else 1.0, 1e-3)
        density_panel(bottom, ref, diff, bins=(np.linspace(*lims, bins + 1),
                                              np.linspace(-span, span, bins + 1)))
        running_line(bottom, ref, diff)
        zero_line(bottom)
        annotate_stats(bottom, diff, label)
        bottom.set_xlim(*lims)
        bottom.set_ylim(-span, span)
        bottom.set_xlabel(axis_label(label, suffix=f" ({reference_name})"))
        bottom.set_ylabel(axis_label(label, prefix="CNN $-$ ", suffix=""))
        if image is not None and j == len(show) - 1:
            add_colorbar(fig, image, [top, bottom], "stars per bin")
    axes[1, 0].legend(loc="upper left", frameon=False)
    return fig


@styled
def plot_kiel(catalog: Table, snr: np.ndarray | None = None,
              snr_bins: Sequence[tuple[float, float]] = KIEL_SNR_BINS,
              colour_label: str = "mh", background: np.ndarray | None = None) -> Figure:
    """Kiel diagrams (Teff vs log g) in S/N bins, colour-coded by [M/H] (paper Fig. 11).

    Parameters
    ----------
    catalog : `~astropy.table.Table`
        Catalogue with ``teff``, ``logg`` and ``colour_label`` columns.
    snr : array, optional
        RVS S/N per row; without it one panel shows all stars.
    snr_bins : sequence of (lo, hi)
        S/N bins (``lo <= S/N < hi``), default the paper's 15-25, 25-35, 35-75, >= 75.
    colour_label : str
        Label coding the colour (default ``mh``).
    background : bool array, optional
        Stars drawn as a grey density in the background (e.g. outside the training
        limits, ``flag_boundary != "00000000"``); the others are colour-coded.

    Returns
    -------
    `~matplotlib.figure.Figure`
    """
    teff, logg, col = (column(catalog, c) for c in ("teff", "logg", colour_label))
    bins = [(-np.inf, np.inf)] if snr is None else list(snr_bins)
    snr = np.zeros(len(catalog)) if snr is None else np.asarray(snr, dtype=float)
    back = np.zeros(len(catalog), bool) if background is None else np.asarray(background, bool)
    fig, axes = new_figure(1, len(bins), panel_size=(2.5, 2.6), sharex=True, sharey=True)
    lo_c, hi_c = label_limits(colour_label)
    sc = None
    for ax, (lo, hi) in zip(axes[0], bins):
        sel = (snr >= lo) & (snr < hi)
        density_panel(ax, teff[sel & back], logg[sel & back],
                      bins=(np.linspace(3000, 8000, 51), np.linspace(-0.5, 5.5, 49)))
        fg = sel & ~back
        order = np.argsort(-col[fg])
        sc = ax.scatter(teff[fg][order], logg[fg][order], c=col[fg][order], s=2, lw=0,
                        vmin=lo_c, vmax=hi_c, cmap="viridis", rasterized=True)
        title = "all S/N" if not np.isfinite(lo) else (
            f"S/N $\\geq$ {lo:g}" if not np.isfinite(hi) else f"{lo:g} $\\leq$ S/N < {hi:g}")
        ax.set_title(f"{title} (N = {int(fg.sum())})")
        ax.set_xlabel(axis_label("teff", suffix=" (CNN)"))
    axes[0, 0].set_ylabel(axis_label("logg", suffix=" (CNN)"))
    axes[0, 0].set_xlim(7000, 3300)
    axes[0, 0].set_ylim(5.2, 0.0)
    add_colorbar(fig, sc, axes[0].tolist(), axis_label(colour_label, suffix=" (CNN)"))
    return fig
