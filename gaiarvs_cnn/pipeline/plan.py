"""What a run will do before it does it: the probe of its selections and services, and
the plan (requests, bytes, core-hours per stage) from the cost model
(`gaiarvs_cnn.pipeline.costs`).

The probe is the cheap part of the run done first: it resolves the training and observed
selections to star counts (the APOGEE labels and the ids of an ADQL selection: small
tables, kept in the download cache, so the run reuses them) and reads one row of every
reference table (``SELECT TOP 1``). A selection that returns no star or a service that
does not answer stops the run here, before any spectrum is downloaded or any network
trained.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ArchiveError, GaiaRVSCNNError, InputDataError
from ..model.residuals import calibration_min_stars
from . import costs
from .config import RunConfig, RunConfigError
from .stages import STAGES, RunFolder, _archive, calibration_mask, utc_now

__all__ = ["Probe", "StagePlan", "probe_run", "plan_run", "format_plan"]

#: Rows of the reference tables downloaded whole (order of magnitude, for the plan), for
#: each kind of `~gaiarvs_cnn.archives.catalogues.WHOLE_KINDS`: K2-GAP DR3 (Zinn et al.
#: 2022) and the Cantat-Gaudin et al. (2020) members.
WHOLE_TABLE_ROWS = {"seismic": 20_000, "clusters": 230_000}


@dataclass
class Probe:
    """What the probe found.

    Attributes
    ----------
    n_labels : int
        Labelled (APOGEE DR17, quality cuts) stars: at most the training stars.
    n_observed : int or None
        Ids of the observed selection (before the Gaia cuts), None for bulk files.
    bulk_files : int
        Bulk RVS + XP files to download (bulk selections).
    references : dict
        Reference kind -> the table probed.
    answered : str
        UTC time of the probe.
    tap_limits : dict
        TAP base URL -> `~gaiarvs_cnn.archives.tap.TAPLimits` already known; the plan
        reads the capabilities of the other services it counts requests for.
    """

    n_labels: int = 0
    n_observed: int | None = None
    bulk_files: int = 0
    references: dict = field(default_factory=dict)
    answered: str = ""
    tap_limits: dict = field(default_factory=dict)


@dataclass
class StagePlan:
    """One stage of the plan.

    Attributes
    ----------
    stage : str
    stars : int
        Stars the stage handles (at most).
    requests : int
        HTTP requests the stage sends, counted by the archives layer's own rules
        (`GaiaArchive.fetch_requests`, `~gaiarvs_cnn.archives.catalogues.
        reference_requests`): the capabilities documents, synchronous queries, each
        asynchronous job at its least (creation, one phase check, result: `~gaiarvs_cnn.
        archives.tap.ASYNC_JOB_REQUESTS`), uploads, DataLink requests, when every star
        asked for is selected. More: the phase checks of a job still running, retries,
        a reference answer that reaches a synchronous row cap (re-run as a job). Fewer:
        stars not selected, answers already in the download cache.
    download_bytes : int
        Bytes downloaded (estimate).
    core_hours : float
        CPU time (estimate; training: every member to its maximum epochs).
    done : bool
        Recorded as done in the run's folder (skipped).
    note : str
    """

    stage: str
    stars: int = 0
    requests: int = 0
    download_bytes: int = 0
    core_hours: float = 0.0
    done: bool = False
    note: str = ""


def _observed_count(config: RunConfig) -> tuple[int | None, int]:
    obs = config.observed
    if obs.kind == "source_ids":
        from ..io.source_ids import read_source_ids

        return len(set(read_source_ids(config.resolve(obs.source_ids)))), 0
    if obs.kind == "bulk":
        from ..archives.bulk import bulk_listing

        n = 0
        for kind in ("RVS", "XP_CONTINUOUS"):
            _, files = bulk_listing(kind)
            n += min(len(files), obs.bulk_limit or len(files)) if not obs.bulk_ranges else \
                len(obs.bulk_ranges)
        return None, n
    try:
        ids = _archive(config).ids_from_query(obs.query)
    except ArchiveError as exc:
        if "returned no rows" in str(exc):
            raise RunConfigError(config.path, "observed.query",
                                 "selects no star; nothing to parameterise.") from None
        raise
    return len(ids), 0


def _check_calibration(config: RunConfig, label_ids) -> None:
    """Refuse a calibration that cannot succeed: the labelled stars it would hold out
    (`~gaiarvs_cnn.pipeline.stages.calibration_mask`, known from the labels alone) are
    fewer than the calibration needs, before the Gaia cuts remove any."""
    frac = config.training.calibration_fraction
    if frac == 0:
        return
    held = int(calibration_mask(np.asarray(label_ids, dtype=np.int64), frac,
                                config.run.seed).sum())
    need = calibration_min_stars()
    if held < need:
        raise RunConfigError(config.path, "training.calibration_fraction",
                             f"{frac} holds out {held} of the {len(label_ids)} labelled "
                             f"stars; the calibration needs at least {need} (before the Gaia "
                             "cuts): raise it, select more stars, or set it to 0 to skip "
                             "the calibration.")


def probe_run(config: RunConfig) -> Probe:
    """Resolve the selections and check every service the run needs.

    Parameters
    ----------
    config : RunConfig

    Returns
    -------
    Probe

    Raises
    ------
    RunConfigError
        A selection returns no star, or the training sample holds out too few stars for
        the calibration.
    ArchiveError
        A service does not answer (after its retries) or answers badly.
    """
    from ..archives.apogee import query_apogee
    from ..archives.catalogues import probe_reference

    labels = query_apogee(cuts=config.training.cuts)
    if len(labels) == 0:
        raise RunConfigError(config.path, "training", "the APOGEE DR17 selection returns no "
                                                      "star; nothing to train on.")
    _check_calibration(config, labels["source_id"])
    n_observed, bulk_files = _observed_count(config)
    if n_observed == 0:
        raise RunConfigError(config.path, "observed", "the selection holds no star.")
    refs = {}
    for kind in config.references.kinds:
        report = probe_reference(kind)
        if not report.ok:
            raise ArchiveError(f"The {kind} reference table {report.table} at {report.url} "
                               f"lacks required column(s) {list(report.missing_required)}.")
        refs[kind] = report.table
    return Probe(n_labels=len(labels), n_observed=n_observed, bulk_files=bulk_files,
                 references=refs, answered=utc_now())


def plan_run(config: RunConfig, probe: Probe, folder: RunFolder | None = None
             ) -> list[StagePlan]:
    """The stages of ``config`` with their estimated requests, bytes and core-hours.

    Parameters
    ----------
    config : RunConfig
    probe : Probe
        From `probe_run`.
    folder : RunFolder, optional
        The run's folder: stages recorded there as done are marked so.

    Returns
    -------
    list of StagePlan
        In stage order.
    """
    net, obs = config.network, config.observed
    # the labels and the ids of an ADQL selection are in the download cache (the probe):
    # the fetches send the selection by id and the products
    archive = _archive(config)
    archive.client.tap_limits.update(probe.tap_limits)
    n_train_all = probe.n_labels
    frac = config.training.calibration_fraction
    n_cal = round(n_train_all * frac)
    n_train = n_train_all - n_cal
    if config.training.max_stars:
        n_train = min(n_train, config.training.max_stars)
    members = net.splits * net.models
    name = net.config if net.config in ("paper", "demo") else "paper"
    n_obs = probe.n_observed or 0
    if obs.limit:
        n_obs = min(n_obs, obs.limit) if n_obs else obs.limit
    per_star_fetch = costs.DATALINK_BYTES_PER_STAR + costs.GAIA_SOURCE_BYTES_PER_STAR
    plans = [
        StagePlan("fetch-training", n_train_all,
                  archive.fetch_requests(n_train_all),
                  n_train_all * (per_star_fetch + costs.APOGEE_BYTES_PER_ROW),
                  n_train_all * costs.FETCH_CORE_SECONDS_PER_STAR / 3600,
                  note=f"APOGEE DR17 labels ({probe.n_labels} after quality cuts); "
                       f"{frac:.0%} held out for calibration"),
        StagePlan("train", n_train, 0, 0,
                  costs.train_core_seconds(n_train, network=name, members=members,
                                           epochs=net.epochs) / 3600,
                  note=f"{net.splits} x {net.models} {net.config} network(s), at most "
                       f"{net.epochs} epochs each (early stopping ends most earlier)"),
        StagePlan("calibrate", n_cal, 0, 0,
                  costs.predict_core_seconds(n_cal, network=name, members=members) / 3600,
                  note="held-out labelled stars" if frac else "skipped (fraction 0)"),
    ]
    if obs.kind == "bulk":
        plans.append(StagePlan("fetch-observed", 0, probe.bulk_files + 2, 0, 0.0,
                               note=f"{probe.bulk_files} bulk files (gzipped CSV; sizes "
                                    "not published in the listing)"))
    else:
        plans.append(StagePlan(
            "fetch-observed", probe.n_observed,
            archive.fetch_requests(probe.n_observed),
            probe.n_observed * per_star_fetch,
            probe.n_observed * costs.FETCH_CORE_SECONDS_PER_STAR / 3600,
            note=f"{obs.kind} selection, {probe.n_observed} star(s) before the Gaia cuts"))
    plans.append(StagePlan(
        "predict", n_obs, 0, 0,
        costs.predict_core_seconds(n_obs, network=name, members=members) / 3600,
        note=f"{config.executor.kind} executor; catalogue "
             f"{', '.join(config.catalogue.formats)} "
             f"(~{n_obs * costs.CATALOGUE_BYTES_PER_STAR / 1e6:.1f} MB per format)"))
    ref_requests, ref_bytes = _reference_downloads(config.references.kinds, n_obs,
                                                   client=archive.client)
    plans.append(StagePlan("fetch-references", n_obs, ref_requests, ref_bytes, 0.0,
                           note=", ".join(config.references.kinds)))
    plans.append(StagePlan("validate", n_obs, 0, 0, 0.0,
                           note="comparisons " + ", ".join(config.references.against)
                                + "; summary.html with the figures"))
    if folder is not None:
        for p in plans:
            p.done = folder.done_file(p.stage).exists()
    assert [p.stage for p in plans] == list(STAGES)
    return plans


def _reference_downloads(kinds, n_ids: int, *, client) -> tuple[int, int]:
    """Requests and bytes of ``fetch-references`` for ``n_ids`` catalogue stars: the
    requests the archives layer will send (`~gaiarvs_cnn.archives.catalogues.
    reference_requests`, from the services' published limits, read by ``client``) and
    the rows expected (`WHOLE_TABLE_ROWS` for the tables downloaded whole, else
    `costs.REFERENCE_ROWS_PER_ID` per id) at `costs.REFERENCE_BYTES_PER_ROW`."""
    from ..archives.catalogues import WHOLE_KINDS, reference_requests

    requests, size = 0, 0.0
    for kind in kinds:
        # which kinds are downloaded whole is the archives layer's to say
        whole = WHOLE_TABLE_ROWS[kind] if kind in WHOLE_KINDS else None
        requests += reference_requests(kind, n_ids, table_rows=whole or 0, client=client)
        rows = whole if whole is not None else n_ids * costs.REFERENCE_ROWS_PER_ID
        size += rows * costs.REFERENCE_BYTES_PER_ROW[kind]
    return requests, round(size)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _hours(h: float) -> str:
    return f"{h:.4f}" if h < 1 else f"{h:.1f}"


def format_plan(config: RunConfig, probe: Probe, plans: list[StagePlan]) -> list[str]:
    """The plan as lines of text (what ``gaiarvs-cnn run CONFIG --plan`` prints).

    Returns
    -------
    list of str
    """
    lines = [f"Run {config.run.name or config.path.name} -> {config.run.output}",
             f"probed {probe.answered}: {probe.n_labels} labelled star(s); observed "
             + (f"{probe.n_observed} star(s)" if probe.n_observed is not None
                else f"{probe.bulk_files} bulk file(s)")
             + (f"; references {', '.join(probe.references)}" if probe.references else ""),
             f"{'stage':17s} {'stars':>9s} {'requests':>9s} {'download':>10s} "
             f"{'core-h':>9s}  note"]
    for p in plans:
        lines.append(f"{p.stage:17s} {p.stars:9d} {p.requests:9d} {_size(p.download_bytes):>10s} "
                     f"{_hours(p.core_hours):>9s}  {'[done] ' if p.done else ''}{p.note}")
    total_b = sum(p.download_bytes for p in plans if not p.done)
    total_h = sum(p.core_hours for p in plans if not p.done)
    lines.append(f"{'total (to do)':17s} {'':9s} "
                 f"{sum(p.requests for p in plans if not p.done):9d} {_size(total_b):>10s} "
                 f"{_hours(total_h):>9s}")
    lines.append("Estimates from gaiarvs_cnn.pipeline.costs (loopback and 2-core "
                 "benchmarks): bytes are what the archives send, core-hours CPU time; "
                 "requests count each asynchronous job at its first phase check (a job "
                 "still running adds one per check), no retry.")
    return lines


def check_services(config: RunConfig) -> Probe:
    """`probe_run`, with any error of the probe as one `GaiaRVSCNNError` line."""
    try:
        return probe_run(config)
    except GaiaRVSCNNError:
        raise
    except (OSError, ValueError) as exc:
        raise InputDataError(f"{config.path}: the probe failed: {exc}") from exc
