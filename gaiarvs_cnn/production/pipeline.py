"""``produce-catalog`` orchestration: store -> cuts -> model -> predict -> flags -> catalogue.

Stages (each timed, each with a progress bar where it loops):

1. ``simulate`` -- only for ``source="simulated"``: the built-in survey is simulated into
   ``<out>.partial/simulated_observed.h5`` (deterministic for a seed).
2. ``model`` -- load the bundle (default: the shipped demo bundle) or train a fresh one
   (``train=True``), and its t-SNE reference.
3. ``read+cuts``, ``predict``, ``flags`` -- chunk by chunk: read, the usability cuts
   (`usable_mask`), the CNN labels (`gaiarvs_cnn.model.predict_batch`) and
   ``flag_boundary`` (`predict_chunk`); every finished chunk is saved in
   ``<out>.partial/`` and recorded in ``state.json``.
4. ``write`` -- the chunks are merged into one table and written as FITS and/or VOTable
   to temporary files, then renamed to the final names.

Resuming (``resume=True``) continues after the last completed chunk, provided the input
store, the bundle, the chunk size and the limit are unchanged (``state.json`` records
them); chunks are independent and identical, so the catalogue equals that of an
uninterrupted run. Existing catalogues are refused unless ``overwrite=True``; if any
stage fails, nothing is written under the final names and earlier catalogues are intact.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from astropy import log
from tqdm import tqdm

from ..catalog import (
    CATALOG_FORMATS,
    build_catalog_table,
    format_of,
    output_paths,
    parse_formats,
    write_catalog,
)
from ..exceptions import InputDataError, OutputExistsError, StoreError
from ..flags import GOOD_FLAG, TSNEReference, flag_boundary
from ..utils.formats import format_from_suffix

__all__ = [
    "CatalogRun",
    "RunSummary",
    "SOURCES",
    "DEFAULT_N_STARS",
    "predict_chunk",
    "produce_catalog",
    "run_catalog",
    "usable_mask",
    "load_tsne_reference",
]

#: Input sources of ``produce-catalog``.
SOURCES = ("simulated", "gaia", "files")
#: Stars of the default simulated survey (a few % out of the training range).
DEFAULT_N_STARS = 20_000
#: Seed of the default simulated survey.
DEFAULT_SEED = 7
_STATE = "state.json"
_SIM_STORE = "simulated_observed.h5"
_STATE_VERSION = 1


@dataclass
class CatalogRun:
    """Options of one catalogue production (see `produce_catalog`).

    Parameters
    ----------
    source : {'simulated', 'gaia', 'files'}
        Where the stars come from; ``gaia`` and ``files`` read ``store``.
    store : path, optional
        HDF5 store or shard manifest (``gaiarvs-cnn fetch gaia`` / ``ingest`` write one).
    model : path, optional
        Model bundle directory (default: the shipped demo bundle).
    train : bool
        Train a fresh (demo-size) ensemble on simulated training stars instead.
    out : path
        Output directory, or a file name ending in ``.fits`` / ``.vot``.
    formats : str
        ``'both'`` (FITS and VOTable), a format or a list (`gaiarvs_cnn.catalog.parse_formats`).
    chunk_size : int, optional
        Stars per chunk (default ``gaiarvs_cnn.conf.chunk_size``).
    resume : bool
        Continue an interrupted run from its last completed chunk.
    limit : int, optional
        Use only the first ``limit`` stars of the store.
    n_stars, seed : int
        Size and seed of the simulated survey.
    overwrite : bool
        Replace existing catalogues.
    progress : bool
        Show progress bars.
    train_stars, train_epochs : int
        Simulated training stars and maximum epochs for ``train=True``.
    """

    source: str = "simulated"
    store: Path | None = None
    model: Path | None = None
    train: bool = False
    out: Path = Path("catalog")
    formats: str = "both"
    chunk_size: int | None = None
    resume: bool = False
    limit: int | None = None
    n_stars: int = DEFAULT_N_STARS
    seed: int = DEFAULT_SEED
    overwrite: bool = False
    progress: bool = True
    train_stars: int = 4000
    train_epochs: int = 10

    def targets(self) -> list[Path]:
        """The final catalogue paths.

        Returns
        -------
        list of Path
            One per format, from ``out`` and ``formats``.
        """
        out = Path(self.out)
        if format_from_suffix(out) in CATALOG_FORMATS:        # a file name, not a directory
            return [out.with_suffix(CATALOG_FORMATS[f]) for f in parse_formats(self.formats)]
        return output_paths(out, self.formats)

    @property
    def trained_bundle_dir(self) -> Path:
        """Where ``train=True`` trains (and keeps) its bundle: ``<out dir>/<name>_bundle``."""
        first = self.targets()[0]
        return first.parent / f"{first.stem}_bundle"

    @property
    def partial_dir(self) -> Path:
        """``<out>.partial/``: the resumable work directory of this run."""
        first = self.targets()[0]
        return first.parent / f"{first.stem}.partial"


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
        Seconds per stage, in stage order.
    bundle_id : str
        Identifier of the model bundle.
    resumed_chunks : int
        Chunks reused from an interrupted run.
    """

    n_input: int = 0
    n_cut: int = 0
    n_written: int = 0
    n_good: int = 0
    outputs: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    bundle_id: str = ""
    resumed_chunks: int = 0

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
               f"flag_boundary == {GOOD_FLAG}: {self.n_good} ({100 * self.good_fraction:.1f} %)",
               f"model bundle: {self.bundle_id}"]
        if self.resumed_chunks:
            out.append(f"chunks reused from the interrupted run: {self.resumed_chunks}")
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


def usable_mask(batch) -> np.ndarray:
    """Stars the network can parameterise (the pipeline's input cuts).

    `gaiarvs_cnn.model.predict.usable_inputs`: an RVS spectrum that passes the physical
    sanity rules (finite continuum, no absurd or many negative pixels, normalised), both
    XP spectra (non-zero first coefficients, all 2 x 55 coefficients finite) and finite G,
    BP, RP and parallax.

    Parameters
    ----------
    batch : `~gaiarvs_cnn.io.store.StarBatch`
        Stars read from a store.

    Returns
    -------
    ndarray of bool
        True for stars kept.
    """
    from ..model.predict import usable_inputs

    return usable_inputs(batch)


def load_tsne_reference(bundle) -> TSNEReference | None:
    """The bundle's t-SNE reference.

    Parameters
    ----------
    bundle : `~gaiarvs_cnn.model.ModelBundle`
        A loaded bundle.

    Returns
    -------
    `~gaiarvs_cnn.flags.TSNEReference` or None
        None (with a warning) when the bundle has no ``tsne/`` directory.
    """
    if not (bundle.tsne_dir / "tsne_reference.json").exists():
        log.warning(f"Model bundle {bundle.path} has no t-SNE reference (tsne/): the t-SNE "
                    "digit of flag_boundary will be '1' (not tested) for every star.")
        return None
    return TSNEReference.load(bundle.tsne_dir)


def predict_chunk(bundle, tsne_ref: TSNEReference | None, batch,
                  timings: dict[str, float] | None = None
                  ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Labels and ``flag_boundary`` of one chunk of usable stars.

    Parameters
    ----------
    bundle : `~gaiarvs_cnn.model.ModelBundle`
    tsne_ref : `~gaiarvs_cnn.flags.TSNEReference` or None
        None sets the t-SNE digit to ``"1"`` (not tested).
    batch : `~gaiarvs_cnn.io.store.StarBatch`
        Stars passing `usable_mask`.
    timings : dict, optional
        Seconds spent are added to its ``predict`` (CNN) and ``flags`` (t-SNE, ranges).

    Returns
    -------
    (dict, ndarray of str)
        `~gaiarvs_cnn.model.predict_batch` output and the flags.
    """
    from ..model import predict_batch

    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    pred = predict_batch(bundle, batch)
    t1 = time.perf_counter()
    like = (tsne_ref.training_like(batch["flux"]) if tsne_ref is not None
            else np.zeros(len(batch), dtype=bool))
    flags = flag_boundary(pred, batch, bundle.ranges, like)
    t2 = time.perf_counter()
    timings["predict"] = timings.get("predict", 0.0) + t1 - t0
    timings["flags"] = timings.get("flags", 0.0) + t2 - t1
    return pred, flags


# -- inputs ---------------------------------------------------------------------------
def _simulated_store(run: CatalogRun) -> Path:
    from ..simulate.survey import simulate_store

    path = run.partial_dir / _SIM_STORE
    meta_ok = False
    if path.exists():
        with contextlib.suppress(StoreError, OSError, ValueError):
            from ..io.store import Store

            with Store.open(path) as st:
                meta_ok = (st.meta.get("n") == run.n_stars and st.meta.get("seed") ==
                           repr(run.seed) and len(st) == run.n_stars)
    if not meta_ok:
        simulate_store(path, run.n_stars, seed=run.seed, kind="observed", overwrite=True,
                       progress=run.progress)
    return path


def _input_store(run: CatalogRun, summary: RunSummary) -> Path:
    if run.source not in SOURCES:
        raise InputDataError(f"Unknown source '{run.source}'; use one of {SOURCES}.")
    if run.source == "simulated":
        if run.store is not None:
            raise InputDataError("--store is for --source gaia|files; --source simulated "
                                 "simulates its own survey (see --n-stars).")
        with _stage("simulate", summary):
            return _simulated_store(run)
    if run.store is None:
        hint = ("create one with 'gaiarvs-cnn fetch gaia ...'" if run.source == "gaia"
                else "create one with 'gaiarvs-cnn ingest' or 'gaiarvs-cnn simulate'")
        raise InputDataError(f"--source {run.source} needs --store PATH (an HDF5 store or "
                             f"shard manifest); {hint}.")
    return Path(run.store)


def _check_source(src, path: Path) -> None:
    from ..model.predict import INPUT_COLUMNS

    if len(src) == 0:
        raise InputDataError(f"Store {path} is empty: no stars to parameterise.")
    names = [s.name for s in src.specs]
    missing = [c for c in INPUT_COLUMNS if c not in names]
    if missing:
        raise InputDataError(f"Store {path} lacks column(s) {missing} needed by the model.")
    probe = src.read(0, min(len(src), 2000), columns=["flux"])["flux"]
    if not np.isfinite(probe).any():
        raise InputDataError(
            f"Store {path} has no RVS spectra (flux is NaN for its first {len(probe)} stars); "
            "fetch the spectra (gaiarvs-cnn fetch gaia ... downloads them with DataLink).")


def _load_model(run: CatalogRun, summary: RunSummary):
    """(bundle, t-SNE reference or None): loaded, or trained when ``run.train``."""
    from ..model import ModelBundle

    with _stage("model", summary):
        if run.train:
            if run.model is not None:
                raise InputDataError("Give either --model or --train, not both.")
            bundle = _train_bundle(run)
        else:
            bundle = ModelBundle.load(run.model)
        return bundle, load_tsne_reference(bundle)


def _train_bundle(run: CatalogRun):
    from ..model.demo import DEMO_CONFIG, DEMO_SETTINGS
    from ..model.training import train_ensemble
    from ..simulate.survey import simulate_store

    store = run.partial_dir / "simulated_training.h5"
    if not store.exists():
        simulate_store(store, run.train_stars, seed=run.seed + 1, kind="training",
                       progress=run.progress)
    return train_ensemble(store, run.trained_bundle_dir, DEMO_CONFIG,
                          n_splits=DEMO_SETTINGS["n_splits"], n_models=DEMO_SETTINGS["n_models"],
                          epochs=run.train_epochs, seed=run.seed,
                          tsne_max_stars=DEMO_SETTINGS["tsne_max_stars"], progress=run.progress,
                          description="trained by gaiarvs-cnn produce-catalog --train")


# -- resumable state ------------------------------------------------------------------
def _fingerprint(run: CatalogRun, store: Path, n_rows: int, chunk_size: int, bundle) -> dict:
    st = Path(store).stat()
    return {"state_version": _STATE_VERSION, "store": str(Path(store).resolve()),
            "store_size": st.st_size, "n_rows": n_rows, "chunk_size": chunk_size,
            "limit": run.limit, "bundle_id": bundle.bundle_id, "source": run.source}


def _prepare_partial(run: CatalogRun, fingerprint: dict) -> set[int]:
    """Create or check ``<out>.partial/``; return the indices of completed chunks."""
    part = run.partial_dir
    state_path = part / _STATE
    if run.resume and state_path.exists():
        state = json.loads(state_path.read_text())
        if state.get("fingerprint") != fingerprint:
            changed = sorted(k for k in fingerprint
                             if state.get("fingerprint", {}).get(k) != fingerprint[k])
            raise InputDataError(
                f"Cannot resume from {part}: {changed} differ from the interrupted run. Run "
                "again without --resume (starts over) or with the original options.")
        done = {int(i) for i in state.get("done", [])}
        return {i for i in done if (part / _chunk_name(i)).exists()}
    if part.exists() and not run.resume:
        for p in part.glob("chunk_*.npz"):
            p.unlink()
        with contextlib.suppress(FileNotFoundError):
            state_path.unlink()
    part.mkdir(parents=True, exist_ok=True)
    _write_state(part, fingerprint, set())
    return set()


def _write_state(part: Path, fingerprint: dict, done: set[int]) -> None:
    tmp = part / (_STATE + ".tmp")
    tmp.write_text(json.dumps({"fingerprint": fingerprint, "done": sorted(done)}, indent=1))
    os.replace(tmp, part / _STATE)


def _chunk_name(i: int) -> str:
    return f"chunk_{i:06d}.npz"


def _save_chunk(part: Path, i: int, pred: dict, flags: np.ndarray, n_in: int) -> None:
    tmp = part / (_chunk_name(i) + ".tmp.npz")
    np.savez(tmp, flag_boundary=flags, n_input=np.int64(n_in), **pred)
    os.replace(tmp, part / _chunk_name(i))


def _load_chunk(part: Path, i: int) -> tuple[dict, np.ndarray, int]:
    with np.load(part / _chunk_name(i)) as data:
        pred = {k: data[k] for k in data.files if k not in ("flag_boundary", "n_input")}
        return pred, data["flag_boundary"].astype("U8"), int(data["n_input"])


# -- the run --------------------------------------------------------------------------
def _refuse_existing(run: CatalogRun) -> None:
    existing = [p for p in run.targets() if p.exists()]
    if existing and not run.overwrite:
        raise OutputExistsError(
            f"{', '.join(map(str, existing))} already exist(s); pass --overwrite to replace "
            "(the old catalogue stays until the new one is complete) or choose --out.")


def _predict_chunks(run: CatalogRun, src, bundle, tsne_ref, fingerprint, done: set[int],
                    summary: RunSummary, on_chunk: Callable[[int], None] | None) -> int:
    part = run.partial_dir
    size, n_rows = fingerprint["chunk_size"], fingerprint["n_rows"]
    n_chunks = -(-n_rows // size)
    summary.resumed_chunks = len(done)
    bar = tqdm(total=n_rows, unit="star", desc="cuts+predict+flags", disable=not run.progress)
    bar.update(min(n_rows, sum(min(size, n_rows - i * size) for i in done)))
    for i in range(n_chunks):
        if i in done:
            continue
        lo, hi = i * size, min(n_rows, (i + 1) * size)
        t0 = time.perf_counter()
        batch = src.read(lo, hi)
        batch = batch[usable_mask(batch)]
        summary.timings["read+cuts"] = summary.timings.get("read+cuts", 0.0) + (
            time.perf_counter() - t0)
        pred, flags = predict_chunk(bundle, tsne_ref, batch, summary.timings)
        _save_chunk(part, i, pred, flags, hi - lo)
        done.add(i)
        _write_state(part, fingerprint, done)
        bar.update(hi - lo)
        if on_chunk is not None:
            on_chunk(i)
    bar.close()
    return n_chunks


def _provenance(run: CatalogRun, store: Path, bundle, n_input: int) -> dict:
    selection = {"source": run.source, "store": Path(store).name, "limit": run.limit,
                 "cuts": "finite RVS continuum, XP coefficients, G, BP, RP, parallax"}
    if run.source == "simulated":
        selection.update(n_stars=run.n_stars, seed=run.seed)
    return {"bundle_id": bundle.bundle_id, "bundle": Path(bundle.path).name,
            "input_selection": selection, "n_input": n_input}


def _write_outputs(run: CatalogRun, table, provenance: dict, summary: RunSummary) -> None:
    """Write every format to a staging name first, then rename all (all or nothing)."""
    staged = []
    try:
        for target in tqdm(run.targets(), desc="write", unit="file", disable=not run.progress):
            tmp = run.partial_dir / f"staged{target.suffix}"
            staged.append((write_catalog(table, tmp, format=format_of(target), overwrite=True,
                                         provenance=provenance), target))
        for tmp, target in staged:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            summary.outputs.append(str(target))
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def produce_catalog(run: CatalogRun, on_chunk: Callable[[int], None] | None = None
                    ) -> RunSummary:
    """Run the whole pipeline and write the catalogue(s); return a `RunSummary`.

    Parameters
    ----------
    run : CatalogRun
        Options.
    on_chunk : callable, optional
        Called with the chunk index after each chunk is saved (progress reporting).

    Returns
    -------
    RunSummary

    Raises
    ------
    OutputExistsError
        If a target exists and ``run.overwrite`` is False (checked before any work).
    InputDataError, StoreError, ModelBundleError
        For an unusable store or bundle, with what to do.
    CatalogWriteError
        If writing fails; earlier catalogues are untouched and the run can be resumed.
    """
    from ..io.shards import open_source
    from ..settings import conf

    _refuse_existing(run)
    summary = RunSummary()
    store = _input_store(run, summary)
    bundle, tsne_ref = _load_model(run, summary)
    summary.bundle_id = bundle.bundle_id
    with open_source(store) as src:
        _check_source(src, store)
        n_rows = len(src) if run.limit is None else min(len(src), int(run.limit))
        size = int(run.chunk_size or conf.chunk_size)
        fingerprint = _fingerprint(run, store, n_rows, size, bundle)
        done = _prepare_partial(run, fingerprint)
        log.info("stages read+cuts, predict, flags (chunk by chunk) ...")
        n_chunks = _predict_chunks(run, src, bundle, tsne_ref, fingerprint, done, summary,
                                   on_chunk)
    with _stage("write", summary):
        chunks = [_load_chunk(run.partial_dir, i) for i in range(n_chunks)]
        summary.n_input = sum(c[2] for c in chunks)
        provenance = _provenance(run, store, bundle, summary.n_input)
        table = build_catalog_table([c[0] for c in chunks], [c[1] for c in chunks], provenance)
        if len(table) == 0:
            raise InputDataError(f"No star of {store} passed the input cuts (finite RVS "
                                 "continuum, XP coefficients, G, BP, RP, parallax).")
        summary.n_written = len(table)
        summary.n_cut = summary.n_input - summary.n_written
        summary.n_good = int(np.sum(np.asarray(table["flag_boundary"]) == GOOD_FLAG))
        _write_outputs(run, table, provenance, summary)
    shutil.rmtree(run.partial_dir, ignore_errors=True)
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
    known = set(asdict(CatalogRun()))
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"Unknown option(s) {sorted(unknown)}; use {sorted(known)}.")
    return produce_catalog(CatalogRun(**options))

