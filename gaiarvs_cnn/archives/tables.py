"""Post-processing of the tables the archives return: column mapping, masks, duplicates.

* `ColumnMap` renames a service's columns to the package's canonical names,
  case-insensitively (archives return ``SOURCE_ID`` in some formats, ``source_id`` in
  others).
* `finish_reference` drops rows without a Gaia id, applies a cut, keeps one row per
  source_id (`unique_best`) and sets the canonical units.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from astropy.table import Table, unique

from ..exceptions import ArchiveError
from ..utils.arrays import masked_to_nan
from ..utils.columns import find_column

__all__ = ["ColumnMap", "unique_best", "finish_reference"]


class ColumnMap:
    """Case-insensitive mapping from a service's column names to canonical names.

    Parameters
    ----------
    mapping : mapping of str to str or sequence of str
        Canonical name -> the service's column name, or several candidate names
        (first found wins; e.g. the survey's FITS name and its VizieR label).
    required : sequence of str, optional
        Canonical names that must be found (default: all of ``mapping``).
    service : str
        Name used in error messages.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"SOURCE_ID": [1, 2], "Teff": [5000.0, 4800.0]})
    >>> ColumnMap({"source_id": "source_id", "teff": ("TEFF", "Teff")}).apply(t).colnames
    ['source_id', 'teff']
    """

    def __init__(self, mapping: Mapping[str, str | Sequence[str]],
                 required: Sequence[str] | None = None, service: str = "service"):
        self.mapping = {k: ((v,) if isinstance(v, str) else tuple(v))
                        for k, v in mapping.items()}
        self.required = tuple(self.mapping if required is None else required)
        self.service = service

    def find(self, table: Table, canonical: str) -> str | None:
        """Return the table's column holding ``canonical`` (None if absent).

        Parameters
        ----------
        table : astropy.table.Table
            The service's table.
        canonical : str
            A canonical name, a key of ``mapping``.

        Returns
        -------
        str or None
            The first candidate name found in ``table`` (as the table spells it),
            or None.
        """
        return find_column(table.colnames, *self.mapping[canonical])

    def apply(self, table: Table, keep_other: bool = False) -> Table:
        """Return a new Table with canonical column names (units and meta kept).

        Parameters
        ----------
        table : astropy.table.Table
            The service's table.
        keep_other : bool
            If True, also keep the columns the map does not name, under their own names.

        Returns
        -------
        astropy.table.Table
            The mapped columns under their canonical names (plus the others when
            ``keep_other``).

        Raises
        ------
        ArchiveError
            Listing the required columns that the service did not return.
        """
        out = Table(meta=dict(table.meta))
        missing = []
        used = set()
        for canonical in self.mapping:
            src = self.find(table, canonical)
            if src is None:
                if canonical in self.required:
                    missing.append(f"{canonical} (as {'/'.join(self.mapping[canonical])})")
                continue
            out[canonical] = table[src]
            used.add(src)
        if missing:
            raise ArchiveError(f"{self.service} result lacks column(s) {missing}; it has "
                               f"{table.colnames[:30]}. The service may have renamed them: "
                               f"update the adapter's column map.")
        if keep_other:
            for c in table.colnames:
                if c not in used and c.lower() not in {n.lower() for n in out.colnames}:
                    out[c] = table[c]
        return out


def unique_best(table: Table, key: str, score: str | None = None) -> Table:
    """Keep one row per ``key`` value: the one with the highest ``score`` (or the first).

    Parameters
    ----------
    table : astropy.table.Table
        Input rows.
    key : str
        Column whose values should be unique.
    score : str, optional
        Column ranking duplicates (highest kept; NaN or masked ranks last); when None
        or absent from ``table``, the first row of each ``key`` value is kept.

    Returns
    -------
    astropy.table.Table
        One row per distinct ``key`` value (`astropy.table.unique` of the rows sorted by
        ``score``), in input order when there is no ``score``, else in ``score`` order.
    """
    if len(table) == 0:
        return table
    order = np.arange(len(table))
    if score is not None and score in table.colnames:
        order = np.argsort(-np.nan_to_num(masked_to_nan(table[score]), nan=-np.inf),
                           kind="stable")
    t = table[order]
    t["__position__"] = np.arange(len(t))
    best = unique(t, keys=key, keep="first")        # group_by sorts stably: the first of t
    best = best[np.argsort(best["__position__"])]
    del best["__position__"]
    return best


def finish_reference(t: Table, cut: Callable[[Table], np.ndarray] | None = None,
                     score: str | None = None, meta: Mapping | None = None,
                     unique: bool = True) -> Table:
    """Common last steps of a reference adapter on a canonical-named table.

    Drops rows without a Gaia id (0 or masked), applies ``cut`` (a function returning a
    boolean mask), keeps one row per source_id (highest ``score``) when ``unique``, and
    sets the canonical units of `~gaiarvs_cnn.io.reference.COLUMN_UNITS` (the values
    of every adapter's columns are already in those units; the services' unit strings,
    e.g. VizieR's ``[cm/s2]``, are not always parseable).

    Parameters
    ----------
    t : astropy.table.Table
        Table with canonical column names, including ``source_id``.
    cut : callable, optional
        Called with the table; returns a boolean mask of the rows to keep.
    score : str, optional
        Column ranking duplicate source_ids (see `unique_best`).
    meta : mapping, optional
        Entries added to the table's ``meta``.
    unique : bool
        If True, keep one row per source_id.

    Returns
    -------
    astropy.table.Table
        The cleaned table, with canonical units on the columns of ``COLUMN_UNITS``
        (masked values as NaN).
    """
    from ..io.reference import COLUMN_UNITS

    sid = np.ma.filled(np.ma.asarray(t["source_id"]), 0).astype(np.int64)
    t["source_id"] = sid
    t = t[sid > 0]
    if cut is not None and len(t):
        t = t[np.asarray(cut(t), dtype=bool)]
    if unique:
        t = unique_best(t, "source_id", score)
    for name, unit in COLUMN_UNITS.items():
        if name in t.colnames:
            t[name] = masked_to_nan(t[name])
            t[name].unit = unit
    t.meta.update(meta or {})
    return t
