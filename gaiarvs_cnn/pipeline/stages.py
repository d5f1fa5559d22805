"""The stages of a run and the files each writes in the run's folder.

Each stage is a function ``stage(config, folder, progress) -> dict`` that calls the library
function of its step and returns a record (what it read, wrote and when the archives
answered) for the provenance. Each is resumable through its own state, so that a stage
interrupted at any point continues where it stopped when started again:

=================  ===================================================================
stage              what it runs; its state
=================  ===================================================================
fetch-training     APOGEE DR17 labels, then `GaiaArchive.fetch_to_store` with the
                   training cuts into ``data/training_all.h5`` (done chunks are kept),
                   split by source_id into ``data/training.h5`` and
                   ``data/calibration.h5`` (atomic files)
train              `~gaiarvs_cnn.model.train_ensemble` into ``bundle/`` (finished
                   members are kept)
calibrate          `~gaiarvs_cnn.model.calibration.calibrate_bundle` on the held-out
                   stars (deterministic: a repeat gives the same bundle)
fetch-observed     `GaiaArchive.fetch_to_store` (ADQL or id list) into
                   ``data/observed.h5``, or `~gaiarvs_cnn.archives.bulk.fetch_bulk` into
                   ``data/observed_bulk/``
predict            `~gaiarvs_cnn.production.produce_catalog` into ``catalogue/`` with its
                   work directory ``work/predict/`` (finished chunks are kept; removed
                   once the catalogue is written)
fetch-references   `~gaiarvs_cnn.archives.catalogues.query_reference` per kind into
                   ``references/<kind>.ecsv`` (atomic; present files are kept)
validate           `~gaiarvs_cnn.validation.pipeline.validate_catalog` with the fetched
                   references into ``validation/`` (``summary.html`` with the figures)
=================  ===================================================================
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from astropy import log

from ..exceptions import ArchiveError, InputDataError
from .config import RunConfig

__all__ = ["STAGES", "RunFolder", "utc_now"]


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class RunFolder:
    """The files of a run in its folder.

    Parameters
    ----------
    root : path-like
        The run's folder (``run.output`` of the configuration).
    """

    def __init__(self, root):
        self.root = Path(root)
        self.config = self.root / "config.toml"
        self.provenance = self.root / "provenance.json"
        self.log = self.root / "run.log"
        self.state = self.root / "state"
        self.training_all = self.root / "data" / "training_all.h5"
        self.training = self.root / "data" / "training.h5"
        self.calibration = self.root / "data" / "calibration.h5"
        self.observed = self.root / "data" / "observed.h5"
        self.observed_bulk = self.root / "data" / "observed_bulk"
        self.bundle = self.root / "bundle"
        self.catalogue = self.root / "catalogue"
        self.predict_work = self.root / "work" / "predict"
        self.references = self.root / "references"
        self.validation = self.root / "validation"

    def done_file(self, stage: str) -> Path:
        """The file that records ``stage`` as done (its provenance record)."""
        return self.state / f"{stage}.json"

    def observed_store(self, config: RunConfig) -> Path:
        """The store of the observed stars (an HDF5 store or a shard manifest)."""
        if config.observed.kind == "bulk":
            return self.observed_bulk / "manifest.json"
        return self.observed

    def catalogue_files(self, config: RunConfig) -> list[Path]:
        """The catalogue files, one per format."""
        from ..catalog import output_paths, parse_formats

        return output_paths(self.catalogue, parse_formats(config.catalogue.formats))


def _archive(config: RunConfig):
    from ..archives.aip import AIPArchive
    from ..archives.gaia import GaiaArchive

    cls = AIPArchive if config.archive.service == "aip" else GaiaArchive
    return cls(max_ids=config.archive.max_ids)


def _fetch_report(report, what: str) -> dict:
    if not report.ok:
        raise ArchiveError(f"{what}: {len(report.failed_chunks)} chunk(s) failed after every "
                           "retry; run again to resume (finished chunks are kept).")
    return {"stored": report.stored, "skipped_chunks": report.skipped_chunks,
            "summary": report.summary()}


def calibration_mask(source_ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Stars held out for the calibration: a fixed fraction chosen by source_id.

    A star's choice depends only on its source_id and the seed (a splitmix64 hash), so it
    does not change with the order or the number of stars fetched.

    Parameters
    ----------
    source_ids : array of int
    fraction : float
        In [0, 1).
    seed : int

    Returns
    -------
    numpy.ndarray of bool
        True for the held-out stars.
    """
    with np.errstate(over="ignore"):
        z = np.asarray(source_ids, dtype=np.int64).view(np.uint64) + np.uint64(
            (0x9E3779B97F4A7C15 * (int(seed) + 1)) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / 2.0**53 < fraction


def _write_subset(source: Path, target: Path, keep, what: str) -> int:
    """Copy the stars of ``source`` for which ``keep(source_ids)`` is True (atomic)."""
    from ..io.store import Store
    from ..utils.atomic import atomic_path

    n = 0
    with Store.open(source) as src, atomic_path(target, suffix=".h5") as tmp:
        meta = {**src.meta, "subset": what, "subset_of": source.name}
        with Store.create(tmp, extra_columns=src.extra_columns, meta=meta) as out:
            for batch in src.iter_chunks():
                part = batch[keep(batch["source_id"])]
                if len(part):
                    out.append(part)
                    n += len(part)
    return n


def fetch_training(config: RunConfig, folder: RunFolder, progress: bool) -> dict:
    """Stage ``fetch-training``: the labelled sample, then the training/calibration split."""
    from ..archives.apogee import query_apogee

    labels = query_apogee(cuts=config.training.cuts)
    answered = utc_now()
    if len(labels) == 0:
        raise InputDataError("The APOGEE DR17 selection returned no star: nothing to train "
                             "on (check [training] and the VizieR service).")
    archive = _archive(config)
    folder.training_all.parent.mkdir(parents=True, exist_ok=True)
    report = archive.fetch_to_store(folder.training_all, labels=labels,
                                    cuts=config.training.cuts,
                                    training=config.training.cuts, progress=progress)
    record = _fetch_report(report, "fetch-training")
    frac, seed = config.training.calibration_fraction, config.run.seed
    n_train = _write_subset(folder.training_all, folder.training,
                            lambda ids: ~calibration_mask(ids, frac, seed), "training")
    n_cal = (_write_subset(folder.training_all, folder.calibration,
                           lambda ids: calibration_mask(ids, frac, seed), "calibration")
             if frac > 0 else 0)
    if n_train == 0:
        raise InputDataError(f"No labelled star of {folder.training_all} is left for "
                             "training; lower training.calibration_fraction.")
    return {**record, "labels_rows": len(labels), "labels_answered": answered,
            "labels_query": "VizieR III/286/catalog (APOGEE DR17 allStar), quality cuts "
                            f"{'on' if config.training.cuts else 'off'}",
            "gaia_service": archive.name, "gaia_tap_url": archive.tap_url,
            "spectra_answered": utc_now(), "n_training": n_train, "n_calibration": n_cal}


def network_config(config: RunConfig):
    """The `~gaiarvs_cnn.model.NetworkConfig` that ``[network]`` names."""
    from ..model import PAPER_CONFIG, NetworkConfig
    from ..model.demo import DEMO_CONFIG

    name = config.network.config
    net = {"paper": PAPER_CONFIG, "demo": DEMO_CONFIG}.get(name)
    if net is None:
        net = NetworkConfig.from_json(config.resolve(name).read_text())
    return net.replace(inputs=("rvs",)) if config.network.rvs_only else net


def train(config: RunConfig, folder: RunFolder, progress: bool) -> dict:
    """Stage ``train``: the ensemble on ``data/training.h5``."""
    from ..model import train_ensemble

    net = config.network
    executor = None
    if net.workers > 1:   # members as tasks of a local Dask cluster (production.executors)
        from ..production import DaskExecutor

        executor = DaskExecutor(workers=net.workers, threads_per_worker=1)
    try:
        bundle = train_ensemble(folder.training, folder.bundle, network_config(config),
                                n_splits=net.splits, n_models=net.models, epochs=net.epochs,
                                seed=config.run.seed, max_stars=config.training.max_stars,
                                tsne=net.tsne, progress=progress, executor=executor,
                                description=f"gaiarvs-cnn run {config.path.name}")
    finally:
        if executor is not None:
            executor.close()
    return {"bundle_id": bundle.bundle_id, "n_members": bundle.n_members,
            "training_seconds": bundle.meta.get("training_seconds")}


def calibrate(config: RunConfig, folder: RunFolder, progress: bool) -> dict:
    """Stage ``calibrate``: ``sigma_*`` on the held-out stars (skipped when none)."""
    if config.training.calibration_fraction == 0:
        return {"skipped": "training.calibration_fraction = 0"}
    from ..model.calibration import calibrate_bundle

    bundle = calibrate_bundle(folder.bundle, folder.calibration, progress=progress)
    return {"bundle_id": bundle.bundle_id, "n_stars": bundle.meta["calibration"]["n_stars"]}


def fetch_observed(config: RunConfig, folder: RunFolder, progress: bool) -> dict:
    """Stage ``fetch-observed``: the stars to parameterise."""
    obs = config.observed
    if obs.kind == "bulk":
        from ..archives.bulk import fetch_bulk

        report = fetch_bulk(folder.observed_bulk, ranges=list(obs.bulk_ranges) or None,
                            limit=obs.bulk_limit, progress=progress)
        if not report.ok:
            raise ArchiveError("fetch-observed: some bulk ranges failed; run again to "
                               "resume (finished ranges are kept).")
        return {"summary": report.summary(), "answered": utc_now()}
    archive = _archive(config)
    folder.observed.parent.mkdir(parents=True, exist_ok=True)
    if obs.kind == "query":
        report = archive.fetch_to_store(folder.observed, query=obs.query, cuts=obs.cuts,
                                        progress=progress)
    else:
        from ..io.source_ids import read_source_ids

        report = archive.fetch_to_store(folder.observed,
                                        source_ids=read_source_ids(config.resolve(
                                            obs.source_ids)),
                                        cuts=obs.cuts, progress=progress)
    return {**_fetch_report(report, "fetch-observed"), "gaia_service": archive.name,
            "gaia_tap_url": archive.tap_url, "query": obs.query, "answered": utc_now()}


def predict(config: RunConfig, folder: RunFolder, progress: bool) -> dict:
    """Stage ``predict``: the catalogue of the observed stars with the run's bundle."""
    from ..production import run_catalog

    ex = config.executor
    summary = run_catalog(
        source="files", store=folder.observed_store(config), model=folder.bundle,
        out=folder.catalogue, formats=list(config.catalogue.formats),
        chunk_size=config.catalogue.chunk_size, resume=True, limit=config.observed.limit,
        overwrite=True, progress=progress, tsne=config.network.tsne,
        work_dir=folder.predict_work, scheduler=ex.scheduler if ex.kind == "dask" else None,
        workers=ex.workers if ex.kind == "dask" else None,
        threads_per_worker=ex.threads_per_worker)
    # the chunks are merged into the catalogue files: the work directory has served
    shutil.rmtree(folder.predict_work, ignore_errors=True)
    return {"bundle_id": summary.bundle_id, "n_input": summary.n_input,
            "n_written": summary.n_written, "n_good": summary.n_good, "tsne": summary.tsne,
            "executor": summary.executor, "outputs": [Path(p).name for p in summary.outputs]}


def _catalogue_ids(config: RunConfig, folder: RunFolder) -> np.ndarray:
    from ..catalog import read_catalog

    return np.asarray(read_catalog(folder.catalogue_files(config)[0])["source_id"],
                      dtype=np.int64)


def fetch_references(config: RunConfig, folder: RunFolder, progress: bool) -> dict:
    """Stage ``fetch-references``: each reference kind of ``[references]`` for the
    catalogue's stars, in the canonical schema."""
    from ..archives.catalogues import query_reference
    from ..utils.atomic import atomic_path

    ids = _catalogue_ids(config, folder)
    record = {}
    for kind in config.references.kinds:
        path = folder.references / f"{kind}.ecsv"
        if path.exists():
            record[kind] = {"rows": None, "kept": path.name}
            continue
        table = query_reference(kind, ids, good_flags=(kind == "gsp-spec"
                                                       and config.references.gsp_good_flags))
        with atomic_path(path, suffix=".ecsv") as tmp:
            table.write(tmp, format="ascii.ecsv", overwrite=True)
        record[kind] = {"rows": len(table), "answered": utc_now()}
        log.info(f"reference {kind}: {len(table)} row(s) -> {path}")
    return record


def validate(config: RunConfig, folder: RunFolder, progress: bool) -> dict:
    """Stage ``validate``: `~gaiarvs_cnn.validation.pipeline.validate_catalog` with the
    fetched references (no other source), the report in ``validation/``."""
    from astropy.table import Table

    from ..validation.pipeline import validate_catalog

    refs = {kind: Table.read(folder.references / f"{kind}.ecsv")
            for kind in config.references.kinds}
    catalogue = folder.catalogue_files(config)[0]
    run = validate_catalog(
        catalogue, against=list(config.references.against), source=None, references=refs,
        store=folder.observed_store(config), out=folder.validation,
        formats=list(config.references.figure_formats), overwrite=True, progress=progress,
        meta={"catalogue": catalogue.name, "store": folder.observed_store(config).name,
              "run": config.path.name,
              "references": ", ".join(f"{k}: archive" for k in refs)})
    return {"comparisons": run.comparisons, "summary": run.summary.name,
            "html": (folder.validation / "summary.html").name}


#: The stages in order: name -> function.
STAGES = {"fetch-training": fetch_training, "train": train, "calibrate": calibrate,
          "fetch-observed": fetch_observed, "predict": predict,
          "fetch-references": fetch_references, "validate": validate}
