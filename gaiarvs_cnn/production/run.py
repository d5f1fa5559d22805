"""One catalogue production: input -> model -> chunk tasks (on an executor) -> merge.

`produce_catalog` is the engine behind ``produce-catalog``, ``predict`` and
``predict --workers/--scheduler``:

1. ``simulate`` -- only for ``source="simulated"``: the built-in survey is simulated into the
   run's work directory, keyed by its seed and size.
2. ``model`` -- the bundle (default: the shipped demo bundle) and its t-SNE reference are
   loaded, or a fresh ensemble is trained (``train=True``). The input is opened and checked
   first, so a missing store is reported before any model is loaded.
3. ``read+cuts``, ``predict``, ``flags`` -- one `~gaiarvs_cnn.production.task.compute_chunk`
   per chunk, run by the executor (`LocalExecutor` in this process, `DaskExecutor` on a
   cluster); every finished chunk is a file in the work directory.
4. ``write`` -- the chunks are merged, in order, into every catalogue format; all formats
   are renamed into place together once complete.

Every run holds a lock on its output (a second run into the same output refuses at once,
naming the first run's pid and host) and works in its own work directory,
``<out>/<name>.work-<key>/`` (or ``work_dir``), whose identity is built from the input's
content and every option that changes the output (`gaiarvs_cnn.production.state`).
``resume=True`` continues an interrupted run of the same identity after its last finished
chunk; the catalogue equals that of an uninterrupted run. Existing catalogues are refused
unless ``overwrite=True``; if a stage fails, nothing is written under the final names.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from astropy import log
from tqdm import tqdm

from ..catalog import CATALOG_FORMATS, format_of, output_paths, parse_formats
from ..exceptions import Call, InputDataError, OutputExistsError, Param, StoreError
from ..flags import GOOD_FLAG
from ..io.shards import Partition, open_source
from ..selection import usable_cuts
from ..utils.lock import RunLock
from .executors import DaskExecutor, LocalExecutor
from .merge import merge_chunks
from .state import (
    RUN_FILE,
    STATE_VERSION,
    prepare_work_dir,
    read_run_file,
)
from .task import chunk_is_complete, chunk_path, load_bundle, read_chunk_meta

__all__ = ["CatalogRun", "RunSummary", "SOURCES", "DEFAULT_N_STARS", "DEFAULT_SEED",
           "produce_catalog", "run_catalog"]

#: Input sources of ``produce-catalog``.
SOURCES = ("simulated", "gaia", "files")
#: Stars of the default simulated survey (a few % out of the training range).
DEFAULT_N_STARS = 20_000
#: Seed of the default simulated survey.
DEFAULT_SEED = 7
_REPLACE_HINT = ("pass ", Param("overwrite", True), " to replace it (the old catalogue "
                 "stays until the new one is complete), or choose another output")


@dataclass
class CatalogRun:
    """Options of one catalogue production (see `produce_catalog`).

    Parameters
    ----------
    source : {'simulated', 'gaia', 'files'}
        Where the stars come from; ``gaia`` and ``files`` read ``store``.
    store : path, optional
        HDF5 store or shard manifest (``gaiarvs-cnn fetch gaia`` / ``store ingest`` write one).
    model : path, optional
        Model bundle directory (default: the shipped demo bundle).
    train : bool
        Train a fresh (demo-size) ensemble on simulated training stars instead.
    out : path
        Output directory, or a file name with a catalogue suffix (``.fits``, ``.vot``,
        ``.ecsv``, ``.parquet``): then each format's file is that name with its suffix.
    formats : str or sequence of str
        ``'both'`` (FITS and VOTable), one format name, or several (``'fits,parquet'`` or a
        list); names of `gaiarvs_cnn.catalog.CATALOG_FORMATS`.
    chunk_size : int, optional
        Stars per chunk (default ``gaiarvs_cnn.conf.chunk_size``).
    resume : bool
        Continue an interrupted run from its last completed chunk.
    limit : int, optional
        Use only the first ``limit`` stars of the store.
    n_stars, seed : int
        Size and seed of the simulated survey.
    overwrite : bool
        Replace existing catalogues (and discard a ``work_dir`` of another run).
    progress : bool
        Show progress bars.
    train_stars, train_epochs : int
        Simulated training stars and maximum epochs for ``train=True``.
    tsne : bool
        Compute the t-SNE digit of ``flag_boundary`` (False sets it to ``"1"``).
    precision : {'float32', 'bfloat16'}
        Arithmetic of the network (`gaiarvs_cnn.constants.PRECISIONS`); ``bfloat16``
        (opt-in, about twice as fast on CPUs with AVX512_BF16 or AMX) is recorded in the
        catalogue header (``PRECISN``).
    work_dir : path, optional
        Work directory of the chunk results (must be visible to every Dask worker). Given,
        it is kept after the run and its finished chunks of the same run are always
        reused; by default a per-run directory beside the output, removed at the end.
    workers : int, optional
        Run the chunks on a Dask `~distributed.LocalCluster` of this many processes.
    scheduler : str, optional
        Run the chunks on the Dask scheduler at this address (``tcp://host:8786``).
    threads_per_worker : int
        Threads (TensorFlow) per Dask worker.
    retries : int
        Extra attempts of a failing chunk on Dask.
    performance_report : path, optional
        Dask's HTML performance report.
    """

    source: str = "simulated"
    store: Path | None = None
    model: Path | None = None
    train: bool = False
    out: Path = Path("catalog")
    formats: str | tuple = "both"
    chunk_size: int | None = None
    resume: bool = False
    limit: int | None = None
    n_stars: int = DEFAULT_N_STARS
    seed: int = DEFAULT_SEED
    overwrite: bool = False
    progress: bool = True
    train_stars: int = 4000
    train_epochs: int = 10
    tsne: bool = True
    precision: str = "float32"
    work_dir: Path | None = None
    workers: int | None = None
    scheduler: str | None = None
    threads_per_worker: int = 1
    retries: int = 2
    performance_report: Path | None = None

    def targets(self) -> list[Path]:
        """The final catalogue paths.

        Returns
        -------
        list of Path
            One per format, from ``out`` and ``formats``.
        """
        out = Path(self.out)
        names = parse_formats(self.formats)
        try:
            format_of(out)
        except InputDataError:  # a directory
            return output_paths(out, names)
        return [out.with_suffix(CATALOG_FORMATS[f]) for f in names]

    @property
    def trained_bundle_dir(self) -> Path:
        """Where ``train=True`` trains (and keeps) its bundle: ``<out dir>/<name>_bundle``."""
        first = self.targets()[0]
        return first.parent / f"{first.stem}_bundle"

    @property
    def lock_path(self) -> Path:
        """The lock file of the output: ``<out dir>/.<name>.lock``."""
        first = self.targets()[0]
        return first.parent / f".{first.stem}.lock"

    def _key(self) -> dict:
        from ..settings import conf

        key = {"source": self.source, "chunk_size": int(self.chunk_size or conf.chunk_size),
               "limit": self.limit, "tsne": bool(self.tsne), "precision": self.precision}
        if self.source == "simulated":
            key.update(n_stars=int(self.n_stars), seed=int(self.seed))
        else:
            key["store"] = str(Path(self.store).resolve()) if self.store else None
        if self.train:
            key.update(train=True, train_stars=self.train_stars, train_epochs=self.train_epochs)
        else:
            key["model"] = str(Path(self.model).resolve()) if self.model else None
        return key

    @property
    def partial_dir(self) -> Path:
        """The run's work directory: ``work_dir``, or ``<out dir>/<name>.work-<key>/``.

        ``<key>`` is a digest of the options that name the run (source, store path or the
        simulated survey's seed and size, model, chunk size, limit, t-SNE), so runs with
        other options never share a directory.
        """
        if self.work_dir is not None:
            return Path(self.work_dir)
        first = self.targets()[0]
        digest = hashlib.sha256(json.dumps(self._key(), sort_keys=True).encode()).hexdigest()
        return first.parent / f"{first.stem}.work-{digest[:10]}"

    def executor(self):
        """The executor these options ask for: `DaskExecutor` with ``workers`` or
        ``scheduler``, else `LocalExecutor`."""
        if self.workers or self.scheduler:
            return DaskExecutor(scheduler=self.scheduler, workers=self.workers,
                                threads_per_worker=self.threads_per_worker,
                                retries=self.retries,
                                performance_report=self.performance_report)
        return LocalExecutor()


@dataclass
class RunSummary:
    """What a run did: stars in/out, fraction with ``"00000000"``, seconds per stage.

    Parameters
    ----------
    n_input, n_cut, n_written, n_good : int
        Stars read, removed by the input cuts, written, and with flag ``"00000000"``.
    outputs : list of str
        Catalogue files written.
    timings : dict of str to float
        Seconds per stage, in stage order (chunk stages summed over the chunks computed).
    bundle_id : str
        Identifier of the model bundle.
    resumed_chunks : int
        Chunks reused from an interrupted run (not computed again).
    n_chunks, n_computed : int
        Chunks of the run, and those computed by this call.
    executor : str
        ``'local'`` or ``'dask'``.
    work_dir : str
        The run's work directory.
    wall_seconds : float
        Wall time of the whole call (s).
    compute_seconds : float
        Wall time of the chunk stage (s): from the first task submitted to the last done.
    tasks : list of dict
        The records of the chunk tasks computed (key, stars, seconds, worker, ...).
    tsne : bool
        Whether the t-SNE digit of ``flag_boundary`` was computed; without it every star's
        t-SNE digit is ``"1"`` (not tested) and none can be ``00000000``.
    """

    n_input: int = 0
    n_cut: int = 0
    n_written: int = 0
    n_good: int = 0
    outputs: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    bundle_id: str = ""
    resumed_chunks: int = 0
    n_chunks: int = 0
    n_computed: int = 0
    executor: str = "local"
    work_dir: str = ""
    wall_seconds: float = 0.0
    compute_seconds: float = 0.0
    tasks: list[dict] = field(default_factory=list)
    tsne: bool = True

    @property
    def good_fraction(self) -> float:
        """Fraction of written stars with ``flag_boundary == "00000000"``."""
        return self.n_good / self.n_written if self.n_written else 0.0

    def lines(self) -> list[str]:
        """Human-readable summary.

        Returns
        -------
        list of str
            One line per item.
        """
        out = [f"stars in: {self.n_input}", f"removed by cuts: {self.n_cut}",
               f"stars written: {self.n_written}",
               f"flag_boundary == {GOOD_FLAG}: {self.n_good} ({100 * self.good_fraction:.1f} %"
               + ("" if self.tsne else "; the t-SNE digit is 1, not tested, in this run")
               + ")",
               f"model bundle: {self.bundle_id}",
               f"{self.n_written} stars in {self.n_chunks} chunk(s) ({self.n_computed} "
               f"computed, {self.resumed_chunks} already done; {self.executor} executor)"]
        out += [f"time {k}: {v:.1f} s" for k, v in self.timings.items()]
        out += [f"wrote {p}" for p in self.outputs]
        return out


@contextlib.contextmanager
def _stage(name: str, summary: RunSummary) -> Iterator[None]:
    t0 = time.perf_counter()
    log.info(f"stage {name} ...")
    try:
        yield
    finally:
        summary.timings[name] = summary.timings.get(name, 0.0) + time.perf_counter() - t0


# -- inputs ---------------------------------------------------------------------------
def _simulated_store(run: CatalogRun, work_dir: Path) -> Path:
    from ..io.store import Store
    from ..simulate.survey import simulate_store

    path = work_dir / f"simulated-seed{run.seed}-n{run.n_stars}.h5"
    meta_ok = False
    if path.exists():
        with contextlib.suppress(StoreError, OSError, ValueError), Store.open(path) as st:
            meta_ok = (st.meta.get("n") == run.n_stars and st.meta.get("seed") ==
                       repr(run.seed) and len(st) == run.n_stars)
    if not meta_ok:
        simulate_store(path, run.n_stars, seed=run.seed, kind="observed", overwrite=True,
                       progress=run.progress)
    return path


def _input_store(run: CatalogRun, work_dir: Path, summary: RunSummary) -> Path:
    if run.source not in SOURCES:
        raise InputDataError(f"Unknown source '{run.source}'; use one of {SOURCES}.")
    if run.source == "simulated":
        if run.store is not None:
            raise InputDataError("A store is read by the 'gaia' and 'files' sources; the "
                                 "'simulated' source simulates its own survey (n_stars).")
        work_dir.mkdir(parents=True, exist_ok=True)
        with _stage("simulate", summary):
            return _simulated_store(run, work_dir)
    if run.store is None:
        hint = (("create one with ", Call("fetch_to_store")) if run.source == "gaia" else
                ("create one with ", Call("ingest_to_store"), " or ", Call("simulate_store")))
        raise InputDataError(f"Source '{run.source}' needs a store (",
                             Param("store", placeholder="PATH"), ": an HDF5 store or shard "
                             "manifest); ", *hint, ".")
    return Path(run.store)


def _check_source(src, path: Path) -> None:
    from ..model.predict import INPUT_COLUMNS

    if len(src) == 0:
        raise InputDataError(f"Store {path} is empty: no stars to parameterise.")
    src.require_columns(INPUT_COLUMNS, "by the model")
    probe = src.read(0, min(len(src), 2000), columns=["flux"])["flux"]
    if not np.isfinite(probe).any():
        raise InputDataError(
            f"Store {path} has no RVS spectra (flux is NaN for its first {len(probe)} stars); "
            "fetch the spectra (gaiarvs-cnn fetch gaia ... downloads them with DataLink).")


def _partitions(src, chunk_size: int, n_rows: int) -> list[Partition]:
    """The chunks of the first ``n_rows`` rows (shards are never crossed)."""
    parts = []
    for p in src.partitions(chunk_size):
        if p.row0 >= n_rows:
            break
        stop = min(p.stop, p.start + n_rows - p.row0)
        parts.append(Partition(p.index, p.path, p.start, stop, p.row0))
    return parts


# -- model ----------------------------------------------------------------------------
def _bundle_path(run: CatalogRun, work_dir: Path, summary: RunSummary, local: bool) -> Path:
    from ..model.bundle import demo_bundle_path, read_bundle_id

    with _stage("model", summary):
        if run.train:
            if run.model is not None:
                raise InputDataError("Give either a model bundle or train=True, not both.")
            path = _train_bundle(run, work_dir).path
        else:
            path = Path(run.model) if run.model is not None else demo_bundle_path()
        if local:  # load (and check) it now; workers load it themselves
            bundle = load_bundle(path)
            if run.tsne:
                bundle.tsne_reference()
            summary.bundle_id = bundle.bundle_id
        else:
            summary.bundle_id = read_bundle_id(path)
    return Path(path).resolve()


def _train_bundle(run: CatalogRun, work_dir: Path):
    from ..model.demo import DEMO_CONFIG, DEMO_SETTINGS
    from ..model.training import train_ensemble
    from ..simulate.survey import simulate_store

    store = work_dir / f"simulated-training-seed{run.seed + 1}-n{run.train_stars}.h5"
    if not store.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        simulate_store(store, run.train_stars, seed=run.seed + 1, kind="training",
                       progress=run.progress)
    return train_ensemble(store, run.trained_bundle_dir, DEMO_CONFIG,
                          n_splits=DEMO_SETTINGS["n_splits"], n_models=DEMO_SETTINGS["n_models"],
                          epochs=run.train_epochs, seed=run.seed,
                          tsne_max_stars=DEMO_SETTINGS["tsne_max_stars"], progress=run.progress,
                          description="trained by gaiarvs-cnn produce-catalog --train")


# -- work directory -------------------------------------------------------------------
def _identity(run: CatalogRun, src, bundle_id: str, n_rows: int, chunk_size: int) -> dict:
    from ..version import __version__
    from .state import input_identity

    if run.source == "simulated":
        inp = {"simulated": {"n_stars": int(run.n_stars), "seed": int(run.seed)}}
    else:
        inp = input_identity(src)
    return {"version": __version__, "source": run.source, "input": inp, "n_rows": n_rows,
            "chunk_size": chunk_size, "limit": run.limit, "bundle_id": bundle_id,
            "tsne": bool(run.tsne), "precision": run.precision}


def _check_resume(run: CatalogRun, work_dir: Path, identity: dict) -> None:
    """On resume without this run's work directory: say why nothing can be resumed."""
    if (work_dir / RUN_FILE).exists():
        return
    first = run.targets()[0]
    others = sorted(first.parent.glob(f"{first.stem}.work-*"),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for other in others:
        doc = read_run_file(other)
        if doc is None or doc.get("state_version") != STATE_VERSION:
            continue
        old = doc.get("identity", {})
        changed = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
        raise InputDataError(
            f"Cannot resume from {other}: {changed} differ(s) from the interrupted run. Run "
            "again without resume (starts over) or with the original input and options.")
    log.warning(f"Nothing to resume for {first} (no interrupted run): starting from the "
                "first chunk.")


# -- the run --------------------------------------------------------------------------
def _cuts(bundle_path: Path) -> str:
    """The input cuts of the bundle's network (only its branches, `usable_cuts`)."""
    from ..model.bundle import read_bundle_config

    return usable_cuts(read_bundle_config(bundle_path).inputs)


def _provenance(run: CatalogRun, store: Path, bundle_path: Path, bundle_id: str,
                n_input: int) -> dict:
    selection = {"source": run.source, "store": Path(store).name, "limit": run.limit,
                 "cuts": _cuts(bundle_path)}
    if run.source == "simulated":
        selection.update(n_stars=run.n_stars, seed=run.seed)
    out = {"bundle_id": bundle_id, "bundle": Path(bundle_path).name,
           "input_selection": selection, "n_input": n_input}
    if run.precision != "float32":
        out["precision"] = run.precision
    return out


def _compute(run: CatalogRun, executor, todo: list[Partition], args: tuple, n_rows: int,
             summary: RunSummary, on_chunk) -> None:
    bar = tqdm(total=n_rows, unit="star", desc=f"cuts+predict+flags ({executor.name})",
               disable=not run.progress)
    bar.update(n_rows - sum(len(p) for p in todo))
    t0 = time.perf_counter()
    try:
        for record in executor.run(todo, args, progress=bar.update, on_chunk=on_chunk):
            summary.tasks.append(record)
            summary.n_computed += bool(record["computed"])
            for name, seconds in record["timings"].items():
                summary.timings[name] = summary.timings.get(name, 0.0) + seconds
    finally:
        bar.close()
        summary.compute_seconds = time.perf_counter() - t0


def produce_catalog(run: CatalogRun, on_chunk: Callable[[int], None] | None = None, *,
                    executor=None) -> RunSummary:
    """Produce the catalogue(s) of ``run``; return a `RunSummary`.

    Parameters
    ----------
    run : CatalogRun
        Options.
    on_chunk : callable, optional
        Called with the chunk index after each chunk is saved (progress reporting).
    executor : `LocalExecutor` or `DaskExecutor`, optional
        Where the chunks run (default: `CatalogRun.executor`). The catalogue does not
        depend on it.

    Returns
    -------
    RunSummary

    Raises
    ------
    OutputExistsError
        If a target exists and ``run.overwrite`` is False (checked before any work).
    RunLockedError
        If another run is writing the same output (or work directory).
    InputDataError, StoreError, ModelBundleError
        For an unusable store or bundle, or a run that cannot be resumed, with what to do.
    ChunkFailedError
        If chunks failed on Dask after their retries (the finished ones are kept).
    CatalogWriteError
        If writing fails; earlier catalogues are untouched and the run can be resumed.
    """
    from ..model.predict import check_precision
    from ..settings import conf

    t_start = time.perf_counter()
    check_precision(run.precision)
    targets = run.targets()
    for target in targets:
        if target.exists() and not run.overwrite:
            raise OutputExistsError(target, what="catalogue", hint=_REPLACE_HINT)
    executor = executor or run.executor()
    summary = RunSummary(executor=executor.name, tsne=bool(run.tsne))
    work_dir = run.partial_dir
    summary.work_dir = str(work_dir)
    with contextlib.ExitStack() as locks:
        locks.callback(executor.close)
        locks.enter_context(RunLock(run.lock_path, f"catalogue {targets[0]}"))
        if run.work_dir is not None:
            locks.enter_context(RunLock(work_dir / ".lock", f"work directory {work_dir}"))
        store = _input_store(run, work_dir, summary)
        with open_source(store) as src:
            _check_source(src, store)
            n_rows = len(src) if run.limit is None else min(len(src), int(run.limit))
            size = int(run.chunk_size or conf.chunk_size)
            bundle_path = _bundle_path(run, work_dir, summary,
                                       isinstance(executor, LocalExecutor))
            identity = _identity(run, src, summary.bundle_id, n_rows, size)
            parts = _partitions(src, size, n_rows)
        if run.resume and run.work_dir is None:
            _check_resume(run, work_dir, identity)
        token = prepare_work_dir(work_dir, identity, resume=run.resume,
                                 explicit=run.work_dir is not None, overwrite=run.overwrite)
        todo = [p for p in parts if not chunk_is_complete(work_dir, p, token)]
        summary.n_chunks, summary.resumed_chunks = len(parts), len(parts) - len(todo)
        log.info(f"{len(parts)} chunk(s): {summary.resumed_chunks} already done, {len(todo)} "
                 f"to compute ({executor.name} executor).")
        _compute(run, executor, todo, (str(bundle_path), str(work_dir.resolve()), token,
                                       bool(run.tsne), run.precision), n_rows, summary,
                 on_chunk)
        with _stage("write", summary):
            metas = [read_chunk_meta(chunk_path(work_dir, p)) for p in parts]
            summary.n_input = sum(int(m["n_input"]) for m in metas)
            n_out = sum(int(m["n_output"]) for m in metas)
            if n_out == 0:
                raise InputDataError(f"No star of {store} passed the input cuts "
                                     f"({_cuts(bundle_path)}).")
            provenance = _provenance(run, store, bundle_path, summary.bundle_id,
                                     summary.n_input)
            summary.n_written, summary.n_good = merge_chunks(
                work_dir, parts, targets, provenance, formats=parse_formats(run.formats),
                progress=run.progress,
                client=executor.active_client)
            summary.outputs = [str(t) for t in targets]
        summary.n_cut = summary.n_input - summary.n_written
        if run.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
        else:  # temporary files of workers killed while writing a chunk
            for stale in work_dir.glob(".part-*"):
                stale.unlink(missing_ok=True)
    summary.wall_seconds = time.perf_counter() - t_start
    for line in summary.lines():
        log.info(line)
    return summary


def run_catalog(**options) -> RunSummary:
    """`produce_catalog` with keyword options of `CatalogRun` (convenience).

    Parameters
    ----------
    **options
        Fields of `CatalogRun`.

    Returns
    -------
    RunSummary
    """
    known = {f.name for f in fields(CatalogRun)}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"Unknown option(s) {sorted(unknown)}; use {sorted(known)}.")
    return produce_catalog(CatalogRun(**options))

