"""Reading a catalogue back: `read_catalog`, for every format, with the data model restored.

Files written by `gaiarvs_cnn.catalog.open_writer` read with a plain
`astropy.table.Table.read`; `read_catalog` also gives the data model to files of other
writers with the same columns: units the format cannot hold (``UnrecognizedUnit``),
``flag_boundary`` as bytes or as the integer of the paper's released catalogue
(``flag_boundary == 0``, returned as zero-padded 8-character text), provenance in the FITS
primary header or in VOTable ``INFO`` elements (e.g. ``tests/data/catalog_4a1b5a8.*``).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.utils.exceptions import AstropyWarning

from ..exceptions import InputDataError
from ..utils.formats import ASTROPY_FORMATS
from .datamodel import FLAG_WIDTH, _describe, catalog_columns, flag_text
from .registry import format_of

__all__ = ["read_catalog"]

#: Header keywords that describe the FITS structure, not the provenance.
_STRUCTURE = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "CHECKSUM", "DATASUM", "LONGSTRN",
              "COMMENT", "HISTORY", ""}


def _read_fits(path: Path) -> Table:
    table = Table.read(path, format="fits", hdu=1)
    primary = fits.getheader(path, 0)
    for key, value in primary.items():
        if key not in _STRUCTURE and key not in table.meta:
            table.meta[key] = value
    return table


def _read_votable(path: Path) -> Table:
    from astropy.io.votable import parse

    vot = parse(str(path))
    vtab = vot.get_first_table()
    table = vtab.to_table()
    for info in [i for r in vot.resources for i in r.infos] + list(vtab.infos):
        table.meta[info.name] = info.value
    return table


def _flags(path: Path, values) -> np.ndarray:
    """``flag_boundary`` as 8-character text; integers (the paper's form) are zero-padded."""
    values = np.asarray(values)
    if values.dtype.kind not in "SUOiu":
        raise InputDataError(f"{path}: column flag_boundary is of type {values.dtype}; "
                             f"expected {FLAG_WIDTH}-character text such as '00000000'.")
    flags, bad = flag_text(values)
    if bad is not None:
        raise InputDataError(
            f"{path}: column flag_boundary holds {str(flags[bad])!r}; a gaiarvs-cnn flag is "
            f"{FLAG_WIDTH} characters '0'/'1' (wrong flag width: not a gaiarvs-cnn "
            "catalogue).")
    return flags


def read_catalog(path) -> Table:
    """Read a gaiarvs-cnn catalogue (FITS, VOTable, ECSV, Parquet) with its data-model units.

    ``flag_boundary`` is returned as text (``str``), the ``dex`` columns get astropy units,
    every column its description and UCD (``col.meta['ucd']``).

    Parameters
    ----------
    path : path-like
        A catalogue written by `gaiarvs_cnn.catalog.write_catalog` or
        `gaiarvs_cnn.catalog.open_writer`, or another catalogue with the same columns (the
        paper's).

    Returns
    -------
    `~astropy.table.Table`
        The 17 columns with data-model units, descriptions and UCDs; the provenance
        (header keywords, VOTable ``INFO`` elements, ECSV/Parquet meta) in ``meta``.

    Raises
    ------
    InputDataError
        If the file is missing or unreadable, lacks a data-model column, or a column has
        the wrong type (e.g. a flag that is not 8 characters); the message names the file
        and the column.
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"No catalogue at {path}.")
    fmt = format_of(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            if fmt == "fits":
                table = _read_fits(path)
            elif fmt == "votable":
                table = _read_votable(path)
            else:
                table = Table.read(path, format=ASTROPY_FORMATS[fmt])
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise InputDataError(f"Could not read {path} as a {fmt} catalogue ({exc}).") from exc
    specs = catalog_columns()
    missing = [s["name"] for s in specs if s["name"] not in table.colnames]
    if missing:
        raise InputDataError(f"{path} lacks catalogue column(s) {missing}: not a gaiarvs-cnn "
                             "catalogue (or written by an incompatible version).")
    table["flag_boundary"] = _flags(path, table["flag_boundary"])
    for spec in specs[:-1]:
        name = spec["name"]
        kind = np.asarray(table[name]).dtype.kind
        if kind not in ("iu" if spec["dtype"].startswith("int") else "iuf"):
            raise InputDataError(f"{path}: column {name} is of type {table[name].dtype}; "
                                 f"expected {spec['dtype']} (not a gaiarvs-cnn catalogue).")
    for spec in specs:
        _to_model_unit(path, table, spec)
        _describe(table[spec["name"]], spec)
    return table


def _to_model_unit(path: Path, table: Table, spec) -> None:
    """Convert a column given in another unit than the data model's (teff in kK -> K).

    A column without a unit, or with one astropy does not recognise (catalogues of
    earlier versions), is taken to be in the data-model unit, as before.
    """
    import astropy.units as u

    name, col = spec["name"], table[spec["name"]]
    have = col.unit
    if not spec["unit"] or have is None or isinstance(have, u.UnrecognizedUnit):
        return
    target = u.Unit(spec["unit"])
    if have == target or have.to_string() == target.to_string():
        return              # e.g. VOTable's CDS '[-]': a plain unit named 'dex', not u.dex
    try:
        values = have.to(target, np.asarray(col, dtype=float))
    except u.UnitsError:
        raise InputDataError(
            f"{path}: column {name} is in {have}, which cannot be converted to the data "
            f"model's {target}; write it in {target} (or a unit convertible to it).") from None
    table[name] = table.Column(values.astype(col.dtype), name=name) if not hasattr(
        col, "mask") else table.MaskedColumn(values.astype(col.dtype), name=name,
                                              mask=np.ma.getmaskarray(col))
    from astropy import log

    log.info(f"{path}: column {name} converted from {have} to {target}.")
