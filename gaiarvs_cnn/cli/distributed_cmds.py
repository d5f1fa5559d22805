"""``gaiarvs-cnn shard`` and ``gaiarvs-cnn manifest``: sharded stores for large surveys.

Also provides `dask_options`, the ``--scheduler/--workers/...`` options that the
``predict`` command uses to run on a Dask cluster (`gaiarvs_cnn.production.DaskExecutor`).
"""
from __future__ import annotations

import functools
from pathlib import Path

import click

from . import main


@main.command("shard", calls="shard_store")
@click.argument("store", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--stars-per-shard", "-n", type=click.IntRange(min=1), default=100_000,
              show_default=True, help="Stars per shard file (the last may hold fewer).")
@click.option("--manifest-name", default="manifest.json", show_default=True,
              help="File name of the manifest written in OUT_DIR.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=None,
              help="Stars read at a time (default: gaiarvs_cnn.conf.chunk_size).")
@click.option("--overwrite", is_flag=True, help="Replace an existing manifest and shards.")
def shard(store, out_dir, stars_per_shard, manifest_name, chunk_size, overwrite):
    """Cut STORE (an .h5 store or a manifest) into shards of N stars in OUT_DIR.

    Writes OUT_DIR/shard-00000.h5, ... and a JSON manifest (paths, star counts,
    source_id ranges, SHA-256 checksums) that every gaiarvs-cnn reader, `predict`
    and `produce-catalog` accept in place of a single store.

    \b
    Examples (sim.h5 from 'simulate', my_bundle/ from 'train'):
      gaiarvs-cnn shard sim.h5 survey_shards --stars-per-shard 20000
      gaiarvs-cnn predict --store survey_shards/manifest.json --model my_bundle/ \\
          --workers 4 --out survey_results/
    """
    from ..io.manifest import read_manifest
    from ..io.shards import shard_store

    path = shard_store(store, out_dir, stars_per_shard, manifest_name=manifest_name,
                       chunk_size=chunk_size, overwrite=overwrite)
    manifest = read_manifest(path)
    click.echo(f"{path}: {len(manifest.shards)} shard(s), {manifest.n_stars} stars")


@main.group("manifest")
def manifest_group():
    """Create or check the JSON manifest of a sharded store.

    \b
    Examples (sim.h5 and faint.h5 from 'simulate', survey_shards/ from 'shard'):
      gaiarvs-cnn manifest create sim_and_faint.json sim.h5 faint.h5
      gaiarvs-cnn manifest validate sim_and_faint.json
      gaiarvs-cnn manifest validate survey_shards/manifest.json
    """


@manifest_group.command("create", calls="create_manifest")
@click.argument("manifest", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("shards", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace an existing manifest.")
def manifest_create(manifest, shards, overwrite):
    """Write MANIFEST describing existing store files SHARDS (in the order given).

    Use it for stores made separately, e.g. one per Gaia bulk-download file.

    \b
    Example (sim.h5 and faint.h5 from 'simulate'):
      gaiarvs-cnn manifest create sim_and_faint.json sim.h5 faint.h5
    """
    from ..io.manifest import create_manifest

    m = create_manifest(shards, manifest, overwrite=overwrite)
    click.echo(f"{manifest}: {len(m.shards)} shard(s), {m.n_stars} stars")


@manifest_group.command("validate")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--no-checksums", is_flag=True,
              help="Skip the SHA-256 checks (which read every byte).")
def manifest_validate(manifest, no_checksums):
    """Check that every shard of MANIFEST exists and matches its size, checksum and count.

    Exits with status 1 and names the offending shard if not.

    \b
    Examples (sim_and_faint.json from 'manifest create', survey_shards/ from 'shard'):
      gaiarvs-cnn manifest validate sim_and_faint.json
      gaiarvs-cnn manifest validate survey_shards/manifest.json
    """
    from ..io.manifest import read_manifest

    m = read_manifest(manifest)
    m.validate(checksums=not no_checksums)
    click.echo(f"{manifest}: OK ({len(m.shards)} shard(s), {m.n_stars} stars)")


def dask_options(func):
    """Add the Dask options (``--scheduler``, ``--workers``, ...) to a click command.

    The decorated command receives ``scheduler``, ``workers``, ``threads_per_worker``,
    ``work_dir``, ``retries`` and ``performance_report`` (options of
    `gaiarvs_cnn.production.CatalogRun`).
    """
    options = [
        click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Run on this Dask scheduler, e.g. tcp://10.0.0.1:8786 "
                          "(dask-jobqueue / dask-gateway clusters)."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Run on a local Dask cluster of this many worker processes."),
        click.option("--threads-per-worker", type=click.IntRange(min=1), default=1,
                     show_default=True, help="Threads (TensorFlow) per Dask worker."),
        click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path),
                     default=None, help="Work directory of the chunk results (kept, and reused "
                                        "by the same run; must be on a disk all workers see). "
                                        "Default: a per-run directory beside the output, "
                                        "removed once the catalogue is written."),
        click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
                     help="Extra attempts of a failing chunk (Dask)."),
        click.option("--performance-report", type=click.Path(dir_okay=False, path_type=Path),
                     default=None, help="Write Dask's HTML performance report here."),
    ]
    return functools.reduce(lambda f, opt: opt(f), reversed(options), func)
