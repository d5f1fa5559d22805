"""``gaiarvs-cnn validate``: compare a catalogue with reference surveys, write a report."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click
from astropy import log

from . import main


class _ComparisonChoice(click.Choice):
    """``--against`` choices: the registered comparisons (gaiarvs_cnn.validation.registry)
    and ``all``, read when first needed (the comparison modules are heavy to import)."""

    def __init__(self):
        self.case_sensitive = True

    @property
    def choices(self):
        from ..validation.registry import comparison_names

        return (*comparison_names(), "all")


def against_choices() -> tuple[str, ...]:
    """The names ``--against`` accepts: every registered comparison, then ``all``."""
    return tuple(_ComparisonChoice().choices)


def _parse_reference_files(values) -> dict[str, str]:
    from ..io.reference import ALL_KINDS

    out = {}
    for value in values:
        kind, sep, path = value.partition("=")
        if not sep or kind not in ALL_KINDS:
            raise click.BadParameter(f"{value!r}: use KIND=PATH with KIND one of "
                                     f"{', '.join(ALL_KINDS)}.", param_hint="--reference")
        out[kind] = path
    return out


def _input_selection(meta: dict) -> dict:
    """The catalogue's input-selection provenance (FITS keyword INPUTSEL, JSON) as a dict."""
    import json

    upper = {str(k).upper(): v for k, v in meta.items()}
    value = upper.get("INPUTSEL") or upper.get("INPUT_SELECTION") or {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return value if isinstance(value, dict) else {}


def _regenerate_store(meta: dict, workdir: Path, progress: bool = True) -> Path | None:
    """Re-simulate the parent store from the seed recorded in the catalogue provenance."""
    sel = _input_selection(meta)
    n = sel.get("n_stars", sel.get("n"))
    if sel.get("source") != "simulated" or sel.get("seed") is None or n is None:
        return None
    from ..simulate.survey import simulate_store

    path = workdir / "regenerated_store.h5"
    log.info(f"Regenerating the simulated survey (seed {sel['seed']}, {n} stars) into {path}")
    return simulate_store(path, int(n), seed=sel["seed"], kind=sel.get("kind", "observed"),
                          progress=progress)


def _find_store(store, meta: dict, workdir: Path, progress: bool = True):
    if store:
        return store
    regenerated = _regenerate_store(meta, workdir, progress)
    if regenerated is None:
        raise click.ClickException(
            "The catalogue holds no S/N, positions or parallaxes: pass the store it was "
            "produced from with --store sim.h5 (its provenance records no simulated survey "
            "seed to regenerate it from).")
    return regenerated


def _read(path):
    from .. import read_catalog

    try:
        return read_catalog(path)
    except ModuleNotFoundError as exc:
        if exc.name != "gaiarvs_cnn.catalog":
            raise
        from astropy.table import Table

        return Table.read(path)


def _collect_references(kinds, required, source, files, store, seed, ids) -> dict:
    from ..exceptions import GaiaRVSCNNError
    from ..validation.references import get_reference

    refs = {}
    for kind in kinds:
        src = "file" if kind in files else source
        try:
            refs[kind] = get_reference(kind, src, store=store, seed=seed, source_ids=ids,
                                       path=files.get(kind))
        except (GaiaRVSCNNError, ImportError, OSError) as exc:
            if kind in required:
                raise click.ClickException(f"Cannot obtain the {kind} reference ({src}): {exc}"
                                           ) from exc
            log.warning(f"Optional {kind} reference unavailable ({src}): {exc}")
    return refs


@main.command("validate")
@click.option("--catalog", "catalog_path", required=True, type=click.Path(exists=True,
              dir_okay=False), help="CNN catalogue (FITS, VOTable, ECSV or Parquet; 17 columns).")
@click.option("--against", "against", multiple=True, type=_ComparisonChoice(),
              default=("all",), show_default=True,
              help="Comparison(s) to run; repeat the option for several.")
@click.option("--source", type=click.Choice(("simulated", "archive")), default="simulated",
              show_default=True, help="Where the reference catalogues come from.")
@click.option("--reference", "reference_files", multiple=True, metavar="KIND=PATH",
              help="Use a canonical-schema reference file for KIND (galah, seismic, clusters, "
                   "gsp-spec, gsp-phot, apogee; published: the paper's released CSV); "
                   "overrides --source for that kind.")
@click.option("--store", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Store (.h5) or shard manifest (.json) the catalogue was produced from "
                   "(S/N, positions, parallaxes; truth for a simulated store). Default: "
                   "re-simulated from the catalogue provenance.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the simulated references' noise.")
@click.option("--out", "outdir", type=click.Path(file_okay=False), default="validation_report",
              show_default=True, help="Output directory.")
@click.option("--formats", default="png,pdf", show_default=True,
              help="Comma-separated figure formats; 'none' writes tables and summary only.")
@click.option("--overwrite", is_flag=True, help="Replace an existing report.")
@click.option("--quiet", is_flag=True, help="No progress bars and no INFO messages (warnings "
              "and errors only).")
def validate(catalog_path, against, source, reference_files, store, seed, outdir, formats,
             overwrite, quiet):
    """Validate a catalogue against GALAH, asteroseismology, open clusters, GSP-Spec/Phot.

    Writes OUT/ with one ECSV statistics table per comparison, PNG/PDF figures and
    summary.md / summary.html (bias and dispersion per label next to the paper's values).
    On a simulated store it also checks that the injected offsets are recovered.
    Exits with status 1 if a requested reference cannot be obtained ('all' skips,
    with a warning, the comparisons whose references cannot be).

    Without --store, a catalogue of the built-in simulated survey has its store
    re-simulated from the seed recorded in its provenance (INPUTSEL).

    \b
    Examples (catalog/ from 'produce-catalog', sim_catalog/ from 'produce-catalog
    --store sim.h5', gaia_rvs.h5 and galah.fits from 'fetch', gaia_results/ from
    'predict --store gaia_rvs.h5'):
      gaiarvs-cnn validate --catalog catalog/gaiarvs_cnn_catalog.fits --against all
      gaiarvs-cnn validate --catalog sim_catalog/gaiarvs_cnn_catalog.fits --store sim.h5 \\
          --against galah --against seismic --out sim_validation/
      gaiarvs-cnn validate --catalog gaia_results/gaiarvs_cnn_catalog.fits \\
          --store gaia_rvs.h5 --source archive --out gaia_validation/
      gaiarvs-cnn validate --catalog gaia_results/gaiarvs_cnn_catalog.fits \\
          --store gaia_rvs.h5 --against galah --reference galah=galah.fits --out galah_only/
    """
    if quiet:
        level = log.level
        log.setLevel("WARNING")
        click.get_current_context().call_on_close(lambda: log.setLevel(level))
    _validate(catalog_path, against, source, reference_files, store, seed, outdir, formats,
              overwrite, not quiet)


def _validate(catalog_path, against, source, reference_files, store, seed, outdir, formats,
              overwrite, progress):
    from ..validation.crossmatch import add_store_columns
    from ..validation.registry import comparison_names, needed_references
    from ..validation.report import write_report
    from ..validation.runner import has_truth, run_validation, simulator_bounds

    names = comparison_names()
    wanted = list(names) if "all" in against else [a for a in names if a in against]
    files = _parse_reference_files(reference_files)
    catalog = _read(catalog_path)
    with tempfile.TemporaryDirectory(prefix="gaiarvs_validate_") as work:
        store_path = _find_store(store, dict(catalog.meta), Path(work), progress)
        data = add_store_columns(catalog, store_path)
        required, optional = needed_references(wanted)
        # 'all' runs the comparisons whose required references can be obtained (the
        # published catalogue, e.g., has no simulated counterpart); a comparison named
        # in --against needs its references
        refs = _collect_references(required + optional,
                                   set() if "all" in against else set(required), source,
                                   files, store_path, seed, data["source_id"])
        if "all" in against:
            from ..validation.registry import get_comparison

            missing = [n for n in wanted if not set(get_comparison(n).required) <= set(refs)]
            for name in missing:
                log.warning(f"Skipping the {name} comparison: its reference is not "
                            f"available from --source {source} (give --reference).")
            wanted = [n for n in wanted if n not in missing]
        bounds = simulator_bounds() if has_truth(data) else None
        results = run_validation(data, wanted, refs, bounds)
    meta = {"catalogue": os.fspath(catalog_path), "store": os.fspath(store or "regenerated"),
            "references": ", ".join(f"{k}: {'file ' + files[k] if k in files else source}"
                                    for k in refs)}
    fmts = [] if formats.strip().lower() == "none" else [
        f.strip() for f in formats.split(",") if f.strip()]
    summary = write_report(results, outdir, fmts, overwrite=overwrite, meta=meta)
    click.echo(f"Validation report: {summary}")
