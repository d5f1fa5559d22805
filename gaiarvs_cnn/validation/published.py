"""Our labels against the paper's published RVS-CNN catalogue, star by star.

``validate --against published --reference published=FILE`` (or ``--source archive``):
per-label bias and dispersion of ours minus published for all matched stars, per RVS S/N
bin and for giants / dwarfs (published log g < / >= 3.5), the one-to-one figure, and the
digit-by-digit agreement of ``flag_boundary`` (which of the eight limits each catalogue
says a star is outside of), with its figure. The published catalogue's own labels are the
reference: a re-implementation that reproduces the paper gives biases near zero and
dispersions of the order of the model-to-model scatter.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy.table import Table
from matplotlib.figure import Figure

from ..constants import LABELS
from ..flags.boundary import FLAG_POSITIONS, decode_flag
from .crossmatch import match_reference, snr_subsets
from .figures import plot_comparison
from .registry import register_comparison
from .report import ValidationResult
from .stats import column, comparison_table
from .style import new_figure, styled

__all__ = ["GIANT_LOGG", "published_subsets", "compare_published", "flag_agreement",
           "plot_flag_agreement", "validate_published"]

#: Giants have published log g below this (dex), dwarfs at or above.
GIANT_LOGG = 3.5


def published_subsets(matched: Table, prefix: str = "ref_",
                      snr_column: str = "rvs_snr") -> dict[str, np.ndarray]:
    """Row selections: ``all``, the RVS S/N bins, ``giants`` and ``dwarfs``.

    Parameters
    ----------
    matched : astropy.table.Table
        Our catalogue matched with the published one (``ref_*`` columns).
    prefix : str
        Prefix of the published columns.
    snr_column : str
        RVS S/N column (from the store); the S/N bins are empty without it.

    Returns
    -------
    dict of str to numpy.ndarray of bool
    """
    n = len(matched)
    logg = column(matched, f"{prefix}logg")
    snr = column(matched, snr_column) if snr_column in matched.colnames else np.full(n, np.nan)
    return {"all": np.ones(n, bool), **snr_subsets(snr), "giants": logg < GIANT_LOGG,
            "dwarfs": logg >= GIANT_LOGG}


def compare_published(matched: Table, prefix: str = "ref_",
                      snr_column: str = "rvs_snr") -> Table:
    """Bias and dispersion of ours minus published, per label and subset.

    Parameters
    ----------
    matched : astropy.table.Table
        Our catalogue matched with the published one.
    prefix : str
        Prefix of the published columns.
    snr_column : str
        RVS S/N column.

    Returns
    -------
    astropy.table.Table
        `~gaiarvs_cnn.validation.stats.comparison_table` rows (comparison ``published``).
    """
    pairs = {k: (k, prefix + k) for k in LABELS
             if k in matched.colnames and prefix + k in matched.colnames}
    return comparison_table(matched, pairs, published_subsets(matched, prefix, snr_column),
                            "published")


def flag_agreement(ours: Sequence[str], published: Sequence[str]) -> Table:
    """Digit-by-digit agreement of two ``flag_boundary`` columns of the same stars.

    Parameters
    ----------
    ours, published : sequence of str
        Eight-character flags, row-aligned.

    Returns
    -------
    astropy.table.Table
        One row per digit (`~gaiarvs_cnn.flags.boundary.FLAG_POSITIONS`) and a last row
        ``all`` (the whole flag equal): ``n``, ``both_0``, ``ours_0_published_1``,
        ``ours_1_published_0``, ``both_1`` and ``agreement`` (fraction of equal digits).
    """
    a, b = decode_flag(ours), decode_flag(published)
    rows = []
    for j, name in enumerate(FLAG_POSITIONS):
        x, y = a[name], b[name]
        rows.append((j + 1, name, x.size, int((~x & ~y).sum()), int((~x & y).sum()),
                     int((x & ~y).sum()), int((x & y).sum()),
                     float(np.mean(x == y)) if x.size else np.nan))
    same = np.asarray(ours).astype("<U8") == np.asarray(published).astype("<U8")
    good_a = np.asarray(ours).astype("<U8") == "0" * 8
    good_b = np.asarray(published).astype("<U8") == "0" * 8
    rows.append((0, "all", same.size, int((good_a & good_b).sum()),
                 int((good_a & ~good_b).sum()), int((~good_a & good_b).sum()),
                 int((~good_a & ~good_b).sum()), float(np.mean(same)) if same.size else np.nan))
    return Table(rows=rows, names=("digit", "position", "n", "both_0", "ours_0_published_1",
                                   "ours_1_published_0", "both_1", "agreement"))


@styled
def plot_flag_agreement(agreement: Table) -> Figure:
    """The flag agreement as a heat map: for each digit, the four (ours, published) cases.

    Parameters
    ----------
    agreement : astropy.table.Table
        Output of `flag_agreement`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    cases = ("both_0", "ours_0_published_1", "ours_1_published_0", "both_1")
    labels = [f"{r['digit']} {r['position']}" if r["digit"] else "whole flag"
              for r in agreement]
    counts = np.array([[r[c] for c in cases] for r in agreement], dtype=float)
    frac = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, axes = new_figure(1, 1, panel_size=(5.0, 4.2))
    ax = axes[0, 0]
    image = ax.imshow(frac, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i in range(frac.shape[0]):
        for j in range(frac.shape[1]):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                    color="w" if frac[i, j] < 0.5 else "k", fontsize=7)
    ax.set_xticks(range(len(cases)),
                  ["0 / 0", "0 / 1", "1 / 0", "1 / 1"])
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("ours / published digit (whole flag: good = 0)")
    ax.set_title("flag_boundary agreement, "
                 f"{agreement['agreement'][-1] * 100:.1f} % identical")
    fig.colorbar(image, ax=ax, label="fraction of matched stars")
    return fig


def validate_published(data: Table, published: Table) -> ValidationResult:
    """Ours vs the published RVS-CNN catalogue: statistics, figures, flag agreement.

    Parameters
    ----------
    data : astropy.table.Table
        Our catalogue (with the store column ``rvs_snr`` for the S/N bins).
    published : astropy.table.Table
        The published catalogue, canonical kind ``published``
        (`gaiarvs_cnn.archives.published.read_published`).

    Returns
    -------
    `~gaiarvs_cnn.validation.report.ValidationResult`
        Tables ``stats`` and ``flags``; figures ``comparison`` and ``flags``.
    """
    matched = match_reference(data, published)
    stats = compare_published(matched)
    agree = flag_agreement(matched["flag_boundary"], matched["ref_flag_boundary"])
    summary = stats[np.isin(np.asarray(stats["subset"]),
                            ("all", "snr 15-25", "snr 25-50", "snr >=50", "giants", "dwarfs"))]
    result = ValidationResult("published", tables={"stats": stats, "flags": agree},
                              summary=summary)
    result.figures["comparison"] = plot_comparison(matched, "ref_", LABELS,
                                                   "published RVS-CNN")
    result.figures["flags"] = plot_flag_agreement(agree)
    result.notes.append(f"{len(matched)} stars matched; identical flag_boundary for "
                        f"{agree['agreement'][-1] * 100:.1f} %; " + ", ".join(
                            f"{r['label']} bias {r['bias']:+.4g}, sigma {r['sigma_mad']:.4g}"
                            for r in stats[np.asarray(stats["subset"]) == "all"]) + ".")
    return result


@register_comparison("published", required=("published",), order=80,
                     description="star by star vs the paper's released catalogue")
def _run_published(data, refs, bounds):
    return validate_published(data, refs["published"])
