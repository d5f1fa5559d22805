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

**Files are classified by content** (`classify_table`), not by name: a folder of RVS
DataLink CSVs named after their stars is read; a file that is not a Gaia product we read is
reported by name (an error with ``on_error='raise'``, a warning with ``'skip'``), never
silently left out. Empty, header-only, truncated (zip, gzip) and binary files raise
`~gaiarvs_cnn.exceptions.InputDataError` naming the file.

**Bad stars.** Every reader takes ``on_error`` (see `gaiarvs_cnn.io.policy`; default the
``on_error`` setting, ``'raise'``): ``'raise'`` -- the first bad star raises
`~gaiarvs_cnn.exceptions.BadStarError` naming its source_id and file; ``'skip'`` -- the
star is dropped, a warning naming it and the reason is logged, and the rest is kept. Bad
stars are: wrong pixel count, wavelength grid not the RVS grid, all-NaN or physically
implausible spectrum (`check_rvs_flux`: infinite or absurd pixels, more than a few negative
pixels, not normalised), non-numeric cells, a source_id that is neither an integer nor a
``"Gaia DR3 <id>"`` designation, missing, non-numeric or wrong-length XP coefficients,
non-positive or missing parallax, and repeated source_ids (the first occurrence is kept).
"""
from __future__ import annotations

import io
import math
import os
import re
import zipfile
import zlib
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
from ..utils.columns import find_column
from ..utils.formats import ASTROPY_FORMATS, format_from_suffix
from .policy import BadStarPolicy, as_policy
from .store import StarBatch, match_ids

__all__ = [
    "read_rvs_datalink",
    "check_rvs_flux",
    "rvs_flux_problems",
    "usable_rvs_flux",
    "classify_table",
    "classify_tables",
    "complete_from",
    "join_batches",
    "parse_source_id",
    "parse_vector",
    "rows_to_batch",
    "OTHER_PRODUCTS",
    "read_xp_continuous",
    "read_datalink_products",
    "read_products",
    "gaia_source_to_batch",
    "merge_on_source_id",
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


# ---------------------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------------------
def rows_to_batch(rows: Sequence[Mapping]) -> StarBatch:
    """Stack per-star rows (dicts of column values) into a `~gaiarvs_cnn.io.store.StarBatch`.

    Parameters
    ----------
    rows : sequence of mapping
        One mapping per star, all with the same keys (``source_id`` among them).

    Returns
    -------
    StarBatch
        One star per row (an empty batch when ``rows`` is empty).
    """
    if not rows:
        return StarBatch.empty(0)
    return StarBatch({k: np.stack([r[k] for r in rows]) for k in rows[0]})


def join_batches(batches: Sequence[StarBatch]) -> StarBatch:
    """Concatenate batches, ignoring empty ones (an empty batch when all are empty).

    Parameters
    ----------
    batches : sequence of StarBatch
        Batches with the same columns.

    Returns
    -------
    StarBatch
    """
    batches = [b for b in batches if len(b)]
    return StarBatch.concatenate(batches) if batches else StarBatch.empty(0)


# ---------------------------------------------------------------------------------------
# table access helpers
# ---------------------------------------------------------------------------------------
def _require(table: Table, name: str, where: str) -> str:
    col = find_column(table.colnames, name)
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


_DESIGNATION = re.compile(r"^\s*(?:gaia\s+dr[1-9]\s+)?(\d{1,19})\s*$", re.IGNORECASE)


def _numeric(col, unit: str | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Column values as float64 (masked -> NaN) and the mask of non-numeric cells.

    A text column (a CSV with a stray token) is parsed cell by cell; its unusable cells
    become NaN and are flagged, so that only the stars they belong to are bad.
    """
    try:
        return _floats(col, unit), np.zeros(len(col), dtype=bool)
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


def _ids(col, where: str, policy: BadStarPolicy) -> tuple[np.ndarray, np.ndarray]:
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


def _meta_get(meta: Mapping, *keys: str):
    key = find_column(meta.keys(), *keys)
    value = meta[key] if key is not None else None
    return value[0] if isinstance(value, list) and len(value) and isinstance(
        value[0], str) else value


_NULLS = ("", "null", "--", "none", "nan")


def _parse_numbers(text: str) -> np.ndarray | None:
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
            vec = _parse_numbers(cell.decode() if isinstance(cell, bytes) else cell)
        except ValueError as exc:
            raise BadStarError(sid, f"{name} in {where} has a {exc}.") from None
    else:
        try:
            vec = np.ma.filled(np.ma.asarray(cell).astype(np.float64), np.nan).ravel()
        except (TypeError, ValueError) as exc:
            raise BadStarError(sid, f"{name} in {where} is not numeric ({exc}).") from None
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
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_GZIP_MAGIC = b"\x1f\x8b"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _infer_format(name: str, head: bytes) -> str:
    by_suffix = format_from_suffix(name)             # the package's one suffix table
    if by_suffix is not None:
        return ASTROPY_FORMATS[by_suffix]
    if head.startswith(b"SIMPLE"):
        return "fits"
    if head.lstrip().startswith(b"# %ECSV"):
        return "ascii.ecsv"
    if b"<VOTABLE" in head[:1000] or head.lstrip().startswith(b"<?xml"):
        return "votable"
    return "ascii.csv"


def _check_content(data: bytes, name: str) -> bytes:
    """Refuse empty, zip, HDF5 and broken gzip content with a message naming ``name``."""
    if not data.strip():
        raise InputDataError(f"{name} is empty (no header, no rows); download the product "
                             "again.")
    if data.startswith(_ZIP_MAGIC):
        if zipfile.is_zipfile(io.BytesIO(data)):
            raise InputDataError(f"{name} is a zip archive: read it as a DataLink bundle "
                                 "(read_datalink_products or read_products).")
        raise InputDataError(f"{name} is an incomplete zip archive (truncated download?): "
                             "its table of contents is missing; download it again.")
    if data.startswith(_HDF5_MAGIC):
        raise InputDataError(f"{name} is an HDF5 file (a star store?), not a Gaia archive "
                             "product; open stores with gaiarvs_cnn.io.store.Store.")
    if data.startswith(_GZIP_MAGIC):
        import gzip

        try:
            return _check_content(gzip.decompress(data), name)
        except (OSError, EOFError) as exc:
            raise InputDataError(f"{name} is an incomplete gzip file (truncated download?): "
                                 f"{exc}.") from None
    return data


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
        Naming the file when it is empty, truncated, or cannot be read in the
        given/inferred format.
    """
    if isinstance(source, str | os.PathLike):
        name = name or str(source)
        if not Path(source).is_file():
            raise InputDataError(f"{name}: no such file.")
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise InputDataError(f"cannot read {name}: {exc.strerror or exc}.") from exc
    elif isinstance(source, bytes):
        data = source
    else:
        data = source.read()
        name = name or getattr(source, "name", "<file object>")
        data = data.encode() if isinstance(data, str) else data
    name = name or "<bytes>"
    fmt = _FORMAT_ALIASES.get(format, format) if format else _infer_format(name, data[:2048])
    data = _check_content(data, name)
    if fmt not in ("fits", "votable"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputDataError(f"{name} is not a text table (byte {exc.start} is not "
                                 "UTF-8): a binary file, or a truncated or corrupted "
                                 "download? Check the file or pass format=.") from None
    try:
        if fmt == "fits":
            tables = _fits_tables(io.BytesIO(data))
        elif fmt == "votable":
            tables = _votable_tables(io.BytesIO(data))
        else:
            tables = [Table.read(text.splitlines(), format=fmt, guess=False)]
    except Exception as exc:  # any reader failure: name the file and the format
        raise InputDataError(f"Cannot read {name} as {fmt}: {exc}. Check the file is a "
                             "complete Gaia archive product or pass format=.") from exc
    if not tables:
        raise InputDataError(f"{name} holds no table (read as {fmt}); is it a Gaia archive "
                             "product?")
    return tables


# ---------------------------------------------------------------------------------------
# what a table is (classification by content)
# ---------------------------------------------------------------------------------------
#: Gaia DataLink products recognised (by name or content) but not read by gaiarvs-cnn.
OTHER_PRODUCTS = ("XP_SAMPLED", "MCMC_MSC", "MCMC_GSPPHOT", "EPOCH_PHOTOMETRY",
                  "EPOCH_ASTROMETRY_BRIGHT", "RVS_EPOCH", "XP_CONTINUOUS_EPOCH")
#: Wavelength range of RVS spectra, nm (a wider margin than the 846-870 nm grid).
_RVS_WAVE_NM = (840.0, 876.0)


def _has(table: Table, *names: str) -> bool:
    return all(find_column(table.colnames, n) is not None for n in names)


def classify_table(table: Table) -> str | None:
    """The kind of Gaia product ``table`` holds, judged from its columns and values.

    Parameters
    ----------
    table : `~astropy.table.Table`
        One table of a file.

    Returns
    -------
    str or None
        ``'RVS'`` (wavelength/flux/flux_error on the RVS range), ``'XP_CONTINUOUS'``
        (BP and RP coefficients), ``'GAIA_SOURCE'`` (G magnitude and parallax),
        ``'XP_SAMPLED'`` (wavelength/flux outside the RVS range), ``'MCMC_MSC'`` /
        ``'MCMC_GSPPHOT'``, or None when the table is none of these.
    """
    if _has(table, "bp_coefficients", "rp_coefficients"):
        return "XP_CONTINUOUS"
    if _has(table, "wavelength", "flux", "flux_error"):
        try:
            wave = _floats(table[find_column(table.colnames, "wavelength")], "nm")
        except (ValueError, TypeError, u.UnitsError):
            return "RVS"      # let the RVS reader say what is wrong with the column
        finite = wave[np.isfinite(wave)]
        if finite.size == 0:
            return "RVS"
        lo, hi = _RVS_WAVE_NM
        inside = (finite >= lo) & (finite <= hi)
        return "RVS" if inside.mean() > 0.5 else "XP_SAMPLED"
    if _has(table, "phot_g_mean_mag", "parallax"):
        return "GAIA_SOURCE"
    if _has(table, "teff1", "logg1"):
        return "MCMC_MSC"
    if _has(table, "teff", "logg", "log_pos") or _has(table, "teff", "logg", "mh", "log_lik"):
        return "MCMC_GSPPHOT"
    if len(table.meta) and _meta_get(table.meta, "source_id", "SOURCEID") is not None \
            and _has(table, "wavelength", "flux"):
        return "RVS"
    return None


def classify_tables(tables: Sequence[Table], name: str) -> str:
    """The one product kind of all tables of the file ``name`` (see `classify_table`).

    Raises
    ------
    InputDataError
        If the file is not a Gaia product gaiarvs-cnn recognises, or mixes kinds.
    """
    kinds = {classify_table(t) for t in tables}
    if kinds == {None} or not kinds:
        cols = tables[0].colnames[:12] if tables else []
        raise InputDataError(f"{name} is not a Gaia product gaiarvs-cnn recognises (RVS "
                             "spectra, XP continuous coefficients, gaia_source rows); its "
                             f"columns are {cols}.")
    if len(kinds) > 1:
        raise InputDataError(f"{name} mixes tables of kinds {sorted(map(str, kinds))}; give "
                             "one product per file.")
    return kinds.pop()


_KIND_NAMES = {"RVS": "RVS spectra", "XP_CONTINUOUS": "XP continuous coefficients",
               "GAIA_SOURCE": "gaia_source rows", "XP_SAMPLED": "XP sampled spectra",
               "MCMC_MSC": "MCMC_MSC samples", "MCMC_GSPPHOT": "MCMC_GSPPHOT samples"}


#: The argument of `~gaiarvs_cnn.io.ingest.ingest_to_store` each product belongs to.
_KIND_ARGS = {"RVS": "rvs_files", "XP_CONTINUOUS": "xp_files", "GAIA_SOURCE": "gaia_source"}


def _no_rows(table: Table, where: str, what: str) -> None:
    if len(table) == 0:
        raise InputDataError(f"{where} has a header but no rows (no {what}); download the "
                             "product again.")


# ---------------------------------------------------------------------------------------
# RVS spectra: physical sanity
# ---------------------------------------------------------------------------------------
#: Range of plausible normalised RVS flux values (continuum = 1, deepest lines > 0).
FLUX_PLAUSIBLE_RANGE = (0.0, 3.0)
#: Pixels outside `FLUX_PLAUSIBLE_RANGE` (noise, a cosmic ray) tolerated per spectrum.
MAX_IMPLAUSIBLE_PIXELS = 5
#: Any pixel beyond +-this (or infinite) means the spectrum is not a normalised one.
FLUX_ABSURD = 10.0
#: Range of the median continuum flux of a normalised spectrum.
CONTINUUM_MEDIAN_RANGE = (0.5, 1.5)


def _flux_checks(flux: np.ndarray) -> dict[str, np.ndarray]:
    """The per-star quantities the sanity rules look at, for flux of shape (N, 2401)."""
    cont = flux[:, continuum_mask()]
    has_cont = np.isfinite(cont).any(axis=1)
    with np.errstate(invalid="ignore"):
        absurd = np.isinf(flux) | (np.abs(np.nan_to_num(flux, posinf=0, neginf=0))
                                   > FLUX_ABSURD)
        lo, hi = FLUX_PLAUSIBLE_RANGE
        off = (flux < lo) | (flux > hi)
        negative = flux < lo
    finite_cont = np.where(np.isfinite(cont), cont, np.nan)
    median = np.full(len(flux), np.nan)
    if has_cont.any():
        with np.errstate(all="ignore"):
            median[has_cont] = np.nanmedian(finite_cont[has_cont], axis=1)
    return {"has_cont": has_cont, "absurd": absurd, "n_off": off.sum(axis=1),
            "n_negative": negative.sum(axis=1), "median": median}


def usable_rvs_flux(flux) -> np.ndarray:
    """Per star: whether its normalised RVS flux passes the sanity rules of `check_rvs_flux`.

    Parameters
    ----------
    flux : array-like, shape (N, 2401)
        Normalised RVS flux (dimensionless); NaN pixels are allowed.

    Returns
    -------
    ndarray of bool, shape (N,)
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    c = _flux_checks(flux)
    lo, hi = CONTINUUM_MEDIAN_RANGE
    return (c["has_cont"] & ~c["absurd"].any(axis=1) & (c["n_off"] <= MAX_IMPLAUSIBLE_PIXELS)
            & (c["median"] >= lo) & (c["median"] <= hi))


def rvs_flux_problems(flux, where: str = "the input") -> list[str | None]:
    """Per star: why its normalised RVS flux is unusable (see `check_rvs_flux`), or None.

    Parameters
    ----------
    flux : array-like, shape (N, 2401)
        Normalised RVS flux (dimensionless).
    where : str, optional
        Where the spectra come from (a file name), for the messages.

    Returns
    -------
    list of (str or None)
        One entry per star.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    c = _flux_checks(flux)
    lo, hi = FLUX_PLAUSIBLE_RANGE
    out: list[str | None] = []
    for i in range(len(flux)):
        if not c["has_cont"][i]:
            out.append(f"all-NaN RVS spectrum in {where} (no finite flux in the continuum "
                       "windows); it cannot be used.")
        elif c["absurd"][i].any():
            k = int(np.argmax(c["absurd"][i]))
            out.append(f"RVS flux in {where} has {int(c['absurd'][i].sum())} infinite or "
                       f"absurd pixel(s) (e.g. {flux[i, k]:g} at pixel {k}); a normalised "
                       "spectrum lies near 0-1.")
        elif c["n_off"][i] > MAX_IMPLAUSIBLE_PIXELS:
            out.append(f"RVS flux in {where} has {int(c['n_off'][i])} pixels outside "
                       f"{lo:g}-{hi:g} ({int(c['n_negative'][i])} negative; at most "
                       f"{MAX_IMPLAUSIBLE_PIXELS} allowed): not a usable normalised "
                       "spectrum.")
        elif not CONTINUUM_MEDIAN_RANGE[0] <= c["median"][i] <= CONTINUUM_MEDIAN_RANGE[1]:
            out.append(f"RVS spectrum in {where} is not normalised: the median continuum "
                       f"flux is {c['median'][i]:g}, expected about 1.")
        else:
            out.append(None)
    return out


def check_rvs_flux(sid: int, flux, where: str) -> np.ndarray:
    """Physical sanity of one normalised RVS spectrum (NaN pixels are allowed: missing).

    A star is bad (`~gaiarvs_cnn.exceptions.BadStarError`) when its spectrum has no finite
    flux in the continuum windows, an infinite pixel or one beyond +-`FLUX_ABSURD`, more
    than `MAX_IMPLAUSIBLE_PIXELS` pixels outside `FLUX_PLAUSIBLE_RANGE` (negative flux,
    spikes), or a median continuum outside `CONTINUUM_MEDIAN_RANGE` (not normalised).

    Parameters
    ----------
    sid : int
        source_id, for the error.
    flux : array-like, shape (2401,)
        Normalised flux (dimensionless).
    where : str
        The file, for the error.

    Returns
    -------
    ndarray of float64
        ``flux``.

    Raises
    ------
    BadStarError
        Naming the star, the file and the reason.
    """
    flux = np.asarray(flux, dtype=np.float64)
    problem = rvs_flux_problems(flux[None], where)[0]
    if problem is not None:
        raise BadStarError(sid, problem)
    return flux


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
    cols = {k: _require(table, k, where) for k in ("source_id", "wavelength", "flux",
                                                    "flux_error")}
    _no_rows(table, where, "spectrum")
    ids, good = _ids(table[cols["source_id"]], where, policy)
    wave, bad_w = _numeric(table[cols["wavelength"]], "nm", where)
    flux, bad_f = _numeric(table[cols["flux"]], None, where)
    err, bad_e = _numeric(table[cols["flux_error"]], None, where)
    bad_cell = bad_w | bad_f | bad_e
    ra_col, dec_col = find_column(table.colnames, "ra"), find_column(table.colnames, "dec")
    ra = _numeric(table[ra_col], "deg", where)[0] if ra_col else np.full(len(ids), np.nan)
    dec = _numeric(table[dec_col], "deg", where)[0] if dec_col else np.full(len(ids), np.nan)
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
    ra, dec = _meta_get(meta, "ra"), _meta_get(meta, "dec")
    try:
        if ra is not None and dec is not None:
            return float(ra), float(dec)
        pos = _meta_get(meta, "POS", "spatialLocation")
        if pos is None:
            return np.nan, np.nan
        values = _parse_numbers(pos) if isinstance(pos, str) else np.ravel(pos).astype(float)
        return (float(values[0]), float(values[1])) if values is not None else (np.nan, np.nan)
    except (ValueError, TypeError, IndexError):
        log.warning(f"Unreadable position {ra, dec} / POS in the header: ra, dec set to NaN.")
        return np.nan, np.nan


def _rvs_single(table: Table, where: str, policy: BadStarPolicy) -> StarBatch:
    """One star per table; source_id and position in the header (FITS) or PARAMs (VOTable)."""
    sid_value = _meta_get(table.meta, "source_id", "SOURCEID")
    if sid_value is None:
        raise InputDataError(f"{where}: no source_id column and no SOURCEID keyword/PARAM; "
                             "is this an RVS DataLink product?")
    try:
        sid = parse_source_id(sid_value)
    except ValueError as exc:
        raise InputDataError(f"{where}: SOURCEID keyword {exc}.") from None
    ra, dec = _position_from_meta(table.meta)
    cols = {k: _require(table, k, where) for k in ("wavelength", "flux", "flux_error")}
    _no_rows(table, where, "spectrum")

    def build(_):
        values = {}
        for k in ("wavelength", "flux", "flux_error"):
            values[k], bad = _numeric(table[cols[k]], "nm" if k == "wavelength" else None,
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


def _source_name(source) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    return getattr(source, "name", "<file object>")


def _read_product(source, product: str, format: str | None, policy: BadStarPolicy
                  ) -> StarBatch:
    """Read one file holding ``product``; its content is checked to be that product."""
    name = _source_name(source)
    tables = _read_tables(source, format, name)
    kind = classify_tables(tables, name)
    if kind != product:
        hint = (f"; pass it as {_KIND_ARGS[kind]}" if kind in _KIND_ARGS
                else "; gaiarvs-cnn does not read this product")
        raise InputDataError(f"{name} holds {_KIND_NAMES.get(kind, kind)}, not "
                             f"{_KIND_NAMES[product]}{hint}.")
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
    >>> from gaiarvs_cnn.io.readers import read_rvs_datalink
    >>> batch = read_rvs_datalink("RVS-Gaia DR3 863983115982280448.fits")  # doctest: +SKIP
    >>> batch["flux"].shape  # doctest: +SKIP
    (1, 2401)
    """
    return _read_product(path_or_fileobj, "RVS", format, as_policy(on_error))


# ---------------------------------------------------------------------------------------
# XP continuous coefficients
# ---------------------------------------------------------------------------------------
def _xp_from_table(table: Table, where: str, policy: BadStarPolicy) -> StarBatch:
    cols = {k: _require(table, k, where) for k in ("source_id", *XP_COLUMNS)}
    _no_rows(table, where, "XP coefficients")
    ids, good = _ids(table[cols["source_id"]], where, policy)

    def build(i):
        sid = int(ids[i])
        row = {"source_id": sid}
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
    return _read_product(path, "XP_CONTINUOUS", format, as_policy(on_error))


# ---------------------------------------------------------------------------------------
# DataLink bundles
# ---------------------------------------------------------------------------------------
#: DataLink products this package reads, and the function turning one table into a batch.
PRODUCTS: dict[str, Callable] = {"RVS": _rvs_from_table, "XP_CONTINUOUS": _xp_from_table}


def _product_type(name: str) -> str:
    """'XP_CONTINUOUS' from 'XP_CONTINUOUS-Gaia DR3 1.csv' or 'XP_CONTINUOUS_COMBINED.xml'."""
    head = re.split(r"[-.]", Path(name).name, maxsplit=1)[0].strip().upper()
    return re.sub(r"_(COMBINED|INDIVIDUAL|RAW)$", "", head)


def _member(name: str, read: Callable[[], list[Table]], policy: BadStarPolicy
            ) -> tuple[str, list[Table], str | None]:
    """(name, tables, kind) of one file of a bundle: by name when it is a Gaia product name
    we do not read (not opened), else by content. Unreadable or unknown files go to the
    policy (an error with 'raise', a warning naming them with 'skip')."""
    by_name = _product_type(name)
    if by_name in OTHER_PRODUCTS:
        return name, [], by_name
    try:
        tables = read()
        return name, tables, classify_tables(tables, name)
    except BadStarError:
        raise
    except InputDataError as exc:
        policy.skip_file(exc)
        return name, [], None


def _bundle_items(bundle, policy: BadStarPolicy
                  ) -> Iterator[tuple[str, list[Table], str | None]]:
    """(file name, tables, kind) for every file in a zip, a directory or an astroquery dict."""
    if isinstance(bundle, Mapping):
        for name, value in bundle.items():
            yield _member(name, lambda v=value, n=name: _tables_from_value(v, n), policy)
        return
    path = Path(bundle)
    if path.is_dir():
        for member in sorted(p for p in path.iterdir() if p.is_file()):
            if member.name.startswith("."):      # hidden: .DS_Store, unfinished downloads
                log.debug(f"Ignoring hidden file {member} in {path}.")
                continue
            yield _member(str(member), lambda m=member: _read_tables(m), policy)
        return
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, NotImplementedError) as exc:
        raise InputDataError(f"{path} is not a DataLink zip bundle or a directory ({exc}); "
                             "if it is a download, it may be incomplete.") from exc
    with archive:
        for member in archive.namelist():
            if member.endswith("/"):
                continue
            label = f"{path.name}:{member}"

            def read(m=member, label=label):
                try:
                    data = archive.read(m)
                except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
                        zlib.error) as exc:
                    raise InputDataError(f"{label} cannot be extracted ({exc}); the zip "
                                         "archive is damaged, download it again.") from exc
                return _read_tables(data, name=label)

            yield _member(label, read, policy)


def _tables_from_value(value, name: str) -> list[Table]:
    """astroquery's values: a list of Tables / VOTable TableElements, a Table, or a path."""
    if isinstance(value, str | os.PathLike):
        return _read_tables(value, name=name)
    items = value if isinstance(value, list | tuple) else [value]
    return [it if isinstance(it, Table) else _votable_element_to_table(it) for it in items]


def read_datalink_products(bundle, on_error: str | BadStarPolicy | None = None
                           ) -> dict[str, StarBatch]:
    """Read the RVS and XP continuous products of a DataLink bundle.

    Every file is classified by its content (`classify_table`), so products need not be
    named ``RVS-*`` / ``XP_CONTINUOUS-*``.

    Parameters
    ----------
    bundle : path-like or mapping
        A zip file as downloaded from the archive, a directory of products (hidden files
        are ignored), or the dict returned by ``astroquery.gaia.Gaia.load_data`` (file
        name -> list of tables). Other Gaia products (XP_SAMPLED, MCMC_MSC, gaia_source,
        ...) are reported in the log by name and left out.
    on_error : {'raise', 'skip'} or `~gaiarvs_cnn.io.policy.BadStarPolicy`, optional
        What to do with a bad star, and with a file that is not a Gaia product (error with
        'raise', a warning naming it with 'skip'). Default ``conf.on_error``.

    Returns
    -------
    dict
        ``{'RVS': StarBatch, 'XP_CONTINUOUS': StarBatch}``; a product absent from the
        bundle gives an empty batch.

    Raises
    ------
    InputDataError
        The bundle cannot be opened, or (``on_error='raise'``) one of its files is not a
        readable Gaia product.
    BadStarError
        A bad star (``on_error='raise'``).
    """
    policy = as_policy(on_error)
    found: dict[str, list[StarBatch]] = {k: [] for k in PRODUCTS}
    for name, tables, kind in _bundle_items(bundle, policy):
        if kind is None:
            continue
        if kind not in PRODUCTS:
            log.info(f"Ignoring {_KIND_NAMES.get(kind, kind)} in {name}: not an input of "
                     "gaiarvs-cnn here.")
            continue
        found[kind].extend(PRODUCTS[kind](t, name, policy) for t in tables)
    out = {}
    for kind, batches in found.items():
        out[kind] = policy.drop_duplicates(join_batches(batches), f"{kind} products")
    return out


def _is_bundle(path) -> bool:
    p = Path(path)
    return p.is_dir() or zipfile.is_zipfile(p)


def read_products(paths: Iterable, product: str = "RVS",
                  on_error: str | BadStarPolicy | None = None) -> StarBatch:
    """Read one product type from several files (single products or DataLink bundles).

    Parameters
    ----------
    paths : iterable of path-like
        RVS or XP continuous products in any supported format, zip bundles or directories;
        each file is checked by content to hold ``product``.
    product : {'RVS', 'XP_CONTINUOUS'}
        Product type to read from each file or bundle.
    on_error : {'raise', 'skip'} or `~gaiarvs_cnn.io.policy.BadStarPolicy`, optional
        With 'skip', unreadable or foreign files and bad stars are logged by name and
        skipped. Default ``conf.on_error``.

    Returns
    -------
    StarBatch
        All stars, duplicates across files removed (or refused, per ``on_error``).

    Raises
    ------
    InputDataError
        A file cannot be read or holds another product (``on_error='raise'``).
    BadStarError
        A bad star (``on_error='raise'``).
    """
    if product not in PRODUCTS:
        raise ValueError(f"product must be one of {sorted(PRODUCTS)}, not {product!r}.")
    policy = as_policy(on_error)
    batches = []
    for path in paths:
        try:
            if _is_bundle(path):
                batch = read_datalink_products(path, policy)[product]
                if not len(batch):
                    log.warning(f"{path}: no {_KIND_NAMES[product]} found in this bundle.")
            else:
                batch = _read_product(path, product, None, policy)
            batches.append(batch)
        except BadStarError:
            raise
        except InputDataError as exc:
            policy.skip_file(exc)
    return policy.drop_duplicates(join_batches(batches), f"the {product} files")


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
_GAIA_SOURCE_STORE = {src: name for name, (src, _) in _GAIA_SOURCE_MAP.items()}
_GAIA_SOURCE_REQUIRED = ("source_id", "phot_g_mean_mag", "phot_bp_mean_mag",
                         "phot_rp_mean_mag", "parallax")


def _as_table(table_or_path) -> tuple[Table, str]:
    if isinstance(table_or_path, Table):
        return table_or_path, "gaia_source table"
    name = _source_name(table_or_path)
    return _read_tables(table_or_path, name=name)[0], f"gaia_source table {name}"


def _mag_errors(table: Table, where: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """sigma_mag = 2.5/ln(10) / (flux/sigma_flux) for G, BP, RP (mag); NaN where unknown."""
    out, bad = {}, np.zeros(len(table), dtype=bool)
    for band in ("g", "bp", "rp"):
        col = find_column(table.colnames, f"phot_{band}_mean_flux_over_error")
        if col is None:
            log.warning(f"{where} has no phot_{band}_mean_flux_over_error: "
                        f"phot_{band}_mean_mag_error set to NaN.")
            continue
        values, bad_cells = _numeric(table[col], None, where)
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
        raise InputDataError(f"{where} holds {_KIND_NAMES[kind]}, not gaia_source rows; pass "
                             f"it as {_KIND_ARGS[kind]}.")
    for name in _GAIA_SOURCE_REQUIRED:
        _require(table, name, where)
    missing = [c for c in _GAIA_SOURCE_WARN if find_column(table.colnames, c) is None]
    if missing:
        log.warning(f"{where} has no column(s) {', '.join(missing)}: the store's "
                    f"{', '.join(_GAIA_SOURCE_STORE.get(c, c) for c in missing)} stay NaN. "
                    "Select them in the gaia_source query to fill them.")
    ids, good = _ids(table[find_column(table.colnames, "source_id")], where, policy)
    cols = {"source_id": ids}
    bad_cells = np.zeros(len(table), dtype=bool)
    bad_name = np.full(len(table), "", dtype=object)
    for store_name, (src, unit) in _GAIA_SOURCE_MAP.items():
        col = find_column(table.colnames, src)
        if col is not None:
            cols[store_name], bad = _numeric(table[col], unit, where)
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


def complete_from(batch: StarBatch, other: StarBatch | None, columns: Sequence[str], what: str,
                  policy: BadStarPolicy) -> StarBatch:
    """Merge ``columns`` from ``other``; stars absent from ``other`` are bad stars.

    Parameters
    ----------
    batch : StarBatch
        The stars (e.g. RVS spectra).
    other : StarBatch or None
        Where the values come from (e.g. XP coefficients); None: ``batch`` unchanged.
    columns : sequence of str
        Columns to fill (`XP_COLUMNS`, `PHOT_COLUMNS`).
    what : str
        What ``other`` holds, for the message of a star absent from it.
    policy : `~gaiarvs_cnn.io.policy.BadStarPolicy`
        Decides about the stars absent from ``other``.

    Returns
    -------
    StarBatch
        The stars found in ``other``, with ``columns`` filled.
    """
    if other is None or len(batch) == 0:
        return batch
    found, _ = match_ids(batch["source_id"], other["source_id"])
    for sid in batch["source_id"][~found].tolist():
        policy.handle(BadStarError(sid, f"missing {what}."))
    batch = batch[found]
    return merge_on_source_id(batch, other, columns) if len(batch) else batch
