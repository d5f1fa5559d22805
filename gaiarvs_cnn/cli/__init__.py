"""The ``gaiarvs-cnn`` command line (click). It only parses options and calls the library.

Each sub-command lives in its own module of this package and is registered here.
"""
from __future__ import annotations

import click

from ..version import __version__

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="gaiarvs-cnn")
def main():
    """gaiarvs-cnn: Teff, log g, [M/H], [alpha/M], [Fe/H] for Gaia-RVS stars with a hybrid
    CNN ensemble (Guiglion, Nepal et al. 2024).

    \b
    Quick start (offline, built-in simulated survey):
      gaiarvs-cnn produce-catalog
      gaiarvs-cnn validate --catalog catalog/gaiarvs_cnn_catalog.fits --against all

    \b
    Examples:
      gaiarvs-cnn produce-catalog                      # offline: simulate, predict, flag, write
      gaiarvs-cnn simulate --n 20000 --kind training -o train.h5
      gaiarvs-cnn fetch gaia --source-ids ids.txt -o stars.h5
      gaiarvs-cnn fetch reference --kind galah -o galah.fits
      gaiarvs-cnn store info stars.h5
      gaiarvs-cnn train --store train.h5 --out my_bundle/
      gaiarvs-cnn predict --store stars.h5 --model my_bundle/ --out results/
      gaiarvs-cnn shard survey.h5 survey_shards --stars-per-shard 200000
      gaiarvs-cnn manifest validate survey_shards/manifest.json
      gaiarvs-cnn validate --catalog catalog/gaiarvs_cnn_catalog.fits --against all
    """


def _register() -> None:
    """Import the command modules; each adds its command(s) to `main`."""
    import importlib

    for name in ("store_cmds", "simulate", "train", "catalog_cmds", "fetch", "validate",
                 "distributed_cmds", "config_cmd"):
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise


_register()
