"""Comparison with the Gaia DR3 astrophysical parameters GSP-Spec and GSP-Phot.

GSP-Spec (Recio-Blanco et al. 2023) is kept when the first 13 characters of
``flags_gspspec`` are all ``"0"`` (paper footnote 1 and Sect. 3.3). GSP-Phot (Andrae et
al. 2023) has no such flag chain; as in the paper its metallicity is not calibrated.
The paper reports the GSP-Spec dispersion against APOGEE to be 2-3 times the CNN's
(Sects. 3.3, 4.5); `gsp_precision_ratio` measures that ratio against any third
reference (APOGEE, GALAH or the simulation truth) on the stars the three share.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from astropy.table import Table

from ..archives.gaia_ap import GOOD_FLAG_DIGITS, good_gspspec_flags
from ..constants import LABELS
from ..exceptions import InputDataError
from ..utils.arrays import masked_to_nan
from .crossmatch import good_mask, snr_subsets
from .stats import comparison_table, difference_stats, finite

__all__ = ["GSP_LABELS", "compare_gsp",
           "gsp_precision_ratio"]

#: Labels provided by each Gaia DR3 module.
GSP_LABELS = {"gsp-spec": ("teff", "logg", "mh", "alpham"), "gsp-phot": ("teff", "logg", "mh")}


def _gsp_base(matched: Table, kind: str, prefix: str, good_only: bool,
              apply_flags: bool) -> np.ndarray:
    base = good_mask(matched, good_only)
    if kind == "gsp-spec" and apply_flags:
        base &= good_gspspec_flags(matched[f"{prefix}flags_gspspec"])
    return base


def compare_gsp(matched: Table, kind: str = "gsp-spec", prefix: str = "ref_",
                snr_column: str = "rvs_snr", good_only: bool = True,
                apply_flags: bool = True) -> Table:
    """CNN - GSP-Spec (or GSP-Phot) statistics per label, overall, per S/N bin and per type.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue matched with the GSP reference (``ref_teff`` ... ``ref_flags_gspspec``).
    kind : {"gsp-spec", "gsp-phot"}
    prefix : str
        Prefix of the GSP columns.
    snr_column : str
        RVS S/N column (S/N subsets are skipped without it).
    good_only : bool
        Keep only CNN ``flag_boundary == "00000000"``.
    apply_flags : bool
        GSP-Spec: keep only stars with the first 13 flags equal to zero.

    Returns
    -------
    `~astropy.table.Table`
        `~gaiarvs_cnn.validation.stats.comparison_table` rows.
    """
    if kind not in GSP_LABELS:
        raise InputDataError(f"kind must be 'gsp-spec' or 'gsp-phot', not {kind!r}.")
    base = _gsp_base(matched, kind, prefix, good_only, apply_flags)
    pairs = {k: (k, prefix + k) for k in GSP_LABELS[kind] if prefix + k in matched.colnames}
    logg = masked_to_nan(matched["logg"])
    subsets = {"all": base, "giants": base & (logg < 3.5), "dwarfs": base & (logg >= 3.5)}
    if snr_column in matched.colnames:
        subsets.update({k: base & v for k, v in snr_subsets(matched[snr_column]).items()})
    table = comparison_table(matched, pairs, subsets, kind)
    table.meta["cuts"] = (f"first {GOOD_FLAG_DIGITS} flags_gspspec = 0"
                          if kind == "gsp-spec" and apply_flags else "none")
    return table


def gsp_precision_ratio(matched: Table, against_prefix: str, prefix: str = "ref_",
                        kind: str = "gsp-spec", labels: Sequence[str] = LABELS,
                        good_only: bool = True, apply_flags: bool = True) -> Table:
    """Dispersion of GSP - X over dispersion of CNN - X on the same stars.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue matched with the GSP reference (``prefix``) and with a third reference
        X whose columns start with ``against_prefix`` (``"apogee_"``, ``"galah_"``, or
        ``"true_"`` for the simulation truth).
    against_prefix : str
        Prefix of the third reference.
    prefix : str
        Prefix of the GSP columns.
    kind : {"gsp-spec", "gsp-phot"}
    labels : sequence of str
        Labels to compare (those present on all three sides).
    good_only, apply_flags : bool
        As for `compare_gsp`.

    Returns
    -------
    `~astropy.table.Table`
        ``label, n, sigma_cnn, sigma_gsp, ratio_mad`` (MAD-based) and ``std_cnn, std_gsp,
        ratio_std``. The paper finds ratios of 2-3 against APOGEE.
    """
    base = _gsp_base(matched, kind, prefix, good_only, apply_flags)
    rows = []
    for label in labels:
        cols = (label, prefix + label, against_prefix + label)
        if not all(c in matched.colnames for c in cols):
            continue
        cnn, gsp, ref = (masked_to_nan(matched[c]) for c in cols)
        ok = base & finite(cnn, gsp, ref)
        s_cnn, s_gsp = difference_stats(cnn[ok] - ref[ok]), difference_stats(gsp[ok] - ref[ok])
        rows.append((label, int(ok.sum()), s_cnn["sigma_mad"], s_gsp["sigma_mad"],
                     s_gsp["sigma_mad"] / s_cnn["sigma_mad"], s_cnn["std"], s_gsp["std"],
                     s_gsp["std"] / s_cnn["std"]))
    table = Table(rows=rows, names=("label", "n", "sigma_cnn", "sigma_gsp", "ratio_mad",
                                    "std_cnn", "std_gsp", "ratio_std"),
                  dtype=(str, int, float, float, float, float, float, float))
    table.meta["against"] = against_prefix.rstrip("_")
    return table
