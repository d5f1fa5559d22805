"""``gaiarvs-cnn store info`` and ``gaiarvs-cnn store ingest``."""
from __future__ import annotations

import json
from pathlib import Path

import click

from . import main, set_output


@main.group("store")
def store_group():
    """Inspect and build HDF5 star stores.

    \b
    Examples (the ingest inputs are files of the Gaia archive, see 'store ingest --help'):
      gaiarvs-cnn store ingest --rvs "RVS-Gaia DR3 863983115982280448.fits" \\
          --xp "XP_CONTINUOUS-Gaia DR3 863983115982280448.ecsv" \\
          --gaia-source gaia_source.vot -o stars.h5
      gaiarvs-cnn store info stars.h5
    """


def store_summary(path, *, allow_incomplete: bool = False) -> dict:
    """`~gaiarvs_cnn.io.store.Store.summary` of the store at ``path``."""
    from ..io.store import Store

    with Store.open(path, allow_incomplete=allow_incomplete) as store:
        return store.summary()


def _print_summary(info: dict) -> None:
    click.echo(f"Store: {info['path']}")
    if not info.get("complete", True):
        click.echo("Status: INCOMPLETE - its writer stopped before finishing (killed or "
                   "failed); readers refuse it. Write it again.")
    click.echo(f"Stars: {info['n_stars']}")
    click.echo("Columns:")
    for name, spec in info["columns"].items():
        shape = "x".join(map(str, spec["shape"])) or "scalar"
        unit = f" [{spec['unit']}]" if spec["unit"] else ""
        click.echo(f"  {name:28s} {spec['dtype']:8s} {shape:8s}{unit}")
    click.echo(f"Extra columns: {', '.join(info['extra_columns']) or 'none'}")
    click.echo("Label coverage (fraction of stars with a finite label):")
    for name, frac in info["label_coverage"].items():
        click.echo(f"  {name:8s} {frac:.3f}")
    quant = info["snr_quantiles"]
    click.echo("RVS S/N quantiles: " + (", ".join(f"{q}%={v:.1f}" for q, v in quant.items())
                                       if quant else "no finite S/N"))
    click.echo("Meta: " + json.dumps(info["meta"], indent=1, default=str))


@store_group.command("info")
@click.argument("store", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(store, as_json):
    """Summarise STORE: stars, columns and units, meta, label coverage, S/N quantiles.

    \b
    Examples (stars.h5 from 'store ingest', gaia_rvs.h5 from 'fetch gaia'):
      gaiarvs-cnn store info stars.h5
      gaiarvs-cnn store info gaia_rvs.h5
    """
    summary = store_summary(store, allow_incomplete=True)
    if as_json:
        click.echo(json.dumps(summary, indent=1, default=str))
    else:
        _print_summary(summary)


@store_group.command("ingest", calls="ingest_to_store")
@click.option("--rvs", "rvs_files", multiple=True, required=True,
              type=click.Path(exists=True, path_type=Path),
              help="RVS product(s): DataLink FITS/CSV/ECSV/VOTable, DataLink zip or folder, "
                   "or bulk RvsMeanSpectrum_*.csv.gz. Repeat the option for several files.")
@click.option("--xp", "xp_files", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="XP continuous product(s) (same forms as --rvs). Repeatable.")
@click.option("--gaia-source", "gaia_source", type=click.Path(exists=True, path_type=Path),
              help="gaia_source query result (VOTable/ECSV/CSV/FITS) with photometry, "
                   "parallax, ruwe and rvs_spec_sig_to_noise.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output HDF5 store.")
@click.option("--on-error", type=click.Choice(["raise", "skip"]), default=None,
              help="Stop at the first bad star or unusable file (raise), or skip and log "
                   "each one with its reason (skip) [default: gaiarvs_cnn.conf.on_error = "
                   "raise].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output store.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=None,
              help="Stars per chunk [default: gaiarvs_cnn.conf.chunk_size = 4096].")
def ingest(rvs_files, xp_files, gaia_source, output, on_error, overwrite, chunk_size):
    """Read real Gaia files (RVS, XP continuous, gaia_source) into a new store.

    The RVS and XP_CONTINUOUS files are DataLink products of the Gaia archive (one
    per star, as its DataLink service names them); gaia_source.vot is the result of an
    archive query of gaiadr3.gaia_source for the same source_ids, saved as VOTable.
    --xp and --gaia-source are optional: stars without them are written with those
    columns empty (NaN), for networks that do not use them (e.g. an RVS-only network).

    \b
    Example:
      gaiarvs-cnn store ingest --rvs "RVS-Gaia DR3 863983115982280448.fits" \\
          --xp "XP_CONTINUOUS-Gaia DR3 863983115982280448.ecsv" \\
          --gaia-source gaia_source.vot -o stars.h5
    """
    from ..io.ingest import ingest_to_store

    set_output(output)
    path = ingest_to_store(rvs_files, xp_files, output, gaia_source=gaia_source, on_error=on_error,
                           overwrite=overwrite, chunk_size=chunk_size)
    summary = store_summary(path)
    click.echo(f"Wrote {path}: {summary['n_stars']} stars "
               f"({summary['meta'].get('n_skipped', 0)} skipped).")
    coverage = summary["meta"].get("network_coverage", {})
    if coverage:
        click.echo("Usable by networks with inputs: "
                   + ", ".join(f"{name} {n}" for name, n in coverage.items())
                   + " (stars without XP or photometry are kept for the networks that do "
                     "not use them).")


#: Why ``store convert`` refuses (stores have one layout since the first release).
CONVERT_REMOVED = (
    "gaiarvs-cnn stores have one layout (column-wise, format 2), so there is nothing to "
    "convert. Stores in the compound-row layout of pre-release versions (format 1) are not "
    "read any more: write them again from their inputs ('store ingest', 'fetch gaia' or "
    "'simulate').")


@store_group.command("convert", hidden=True)
@click.argument("store", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Not used: the command only explains why there is nothing to convert.")
@click.option("--layout", type=click.Choice(["columns", "rows"]), default="columns",
              help="Not used.")
@click.option("--overwrite", is_flag=True, help="Not used.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=None, help="Not used.")
def convert(store, output, layout, overwrite, chunk_size):
    """Removed: stores have one layout; this command only says so (kept for old scripts)."""
    raise click.ClickException(CONVERT_REMOVED)
