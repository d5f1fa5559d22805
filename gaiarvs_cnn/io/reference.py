"""Canonical schema of reference catalogues used for training and validation.

Every reference adapter, real (APOGEE DR17, GALAH DR3, K2-GAP, Cantat-Gaudin 2020,
Gaia DR3 GSP-Spec/GSP-Phot) or simulated, returns an `~astropy.table.Table` with the
columns below (units attached), so that the validation suite never depends on where
the reference came from. ``source_id`` is always the Gaia DR3 identifier.

Label columns use the package's label names (``teff``, ``logg``, ``mh``, ``alpham``,
``feh``) and their uncertainties ``e_<label>``; a survey that does not provide a label
simply lacks the column. For GALAH the [alpha/Fe] ratio is stored as ``alpham``
(as compared in the paper, Sect. 6.3) and kept also as ``alpha_fe``.
"""
from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..constants import LABEL_UNITS, LABELS
from ..exceptions import InputDataError

__all__ = ["REFERENCE_KINDS", "ALL_KINDS", "REQUIRED_COLUMNS", "COLUMN_UNITS", "check_reference"]

#: Known reference kinds.
REFERENCE_KINDS = ("apogee", "galah", "seismic", "clusters", "gsp-spec", "gsp-phot")
#: Every kind `check_reference` knows: the reference surveys, and ``published`` (the paper's
#: own RVS-CNN catalogue, compared star by star; no simulated counterpart).
ALL_KINDS = (*REFERENCE_KINDS, "published")

#: Columns each kind must have (besides optional ``e_*`` and extra columns).
REQUIRED_COLUMNS = {
    "apogee": ("source_id", "teff", "logg", "mh", "alpham", "feh",
               "e_teff", "e_logg", "e_mh", "e_alpham", "e_feh"),
    "galah": ("source_id", "teff", "logg", "feh", "alpham", "e_teff", "e_logg", "e_feh",
              "e_alpham", "snr_c3_iraf"),
    "seismic": ("source_id", "numax", "e_numax"),
    "clusters": ("source_id", "cluster", "proba"),
    "gsp-spec": ("source_id", "teff", "logg", "mh", "alpham", "flags_gspspec"),
    "gsp-phot": ("source_id", "teff", "logg", "mh"),
    # the paper's released RVS-CNN catalogue (Guiglion, Nepal et al. 2024, Table 2)
    "published": ("source_id", "teff", "logg", "mh", "alpham", "feh", "flag_boundary"),
}

#: Units of the canonical columns.
COLUMN_UNITS = {
    **{k: LABEL_UNITS[k] for k in LABELS},
    **{f"e_{k}": LABEL_UNITS[k] for k in LABELS},
    "numax": u.uHz, "e_numax": u.uHz, "dnu": u.uHz, "e_dnu": u.uHz,
    "snr_c3_iraf": u.dimensionless_unscaled,
}


def check_reference(table: Table, kind: str) -> Table:
    """Validate a reference Table against the canonical schema and return it.

    Checks that required columns exist, that ``source_id`` is int64 without
    duplicates or zeros, and that label columns carry the canonical units
    (converting compatible units in place).

    Parameters
    ----------
    table : `~astropy.table.Table`
        Reference catalogue; modified in place (``source_id`` cast to int64, units
        attached or converted).
    kind : {'apogee', 'galah', 'seismic', 'clusters', 'gsp-spec', 'gsp-phot'}
        Reference kind, selecting the required columns (`REQUIRED_COLUMNS`).

    Returns
    -------
    `~astropy.table.Table`
        ``table`` itself, with canonical dtypes and units (K, dex, uHz).

    Raises
    ------
    InputDataError
        Naming the missing column, bad unit or duplicated source_id, or if ``kind``
        is unknown.
    """
    if kind not in REQUIRED_COLUMNS:
        raise InputDataError(f"Unknown reference kind {kind!r}; known: {ALL_KINDS}")
    missing = [c for c in REQUIRED_COLUMNS[kind] if c not in table.colnames]
    if missing:
        raise InputDataError(f"{kind} reference lacks column(s) {missing}.")
    sid = np.asarray(table["source_id"])
    if sid.dtype.kind not in "iu":
        raise InputDataError(f"{kind} reference: source_id must be an integer column.")
    table["source_id"] = sid.astype(np.int64)
    if kind != "clusters":
        ids, counts = np.unique(sid, return_counts=True)
        if np.any(counts > 1):
            raise InputDataError(f"{kind} reference: duplicated source_id(s) "
                                 f"{ids[counts > 1][:10].tolist()}.")
    for name, unit in COLUMN_UNITS.items():
        if name not in table.colnames:
            continue
        col = table[name]
        if col.unit is None:
            col.unit = unit
        elif col.unit != unit:
            try:
                table[name] = u.Quantity(col).to(unit, equivalencies=u.logarithmic())
            except u.UnitConversionError as exc:
                raise InputDataError(f"{kind} reference: column {name} has unit {col.unit}, "
                                     f"expected {unit}.") from exc
    return table
