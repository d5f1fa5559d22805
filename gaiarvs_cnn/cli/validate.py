"""``gaiarvs-cnn validate``: compare a catalogue with reference surveys, write a report."""
from __future__ import annotations

import click

from . import RegistryChoice, main


def _comparison_names() -> tuple[str, ...]:
    from ..validation.registry import comparison_names

    return comparison_names()


def _reference_kinds() -> tuple[str, ...]:
    from ..io.reference import ALL_KINDS

    return ALL_KINDS


def _sources() -> tuple[str, ...]:
    from ..validation.pipeline import SOURCES

    return SOURCES


def against_choices() -> tuple[str, ...]:
    """The names ``--against`` accepts: every registered comparison, then ``all``."""
    return tuple(RegistryChoice(_comparison_names, "all").choices)


def _parse_reference_files(values) -> dict[str, str]:
    kinds = _reference_kinds()
    out = {}
    for value in values:
        kind, sep, path = value.partition("=")
        if not sep or kind not in kinds:
            raise click.BadParameter(f"{value!r}: use KIND=PATH with KIND one of "
                                     f"{', '.join(kinds)}.", param_hint="--reference")
        out[kind] = path
    return out


@main.command("validate", calls="validate_catalog")
@click.option("--catalog", "catalog", required=True, type=click.Path(exists=True,
              dir_okay=False), help="CNN catalogue (FITS, VOTable, ECSV or Parquet; 17 columns).")
@click.option("--against", "against", multiple=True,
              type=RegistryChoice(_comparison_names, "all"),
              default=("all",), show_default=True,
              help="Comparison(s) to run; repeat the option for several.")
@click.option("--source", type=RegistryChoice(_sources), default="simulated",
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
@click.option("--out", "out", type=click.Path(file_okay=False), default="validation_report",
              show_default=True, help="Output directory.")
@click.option("--formats", default="png,pdf", show_default=True,
              help="Comma-separated figure formats; 'none' writes tables and summary only.")
@click.option("--overwrite", is_flag=True, help="Replace an existing report.")
@click.option("--quiet", is_flag=True, help="No progress bars and no INFO messages (warnings "
              "and errors only).")
def validate(catalog, against, source, reference_files, store, seed, out, formats, overwrite,
             quiet):
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
    from astropy import log

    from ..validation.pipeline import validate_catalog

    if quiet:
        level = log.level
        log.setLevel("WARNING")
        click.get_current_context().call_on_close(lambda: log.setLevel(level))
    fmts = [] if formats.strip().lower() == "none" else [
        f.strip() for f in formats.split(",") if f.strip()]
    run = validate_catalog(catalog, against=against, source=source,
                           reference_files=_parse_reference_files(reference_files),
                           store=store, seed=seed, out=out, formats=fmts,
                           overwrite=overwrite, progress=not quiet)
    click.echo(f"Validation report: {run.summary}")
