"""Readers for real Gaia DR3 data products, returning `~gaiarvs_cnn.io.store.StarBatch` objects.

**Supported inputs.**

* RVS mean spectra from the archive's DataLink service: FITS (one star per file, header
  keywords ``SOURCEID``, ``POS``), and the "long" CSV / ECSV / VOTable layout (2401 rows per
  star, several stars per file allowed, empty cells = NaN) -- `read_rvs_datalink`.
* XP continuous (BP/RP coefficient) products in CSV (arrays as ``"(v1, v2, ...)"`` strings),
  ECSV, VOTable and FITS -- `read_xp_continuous`.
* DataLink bundles (zip, directory, or the dict returned by astroquery's
  ``Gaia.load_data``) -- `read_datalink_products`.
* ``gaiadr3.gaia_source`` query results -- `gaia_source_to_batch`.
* Gaia DR3 bulk-download files ``RvsMeanSpectrum_*.csv.gz`` and
  ``XpContinuousMeanSpectrum_*.csv.gz`` -- `iter_bulk_rvs`, `iter_bulk_xp`,
  `bulk_to_store`, and `ingest_to_store` (any of the above into a store) live in
  `gaiarvs_cnn.io.ingest`.

**Bad stars.** Every reader takes ``on_error='raise'`` (default: the first bad star raises
`~gaiarvs_cnn.exceptions.BadStarError` naming its source_id and file) or ``'skip'`` (the
star is dropped, a warning naming it is logged, and the rest of the batch is kept). Bad
stars are: wrong pixel count, wavelength grid not the RVS grid, all-NaN spectrum (no finite
flux in the continuum windows), missing or wrong-length XP coefficients, non-positive or
missing parallax, and repeated source_ids (the first occurrence is kept). A file that cannot
be read at all raises `~gaiarvs_cnn.exceptions.InputDataError` naming the file.
"""
from __future__ import annotations

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

from ..constants import RVS_NPIX, XP_NCOEFF
from ..exceptions import BadStarError, DuplicateSourceError, InputDataError
from ..preprocess import check_rvs_grid, continuum_mask
from .store import StarBatch, match_ids

__all__ = [
    "read_rvs_datalink",
    "read_xp_continuous",
    "read_datalink_products",
    "read_products",
    "gaia_source_to_batch",
    "merge_on_source_id",
    "BadStarPolicy",
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
class BadStarPolicy:
    """What to do with a bad star: raise, or skip it (logging its source_id).

    Readers accept ``on_error='raise'|'skip'`` or a policy object; passing one policy to
    several readers collects every skipped source_id in ``policy.skipped``.

    Parameters
    ----------
    on_error : {'raise', 'skip'}
        ``'raise'``: re-raise the error of the first bad star; ``'skip'``: log it,
        record its source_id in ``skipped`` and go on.

    Examples
    --------
    >>> from gaiarvs_cnn.io.readers import BadStarPolicy, read_products
    >>> policy = BadStarPolicy("skip")
    >>> batch = read_products(["RVS-Gaia DR3 1.fits"], "RVS", policy)  # doctest: +SKIP
    >>> policy.skipped  # doctest: +SKIP
    []
    """

    def __init__(self, on_error: str):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}.")
        self.on_error = on_error
        self.skipped: list[int] = []

    def handle(self, exc: InputDataError) -> None:
        """Re-raise ``exc`` or log it and remember the skipped star.

        Parameters
        ----------
        exc : `~gaiarvs_cnn.exceptions.InputDataError`
            The error of a bad star (usually a `~gaiarvs_cnn.exceptions.BadStarError`
            with a ``source_id`` attribute, appended to ``skipped``).

        Raises
        ------
        InputDataError
            ``exc`` itself, when ``on_error == 'raise'``.
        """
        if self.on_error == "raise":
            raise exc
        self.skipped.append(getattr(exc, "source_id", None))
        log.warning(f"Skipped: {exc}")


def _as_policy(on_error: str | BadStarPolicy) -> BadStarPolicy:
    return on_error if isinstance(on_error, BadStarPolicy) else BadStarPolicy(on_error)


def _collect(items: Iterable, build: Callable, policy: BadStarPolicy) -> list[dict]:
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


def _drop_duplicates(batch: StarBatch, policy: BadStarPolicy, where: str) -> StarBatch:
    """Keep the first occurrence of each source_id (or raise, per policy)."""
    ids = batch["source_id"]
    _, first = np.unique(ids, return_index=True)
    keep = np.zeros(len(ids), dtype=bool)
    keep[first] = True
    for sid in ids[~keep].tolist():
        policy.handle(_duplicate(sid, f"source_id occurs more than once in {where}; remove "
                                      "the repeated rows (on_error='skip' keeps the first)."))
    return batch if keep.all() else batch[keep]


def _duplicate(sid: int, problem: str) -> DuplicateSourceError:
    exc = DuplicateSourceError(f"Gaia DR3 {sid}: {problem}")
    exc.source_id = sid
    return exc


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


def _rvs_long(table: Table, where: str, policy: BadStarPolicy) -> StarBatch:
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


def _rvs_single(table: Table, where: str, policy: BadStarPolicy) -> StarBatch:
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


def _rvs_from_table(table: Table, where: str, policy: BadStarPolicy) -> StarBatch:
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
    >>> from gaiarvs_cnn.io.readers import read_rvs_datalink
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
def _xp_from_table(table: Table, where: str, policy: BadStarPolicy) -> StarBatch:
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
        Product type to read from each file or bundle.
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
        One star per good row, with the columns above filled (deg, mag, mas) and the
        RVS and XP columns NaN.

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


def _complete(batch: StarBatch, other: StarBatch | None, columns: Sequence[str], what: str,
              policy: BadStarPolicy) -> StarBatch:
    """Merge ``columns`` from ``other``; stars absent from ``other`` are bad stars."""
    if other is None or len(batch) == 0:
        return batch
    found, _ = match_ids(batch["source_id"], other["source_id"])
    for sid in batch["source_id"][~found].tolist():
        policy.handle(BadStarError(sid, f"missing {what}."))
    batch = batch[found]
    return merge_on_source_id(batch, other, columns) if len(batch) else batch
