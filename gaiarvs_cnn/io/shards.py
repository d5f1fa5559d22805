"""Sharded stores: many HDF5 store files described by one JSON manifest.

Gaia DR4/DR5 will hold tens to hundreds of millions of RVS spectra (about 10 kB per
spectrum in float32), far too much for one file on one machine. A *sharded store* is
a set of ordinary `~gaiarvs_cnn.io.store.Store` files (e.g. one per Gaia bulk-download
file, or one per N stars) plus a *manifest*: a JSON file listing each shard's path
(relative to the manifest), star count, source_id range, size and SHA-256 checksum.

`open_source` opens either kind of input - one ``.h5`` store or a manifest - and
returns a reader with the same interface (``len``, ``iter_chunks``, ``read``,
``source_ids``, ``read_ids``, ``meta``, ``partitions``), so every reader of the
package accepts both. Rows of a sharded store are numbered globally, shard after
shard, in manifest order: ``iter_chunks(4096)`` on a manifest yields the same
chunks as on the single store it was cut from.

Examples
--------
>>> from gaiarvs_cnn.io.shards import shard_store, open_source
>>> manifest = shard_store("survey.h5", "survey_shards", stars_per_shard=100_000)  # doctest: +SKIP
>>> with open_source(manifest) as src:                                   # doctest: +SKIP
...     for batch in src.iter_chunks(4096):
...         ...
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from astropy import log
from tqdm.auto import tqdm

from ..exceptions import DuplicateSourceError, StoreError
from ..utils.atomic import atomic_path, write_text_atomic
from ..utils.checksum import sha256_file
from .store import ColumnSpec, StarBatch, Store

__all__ = [
    "MANIFEST_FORMAT",
    "ShardInfo",
    "Manifest",
    "Partition",
    "StoreSource",
    "ShardedSource",
    "create_manifest",
    "read_manifest",
    "is_manifest",
    "open_source",
    "shard_store",
]

#: Value of the ``format`` key that identifies a gaiarvs-cnn shard manifest.
MANIFEST_FORMAT = "gaiarvs-cnn-shards"
MANIFEST_VERSION = 1


# ----------------------------------------------------------------------------------
# Manifest
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShardInfo:
    """One shard of a manifest.

    The parameters are stored as attributes of the same names (frozen dataclass).

    Parameters
    ----------
    path : str
        File name, relative to the manifest's directory (or absolute).
    n_stars : int
        Number of stars (rows) in the shard.
    source_id_min, source_id_max : int
        Smallest and largest Gaia DR3 source_id in the shard (0 and -1 when empty).
    sha256 : str
        SHA-256 checksum of the file (hexadecimal).
    bytes : int
        File size in bytes.
    """

    path: str
    n_stars: int
    source_id_min: int
    source_id_max: int
    sha256: str
    bytes: int

    @classmethod
    def from_file(cls, path: Path, relative_to: Path) -> ShardInfo:
        """Describe an existing store file (counts, source_id range, checksum).

        Parameters
        ----------
        path : `~pathlib.Path`
            The store file (read in full to compute its checksum).
        relative_to : `~pathlib.Path`
            Directory that the recorded ``path`` is made relative to (normally the
            manifest's directory); an absolute path is recorded if that is impossible.

        Returns
        -------
        ShardInfo
            Star count, source_id range, SHA-256 checksum and size of the file.

        Raises
        ------
        StoreError
            If ``path`` is not a readable store.
        """
        with Store.open(path) as store:
            ids = store.source_ids()
        lo, hi = (int(ids.min()), int(ids.max())) if ids.size else (0, -1)
        try:
            rel = os.path.relpath(path, relative_to)
        except ValueError:  # different drives (Windows)
            rel = str(Path(path).resolve())
        return cls(Path(rel).as_posix(), int(ids.size), lo, hi, sha256_file(path),
                   path.stat().st_size)


@dataclass
class Manifest:
    """A sharded store: the list of shard files and what they hold.

    The parameters are stored as attributes of the same names (dataclass).

    Parameters
    ----------
    path : `~pathlib.Path`
        The manifest file; shard paths are relative to its directory.
    shards : list of `ShardInfo`
        In row order.
    columns : list of `~gaiarvs_cnn.io.store.ColumnSpec`
        Column specifications shared by all shards.
    meta : dict, optional
        Free metadata (provenance, parent store, ...); empty by default.
    """

    path: Path
    shards: list[ShardInfo]
    columns: list[ColumnSpec]
    meta: dict = field(default_factory=dict)

    @property
    def n_stars(self) -> int:
        """Total number of stars (rows) in all shards."""
        return sum(s.n_stars for s in self.shards)

    def shard_path(self, shard: ShardInfo) -> Path:
        """Absolute path of a shard file.

        Parameters
        ----------
        shard : `ShardInfo`
            A shard of this manifest.

        Returns
        -------
        `~pathlib.Path`
            ``shard.path`` itself if absolute, else joined to the manifest's directory.
        """
        p = Path(shard.path)
        return p if p.is_absolute() else (self.path.parent / p)

    def to_dict(self) -> dict:
        """Return the JSON document of the manifest, as written by `write`.

        Returns
        -------
        dict
            ``format``, ``version``, ``created`` (UTC, ISO 8601), ``n_stars``,
            ``n_shards``, ``columns``, ``meta`` and ``shards`` (one dict per shard).
        """
        return {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "n_stars": self.n_stars, "n_shards": len(self.shards),
                "columns": [c.to_dict() for c in self.columns], "meta": self.meta,
                "shards": [asdict(s) for s in self.shards]}

    def write(self, overwrite: bool = False) -> Path:
        """Write the manifest (atomically) to `path` and return it.

        Parameters
        ----------
        overwrite : bool, optional
            Replace an existing manifest file (default False).

        Returns
        -------
        `~pathlib.Path`
            The manifest file written (``self.path``).

        Raises
        ------
        OutputExistsError
            If the file exists and ``overwrite`` is False.
        """
        from ..exceptions import OutputExistsError

        if self.path.exists() and not overwrite:
            raise OutputExistsError.for_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(self.to_dict(), indent=1))
        return self.path

    def validate(self, checksums: bool = True, unique_ids: bool = True) -> None:
        """Check that every shard exists and matches the manifest.

        Parameters
        ----------
        checksums : bool
            Recompute SHA-256 checksums (reads every byte; slow for terabytes).
        unique_ids : bool
            Check that no source_id occurs in two shards.

        Raises
        ------
        StoreError
            Naming the shard and what differs (missing file, size, checksum, star
            count, columns).
        DuplicateSourceError
            If a source_id occurs in more than one shard.
        """
        for shard in tqdm(self.shards, desc="validate shards", unit="shard",
                          disable=len(self.shards) < 4):
            self._validate_shard(shard, checksums)
        if unique_ids:
            self._check_unique_ids()

    def _validate_shard(self, shard: ShardInfo, checksum: bool) -> None:
        path = self.shard_path(shard)
        where = f"shard {shard.path} of manifest {self.path}"
        if not path.exists():
            raise StoreError(f"{where} is missing; restore the file or re-create the manifest "
                             "with create_manifest.")
        if path.stat().st_size != shard.bytes:
            raise StoreError(f"{where} has {path.stat().st_size} bytes, the manifest says "
                             f"{shard.bytes}: the file was modified or truncated.")
        if checksum and sha256_file(path) != shard.sha256:
            raise StoreError(f"{where} fails its SHA-256 checksum: the file is corrupt or was "
                             "modified; restore it or re-create the manifest.")
        with Store.open(path) as store:
            n, specs = len(store), list(store.specs)
        if n != shard.n_stars:
            raise StoreError(f"{where} holds {n} stars, the manifest says {shard.n_stars}.")
        if [s.to_dict() for s in specs] != [c.to_dict() for c in self.columns]:
            raise StoreError(f"{where} has columns {[s.name for s in specs]}, the manifest "
                             f"declares {[c.name for c in self.columns]}.")

    def _check_unique_ids(self) -> None:
        ranges = sorted((s.source_id_min, s.source_id_max) for s in self.shards if s.n_stars)
        if not any(b[0] <= a[1] for a, b in zip(ranges, ranges[1:])):
            return
        ids = np.concatenate([self.shard_source_ids(s) for s in self.shards])
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            dupl = uniq[counts > 1][:10].tolist()
            raise DuplicateSourceError(f"source_id(s) {dupl} occur in more than one shard of "
                                       f"{self.path}; remove them from all but one shard.")

    def shard_source_ids(self, shard: ShardInfo) -> np.ndarray:
        """The source_ids stored in one shard, in row order.

        Parameters
        ----------
        shard : `ShardInfo`
            A shard of this manifest.

        Returns
        -------
        `~numpy.ndarray` of int64
            Gaia DR3 source_ids, one per row of the shard.

        Raises
        ------
        StoreError
            If the shard file is missing or not a readable store.
        """
        with Store.open(self.shard_path(shard)) as store:
            return store.source_ids()


def is_manifest(path) -> bool:
    """True if ``path`` is a JSON shard manifest (not an HDF5 store).

    Parameters
    ----------
    path : path-like
        File to test; a ``.json`` suffix is enough, otherwise the first byte is read.

    Returns
    -------
    bool
        True for a ``.json`` name or a file starting with ``{``; False otherwise,
        including when the file cannot be read.
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        return True
    try:
        with open(path, "rb") as fh:
            return fh.read(1) == b"{"
    except OSError:
        return False


def read_manifest(path) -> Manifest:
    """Read a shard manifest written by `create_manifest` or `shard_store`.

    Parameters
    ----------
    path : path-like
        The JSON manifest.

    Returns
    -------
    Manifest
        The manifest; shard files are not opened or checked (see `Manifest.validate`).

    Raises
    ------
    StoreError
        If the file is missing, not JSON, or not a gaiarvs-cnn manifest.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"No manifest at {path}.")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path} is not a JSON manifest: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise StoreError(f"{path} is JSON but not a gaiarvs-cnn shard manifest "
                         f"(expected format={MANIFEST_FORMAT!r}).")
    if doc.get("version", 0) > MANIFEST_VERSION:
        raise StoreError(f"{path} has manifest version {doc['version']}; this gaiarvs-cnn "
                         f"reads up to {MANIFEST_VERSION}: upgrade gaiarvs-cnn.")
    try:
        shards = [ShardInfo(**s) for s in doc["shards"]]
        columns = [ColumnSpec.from_dict(c) for c in doc["columns"]]
    except (KeyError, TypeError) as exc:
        raise StoreError(f"{path}: malformed manifest entry ({exc}).") from exc
    return Manifest(path, shards, columns, dict(doc.get("meta", {})))


def create_manifest(shard_paths: Iterable, manifest_path, meta: dict | None = None,
                    overwrite: bool = False) -> Manifest:
    """Describe existing store files in a new manifest and write it.

    Parameters
    ----------
    shard_paths : iterable of path-like
        Store files (e.g. one per Gaia bulk-download file), in the row order wanted.
    manifest_path : path-like
        JSON file to write; shard paths are stored relative to its directory.
    meta : dict, optional
        Metadata to record (JSON-serialisable).
    overwrite : bool
        Replace an existing manifest.

    Returns
    -------
    Manifest

    Raises
    ------
    StoreError
        If there are no shards, a file is not a store, or shards differ in columns.
    DuplicateSourceError
        If a source_id occurs in two shards.
    """
    manifest_path = Path(manifest_path)
    paths = [Path(p) for p in shard_paths]
    if not paths:
        raise StoreError("No shard files given for the manifest.")
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    base = manifest_path.parent.resolve()
    shards = [ShardInfo.from_file(p.resolve(), base)
              for p in tqdm(paths, desc="checksum shards", unit="shard", disable=len(paths) < 4)]
    with Store.open(paths[0]) as first:
        columns = list(first.specs)
    manifest = Manifest(manifest_path, shards, columns, dict(meta or {}))
    manifest.validate(checksums=False)
    manifest.write(overwrite)
    return manifest


# ----------------------------------------------------------------------------------
# Partitions and uniform readers
# ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Partition:
    """A unit of parallel work: rows ``start:stop`` of one store file.

    The parameters are stored as attributes of the same names (frozen dataclass).

    Parameters
    ----------
    index : int
        Position of the partition in the whole input (output order).
    path : str
        Absolute path of the store or shard file.
    start, stop : int
        Row range inside that file.
    row0 : int
        Global row number of ``start`` (row in the whole sharded store).
    """

    index: int
    path: str
    start: int
    stop: int
    row0: int

    @property
    def key(self) -> str:
        """Stable name of the partition, e.g. ``part-000012``."""
        return f"part-{self.index:06d}"

    def __len__(self) -> int:
        return self.stop - self.start

    def read(self, columns: Sequence[str] | None = None) -> StarBatch:
        """Read the partition's stars from its file.

        Parameters
        ----------
        columns : sequence of str, optional
            Columns to read (default: all).

        Returns
        -------
        `~gaiarvs_cnn.io.store.StarBatch`
            The ``len(self)`` rows ``start:stop`` of the file.

        Raises
        ------
        StoreError
            If the file is missing or not a readable store.
        """
        with Store.open(self.path) as store:
            return store.read(self.start, self.stop, columns)


def _split(path: Path, n: int, size: int, first_index: int, row0: int) -> list[Partition]:
    return [Partition(first_index + i, str(path), lo, min(lo + size, n), row0 + lo)
            for i, lo in enumerate(range(0, n, size))]


class _Source:
    """Common interface of `StoreSource` and `ShardedSource`."""

    path: Path

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden where files stay open
        """Release open files."""

    def iter_chunks(self, chunk_size: int | None = None, columns: Sequence[str] | None = None,
                    start: int = 0, stop: int | None = None) -> Iterator[StarBatch]:
        """Yield consecutive batches of at most ``chunk_size`` stars (default ``conf``)."""
        from ..settings import conf

        chunk_size = int(chunk_size or conf.chunk_size)
        stop = len(self) if stop is None else min(stop, len(self))
        for lo in range(start, stop, chunk_size):
            yield self.read(lo, min(lo + chunk_size, stop), columns)

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def colnames(self) -> list[str]:
        """Column names, in store order."""
        return [s.name for s in self.specs]

    def read(self, start: int = 0, stop: int | None = None,
             columns: Sequence[str] | None = None) -> StarBatch:
        raise NotImplementedError


class StoreSource(_Source):
    """Reader of one HDF5 store with the `open_source` interface.

    Parameters
    ----------
    path : path-like
        The store file.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.store = Store.open(self.path)
        self.specs = self.store.specs

    def close(self) -> None:
        """Close the store file."""
        self.store.close()

    def __len__(self) -> int:
        return len(self.store)

    @property
    def meta(self) -> dict:
        """Metadata of the store."""
        return self.store.meta

    @property
    def extra_columns(self) -> tuple[ColumnSpec, ...]:
        """Specifications of the columns beyond the core columns."""
        return self.store.extra_columns

    @property
    def files(self) -> list[Path]:
        """The HDF5 files read by this source."""
        return [self.path]

    def read(self, start=0, stop=None, columns=None) -> StarBatch:
        """Read rows ``start:stop`` (all columns, or only ``columns``).

        Parameters
        ----------
        start : int, optional
            First row (default 0).
        stop : int, optional
            Row after the last one (default: the end).
        columns : sequence of str, optional
            Columns to read (default: all).

        Returns
        -------
        `~gaiarvs_cnn.io.store.StarBatch`
            The rows, in row order.
        """
        return self.store.read(start, stop, columns)

    def source_ids(self) -> np.ndarray:
        """All source_ids, in row order.

        Returns
        -------
        `~numpy.ndarray` of int64
            Gaia DR3 source_ids, one per row.
        """
        return self.store.source_ids()

    def read_ids(self, source_ids, columns=None) -> StarBatch:
        """Read the given stars, in the order given (see `Store.read_ids`).

        Parameters
        ----------
        source_ids : iterable of int
            Gaia DR3 source_ids to read.
        columns : sequence of str, optional
            Columns to read (default: all).

        Returns
        -------
        `~gaiarvs_cnn.io.store.StarBatch`
            One row per requested source_id, in the order given.

        Raises
        ------
        StoreError
            If a source_id is not in the store.
        """
        return self.store.read_ids(source_ids, columns)

    def partitions(self, chunk_size: int | None = None) -> list[Partition]:
        """Split the store into partitions of at most ``chunk_size`` rows.

        Parameters
        ----------
        chunk_size : int, optional
            Maximum rows per partition (default ``conf.chunk_size``).

        Returns
        -------
        list of `Partition`
            In row order, with consecutive ``index`` starting at 0.
        """
        from ..settings import conf

        size = int(chunk_size or conf.chunk_size)
        return _split(self.path.resolve(), len(self), size, 0, 0)


class ShardedSource(_Source):
    """Reader of a sharded store (manifest) with global row numbering.

    Parameters
    ----------
    path : path-like
        The manifest (JSON).
    validate : bool
        Check that the shards exist and match their sizes, star counts and columns
        (checksums are verified by `Manifest.validate`, which reads every byte).
    """

    def __init__(self, path, validate: bool = True):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        if validate:
            for shard in self.manifest.shards:
                self.manifest._validate_shard(shard, checksum=False)
        self.specs = tuple(self.manifest.columns)
        counts = [s.n_stars for s in self.manifest.shards]
        self._offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._open: dict[int, Store] = {}

    def _store(self, i: int) -> Store:
        if i not in self._open:
            self._open[i] = Store.open(self.files[i])
        return self._open[i]

    def close(self) -> None:
        """Close the shard files opened so far."""
        for store in self._open.values():
            store.close()
        self._open.clear()

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def meta(self) -> dict:
        """Metadata recorded in the manifest."""
        return self.manifest.meta

    @property
    def extra_columns(self) -> tuple[ColumnSpec, ...]:
        """Specifications of the columns beyond the core columns."""
        from .store import CORE_COLUMNS

        core = {c.name for c in CORE_COLUMNS}
        return tuple(s for s in self.specs if s.name not in core)

    @property
    def files(self) -> list[Path]:
        """The shard files, in row order."""
        return [self.manifest.shard_path(s) for s in self.manifest.shards]

    def read(self, start=0, stop=None, columns=None) -> StarBatch:
        """Read global rows ``start:stop`` (may span several shards).

        Parameters
        ----------
        start : int, optional
            First global row (default 0).
        stop : int, optional
            Global row after the last one (default: the end).
        columns : sequence of str, optional
            Columns to read (default: all).

        Returns
        -------
        `~gaiarvs_cnn.io.store.StarBatch`
            The rows, in global row order (empty if ``start >= stop``).
        """
        stop = len(self) if stop is None else min(int(stop), len(self))
        pieces = []
        for i in range(len(self.manifest.shards)):
            lo, hi = max(start, self._offsets[i]), min(stop, self._offsets[i + 1])
            if lo < hi:
                off = int(self._offsets[i])
                pieces.append(self._store(i).read(int(lo) - off, int(hi) - off, columns))
        if not pieces:
            return self._store(0).read(0, 0, columns)
        return pieces[0] if len(pieces) == 1 else StarBatch.concatenate(pieces)

    def source_ids(self) -> np.ndarray:
        """All source_ids, in global row order.

        Returns
        -------
        `~numpy.ndarray` of int64
            Gaia DR3 source_ids of all shards, one per row (reads every shard).
        """
        parts = [self.manifest.shard_source_ids(s) for s in self.manifest.shards]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def read_ids(self, source_ids, columns=None) -> StarBatch:
        """Read the given stars, in the order given; shards are chosen by source_id range.

        Parameters
        ----------
        source_ids : iterable of int
            Gaia DR3 source_ids to read.
        columns : sequence of str, optional
            Columns to read (default: all).

        Returns
        -------
        `~gaiarvs_cnn.io.store.StarBatch`
            One row per requested source_id, in the order given.

        Raises
        ------
        StoreError
            Listing source_ids that are in no shard.
        """
        ids = np.asarray(list(source_ids), dtype=np.int64)
        found = np.zeros(ids.size, dtype=bool)
        pieces, order = [], []
        for i, shard in enumerate(self.manifest.shards):
            cand = ~found & (ids >= shard.source_id_min) & (ids <= shard.source_id_max)
            if not cand.any():
                continue
            store = self._store(i)
            hit = np.flatnonzero(cand)[np.isin(ids[cand], store.source_ids())]
            if hit.size:
                pieces.append(store.read_ids(ids[hit], columns))
                order.append(hit)
                found[hit] = True
        if not found.all():
            raise StoreError(f"source_id(s) {ids[~found][:10].tolist()} not in any shard of "
                             f"{self.path}.")
        batch = StarBatch.concatenate(pieces)
        return batch[np.argsort(np.concatenate(order), kind="stable")]

    def partitions(self, chunk_size: int | None = None) -> list[Partition]:
        """One partition per shard, or per ``chunk_size`` rows of a shard if smaller.

        Partitions never span two shards, so that a task reads one file.

        Parameters
        ----------
        chunk_size : int, optional
            Maximum rows per partition (default ``conf.chunk_size``).

        Returns
        -------
        list of `Partition`
            In global row order, with consecutive ``index`` starting at 0.
        """
        from ..settings import conf

        size = int(chunk_size or conf.chunk_size)
        parts: list[Partition] = []
        for i, path in enumerate(self.files):
            n = self.manifest.shards[i].n_stars
            parts += _split(path.resolve(), n, size, len(parts), int(self._offsets[i]))
        return parts


def open_source(path, validate: bool = True) -> StoreSource | ShardedSource:
    """Open a single HDF5 store or a shard manifest with one reader interface.

    Parameters
    ----------
    path : path-like
        ``.h5`` store, or ``.json`` manifest (from `shard_store` / `create_manifest`).
    validate : bool
        For manifests, check every shard's presence, size, star count and columns.

    Returns
    -------
    StoreSource or ShardedSource
        Both provide ``len()``, ``iter_chunks``, ``read``, ``source_ids``,
        ``read_ids``, ``meta``, ``specs``, ``colnames``, ``extra_columns``, ``files``,
        ``partitions`` and work as context managers.

    Raises
    ------
    StoreError
        If the path is missing or is neither a store nor a manifest.
    """
    path = Path(path)
    if not path.exists():
        raise StoreError(f"No store or manifest at {path}.")
    return ShardedSource(path, validate) if is_manifest(path) else StoreSource(path)


# ----------------------------------------------------------------------------------
# Cutting a store into shards
# ----------------------------------------------------------------------------------
def _write_shard(path: Path, batches: Iterable[StarBatch], extra: Sequence[ColumnSpec],
                 meta: dict, expected_rows: int) -> None:
    with atomic_path(path) as tmp, Store.create(tmp, extra_columns=extra, meta=meta,
                                                overwrite=True,
                                                expected_rows=expected_rows) as out:
        for batch in batches:
            out.append(batch)


def shard_store(store_path, out_dir, stars_per_shard: int, manifest_name: str = "manifest.json",
                chunk_size: int | None = None, overwrite: bool = False) -> Path:
    """Cut a store (or re-cut a sharded store) into shards of ``stars_per_shard`` stars.

    Shards are written as ``shard-00000.h5``, ``shard-00001.h5``, ... in ``out_dir``,
    each atomically, then the manifest ``out_dir/manifest_name`` with their checksums.

    Parameters
    ----------
    store_path : path-like
        Input store or manifest.
    out_dir : path-like
        Output directory (created).
    stars_per_shard : int
        Rows per shard (the last shard may hold fewer).
    manifest_name : str
        File name of the manifest inside ``out_dir``.
    chunk_size : int, optional
        Rows read at a time (default ``conf.chunk_size``).
    overwrite : bool
        Replace an existing manifest and shard files.

    Returns
    -------
    Path
        The manifest.

    Raises
    ------
    OutputExistsError
        If the manifest exists and ``overwrite`` is False.
    """
    from ..exceptions import InputDataError, OutputExistsError
    from ..settings import conf

    if stars_per_shard < 1:
        raise InputDataError(f"stars_per_shard must be >= 1, got {stars_per_shard}.")
    out_dir = Path(out_dir)
    manifest_path = out_dir / manifest_name
    if manifest_path.exists() and not overwrite:
        raise OutputExistsError.for_path(manifest_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    chunk = min(int(chunk_size or conf.chunk_size), stars_per_shard)
    paths = []
    with open_source(store_path) as src:
        n = len(src)
        extra, meta = src.extra_columns, dict(src.meta)
        starts = range(0, n, stars_per_shard)
        for i, lo in enumerate(tqdm(starts, desc="write shards", unit="shard")):
            hi = min(lo + stars_per_shard, n)
            path = out_dir / f"shard-{i:05d}.h5"
            if path.exists() and not overwrite:
                raise OutputExistsError.for_path(path)
            _write_shard(path, src.iter_chunks(chunk, start=lo, stop=hi), extra,
                         {**meta, "shard_index": i, "shard_rows": [lo, hi]}, hi - lo)
            paths.append(path)
    meta_out = {"parent": str(Path(store_path).resolve()), "stars_per_shard": stars_per_shard,
                "parent_meta": meta}
    manifest = create_manifest(paths, manifest_path, meta=meta_out, overwrite=overwrite)
    log.info(f"Wrote {len(paths)} shard(s) with {manifest.n_stars} stars and {manifest_path}.")
    return manifest_path
