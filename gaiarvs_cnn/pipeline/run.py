"""`run_pipeline`: a whole run from a configuration file, stage after stage, resumable.

The run's folder holds, besides each stage's outputs (`~gaiarvs_cnn.pipeline.stages`):

- ``config.toml`` -- the configuration (a copy; a later run into the same folder must
  describe the same run, the ``[executor]`` aside);
- ``provenance.json`` -- software versions, the configuration file, the probe, the query
  texts, and per stage its record (bundle id, archive answers' dates, counts, seconds);
- ``run.log`` -- the log of every run into the folder (appended);
- ``state/<stage>.json`` -- written when a stage is done; a stage with its file is skipped.

Started again after an interruption (Ctrl-C, SIGKILL, a failed service), the run skips
the stages done and continues the interrupted one from its own state; the catalogue and
the validation tables equal those of an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import json
import time
import tomllib
from collections.abc import Callable

from astropy import log

from ..exceptions import InputDataError
from ..utils.atomic import write_json_atomic, write_text_atomic
from .config import RunConfig, RunConfigError
from .plan import Probe, check_services, format_plan, plan_run
from .stages import STAGES, RunFolder, utc_now

__all__ = ["run_pipeline", "software_versions", "RunResult"]

#: Sections of the configuration that do not change the results.
_NEUTRAL = ("executor",)


def software_versions() -> dict[str, str]:
    """Versions of gaiarvs-cnn, Python and the libraries whose results the run keeps."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from ..version import __version__

    out = {"gaiarvs_cnn": __version__, "python": platform.python_version()}
    for name in ("numpy", "astropy", "tensorflow", "keras", "pyvo", "tables", "scipy"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def _identity(text: str) -> dict:
    doc = tomllib.loads(text)
    for name in _NEUTRAL:
        doc.pop(name, None)
    return doc


def _check_folder(config: RunConfig, folder: RunFolder) -> None:
    """Refuse a folder that holds a run of another configuration."""
    if not folder.config.exists():
        return
    old, new = _identity(folder.config.read_text(encoding="utf-8")), _identity(config.text)
    if old == new:
        return
    keys = sorted({f"{s}.{k}" for s in set(old) | set(new)
                   for k in set(old.get(s, {})) | set(new.get(s, {}))
                   if old.get(s, {}).get(k) != new.get(s, {}).get(k)})
    raise RunConfigError(config.path, "run.output",
                         f"{folder.root} holds a run of another configuration (differs in "
                         f"{', '.join(keys) or 'its tables'}); choose another output folder "
                         "or remove that one.")


class RunResult:
    """What `run_pipeline` did.

    Attributes
    ----------
    folder : RunFolder
    ran, skipped : list of str
        Stages run by this call, and stages skipped as already done.
    records : dict
        Stage -> its provenance record.
    """

    def __init__(self, folder: RunFolder):
        self.folder, self.ran, self.skipped, self.records = folder, [], [], {}

    def lines(self) -> list[str]:
        """A summary for the command line."""
        out = [f"run folder: {self.folder.root}"]
        for stage in STAGES:
            rec = self.records.get(stage, {})
            state = ("done before" if stage in self.skipped else
                     f"done in {rec.get('seconds', 0):.1f} s" if stage in self.ran else "to do")
            out.append(f"  {stage:17s} {state}")
        out += [f"catalogue: {self.folder.catalogue}",
                f"validation report: {self.folder.validation / 'summary.html'}",
                f"provenance: {self.folder.provenance}", f"log: {self.folder.log}"]
        return out


def _provenance(config: RunConfig, probe: Probe, records: dict, started: str) -> dict:
    from ..settings import conf

    return {"run": config.run.name or config.path.name, "config_file": config.path.name,
            "started": started, "updated": utc_now(), "versions": software_versions(),
            "services": {k: getattr(conf, k) for k in (
                "gaia_tap_url", "gaia_datalink_url", "aip_tap_url", "vizier_url",
                "xmatch_url")},
            "queries": {"training": "VizieR III/286/catalog (APOGEE DR17), quality cuts "
                                    + ("on" if config.training.cuts else "off"),
                        "observed": config.observed.query or config.observed.source_ids
                        or "Gaia DR3 bulk files"},
            "probe": vars(probe),
            "bundle_id": next((records[s]["bundle_id"] for s in ("predict", "calibrate",
                                                                 "train")
                               if records.get(s, {}).get("bundle_id")), None),
            "stages": records}


def run_pipeline(config: RunConfig, *, progress: bool = True, plan_only: bool = False,
                 until: str | None = None,
                 echo: Callable[[str], None] | None = None) -> RunResult:
    """Run every stage of ``config`` not yet done, in order.

    Parameters
    ----------
    config : RunConfig
        From `~gaiarvs_cnn.pipeline.config.load_run_config`.
    progress : bool
        Show progress bars.
    plan_only : bool
        Probe and print the plan, run nothing (no file is written).
    until : str, optional
        Stop after this stage (a name of `STAGES`); a later call continues.
    echo : callable, optional
        Receives the plan's lines (default: the log).

    Returns
    -------
    RunResult

    Raises
    ------
    RunConfigError
        The folder holds a run of another configuration, or a selection returns no star
        (before anything is downloaded).
    ArchiveError
        A service does not answer (the probe: before anything is downloaded; later: the
        run stops, and starting it again resumes).
    RunLockedError
        Another run is using the folder.
    """
    from ..utils.lock import RunLock

    if until is not None and until not in STAGES:
        raise InputDataError(f"Unknown stage {until!r}; use one of {', '.join(STAGES)}.")
    echo = echo or log.info
    folder = RunFolder(config.output)
    _check_folder(config, folder)
    probe = check_services(config)
    for line in format_plan(config, probe, plan_run(config, probe, folder)):
        echo(line)
    result = RunResult(folder)
    if plan_only:
        return result
    folder.root.mkdir(parents=True, exist_ok=True)
    with RunLock(folder.root / ".run.lock", f"run folder {folder.root}"), \
            log.log_to_file(str(folder.log)):
        if not folder.config.exists():
            write_text_atomic(folder.config, config.text)
        started = utc_now()
        records = {}
        for stage, func in STAGES.items():
            done = folder.done_file(stage)
            if done.exists():
                records[stage] = json.loads(done.read_text(encoding="utf-8"))
                result.skipped.append(stage)
                log.info(f"stage {stage}: done before, skipped")
                if stage == until:
                    break
                continue
            log.info(f"stage {stage}: started")
            t0 = time.perf_counter()
            record = func(config, folder, progress)
            record = {**record, "finished": utc_now(),
                      "seconds": round(time.perf_counter() - t0, 2)}
            write_json_atomic(done, record)
            records[stage] = record
            result.ran.append(stage)
            write_json_atomic(folder.provenance, _provenance(config, probe, records, started))
            log.info(f"stage {stage}: done in {record['seconds']:.1f} s")
            if stage == until:
                break
        write_json_atomic(folder.provenance, _provenance(config, probe, records, started))
    result.records = records
    if until is None and not folder.catalogue_files(config)[0].exists():
        raise InputDataError(f"{folder.root}: the stages are recorded as done but the "
                             "catalogue is missing; remove the folder's state/ to redo them.")
    return result
