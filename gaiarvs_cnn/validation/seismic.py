"""Surface gravities against asteroseismology (K2-GAP, Zinn et al. 2022; paper Sect. 6.2).

The seismic gravity follows from the frequency of maximum oscillation power and the
effective temperature (Valentini et al. 2019, Eq. 3; Huber et al. 2011 solar values)::

    log g = log g_sun + log10(numax / numax_sun) + 0.5 log10(Teff / Teff_sun)

with numax_sun = 3090 uHz, Teff_sun = 5777 K and log g_sun = log10(G M_sun / R_sun^2)
(IAU 2015 nominal values: 4.438 in cgs). As in the paper the CNN Teff is used.
"""
from __future__ import annotations

from collections.abc import Mapping

import astropy.constants as const
import astropy.units as u
import numpy as np
from astropy.table import Table, vstack
from matplotlib.figure import Figure

from ..constants import LABEL_UNITS
from ..utils.arrays import masked_to_nan
from .crossmatch import good_mask
from .stats import comparison_table
from .style import (
    add_colorbar,
    annotate_stats,
    axis_label,
    density_panel,
    new_figure,
    running_line,
    styled,
    zero_line,
)

__all__ = ["NUMAX_SUN", "TEFF_SUN", "LOGG_SUN", "SEISMIC_LOGG_BINS", "seismic_logg",
           "add_seismic_logg", "compare_seismic", "plot_seismic"]

#: Solar frequency of maximum oscillation power (Huber et al. 2011).
NUMAX_SUN = 3090.0 * u.uHz
#: Solar effective temperature used with NUMAX_SUN.
TEFF_SUN = 5777.0 * u.K
#: Solar surface gravity, log10 of g in cm s^-2 (IAU 2015 nominal G M_sun / R_sun^2).
LOGG_SUN = float(np.log10((const.GM_sun / const.R_sun**2).to_value(u.cm / u.s**2)))
#: Gravity ranges of the paper's Fig. 21 (seismic log g), plus the whole sample.
SEISMIC_LOGG_BINS = {"all": (-np.inf, np.inf), "logg<2.3": (-np.inf, 2.3),
                     "2.3<=logg<2.6": (2.3, 2.6), "logg>=2.6": (2.6, np.inf)}


def seismic_logg(numax, teff, e_numax=None, e_teff=None):
    """Seismic surface gravity from numax and Teff (scaling relation).

    Parameters
    ----------
    numax : `~astropy.units.Quantity` or array
        Frequency of maximum power (uHz if no unit).
    teff : `~astropy.units.Quantity` or array
        Effective temperature (K if no unit).
    e_numax, e_teff : same as above, optional
        Uncertainties; when given, the propagated uncertainty is returned as well.

    Returns
    -------
    logg : ndarray
        log10(g / (cm s^-2)).
    e_logg : ndarray
        Only if ``e_numax`` is given.

    Examples
    --------
    >>> round(float(seismic_logg(3090.0, 5777.0)), 3)
    4.438
    """
    numax = u.Quantity(numax, u.uHz).to_value(u.uHz)
    teff = u.Quantity(teff, u.K).to_value(u.K)
    logg = (LOGG_SUN + np.log10(numax / NUMAX_SUN.to_value(u.uHz))
            + 0.5 * np.log10(teff / TEFF_SUN.to_value(u.K)))
    if e_numax is None:
        return logg
    e_numax = u.Quantity(e_numax, u.uHz).to_value(u.uHz)
    e_teff = 0.0 if e_teff is None else u.Quantity(e_teff, u.K).to_value(u.K)
    e_logg = np.hypot(e_numax / numax, 0.5 * e_teff / teff) / np.log(10.0)
    return logg, e_logg


def add_seismic_logg(matched: Table, prefix: str = "ref_", teff_column: str = "teff") -> Table:
    """Add ``seis_logg`` and ``e_seis_logg`` to a catalogue matched with a seismic reference.

    Uses the CNN Teff (``teff_column``) and its total uncertainty ``sigma_teff`` when
    present.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue matched with a seismic reference (modified in place).
    prefix : str
        Prefix of the reference columns (``ref_numax``, ``ref_e_numax``).
    teff_column : str
        Teff column used in the scaling relation.

    Returns
    -------
    `~astropy.table.Table`
        ``matched`` with ``seis_logg`` and ``e_seis_logg`` (dex, cgs).
    """
    numax = masked_to_nan(matched[f"{prefix}numax"])
    e_numax = masked_to_nan(matched[f"{prefix}e_numax"])
    teff = masked_to_nan(matched[teff_column])
    e_teff = (masked_to_nan(matched["sigma_teff"])
              if "sigma_teff" in matched.colnames else None)
    logg, e_logg = seismic_logg(numax, teff, e_numax, e_teff)
    matched["seis_logg"] = logg * LABEL_UNITS["logg"]
    matched["e_seis_logg"] = e_logg * LABEL_UNITS["logg"]
    matched["seis_logg"].description = "Seismic log g from numax and the CNN Teff"
    return matched


def _gravity_subsets(logg: np.ndarray, base: np.ndarray) -> dict[str, np.ndarray]:
    return {name: base & (logg >= lo) & (logg < hi) for name, (lo, hi) in
            SEISMIC_LOGG_BINS.items()}


def compare_seismic(matched: Table, prefix: str = "ref_", good_only: bool = True,
                    others: Mapping[str, tuple[str, np.ndarray]] | None = None) -> Table:
    """Bias and dispersion of CNN - seismic log g, overall and per gravity range.

    The same statistics can be computed for other surveys' gravities on the same stars
    (paper Fig. 21: APOGEE and GSP-Spec against seismology).

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue matched with a seismic reference (``ref_numax``, ``ref_e_numax``);
        ``seis_logg`` is added in place if absent.
    prefix : str
        Prefix of the reference columns.
    good_only : bool
        Keep only ``flag_boundary == "00000000"`` stars (paper: within training limits).
    others : mapping of name -> (column, bool array), optional
        Other log g columns (e.g. ``{"apogee": ("apogee_logg", mask)}``) compared with the
        seismic log g on the rows of their mask (and of ``good_only``); their rows carry
        ``comparison = "<name> vs seismic"``.

    Returns
    -------
    `~astropy.table.Table`
        `~gaiarvs_cnn.validation.stats.comparison_table` rows, subsets of `SEISMIC_LOGG_BINS`.
    """
    if "seis_logg" not in matched.colnames:
        add_seismic_logg(matched, prefix)
    base = good_mask(matched, good_only)
    seis = masked_to_nan(matched["seis_logg"])
    parts = [comparison_table(matched, {"logg": ("logg", "seis_logg")},
                              _gravity_subsets(seis, base), "seismic")]
    for name, (col, mask) in (others or {}).items():
        parts.append(comparison_table(matched, {"logg": (col, "seis_logg")},
                                      _gravity_subsets(seis, base & mask),
                                      f"{name} vs seismic"))
    table = vstack(parts, metadata_conflicts="silent")
    table.meta["formula"] = (f"log g = {LOGG_SUN:.4f} + log10(numax/{NUMAX_SUN.value:g} uHz) "
                             f"+ 0.5 log10(Teff/{TEFF_SUN.value:g} K), CNN Teff")
    return table


@styled
def plot_seismic(matched: Table, prefix: str = "ref_") -> Figure:
    """CNN log g against seismic log g: 1:1 panel and residual panel (paper Fig. 21).

    Residuals are coloured by the gravity range of `SEISMIC_LOGG_BINS` with each range's
    bias and dispersion written in the panel.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue matched with a seismic reference (``seis_logg`` added if absent).
    prefix : str
        Prefix of the reference columns.

    Returns
    -------
    `~matplotlib.figure.Figure`
    """
    if "seis_logg" not in matched.colnames:
        add_seismic_logg(matched, prefix)
    seis = masked_to_nan(matched["seis_logg"])
    cnn = masked_to_nan(matched["logg"])
    fig, axes = new_figure(1, 2, panel_size=(3.0, 2.8))
    one, res = axes[0]
    grid = np.linspace(1.0, 3.8, 41)
    image = density_panel(one, seis, cnn, bins=(grid, grid), cmap="Blues")
    zero_line(one, horizontal=False)
    one.set_xlabel(axis_label("logg", suffix=" (seismic)"))
    one.set_ylabel(axis_label("logg", suffix=" (CNN)"))
    if image is not None:
        add_colorbar(fig, image, one, "stars per bin")
    diff = cnn - seis
    colours = {"logg<2.3": "tab:orange", "2.3<=logg<2.6": "tab:green", "logg>=2.6": "tab:red"}
    subsets = _gravity_subsets(seis, np.ones(len(seis), bool))
    for row, (name, colour) in enumerate(colours.items()):
        sel = subsets[name]
        res.scatter(seis[sel], diff[sel], s=3, lw=0, color=colour, label=name, rasterized=True)
        annotate_stats(res, diff[sel], "logg", colour=colour, row=row)
    running_line(res, seis, diff, nbins=8, colour="black", label=None)
    zero_line(res)
    res.set_ylim(-0.6, 0.6)
    res.set_xlim(grid[0], grid[-1])
    res.set_xlabel(axis_label("logg", suffix=" (seismic)"))
    res.set_ylabel(axis_label("logg", prefix="CNN $-$ seismic "))
    res.legend(loc="upper right", frameon=False, markerscale=3)
    return fig
