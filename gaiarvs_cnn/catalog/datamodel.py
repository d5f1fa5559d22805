"""The catalogue data model: the 17 columns of paper Table 2, their table, the flag selection.

The 17 columns, their order, dtypes, units, UCDs and descriptions come from one data-model
file, ``catalog/datamodel.json`` (installed as ``gaiarvs_cnn.catalog_model``), which this
module reads. The writers (`gaiarvs_cnn.catalog.writers`) and the reader
(`gaiarvs_cnn.catalog.readers`) carry them into and out of every file format.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..exceptions import InputDataError
from ..flags.boundary import FLAG_POSITIONS

__all__ = [
    "DEFAULT_NAME",
    "binary_fields",
    "binary_rows",
    "build_catalog_table",
    "catalog_columns",
    "datamodel",
    "flag_text",
    "select_good",
]

#: Characters of ``flag_boundary`` (one per position of `FLAG_POSITIONS`).
FLAG_WIDTH = len(FLAG_POSITIONS)
#: Default base name of a catalogue (the format's suffix is appended).
DEFAULT_NAME = "gaiarvs_cnn_catalog"
_DATAMODEL = "datamodel.json"


@lru_cache(maxsize=1)
def datamodel() -> dict:
    """The catalogue data model (``catalog/datamodel.json``) as a dict.

    Read through `importlib.resources` from ``gaiarvs_cnn.catalog_model`` (the installed
    ``catalog/`` directory); in a source checkout that is not installed, from
    ``<repository>/catalog/``.
    """
    try:
        text = resources.files("gaiarvs_cnn.catalog_model").joinpath(_DATAMODEL).read_text()
    except ModuleNotFoundError:
        # A source checkout imported in place (``python -m pytest`` in the repository puts
        # the checkout before the installed copy): ``<repository>/catalog/``, two levels
        # above this package (``<repository>/gaiarvs_cnn/catalog/``).
        text = (source_datamodel_dir() / _DATAMODEL).read_text()
    return json.loads(text)


def source_datamodel_dir() -> Path:
    """The ``catalog/`` directory of the source checkout this module was imported from."""
    return Path(__file__).resolve().parents[2] / "catalog"


def catalog_columns() -> list[dict]:
    """The column entries of the data model, in catalogue order.

    Returns
    -------
    list of dict
        ``name``, ``dtype``, ``unit``, ``ucd``, ``format``, ``description`` per column.
    """
    return list(datamodel()["columns"])


def _unit(spec: Mapping) -> u.UnitBase | None:
    return u.Unit(spec["unit"]) if spec["unit"] else None


def _dtype(spec: Mapping) -> str:
    return "U8" if spec["dtype"] == "str8" else spec["dtype"]


#: Numpy type of each data-model dtype in big-endian binary rows (FITS, VOTable BINARY2).
_BINARY_TYPES = {"int64": ">i8", "float32": ">f4", "str8": f"S{FLAG_WIDTH}"}


def binary_fields(specs) -> list[tuple[str, str]]:
    """``(name, numpy type)`` of data-model columns in big-endian binary rows.

    Parameters
    ----------
    specs : iterable of dict
        Column specifications (`gaiarvs_cnn.catalog.datamodel.catalog_columns`).

    Returns
    -------
    list of tuple
        One ``(name, type)`` per column, for `numpy.dtype`.
    """
    return [(s["name"], _BINARY_TYPES[s["dtype"]]) for s in specs]


def binary_rows(dtype: np.dtype, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """``n`` zero-filled rows of ``dtype`` holding ``columns`` (text encoded as ASCII).

    Parameters
    ----------
    dtype : numpy.dtype
        The row type (fields from `binary_fields`, possibly more).
    columns : mapping of str to ndarray
        Values of ``n`` stars per field name.
    n : int
        Number of rows.

    Returns
    -------
    ndarray
        The structured rows; fields not in ``columns`` stay zero.
    """
    rec = np.zeros(n, dtype)
    for name, values in columns.items():
        rec[name] = np.char.encode(values, "ascii") if values.dtype.kind == "U" else values
    return rec


def _as_list(obj) -> list:
    return [obj] if isinstance(obj, Mapping | np.ndarray) else list(obj)


def build_catalog_table(pred_chunks, flags, provenance: Mapping | None = None) -> Table:
    """Assemble the 17-column catalogue table from prediction chunks and flags.

    Parameters
    ----------
    pred_chunks : mapping or iterable of mappings
        `gaiarvs_cnn.model.predict_batch` dicts (``source_id`` and the 15 label columns in
        physical units: K, dex(cm/s2), dex).
    flags : array of str or iterable of arrays
        ``flag_boundary`` strings matching the rows of ``pred_chunks``.
    provenance : mapping, optional
        Provenance items stored in ``table.meta`` (see `write_catalog`).

    Returns
    -------
    `~astropy.table.Table`
        Columns, dtypes, units, descriptions and UCDs (``col.meta['ucd']``) as in the data
        model.

    Raises
    ------
    InputDataError
        If a column is missing, or the number of flags differs from the number of stars.
    """
    chunks = _as_list(pred_chunks)
    flag_arr = np.concatenate([np.asarray(f, dtype="U8") for f in _as_list(flags)]
                              ) if len(_as_list(flags)) else np.zeros(0, "U8")
    n_stars = sum(len(np.atleast_1d(c.get("source_id", ()))) for c in chunks)
    if len(flag_arr) != n_stars:
        raise InputDataError(f"{len(flag_arr)} flags for {n_stars} stars.")
    table = Table(meta=_provenance_meta(provenance or {}))
    for spec in catalog_columns():
        name = spec["name"]
        if name == "flag_boundary":
            values = flag_arr
        else:
            missing = [i for i, c in enumerate(chunks) if name not in c]
            if missing:
                raise InputDataError(f"Prediction chunk {missing[0]} has no '{name}' column; "
                                     "expected the keys of gaiarvs_cnn.model.predict_batch.")
            values = (np.concatenate([np.asarray(c[name]) for c in chunks]) if chunks
                      else np.zeros(0))
        table[name] = np.asarray(values, dtype=_dtype(spec))
        _describe(table[name], spec)
    return table


def _describe(col, spec: Mapping) -> None:
    col.unit = _unit(spec)
    col.description = spec["description"]
    col.format = "{:" + spec["format"] + "}"
    col.meta["ucd"] = spec["ucd"]


def _provenance_meta(provenance: Mapping) -> dict:
    """FITS-style keywords (see data model ``provenance_keywords``) from provenance items."""
    from ..version import __version__

    dm = datamodel()
    meta = {"CATNAME": dm["name"], "DMVERS": dm["version"], "SWVERS": __version__,
            "DATE": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())}
    keys = {"bundle_id": "BUNDLEID", "bundle": "BUNDLE", "input_selection": "INPUTSEL",
            "n_input": "NINPUT", "date": "DATE", "precision": "PRECISN"}
    for key, value in provenance.items():
        meta[keys.get(key, key.upper()[:8])] = value if isinstance(
            value, int | float | str | bool) else json.dumps(value)
    return meta


def _check_columns(table: Table) -> None:
    names = [c["name"] for c in catalog_columns()]
    if list(table.colnames) != names:
        raise InputDataError(
            f"Catalogue columns {table.colnames} differ from the data model's {names}; "
            "build the table with gaiarvs_cnn.catalog.build_catalog_table.")


def flag_text(values) -> tuple[np.ndarray, int | None]:
    """``flag_boundary`` values as 8-character text, and the index of the first bad one.

    Bytes are decoded; integers (the paper's catalogue read by pandas: ``0``, ``10000``)
    are zero-padded. A value is bad unless it is `FLAG_WIDTH` characters ``0``/``1``.

    Parameters
    ----------
    values : array-like
        Text, bytes or non-negative integers.

    Returns
    -------
    flags : `numpy.ndarray` of ``U8``
    bad : int or None
        Index of the first bad value (None when all are good).

    Examples
    --------
    >>> flag_text([0, 10000])[0].tolist()
    ['00000000', '00010000']
    >>> flag_text(["0000000"])[1]
    0
    """
    values = np.asarray(values)
    if values.size == 0:     # numpy's string replace fails on an empty array
        return np.zeros(values.shape, dtype=f"U{FLAG_WIDTH}"), None
    if values.dtype.kind == "S":
        values = np.char.decode(values, "ascii", errors="replace")
    elif values.dtype.kind in "iu":
        values = np.char.zfill(values.astype(str), FLAG_WIDTH)
    text = values.astype(str)
    good = (np.char.str_len(text) == FLAG_WIDTH) & np.isin(
        np.char.replace(np.char.replace(text, "0", ""), "1", ""), "")
    bad = np.flatnonzero(~good)
    return text.astype(f"U{FLAG_WIDTH}"), (int(bad[0]) if bad.size else None)


def select_good(table: Table, ignore: Sequence[str] = ()) -> Table:
    """Rows with ``flag_boundary == "00000000"`` (the paper's recommendation).

    Parameters
    ----------
    table : `~astropy.table.Table`
    ignore : sequence of str
        Flag positions to disregard (names from `gaiarvs_cnn.flags.FLAG_POSITIONS`, e.g.
        ``("tsne",)``).

    Returns
    -------
    `~astropy.table.Table`
        The selected rows.
    """
    unknown = set(ignore) - set(FLAG_POSITIONS)
    if unknown:
        raise InputDataError(f"Unknown flag position(s) {sorted(unknown)}; use "
                             f"{list(FLAG_POSITIONS)}.")
    keep = [i for i, name in enumerate(FLAG_POSITIONS) if name not in ignore]
    flags = np.asarray(table["flag_boundary"]).astype("U8")
    chars = flags.view("U1").reshape(len(flags), len(FLAG_POSITIONS)) if len(flags) else (
        np.zeros((0, len(FLAG_POSITIONS)), "U1"))
    return table[np.all(chars[:, keep] == "0", axis=1)]

