"""The reader of Gaia DR3 bulk-download files (``RvsMeanSpectrum_*.csv.gz``, ``XpContinuous...``).

A bulk file is ECSV: a ``#`` YAML header, a line of column names, then one star per row,
array columns written as ``"[v1,v2,...]"`` cells with ``null`` for missing values. Only the
header is parsed as YAML (`astropy.table.meta.get_header_from_yaml`); the rows are streamed
by `pyarrow.csv.open_csv` block by block (``BLOCK_BYTES`` of text each, gzip decompressed by
pyarrow), every column read as text, and each block's cells are converted at once with
`pyarrow.compute` (source_ids, scalars, and the array cells split and cast to float64).

Rows that need a decision star by star go through the row-level code instead: a row whose
arrays have the wrong length or no finite value, or whose RVS flux fails
`~gaiarvs_cnn.preprocess.check_rvs_flux`, is built by the per-row functions, which raise the
`~gaiarvs_cnn.exceptions.BadStarError` the policy decides on. A block whose cells cannot be
converted at once (a stray token, a designation instead of a source_id, a missing array) is
read row by row; a block that pyarrow cannot parse (a truncated row, broken gzip) is read
again with `csv` from the same row, so that the error names the file and the data row, and
pyarrow takes over again at the next block. Either way the stars, their order and the
errors are those of the row-level reader.

Examples
--------
>>> from gaiarvs_cnn.io.bulk_csv import iter_bulk_rvs
>>> for batch in iter_bulk_rvs("RvsMeanSpectrum_000000-003111.csv.gz"):  # doctest: +SKIP
...     print(len(batch))
"""
from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from ..constants import RVS_NPIX, XP_NCOEFF
from ..exceptions import BadStarError, InputDataError
from ..preprocess import check_rvs_flux, rvs_flux_problems
from ..utils.columns import find_column
from .batch import StarBatch, join_batches, rows_to_batch
from .cells import parse_source_id, parse_vector
from .policy import BadStarPolicy, as_policy
from .spectra import XP_COLUMNS

__all__ = ["BLOCK_BYTES", "iter_bulk_rvs", "iter_bulk_xp", "bulk_source_ids"]

#: Bytes of (decompressed) text per block converted at once: about 300 RVS rows.
BLOCK_BYTES = 1 << 24

#: Exceptions of pyarrow meaning "this block cannot be read or converted as a whole".
_ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OSError)


# ---------------------------------------------------------------------------------------
# the file: header and row-level reading
# ---------------------------------------------------------------------------------------
def _open_text(path) -> io.TextIOBase:
    if _gzipped(path):
        return gzip.open(path, "rt", newline="", encoding="utf-8")
    return open(path, newline="", encoding="utf-8")


def _gzipped(path) -> bool:
    """By suffix or by content (cached downloads have no suffix)."""
    with open(path, "rb") as fh:
        return Path(path).name.endswith(".gz") or fh.read(2) == b"\x1f\x8b"


def _read_header(fh, path) -> tuple[list[str], int]:
    """Consume the '#' ECSV header and the column-name line: the names and the line count."""
    from astropy.table.meta import get_header_from_yaml

    yaml_lines = []
    n_lines = 0
    for line in fh:
        n_lines += 1
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
    return [n.strip() for n in names], n_lines


@dataclass(frozen=True)
class _BulkFile:
    """A bulk file's column names, header length and the columns a reader needs."""

    path: Path
    names: list[str]
    n_header_lines: int
    gzipped: bool
    #: The file's name of each needed column (case-insensitive match), source_id first.
    columns: dict[str, str]

    @classmethod
    def open(cls, path, needed: Sequence[str], required: Sequence[str]) -> _BulkFile:
        try:
            with _open_text(path) as fh:
                names, n_lines = _read_header(fh, path)
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise InputDataError(f"{path}: unreadable bulk file ({exc}).") from exc
        missing = [c for c in ("source_id", *required) if find_column(names, c) is None]
        if missing:
            raise InputDataError(f"{path}: no column(s) {missing}; it has {names}. Is "
                                 "this a Gaia DR3 bulk file of the right table?")
        columns = {c: find_column(names, c) for c in ("source_id", *needed)}
        return cls(Path(path), names, n_lines, _gzipped(path),
                   {c: name for c, name in columns.items() if name is not None})


@dataclass
class _Row:
    """One row read by `csv`: its data-row number (blank lines aside), its cells, and the
    lines of text read up to its end (a quoted cell may hold a line break)."""

    number: int
    cells: list[str]
    line: int


def _csv_rows(bulk: _BulkFile, skip: int, budget: int) -> Iterator[_Row]:
    """Rows after the first ``skip`` data rows, until ``budget`` characters are read."""
    used = number = 0
    try:
        with _open_text(bulk.path) as fh:
            for _ in range(bulk.n_header_lines):
                fh.readline()
            reader = csv.reader(fh)
            for cells in reader:
                if not cells:
                    continue
                number += 1
                if number <= skip:
                    continue
                yield _Row(number, cells, reader.line_num)
                used += sum(map(len, cells)) + len(cells)
                if used >= budget:
                    return
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise InputDataError(f"{bulk.path}: unreadable bulk file ({exc}).") from exc


def _arrow_reader(bulk: _BulkFile, skip_lines: int, block_bytes: int):
    stream = pa.input_stream(str(bulk.path), compression="gzip" if bulk.gzipped else None)
    return pa_csv.open_csv(
        stream,
        read_options=pa_csv.ReadOptions(skip_rows=bulk.n_header_lines, column_names=bulk.names,
                                        skip_rows_after_names=skip_lines,
                                        block_size=block_bytes),
        convert_options=pa_csv.ConvertOptions(
            include_columns=list(bulk.columns.values()),
            column_types={name: pa.string() for name in bulk.columns.values()},
            strings_can_be_null=False, quoted_strings_can_be_null=False))


def _blocks(bulk: _BulkFile, block_bytes: int) -> Iterator[tuple[int, pa.RecordBatch] | _Row]:
    """(data rows before it, block) from pyarrow; `_Row` items where pyarrow cannot parse.

    A block pyarrow refuses is read again by `csv` from its first row, for about as many
    characters as a block holds; pyarrow then resumes after the rows `csv` read. Blank
    lines are not data rows (both skip them).
    """
    done = skip_lines = 0
    while True:
        try:
            reader = _arrow_reader(bulk, skip_lines, block_bytes)
            while True:
                try:
                    block = reader.read_next_batch()
                except StopIteration:
                    return
                yield done, block
                done += block.num_rows
        except _ARROW_ERRORS:
            last = None
            for last in _csv_rows(bulk, done, block_bytes):
                yield last
            if last is None:
                return
            done, skip_lines = last.number, last.line


# ---------------------------------------------------------------------------------------
# row-level conversion (the reference semantics)
# ---------------------------------------------------------------------------------------
def _row_cells(bulk: _BulkFile, row: _Row, bad_id: Callable[[InputDataError], None] | None
               ) -> tuple[int, dict[str, str]] | None:
    """(source_id, {column: cell}) of a `csv` row; None for a bad id."""
    if len(row.cells) != len(bulk.names):
        raise InputDataError(f"{bulk.path}: data row {row.number} has {len(row.cells)} "
                             f"fields, expected {len(bulk.names)} (truncated file?).")
    by_name = dict(zip(bulk.names, row.cells))
    cells = {c: by_name[name] for c, name in bulk.columns.items()}
    return _checked_id(bulk, row.number, cells, bad_id)


def _checked_id(bulk: _BulkFile, number: int, cells: dict[str, str],
                bad_id: Callable[[InputDataError], None] | None
                ) -> tuple[int, dict[str, str]] | None:
    try:
        return parse_source_id(cells["source_id"]), cells
    except ValueError as exc:
        if bad_id is not None:
            bad = InputDataError(f"{bulk.path}: data row {number}: {exc}.")
            bad.problem = str(bad)
            bad_id(bad)
        return None


def _scalar(text: str, sid: int, name: str, where: str) -> float:
    text = text.strip()
    try:
        return float(text) if text and text.lower() != "null" else np.nan
    except ValueError:
        raise BadStarError(sid, f"non-numeric {name} {text!r} in {where}.") from None


def _bulk_rvs_row(sid: int, cells: dict, where: str) -> dict:
    row: dict[str, Any] = {"source_id": sid, "ra": _scalar(cells.get("ra", ""), sid, "ra", where),
                           "dec": _scalar(cells.get("dec", ""), sid, "dec", where)}
    flux = parse_vector(cells["flux"], RVS_NPIX, sid, "RVS flux (all-NaN spectrum)", where)
    row["flux"] = check_rvs_flux(sid, flux, where)
    row["flux_error"] = parse_vector(cells["flux_error"], RVS_NPIX, sid, "RVS flux_error",
                                     where, required=False)
    return row


def _bulk_xp_row(sid: int, cells: dict, where: str) -> dict:
    row: dict[str, Any] = {"source_id": sid}
    for name in XP_COLUMNS:
        row[name] = parse_vector(cells[name], XP_NCOEFF, sid, f"XP continuous {name}", where)
    return row


# ---------------------------------------------------------------------------------------
# block-level conversion
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Kind:
    """What a bulk table holds: its array columns (length, required) and scalars."""

    build: Callable[[int, dict, str], dict]
    arrays: dict[str, tuple[int, bool]]
    scalars: tuple[str, ...] = ()
    check_flux: bool = False

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(self.arrays)


_RVS = _Kind(_bulk_rvs_row, {"flux": (RVS_NPIX, True), "flux_error": (RVS_NPIX, False)},
             ("ra", "dec"), check_flux=True)
_XP = _Kind(_bulk_xp_row, {name: (XP_NCOEFF, True) for name in XP_COLUMNS})
_NULL_CELLS = pa.array(["", "null"])


class _Unconvertible(Exception):
    """A block whose cells cannot all be converted at once (read it row by row)."""


def _floats(col: pa.Array) -> np.ndarray:
    col = pc.if_else(pc.is_in(col, value_set=_NULL_CELLS), "nan", col)
    try:
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    except _ARROW_ERRORS as exc:
        raise _Unconvertible from exc


def _vectors(col: pa.Array, n: int, required: bool) -> tuple[np.ndarray, np.ndarray]:
    """Array cells as an (rows, n) float64 array and the rows to decide one by one.

    Those are rows with a missing cell, the wrong number of values or (``required``) no
    finite value; their values here are NaN.
    """
    missing = pc.is_in(col, value_set=_NULL_CELLS)
    bracketed = pc.and_(pc.starts_with(col, "["), pc.ends_with(col, "]"))
    if not pc.all(pc.or_(missing, bracketed)).as_py():
        raise _Unconvertible
    inner = pc.if_else(missing, "nan", pc.utf8_slice_codeunits(col, 1, -1))
    lists = pc.split_pattern(pc.replace_substring(inner, "null", "nan"), ",")
    tokens = pc.list_flatten(lists)
    try:
        flat = pc.cast(tokens, pa.float64())
    except _ARROW_ERRORS:
        try:                                   # "[1.0, 2.0]": spaces, which float() allows
            flat = pc.cast(pc.utf8_trim_whitespace(tokens), pa.float64())
        except _ARROW_ERRORS as exc:
            raise _Unconvertible from exc
    flat = flat.to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    odd = (lengths != n) | missing.to_numpy(zero_copy_only=False)
    out = np.full((len(col), n), np.nan)
    ok = np.flatnonzero(~odd)
    out[ok] = flat[starts[ok, None] + np.arange(n)]
    if required:
        odd |= ~np.isfinite(out).any(axis=1)
    return out, odd


def _cells_of(block: pa.RecordBatch, bulk: _BulkFile) -> list[dict[str, str]]:
    columns = {c: block.column(name).to_pylist() for c, name in bulk.columns.items()}
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def _source_ids(col: pa.Array) -> np.ndarray:
    """Integer source_ids of a block (`_Unconvertible` if any cell is not a plain id)."""
    try:
        sids = pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False)
    except _ARROW_ERRORS as exc:
        raise _Unconvertible from exc
    if len(sids) and sids.min() < 0:
        raise _Unconvertible
    return sids


def _convert(bulk: _BulkFile, kind: _Kind, block: pa.RecordBatch, wanted: np.ndarray | None
             ) -> tuple[pa.RecordBatch, np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """The wanted rows of a block, their source_ids, values and rows to decide one by one."""
    sids = _source_ids(block.column(bulk.columns["source_id"]))
    if wanted is not None:
        keep = np.isin(sids, wanted)
        block, sids = block.filter(pa.array(keep)), sids[keep]
    values = {c: _floats(block.column(bulk.columns[c])) for c in kind.scalars
              if c in bulk.columns}
    odd = np.zeros(len(sids), dtype=bool)
    for c, (n, required) in kind.arrays.items():
        values[c], odd_c = _vectors(block.column(bulk.columns[c]), n, required)
        odd |= odd_c
    if kind.check_flux:
        fine = np.flatnonzero(~odd)
        problems = rvs_flux_problems(values["flux"][fine], bulk.path.name)
        odd[fine[[p is not None for p in problems]]] = True
    return block, sids, values, odd


def _block_items(bulk: _BulkFile, kind: _Kind, first: int, block: pa.RecordBatch,
                 wanted: set | None, wanted_ids: np.ndarray | None,
                 bad_id) -> Iterator[tuple[int, Any]]:
    """The items of one pyarrow block (see `_items`), converted at once where possible."""
    where = bulk.path.name
    try:
        kept, sids, values, odd = _convert(bulk, kind, block, wanted_ids)
    except (_Unconvertible, *_ARROW_ERRORS):
        for k, cells in enumerate(_cells_of(block, bulk)):
            found = _checked_id(bulk, first + k + 1, cells, bad_id)
            if found is not None and (wanted is None or found[0] in wanted):
                yield _built(kind, *found, where)
        return
    odd_cells = _cells_of(kept.filter(pa.array(odd)), bulk) if odd.any() else []
    lo = 0
    for k, row_cells in zip(np.flatnonzero(odd).tolist(), odd_cells):
        if k > lo:
            yield k - lo, StarBatch({"source_id": sids[lo:k],
                                     **{c: v[lo:k] for c, v in values.items()}})
        yield _built(kind, int(sids[k]), row_cells, where)
        lo = k + 1
    if lo < len(sids):
        yield len(sids) - lo, StarBatch({"source_id": sids[lo:],
                                         **{c: v[lo:] for c, v in values.items()}})


def _built(kind: _Kind, sid: int, cells: dict, where: str) -> tuple[int, Any]:
    try:
        return 1, kind.build(sid, cells, where)
    except BadStarError as exc:
        return 1, exc


def _items(bulk: _BulkFile, kind: _Kind, policy: BadStarPolicy, wanted: set | None,
           block_bytes: int) -> Iterator[tuple[int, Any]]:
    """(rows counted, item) in file order: a `StarBatch` of good rows, one row's dict, a
    bad star's `BadStarError` (1 row each) or a bad source_id's error (0 rows)."""
    wanted_ids = None if wanted is None else np.fromiter(wanted, dtype=np.int64)
    def bad_id(exc: InputDataError) -> None:
        pending.append((0, exc))

    pending: list[tuple[int, Any]] = []
    for item in _blocks(bulk, block_bytes):
        if isinstance(item, _Row):
            found = _row_cells(bulk, item, bad_id)
            yield from pending
            pending.clear()
            if found is not None and (wanted is None or found[0] in wanted):
                yield _built(kind, *found, bulk.path.name)
            continue
        for out in _block_items(bulk, kind, *item, wanted, wanted_ids, bad_id):
            yield from pending
            pending.clear()
            yield out
        yield from pending
        pending.clear()


def _chunks(items: Iterable[tuple[int, Any]], chunk_size: int,
            policy: BadStarPolicy) -> Iterator[StarBatch]:
    """Batches of ``chunk_size`` rows read (bad stars handled by ``policy`` and left out)."""
    parts: list[StarBatch] = []
    rows: list[dict] = []
    n_raw = 0

    def flush() -> Iterator[StarBatch]:
        if rows:
            parts.append(rows_to_batch(rows))
            rows.clear()
        if parts:
            yield join_batches(parts)
            parts.clear()

    for n, item in items:
        if isinstance(item, StarBatch):
            if rows:
                parts.append(rows_to_batch(rows))
                rows.clear()
            while len(item) >= chunk_size - n_raw:
                take = chunk_size - n_raw
                parts.append(item[:take])
                item, n_raw = item[take:], 0
                yield from flush()
            if len(item):
                parts.append(item)
                n_raw += len(item)
            continue
        if isinstance(item, InputDataError):
            policy.handle(item)
        else:
            rows.append(item)
        n_raw += n
        if n_raw == chunk_size:
            yield from flush()
            n_raw = 0
    yield from flush()


def _iter_bulk(path, chunk_size, kind: _Kind, policy: BadStarPolicy,
               wanted: set | None = None, block_bytes: int | None = None
               ) -> Iterator[StarBatch]:
    from ..settings import conf

    chunk_size = int(chunk_size or conf.chunk_size)
    bulk = _BulkFile.open(path, (*kind.scalars, *kind.arrays), kind.required)
    try:
        yield from _chunks(_items(bulk, kind, policy, wanted, block_bytes or BLOCK_BYTES),
                           chunk_size, policy)
    except (EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise InputDataError(f"{path}: unreadable bulk file ({exc}).") from exc


def iter_bulk_rvs(path, chunk_size: int | None = None,
                  on_error: str | BadStarPolicy | None = None) -> Iterator[StarBatch]:
    """Stream a Gaia DR3 ``RvsMeanSpectrum_*.csv.gz`` file chunk by chunk.

    The file is ECSV: a ``#`` YAML header, then one star per row with columns
    ``solution_id, source_id, ra, dec, flux, flux_error, combined_transits,
    combined_ccds, deblended_ccds``; ``flux``/``flux_error`` are 2401-element arrays
    written as ``"[v1,v2,...]"`` strings, ``null`` for missing values. The file is never
    loaded whole: it is read block by block (see the module documentation).

    Parameters
    ----------
    path : path-like
        ``.csv.gz`` or plain ``.csv``.
    chunk_size : int, optional
        Rows read per yielded batch (default ``conf.chunk_size``); skipped bad stars make
        a batch shorter.
    on_error : {'raise', 'skip'}
        What to do with a bad star (see `gaiarvs_cnn.io.policy`).

    Returns
    -------
    iterator of StarBatch
        Lazily read batches with ``source_id``, ``ra``, ``dec`` (deg), ``flux``,
        ``flux_error`` (dimensionless, 2401 pixels); other columns NaN.

    Raises
    ------
    InputDataError
        If the file cannot be read or a row is malformed (raised while iterating).
    """
    return _iter_bulk(path, chunk_size, _RVS, as_policy(on_error))


def iter_bulk_xp(path, chunk_size: int | None = None,
                 on_error: str | BadStarPolicy | None = None,
                 source_ids: Iterable[int] | None = None) -> Iterator[StarBatch]:
    """Stream a Gaia DR3 ``XpContinuousMeanSpectrum_*.csv.gz`` file chunk by chunk.

    Parameters
    ----------
    path : path-like
        ``.csv.gz`` or plain ``.csv``.
    chunk_size : int, optional
        Rows per batch (default ``conf.chunk_size``).
    on_error : {'raise', 'skip'}
        What to do with a bad star (see `gaiarvs_cnn.io.policy`).
    source_ids : iterable of int, optional
        Only parse these stars (the arrays of other rows are never parsed).

    Returns
    -------
    iterator of StarBatch
        Lazily read batches with ``source_id`` and the 55 BP/RP coefficients and
        errors (e-/s); other columns NaN.

    Raises
    ------
    InputDataError
        If the file cannot be read or a row is malformed (raised while iterating).
    """
    wanted = None if source_ids is None else {int(s) for s in source_ids}
    return _iter_bulk(path, chunk_size, _XP, as_policy(on_error), wanted)


def bulk_source_ids(path, *, block_bytes: int | None = None) -> np.ndarray:
    """The source_ids of a bulk file, in file order (only that column is converted).

    Rows whose source_id is neither an integer nor a Gaia designation are left out (the
    readers, `iter_bulk_rvs` and `iter_bulk_xp`, report them).

    Parameters
    ----------
    path : path-like
        A Gaia DR3 bulk file, ``.csv.gz`` or plain ``.csv``.
    block_bytes : int, optional
        Text per block (default `BLOCK_BYTES`).

    Returns
    -------
    ndarray of int64

    Raises
    ------
    InputDataError
        If the file cannot be read or a row is malformed.
    """
    bulk = _BulkFile.open(path, (), ())
    out: list[np.ndarray] = []
    for item in _blocks(bulk, block_bytes or BLOCK_BYTES):
        if isinstance(item, _Row):
            found = _row_cells(bulk, item, None)
            if found is not None:
                out.append(np.array([found[0]], dtype=np.int64))
            continue
        col = item[1].column(bulk.columns["source_id"])
        try:
            out.append(_source_ids(col))
        except _Unconvertible:
            ids = []
            for cell in col.to_pylist():
                try:
                    ids.append(parse_source_id(cell))
                except ValueError:
                    continue
            out.append(np.array(ids, dtype=np.int64))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
