"""Distributed prediction and flagging with Dask (`dask.distributed`).

The catalogue of a Gaia DR4/DR5-sized input is computed as one Dask task per
*partition* (a shard of a sharded store, or ``chunk_size`` rows of a store; see
`gaiarvs_cnn.io.shards.Partition`). Each task reads its stars and does exactly what the
single-process pipeline does per chunk: the input cuts
(`gaiarvs_cnn.production.pipeline.usable_mask`), the CNN ensemble and ``flag_boundary``
(`gaiarvs_cnn.production.pipeline.predict_chunk`), whose t-SNE
digit places the spectra on the training t-SNE maps (openTSNE ``transform``: each new
star is placed independently against the fixed training embedding, so partitions are
independent). It writes its result to its own file
``<work_dir>/part-NNNNNN.npz`` (atomically). When every partition is present they are
merged, in input order, by the catalogue writer into the final FITS / VOTable (and
optionally Parquet) files.

* Workers load the model bundle and the t-SNE reference once (a worker plugin fills a
  module-level cache at worker start-up) and keep them for every later task.
* Tasks are submitted with ``retries``; tasks of a lost worker are re-run by the
  scheduler; a re-run of the same command skips the partitions already written (the
  run is identified by the bundle, the input files and the partitioning).
* Progress is shown with a tqdm bar over completed tasks; the Dask dashboard and
  ``performance_report`` give the scheduler-side diagnostics.

Examples
--------
>>> from gaiarvs_cnn.production.distributed import predict_distributed
>>> run = predict_distributed("survey_shards/manifest.json", "bundle/",      # doctest: +SKIP
...                           ["catalog.fits", "catalog.vot"], workers=2)
>>> run.n_stars, run.n_computed, run.n_skipped                             # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import log
from distributed import WorkerPlugin
from tqdm.auto import tqdm

from ..exceptions import GaiaRVSCNNError, InputDataError, OutputExistsError
from ..io.shards import Partition, open_source

__all__ = [
    "PartitionFailedError",
    "BundlePreload",
    "DistributedRun",
    "worker_resources",
    "predict_partition",
    "predict_distributed",
    "partition_status",
    "read_partition",
    "merge_partitions",
    "make_client",
]

_RUN_FILE = "run.json"
_FLAG = "flag_boundary"
_CACHE: dict[tuple[str, bool], tuple] = {}
_CACHE_LOCK = threading.Lock()


class PartitionFailedError(GaiaRVSCNNError):
    """Partitions still failed after their retries; the others were written.

    Parameters
    ----------
    failures : mapping of str to str
        Partition key (e.g. ``part-000012``) -> error message; must not be empty.
    work_dir : path-like
        Directory holding the finished partitions (named in the message).

    Attributes
    ----------
    failures : dict of str to str
        Partition key -> error message.
    """

    def __init__(self, failures: Mapping[str, str], work_dir):
        self.failures = dict(failures)
        first = next(iter(self.failures.items()))
        super().__init__(
            f"{len(self.failures)} partition(s) failed after retries (first: {first[0]}: "
            f"{first[1]}). The finished partitions are kept in {work_dir}; fix the cause and "
            "run the same command again to compute only the missing ones.")


# ----------------------------------------------------------------------------------
# Worker side
# ----------------------------------------------------------------------------------
def _set_threads(threads: int) -> None:
    """Limit TensorFlow (and `gaiarvs_cnn.conf.threads`) to ``threads`` per worker."""
    from ..settings import conf

    if threads <= 0:
        return
    conf.threads = threads
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # TF already initialised in this process
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def worker_resources(bundle_path, tsne: bool = True):
    """Return ``(bundle, tsne_reference_or_None)``, loaded once per process and cached.

    The cache is checked against the bundle's ``manifest.json`` (its ``bundle_id``) on
    every call, so a bundle replaced at the same path is reloaded.

    Parameters
    ----------
    bundle_path : path-like
        Model bundle directory (`gaiarvs_cnn.model.ModelBundle.load`).
    tsne : bool
        Also load the bundle's t-SNE reference (``bundle.tsne_dir``; None, with a
        warning, if the bundle has none: the t-SNE digit is then ``"1"``).

    Returns
    -------
    tuple
        ``(bundle, reference)``: the `~gaiarvs_cnn.model.ModelBundle` and the
        `~gaiarvs_cnn.production.pipeline.TSNEReference` (None if ``tsne`` is False or the bundle
        has none).

    Raises
    ------
    ModelBundleError
        If the bundle, or its t-SNE reference when ``tsne`` is True, cannot be read.
    """
    from ..model import ModelBundle

    key = (str(Path(bundle_path).resolve()), bool(tsne))
    with _CACHE_LOCK:
        # reload if the bundle at this path was replaced (e.g. retrained) meanwhile
        if key not in _CACHE or _CACHE[key][0].bundle_id != _bundle_id(key[0]):
            from .pipeline import load_tsne_reference

            bundle = ModelBundle.load(key[0])
            _CACHE[key] = (bundle, load_tsne_reference(bundle) if tsne else None)
        return _CACHE[key]


class BundlePreload(WorkerPlugin):
    """Dask worker plugin: set the worker's threads and load the bundle at start-up.

    Registered by `predict_distributed` with ``client.register_plugin``; it also runs
    on workers that join (or are restarted) later, so every worker holds the bundle
    before its first task.

    Parameters
    ----------
    bundle_path : str
        Model bundle directory (must be readable by the workers).
    tsne : bool
        Also load the t-SNE reference.
    threads : int
        TensorFlow threads per worker (0 = leave TensorFlow's default).
    """

    name = "gaiarvs-cnn-bundle"

    def __init__(self, bundle_path: str, tsne: bool = True, threads: int = 1):
        self.bundle_path = str(bundle_path)
        self.tsne = tsne
        self.threads = threads

    def setup(self, worker=None) -> None:
        """Set the worker's threads and load the bundle (called by Dask at start-up).

        Parameters
        ----------
        worker : `distributed.Worker`, optional
            The worker being set up (unused).

        Raises
        ------
        ModelBundleError
            If the bundle or its t-SNE reference cannot be read.
        """
        _set_threads(self.threads)
        worker_resources(self.bundle_path, self.tsne)


def _predict_and_flag(bundle, ref, batch) -> dict[str, np.ndarray]:
    """Catalogue columns and ``flag_boundary`` of the usable stars of one batch.

    Exactly the single-process pipeline's work per chunk: the input cuts
    (`~gaiarvs_cnn.production.pipeline.usable_mask`), then
    `~gaiarvs_cnn.production.pipeline.predict_chunk`.
    """
    from .pipeline import predict_chunk, usable_mask

    pred, flags = predict_chunk(bundle, ref, batch[usable_mask(batch)])
    return {**pred, _FLAG: flags}


def _partition_file(work_dir, part: Partition) -> Path:
    return Path(work_dir) / f"{part.key}.npz"


def _partition_meta(part: Partition, token: str) -> dict:
    return {"token": token, "key": part.key, "path": part.path, "start": part.start,
            "stop": part.stop, "row0": part.row0}


def _save_npz(path: Path, arrays: Mapping[str, np.ndarray], meta: dict) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
    np.savez(tmp, __meta__=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, path)


def read_partition(path) -> tuple[dict[str, np.ndarray], dict]:
    """Read one partition result file: ``(columns, meta)``.

    Parameters
    ----------
    path : path-like
        A ``part-NNNNNN.npz`` file written by `predict_partition`.

    Returns
    -------
    columns : dict of str to `~numpy.ndarray`
        Catalogue columns and ``flag_boundary`` of the partition's usable stars.
    meta : dict
        Run token, partition key, file, row range (``start``, ``stop``, ``row0``),
        ``n_input`` (rows read), ``seconds`` (wall time, s) and ``bundle_id``.

    Raises
    ------
    OSError
        If the file is missing or unreadable.
    """
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["__meta__"]))
        cols = {k: npz[k] for k in npz.files if k != "__meta__"}
    return cols, meta


def _is_complete(path: Path, part: Partition, token: str) -> bool:
    """True if ``path`` holds the finished result of ``part`` for run ``token``."""
    if not path.exists():
        return False
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["__meta__"]))
            has_flags = _FLAG in npz.files
    except (OSError, ValueError, KeyError):
        return False
    expected = {**_partition_meta(part, token), "n_input": len(part)}
    return has_flags and all(meta.get(k) == v for k, v in expected.items())


def predict_partition(part: Partition, bundle_path: str, work_dir: str, token: str,
                      tsne: bool = True) -> dict:
    """Dask task: predict and flag one partition and write ``<work_dir>/<key>.npz``.

    Idempotent: if the file of this run already exists (e.g. written by a worker that
    was lost just after), nothing is recomputed.

    Parameters
    ----------
    part : `~gaiarvs_cnn.io.shards.Partition`
        The rows to process.
    bundle_path : str
        Model bundle directory, readable by the worker.
    work_dir : str
        Directory of the partition result files (shared by all workers).
    token : str
        Run identifier, recorded in the file; a file of another run is recomputed.
    tsne : bool, optional
        Compute the t-SNE digit of ``flag_boundary`` (default True).

    Returns
    -------
    dict
        ``key``, ``n_stars`` (rows read; stars failing the input cuts are not written),
        ``seconds`` (wall time of the task), ``cpu_seconds`` (CPU time of the worker
        process during the task), ``worker`` (address or pid), ``computed`` (False if
        the file already existed).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    out = _partition_file(work_dir, part)
    info = {"key": part.key, "n_stars": len(part), "worker": _worker_name()}
    if _is_complete(out, part, token):
        return {**info, "seconds": 0.0, "cpu_seconds": 0.0, "computed": False}
    from ..model.predict import INPUT_COLUMNS

    bundle, ref = worker_resources(bundle_path, tsne)
    batch = part.read(INPUT_COLUMNS)
    cols = _predict_and_flag(bundle, ref, batch)
    seconds = time.perf_counter() - t0
    _save_npz(out, cols, {**_partition_meta(part, token), "seconds": seconds,
                          "bundle_id": bundle.bundle_id, "n_input": len(batch)})
    return {**info, "seconds": seconds, "cpu_seconds": time.process_time() - c0,
            "computed": True}


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid{os.getpid()}"


# ----------------------------------------------------------------------------------
# Client side
# ----------------------------------------------------------------------------------
@dataclass
class DistributedRun:
    """What `predict_distributed` did.

    The parameters are stored as attributes of the same names (dataclass).

    Parameters
    ----------
    outputs : list of Path
        Catalogue files written.
    work_dir : Path
        Directory of the per-partition results (kept for resuming).
    n_stars, n_partitions, n_computed, n_skipped : int
        Stars in the catalogue; partitions in total, computed now, skipped (already done).
    wall_seconds : float
        Wall time of the whole call (s), including merging and writing.
    compute_seconds : float
        Wall time from submission to the last partition (s).
    tasks : list of dict, optional
        Per-task records returned by `predict_partition` (key, n_stars, seconds, worker);
        empty by default.
    """

    outputs: list[Path]
    work_dir: Path
    n_stars: int
    n_partitions: int
    n_computed: int
    n_skipped: int
    wall_seconds: float
    compute_seconds: float
    tasks: list[dict] = field(default_factory=list)


def _fingerprint(src) -> list:
    """Identify the input files cheaply: (path, size, mtime) or manifest checksums."""
    manifest = getattr(src, "manifest", None)
    if manifest is not None:
        return [[s.path, s.n_stars, s.sha256] for s in manifest.shards]
    st = src.path.stat()
    return [[str(src.path.resolve()), st.st_size, st.st_mtime_ns]]


def _bundle_id(bundle_path) -> str:
    """The bundle's id, read from its ``manifest.json`` (workers check the whole bundle)."""
    from ..exceptions import ModelBundleError

    manifest = Path(bundle_path) / "manifest.json"
    try:
        return str(json.loads(manifest.read_text())["bundle_id"])
    except (OSError, ValueError, KeyError) as exc:
        raise ModelBundleError(f"{bundle_path} is not a model bundle (cannot read the bundle_id "
                               f"in {manifest}: {exc}).") from exc


def _run_token(src, parts: Sequence[Partition], bundle_id: str, tsne: bool) -> str:
    from ..version import __version__

    doc = {"input": _fingerprint(src), "bundle": bundle_id, "tsne": tsne,
           "version": __version__, "parts": [[p.path, p.start, p.stop] for p in parts]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _prepare_work_dir(work_dir: Path, token: str, description: dict, overwrite: bool) -> None:
    run_file = work_dir / _RUN_FILE
    if run_file.exists():
        old = json.loads(run_file.read_text()).get("token")
        if old == token:
            return
        if not overwrite:
            raise OutputExistsError(
                f"{work_dir} holds the partitions of another run (different bundle, input "
                "files or chunk size). Use another work directory, or overwrite=True "
                "(--overwrite) to discard them.")
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_file.with_name(run_file.name + ".tmp")
    tmp.write_text(json.dumps({"token": token, **description}, indent=1))
    os.replace(tmp, run_file)


def partition_status(work_dir, parts: Sequence[Partition], token: str) -> list[bool]:
    """For each partition, whether its result file for run ``token`` is complete.

    Parameters
    ----------
    work_dir : path-like
        Directory of the ``part-NNNNNN.npz`` files.
    parts : sequence of `~gaiarvs_cnn.io.shards.Partition`
        Partitions to check.
    token : str
        Run identifier the files must carry.

    Returns
    -------
    list of bool
        One per partition, in the order of ``parts``: True if its file exists, is
        readable, and matches the partition and ``token``.
    """
    return [_is_complete(_partition_file(work_dir, p), p, token) for p in parts]


def make_client(scheduler: str | None = None, workers: int | None = None,
                threads_per_worker: int = 1, host: str = "127.0.0.1", **cluster_kwargs):
    """Connect to a Dask scheduler, or start a `~distributed.LocalCluster`.

    Parameters
    ----------
    scheduler : str, optional
        Address such as ``tcp://10.0.0.1:8786`` (dask-scheduler, dask-jobqueue,
        dask-gateway, ...). If None, a LocalCluster of worker processes is started.
    workers : int, optional
        Worker processes of the LocalCluster (default: number of CPU cores).
    threads_per_worker : int
        Threads per LocalCluster worker (1 is best for TensorFlow inference).
    host : str
        Interface of the LocalCluster (loopback by default).
    **cluster_kwargs
        Passed to `~distributed.LocalCluster` (e.g. ``dashboard_address=":8787"``).

    Returns
    -------
    (client, cluster_or_None)
        Close both when done (the cluster is None for a remote scheduler).
    """
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    kwargs = {"dashboard_address": None, **cluster_kwargs}
    cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                           threads_per_worker=threads_per_worker, processes=True, host=host,
                           **kwargs)
    return Client(cluster), cluster


def _run_tasks(client, todo: Sequence[Partition], args: tuple, retries: int,
               progress: bool) -> tuple[list[dict], dict[str, str]]:
    from distributed import as_completed

    futures = {client.submit(predict_partition, p, *args, retries=retries, pure=False): p
               for p in todo}
    records, failures = [], {}
    bar = tqdm(total=sum(len(p) for p in todo), desc="predict (dask)", unit="star",
               disable=not progress)
    for fut in as_completed(futures):
        part = futures[fut]
        if fut.status == "finished":
            records.append(fut.result())
        else:
            exc = fut.exception()
            failures[part.key] = f"{type(exc).__name__}: {exc}"
            log.error(f"Partition {part.key} ({part.path} rows {part.start}:{part.stop}) "
                      f"failed: {failures[part.key]}")
        bar.update(len(part))
        fut.release()
    bar.close()
    return records, failures


def merge_partitions(work_dir, parts: Sequence[Partition], outputs: Sequence,
                     provenance: Mapping, overwrite: bool = False) -> int:
    """Merge partition results, in order, into the catalogue files; return the star count.

    Parameters
    ----------
    work_dir : path-like
        Directory of ``part-NNNNNN.npz`` files.
    parts : sequence of `~gaiarvs_cnn.io.shards.Partition`
        All partitions, in output order.
    outputs : sequence of path-like
        Catalogue files; the format follows the suffix (``.fits``, ``.vot``, ``.parquet``).
    provenance : mapping
        Written into the catalogue header by `gaiarvs_cnn.catalog.write_catalog`.
    overwrite : bool
        Replace existing catalogue files.

    Returns
    -------
    int
        Number of stars (rows) written to each catalogue.

    Raises
    ------
    OutputExistsError
        If a catalogue file exists and ``overwrite`` is False.
    """
    from ..catalog.schema import build_catalog_table, write_catalog

    chunks, flags = [], []
    for part in parts:
        cols, _ = read_partition(_partition_file(work_dir, part))
        flags.append(cols.pop(_FLAG))
        chunks.append(cols)
    flag = np.concatenate(flags) if flags else np.zeros(0, dtype="<U8")
    table = build_catalog_table(chunks, flag, dict(provenance))
    for path in outputs:
        path = Path(path)
        fmt = _output_format(path)
        if fmt == "parquet":
            _write_parquet(table, path, overwrite)
        else:
            write_catalog(table, path, format=fmt, overwrite=overwrite,
                          provenance=dict(provenance))
    return len(table)


def _output_format(path: Path) -> str:
    """``'parquet'`` for a ``.parquet`` file (checks pyarrow), else the writer's format."""
    from ..catalog.schema import format_of

    if path.suffix.lower() != ".parquet":
        return format_of(path)
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise InputDataError(f"Writing {path} (Parquet) needs pyarrow: `pip install pyarrow`, "
                             "or choose a .fits / .vot output.") from exc
    return "parquet"


def _write_parquet(table, path: Path, overwrite: bool) -> None:
    """Write ``table`` as Parquet (needs pyarrow), atomically."""
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass overwrite=True to replace it.")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.write(tmp, format="parquet", overwrite=True)
    os.replace(tmp, path)


def predict_distributed(source, bundle_path, outputs, *, work_dir=None,
                        scheduler: str | None = None, workers: int | None = None,
                        threads_per_worker: int = 1, chunk_size: int | None = None,
                        retries: int = 2, tsne: bool = True, overwrite: bool = False,
                        client=None, progress: bool = True,
                        performance_report=None) -> DistributedRun:
    """Predict, flag and write the catalogue of a store or sharded store with Dask.

    Parameters
    ----------
    source : path-like
        HDF5 store or shard manifest (`gaiarvs_cnn.io.shards.open_source`).
    bundle_path : path-like
        Model bundle directory, readable by every worker.
    outputs : path-like or sequence of path-like
        Catalogue file(s); format by suffix: ``.fits``, ``.vot``/``.xml``, ``.parquet``.
    work_dir : path-like, optional
        Where per-partition results go (default ``<first output>.partitions/``). Keep it
        to resume an interrupted run; it must be visible to all workers (shared disk).
    scheduler : str, optional
        Dask scheduler address (``tcp://host:8786``); default: a LocalCluster.
    workers : int, optional
        Worker processes of the LocalCluster (default: CPU count).
    threads_per_worker : int
        Threads per worker (LocalCluster) and TensorFlow threads per worker.
    chunk_size : int, optional
        Stars per partition (default ``conf.chunk_size``); shards larger than this are
        split, smaller shards are one partition each.
    retries : int
        Extra attempts of a failing task (tasks of lost workers are re-run by Dask
        anyway, up to ``distributed.scheduler.allowed-failures``).
    tsne : bool
        Compute the t-SNE digit of ``flag_boundary`` from the bundle's t-SNE reference;
        if False the digit is set (``"1"``: unknown, not vouched for).
    overwrite : bool
        Replace existing catalogue files, and discard a work directory of another run.
    client : `distributed.Client`, optional
        Use this client instead of creating one (``scheduler``/``workers`` ignored).
    progress : bool
        Show a tqdm progress bar.
    performance_report : path-like, optional
        Write Dask's HTML performance report (task stream, worker profiles) here.

    Returns
    -------
    DistributedRun

    Raises
    ------
    PartitionFailedError
        If partitions still fail after their retries (the others are kept).
    OutputExistsError
        If a catalogue exists and ``overwrite`` is False, or ``work_dir`` belongs to
        another run.
    """
    t0 = time.perf_counter()
    outputs = _check_outputs(outputs, overwrite)
    bundle_path = str(Path(bundle_path).resolve())
    work_dir = Path(work_dir or outputs[0].with_name(outputs[0].name + ".partitions"))
    with open_source(source) as src:
        parts = src.partitions(chunk_size)
        token = _run_token(src, parts, _bundle_id(bundle_path), tsne)
    _prepare_work_dir(work_dir, token, {"source": str(Path(source).resolve()),
                                        "bundle": bundle_path, "n_partitions": len(parts),
                                        "tsne": tsne}, overwrite)
    todo = [p for p, ok in zip(parts, partition_status(work_dir, parts, token)) if not ok]
    log.info(f"{len(parts)} partition(s): {len(parts) - len(todo)} already done, "
             f"{len(todo)} to compute.")
    t1 = time.perf_counter()
    records = _compute(todo, (bundle_path, str(work_dir.resolve()), token, tsne), client,
                       scheduler, workers, threads_per_worker, retries, progress,
                       performance_report, work_dir)
    t2 = time.perf_counter()
    n = merge_partitions(work_dir, parts, outputs, _provenance(source, bundle_path, parts),
                         overwrite=overwrite)
    for stale in work_dir.glob(".part-*.tmp.npz"):  # left by workers killed mid-write
        stale.unlink(missing_ok=True)
    log.info(f"Wrote {n} stars to {', '.join(map(str, outputs))}.")
    n_computed = sum(r["computed"] for r in records)
    return DistributedRun(outputs, work_dir, n, len(parts), n_computed,
                          len(parts) - n_computed, time.perf_counter() - t0, t2 - t1, records)


def _check_outputs(outputs, overwrite: bool) -> list[Path]:
    """Normalise ``outputs`` to paths; refuse unknown formats and existing files early."""
    paths = [Path(outputs)] if isinstance(outputs, str | os.PathLike) else [
        Path(p) for p in outputs]
    for path in paths:
        _output_format(path)
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path} exists; pass overwrite=True (--overwrite).")
    return paths


def _provenance(source, bundle_path: str, parts: Sequence[Partition]) -> dict:
    return {"bundle": Path(bundle_path).name, "bundle_id": _bundle_id(bundle_path),
            "input_selection": {"store": Path(source).name, "cuts": "pipeline.usable_mask"},
            "n_input": sum(len(p) for p in parts), "engine": "dask.distributed",
            "npartit": len(parts)}


def _dashboard(client) -> str | None:
    """The dashboard URL, or None when the scheduler runs no (working) dashboard."""
    import importlib.util

    try:
        if (importlib.util.find_spec("bokeh") is None
                or "dashboard" not in client.scheduler_info().get("services", {})):
            return None
        return client.dashboard_link
    except (KeyError, AttributeError):
        return None


def _compute(todo, args, client, scheduler, workers, threads_per_worker, retries, progress,
             performance_report, work_dir) -> list[dict]:
    if not todo:
        return []
    with contextlib.ExitStack() as stack:
        if client is None:
            client, cluster = make_client(scheduler, workers, threads_per_worker)
            stack.callback(client.close)
            if cluster is not None:
                stack.callback(cluster.close)
        link = _dashboard(client)
        if link:
            log.info(f"Dask dashboard (task stream, progress): {link}")
        client.register_plugin(BundlePreload(args[0], args[3], threads_per_worker))
        if performance_report:
            from distributed import performance_report as report

            stack.enter_context(report(filename=str(performance_report)))
        records, failures = _run_tasks(client, todo, args, retries, progress)
    if failures:
        raise PartitionFailedError(failures, work_dir)
    return records
