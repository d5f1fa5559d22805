"""Values of table cells: source_ids, numbers, coefficient vectors, column and keyword lookup.

The readers of Gaia products (`gaiarvs_cnn.io.spectra`, `gaiarvs_cnn.io.gaia_source`,
`gaiarvs_cnn.io.ingest`) parse every cell with these functions, so that a stray token, a
masked cell or a designation instead of an integer is handled the same way everywhere: a
cell that cannot be read becomes a bad star (see `gaiarvs_cnn.io.policy`), never a traceback.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..exceptions import BadStarError, InputDataError
from ..utils.arrays import masked_to_nan
from ..utils.columns import find_column
from .policy import BadStarPolicy

__all__ = ["parse_source_id", "parse_vector", "parse_numbers", "require_column",
           "has_columns", "column_floats", "numeric_column", "column_source_ids",
           "meta_value"]


def require_column(table: Table, name: str, where: str) -> str:
    col = find_column(table.colnames, name)
    if col is None:
        raise InputDataError(f"{where}: no column '{name}' (case-insensitive); it has "
                             f"{table.colnames}.")
    return col


def column_floats(col, unit: str | None = None) -> np.ndarray:
    """Column values as float64 with masked values as NaN, converted to ``unit``."""
    arr = masked_to_nan(col)
    col_unit = getattr(col, "unit", None)
    if unit and col_unit is not None:
        arr = (arr * u.Unit(col_unit)).to_value(unit)
    return np.asarray(arr, dtype=np.float64)


_DESIGNATION = re.compile(r"^\s*(?:gaia\s+dr[1-9]\s+)?(\d{1,19})\s*$", re.IGNORECASE)


def numeric_column(col, unit: str | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Column values as float64 (masked -> NaN) and the mask of non-numeric cells.

    A text column (a CSV with a stray token) is parsed cell by cell; its unusable cells
    become NaN and are flagged, so that only the stars they belong to are bad.
    """
    try:
        return column_floats(col, unit), np.zeros(len(col), dtype=bool)
    except (ValueError, TypeError):
        pass
    cells = np.ma.asarray(col)
    masked = np.ma.getmaskarray(cells)
    out = np.full(len(cells), np.nan)
    bad = np.zeros(len(cells), dtype=bool)
    for k, (cell, m) in enumerate(zip(np.ma.getdata(cells).tolist(), masked)):
        if m:
            continue
        text = cell.decode() if isinstance(cell, bytes) else str(cell)
        try:
            out[k] = np.nan if text.strip().lower() in _NULLS else float(text)
        except ValueError:
            bad[k] = True
    col_unit = getattr(col, "unit", None)
    if unit and col_unit is not None:
        out = (out * u.Unit(col_unit)).to_value(unit)
    return out, bad


def parse_source_id(value) -> int:
    """A Gaia source_id from an integer or a designation such as ``"Gaia DR3 4268620287278693120"``.

    Parameters
    ----------
    value : int, str or bytes
        The source_id as an integer, its decimal text, or the Gaia designation
        ``"Gaia DR<n> <source_id>"`` (case and spacing as in the archive's ``designation``).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If ``value`` is neither.

    Examples
    --------
    >>> parse_source_id("Gaia DR3 4268620287278693120")
    4268620287278693120
    >>> parse_source_id(42)
    42
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    match = _DESIGNATION.match(str(value))
    if match is None or int(match.group(1)) >= 2**63:
        raise ValueError(f"{value!r} is not a Gaia source_id (an integer, or the designation "
                         "'Gaia DR3 <integer>')")
    return int(match.group(1))


def column_source_ids(col, where: str, policy: BadStarPolicy) -> tuple[np.ndarray, np.ndarray]:
    """source_ids of a column and the mask of rows whose id could be read.

    Rows without a source_id, or with one that is not an integer or a Gaia designation,
    are bad rows (one policy decision per distinct bad value).
    """
    ids = np.ma.asarray(col)
    good = ~np.ma.getmaskarray(ids)
    if not good.all():
        policy.handle(InputDataError(f"{where}: {int((~good).sum())} row(s) have no "
                                     "source_id; they cannot be matched to a star."))
    values = np.ma.getdata(ids)
    if values.dtype.kind in "iu":
        return values.astype(np.int64), good
    out = np.zeros(len(values), dtype=np.int64)
    bad: dict[str, list[int]] = {}
    index = np.flatnonzero(good)
    uniq, inverse = np.unique(values[good], return_inverse=True)
    for k, value in enumerate(uniq):
        rows = index[inverse.ravel() == k]
        try:
            out[rows] = parse_source_id(value.item() if hasattr(value, "item") else value)
        except (ValueError, OverflowError, TypeError):
            bad[str(value)] = rows.tolist()
            good[rows] = False
    for value, rows in bad.items():
        exc = InputDataError(f"{where}: source_id {value!r} (row {rows[0] + 1}"
                             f"{f' and {len(rows) - 1} more' if len(rows) > 1 else ''}) is "
                             "not a Gaia source_id (an integer, or 'Gaia DR3 <integer>').")
        exc.problem = str(exc)
        policy.handle(exc)
    return out, good


def meta_value(meta: Mapping, *keys: str):
    key = find_column(meta.keys(), *keys)
    value = meta[key] if key is not None else None
    return value[0] if isinstance(value, list) and len(value) and isinstance(
        value[0], str) else value


_NULLS = ("", "null", "--", "none", "nan")


def parse_numbers(text: str) -> np.ndarray | None:
    """Parse ``"(1.0, 2.0)"``, ``"[1.0,null]"`` or ``"1.0 2.0"`` into floats (None if empty).

    Raises
    ------
    ValueError
        Naming the first token that is not a number.
    """
    s = text.strip().strip("()[]").strip()
    if not s or s.lower() in ("null", "--", "none"):
        return None
    parts = s.split(",") if "," in s else s.split()
    try:
        return np.array(parts, dtype=np.float64)
    except ValueError:
        pass
    out = np.empty(len(parts))
    for k, part in enumerate(parts):
        token = part.strip()
        try:
            out[k] = np.nan if token.lower() in _NULLS else float(token)
        except ValueError:
            raise ValueError(f"non-numeric value {token!r} at position {k + 1}") from None
    return out


def parse_vector(cell, n: int, sid: int, name: str, where: str, *,
                 required: bool = True) -> np.ndarray:
    """One array cell (string, array, masked) as ``n`` floats.

    Parameters
    ----------
    cell : str, bytes, array-like, masked or None
        The cell: ``"(v1, v2, ...)"`` / ``"[v1,null,...]"`` text or an array.
    n : int
        Expected number of values.
    sid : int
        source_id of the star (for the error).
    name, where : str
        What the values are and the file they come from (for the error).
    required : bool, optional
        If False, a missing cell gives ``n`` NaN instead of an error.

    Returns
    -------
    ndarray of float64, shape (n,)

    Raises
    ------
    BadStarError
        Missing (``required``), non-numeric or wrong-length values.
    """
    if cell is None or cell is np.ma.masked:
        vec = None
    elif isinstance(cell, bytes | str):
        try:
            vec = parse_numbers(cell.decode() if isinstance(cell, bytes) else cell)
        except ValueError as exc:
            raise BadStarError(sid, f"{name} in {where} has a {exc}.") from None
    else:
        try:
            vec = masked_to_nan(cell).ravel()
        except (TypeError, ValueError) as exc:
            raise BadStarError(sid, f"{name} in {where} is not numeric ({exc}).") from None
    if vec is None or vec.size == 0 or not np.isfinite(vec).any():
        if required:
            raise BadStarError(sid, f"missing {name} in {where}.")
        return np.full(n, np.nan)
    if vec.size != n:
        raise BadStarError(sid, f"{name} has {vec.size} values in {where}, expected {n}.")
    return vec


def has_columns(table: Table, *names: str) -> bool:
    """Whether ``table`` has all the columns ``names`` (case-insensitive)."""
    return all(find_column(table.colnames, n) is not None for n in names)
