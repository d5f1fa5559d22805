"""The manifest of a sharded store: one JSON file listing the shard files and what they hold.

A *sharded store* is a set of ordinary `~gaiarvs_cnn.io.store.Store` files plus a manifest
listing each shard's path (relative to the manifest), star count, source_id range, size and
SHA-256 checksum. `create_manifest` describes existing store files, `read_manifest` reads
one back and `Manifest.validate` checks the files against it. Reading a sharded store as
one: `gaiarvs_cnn.io.shards`.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..exceptions import Call, DuplicateSourceError, StoreError
from ..utils.atomic import write_text_atomic
from ..utils.checksum import sha256_file
from .batch import ColumnSpec
from .store import Store

__all__ = ["MANIFEST_FORMAT", "MANIFEST_VERSION", "ShardInfo", "Manifest", "create_manifest",
           "read_manifest", "is_manifest"]

#: Value of the ``format`` key that identifies a gaiarvs-cnn shard manifest.
MANIFEST_FORMAT = "gaiarvs-cnn-shards"
MANIFEST_VERSION = 1


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
    columns : list of `~gaiarvs_cnn.io.batch.ColumnSpec`
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
            raise OutputExistsError(self.path)
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
                             "with ", Call("create_manifest"), ".", file=path)
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
        paths = [self.shard_path(s).resolve() for s in self.shards]
        twice = sorted({str(p) for p in paths if paths.count(p) > 1})
        if twice:
            raise DuplicateSourceError(f"Shard(s) {twice} are listed more than once in "
                                       f"{self.path}; list each shard once.")
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
