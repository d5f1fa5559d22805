"""Validation of a catalogue file from start to end: `validate_catalog`.

What ``gaiarvs-cnn validate`` and the ``validate`` stage of ``gaiarvs-cnn run`` run: read
the catalogue, find the store it was produced from (or re-simulate it from the seed its
provenance records), add the store's columns, obtain the references the chosen comparisons
need (tables already in hand, files, or a source; ``"all"`` skips, with a warning, the
comparisons whose references cannot be obtained; a comparison named explicitly needs its
references), run the comparisons and write the report.

Examples
--------
>>> from gaiarvs_cnn.validation.pipeline import validate_catalog
>>> run = validate_catalog("catalog/gaiarvs_cnn_catalog.fits", against=["galah"],
...                        out="galah_report")  # doctest: +SKIP
>>> run.summary  # doctest: +SKIP
PosixPath('galah_report/summary.md')
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from astropy import log
from astropy.table import Table

from ..exceptions import ArchiveError, GaiaRVSCNNError, InputDataError, Param
from .registry import comparison_names, get_comparison, needed_references

__all__ = ["ValidationRun", "validate_catalog", "SOURCES"]

#: Where the reference catalogues come from (``source`` of `validate_catalog`).
SOURCES = ("simulated", "archive")


@dataclass
class ValidationRun:
    """What `validate_catalog` did.

    Attributes
    ----------
    summary : pathlib.Path
        The report's ``summary.md``.
    comparisons : list of str
        The comparisons run, in report order.
    skipped : list of str
        Comparisons of ``"all"`` left out because a required reference was unavailable.
    references : dict
        Reference kind -> where it came from (``"given"``, ``"file PATH"``,
        ``"simulated"``, ``"archive"``).
    """

    summary: Path
    comparisons: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    references: dict[str, str] = field(default_factory=dict)


def _input_selection(meta: Mapping) -> dict:
    """The catalogue's input-selection provenance (FITS keyword INPUTSEL, JSON) as a dict."""
    upper = {str(k).upper(): v for k, v in meta.items()}
    value = upper.get("INPUTSEL") or upper.get("INPUT_SELECTION") or {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def regenerate_store(meta: Mapping, workdir, progress: bool = True) -> Path | None:
    """Re-simulate the store of a catalogue of the simulated survey from its provenance.

    Parameters
    ----------
    meta : mapping
        The catalogue's metadata (``INPUTSEL``: source, seed, number of stars, kind).
    workdir : path-like
        Folder of the new store.
    progress : bool, optional
        Show the simulation's progress bar.

    Returns
    -------
    pathlib.Path or None
        The store, or None if the provenance records no simulated survey to rebuild.
    """
    sel = _input_selection(meta)
    n = sel.get("n_stars", sel.get("n"))
    if sel.get("source") != "simulated" or sel.get("seed") is None or n is None:
        return None
    from ..simulate.survey import simulate_store

    path = Path(workdir) / "regenerated_store.h5"
    log.info(f"Regenerating the simulated survey (seed {sel['seed']}, {n} stars) into {path}")
    return simulate_store(path, int(n), seed=sel["seed"], kind=sel.get("kind", "observed"),
                          progress=progress)


def _read(path) -> Table:
    from ..catalog import read_catalog

    return read_catalog(path)


def _collect_references(kinds: Sequence[str], required: set, source: str | None,
                        files: Mapping[str, str], store, seed: int, ids,
                        given: Mapping[str, Table]) -> dict:
    """Reference kind -> Table; a required kind that cannot be obtained is an error, an
    optional one a warning (with ``source`` None, a kind neither given nor in ``files``
    is left out)."""
    from ..io.reference import REFERENCE_KINDS as SIMULATED_KINDS
    from ..io.reference import check_reference
    from .references import get_reference

    refs = {}
    for kind in kinds:
        if kind in given:
            refs[kind] = check_reference(given[kind], kind)
            continue
        src = "file" if kind in files else source
        if src is None:
            if kind in required:
                raise InputDataError(f"Cannot obtain the {kind} reference: none was given "
                                     "(pass its table or file).", parameter="references")
            continue
        if src == "simulated" and kind not in SIMULATED_KINDS and kind not in required:
            continue  # the simulator makes no such reference: the comparison says it skips
        try:
            refs[kind] = get_reference(kind, src, store=store, seed=seed, source_ids=ids,
                                       path=files.get(kind))
        except (GaiaRVSCNNError, ImportError, OSError) as exc:
            if kind in required:
                parts = exc.parts if isinstance(exc, GaiaRVSCNNError) else (str(exc),)
                cls = InputDataError if isinstance(exc, InputDataError) else ArchiveError
                raise cls(f"Cannot obtain the {kind} reference ({src}): ", *parts) from exc
            log.warning(f"Optional {kind} reference unavailable ({src}): {exc}")
    return refs


def validate_catalog(catalog, *, against: Sequence[str] = ("all",),
                     source: str | None = "simulated",
                     reference_files: Mapping[str, str] | None = None,
                     references: Mapping[str, Table] | None = None, store=None,
                     seed: int = 0, out="validation_report",
                     formats: Sequence[str] = ("png", "pdf"), overwrite: bool = False,
                     meta: Mapping[str, str] | None = None,
                     progress: bool = True) -> ValidationRun:
    """Compare a catalogue with the reference surveys and write the validation report.

    Parameters
    ----------
    catalog : str or path-like
        The CNN catalogue (FITS, VOTable, ECSV or Parquet).
    against : sequence of str, optional
        Comparison names (`~gaiarvs_cnn.validation.registry.comparison_names`), or
        ``"all"``: every comparison whose required references can be obtained.
    source : {'simulated', 'archive'} or None, optional
        Where the references come from; None: only ``references`` and
        ``reference_files`` (the other kinds are unavailable).
    reference_files : mapping of str to path, optional
        Reference kind -> canonical-schema file, used instead of ``source`` for that kind.
    references : mapping of str to astropy.table.Table, optional
        Reference kind -> table already obtained (canonical schema, checked with
        `~gaiarvs_cnn.io.reference.check_reference`), used instead of a file or
        ``source`` for that kind.
    store : str or path-like, optional
        Store or shard manifest the catalogue was produced from (S/N, positions,
        parallaxes; truth for a simulated store). Default: re-simulated from the
        catalogue's provenance (`regenerate_store`).
    seed : int, optional
        Seed of the simulated references' noise.
    out : str or path-like, optional
        The report's folder.
    formats : sequence of str, optional
        Figure formats; empty for tables and summary only.
    overwrite : bool, optional
        Replace an existing report.
    meta : mapping of str to str, optional
        Report metadata (``summary.md``/``summary.html``) that replaces or adds to the
        defaults (catalogue, store, references).
    progress : bool, optional
        Show progress bars.

    Returns
    -------
    ValidationRun

    Raises
    ------
    InputDataError
        An unknown comparison or source; no store given and none to regenerate; a
        reference of an explicitly named comparison cannot be read.
    ArchiveError
        A reference of an explicitly named comparison cannot be downloaded.
    OutputExistsError
        ``out`` holds a report and ``overwrite`` is False.
    """
    from .crossmatch import add_store_columns
    from .report import write_report
    from .runner import has_truth, run_validation, simulator_bounds

    if source is not None and source not in SOURCES:
        raise InputDataError(f"Unknown reference source {source!r}; use one of {SOURCES}.",
                             parameter="source")
    everything = "all" in against
    names = comparison_names()
    for name in against:
        if name != "all":
            get_comparison(name)  # an unknown name is an error
    wanted = list(names) if everything else [n for n in names if n in against]
    files = {k: os.fspath(v) for k, v in (reference_files or {}).items()}
    given = dict(references or {})
    table = _read(catalog)
    with tempfile.TemporaryDirectory(prefix="gaiarvs_validate_") as work:
        store_path = store or regenerate_store(dict(table.meta), work, progress)
        if store_path is None:
            raise InputDataError(
                "The catalogue holds no S/N, positions or parallaxes: pass the store it was "
                "produced from (", Param("store", placeholder="sim.h5"), "); its provenance "
                "records no simulated survey seed to regenerate it from.", file=catalog)
        data = add_store_columns(table, store_path)
        required, optional = needed_references(wanted)
        refs = _collect_references(required + optional,
                                   set() if everything else set(required), source, files,
                                   store_path, seed, data["source_id"], given)
        skipped = []
        if everything:
            skipped = [n for n in wanted if not set(get_comparison(n).required) <= set(refs)]
            for name in skipped:
                if source is None:  # only the references given were asked for
                    log.info(f"Skipping the {name} comparison: its reference was not given.")
                else:
                    log.warning(f"Skipping the {name} comparison: its reference is not "
                                f"available from the {source} source (give a reference "
                                "file for it).")
            wanted = [n for n in wanted if n not in skipped]
        bounds = simulator_bounds() if has_truth(data) else None
        results = run_validation(data, wanted, refs, bounds)
    used = {k: "given" if k in given else f"file {files[k]}" if k in files else str(source)
            for k in refs}
    meta = {"catalogue": os.fspath(catalog), "store": os.fspath(store or "regenerated"),
            "references": ", ".join(f"{k}: {v}" for k, v in used.items()), **(meta or {})}
    summary = write_report(results, out, list(formats), overwrite=overwrite, meta=meta)
    return ValidationRun(Path(summary), wanted, skipped, used)
