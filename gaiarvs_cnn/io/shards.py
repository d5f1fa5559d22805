"""Sharded stores: many HDF5 store files described by one JSON manifest.

Gaia DR4/DR5 will hold tens to hundreds of millions of RVS spectra (about 10 kB per
spectrum in float32), far too much for one file on one machine. A *sharded store* is
a set of ordinary `~gaiarvs_cnn.io.store.Store` files (e.g. one per Gaia bulk-download
file, or one per N stars) plus a *manifest*: a JSON file listing each shard's path
(relative to the manifest), star count, source_id range, size and SHA-256 checksum.

The manifest is `gaiarvs_cnn.io.manifest`. `open_source` opens either kind of input - one
``.h5`` store or a manifest - and returns a reader with the store's interface
(`~gaiarvs_cnn.io.store.StarReader`: ``len``, ``iter_chunks``, ``read``, ``source_ids``,
``read_ids``, ``meta``) plus ``files`` and ``partitions``: `StoreSource` is a `Store`,
`ShardedSource` a `~gaiarvs_cnn.io.store.StarReader` over the shards, so every reader of
the package accepts both. Rows of a sharded store are numbered globally, shard after
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

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import log
from tqdm.auto import tqdm

from ..exceptions import StoreError
from ..utils.atomic import atomic_path
from ..utils.lock import RunLock
from .batch import ColumnSpec, StarBatch
from .manifest import create_manifest, is_manifest, read_manifest
from .store import StarReader, Store

__all__ = [
    "Partition",
    "StoreSource",
    "ShardedSource",
    "open_source",
    "shard_store",
]

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
        `~gaiarvs_cnn.io.batch.StarBatch`
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


class StoreSource(Store):
    """One HDF5 store, opened read-only, with the `open_source` interface: a `Store` that
    also names its `files` and cuts itself into `partitions`.

    Parameters
    ----------
    path : path-like
        The store file.
    """

    def __init__(self, path):
        super().__init__(path, "r")

    @property
    def files(self) -> list[Path]:
        """The HDF5 files read by this source."""
        return [self.path]

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


class ShardedSource(StarReader):
    """Reader of a sharded store (manifest) with global row numbering.

    Parameters
    ----------
    path : path-like
        The manifest (JSON).
    validate : bool
        `Manifest.validate` without checksums (which read every byte): the shards exist
        and match their sizes, star counts and columns, and no source_id is in two shards
        (the same check as a full validation, less the checksums; overlapping shards
        gave duplicated catalogue rows).
    """

    def __init__(self, path, validate: bool = True):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        if validate:
            self.manifest.validate(checksums=False, unique_ids=True)
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
        `~gaiarvs_cnn.io.batch.StarBatch`
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
        `~gaiarvs_cnn.io.batch.StarBatch`
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
    InputDataError
        If the input holds no star (no folder is created).
    gaiarvs_cnn.utils.lock.RunLockedError
        If another run writes ``out_dir``.
    """
    from ..exceptions import InputDataError, OutputExistsError
    from ..settings import conf

    if stars_per_shard < 1:
        raise InputDataError(f"stars_per_shard must be >= 1, got {stars_per_shard}.")
    out_dir = Path(out_dir)
    manifest_path = out_dir / manifest_name
    if manifest_path.exists() and not overwrite:
        raise OutputExistsError(manifest_path)
    chunk = min(int(chunk_size or conf.chunk_size), stars_per_shard)
    paths = []
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(open_source(store_path))
        n = len(src)
        if n == 0:
            raise InputDataError(f"{store_path} holds no star: there is nothing to shard "
                                 "(nothing was written).")
        stack.enter_context(RunLock.beside(out_dir, f"shard folder {out_dir}"))
        out_dir.mkdir(parents=True, exist_ok=True)
        extra, meta = src.extra_columns, dict(src.meta)
        starts = range(0, n, stars_per_shard)
        for i, lo in enumerate(tqdm(starts, desc="write shards", unit="shard")):
            hi = min(lo + stars_per_shard, n)
            path = out_dir / f"shard-{i:05d}.h5"
            if path.exists() and not overwrite:
                raise OutputExistsError(path)
            _write_shard(path, src.iter_chunks(chunk, start=lo, stop=hi), extra,
                         {**meta, "shard_index": i, "shard_rows": [lo, hi]}, hi - lo)
            paths.append(path)
        meta_out = {"parent": str(Path(store_path).resolve()),
                    "stars_per_shard": stars_per_shard, "parent_meta": meta}
        manifest = create_manifest(paths, manifest_path, meta=meta_out, overwrite=overwrite)
    log.info(f"Wrote {len(paths)} shard(s) with {manifest.n_stars} stars and {manifest_path}.")
    return manifest_path
