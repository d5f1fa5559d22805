"""Readers for real Gaia DR3 data products, returning `~gaiarvs_cnn.store.StarBatch` objects.

Supported inputs
----------------
* RVS mean spectra from the archive's DataLink service: FITS (one star per file, header
  keywords ``SOURCEID``, ``POS``), and the "long" CSV / ECSV / VOTable layout (2401 rows per
  star, several stars per file allowed, empty cells = NaN) -- `read_rvs_datalink`.
* XP continuous (BP/RP coefficient) products in CSV (arrays as ``"(v1, v2, ...)"`` strings),
  ECSV, VOTable and FITS -- `read_xp_continuous`.
* DataLink bundles (zip, directory, or the dict returned by astroquery's
  ``Gaia.load_data``) -- `read_datalink_products`.
* ``gaiadr3.gaia_source`` query results -- `gaia_source_to_batch`.
* Gaia DR3 bulk-download files ``RvsMeanSpectrum_*.csv.gz`` and
  ``XpContinuousMeanSpectrum_*.csv.gz`` streamed chunk by chunk -- `iter_bulk_rvs`,
  `iter_bulk_xp`, `bulk_to_store`; `ingest_to_store` routes any of these into a store.

Bad stars
---------
Every reader takes ``on_error='raise'`` (default: the first bad star raises
`~gaiarvs_cnn.exceptions.BadStarError` naming its source_id and file) or ``'skip'`` (the
star is dropped, a warning naming it is logged, and the rest of the batch is kept). Bad
stars are: wrong pixel count, wavelength grid not the RVS grid, all-NaN spectrum (no finite
flux in the continuum windows), missing or wrong-length XP coefficients, non-positive or
missing parallax, and repeated source_ids (the first occurrence is kept). A file that cannot
be read at all raises `~gaiarvs_cnn.exceptions.InputDataError` naming the file.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import io
import math
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy import log
from astropy.io import votable
from astropy.table import Table
from tqdm.auto import tqdm

from .constants import RVS_NPIX, XP_NCOEFF
from .exceptions import BadStarError, DuplicateSourceError, InputDataError, OutputExistsError
from .preprocess import check_rvs_grid, continuum_mask
from .store import StarBatch, Store

__all__ = [
    "read_rvs_datalink",
    "read_xp_continuous",
    "read_datalink_products",
    "read_products",
    "gaia_source_to_batch",
    "merge_on_source_id",
    "iter_bulk_rvs",
    "iter_bulk_xp",
    "bulk_to_store",
    "ingest_to_store",
    "PRODUCTS",
    "XP_COLUMNS",
    "PHOT_COLUMNS",
]

#: Columns filled by an XP continuous product.
XP_COLUMNS = ("bp_coefficients", "bp_coefficient_errors", "rp_coefficients",
              "rp_coefficient_errors")
#: Store columns filled from ``gaia_source``.
PHOT_COLUMNS = ("ra", "dec", "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag",
                "phot_g_mean_mag_error", "phot_bp_mean_mag_error", "phot_rp_mean_mag_error",
                "parallax", "parallax_error", "ruwe", "rvs_snr")
#: 2.5 / ln(10): converts a relative flux error into a magnitude error (mag).
_MAG_PER_REL_FLUX = 2.5 / math.log(10.0)

_FORMAT_ALIASES = {"csv": "ascii.csv", "ecsv": "ascii.ecsv", "xml": "votable",
                   "vot": "votable", "votable": "votable", "fits": "fits",
                   "ascii.csv": "ascii.csv", "ascii.ecsv": "ascii.ecsv"}
_EXT_FORMATS = {".fits": "fits", ".fit": "fits", ".fits.gz": "fits", ".csv": "ascii.csv",
                ".ecsv": "ascii.ecsv", ".xml": "votable", ".vot": "votable",
                ".votable": "votable"}


# ---------------------------------------------------------------------------------------
# bad-star policy
# ---------------------------------------------------------------------------------------
class _Policy:
    """What to do with a bad star: raise, or skip it (logging its source_id)."""

    def __init__(self, on_error: str):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}.")
        self.on_error = on_error
        self.skipped: list[int] = []

    def handle(self, exc: InputDataError) -> None:
        """Re-raise ``exc`` or log it and remember the skipped star."""
        if self.on_error == "raise":
            raise exc
        self.skipped.append(getattr(exc, "source_id", None))
        log.warning(f"Skipped: {exc}")


def _as_policy(on_error) -> _Policy:
    return on_error if isinstance(on_error, _Policy) else _Policy(on_error)


def _collect(items: Iterable, build: Callable, policy: _Policy) -> list[dict]:
    """Apply ``build`` to every item, keeping the rows of good stars."""
    rows = []
    for item in items:
        try:
            rows.append(build(item))
        except BadStarError as exc:
            policy.handle(exc)
    return rows


def _batch_from_rows(rows: Sequence[Mapping]) -> StarBatch:
    if not rows:
        return StarBatch.empty(0)
    return StarBatch({k: np.stack([r[k] for r in rows]) for k in rows[0]})


def _drop_duplicates(batch: StarBatch, policy: _Policy, where: str) -> StarBatch:
    """Keep the first occurrence of each source_id (or raise, per policy)."""
    ids = batch["source_id"]
    _, first = np.unique(ids, return_index=True)
    keep = np.zeros(len(ids), dtype=bool)
    keep[first] = True
    for sid in ids[~keep].tolist():
        policy.handle(DuplicateSourceError(
            f"Gaia DR3 {sid}: source_id occurs more than once in {where}; "
            "remove the repeated rows (the first occurrence is kept with on_error='skip')."))
    return batch if keep.all() else batch[keep]


def _concatenate(batches: Sequence[StarBatch]) -> StarBatch:
    batches = [b for b in batches if len(b)]
    return StarBatch.concatenate(batches) if batches else StarBatch.empty(0)


# ---------------------------------------------------------------------------------------
# table access helpers
# ---------------------------------------------------------------------------------------
def _find(names: Iterable[str], *wanted: str) -> str | None:
    """Return the first of ``names`` equal (case-insensitively) to one of ``wanted``."""
    lower = {n.lower(): n for n in names}
    for w in wanted:
        if w.lower() in lower:
            return lower[w.lower()]
    return None


def _require(table: Table, name: str, where: str) -> str:
    col = _find(table.colnames, name)
    if col is None:
        raise InputDataError(f"{where}: no column '{name}' (case-insensitive); it has "
                             f"{table.colnames}.")
    return col


def _floats(col, unit: str | None = None) -> np.ndarray:
    """Column values as float64 with masked values as NaN, converted to ``unit``."""
    arr = np.ma.filled(np.ma.asarray(col).astype(np.float64), np.nan)
    col_unit = getattr(col, "unit", None)
    if unit and col_unit is not None:
        arr = (arr * u.Unit(col_unit)).to_value(unit)
    return np.asarray(arr, dtype=np.float64)


def _ids(col, where: str) -> np.ndarray:
    ids = np.ma.asarray(col)
    if np.ma.count_masked(ids):
        raise InputDataError(f"{where}: {np.ma.count_masked(ids)} row(s) have no source_id.")
    return np.asarray(ids.filled(0)).astype(np.int64)


def _meta_get(meta: Mapping, *keys: str):
    key = _find(meta.keys(), *keys)
    value = meta[key] if key is not None else None
    return value[0] if isinstance(value, list) and len(value) and isinstance(
        value[0], str) else value


def _parse_numbers(text: str) -> np.ndarray | None:
    """Parse ``"(1.0, 2.0)"``, ``"[1.0,null]"`` or ``"1.0 2.0"`` into floats (None if empty)."""
    s = text.strip().strip("()[]").strip()
    if not s or s.lower() in ("null", "--", "none"):
        return None
    parts = s.split(",") if "," in s else s.split()
    try:
        return np.array(parts, dtype=np.float64)
    except ValueError:
        return np.array([p if p.strip().lower() not in ("", "null", "--", "none") else "nan"
                         for p in parts], dtype=np.float64)


def _vector(cell, n: int, sid: int, name: str, where: str, required: bool = True) -> np.ndarray:
    """One array cell (string, array, masked) as ``n`` floats; BadStarError if unusable."""
    if cell is None or cell is np.ma.masked:
        vec = None
    elif isinstance(cell, bytes | str):
        vec = _parse_numbers(cell.decode() if isinstance(cell, bytes) else cell)
    else:
        vec = np.ma.filled(np.ma.asarray(cell).astype(np.float64), np.nan).ravel()
    if vec is None or vec.size == 0 or not np.isfinite(vec).any():
        if required:
            raise BadStarError(sid, f"missing {name} in {where}.")
        return np.full(n, np.nan)
    if vec.size != n:
        raise BadStarError(sid, f"{name} has {vec.size} values in {where}, expected {n}.")
    return vec


# ---------------------------------------------------------------------------------------
# reading any table format
# ---------------------------------------------------------------------------------------
def _infer_format(name: str, head: bytes) -> str:
    lname = name.lower()
    for ext, fmt in sorted(_EXT_FORMATS.items(), key=lambda kv: -len(kv[0])):
        if lname.endswith(ext):
            return fmt
    if head.startswith(b"SIMPLE"):
        return "fits"
    if head.lstrip().startswith(b"# %ECSV"):
        return "ascii.ecsv"
    if b"<VOTABLE" in head[:1000] or head.lstrip().startswith(b"<?xml"):
        return "votable"
    return "ascii.csv"


def _votable_tables(src) -> list[Table]:
    """All tables of a VOTable, with the TABLE's PARAMs merged into ``meta``."""
    return [_votable_element_to_table(te)
            for te in votable.parse(src, verify="ignore").iter_tables()]


def _votable_element_to_table(te) -> Table:
    table = te.to_table(use_names_over_ids=True)
    for param in getattr(te, "params", []):
        table.meta[param.name] = param.value
    return table


def _fits_tables(src) -> list[Table]:
    from astropy.io import fits

    with fits.open(src, memmap=False) as hdul:
        return [Table.read(hdu, format="fits") for hdu in hdul[1:]
                if isinstance(hdu, fits.BinTableHDU | fits.TableHDU)]


def _read_tables(source, format: str | None = None, name: str | None = None) -> list[Table]:
    """Read every table of a file, file object or bytes (format inferred when None).

    Raises
    ------
    InputDataError
        Naming the file when it cannot be read in the given/inferred format.
    """
    if isinstance(source, str | os.PathLike):
        name = name or str(source)
        data = Path(source).read_bytes() if Path(source).is_file() else None
        if data is None:
            raise InputDataError(f"{name}: no such file.")
    elif isinstance(source, bytes):
        data = source
    else:
        data = source.read()
        name = name or getattr(source, "name", "<file object>")
        data = data.encode() if isinstance(data, str) else data
    name = name or "<bytes>"
    fmt = _FORMAT_ALIASES.get(format, format) if format else _infer_format(name, data[:2048])
    try:
        if fmt == "fits":
            return _fits_tables(io.BytesIO(data))
        if fmt == "votable":
            return _votable_tables(io.BytesIO(data))
        return [Table.read(data.decode("utf-8"), format=fmt, guess=False)]
    except Exception as exc:  # any reader failure: name the file and the format
        raise InputDataError(f"Cannot read {name} as {fmt}: {exc}. Check the file is a "
                             "complete Gaia archive product or pass format=.") from exc


# ---------------------------------------------------------------------------------------
# RVS spectra
# ---------------------------------------------------------------------------------------
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
    flux = np.asarray(flux, dtype=np.float64)
    if not np.isfinite(flux[continuum_mask()]).any():
        raise BadStarError(sid, f"all-NaN RVS spectrum in {where} (no finite flux in the "
                                "continuum windows); it cannot be used.")
    return {"source_id": sid, "ra": ra, "dec": dec, "flux": flux,
            "flux_error": np.asarray(flux_error, dtype=np.float64)}


def _group_rows(ids: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(source_id, row indices) per star, stars in order of first appearance."""
    uniq, first, inv = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(inv))[:-1])
    return [(int(uniq[i]), groups[i]) for i in np.argsort(first)]


def _rvs_long(table: Table, where: str, policy: _Policy) -> StarBatch:
    """Long layout: one row per pixel, a ``source_id`` column, any number of stars."""
    cols = {k: _require(table, k, where) for k in ("source_id", "wavelength", "flux",
                                                    "flux_error")}
    ids = _ids(table[cols["source_id"]], where)
    wave = _floats(table[cols["wavelength"]], "nm")
    flux, err = _floats(table[cols["flux"]]), _floats(table[cols["flux_error"]])
    ra_col, dec_col = _find(table.colnames, "ra"), _find(table.colnames, "dec")
    ra = _floats(table[ra_col], "deg") if ra_col else np.full(len(ids), np.nan)
    dec = _floats(table[dec_col], "deg") if dec_col else np.full(len(ids), np.nan)

    def build(group):
        sid, rows = group
        return _rvs_row(sid, ra[rows[0]], dec[rows[0]], wave[rows], flux[rows], err[rows],
                        where)

    return _batch_from_rows(_collect(_group_rows(ids), build, policy))


def _position_from_meta(meta: Mapping) -> tuple[float, float]:
    ra, dec = _meta_get(meta, "ra"), _meta_get(meta, "dec")
    if ra is not None and dec is not None:
        return float(ra), float(dec)
    pos = _meta_get(meta, "POS", "spatialLocation")
    if pos is None:
        return np.nan, np.nan
    values = _parse_numbers(pos) if isinstance(pos, str) else np.ravel(pos).astype(float)
    return (float(values[0]), float(values[1])) if values is not None else (np.nan, np.nan)


def _rvs_single(table: Table, where: str, policy: _Policy) -> StarBatch:
    """One star per table; source_id and position in the header (FITS) or PARAMs (VOTable)."""
    sid_value = _meta_get(table.meta, "source_id", "SOURCEID")
    if sid_value is None:
        raise InputDataError(f"{where}: no source_id column and no SOURCEID keyword/PARAM; "
                             "is this an RVS DataLink product?")
    sid = int(sid_value)
    ra, dec = _position_from_meta(table.meta)
    cols = {k: _require(table, k, where) for k in ("wavelength", "flux", "flux_error")}

    def build(_):
        return _rvs_row(sid, ra, dec, _floats(table[cols["wavelength"]], "nm"),
                        _floats(table[cols["flux"]]), _floats(table[cols["flux_error"]]), where)

    return _batch_from_rows(_collect([None], build, policy))


def _rvs_from_table(table: Table, where: str, policy: _Policy) -> StarBatch:
    if _find(table.colnames, "source_id") is not None:
        return _rvs_long(table, where, policy)
    return _rvs_single(table, where, policy)


def read_rvs_datalink(path_or_fileobj, format: str | None = None,
                      on_error: str = "raise") -> StarBatch:
    """Read an RVS mean-spectrum DataLink product (FITS, CSV, ECSV or VOTable).

    Parameters
    ----------
    path_or_fileobj : path-like, file object or bytes
        The product. File names may contain spaces (``"RVS-Gaia DR3 <id>.fits"``).
    format : {'fits', 'csv', 'ecsv', 'votable'}, optional
        Inferred from the extension, else from the content.
    on_error : {'raise', 'skip'}
        What to do with a bad star (see the module docstring).

    Returns
    -------
    StarBatch
        ``source_id``, ``ra``/``dec`` (deg) and the normalised ``flux``/``flux_error``
        (dimensionless) on the 2401-pixel 846-870 nm grid; NaN pixels are kept.

    Raises
    ------
    BadStarError
        Wrong pixel count, wavelength grid or all-NaN spectrum (``on_error='raise'``).
    InputDataError
        The file cannot be read or lacks the RVS columns.

    Examples
    --------
    >>> from gaiarvs_cnn.readers import read_rvs_datalink
    >>> batch = read_rvs_datalink("RVS-Gaia DR3 863983115982280448.fits")  # doctest: +SKIP
    >>> batch["flux"].shape  # doctest: +SKIP
    (1, 2401)
    """
    policy = _as_policy(on_error)
    name = _source_name(path_or_fileobj)
    tables = _read_tables(path_or_fileobj, format, name)
    batch = _concatenate([_rvs_from_table(t, name, policy) for t in tables])
    return _drop_duplicates(batch, policy, name)


def _source_name(source) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    return getattr(source, "name", "<file object>")


# ---------------------------------------------------------------------------------------
# XP continuous coefficients
# ---------------------------------------------------------------------------------------
def _xp_from_table(table: Table, where: str, policy: _Policy) -> StarBatch:
    cols = {k: _require(table, k, where) for k in ("source_id", *XP_COLUMNS)}
    ids = _ids(table[cols["source_id"]], where)

    def build(i):
        sid = int(ids[i])
        row = {"source_id": sid}
        for name in XP_COLUMNS:
            row[name] = _vector(table[cols[name]][i], XP_NCOEFF, sid,
                                f"XP continuous {name}", where)
        if row["bp_coefficients"][0] == 0 or row["rp_coefficients"][0] == 0:
            raise BadStarError(sid, f"first BP/RP coefficient is zero in {where}; the XP "
                                    "spectrum cannot be normalised.")
        return row

    return _batch_from_rows(_collect(range(len(ids)), build, policy))


def read_xp_continuous(path, format: str | None = None, on_error: str = "raise") -> StarBatch:
    """Read an XP continuous (BP/RP coefficient) product: CSV, ECSV, VOTable or FITS.

    Parameters
    ----------
    path : path-like, file object or bytes
        The product (e.g. ``XP_CONTINUOUS-Gaia DR3 <id>.csv`` or ``XP_CONTINUOUS_RAW.ecsv``).
    format : str, optional
        Inferred from the extension, else from the content.
    on_error : {'raise', 'skip'}
        What to do with a star whose coefficients are missing or not 55 long.

    Returns
    -------
    StarBatch
        ``source_id`` and ``bp/rp_coefficients`` and ``bp/rp_coefficient_errors``
        (55 values each, in the archive's flux units e-/s); other columns NaN.

    Raises
    ------
    BadStarError
        Missing XP coefficients or wrong length (``on_error='raise'``).
    InputDataError
        The file cannot be read or lacks the XP columns.
    """
    policy = _as_policy(on_error)
    name = _source_name(path)
    batch = _concatenate([_xp_from_table(t, name, policy)
                          for t in _read_tables(path, format, name)])
    return _drop_duplicates(batch, policy, name)


# ---------------------------------------------------------------------------------------
# DataLink bundles
# ---------------------------------------------------------------------------------------
#: DataLink products this package reads, and the function turning one table into a batch.
PRODUCTS: dict[str, Callable] = {"RVS": _rvs_from_table, "XP_CONTINUOUS": _xp_from_table}


def _product_type(name: str) -> str:
    """'XP_CONTINUOUS' from 'XP_CONTINUOUS-Gaia DR3 1.csv' or 'XP_CONTINUOUS_COMBINED.xml'."""
    head = re.split(r"[-.]", Path(name).name, maxsplit=1)[0].strip().upper()
    return re.sub(r"_(COMBINED|INDIVIDUAL|RAW)$", "", head)


def _bundle_items(bundle) -> Iterator[tuple[str, list[Table]]]:
    """(file name, tables) for every file in a zip, a directory or an astroquery dict."""
    if isinstance(bundle, Mapping):
        for name, value in bundle.items():
            yield name, _tables_from_value(value, name)
        return
    path = Path(bundle)
    if path.is_dir():
        for member in sorted(p for p in path.iterdir() if p.is_file()):
            if _product_type(member.name) in PRODUCTS:
                yield member.name, _read_tables(member)
            else:
                yield member.name, []
        return
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputDataError(f"{path}: not a DataLink zip bundle or directory ({exc}).") from exc
    with archive:
        for member in archive.namelist():
            if member.endswith("/"):
                continue
            wanted = _product_type(member) in PRODUCTS
            yield member, (_read_tables(archive.read(member), name=f"{path.name}:{member}")
                           if wanted else [])


def _tables_from_value(value, name: str) -> list[Table]:
    """astroquery's values: a list of Tables / VOTable TableElements, a Table, or a path."""
    if isinstance(value, str | os.PathLike):
        return _read_tables(value) if _product_type(name) in PRODUCTS else []
    items = value if isinstance(value, list | tuple) else [value]
    return [it if isinstance(it, Table) else _votable_element_to_table(it) for it in items]


def read_datalink_products(bundle, on_error: str = "raise") -> dict[str, StarBatch]:
    """Read the RVS and XP continuous products of a DataLink bundle.

    Parameters
    ----------
    bundle : path-like or mapping
        A zip file as downloaded from the archive, a directory of extracted products, or
        the dict returned by ``astroquery.gaia.Gaia.load_data`` (file name -> list of
        tables). Other products (XP_SAMPLED, MCMC_MSC, ...) are skipped with a log message.
    on_error : {'raise', 'skip'}
        What to do with a bad star.

    Returns
    -------
    dict
        ``{'RVS': StarBatch, 'XP_CONTINUOUS': StarBatch}``; a product absent from the
        bundle gives an empty batch.
    """
    policy = _as_policy(on_error)
    found: dict[str, list[StarBatch]] = {k: [] for k in PRODUCTS}
    for name, tables in _bundle_items(bundle):
        kind = _product_type(name)
        if kind not in PRODUCTS:
            log.info(f"Ignoring DataLink product {kind} ({name}): not an input of gaiarvs-cnn.")
            continue
        found[kind].extend(PRODUCTS[kind](t, name, policy) for t in tables)
    out = {}
    for kind, batches in found.items():
        out[kind] = _drop_duplicates(_concatenate(batches), policy, f"{kind} products")
    return out


def _is_bundle(path) -> bool:
    p = Path(path)
    return p.is_dir() or zipfile.is_zipfile(p)


def read_products(paths: Iterable, product: str = "RVS", on_error: str = "raise") -> StarBatch:
    """Read one product type from several files (single products or DataLink bundles).

    Parameters
    ----------
    paths : iterable of path-like
        RVS or XP continuous products in any supported format, zip bundles or directories.
    product : {'RVS', 'XP_CONTINUOUS'}
    on_error : {'raise', 'skip'}
        With 'skip', unreadable files and bad stars are logged and skipped.

    Returns
    -------
    StarBatch
        All stars, duplicates across files removed (or refused, per ``on_error``).
    """
    if product not in PRODUCTS:
        raise ValueError(f"product must be one of {sorted(PRODUCTS)}, not {product!r}.")
    policy = _as_policy(on_error)
    reader = read_rvs_datalink if product == "RVS" else read_xp_continuous
    batches = []
    for path in paths:
        try:
            batches.append(read_datalink_products(path, policy)[product] if _is_bundle(path)
                           else reader(path, on_error=policy))
        except BadStarError:
            raise
        except InputDataError as exc:
            if policy.on_error == "raise":
                raise
            log.warning(f"Skipped file: {exc}")
    return _drop_duplicates(_concatenate(batches), policy, f"the {product} files")


# ---------------------------------------------------------------------------------------
# gaia_source and merging
# ---------------------------------------------------------------------------------------
_GAIA_SOURCE_MAP = {  # store column: (gaia_source column, unit)
    "ra": ("ra", "deg"), "dec": ("dec", "deg"),
    "phot_g_mean_mag": ("phot_g_mean_mag", "mag"),
    "phot_bp_mean_mag": ("phot_bp_mean_mag", "mag"),
    "phot_rp_mean_mag": ("phot_rp_mean_mag", "mag"),
    "parallax": ("parallax", "mas"), "parallax_error": ("parallax_error", "mas"),
    "ruwe": ("ruwe", None), "rvs_snr": ("rvs_spec_sig_to_noise", None),
}
_GAIA_SOURCE_REQUIRED = ("source_id", "phot_g_mean_mag", "phot_bp_mean_mag",
                         "phot_rp_mean_mag", "parallax")


def _as_table(table_or_path) -> Table:
    if isinstance(table_or_path, Table):
        return table_or_path
    return _read_tables(table_or_path)[0]


def _mag_errors(table: Table) -> dict[str, np.ndarray]:
    """sigma_mag = 2.5/ln(10) / (flux/sigma_flux) for G, BP, RP (mag); NaN where unknown."""
    out = {}
    for band in ("g", "bp", "rp"):
        col = _find(table.colnames, f"phot_{band}_mean_flux_over_error")
        if col is None:
            log.warning(f"gaia_source table has no phot_{band}_mean_flux_over_error: "
                        f"phot_{band}_mean_mag_error set to NaN.")
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"phot_{band}_mean_mag_error"] = _MAG_PER_REL_FLUX / _floats(table[col])
    return out


def gaia_source_to_batch(table, on_error: str = "raise") -> StarBatch:
    """Convert a ``gaiadr3.gaia_source`` query result to a StarBatch.

    Column names are matched case-insensitively (``SOURCE_ID`` works). Maps
    ``phot_{g,bp,rp}_mean_mag`` (mag), their errors from
    ``phot_*_mean_flux_over_error`` as sigma_mag = 2.5/ln10 / (flux/sigma_flux) (mag),
    ``parallax``/``parallax_error`` (mas), ``ruwe``, ``ra``/``dec`` (deg) and
    ``rvs_spec_sig_to_noise`` -> ``rvs_snr``.

    Parameters
    ----------
    table : `~astropy.table.Table` or path-like
        Query result (VOTable, ECSV, CSV or FITS when a path).
    on_error : {'raise', 'skip'}
        What to do with a star whose parallax is missing or not positive, or a repeated
        source_id.

    Returns
    -------
    StarBatch

    Raises
    ------
    InputDataError
        A required column (source_id, G, BP, RP, parallax) is missing.
    BadStarError
        Non-positive or missing parallax (``on_error='raise'``).
    """
    policy = _as_policy(on_error)
    table = _as_table(table)
    where = "gaia_source table"
    for name in _GAIA_SOURCE_REQUIRED:
        _require(table, name, where)
    cols = {"source_id": _ids(table[_find(table.colnames, "source_id")], where)}
    for store_name, (src, unit) in _GAIA_SOURCE_MAP.items():
        col = _find(table.colnames, src)
        if col is not None:
            cols[store_name] = _floats(table[col], unit)
    cols.update(_mag_errors(table))
    batch = StarBatch(cols)
    plx = batch["parallax"]
    bad = ~(np.isfinite(plx) & (plx > 0))
    for sid, value in zip(batch["source_id"][bad].tolist(), plx[bad].tolist()):
        policy.handle(BadStarError(sid, f"parallax {value} mas in {where}: a positive "
                                        "parallax is required (network input)."))
    return _drop_duplicates(batch[~bad], policy, where)


def _match(base_ids: np.ndarray, other_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(found mask over base, row of other for each found base star)."""
    if len(other_ids) == 0:
        return np.zeros(len(base_ids), dtype=bool), np.zeros(0, dtype=np.int64)
    sorter = np.argsort(other_ids, kind="stable")
    pos = np.clip(np.searchsorted(other_ids, base_ids, sorter=sorter), 0, len(other_ids) - 1)
    rows = sorter[pos]
    found = other_ids[rows] == base_ids
    return found, rows[found]


def merge_on_source_id(base: StarBatch, other: StarBatch, columns: Sequence[str]) -> StarBatch:
    """Fill ``columns`` of ``base`` from ``other``, matching stars by source_id.

    Stars of ``base`` absent from ``other`` keep their values (NaN when unknown) and are
    listed in a log warning.

    Parameters
    ----------
    base, other : StarBatch
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
    found, rows = _match(base["source_id"], other["source_id"])
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


def _complete(batch: StarBatch, other: StarBatch | None, columns: Sequence[str], what: str,
              policy: _Policy) -> StarBatch:
    """Merge ``columns`` from ``other``; stars absent from ``other`` are bad stars."""
    if other is None or len(batch) == 0:
        return batch
    found, _ = _match(batch["source_id"], other["source_id"])
    for sid in batch["source_id"][~found].tolist():
        policy.handle(BadStarError(sid, f"missing {what}."))
    batch = batch[found]
    return merge_on_source_id(batch, other, columns) if len(batch) else batch


# ---------------------------------------------------------------------------------------
# Gaia DR3 bulk-download files
# ---------------------------------------------------------------------------------------
def _open_text(path) -> io.TextIOBase:
    path = Path(path)
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", newline="", encoding="utf-8")
    return open(path, newline="", encoding="utf-8")


def _read_bulk_header(fh, path) -> list[str]:
    """Consume the '#' ECSV header and the column-name line; return the column names."""
    from astropy.table.meta import get_header_from_yaml

    yaml_lines = []
    for line in fh:
        if not line.startswith("#"):
            names = next(csv.reader([line]))
            break
        text = line[2:] if line.startswith("# ") else line[1:]
        if not text.startswith(("%ECSV", "---")):
            yaml_lines.append(text.rstrip("\n"))
    else:
        raise InputDataError(f"{path}: no data (header only or empty file).")
    if yaml_lines:
        try:
            header = get_header_from_yaml(yaml_lines)
        except Exception as exc:
            raise InputDataError(f"{path}: unreadable ECSV header ({exc}).") from exc
        declared = [c["name"] for c in header.get("datatype", [])]
        if declared and declared != names:
            raise InputDataError(f"{path}: column line {names} does not match the ECSV "
                                 f"header {declared}.")
    return [n.strip() for n in names]


def _bulk_rows(path, wanted: set | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """(source_id, {column: cell}) for every row (only ``wanted`` source_ids if given)."""
    try:
        with _open_text(path) as fh:
            names = _read_bulk_header(fh, path)
            sid_name = _find(names, "source_id")
            if sid_name is None:
                raise InputDataError(f"{path}: no source_id column; it has {names}.")
            i_sid = names.index(sid_name)
            for cells in csv.reader(fh):
                if not cells:
                    continue
                sid = int(cells[i_sid])
                if wanted is None or sid in wanted:
                    yield sid, dict(zip(names, cells))
    except (OSError, EOFError, ValueError, csv.Error) as exc:
        if isinstance(exc, InputDataError):
            raise
        raise InputDataError(f"{path}: unreadable bulk file ({exc}).") from exc


def _scalar(text: str) -> float:
    text = text.strip()
    return float(text) if text and text.lower() != "null" else np.nan


def _bulk_rvs_row(sid: int, cells: dict, where: str) -> dict:
    row = {"source_id": sid, "ra": _scalar(cells.get("ra", "")),
           "dec": _scalar(cells.get("dec", ""))}
    flux = _vector(cells["flux"], RVS_NPIX, sid, "RVS flux (all-NaN spectrum)", where)
    if not np.isfinite(flux[continuum_mask()]).any():
        raise BadStarError(sid, f"all-NaN RVS spectrum in {where} (no finite flux in the "
                                "continuum windows).")
    row["flux"] = flux
    row["flux_error"] = _vector(cells["flux_error"], RVS_NPIX, sid, "RVS flux_error", where,
                                required=False)
    return row


def _bulk_xp_row(sid: int, cells: dict, where: str) -> dict:
    row = {"source_id": sid}
    for name in XP_COLUMNS:
        row[name] = _vector(cells[name], XP_NCOEFF, sid, f"XP continuous {name}", where)
    return row


def _iter_bulk(path, chunk_size, build, required, policy: _Policy,
               wanted: set | None = None) -> Iterator[StarBatch]:
    from . import conf

    chunk_size = int(chunk_size or conf.chunk_size)
    where = Path(path).name
    rows, n_raw = [], 0
    for sid, cells in _bulk_rows(path, wanted):
        missing = [c for c in required if c not in cells]
        if missing:
            raise InputDataError(f"{path}: no column(s) {missing}; is this a Gaia DR3 bulk "
                                 "file of the right table?")
        try:
            rows.append(build(sid, cells, where))
        except BadStarError as exc:
            policy.handle(exc)
        n_raw += 1
        if n_raw == chunk_size:
            if rows:
                yield _batch_from_rows(rows)
            rows, n_raw = [], 0
    if rows:
        yield _batch_from_rows(rows)


def iter_bulk_rvs(path, chunk_size: int | None = None,
                  on_error: str = "raise") -> Iterator[StarBatch]:
    """Stream a Gaia DR3 ``RvsMeanSpectrum_*.csv.gz`` file chunk by chunk.

    The file is ECSV: a ``#`` YAML header, then one star per row with columns
    ``solution_id, source_id, ra, dec, flux, flux_error, combined_transits,
    combined_ccds, deblended_ccds``; ``flux``/``flux_error`` are 2401-element arrays
    written as ``"[v1,v2,...]"`` strings, ``null`` for missing values. The file is never
    loaded whole.

    Parameters
    ----------
    path : path-like
        ``.csv.gz`` or plain ``.csv``.
    chunk_size : int, optional
        Rows read per yielded batch (default ``conf.chunk_size``); skipped bad stars make
        a batch shorter.
    on_error : {'raise', 'skip'}

    Yields
    ------
    StarBatch
        ``source_id``, ``ra``, ``dec`` (deg), ``flux``, ``flux_error`` (dimensionless).
    """
    return _iter_bulk(path, chunk_size, _bulk_rvs_row, ("flux", "flux_error"),
                      _as_policy(on_error))


def iter_bulk_xp(path, chunk_size: int | None = None, on_error: str = "raise",
                 source_ids: Iterable[int] | None = None) -> Iterator[StarBatch]:
    """Stream a Gaia DR3 ``XpContinuousMeanSpectrum_*.csv.gz`` file chunk by chunk.

    Parameters
    ----------
    path : path-like
    chunk_size : int, optional
        Rows per batch (default ``conf.chunk_size``).
    on_error : {'raise', 'skip'}
    source_ids : iterable of int, optional
        Only parse these stars (the arrays of other rows are never parsed).

    Yields
    ------
    StarBatch
        ``source_id`` and the 55 BP/RP coefficients and errors (e-/s).
    """
    wanted = None if source_ids is None else {int(s) for s in source_ids}
    return _iter_bulk(path, chunk_size, _bulk_xp_row, XP_COLUMNS, _as_policy(on_error),
                      wanted)


def _partition(path) -> str | None:
    match = re.search(r"_(\d+-\d+)\.csv(\.gz)?$", Path(path).name)
    return match.group(1) if match else None


def _paired_xp(rvs_file, xp_files: Sequence) -> list:
    """XP files covering the same source_id range as ``rvs_file`` (all if unknown)."""
    part = _partition(rvs_file)
    same = [x for x in xp_files if part is not None and _partition(x) == part]
    return same or list(xp_files)


def _bulk_xp_lookup(xp_files: Sequence, ids: set, policy: _Policy) -> StarBatch:
    batches = [b for f in xp_files for b in iter_bulk_xp(f, on_error=policy, source_ids=ids)]
    return _drop_duplicates(_concatenate(batches), policy, "the XP bulk files")


@contextlib.contextmanager
def _atomic_store(path, overwrite: bool, meta: Mapping) -> Iterator[Store]:
    """A new store written under a temporary name and moved into place on success."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite).")
    part = path.with_name(path.name + ".part")
    store = Store.create(part, meta=meta, overwrite=True)
    try:
        yield store
    except BaseException:
        store.close()
        part.unlink(missing_ok=True)
        raise
    store.close()
    os.replace(part, path)


def _append_new(store: Store, batch: StarBatch, seen: set, policy: _Policy) -> None:
    """Append the stars not ``seen`` before; repeated source_ids are bad stars."""
    known = np.array([sid in seen for sid in batch["source_id"].tolist()], dtype=bool)
    for sid in batch["source_id"][known].tolist():
        policy.handle(DuplicateSourceError(f"Gaia DR3 {sid}: already read from an earlier "
                                           f"file; repeated source_id not written again."))
    store.append(batch[~known])
    seen.update(batch["source_id"][~known].tolist())


def _describe(source) -> str | None:
    if source is None:
        return None
    return "<astropy Table>" if isinstance(source, Table) else str(source)


def _provenance(rvs, xp, gaia_source, policy: _Policy, n: int) -> dict:
    return {"inputs": {"rvs": [str(p) for p in rvs], "xp": [str(p) for p in xp],
                       "gaia_source": _describe(gaia_source)},
            "reader": "gaiarvs_cnn.readers", "on_error": policy.on_error, "n_stars": n,
            "n_skipped": len(policy.skipped)}


def _gaia_batch(gaia_source, policy: _Policy) -> StarBatch | None:
    if gaia_source is None:
        log.warning("No gaia_source table given: photometry, parallax and S/N stay NaN.")
        return None
    return gaia_source_to_batch(gaia_source, on_error=policy)


def bulk_to_store(rvs_files: Sequence, xp_files: Sequence, store_path, gaia_source=None,
                  chunk_size: int | None = None, on_error: str = "skip",
                  overwrite: bool = False) -> Path:
    """Build a store from Gaia DR3 bulk RVS and XP files (streamed, with progress bar).

    Each ``RvsMeanSpectrum_<range>.csv.gz`` is paired with the
    ``XpContinuousMeanSpectrum_<range>.csv.gz`` of the same source_id range (all XP files
    are searched when the names do not pair); only the XP rows of RVS stars are parsed.

    Parameters
    ----------
    rvs_files, xp_files : sequence of path-like
    store_path : path-like
        Output HDF5 store, written atomically.
    gaia_source : `~astropy.table.Table` or path-like, optional
        ``gaia_source`` rows of the stars (photometry, parallax, S/N); without it those
        columns stay NaN.
    chunk_size : int, optional
        Stars per chunk (default ``conf.chunk_size``).
    on_error : {'skip', 'raise'}
        Default 'skip': bad stars and stars without XP / gaia_source rows are logged and
        left out.
    overwrite : bool

    Returns
    -------
    Path
        The store.
    """
    policy = _as_policy(on_error)
    gaia = _gaia_batch(gaia_source, policy)
    store_path = Path(store_path)
    seen: set = set()
    with _atomic_store(store_path, overwrite, {}) as store:
        for rvs_file in tqdm(list(rvs_files), desc="RVS bulk files", unit="file"):
            ids = {sid for sid, _ in _bulk_rows(rvs_file)}
            xp = _bulk_xp_lookup(_paired_xp(rvs_file, xp_files), ids, policy)
            for chunk in iter_bulk_rvs(rvs_file, chunk_size, policy):
                chunk = _complete(chunk, xp, XP_COLUMNS, "XP continuous coefficients",
                                  policy)
                _append_new(store, _complete(chunk, gaia, PHOT_COLUMNS, "gaia_source row",
                                             policy), seen, policy)
        store.update_meta(**_provenance(rvs_files, xp_files, gaia_source, policy,
                                        len(store)))
    log.info(f"Wrote {store_path} ({len(policy.skipped)} star(s) skipped).")
    return store_path


def _is_bulk(path) -> bool:
    name = Path(path).name
    return name.startswith(("RvsMeanSpectrum_", "XpContinuousMeanSpectrum_"))


def ingest_to_store(rvs_files: Sequence, xp_files: Sequence, store_path, gaia_source=None,
                    on_error: str = "raise", overwrite: bool = False,
                    chunk_size: int | None = None) -> Path:
    """Read real-format RVS + XP (+ gaia_source) files into a new store.

    Bulk files (``RvsMeanSpectrum_*``) go through `bulk_to_store`; DataLink products and
    bundles through `read_products`, then XP and gaia_source values are merged by
    source_id. Stars without XP coefficients (or without a gaia_source row when a table is
    given) are bad stars.

    Parameters
    ----------
    rvs_files, xp_files : sequence of path-like
    store_path : path-like
        Output HDF5 store, written atomically.
    gaia_source : `~astropy.table.Table` or path-like, optional
    on_error : {'raise', 'skip'}
    overwrite : bool
    chunk_size : int, optional
        Stars per append (default ``conf.chunk_size``).

    Returns
    -------
    Path
    """
    from . import conf

    rvs_files, xp_files = list(rvs_files), list(xp_files)
    if rvs_files and all(_is_bulk(p) for p in rvs_files):
        return bulk_to_store(rvs_files, xp_files, store_path, gaia_source, chunk_size,
                             on_error, overwrite)
    policy = _as_policy(on_error)
    rvs = read_products(rvs_files, "RVS", policy)
    xp = read_products(xp_files, "XP_CONTINUOUS", policy)
    batch = _complete(rvs, xp, XP_COLUMNS, "XP continuous coefficients", policy)
    batch = _complete(batch, _gaia_batch(gaia_source, policy), PHOT_COLUMNS,
                      "gaia_source row", policy)
    step = int(chunk_size or conf.chunk_size)
    with _atomic_store(store_path, overwrite, {}) as store:
        for lo in tqdm(range(0, len(batch), step), desc="Writing store", unit="chunk"):
            store.append(batch[lo:lo + step])
        store.update_meta(**_provenance(rvs_files, xp_files, gaia_source, policy,
                                        len(store)))
    return Path(store_path)
