"""Readers of single RVS mean-spectrum and XP continuous products (FITS, CSV, ECSV, VOTable).

* RVS mean spectra from the archive's DataLink service: FITS (one star per file, header
  keywords ``SOURCEID``, ``POS``), and the "long" CSV / ECSV / VOTable layout (2401 rows per
  star, several stars per file allowed, empty cells = NaN) -- `read_rvs_datalink`.
* XP continuous (BP/RP coefficient) products in CSV (arrays as ``"(v1, v2, ...)"`` strings),
  ECSV, VOTable and FITS -- `read_xp_continuous`.

The content of a file is checked to be the product asked for (`gaiarvs_cnn.io.products`).

**Bad stars.** Every reader takes ``on_error`` (see `gaiarvs_cnn.io.policy`; default the
``on_error`` setting, ``'raise'``): ``'raise'`` -- the first bad star raises
`~gaiarvs_cnn.exceptions.BadStarError` naming its source_id and file; ``'skip'`` -- the
star is dropped, a warning naming it and the reason is logged, and the rest is kept. Bad
stars are: wrong pixel count, wavelength grid not the RVS grid, all-NaN or physically
implausible spectrum (`~gaiarvs_cnn.preprocess.check_rvs_flux`: infinite or absurd pixels,
more than a few negative pixels, not normalised), non-numeric cells, a source_id that is
neither an integer nor a ``"Gaia DR3 <id>"`` designation, missing, non-numeric or
wrong-length XP coefficients, and repeated source_ids (the first occurrence is kept).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from astropy import log
from astropy.table import Table

from ..constants import RVS_NPIX, XP_NCOEFF
from ..exceptions import BadStarError, InputDataError, Param
from ..preprocess import check_rvs_flux, check_rvs_grid
from ..utils.columns import find_column
from .batch import StarBatch, join_batches, rows_to_batch
from .cells import (
    column_source_ids,
    meta_value,
    numeric_column,
    parse_numbers,
    parse_source_id,
    parse_vector,
    require_column,
)
from .policy import BadStarPolicy, as_policy
from .products import KIND_ARGS, KIND_NAMES, classify_tables
from .tables import read_tables, source_name

__all__ = ["read_rvs_datalink", "read_xp_continuous", "read_product", "PRODUCTS",
           "XP_COLUMNS"]

#: Columns filled by an XP continuous product.
XP_COLUMNS = ("bp_coefficients", "bp_coefficient_errors", "rp_coefficients",
              "rp_coefficient_errors")


def _no_rows(table: Table, where: str, what: str) -> None:
    if len(table) == 0:
        raise InputDataError(f"{where} has a header but no rows (no {what}); download the "
                             "product again.")



def _rvs_row(sid: int, ra: float, dec: float, wave, flux, flux_error, where: str) -> dict:
    """Validate one RVS spectrum and return its StarBatch row."""
    wave = np.asarray(wave, dtype=np.float64)
    if wave.size != RVS_NPIX:
        raise BadStarError(sid, f"RVS spectrum in {where} has {wave.size} pixels, expected "
                                f"{RVS_NPIX}.")
    try:
        check_rvs_grid(wave)
    except InputDataError as exc:
        raise BadStarError(sid, f"{exc} (in {where})") from exc
    flux = check_rvs_flux(sid, flux, where)
    return {"source_id": sid, "ra": ra, "dec": dec, "flux": flux,
            "flux_error": np.asarray(flux_error, dtype=np.float64)}


def _group_rows(ids: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(source_id, row indices) per star, stars in order of first appearance."""
    if ids.size == 0:
        return []
    uniq, first, inv = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(inv))[:-1])
    return [(int(uniq[i]), groups[i]) for i in np.argsort(first)]


def _rvs_long(table: Table, where: str, policy: BadStarPolicy) -> StarBatch:
    """Long layout: one row per pixel, a ``source_id`` column, any number of stars."""
    cols = {k: require_column(table, k, where) for k in ("source_id", "wavelength", "flux",
                                                    "flux_error")}
    _no_rows(table, where, "spectrum")
    ids, good = column_source_ids(table[cols["source_id"]], where, policy)
    wave, bad_w = numeric_column(table[cols["wavelength"]], "nm", where)
    flux, bad_f = numeric_column(table[cols["flux"]], None, where)
    err, bad_e = numeric_column(table[cols["flux_error"]], None, where)
    bad_cell = bad_w | bad_f | bad_e
    ra_col, dec_col = find_column(table.colnames, "ra"), find_column(table.colnames, "dec")
    ra = numeric_column(table[ra_col], "deg", where)[0] if ra_col else np.full(len(ids), np.nan)
    dec = numeric_column(table[dec_col], "deg", where)[0] if dec_col else np.full(len(ids), np.nan)
    rows_ok = np.flatnonzero(good)

    def build(group):
        sid, rows = group
        rows = rows_ok[rows]
        if bad_cell[rows].any():
            k = rows[np.argmax(bad_cell[rows])]
            name = ("wavelength" if bad_w[k] else "flux" if bad_f[k] else "flux_error")
            raise BadStarError(sid, f"non-numeric {name} value "
                                    f"{str(table[cols[name]][k])!r} in {where} "
                                    f"(row {k + 1}).")
        return _rvs_row(sid, ra[rows[0]], dec[rows[0]], wave[rows], flux[rows], err[rows],
                        where)

    return rows_to_batch(policy.collect(_group_rows(ids[good]), build))


def _position_from_meta(meta: Mapping) -> tuple[float, float]:
    ra, dec = meta_value(meta, "ra"), meta_value(meta, "dec")
    try:
        if ra is not None and dec is not None:
            return float(ra), float(dec)
        pos = meta_value(meta, "POS", "spatialLocation")
        if pos is None:
            return np.nan, np.nan
        values = parse_numbers(pos) if isinstance(pos, str) else np.ravel(pos).astype(float)
        return (float(values[0]), float(values[1])) if values is not None else (np.nan, np.nan)
    except (ValueError, TypeError, IndexError):
        log.warning(f"Unreadable position {ra, dec} / POS in the header: ra, dec set to NaN.")
        return np.nan, np.nan


def _rvs_single(table: Table, where: str, policy: BadStarPolicy) -> StarBatch:
    """One star per table; source_id and position in the header (FITS) or PARAMs (VOTable)."""
    sid_value = meta_value(table.meta, "source_id", "SOURCEID")
    if sid_value is None:
        raise InputDataError(f"{where}: no source_id column and no SOURCEID keyword/PARAM; "
                             "is this an RVS DataLink product?")
    try:
        sid = parse_source_id(sid_value)
    except ValueError as exc:
        raise InputDataError(f"{where}: SOURCEID keyword {exc}.") from None
    ra, dec = _position_from_meta(table.meta)
    cols = {k: require_column(table, k, where) for k in ("wavelength", "flux", "flux_error")}
    _no_rows(table, where, "spectrum")

    def build(_):
        values = {}
        for k in ("wavelength", "flux", "flux_error"):
            values[k], bad = numeric_column(table[cols[k]], "nm" if k == "wavelength" else None,
                                      where)
            if bad.any():
                raise BadStarError(sid, f"non-numeric {k} values in {where}.")
        return _rvs_row(sid, ra, dec, values["wavelength"], values["flux"],
                        values["flux_error"], where)

    return rows_to_batch(policy.collect([None], build))


def _rvs_from_table(table: Table, where: str, policy: BadStarPolicy) -> StarBatch:
    if find_column(table.colnames, "source_id") is not None:
        return _rvs_long(table, where, policy)
    return _rvs_single(table, where, policy)




def read_product(source, product: str, format: str | None, policy: BadStarPolicy
                  ) -> StarBatch:
    """Read one file holding ``product``; its content is checked to be that product."""
    name = source_name(source)
    tables = read_tables(source, format, name)
    kind = classify_tables(tables, name)
    if kind != product:
        hint = (("; pass it with ", Param(KIND_ARGS[kind])) if kind in KIND_ARGS
                else ("; gaiarvs-cnn does not read this product",))
        raise InputDataError(f"{name} holds {KIND_NAMES.get(kind, kind)}, not "
                             f"{KIND_NAMES[product]}", *hint, ".", file=name)
    batch = join_batches([PRODUCTS[product](t, name, policy) for t in tables])
    return policy.drop_duplicates(batch, name)


def read_rvs_datalink(path_or_fileobj, format: str | None = None,
                      on_error: str | BadStarPolicy | None = None) -> StarBatch:
    """Read an RVS mean-spectrum DataLink product (FITS, CSV, ECSV or VOTable).

    Parameters
    ----------
    path_or_fileobj : path-like, file object or bytes
        The product. File names may contain spaces (``"RVS-Gaia DR3 <id>.fits"``); the
        name does not matter: the content is checked to be RVS spectra.
    format : {'fits', 'csv', 'ecsv', 'votable'}, optional
        Inferred from the extension, else from the content.
    on_error : {'raise', 'skip'} or `~gaiarvs_cnn.io.policy.BadStarPolicy`, optional
        What to do with a bad star (see `gaiarvs_cnn.io.policy`; default
        ``conf.on_error``).

    Returns
    -------
    StarBatch
        ``source_id``, ``ra``/``dec`` (deg) and the normalised ``flux``/``flux_error``
        (dimensionless) on the 2401-pixel 846-870 nm grid; NaN pixels are kept.

    Raises
    ------
    BadStarError
        Wrong pixel count, wavelength grid, all-NaN or implausible spectrum (see
        `check_rvs_flux`), with ``on_error='raise'``.
    InputDataError
        The file cannot be read, has no rows, or is not an RVS product.

    Examples
    --------
    >>> from gaiarvs_cnn.io.spectra import read_rvs_datalink
    >>> batch = read_rvs_datalink("RVS-Gaia DR3 863983115982280448.fits")  # doctest: +SKIP
    >>> batch["flux"].shape  # doctest: +SKIP
    (1, 2401)
    """
    return read_product(path_or_fileobj, "RVS", format, as_policy(on_error))


def _xp_from_table(table: Table, where: str, policy: BadStarPolicy) -> StarBatch:
    cols = {k: require_column(table, k, where) for k in ("source_id", *XP_COLUMNS)}
    _no_rows(table, where, "XP coefficients")
    ids, good = column_source_ids(table[cols["source_id"]], where, policy)

    def build(i):
        sid = int(ids[i])
        row: dict[str, Any] = {"source_id": sid}
        for name in XP_COLUMNS:
            row[name] = parse_vector(table[cols[name]][i], XP_NCOEFF, sid,
                                     f"XP continuous {name}", where)
        if row["bp_coefficients"][0] == 0 or row["rp_coefficients"][0] == 0:
            raise BadStarError(sid, f"first BP/RP coefficient is zero in {where}; the XP "
                                    "spectrum cannot be normalised.")
        return row

    return rows_to_batch(policy.collect(np.flatnonzero(good).tolist(), build))


def read_xp_continuous(path, format: str | None = None,
                       on_error: str | BadStarPolicy | None = None) -> StarBatch:
    """Read an XP continuous (BP/RP coefficient) product: CSV, ECSV, VOTable or FITS.

    Parameters
    ----------
    path : path-like, file object or bytes
        The product (e.g. ``XP_CONTINUOUS-Gaia DR3 <id>.csv`` or ``XP_CONTINUOUS_RAW.ecsv``);
        the content is checked to be XP continuous coefficients, whatever the name.
    format : str, optional
        Inferred from the extension, else from the content.
    on_error : {'raise', 'skip'} or `~gaiarvs_cnn.io.policy.BadStarPolicy`, optional
        What to do with a star whose coefficients are missing, non-numeric or not 55 long
        (default ``conf.on_error``).

    Returns
    -------
    StarBatch
        ``source_id`` and ``bp/rp_coefficients`` and ``bp/rp_coefficient_errors``
        (55 values each, in the archive's flux units e-/s); other columns NaN.

    Raises
    ------
    BadStarError
        Missing, non-numeric or wrong-length XP coefficients (``on_error='raise'``).
    InputDataError
        The file cannot be read, has no rows, or is not an XP continuous product.
    """
    return read_product(path, "XP_CONTINUOUS", format, as_policy(on_error))



#: DataLink products this package reads, and the function turning one table into a batch.
PRODUCTS: dict[str, Callable] = {"RVS": _rvs_from_table, "XP_CONTINUOUS": _xp_from_table}
