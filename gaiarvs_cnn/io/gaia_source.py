"""``gaiadr3.gaia_source`` rows as star batches, and merging columns from one batch into another.

`gaia_source_to_batch` maps photometry, parallax, RUWE and RVS S/N onto the store's columns
(magnitude errors from the flux-over-error columns); `merge_on_source_id` fills columns of
one batch (RVS spectra) from another (XP coefficients, gaia_source rows), matching stars by
source_id; stars the other batch lacks keep NaN (they are not dropped: a network that does
not use those columns can still parameterise them).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from astropy import log
from astropy.table import Table

from ..exceptions import BadStarError, DuplicateSourceError, InputDataError, Param
from ..utils.columns import find_column
from .batch import StarBatch, match_ids
from .cells import column_source_ids, numeric_column, require_column
from .policy import BadStarPolicy, as_policy
from .products import KIND_ARGS, KIND_NAMES, classify_table
from .tables import read_tables, source_name

__all__ = ["gaia_source_to_batch", "merge_on_source_id", "PHOT_COLUMNS"]

#: Store columns filled from ``gaia_source``.
PHOT_COLUMNS = ("ra", "dec", "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag",
                "phot_g_mean_mag_error", "phot_bp_mean_mag_error", "phot_rp_mean_mag_error",
                "parallax", "parallax_error", "ruwe", "rvs_snr")
#: 2.5 / ln(10): converts a relative flux error into a magnitude error (mag).
_MAG_PER_REL_FLUX = 2.5 / math.log(10.0)


_GAIA_SOURCE_MAP = {  # store column: (gaia_source column, unit)
    "ra": ("ra", "deg"), "dec": ("dec", "deg"),
    "phot_g_mean_mag": ("phot_g_mean_mag", "mag"),
    "phot_bp_mean_mag": ("phot_bp_mean_mag", "mag"),
    "phot_rp_mean_mag": ("phot_rp_mean_mag", "mag"),
    "parallax": ("parallax", "mas"), "parallax_error": ("parallax_error", "mas"),
    "ruwe": ("ruwe", None), "rvs_snr": ("rvs_spec_sig_to_noise", None),
}
_GAIA_SOURCE_STORE = {src: name for name, (src, _) in _GAIA_SOURCE_MAP.items()}
_GAIA_SOURCE_REQUIRED = ("source_id", "phot_g_mean_mag", "phot_bp_mean_mag",
                         "phot_rp_mean_mag", "parallax")


def _as_table(table_or_path) -> tuple[Table, str]:
    if isinstance(table_or_path, Table):
        return table_or_path, "gaia_source table"
    name = source_name(table_or_path)
    return read_tables(table_or_path, name=name)[0], f"gaia_source table {name}"


def _mag_errors(table: Table, where: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """sigma_mag = 2.5/ln(10) / (flux/sigma_flux) for G, BP, RP (mag); NaN where unknown."""
    out, bad = {}, np.zeros(len(table), dtype=bool)
    for band in ("g", "bp", "rp"):
        col = find_column(table.colnames, f"phot_{band}_mean_flux_over_error")
        if col is None:
            log.warning(f"{where} has no phot_{band}_mean_flux_over_error: "
                        f"phot_{band}_mean_mag_error set to NaN.")
            continue
        values, bad_cells = numeric_column(table[col], None, where)
        bad |= bad_cells
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"phot_{band}_mean_mag_error"] = _MAG_PER_REL_FLUX / values
    return out, bad


#: gaia_source columns that are optional but whose absence is worth a warning.
_GAIA_SOURCE_WARN = ("ruwe", "rvs_spec_sig_to_noise", "parallax_error")


def gaia_source_to_batch(table, on_error: str | BadStarPolicy | None = None) -> StarBatch:
    """Convert a ``gaiadr3.gaia_source`` query result to a StarBatch.

    Column names are matched case-insensitively (``SOURCE_ID`` works); source_ids may be
    integers or Gaia designations (``"Gaia DR3 <id>"``). Maps
    ``phot_{g,bp,rp}_mean_mag`` (mag), their errors from
    ``phot_*_mean_flux_over_error`` as sigma_mag = 2.5/ln10 / (flux/sigma_flux) (mag),
    ``parallax``/``parallax_error`` (mas), ``ruwe``, ``ra``/``dec`` (deg) and
    ``rvs_spec_sig_to_noise`` -> ``rvs_snr``. A missing ``ruwe``,
    ``rvs_spec_sig_to_noise`` or ``parallax_error`` column is named in a warning (the
    store column stays NaN).

    Parameters
    ----------
    table : `~astropy.table.Table` or path-like
        Query result (VOTable, ECSV, CSV or FITS when a path).
    on_error : {'raise', 'skip'} or `~gaiarvs_cnn.io.policy.BadStarPolicy`, optional
        What to do with a star whose parallax is missing or not positive, whose values are
        not numeric, or whose source_id repeats (default ``conf.on_error``).

    Returns
    -------
    StarBatch
        One star per good row, with the columns above filled (deg, mag, mas) and the
        RVS and XP columns NaN.

    Raises
    ------
    InputDataError
        A required column (source_id, G, BP, RP, parallax) is missing.
    BadStarError
        Non-positive or missing parallax, non-numeric values (``on_error='raise'``).
    """
    policy = as_policy(on_error)
    table, where = _as_table(table)
    kind = classify_table(table)
    if kind in ("RVS", "XP_CONTINUOUS"):
        raise InputDataError(f"{where} holds {KIND_NAMES[kind]}, not gaia_source rows; pass "
                             "it with ", Param(KIND_ARGS[kind]), ".", file=where)
    for name in _GAIA_SOURCE_REQUIRED:
        require_column(table, name, where)
    missing = [c for c in _GAIA_SOURCE_WARN if find_column(table.colnames, c) is None]
    if missing:
        log.warning(f"{where} has no column(s) {', '.join(missing)}: the store's "
                    f"{', '.join(_GAIA_SOURCE_STORE.get(c, c) for c in missing)} stay NaN. "
                    "Select them in the gaia_source query to fill them.")
    ids, good = column_source_ids(table[find_column(table.colnames, "source_id")], where, policy)
    cols = {"source_id": ids}
    bad_cells = np.zeros(len(table), dtype=bool)
    bad_name = np.full(len(table), "", dtype=object)
    for store_name, (src, unit) in _GAIA_SOURCE_MAP.items():
        col = find_column(table.colnames, src)
        if col is not None:
            cols[store_name], bad = numeric_column(table[col], unit, where)
            bad_name[bad & ~bad_cells] = col
            bad_cells |= bad
    errors, bad = _mag_errors(table, where)
    cols.update(errors)
    bad_name[bad & ~bad_cells] = "phot_*_mean_flux_over_error"
    bad_cells |= bad
    batch = StarBatch(cols)
    for k in np.flatnonzero(good & bad_cells).tolist():
        policy.handle(BadStarError(int(ids[k]), f"non-numeric {bad_name[k]} in {where} "
                                                f"(row {k + 1})."))
    good &= ~bad_cells
    plx = batch["parallax"]
    bad = good & ~(np.isfinite(plx) & (plx > 0))
    for sid, value in zip(batch["source_id"][bad].tolist(), plx[bad].tolist()):
        policy.handle(BadStarError(sid, f"parallax {value} mas in {where}: a positive "
                                        "parallax is required (network input)."))
    return policy.drop_duplicates(batch[good & ~bad], where)


def merge_on_source_id(base: StarBatch, other: StarBatch, columns: Sequence[str]) -> StarBatch:
    """Fill ``columns`` of ``base`` from ``other``, matching stars by source_id.

    Stars of ``base`` absent from ``other`` keep their values (NaN when unknown) and are
    listed in a log warning.

    Parameters
    ----------
    base, other : StarBatch
        ``base`` gives the stars and their order; ``other`` supplies the values.
    columns : sequence of str
        Column names present in both batches (e.g. `XP_COLUMNS`, `PHOT_COLUMNS`).

    Returns
    -------
    StarBatch
        A new batch, same stars and order as ``base``.

    Raises
    ------
    DuplicateSourceError
        ``other`` holds a source_id more than once.
    InputDataError
        A column is not in both batches.
    """
    missing = [c for c in columns if c not in base or c not in other]
    if missing:
        raise InputDataError(f"Cannot merge column(s) {missing}: not in both batches.")
    dupl = other.duplicated_ids()
    if dupl.size:
        raise DuplicateSourceError(f"source_id(s) {dupl[:10].tolist()} occur more than once "
                                   "in the batch merged from; remove duplicates first.")
    found, rows = match_ids(base["source_id"], other["source_id"])
    out = base[np.arange(len(base))]
    for name in columns:
        values = out[name].copy()
        values[found] = other[name][rows]
        out[name] = values
    if not found.all():
        absent = base["source_id"][~found]
        log.warning(f"{absent.size} star(s) not found when merging {list(columns)}: "
                    f"{absent[:20].tolist()}{' ...' if absent.size > 20 else ''}; "
                    "their values stay as they were (NaN when unknown).")
    return out
