"""One figure style for every validation plot, and the panel helpers they share.

Every figure function of `gaiarvs_cnn.validation` builds a `matplotlib.figure.Figure`
directly (no pyplot state), inside `figure_style`, and labels its axes with units via
`axis_label`. Density maps use `density_panel`, running medians `running_line`, and the
"b = ..., sigma = ..." annotations `annotate_stats`, so that all figures look alike.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..constants import LABEL_LATEX, LABELS
from .stats import difference_stats, finite, running_stats

__all__ = ["STYLE", "LABEL_UNIT_TEXT", "axis_label", "figure_style", "styled", "new_figure",
           "density_panel", "running_line", "annotate_stats", "add_colorbar", "zero_line"]

#: rcParams applied to every validation figure.
STYLE = {
    "font.size": 8.0,
    "axes.labelsize": 8.0,
    "axes.titlesize": 8.0,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "legend.fontsize": 6.5,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "axes.linewidth": 0.7,
    "lines.linewidth": 1.0,
    "image.cmap": "viridis",
    "figure.dpi": 100,
    "savefig.bbox": "standard",
    "font.family": "DejaVu Sans",
    "mathtext.fontset": "dejavusans",
}

#: Unit text printed after each label name on an axis.
LABEL_UNIT_TEXT = {"teff": "K", "logg": r"dex, cm s$^{-2}$", "mh": "dex", "alpham": "dex",
                   "feh": "dex"}

#: Colours of the line families (one colour per role in all figures).
COLOURS = {"median": "crimson", "scatter": "crimson", "zero": "0.2", "ref": "tab:orange",
           "cnn": "tab:green", "model": "tab:blue"}

_PANEL_SIZE = (2.6, 2.3)


def axis_label(label: str, prefix: str = "", suffix: str = "") -> str:
    """Return an axis label with the label's LaTeX name and unit, e.g. ``T_eff [K]``.

    Parameters
    ----------
    label : str
        One of `~gaiarvs_cnn.constants.LABELS`.
    prefix, suffix : str
        Text placed before the name (``"CNN - "``) or after it (``" (GALAH)"``).

    Returns
    -------
    str
    """
    return f"{prefix}{LABEL_LATEX[label]}{suffix} [{LABEL_UNIT_TEXT[label]}]"


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Context manager applying `STYLE` to the artists created inside it.

    Yields
    ------
    None
    """
    with mpl.rc_context(STYLE):
        yield


def styled(func: Callable[..., Figure]) -> Callable[..., Figure]:
    """Decorator running a figure function inside `figure_style`.

    Parameters
    ----------
    func : callable
        Function returning a `~matplotlib.figure.Figure`.

    Returns
    -------
    callable
        The wrapped function.
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs) -> Figure:
        with figure_style():
            return func(*args, **kwargs)
    return wrapper


def new_figure(nrows: int, ncols: int, panel_size: Sequence[float] = _PANEL_SIZE,
               squeeze: bool = False, **subplot_kw) -> tuple[Figure, np.ndarray]:
    """Create a `Figure` (constrained layout) with an ``nrows x ncols`` grid of axes.

    Parameters
    ----------
    nrows, ncols : int
        Grid shape.
    panel_size : (float, float)
        Width and height of one panel in inches.
    squeeze : bool
        As in `matplotlib.figure.Figure.subplots`.
    **subplot_kw
        Passed to `~matplotlib.figure.Figure.subplots` (``sharex``, ``sharey`` ...).

    Returns
    -------
    fig : `~matplotlib.figure.Figure`
    axes : `numpy.ndarray` of Axes, shape ``(nrows, ncols)`` unless ``squeeze``.
    """
    fig = Figure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **subplot_kw)
    return fig, axes


def add_colorbar(fig: Figure, mappable, ax, label: str):
    """Attach a labelled colour bar to ``ax`` (or a list of axes).

    Parameters
    ----------
    fig : `~matplotlib.figure.Figure`
    mappable : matplotlib ScalarMappable
        The image or scatter plot.
    ax : Axes or list of Axes
        Axes the bar steals room from.
    label : str
        Colour-bar label, with units.

    Returns
    -------
    matplotlib.colorbar.Colorbar
    """
    cbar = fig.colorbar(mappable, ax=ax, pad=0.01, fraction=0.05)
    cbar.set_label(label)
    return cbar


def density_panel(ax, x: np.ndarray, y: np.ndarray, bins: int | Sequence = 40,
                  cmap: str = "Greys", vmin: float = 1.0, vmax: float | None = None):
    """Draw a 2-d histogram (log colour scale, empty bins blank) and return its image.

    Parameters
    ----------
    ax : Axes
    x, y : array-like
        Coordinates; non-finite points are ignored.
    bins : int or sequence
        As in `numpy.histogram2d`.
    cmap : str
        Colour map.
    vmin, vmax : float
        Colour-scale limits in stars per bin; ``vmax`` shares one scale between panels
        (default: the largest count, at least 10).

    Returns
    -------
    matplotlib.collections.QuadMesh or None
        None when there is nothing to plot.
    """
    ok = finite(x, y)
    if not ok.any():
        return None
    counts, xe, ye = np.histogram2d(np.asarray(x)[ok], np.asarray(y)[ok], bins=bins)
    counts = np.where(counts >= vmin, counts, np.nan)
    if vmax is None:
        vmax = max(np.nanmax(counts) if np.isfinite(counts).any() else 0.0, 10.0 * vmin)
    return ax.pcolormesh(xe, ye, counts.T, cmap=cmap, norm=LogNorm(vmin=vmin, vmax=vmax),
                         rasterized=True)


def running_line(ax, x: np.ndarray, y: np.ndarray, nbins: int = 12, min_count: int = 5,
                 colour: str = COLOURS["median"], label: str | None = "running median"):
    """Overplot the running median of ``y`` against ``x`` and its +/- robust dispersion band.

    Parameters
    ----------
    ax : Axes
    x, y : array-like
        Abscissa and values (see `~gaiarvs_cnn.validation.stats.running_stats`).
    nbins, min_count : int
        Equal-count bins and the minimum count per bin.
    colour : str
        Line and band colour.
    label : str or None
        Legend label of the line (None: no legend entries).

    Returns
    -------
    `~astropy.table.Table`
        The running statistics drawn.
    """
    run = running_stats(x, y, nbins=nbins, min_count=min_count)
    if len(run) == 0:
        return run
    xc, med, sig = (np.asarray(run[c]) for c in ("x", "median", "sigma_mad"))
    ax.plot(xc, med, "-", color=colour, label=label)
    ax.fill_between(xc, med - sig, med + sig, color=colour, alpha=0.2, lw=0,
                    label=r"$\pm\sigma_\mathrm{MAD}$" if label else None)
    return run


def zero_line(ax, horizontal: bool = True) -> None:
    """Dashed zero-difference line (horizontal) or 1:1 line (``horizontal=False``).

    Parameters
    ----------
    ax : Axes
    horizontal : bool
        Horizontal zero line, or the diagonal (equal axis limits are then set).
    """
    if horizontal:
        ax.axhline(0.0, color=COLOURS["zero"], ls="--", lw=0.7)
    else:
        lo = min(ax.get_xlim()[0], ax.get_ylim()[0])
        hi = max(ax.get_xlim()[1], ax.get_ylim()[1])
        ax.plot([lo, hi], [lo, hi], ls="--", color=COLOURS["zero"], lw=0.7)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)


def annotate_stats(ax, diff: np.ndarray, label: str = "", loc: str = "lower left",
                   colour: str = "black", prefix: str = "", row: int = 0) -> dict:
    """Write ``b`` (median difference) and ``sigma`` (MAD-based) of ``diff`` in a corner.

    Parameters
    ----------
    ax : Axes
    diff : array-like
        Differences.
    label : str
        Label name (``teff`` is printed without decimals).
    loc : {"lower left", "upper left", "lower right", "upper right"}
        Corner.
    colour : str
        Text colour.
    prefix : str
        Text before ``b = ...``.
    row : int
        Stacks several annotations in the same corner (0 is nearest the corner).

    Returns
    -------
    dict
        The statistics (see `~gaiarvs_cnn.validation.stats.difference_stats`).
    """
    st = difference_stats(diff)
    fmt = "{:.0f}" if label == "teff" else "{:.3f}"
    text = (f"{prefix}b = {fmt.format(st['bias'])}, "
            rf"$\sigma$ = {fmt.format(st['sigma_mad'])}, N = {st['n']}")
    xy = {"lower left": (0.03, 0.04, "left", "bottom"), "upper left": (0.03, 0.96, "left", "top"),
          "lower right": (0.97, 0.04, "right", "bottom"),
          "upper right": (0.97, 0.96, "right", "top")}[loc]
    step = 0.075 * row * (1 if xy[3] == "bottom" else -1)
    ax.text(xy[0], xy[1] + step, text, transform=ax.transAxes, ha=xy[2], va=xy[3], color=colour,
            fontsize=6.5)
    return st


def label_limits(label: str) -> tuple[float, float]:
    """Default axis range of a label (training-sample range of the paper, padded).

    Parameters
    ----------
    label : str

    Returns
    -------
    (float, float)
    """
    from ..constants import PAPER_TRAINING_RANGES

    lo, hi = PAPER_TRAINING_RANGES[label]
    pad = 0.08 * (hi - lo)
    return lo - pad, hi + pad


def present_labels(table, prefix: str, labels: Sequence[str] = LABELS) -> list[str]:
    """Labels that both the catalogue and the reference columns ``prefix<label>`` hold.

    Parameters
    ----------
    table : `~astropy.table.Table`
    prefix : str
        Reference-column prefix.
    labels : sequence of str
        Candidate labels.

    Returns
    -------
    list of str
    """
    return [k for k in labels if k in table.colnames and f"{prefix}{k}" in table.colnames]
