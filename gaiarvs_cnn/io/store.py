"""The chunked, compressed, appendable HDF5 store of stars (`Store`).

Layout (format version 2, column-wise): the per-star scalars (source_id, position,
photometry, astrometry, S/N) and short vectors (the 5 labels) are one PyTables table
``/stars``, indexed on ``source_id``; every wide column (the RVS flux and its error,
2401 pixels each, and the four 55-coefficient XP arrays: any column of at least
``ARRAY_COLUMN_MIN_SIZE`` values per star) is its own chunked array under ``/arrays``.
Reading the columns of the cuts (`gaiarvs_cnn.selection`) therefore never decompresses a
spectrum: see ``benchmarks/bench_store.py`` (``benchmarks/results/store.json``). Everything
is blosc-compressed, appendable and readable chunk by chunk.

This is the one layout: a store of another ``format_version`` (the compound-row layout of
pre-release versions, format 1, included) is refused with a message saying to write it again.

Examples
--------
>>> import numpy as np
>>> from gaiarvs_cnn.io.batch import StarBatch
>>> from gaiarvs_cnn.io.store import Store
>>> batch = StarBatch.empty(2)
>>> batch["source_id"][:] = [1, 2]
>>> with Store.create("example.h5", overwrite=True) as store:   # doctest: +SKIP
...     store.append(batch)
"""
from __future__ import annotations

import abc
import contextlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import astropy.units as u
import numpy as np
import tables
from astropy import log

from ..constants import LABELS
from ..exceptions import DuplicateSourceError, InputDataError, StoreError, StoreExistsError
from .batch import CORE_COLUMNS, ColumnSpec, StarBatch, match_ids

__all__ = ["StarReader", "Store", "open_store", "atomic_store", "STORE_FORMAT_VERSION"]

#: Format of new stores: 2 = column-wise (wide columns in their own arrays).
STORE_FORMAT_VERSION = 2
#: HDF5's message when another process holds the file lock (HDF5 >= 1.10).
_LOCKED = re.compile(r"unable to lock file|Resource temporarily unavailable")
_TABLE = "/stars"
_ARRAYS = "/arrays"
#: Columns of at least this many values per star are stored as their own chunked array.
ARRAY_COLUMN_MIN_SIZE = 16
#: Stars per HDF5 chunk of a wide column (RVS flux: 64 x 2401 x 4 B = 600 kB raw).
ARRAY_CHUNK_ROWS = 64


def _is_wide(spec: ColumnSpec) -> bool:
    return int(np.prod(spec.shape, dtype=np.int64)) >= ARRAY_COLUMN_MIN_SIZE


_CORE_NAMES = tuple(c.name for c in CORE_COLUMNS)


class StarReader(abc.ABC):
    """What every reader of stars offers: `Store`, and the readers of `gaiarvs_cnn.io.shards`.

    A subclass sets ``path`` (its file) and ``specs`` (its column specifications) and
    defines ``len()``, `read`, `source_ids`, `read_ids`, `meta` and `close`; chunked
    reading, the column names and the context manager come from here.
    """

    path: Path
    specs: tuple[ColumnSpec, ...]

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None:
        """Release open files."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """Number of stars."""

    @property
    @abc.abstractmethod
    def meta(self) -> dict:
        """Metadata (a dict)."""

    @abc.abstractmethod
    def read(self, start: int = 0, stop: int | None = None,
             columns: Sequence[str] | None = None) -> StarBatch:
        """Read rows ``start:stop`` (all columns, or only ``columns``)."""

    @abc.abstractmethod
    def source_ids(self) -> np.ndarray:
        """All source_ids, in row order."""

    @abc.abstractmethod
    def read_ids(self, source_ids: Iterable[int],
                 columns: Sequence[str] | None = None) -> StarBatch:
        """Read the given stars, in the order given."""

    @property
    def colnames(self) -> list[str]:
        """Names of all columns (core then extra), in store order."""
        return [s.name for s in self.specs]

    def require_columns(self, columns: Sequence[str], needed: str) -> None:
        """Refuse a reader that lacks any of ``columns``.

        Parameters
        ----------
        columns : sequence of str
            The columns a consumer will read.
        needed : str
            What needs them, as it ends the message (``"by the model"``,
            ``"for training"``).

        Raises
        ------
        InputDataError
            Naming the missing columns, the file and ``needed``.
        """
        missing = [c for c in columns if c not in self.colnames]
        if missing:
            raise InputDataError(f"Store {self.path} lacks column(s) {missing} needed "
                                 f"{needed}.")

    @property
    def extra_columns(self) -> tuple[ColumnSpec, ...]:
        """Specifications of the columns beyond `~gaiarvs_cnn.io.batch.CORE_COLUMNS`."""
        return tuple(s for s in self.specs if s.name not in _CORE_NAMES)

    def iter_chunks(self, chunk_size: int | None = None, columns: Sequence[str] | None = None,
                    start: int = 0, stop: int | None = None) -> Iterator[StarBatch]:
        """Yield consecutive batches of at most ``chunk_size`` stars (default ``conf``).

        Parameters
        ----------
        chunk_size : int, optional
            Stars per batch; default ``gaiarvs_cnn.conf.chunk_size``.
        columns : sequence of str, optional
            Columns to read; ``source_id`` is always included. Default all columns.
        start : int, optional
            First row (0-based, default 0).
        stop : int, optional
            One past the last row; default the end of the store.

        Yields
        ------
        StarBatch
            Consecutive rows; only the last batch may be shorter than ``chunk_size``.

        Examples
        --------
        >>> with Store.open("example.h5") as store:   # doctest: +SKIP
        ...     for chunk in store.iter_chunks(1000, columns=["flux"]):
        ...         print(len(chunk))
        """
        from ..settings import conf

        chunk_size = int(chunk_size or conf.chunk_size)
        stop = len(self) if stop is None else min(stop, len(self))
        for lo in range(start, stop, chunk_size):
            yield self.read(lo, min(lo + chunk_size, stop), columns)


class Store(StarReader):
    """A chunked, compressed, appendable HDF5 store of stars (PyTables).

    Use `Store.create` to make a new file and `Store.open` (or `open_store`) to read
    or append. The store is a context manager.

    Parameters
    ----------
    path : str or path-like
        HDF5 file.
    mode : {'r', 'a'}
        Read-only or append.
    allow_incomplete : bool, optional
        Open a store marked incomplete (its writer stopped before finishing) read-only
        anyway, e.g. to inspect it; by default such a store is refused.
    """

    def _open_error(self, exc: Exception) -> StoreError:
        """The error for an HDF5 file that does not open: in use (locked), or unreadable."""
        log.debug(f"HDF5 error opening {self.path}: {exc!r}")
        if _LOCKED.search(str(exc)):
            return StoreError(
                f"{self.path} is in use: another process (a running fetch, ingest or "
                "simulate) holds its HDF5 lock. Wait for it to finish; the store itself "
                "is fine.")
        return StoreError(f"{self.path} is not a readable HDF5 store (truncated?); write it "
                          "again.")

    def __init__(self, path, mode: str = "r", *, allow_incomplete: bool = False):
        self.path = Path(path)
        if mode not in ("r", "a"):
            raise ValueError("mode must be 'r' or 'a'; use Store.create for new files")
        if not self.path.exists():
            raise StoreError(f"No store at {self.path}.")
        try:
            self._h5 = tables.open_file(str(self.path), mode=mode)
        except OSError as exc:
            if isinstance(exc, tables.HDF5ExtError) or exc.errno is None:
                raise self._open_error(exc) from None
            raise
        except Exception as exc:  # HDF5 raises many types for corrupt files
            raise self._open_error(exc) from None
        if _TABLE not in self._h5:
            self._h5.close()
            raise StoreError(f"{self.path} is an HDF5 file but not a gaiarvs-cnn store "
                             f"(no '{_TABLE}' table).")
        self._table = self._h5.get_node(_TABLE)
        try:
            self.specs: tuple[ColumnSpec, ...] = tuple(
                ColumnSpec.from_dict(d) for d in json.loads(self._table.attrs.column_specs))
        except (AttributeError, KeyError, ValueError) as exc:
            self._h5.close()
            raise StoreError(f"{self.path} has no valid column specifications ({exc}); it "
                             "was not written by gaiarvs_cnn.io.store.") from exc
        attrs = self._table.attrs
        self.format_version = int(getattr(attrs, "format_version", 1))
        if self.format_version < STORE_FORMAT_VERSION:
            self._h5.close()
            raise StoreError(
                f"{self.path} has store format version {self.format_version} (the compound-row "
                "layout of a pre-release gaiarvs-cnn), which this version does not read. "
                "Write the store again from its inputs (store ingest, fetch or simulate).")
        if self.format_version > STORE_FORMAT_VERSION:
            self._h5.close()
            raise StoreError(
                f"{self.path} has store format version {self.format_version}; this "
                f"gaiarvs-cnn reads version {STORE_FORMAT_VERSION}. Upgrade gaiarvs-cnn to "
                "read it.")
        if "complete" not in attrs._v_attrnames:
            self._h5.close()
            raise StoreError(f"{self.path} has no completeness marker: it was not written by "
                             "this gaiarvs-cnn. Write the store again.")
        self.complete = bool(attrs["complete"])
        if not self.complete and mode == "r" and not allow_incomplete:
            self._h5.close()
            raise StoreError(f"{self.path} is an incomplete store: its writer stopped before "
                             "finishing (killed or failed). Write it again.")
        self._arrays: dict[str, tables.EArray] = {}
        for spec in self.specs:
            if _is_wide(spec):
                node = f"{_ARRAYS}/{spec.name}"
                if node not in self._h5:
                    self._h5.close()
                    raise StoreError(f"{self.path} lacks the array {node} of column "
                                     f"'{spec.name}'; the file is damaged.")
                self._arrays[spec.name] = self._h5.get_node(node)
        self.mode = mode
        self._ids: set[int] | None = None
        self._nrows = min([int(self._table.nrows)]
                          + [int(a.nrows) for a in self._arrays.values()])
        if mode == "a":
            self._truncate_to_complete_rows()

    # -- creation ------------------------------------------------------------------
    @classmethod
    def create(cls, path, extra_columns: Sequence[ColumnSpec] = (), meta: Mapping | None = None,
               overwrite: bool = False, expected_rows: int = 100_000, *,
               complete: bool = True) -> Store:
        """Create an empty store and return it open for appending.

        Parameters
        ----------
        path : path-like
            New HDF5 file.
        extra_columns : sequence of `ColumnSpec`
            Columns beyond `CORE_COLUMNS` (e.g. truth values of a simulation).
        meta : mapping, optional
            JSON-serialisable metadata (provenance, selection, ...).
        overwrite : bool
            Replace an existing file.
        expected_rows : int
            Hint for the HDF5 chunk layout.
        complete : bool, optional
            False marks the store incomplete until `mark_complete` is called: readers
            refuse it (see `atomic_store`, which does this for long writes).

        Returns
        -------
        Store
            The new store, open in append mode (``'a'``).

        Raises
        ------
        StoreError
            If ``path`` exists and ``overwrite`` is False, or an extra column has the
            name of a core column.
        """
        from ..utils.atomic import atomic_path

        path = Path(path)
        if path.exists() and not overwrite:
            raise StoreExistsError(path)
        specs = tuple(CORE_COLUMNS) + tuple(extra_columns)
        dupl = {s.name for s in extra_columns} & set(_CORE_NAMES)
        if dupl:
            raise StoreError(f"Extra columns {sorted(dupl)} clash with core columns.")
        wide = [s for s in specs if _is_wide(s)]
        description = {s.name: tables.Col.from_dtype(np.dtype((s.dtype, s.shape)), pos=i)
                       for i, s in enumerate(specs) if s not in wide}
        filters = tables.Filters(complevel=5, complib="blosc:lz4", shuffle=True)
        with atomic_path(path) as tmp, tables.open_file(
                str(tmp), mode="w", title="gaiarvs-cnn star store") as h5:
            tab = h5.create_table("/", _TABLE[1:], description, filters=filters,
                                  expectedrows=expected_rows)
            tab.attrs.column_specs = json.dumps([s.to_dict() for s in specs])
            tab.attrs.format_version = STORE_FORMAT_VERSION
            tab.attrs.meta = json.dumps(dict(meta or {}))
            tab.attrs.complete = bool(complete)
            tab.cols.source_id.create_csindex()
            if wide:
                group = h5.create_group("/", _ARRAYS[1:], "wide per-star columns")
                for s in wide:
                    h5.create_earray(group, s.name, tables.Atom.from_dtype(np.dtype(s.dtype)),
                                     shape=(0, *s.shape), title=s.description,
                                     filters=filters, expectedrows=expected_rows,
                                     chunkshape=(ARRAY_CHUNK_ROWS, *s.shape))
        return cls(path, mode="a")

    @classmethod
    def open(cls, path, mode: str = "r", *, allow_incomplete: bool = False) -> Store:
        """Open an existing store read-only (``'r'``) or for appending (``'a'``).

        Parameters
        ----------
        path : str or path-like
            HDF5 file written by `Store.create`.
        mode : {'r', 'a'}, optional
            Read-only (default) or append.
        allow_incomplete : bool, optional
            Open a store marked incomplete anyway (to inspect it).

        Returns
        -------
        Store
            The open store; use it as a context manager or call `close`.

        Raises
        ------
        StoreError
            If ``path`` does not exist, is not a readable gaiarvs-cnn store (truncated?),
            or is marked incomplete (read-only, unless ``allow_incomplete``).
        ValueError
            If ``mode`` is neither ``'r'`` nor ``'a'``.
        """
        return cls(path, mode, allow_incomplete=allow_incomplete)

    # -- context manager -----------------------------------------------------------
    def close(self) -> None:
        """Close the HDF5 file (a no-op if already closed)."""
        if self._h5.isopen:
            self._h5.close()

    # -- metadata ------------------------------------------------------------------
    def __len__(self) -> int:
        return self._nrows

    def _truncate_to_complete_rows(self) -> None:
        """Drop rows that an interrupted append wrote to some columns only."""
        nodes = [self._table, *self._arrays.values()]
        if all(int(n.nrows) == self._nrows for n in nodes):
            return
        log.warning(f"{self.path.name}: an earlier append was interrupted; keeping the "
                    f"{self._nrows} stars stored in every column.")
        for node in nodes:
            if int(node.nrows) > self._nrows:
                node.truncate(self._nrows)
        self._h5.flush()

    def _require_writable(self) -> None:
        """Refuse a write to a store open read-only (`StoreError`)."""
        if self.mode != "a":
            raise StoreError(f"{self.path.name} is open read-only; use Store.open(path, 'a').")

    @property
    def meta(self) -> dict:
        """Store metadata (a dict, JSON round-tripped)."""
        return json.loads(self._table.attrs.meta)

    def mark_complete(self) -> None:
        """Mark the store complete (readers refuse a store created with ``complete=False``).

        Raises
        ------
        StoreError
            If the store is open read-only.
        """
        self._require_writable()
        self._table.attrs.complete = True
        self._h5.flush()
        self.complete = True

    def update_meta(self, **items) -> None:
        """Merge ``items`` (JSON-serialisable) into the metadata.

        Parameters
        ----------
        **items
            Metadata entries to add or replace; values must be JSON-serialisable.

        Raises
        ------
        StoreError
            If the store is open read-only.
        """
        self._require_writable()
        meta = self.meta
        meta.update(items)
        self._table.attrs.meta = json.dumps(meta)
        self._h5.flush()

    def units(self) -> dict[str, u.UnitBase | None]:
        """Return the unit of every column.

        Returns
        -------
        dict of str to `~astropy.units.UnitBase` or None
            Column name to unit; None for dimensionless columns.
        """
        return {s.name: (u.Unit(s.unit) if s.unit else None) for s in self.specs}

    def summary(self, quantiles: Sequence[float] = (5, 25, 50, 75, 95)) -> dict:
        """Summary: stars, columns (shape, dtype, unit), meta, label coverage, S/N quantiles.

        Streams the store chunk by chunk, reading only ``labels`` and ``rvs_snr``.

        Parameters
        ----------
        quantiles : sequence of float, optional
            Percentiles (0-100) of ``rvs_snr`` to report.

        Returns
        -------
        dict
            ``path``, ``n_stars``, ``complete`` (False: the writer did not finish),
            ``columns`` (name -> shape/dtype/unit),
            ``extra_columns``, ``meta``, ``label_coverage`` (fraction of stars with a finite
            value, per label) and ``snr_quantiles`` (percentile -> rvs_snr, finite values
            only; empty when none).
        """
        n = len(self)
        finite = np.zeros(len(LABELS), dtype=np.int64)
        parts = []
        for chunk in self.iter_chunks(columns=["labels", "rvs_snr"]):
            finite += np.isfinite(chunk["labels"]).sum(axis=0)
            parts.append(chunk["rvs_snr"][np.isfinite(chunk["rvs_snr"])])
        snr = np.concatenate(parts) if parts else np.zeros(0)
        return {
            "path": str(self.path), "n_stars": n, "complete": self.complete,
            "columns": {s.name: {"shape": list(s.shape), "dtype": s.dtype, "unit": s.unit}
                        for s in self.specs},
            "extra_columns": [s.name for s in self.extra_columns],
            "meta": self.meta,
            "label_coverage": {k: (int(finite[i]) / n if n else 0.0)
                               for i, k in enumerate(LABELS)},
            "snr_quantiles": ({f"{q:g}": float(v) for q, v in
                               zip(quantiles, np.percentile(snr, quantiles))}
                              if snr.size else {}),
        }

    # -- writing -------------------------------------------------------------------
    def source_ids(self) -> np.ndarray:
        """Return all source_ids, in store order.

        Returns
        -------
        ndarray of int64
            One source_id per stored star.
        """
        return self._table.read(stop=self._nrows, field="source_id")

    def append(self, batch: StarBatch) -> None:
        """Append a batch; refuse (and write nothing) if any source_id is duplicated.

        Parameters
        ----------
        batch : `StarBatch`
            Stars to append; must hold every column of the store (extra columns
            included). An empty batch is a no-op.

        Raises
        ------
        DuplicateSourceError
            Naming the duplicated source_ids (within the batch or already stored).
        InputDataError
            If ``batch`` lacks a store column.
        StoreError
            If the store is open read-only.
        """
        self._require_writable()
        if len(batch) == 0:
            return
        missing = [n for n in self.colnames if n not in batch]
        if missing:
            raise InputDataError(f"Batch lacks store column(s) {missing}.")
        dupl = batch.duplicated_ids()
        if dupl.size:
            raise DuplicateSourceError(
                f"source_id(s) {dupl[:10].tolist()} occur more than once in the batch.")
        if self._ids is None:
            self._ids = set(self.source_ids().tolist())
        clash = [i for i in batch["source_id"].tolist() if i in self._ids]
        if clash:
            raise DuplicateSourceError(
                f"source_id(s) {clash[:10]} already in {self.path.name}; nothing appended.")
        for name, array in self._arrays.items():   # the table row last: it makes the star
            array.append(batch[name])
        rec = np.empty(len(batch), dtype=self._table.dtype)
        for name in rec.dtype.names:
            rec[name] = batch[name]
        self._table.append(rec)
        self._h5.flush()
        self._nrows += len(batch)
        self._ids.update(batch["source_id"].tolist())

    # -- reading -------------------------------------------------------------------
    def _names(self, columns: Sequence[str] | None) -> list[str]:
        names = self.colnames if columns is None else ["source_id", *[
            c for c in columns if c != "source_id"]]
        unknown = set(names) - set(self.colnames)
        if unknown:
            raise StoreError(f"{self.path.name} has no column(s) {sorted(unknown)}; "
                             f"it has {self.colnames}.")
        return names

    def _to_batch(self, data: Mapping[str, np.ndarray], names: Sequence[str]) -> StarBatch:
        specs = [s for s in self.specs if s.name in names]
        return StarBatch({n: data[n] for n in names}, specs)

    def _read_table(self, names: Sequence[str], start: int, stop: int) -> dict:
        """Columns ``names`` of the ``/stars`` table, rows ``start:stop``."""
        in_table = [n for n in names if n not in self._arrays]
        if len(in_table) == 1:
            return {in_table[0]: self._table.read(start, stop, field=in_table[0])}
        rec = self._table.read(start, stop)
        return {n: rec[n] for n in in_table}

    def read(self, start: int = 0, stop: int | None = None,
             columns: Sequence[str] | None = None) -> StarBatch:
        """Read rows ``start:stop`` (all columns, or only ``columns``).

        Parameters
        ----------
        start : int, optional
            First row (0-based, default 0).
        stop : int, optional
            One past the last row; default the end of the store.
        columns : sequence of str, optional
            Columns to read; ``source_id`` is always included. Default all columns.

        Returns
        -------
        StarBatch
            The stars of rows ``start:stop``, in store order.

        Raises
        ------
        StoreError
            If a requested column is not in the store.
        """
        names = self._names(columns)
        start, stop, _ = slice(start, stop).indices(len(self))
        stop = max(start, stop)
        try:
            data = self._read_table(names, start, stop)
            for name in names:
                if name in self._arrays:
                    data[name] = self._arrays[name][start:stop]
        except tables.HDF5ExtError as exc:
            log.debug(f"HDF5 error reading {self.path}: {exc}")
            raise StoreError(f"{self.path} is not a readable HDF5 store (truncated?): rows "
                             f"{start}-{stop} cannot be read; write it again.") from None
        return self._to_batch(data, names)

    def read_ids(self, source_ids: Iterable[int],
                 columns: Sequence[str] | None = None) -> StarBatch:
        """Read the given stars (in the order given) using the source_id index.

        Parameters
        ----------
        source_ids : iterable of int
            Gaia DR3 source_ids to read.
        columns : sequence of str, optional
            Columns to read; ``source_id`` is always included. Default all columns.

        Returns
        -------
        StarBatch
            One star per requested source_id, in the order of ``source_ids``.

        Raises
        ------
        StoreError
            Listing source_ids not in the store.
        """
        ids = np.asarray(list(source_ids), dtype=np.int64)
        if ids.size > _INDEX_LOOKUP_MAX:   # many stars: one column scan beats many queries
            found, rows = match_ids(ids, self.source_ids())
            missing = ids[~found].tolist()
        else:
            hits: list[int] = []
            missing = []
            for sid in ids.tolist():
                hit = self._table.get_where_list("source_id == sid", condvars={"sid": sid})
                (hits.append(int(hit[0])) if len(hit) else missing.append(sid))
            rows = np.asarray(hits)
        if missing:
            raise StoreError(f"source_id(s) {missing[:10]} not in {self.path.name}.")
        rows = np.asarray(rows, dtype=np.int64)
        names = self._names(columns)
        rec = self._table.read_coordinates(rows)
        data = {n: rec[n] for n in names if n not in self._arrays}
        wanted = [n for n in names if n in self._arrays]
        if wanted:
            order = np.argsort(rows, kind="stable")
            for name in wanted:
                out = np.empty((len(rows), *self._arrays[name].shape[1:]),
                               dtype=self._arrays[name].dtype)
                out[order] = _read_rows(self._arrays[name], rows[order])
                data[name] = out
        return self._to_batch(data, names)


#: Above this many requested stars, `Store.read_ids` scans the source_id column once
#: instead of querying the index star by star.
_INDEX_LOOKUP_MAX = 2000


def _read_rows(array, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (sorted, may repeat) of a chunked array, one contiguous read per run."""
    if rows.size == 0:
        return array[0:0]
    breaks = np.flatnonzero(np.diff(rows) > ARRAY_CHUNK_ROWS) + 1
    parts = []
    for run in np.split(rows, breaks):
        block = array[int(run[0]):int(run[-1]) + 1]
        parts.append(block[run - run[0]])
    return np.concatenate(parts)


@contextlib.contextmanager
def atomic_store(path, *, overwrite: bool = False, extra_columns: Sequence[ColumnSpec] = (),
                 meta: Mapping | None = None, expected_rows: int = 100_000) -> Iterator[Store]:
    """A new store written under a temporary name, marked complete and renamed on success.

    While the block runs the store sits under a hidden temporary name (see
    `gaiarvs_cnn.utils.atomic`) and is marked incomplete; a killed writer leaves only that
    hidden file, which `Store.open` refuses. On an exception it is removed.

    Parameters
    ----------
    path : path-like
        Final store file.
    overwrite : bool, optional
        Replace an existing ``path`` (only once the new store is complete).
    extra_columns, meta, expected_rows
        As for `Store.create`.

    Yields
    ------
    Store
        The new store, open for appending.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    from ..utils.atomic import atomic_path, refuse_existing

    refuse_existing(path, overwrite=overwrite, what="store")
    with atomic_path(path) as tmp:
        store = Store.create(tmp, extra_columns=extra_columns, meta=meta, overwrite=True,
                             expected_rows=expected_rows, complete=False)
        try:
            yield store
            store.mark_complete()
        finally:
            store.close()



def open_store(path, mode: str = "r") -> Store:
    """Open an existing store (see `Store`).

    Parameters
    ----------
    path : str or path-like
        HDF5 file written by `Store.create`.
    mode : {'r', 'a'}, optional
        Read-only (default) or append.

    Returns
    -------
    Store
        The open store (a context manager).

    Raises
    ------
    StoreError
        If ``path`` does not exist or is not a gaiarvs-cnn store.
    """
    return Store(path, mode)
