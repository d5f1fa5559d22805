"""``gaiarvs-cnn train``: train the hybrid CNN ensemble on a store of labelled stars."""
from __future__ import annotations

from pathlib import Path

import click

from . import main, set_output


def parse_index_list(spec: str) -> list[int]:
    """Member indices from ``'0-3,7,9-10'`` (inclusive ranges).

    Parameters
    ----------
    spec : str
        Comma-separated indices and inclusive ``a-b`` ranges.

    Returns
    -------
    list of int
        The indices, in the order given.

    Raises
    ------
    click.BadParameter
        If a part is not an integer or a range.
    """
    out: list[int] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        lo, sep, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise click.BadParameter(f"{part!r} is not an index or a range like '0-13'.",
                                     param_hint="--members") from None
    if not out:
        raise click.BadParameter("no member index given.", param_hint="--members")
    return out


@main.command("train", calls="train_ensemble")
@click.option("--store", "store", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="HDF5 store of training stars (with labels).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory to create (or resume).")
@click.option("--splits", type=click.IntRange(min=1), default=7, show_default=True,
              help="Random 75/25 train/validation splits.")
@click.option("--models", type=click.IntRange(min=1), default=4, show_default=True,
              help="Members trained per split.")
@click.option("--epochs", type=click.IntRange(min=1), default=200, show_default=True,
              help="Maximum epochs per member (early stopping, patience from the config).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of splits and members.")
@click.option("--max-stars", type=click.IntRange(min=1), default=None,
              help="Use only the first N labelled stars.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path),
              help="NetworkConfig JSON (e.g. the 'config.json' of a bundle); default: "
                   "the paper's network.")
@click.option("--rvs-only", is_flag=True, help="Train on RVS spectra only (paper App. B).")
@click.option("--no-tsne", is_flag=True, help="Skip the t-SNE reference (flags then cannot "
              "test spectra).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train members as Dask tasks on a local cluster of this many worker "
                   "processes (cores shared); 1: in this process.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Train members as tasks on a running Dask cluster (e.g. "
                   "tcp://10.0.0.1:8786); --store and --out must be on a file system "
                   "the workers share.")
@click.option("--threads-per-worker", type=click.IntRange(min=1), default=None,
              help="TensorFlow threads of each Dask worker [local: cores / workers; "
                   "--scheduler: the worker's own --nthreads].")
@click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
              help="Extra attempts of a failing member task (Dask).")
@click.option("--members", "member_spec", default=None, metavar="LIST",
              help="Train only these member indices (e.g. '0-13' or '0,2,4') and stop "
                   "without writing the bundle: for several processes or machines sharing "
                   "--out; a final run without --members assembles the bundle.")
@click.option("--demo", is_flag=True, help="Rebuild the shipped demo bundle instead "
              "(simulated stars; ignores the other options).")
def train(store, out, splits, models, epochs, seed, max_stars, config_file, rvs_only, no_tsne,
          workers, scheduler, threads_per_worker, retries, member_spec, demo):
    """Train an ensemble of SPLITS x MODELS hybrid CNNs and write a model bundle.

    The run is resumable: start it again with the same options and finished members
    are kept.

    \b
    Examples (train.h5: labelled stars, from 'simulate --kind training' as below or
    'fetch gaia --training apogee'):
      gaiarvs-cnn simulate --n 20000 --kind training -o train.h5
      gaiarvs-cnn train --store train.h5 --out my_bundle/
      gaiarvs-cnn train --store train.h5 --out rvs_only/ --rvs-only --splits 2 --models 2
      gaiarvs-cnn train --store train.h5 --out two_workers/ --workers 2
      gaiarvs-cnn train --store train.h5 --out shared/ --members 0-13    # machine A
      gaiarvs-cnn train --store train.h5 --out shared/ --members 14-27   # machine B
      gaiarvs-cnn train --store train.h5 --out shared/                   # assemble
      gaiarvs-cnn train --demo
    """
    if demo:
        from ..model.demo import build_demo_bundle

        bundle = build_demo_bundle()
    else:
        if store is None or out is None:
            raise click.UsageError("--store and --out are required (or use --demo).")
        set_output(out)
        from ..model import NetworkConfig, train_ensemble, train_members

        config = (NetworkConfig.from_json(config_file.read_text()) if config_file
                  else NetworkConfig())
        if rvs_only:
            config = config.replace(inputs=("rvs",))
        common = dict(n_splits=splits, n_models=models, epochs=epochs, seed=seed,
                      max_stars=max_stars)
        if member_spec is not None:
            done = train_members(store, out, parse_index_list(member_spec), config, **common)
            click.echo(f"Members {', '.join(done)} trained in {out}; run without --members "
                       "to assemble the bundle.")
            return
        executor = None
        if scheduler or workers > 1:
            import os

            from ..production import DaskExecutor

            threads = threads_per_worker or (
                None if scheduler else max(1, (os.cpu_count() or 1) // workers))
            executor = DaskExecutor(scheduler=scheduler, workers=workers,
                                    threads_per_worker=threads, retries=retries)
        try:
            bundle = train_ensemble(store, out, config, tsne=not no_tsne, executor=executor,
                                    **common)
        finally:
            if executor is not None:
                executor.close()
    click.echo(f"Model bundle {bundle.bundle_id} ({bundle.n_members} members) in {bundle.path}")


@main.command("calibrate", calls="calibrate_bundle")
@click.option("--model", "model", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Model bundle to calibrate (modified in place).")
@click.option("--store", "store", required=True,
              type=click.Path(exists=True, path_type=Path),
              help="Store (or shard manifest) of labelled stars the bundle did not train on.")
@click.option("--label-bins", type=click.IntRange(min=1), default=6, show_default=True,
              help="Bins of the predicted label per S/N bin.")
@click.option("--min-per-bin", type=click.IntRange(min=10), default=60, show_default=True,
              help="Minimum stars per (S/N, label) bin.")
def calibrate(model, store, label_bins, min_per_bin):
    """Calibrate a bundle's sigma_* on held-out labelled stars.

    Fits, per label, the running-dispersion term of sigma_* in bins of S/N and
    predicted label so that 68 % of the held-out stars fall within 1 sigma of their
    reference label (the reference's own errors removed), and stores it in the
    bundle (calibration.json; the bundle_id changes). Use stars the ensemble did not
    train on and that span the S/N of the stars you will predict.

    \b
    Examples (my_bundle/: from 'gaiarvs-cnn train' above):
      gaiarvs-cnn simulate --n 3000 --kind calibration -o heldout.h5
      gaiarvs-cnn calibrate --model my_bundle/ --store heldout.h5
    """
    from ..model.calibration import calibrate_bundle

    bundle = calibrate_bundle(model, store, n_label_bins=label_bins, min_per_bin=min_per_bin)
    cov = bundle.meta["calibration"]["coverage_on_calibration_stars"]
    click.echo(f"Calibrated model bundle {bundle.bundle_id} in {bundle.path} on "
               f"{bundle.meta['calibration']['n_stars']} stars; fraction within 1 sigma:")
    for lab in bundle.config.labels:
        click.echo(f"  {lab:7s} " + "  ".join(f"S/N {k}: {v:.2f}" for k, v in cov[lab].items()))
