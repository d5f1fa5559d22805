"""Comparison with GALAH DR3 (Buder et al. 2021; paper Sect. 6.3, Fig. 22).

GALAH quality cuts of the paper (GALAH DR3 best practices): ``flag_guess = 0``,
``flag_sp = 0``, ``flag_fe_h = 0``, ``flag_alpha_fe = 0`` (each applied when the column
is present) and ``snr_c3_iraf > 40``. CNN labels are kept within the training-sample
limits (``flag_boundary == "00000000"``). GALAH [alpha/Fe] is compared with the CNN
[alpha/M] as in the paper; GALAH has no overall [M/H], so the CNN [M/H] is compared with
GALAH [Fe/H] in an extra row labelled ``mh``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy import log
from astropy.table import Table
from matplotlib.figure import Figure

from ..constants import LABEL_LATEX
from .crossmatch import SNR_BINS, good_mask, snr_subsets
from .stats import column, comparison_table
from .style import COLOURS, new_figure, styled

__all__ = ["GIANT_LOGG", "METAL_POOR_FEH", "galah_quality_mask",
           "galah_subsets", "compare_galah", "plot_galah_snr"]

#: Giants have log g below this value (paper Sect. 2.6), dwarfs above.
GIANT_LOGG = 3.5
#: Metal-poor regime: reference [Fe/H] below this value.
METAL_POOR_FEH = -1.0
#: Labels compared and the GALAH column each is compared with.
GALAH_PAIRS = {"teff": "teff", "logg": "logg", "feh": "feh", "alpham": "alpham", "mh": "feh"}


def galah_quality_mask(table: Table, prefix: str = "") -> np.ndarray:
    """Rows passing the paper's GALAH DR3 cuts (flags zero, ``snr_c3_iraf > 40``).

    Applies `gaiarvs_cnn.archives.galah.galah_quality_mask` to the columns starting with
    ``prefix``.

    Parameters
    ----------
    table : `~astropy.table.Table`
        A GALAH reference (``prefix=""``) or a matched table (``prefix="ref_"``).
    prefix : str
        Prefix of the GALAH columns.

    Returns
    -------
    numpy.ndarray of bool
    """
    from ..archives.galah import galah_quality_mask as _mask

    view = Table({c[len(prefix):]: table[c] for c in table.colnames if c.startswith(prefix)},
                 copy=False)
    mask = np.asarray(_mask(view), dtype=bool)
    log.info(f"GALAH quality cuts keep {int(mask.sum())} of {len(table)} stars.")
    return mask


def galah_subsets(matched: Table, snr_column: str = "rvs_snr", prefix: str = "ref_",
                  base: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Named row selections of the GALAH comparison.

    ``all``; the RVS S/N bins (`~gaiarvs_cnn.validation.crossmatch.SNR_BINS`); giants and
    dwarfs (GALAH log g < / >= 3.5), also per S/N bin; giants with log g < 2.2; and the
    metal-poor regime (GALAH [Fe/H] < -1), all within ``base``.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue matched with GALAH.
    snr_column : str
        RVS S/N column.
    prefix : str
        Prefix of the GALAH columns.
    base : bool array, optional
        Rows allowed in every subset (default all).

    Returns
    -------
    dict of str -> numpy.ndarray of bool
    """
    n = len(matched)
    base = np.ones(n, bool) if base is None else base
    logg, feh = column(matched, f"{prefix}logg"), column(matched, f"{prefix}feh")
    snr = column(matched, snr_column) if snr_column in matched.colnames else np.full(n, np.nan)
    bins = snr_subsets(snr)
    types = {"giants": logg < GIANT_LOGG, "dwarfs": logg >= GIANT_LOGG}
    subsets = {"all": base, **{k: base & v for k, v in bins.items()}}
    for tname, tmask in types.items():
        subsets[tname] = base & tmask
        subsets.update({f"{tname} {k}": base & tmask & v for k, v in bins.items()})
    subsets["logg<2.2"] = base & (logg < 2.2)
    subsets["metal-poor [Fe/H]<-1"] = base & (feh < METAL_POOR_FEH)
    subsets["[Fe/H]>=-1"] = base & (feh >= METAL_POOR_FEH)
    return subsets


def compare_galah(matched: Table, prefix: str = "ref_", snr_column: str = "rvs_snr",
                  good_only: bool = True, quality_cuts: bool = True) -> Table:
    """CNN - GALAH statistics per label, per S/N bin, for giants and dwarfs, metal-poor.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue matched with a GALAH reference (columns ``ref_*``) and with the store
        column ``rvs_snr``.
    prefix : str
        Prefix of the GALAH columns.
    snr_column : str
        RVS S/N column.
    good_only : bool
        Keep only ``flag_boundary == "00000000"``.
    quality_cuts : bool
        Apply `galah_quality_mask`.

    Returns
    -------
    `~astropy.table.Table`
        `~gaiarvs_cnn.validation.stats.comparison_table` rows (labels teff, logg, feh,
        alpham and mh vs GALAH [Fe/H]).
    """
    base = good_mask(matched, good_only)
    if quality_cuts:
        base &= galah_quality_mask(matched, prefix)
    pairs = {k: (k, prefix + v) for k, v in GALAH_PAIRS.items()
             if k in matched.colnames and prefix + v in matched.colnames}
    table = comparison_table(matched, pairs, galah_subsets(matched, snr_column, prefix, base),
                             "galah")
    cuts = ["GALAH flag_guess, flag_sp, flag_fe_h, flag_alpha_fe = 0, snr_c3_iraf > 40"
            ] if quality_cuts else []
    table.meta["cuts"] = "; ".join(cuts + (["CNN flag_boundary = 00000000"] if good_only else []))
    return table


@styled
def plot_galah_snr(stats: Table, labels: Sequence[str] = ("teff", "logg", "feh", "alpham"),
                   snr_bins: dict = SNR_BINS) -> Figure:
    """Bias (top row) and dispersion (bottom row) of CNN - GALAH against RVS S/N.

    Giants and dwarfs are drawn separately; error bars on the bias are ``e_bias``.

    Parameters
    ----------
    stats : `~astropy.table.Table`
        Output of `compare_galah`.
    labels : sequence of str
        Labels, one column of panels each.
    snr_bins : dict
        S/N bins (names as in ``stats["subset"]``).

    Returns
    -------
    `~matplotlib.figure.Figure`
    """
    fig, axes = new_figure(2, len(labels), panel_size=(2.2, 2.0), sharex=True)
    centres = np.arange(len(snr_bins))
    groups = {"giants": COLOURS["cnn"], "dwarfs": COLOURS["model"]}
    for j, label in enumerate(labels):
        rows = stats[stats["label"] == label]
        for k, (group, colour) in enumerate(groups.items()):
            sel = [np.flatnonzero(rows["subset"] == f"{group} {b}") for b in snr_bins]
            vals = {c: np.array([rows[c][i[0]] if i.size else np.nan for i in sel])
                    for c in ("bias", "e_bias", "sigma_mad", "std")}
            x = centres + (k - 0.5) * 0.12
            axes[0, j].errorbar(x, vals["bias"], yerr=vals["e_bias"], fmt="o", ms=3,
                                color=colour, label=group)
            axes[1, j].plot(x, vals["sigma_mad"], "o-", ms=3, color=colour,
                            label=rf"{group} $\sigma_\mathrm{{MAD}}$")
            axes[1, j].plot(x, vals["std"], "s--", ms=2.5, color=colour, mfc="none",
                            label=f"{group} std")
        unit = "K" if label == "teff" else "dex"
        axes[0, j].axhline(0.0, color=COLOURS["zero"], ls="--", lw=0.7)
        axes[0, j].set_ylabel(f"bias {LABEL_LATEX[label]} [{unit}]")
        axes[1, j].set_ylabel(f"dispersion {LABEL_LATEX[label]} [{unit}]")
        axes[1, j].set_ylim(bottom=0.0)
        axes[1, j].set_xticks(centres, [b.replace("snr ", "").replace(">=", "$\\geq$")
                                        for b in snr_bins])
        axes[1, j].set_xlabel("RVS S/N [per pixel]")
    axes[0, 0].legend(frameon=False)
    axes[1, 0].legend(frameon=False, fontsize=5.5)
    fig.suptitle("CNN $-$ GALAH DR3")
    return fig
