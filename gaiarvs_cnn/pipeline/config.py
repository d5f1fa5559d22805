"""The run description: a TOML file read into a frozen, validated `RunConfig`.

A run file has one table per part of the run; every key is optional except
``run.output`` and one observed selection. Unknown keys and wrong types are refused with
one line naming the key (`RunConfigError`), before anything is downloaded::

    [run]
    output = "paper_run"            # the run's folder
    seed = 0

    [archive]
    service = "esa"                 # "esa" (TAP + DataLink) or "aip"
    max_ids = 5000                  # source ids per DataLink request (default: conf)

    [training]
    sample = "apogee"               # APOGEE DR17 labels (VizieR III/286)
    cuts = true                     # the paper's Gaia and training cuts (Sects. 2.1-2.5)
    max_stars = 45000               # optional cap
    calibration_fraction = 0.1      # held out of training to calibrate sigma_*

    [network]
    config = "paper"                # "paper", "demo" or a NetworkConfig JSON file
    splits = 7
    models = 4
    epochs = 200

    [observed]                      # exactly one of query, source_ids, bulk
    query = "SELECT source_id FROM gaiadr3.gaia_source WHERE has_rvs = 'true'"

    [references]
    kinds = ["galah", "seismic", "clusters", "gsp-spec", "published"]

    [executor]
    kind = "local"                  # or "dask" (scheduler = "tcp://host:8786" or workers)

    [catalogue]
    formats = ["fits", "votable"]

The shipped paper configuration is `paper_config_path`.
"""
from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..exceptions import InputDataError

__all__ = ["RunConfig", "RunConfigError", "load_run_config", "paper_config_path",
           "TrainingConfig", "NetworkSection", "ObservedConfig", "ReferencesConfig",
           "ExecutorConfig", "CatalogueConfig", "ArchiveConfig", "RunSection"]


class RunConfigError(InputDataError):
    """A run configuration file is invalid; ``key`` names the offending key.

    Parameters
    ----------
    path : str or path-like
        The configuration file.
    key : str
        Dotted key (``"network.splits"``), or ``""`` for the whole file.
    problem : str
        What is wrong and what to do.
    """

    def __init__(self, path, key: str, problem: str):
        self.path, self.key, self.problem = str(path), key, problem
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class RunSection:
    """``[run]``: where the run's folder is and the seed of everything random.

    Attributes
    ----------
    output : str
        The run's folder. Relative paths in a run file (``output``, ``source_ids``, a
        network JSON file) are relative to the current directory.
    name : str
        Free text shown in the plan and the provenance.
    seed : int
        Seeds the training/calibration split, the splits and the members.
    """

    output: str = ""
    name: str = ""
    seed: int = 0


@dataclass(frozen=True)
class ArchiveConfig:
    """``[archive]``: the Gaia DR3 service and its request size.

    Attributes
    ----------
    service : {'esa', 'aip'}
        ESA Gaia archive (TAP + DataLink) or the AIP mirror (TAP).
    max_ids : int or None
        Source ids per spectra request (default: the service's configured limit).
    """

    service: str = "esa"
    max_ids: int | None = None


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: the labelled sample.

    Attributes
    ----------
    sample : {'apogee'}
        APOGEE DR17 (VizieR III/286) with the paper's quality cuts (Sect. 2.4).
    cuts : bool
        The paper's Gaia cuts and the training cuts (S/N >= 30, parallax error < 20 %,
        RUWE < 1.4; Sect. 2.5).
    max_stars : int or None
        Train on at most this many labelled stars.
    calibration_fraction : float
        Fraction of the fetched labelled stars held out of training to calibrate
        ``sigma_*`` (0 skips the calibration stage).
    """

    sample: str = "apogee"
    cuts: bool = True
    max_stars: int | None = None
    calibration_fraction: float = 0.1


@dataclass(frozen=True)
class NetworkSection:
    """``[network]``: the network and the ensemble.

    Attributes
    ----------
    config : str
        ``"paper"`` (`~gaiarvs_cnn.model.PAPER_CONFIG`), ``"demo"`` (the shipped demo
        bundle's smaller network) or a NetworkConfig JSON file.
    splits, models : int
        Random 75/25 splits and members per split (paper: 7 x 4).
    epochs : int
        Maximum epochs per member (early stopping ends most earlier).
    rvs_only : bool
        Train on RVS spectra only (paper App. B).
    tsne : bool
        Fit the t-SNE reference of ``flag_boundary``.
    workers : int
        Train this many members at once (tasks of a local Dask cluster of this many
        worker processes sharing the cores).
    """

    config: str = "paper"
    splits: int = 7
    models: int = 4
    epochs: int = 200
    rvs_only: bool = False
    tsne: bool = True
    workers: int = 1


@dataclass(frozen=True)
class ObservedConfig:
    """``[observed]``: the stars to parameterise (exactly one of the three selections).

    Attributes
    ----------
    query : str or None
        ADQL returning a ``source_id`` column (ESA/AIP TAP).
    source_ids : str or None
        File of Gaia DR3 source ids (text, one per line, or a table with ``source_id``).
    bulk : bool
        The Gaia DR3 bulk RVS and XP files (``bulk_ranges`` / ``bulk_limit`` restrict).
    bulk_ranges : list of str
        Bulk ranges (``"000000-003111"``); empty: all.
    bulk_limit : int or None
        At most this many bulk ranges.
    cuts : bool
        The paper's Gaia cuts on the selection (Sects. 2.1-2.3; not for bulk files).
    limit : int or None
        Parameterise only the first ``limit`` stars.
    """

    query: str | None = None
    source_ids: str | None = None
    bulk: bool = False
    bulk_ranges: list[str] = field(default_factory=list)
    bulk_limit: int | None = None
    cuts: bool = True
    limit: int | None = None

    @property
    def kind(self) -> str:
        """``'query'``, ``'source_ids'`` or ``'bulk'``."""
        return ("query" if self.query is not None else
                "source_ids" if self.source_ids is not None else "bulk")


@dataclass(frozen=True)
class ReferencesConfig:
    """``[references]``: the validation.

    Attributes
    ----------
    kinds : list of str
        Reference catalogues to fetch (`gaiarvs_cnn.io.reference.ALL_KINDS`).
    against : list of str
        Comparisons to run (`gaiarvs_cnn.validation.registry`), or ``["all"]``: every
        comparison whose references were fetched.
    gsp_good_flags : bool
        GSP-Spec: keep stars whose first 13 ``flags_gspspec`` digits are 0 (paper).
    figure_formats : list of str
        Formats of the validation figures (``[]``: tables and summary only).
    """

    kinds: list[str] = field(default_factory=lambda: ["galah", "seismic", "clusters",
                                                      "gsp-spec", "published"])
    against: list[str] = field(default_factory=lambda: ["all"])
    gsp_good_flags: bool = True
    figure_formats: list[str] = field(default_factory=lambda: ["png"])


@dataclass(frozen=True)
class ExecutorConfig:
    """``[executor]``: where the prediction chunks run.

    Attributes
    ----------
    kind : {'local', 'dask'}
        In this process, or on Dask (``scheduler`` address, or a local cluster of
        ``workers`` processes).
    scheduler : str or None
        Dask scheduler address (``tcp://host:8786``).
    workers : int or None
        Processes of a local Dask cluster.
    threads_per_worker : int
        Threads per Dask worker.
    """

    kind: str = "local"
    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int = 1


@dataclass(frozen=True)
class CatalogueConfig:
    """``[catalogue]``: the catalogue files.

    Attributes
    ----------
    formats : list of str
        Names of `gaiarvs_cnn.catalog.CATALOG_FORMATS`.
    chunk_size : int or None
        Stars per prediction chunk (default ``conf.chunk_size``).
    """

    formats: list[str] = field(default_factory=lambda: ["fits", "votable"])
    chunk_size: int | None = None


_SECTIONS = {"run": RunSection, "archive": ArchiveConfig, "training": TrainingConfig,
             "network": NetworkSection, "observed": ObservedConfig,
             "references": ReferencesConfig, "executor": ExecutorConfig,
             "catalogue": CatalogueConfig}
_CHOICES = {("archive", "service"): ("esa", "aip"), ("training", "sample"): ("apogee",),
            ("executor", "kind"): ("local", "dask")}
_POSITIVE = {("archive", "max_ids"), ("training", "max_stars"), ("network", "splits"),
             ("network", "models"), ("network", "epochs"), ("network", "workers"),
             ("observed", "bulk_limit"), ("observed", "limit"), ("executor", "workers"),
             ("executor", "threads_per_worker"), ("catalogue", "chunk_size")}


@dataclass(frozen=True)
class RunConfig:
    """A validated run description (`load_run_config`).

    Attributes
    ----------
    path : Path
        The configuration file.
    text : str
        Its text (copied into the run's folder).
    run, archive, training, network, observed, references, executor, catalogue
        The sections.
    """

    path: Path
    text: str
    run: RunSection
    archive: ArchiveConfig
    training: TrainingConfig
    network: NetworkSection
    observed: ObservedConfig
    references: ReferencesConfig
    executor: ExecutorConfig
    catalogue: CatalogueConfig

    def resolve(self, value: str) -> Path:
        """A path of the file (relative paths are relative to the current directory)."""
        return Path(value).expanduser().resolve()

    @property
    def output(self) -> Path:
        """The run's folder (absolute)."""
        return self.resolve(self.run.output)


def _type_name(tp) -> str:
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if typing.get_origin(tp) is list:
        return "a list of strings"
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return names.get(tp) or names.get(args[0] if args else tp, str(tp))


def _matches(value, tp) -> bool:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _section(path: Path, name: str, cls, values) -> object:
    if not isinstance(values, dict):
        raise RunConfigError(path, name, f"must be a table ([{name}]), not a value.")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    for key, value in values.items():
        dotted = f"{name}.{key}"
        if key not in hints:
            raise RunConfigError(path, dotted, f"unknown key; [{name}] knows "
                                               f"{', '.join(known)}.")
        if not _matches(value, hints[key]):
            raise RunConfigError(path, dotted, f"must be {_type_name(hints[key])}, not "
                                               f"{value!r}.")
        choices = _CHOICES.get((name, key))
        if choices and value not in choices:
            raise RunConfigError(path, dotted, f"must be one of {', '.join(choices)}, not "
                                               f"{value!r}.")
        if (name, key) in _POSITIVE and value is not None and value < 1:
            raise RunConfigError(path, dotted, f"must be at least 1, not {value!r}.")
    return cls(**values)


def _check(config: RunConfig) -> None:
    """Checks across keys (one selection, known names, existing files)."""
    from ..catalog import parse_formats
    from ..io.reference import ALL_KINDS

    path = config.path
    if not config.run.output:
        raise RunConfigError(path, "run.output", "missing: give the run's folder "
                                                 "(e.g. output = \"my_run\").")
    obs = config.observed
    given = [k for k, on in (("query", obs.query is not None),
                             ("source_ids", obs.source_ids is not None),
                             ("bulk", obs.bulk)) if on]
    if len(given) != 1:
        raise RunConfigError(path, "observed", "give exactly one selection: query (ADQL), "
                             f"source_ids (a file) or bulk = true (found: {given or 'none'}).")
    if obs.query is not None and not obs.query.strip():
        raise RunConfigError(path, "observed.query", "is empty; give ADQL returning a "
                                                     "source_id column.")
    if obs.source_ids is not None and not config.resolve(obs.source_ids).is_file():
        raise RunConfigError(path, "observed.source_ids",
                             f"no file {config.resolve(obs.source_ids)}.")
    frac = config.training.calibration_fraction
    if not 0 <= frac < 1:
        raise RunConfigError(path, "training.calibration_fraction",
                             f"must be in [0, 1), not {frac!r}.")
    net = config.network.config
    if net not in ("paper", "demo") and not config.resolve(net).is_file():
        raise RunConfigError(path, "network.config", "must be \"paper\", \"demo\" or a "
                             f"NetworkConfig JSON file; no file {config.resolve(net)}.")
    bad = [k for k in config.references.kinds if k not in ALL_KINDS]
    if bad:
        raise RunConfigError(path, "references.kinds", f"unknown kind(s) {bad}; use "
                                                       f"{', '.join(ALL_KINDS)}.")
    try:
        parse_formats(config.catalogue.formats)
    except InputDataError as exc:
        raise RunConfigError(path, "catalogue.formats", str(exc)) from None
    ex = config.executor
    if ex.kind == "dask" and not (ex.scheduler or ex.workers):
        raise RunConfigError(path, "executor", "kind = \"dask\" needs scheduler (an "
                                               "address) or workers (a local cluster).")
    if ex.kind == "local" and (ex.scheduler or ex.workers):
        raise RunConfigError(path, "executor.kind", "is \"local\"; set it to \"dask\" to "
                                                    "use scheduler or workers.")


def _against(config: RunConfig) -> None:
    from ..validation.registry import comparison_names

    names = comparison_names()
    bad = [a for a in config.references.against if a != "all" and a not in names]
    if bad:
        raise RunConfigError(config.path, "references.against",
                             f"unknown comparison(s) {bad}; use all or "
                             f"{', '.join(names)}.")
    from ..validation.registry import get_comparison

    kinds = set(config.references.kinds)
    for name in config.references.against:
        missing = [] if name == "all" else sorted(set(get_comparison(name).required) - kinds)
        if missing:
            raise RunConfigError(config.path, "references.against",
                                 f"the {name} comparison needs reference(s) {missing}; add "
                                 "them to references.kinds.")


def load_run_config(path) -> RunConfig:
    """Read and validate a run configuration file.

    Parameters
    ----------
    path : str or path-like
        A TOML file (see the module documentation for its tables and keys).

    Returns
    -------
    RunConfig

    Raises
    ------
    RunConfigError
        Unreadable TOML, an unknown table or key, a value of the wrong type or out of
        range, no or several observed selections, a missing file; the message is one
        line naming the key.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunConfigError(path, "", f"cannot read it ({exc}).") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RunConfigError(path, "", f"not valid TOML ({exc}).") from None
    unknown = [k for k in doc if k not in _SECTIONS]
    if unknown:
        raise RunConfigError(path, unknown[0], f"unknown table; use "
                                               f"{', '.join(_SECTIONS)}.")
    sections = {name: _section(path, name, cls, doc.get(name, {}))
                for name, cls in _SECTIONS.items()}
    config = RunConfig(path=path.resolve(), text=text, **sections)
    _check(config)
    _against(config)
    return config


def paper_config_path() -> Path:
    """The shipped configuration reproducing Guiglion, Nepal et al. (2024).

    Returns
    -------
    Path
        ``gaiarvs_cnn/data/runs/paper.toml`` (package data).
    """
    return Path(__file__).resolve().parents[1] / "data" / "runs" / "paper.toml"

