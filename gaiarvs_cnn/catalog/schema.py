"""The gaiarvs-cnn catalogue: build, write (FITS, VOTable), read, select (paper Table 2).

The 17 columns, their order, dtypes, units, UCDs and descriptions come from one data-model
file, ``catalog/datamodel.json`` (installed as ``gaiarvs_cnn.catalog_model``), which this
module reads: the FITS header and the VOTable FIELDs carry them, together with the
provenance (software version, model bundle id, date, input selection).

Writes are atomic: the catalogue is written to a temporary file in the destination
directory and renamed (`os.replace`) only once complete, so a final name never holds a
half-written catalogue and an earlier catalogue is untouched if writing fails.

Units: ``dex`` and ``dex(cm/s2)`` exist in neither the FITS nor the VOUnit standard.
They are written verbatim (``TUNITn`` / ``unit=``); a plain `astropy.table.Table.read`
returns them as `~astropy.units.UnrecognizedUnit` (with a warning), and `read_catalog`
restores the astropy function units ``u.dex`` and ``u.dex(u.cm / u.s**2)``.

Examples
--------
>>> from gaiarvs_cnn.catalog import read_catalog, select_good        # doctest: +SKIP
>>> cat = read_catalog("catalog/gaiarvs_cnn_catalog.fits")           # doctest: +SKIP
>>> best = select_good(cat)          # flag_boundary == "00000000"   # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy import log
from astropy.io import fits
from astropy.table import Table
from astropy.utils.exceptions import AstropyWarning

from ..exceptions import GaiaRVSCNNError, InputDataError, OutputExistsError
from ..flags.boundary import FLAG_POSITIONS, GOOD_FLAG
from ..utils.atomic import chmod_default

__all__ = [
    "CatalogWriteError",
    "DEFAULT_NAME",
    "FORMATS",
    "build_catalog_table",
    "catalog_columns",
    "datamodel",
    "format_of",
    "output_paths",
    "read_catalog",
    "select_good",
    "write_catalog",
]

#: Default base name of a catalogue (``.fits`` / ``.vot`` appended).
DEFAULT_NAME = "gaiarvs_cnn_catalog"
#: Output formats and their file suffixes.
FORMATS = {"fits": ".fits", "votable": ".vot"}
_SUFFIX_FORMAT = {".fits": "fits", ".fit": "fits", ".fits.gz": "fits", ".vot": "votable",
                  ".xml": "votable", ".votable": "votable"}
_DATAMODEL = "datamodel.json"


class CatalogWriteError(GaiaRVSCNNError, OSError):
    """Writing a catalogue failed (e.g. disk full); nothing was left under the final name."""


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
        text = (Path(__file__).resolve().parent.parent / "catalog" / _DATAMODEL).read_text()
    return json.loads(text)


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
            "n_input": "NINPUT", "date": "DATE"}
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


def format_of(path, format: str | None = None) -> str:
    """The catalogue format of a path.

    Parameters
    ----------
    path : path-like
        File name (``.fits``, ``.fit``, ``.fits.gz``, ``.vot``, ``.xml``, ``.votable``).
    format : {'fits', 'votable'}, optional
        Returned as is when given (after checking it).

    Returns
    -------
    str
        ``'fits'`` or ``'votable'``.
    """
    if format is not None:
        if format not in FORMATS:
            raise InputDataError(f"Unknown catalogue format '{format}'; use one of "
                                 f"{sorted(FORMATS)}.")
        return format
    name = Path(path).name.lower()
    for suffix, fmt in _SUFFIX_FORMAT.items():
        if name.endswith(suffix):
            return fmt
    raise InputDataError(f"Cannot tell the catalogue format of {path}; use a .fits or .vot "
                         "suffix or pass format='fits'|'votable'.")


def output_paths(out_dir, formats: str = "both", name: str = DEFAULT_NAME) -> list[Path]:
    """Catalogue paths in a directory.

    Parameters
    ----------
    out_dir : path-like
        Output directory.
    formats : {'both', 'fits', 'votable'}
        Formats wanted.
    name : str
        Base name (suffixes ``.fits`` / ``.vot`` appended).

    Returns
    -------
    list of Path
    """
    chosen = list(FORMATS) if formats == "both" else [format_of("", formats)]
    return [Path(out_dir) / f"{name}{FORMATS[f]}" for f in chosen]


def _fits_hdul(table: Table) -> fits.HDUList:
    hdu = fits.table_to_hdu(_bytes_flags(table))
    for i, spec in enumerate(catalog_columns(), start=1):
        if spec["unit"]:
            hdu.header[f"TUNIT{i}"] = (spec["unit"], "unit (astropy string)")
        hdu.header[f"TUCD{i}"] = spec["ucd"]
        hdu.header[f"TCOMM{i}"] = spec["description"][:68]
    hdu.header["EXTNAME"] = datamodel()["name"].upper()[:68]
    primary = fits.PrimaryHDU()
    for key, value in table.meta.items():
        primary.header[key] = value
    return fits.HDUList([primary, hdu])


def _bytes_flags(table: Table) -> Table:
    """Copy with ``flag_boundary`` as 8-byte ASCII text (FITS ``8A``, VOTable ``char``)."""
    out = table.copy(copy_data=False)
    out["flag_boundary"] = np.char.encode(np.asarray(table["flag_boundary"], dtype="U8"),
                                          "ascii")
    _describe(out["flag_boundary"], catalog_columns()[-1])
    return out


def _votable(table: Table):
    from astropy.io.votable import from_table
    from astropy.io.votable.tree import Info

    vot = from_table(_bytes_flags(table))
    vtab = vot.get_first_table()
    vtab.name = datamodel()["name"]
    for field, spec in zip(vtab.fields, catalog_columns()):
        field.ucd = spec["ucd"]
        # The setter would parse 'dex' as VOUnit (deci-'ex'); keep the data-model string.
        field._unit = u.UnrecognizedUnit(spec["unit"]) if spec["unit"] else None
    for key, value in table.meta.items():
        vot.resources[0].infos.append(Info(name=key, value=str(value)))
    return vot


def _write_tmp(table: Table, tmp: Path, fmt: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        if fmt == "fits":
            _fits_hdul(table).writeto(tmp, overwrite=True, checksum=True)
        else:
            _votable(table).to_xml(str(tmp), tabledata_format="binary2")


def write_catalog(table: Table, path, format: str | None = None, overwrite: bool = False,
                  provenance: Mapping | None = None) -> Path:
    """Write a catalogue atomically as FITS (binary table) or VOTable (BINARY2).

    Parameters
    ----------
    table : `~astropy.table.Table`
        From `build_catalog_table` (the 17 data-model columns, in order).
    path : path-like
        Destination; the format is taken from the suffix (``.fits``, ``.vot``) unless
        ``format`` is given.
    format : {'fits', 'votable'}, optional
    overwrite : bool
        Replace an existing file (only once the new one is complete).
    provenance : mapping, optional
        Extra provenance (``bundle_id``, ``bundle``, ``input_selection``, ``n_input``, ...)
        merged into the header / INFO elements.

    Returns
    -------
    Path

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    CatalogWriteError
        If writing fails (e.g. disk full); the temporary file is removed and any earlier
        catalogue under ``path`` is untouched.
    """
    path = Path(path)
    fmt = format_of(path, format)
    _check_columns(table)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace "
                                "it, or choose another output path.")
    if provenance:
        table = table.copy(copy_data=False)
        table.meta.update(_provenance_meta(provenance))
    table.meta["NSTARS"] = len(table)
    table.meta["NGOOD"] = int(np.sum(np.asarray(table["flag_boundary"]) == GOOD_FLAG))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        _write_tmp(table, tmp, fmt)
        chmod_default(tmp)              # mkstemp creates 0600 files
        os.replace(tmp, path)
    except OSError as exc:
        raise CatalogWriteError(f"Could not write {path} ({exc}); nothing was written under "
                                "that name. Free disk space or choose another --out.") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    log.info(f"Wrote {len(table)} stars to {path} ({fmt})")
    return path


def read_catalog(path) -> Table:
    """Read a gaiarvs-cnn catalogue (FITS or VOTable) with its data-model units.

    ``flag_boundary`` is returned as text (``str``), ``dex`` columns get astropy units.

    Parameters
    ----------
    path : path-like
        ``.fits`` or ``.vot`` catalogue written by `write_catalog`.

    Returns
    -------
    `~astropy.table.Table`
        The 17 columns with data-model units, descriptions and UCDs; the provenance
        (FITS header keywords, VOTable INFO elements) in ``meta``.

    Raises
    ------
    InputDataError
        If the file lacks a data-model column (not a gaiarvs-cnn catalogue).
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"No catalogue at {path}.")
    fmt = format_of(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        if fmt == "fits":
            table = Table.read(path, format="fits", hdu=1)
        else:
            from astropy.io.votable import parse

            vot = parse(str(path))
            table = vot.get_first_table().to_table()
            table.meta.update({i.name: i.value for r in vot.resources for i in r.infos})
    specs = catalog_columns()
    missing = [s["name"] for s in specs if s["name"] not in table.colnames]
    if missing:
        raise InputDataError(f"{path} lacks catalogue column(s) {missing}: not a gaiarvs-cnn "
                             "catalogue (or written by an incompatible version).")
    flags = table["flag_boundary"]
    table["flag_boundary"] = np.asarray(
        np.char.decode(flags, "ascii") if flags.dtype.kind == "S" else flags, dtype="U8")
    for spec in specs:
        _describe(table[spec["name"]], spec)
    return table


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

