"""The tasks executors run: the chunk task of catalogue production (read -> input cuts ->
ensemble -> flags) and the member task of training (`train_member_task`).

`compute_chunk` is what every executor runs, in this process or on a Dask worker: it reads
one `~gaiarvs_cnn.io.shards.Partition` of the input, keeps the stars passing
`gaiarvs_cnn.selection.usable_mask`, calls `gaiarvs_cnn.model.predict_and_flag` and writes
the result atomically to ``<work_dir>/part-NNNNNN.npz``, stamped with the run token. A chunk
file that exists with the run's token is complete: the task is idempotent (a re-run, or a
retry after a lost worker, recomputes nothing).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..io.shards import Partition
from ..selection import usable_mask
from ..utils.atomic import atomic_path

if TYPE_CHECKING:
    from ..model.bundle import ModelBundle

__all__ = ["chunk_path", "read_chunk", "read_chunk_meta", "chunk_is_complete", "write_chunk",
           "load_bundle", "compute_chunk", "train_member_task", "CHUNK_GLOB"]

#: Store columns kept beside the catalogue columns (positions, for HEALPix-partitioned
#: catalogues such as HATS).
POSITION_COLUMNS = ("ra", "dec")
#: Pattern of the chunk result files in a work directory.
CHUNK_GLOB = "part-*.npz"
_META = "__meta__"
_CACHE: dict[str, ModelBundle] = {}
_CACHE_LOCK = threading.Lock()


def chunk_path(work_dir, part: Partition) -> Path:
    """``<work_dir>/<part.key>.npz``, the result file of one chunk."""
    return Path(work_dir) / f"{part.key}.npz"


def _expected_meta(part: Partition, token: str) -> dict:
    return {"token": token, "key": part.key, "start": part.start, "stop": part.stop,
            "row0": part.row0, "n_input": len(part)}


def write_chunk(path, columns: Mapping[str, np.ndarray], meta: Mapping) -> Path:
    """Write one chunk result atomically (a killed writer leaves no file under ``path``).

    Parameters
    ----------
    path : str or path-like
        The ``part-NNNNNN.npz`` file.
    columns : mapping of str to ndarray
        Catalogue columns of the chunk's usable stars.
    meta : mapping
        JSON-serialisable description (run token, row range, counts, timings).

    Returns
    -------
    Path
    """
    with atomic_path(path, suffix=".npz") as tmp:
        arrays: dict[str, np.ndarray] = {_META: np.array(json.dumps(dict(meta))), **columns}
        np.savez(tmp, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds wrongly
    return Path(path)


def read_chunk(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read one chunk result file: ``(columns, meta)``.

    Parameters
    ----------
    path : str or path-like
        A ``part-NNNNNN.npz`` file written by `compute_chunk`.

    Returns
    -------
    columns : dict of str to ndarray
        Catalogue columns, ``flag_boundary`` and the stars' ``ra``, ``dec`` (deg) of the
        chunk's usable stars.
    meta : dict
        Run token, partition key, row range (``start``, ``stop``, ``row0``), ``n_input``
        (rows read), ``n_output`` (rows kept), ``timings`` (s) and ``bundle_id``.

    Raises
    ------
    OSError
        If the file is missing or unreadable.
    """
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz[_META]))
        cols = {k: npz[k] for k in npz.files if k != _META}
    return cols, meta


def read_chunk_meta(path) -> dict:
    """Only the ``meta`` of `read_chunk` (the columns are not decompressed)."""
    with np.load(path, allow_pickle=False) as npz:
        return json.loads(str(npz[_META]))


def chunk_is_complete(work_dir, part: Partition, token: str) -> bool:
    """Whether the result file of ``part`` exists, is readable and belongs to run ``token``."""
    path = chunk_path(work_dir, part)
    if not path.exists():
        return False
    try:
        meta = read_chunk_meta(path)
    except (OSError, ValueError, KeyError):
        return False
    return all(meta.get(k) == v for k, v in _expected_meta(part, token).items())


def load_bundle(bundle_path):
    """The `~gaiarvs_cnn.model.ModelBundle` at ``bundle_path``, loaded once per process.

    The cache is checked against the bundle's manifest (its ``bundle_id``) on every call,
    so a bundle replaced at the same path is reloaded.

    Parameters
    ----------
    bundle_path : str or path-like
        Bundle directory.

    Returns
    -------
    `~gaiarvs_cnn.model.ModelBundle`

    Raises
    ------
    ModelBundleError
        If the bundle cannot be read.
    """
    from ..model.bundle import ModelBundle, read_bundle_id

    key = str(Path(bundle_path).resolve())
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is None or cached.bundle_id != read_bundle_id(key):
            _CACHE[key] = cached = ModelBundle.load(key)
        return cached


def compute_chunk(part: Partition, bundle_path: str, work_dir: str, token: str,
                  tsne: bool = True, precision: str = "float32") -> dict:
    """Read, cut, predict and flag one chunk; write ``<work_dir>/<part.key>.npz``.

    Idempotent: if the file of this run exists already, nothing is recomputed.

    Parameters
    ----------
    part : `~gaiarvs_cnn.io.shards.Partition`
        The rows to process.
    bundle_path : str
        Model bundle directory (readable where the task runs).
    work_dir : str
        Directory of the chunk files (shared by all workers).
    token : str
        Run identifier stamped into the file; a file of another run is recomputed.
    tsne : bool, optional
        Compute the t-SNE digit of ``flag_boundary``.
    precision : {'float32', 'bfloat16'}, optional
        Arithmetic of the network (`gaiarvs_cnn.constants.PRECISIONS`).

    Returns
    -------
    dict
        ``key``, ``index``, ``n_stars`` (rows read), ``n_output`` (rows kept), ``seconds``
        (wall), ``cpu_seconds``, ``timings`` (``read+cuts``, ``predict``, ``flags``),
        ``worker`` (address or pid) and ``computed`` (False if the file existed).
    """
    from ..model import predict
    from ..model.predict import INPUT_COLUMNS

    t0, c0 = time.perf_counter(), time.process_time()
    info = {"key": part.key, "index": part.index, "n_stars": len(part),
            "worker": _worker_name()}
    if chunk_is_complete(work_dir, part, token):
        meta = read_chunk_meta(chunk_path(work_dir, part))
        return {**info, "n_output": meta.get("n_output"), "seconds": 0.0, "cpu_seconds": 0.0,
                "timings": {}, "computed": False}
    bundle = load_bundle(bundle_path)
    batch = part.read([*INPUT_COLUMNS, *POSITION_COLUMNS])
    batch = batch[usable_mask(batch, bundle.config.inputs)]
    timings = {"read+cuts": time.perf_counter() - t0}
    cols = predict.predict_and_flag(bundle, batch, tsne=tsne, timings=timings,
                                    precision=precision)
    for name in POSITION_COLUMNS:  # for partitioned (HEALPix) catalogues
        cols[name] = np.asarray(batch[name], dtype=np.float64)
    seconds = time.perf_counter() - t0
    meta = {**_expected_meta(part, token), "path": part.path, "n_output": len(batch),
            "bundle_id": bundle.bundle_id, "seconds": seconds, "timings": timings}
    write_chunk(chunk_path(work_dir, part), cols, meta)
    return {**info, "n_output": len(batch), "seconds": seconds,
            "cpu_seconds": time.process_time() - c0, "timings": timings, "computed": True}


def _worker_name() -> str:
    """The Dask worker's address, or ``pid<N>`` outside a worker (where `distributed`,
    never imported by a local run, is not imported for this)."""
    if "distributed" not in sys.modules:
        return f"pid{os.getpid()}"
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid{os.getpid()}"


def train_member_task(index: int, store_path: str, out_dir: str, config: dict,
                      settings: dict, *, isolate: bool = False,
                      threads: int | None = None) -> dict:
    """Train member ``index`` of an ensemble into ``out_dir`` (the training task).

    It calls `gaiarvs_cnn.model.training.train_members` for one member: the member's seed
    and split come from ``settings``, so it is the member a local run trains, wherever it
    runs. Idempotent: a finished member (its history file, written last) is not retrained,
    so a retry after a lost worker, or a resumed run, only trains what is missing.

    Parameters
    ----------
    index : int
        Member index (split-major, see `~gaiarvs_cnn.model.training.train_members`).
    store_path, out_dir : str
        Training store and bundle directory, readable and writable by the worker.
    config : dict
        `~gaiarvs_cnn.model.NetworkConfig.to_dict` of the network.
    settings : dict
        ``n_splits``, ``n_models``, ``epochs``, ``seed``, ``max_stars`` of the ensemble.
    isolate : bool
        Train in a child Python process (what Dask workers do): the worker's own threads
        draw from Python's global random generator while a member is being built, which
        would change the member's initial weights; a child process keeps the seeded
        generators to itself, so the member equals the one of a local run.
    threads : int, optional
        TensorFlow threads of the child process (``isolate``).

    Returns
    -------
    dict
        ``index``, ``name`` of the member and ``seconds`` spent in this task.
    """
    t0 = time.perf_counter()
    if isolate:
        import subprocess
        import sys

        job = json.dumps({"index": int(index), "store_path": str(store_path),
                          "out_dir": str(out_dir), "config": config, "settings": settings,
                          "threads": threads})
        res = subprocess.run([sys.executable, "-c", _CHILD], input=job, text=True,
                             capture_output=True)
        if res.returncode != 0:
            tail = " | ".join(res.stderr.strip().splitlines()[-3:])
            raise RuntimeError(f"training member {index} failed (exit {res.returncode}): "
                               f"{tail}")
        name = res.stdout.strip().splitlines()[-1]
    else:
        name = _train_one(int(index), str(store_path), str(out_dir), config, settings)
    return {"index": int(index), "name": name, "seconds": time.perf_counter() - t0}


def _train_one(index: int, store_path: str, out_dir: str, config: dict, settings: dict,
               threads: int | None = None) -> str:
    from ..model import NetworkConfig
    from ..model.training import train_members

    return train_members(store_path, out_dir, [index], NetworkConfig.from_dict(config),
                         progress=False, threads=threads, **settings)[0]


#: The child process of an isolated training task: reads the job as JSON on stdin.
_CHILD = """
import json, sys
job = json.load(sys.stdin)
if job["threads"]:
    from gaiarvs_cnn import conf
    from gaiarvs_cnn.model.predict import configure_threads
    conf.threads = job["threads"]
    configure_threads(job["threads"])
from gaiarvs_cnn.production.task import _train_one
print(_train_one(job["index"], job["store_path"], job["out_dir"], job["config"],
                 job["settings"], job["threads"]))
"""
