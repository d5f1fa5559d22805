"""``gaiarvs-cnn train``: train the hybrid CNN ensemble on a store of labelled stars."""
from __future__ import annotations

from pathlib import Path

import click

from . import main


@main.command("train")
@click.option("--store", "store", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="HDF5 store of training stars (with labels).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Bundle directory to create (or resume).")
@click.option("--splits", default=7, show_default=True, help="Random 75/25 train/validation "
              "splits.")
@click.option("--models", default=4, show_default=True, help="Members trained per split.")
@click.option("--epochs", default=200, show_default=True, help="Maximum epochs per member "
              "(early stopping, patience from the config).")
@click.option("--seed", default=0, show_default=True, help="Seed of splits and members.")
@click.option("--max-stars", type=int, default=None, help="Use only the first N labelled "
              "stars.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False,
                                                         path_type=Path),
              help="NetworkConfig JSON (e.g. the 'config.json' of a bundle); default: "
                   "the paper's network.")
@click.option("--rvs-only", is_flag=True, help="Train on RVS spectra only (paper App. B).")
@click.option("--no-tsne", is_flag=True, help="Skip the t-SNE reference (flags then cannot "
              "test spectra).")
@click.option("--demo", is_flag=True, help="Rebuild the shipped demo bundle instead "
              "(simulated stars; ignores the other options).")
def train(store, out, splits, models, epochs, seed, max_stars, config_file, rvs_only, no_tsne,
          demo):
    """Train an ensemble of SPLITS x MODELS hybrid CNNs and write a model bundle.

    The run is resumable: start it again with the same options and finished members
    are kept.

    \b
    Examples:
      gaiarvs-cnn simulate --n 30000 --kind training --out sim.h5
      gaiarvs-cnn train --store sim.h5 --out model_dir/
      gaiarvs-cnn train --store sim.h5 --out rvs_only/ --rvs-only --splits 2 --models 2
      gaiarvs-cnn train --demo
    """
    if demo:
        from ..model.demo import build_demo_bundle

        bundle = build_demo_bundle()
    else:
        if store is None or out is None:
            raise click.UsageError("--store and --out are required (or use --demo).")
        from ..model import NetworkConfig, train_ensemble

        config = (NetworkConfig.from_json(config_file.read_text()) if config_file
                  else NetworkConfig())
        if rvs_only:
            config = config.replace(inputs=("rvs",))
        bundle = train_ensemble(store, out, config, n_splits=splits, n_models=models,
                                epochs=epochs, seed=seed, max_stars=max_stars,
                                tsne=not no_tsne)
    click.echo(f"Model bundle {bundle.bundle_id} ({bundle.n_members} members) in {bundle.path}")
