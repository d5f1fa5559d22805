"""``gaiarvs-cnn produce-catalog`` and ``predict``: parse options, call the production engine."""
from __future__ import annotations

from pathlib import Path

import click

from ..constants import PRECISIONS
from . import Interrupted, main
from .distributed_cmds import dask_options


def _check_formats(ctx, param, value: str) -> str:
    """``--format``: one catalogue format, ``both`` or a comma-separated list."""
    from ..catalog import parse_formats
    from ..exceptions import InputDataError

    try:
        parse_formats(value)
    except InputDataError as exc:
        raise click.BadParameter(str(exc)) from exc
    return value


def _common_options(func):
    """Options shared by produce-catalog and predict."""
    opts = [
        click.option("--out", type=click.Path(path_type=Path), default=Path("catalog"),
                     show_default=True,
                     help="Output directory (gaiarvs_cnn_catalog.fits/.vot/... inside it) or "
                          "a file name ending in .fits, .vot, .ecsv or .parquet."),
        click.option("--format", "formats", default="both", show_default=True,
                     callback=_check_formats,
                     help="Catalogue format(s): fits (binary table), votable (BINARY2), ecsv, "
                          "parquet, both (fits and votable) or a list such as "
                          "fits,votable,parquet."),
        click.option("--chunk-size", type=click.IntRange(min=1), default=None,
                     help="Stars per chunk [default: gaiarvs_cnn.conf.chunk_size = 4096]."),
        click.option("--resume", is_flag=True,
                     help="Continue an interrupted run from its last completed chunk."),
        click.option("--limit", type=click.IntRange(min=1), default=None,
                     help="Use only the first N stars of the store."),
        click.option("--overwrite", is_flag=True,
                     help="Replace existing catalogues (only once the new ones are complete)."),
        click.option("--precision", type=click.Choice(PRECISIONS),
                     default="float32", show_default=True,
                     help="Arithmetic of the network. bfloat16 (opt-in) is about twice as "
                          "fast on CPUs with AVX512_BF16 or AMX; its effect on the labels "
                          "is on the performance page. Recorded in the catalogue header."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _run(command: str, **options) -> None:
    """Run the engine with ``options``; print the summary headed by ``command``."""
    from ..production import run_catalog

    try:
        summary = run_catalog(**options)
    except KeyboardInterrupt:
        raise Interrupted(
            "Interrupted. Completed chunks are kept; run the same command with --resume to "
            "continue from the last completed chunk.") from None
    click.echo("\n".join([f"{command} summary:", *("  " + s for s in summary.lines())]))


@main.command("produce-catalog", calls="run_catalog")
@click.option("--source", type=click.Choice(["simulated", "gaia", "files"]),
              default="simulated", show_default=True,
              help="simulated: the built-in survey (offline); gaia/files: read --store "
                   "(written by 'gaiarvs-cnn fetch gaia', 'ingest' or 'simulate').")
@click.option("--store", type=click.Path(path_type=Path), default=None,
              help="HDF5 store or shard manifest of the stars (for --source gaia|files).")
@click.option("--model", type=click.Path(path_type=Path), default=None,
              help="Model bundle directory [default: the shipped demo bundle].")
@click.option("--train", is_flag=True,
              help="Train a fresh demo-size ensemble on simulated training stars first "
                   "(kept in <out>/gaiarvs_cnn_catalog_bundle; slower).")
@click.option("--n-stars", type=click.IntRange(min=1), default=None,
              help="Stars of the simulated survey [default: 20000].")
@click.option("--seed", type=int, default=None, help="Seed of the simulated survey [7].")
@_common_options
def produce_catalog(source, store, model, train, n_stars, seed, out, formats, chunk_size,
                    resume, limit, overwrite, precision, quiet):
    """Run the whole pipeline and write the catalogue (17 columns, paper Table 2).

    Stages: simulate (or read --store) -> input cuts -> model bundle -> CNN labels ->
    flag_boundary (training ranges + t-SNE) -> FITS + VOTable. Each stage is timed; a
    summary ends the run. Interrupted runs continue with --resume.

    \b
    Examples (stars.h5 from 'store ingest', sim.h5 from 'simulate', my_bundle/ from
    'train'; see their --help):
      gaiarvs-cnn produce-catalog                       # offline, simulated survey
      gaiarvs-cnn produce-catalog --n-stars 2000 --out small_catalog/ --overwrite
      gaiarvs-cnn produce-catalog --source gaia --store stars.h5 --model my_bundle/ \\
          --out stars_catalog/
      gaiarvs-cnn produce-catalog --source files --store sim.h5 --out sim_catalog/ --resume
    """
    from ..production import DEFAULT_N_STARS, DEFAULT_SEED

    if source == "simulated" and store is not None:
        raise click.UsageError("--store needs --source gaia or --source files.")
    _run("produce-catalog", source=source, store=store, model=model, train=train,
         n_stars=n_stars or DEFAULT_N_STARS, seed=DEFAULT_SEED if seed is None else seed,
         out=out, formats=formats, chunk_size=chunk_size, resume=resume, limit=limit,
         overwrite=overwrite, precision=precision, progress=not quiet)


@main.command("predict")
@click.option("--store", type=click.Path(path_type=Path), required=True,
              help="HDF5 store or shard manifest of the stars to parameterise.")
@click.option("--model", "bundle", type=click.Path(path_type=Path), default=None,
              help="Model bundle directory [default: the shipped demo bundle].")
@_common_options
@dask_options
def predict(store, bundle, out, formats, chunk_size, resume, limit, overwrite, precision,
            quiet, scheduler, workers, threads_per_worker, work_dir, retries, performance_report):
    """Parameterise the stars of a store with a model bundle; write the catalogue.

    For users with their own trained bundle ('gaiarvs-cnn train'). With --scheduler or
    --workers the chunks are computed on a Dask cluster; the catalogue is the same.

    \b
    Examples (stars.h5 from 'store ingest', gaia_rvs.h5 from 'fetch gaia', survey_shards/
    from 'shard', my_bundle/ from 'train'; see their --help):
      gaiarvs-cnn predict --store stars.h5 --model my_bundle/ --out results/
      gaiarvs-cnn predict --store gaia_rvs.h5 --model my_bundle/ --out gaia_results/
      gaiarvs-cnn predict --store survey_shards/manifest.json --model my_bundle/ \\
          --workers 4 --out survey_results/
    """
    _run("predict", source="files", store=store, model=bundle, out=out, formats=formats,
         chunk_size=chunk_size, resume=resume, limit=limit, overwrite=overwrite,
         precision=precision, progress=not quiet, scheduler=scheduler, workers=workers,
         threads_per_worker=threads_per_worker, work_dir=work_dir, retries=retries,
         performance_report=performance_report)
