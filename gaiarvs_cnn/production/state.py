"""The one resume state of catalogue production: a work directory per run.

A work directory holds ``run.json`` (the run's identity and its token) and one
``part-NNNNNN.npz`` per finished chunk (`gaiarvs_cnn.production.task`), each stamped with the
token. A run is resumed only into a work directory whose identity equals its own, and the
identity is built from content, not names:

* the input: for a single store its SHA-256 (`gaiarvs_cnn.utils.checksum.sha256_file`); for a
  shard manifest the shards' checksums from the manifest plus each shard's size and
  modification time; for the simulated survey its seed and size;
* every option that changes the output: the bundle id, chunk size, limit, the t-SNE digit on
  or off, the number of rows, the software version.

So a different input of the same size is never resumed into the wrong catalogue: a work
directory of another identity (or of another ``state_version``) is another run's.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

from ..exceptions import InputDataError, OutputExistsError, Param
from ..utils.atomic import write_json_atomic
from ..utils.checksum import sha256_file
from .task import CHUNK_GLOB

__all__ = ["STATE_VERSION", "RUN_FILE", "input_identity", "run_token", "prepare_work_dir",
           "read_run_file"]

#: Version of the work-directory format (recorded in ``run.json``).
STATE_VERSION = 2
#: The identity file of a work directory.
RUN_FILE = "run.json"


def input_identity(src) -> dict:
    """Content identity of an open input (`gaiarvs_cnn.io.shards.open_source`).

    Parameters
    ----------
    src : `~gaiarvs_cnn.io.shards.StoreSource` or `~gaiarvs_cnn.io.shards.ShardedSource`
        The open input.

    Returns
    -------
    dict
        ``{"sha256": ...}`` for a store; ``{"shards": [[name, n_stars, sha256, size,
        mtime_ns], ...]}`` for a manifest.
    """
    manifest = getattr(src, "manifest", None)
    if manifest is None:
        return {"sha256": sha256_file(src.path), "n_rows": len(src)}
    shards = []
    for shard, path in zip(manifest.shards, src.files):
        st = Path(path).stat()
        shards.append([Path(shard.path).name, shard.n_stars, shard.sha256, st.st_size,
                       st.st_mtime_ns])
    return {"shards": shards, "n_rows": len(src)}


def run_token(identity: Mapping) -> str:
    """Short SHA-256 of an identity mapping (the token stamped into every chunk file)."""
    text = json.dumps(dict(identity), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_run_file(work_dir) -> dict | None:
    """The ``run.json`` of a work directory, or None if it has none (or it is unreadable)."""
    path = Path(work_dir) / RUN_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _differences(old: Mapping, new: Mapping) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _clear(work_dir: Path) -> None:
    for path in work_dir.glob(CHUNK_GLOB):
        path.unlink(missing_ok=True)
    (work_dir / RUN_FILE).unlink(missing_ok=True)


def prepare_work_dir(work_dir, identity: Mapping, *, resume: bool, explicit: bool,
                     overwrite: bool) -> str:
    """Create or check a work directory for a run; return the run token.

    Parameters
    ----------
    work_dir : str or path-like
        The run's work directory.
    identity : mapping
        The run's identity (see the module docstring).
    resume : bool
        Keep the finished chunks of an interrupted run of the same identity.
    explicit : bool
        The directory was chosen by the caller: finished chunks of the same identity are
        always kept, and a directory of another run is discarded only with ``overwrite``.
    overwrite : bool
        Discard a work directory of another run.

    Returns
    -------
    str
        The run token (`run_token` of ``identity``).

    Raises
    ------
    InputDataError
        If ``resume`` is asked for a directory of another identity (naming what differs).
    OutputExistsError
        If an ``explicit`` directory holds another run's chunks and ``overwrite`` is False.
    """
    work_dir = Path(work_dir)
    identity = dict(identity)
    token = run_token(identity)
    doc = read_run_file(work_dir)
    if doc is not None and doc.get("token") != token:
        changed = _differences(doc.get("identity", {}), identity)
        if resume:
            raise InputDataError(
                f"Cannot resume from {work_dir}: {changed} differ(s) from the interrupted run. "
                "Run again without ", Param("resume"), " (starts over) or with the original "
                "input and options.", file=work_dir)
        if explicit and not overwrite:
            raise OutputExistsError(work_dir, what="work directory", hint=(
                f"it holds the chunks of another run ({changed} differ); use another work "
                "directory, or ", Param("overwrite", True), " to discard them"))
        _clear(work_dir)
    elif doc is not None and not (resume or explicit):
        _clear(work_dir)  # same run, started over
    work_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(work_dir / RUN_FILE, {"state_version": STATE_VERSION, "token": token,
                                            "identity": identity})
    return token
