"""``gaiarvs-cnn fit-spectra``: the physics fit of a store's spectra (and the label check)."""
from __future__ import annotations

from pathlib import Path

import click

from . import main, set_output


@main.command("fit-spectra")
@click.argument("store", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output table (.ecsv, .fits, ...): fitted labels, RV, chi2 per star.")
@click.option("--catalog", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None,
              help="A catalogue of 'predict' to check: adds chi2_at_labels and delta_chi2 "
                   "(chi2 at its labels minus chi2 of the best fit).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Fit only the first N stars of the store.")
@click.option("--error-floor", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Added in quadrature to the flux errors (forward-model imperfection).")
@click.option("--overwrite", is_flag=True, help="Replace an existing output table.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def fit_spectra(store, out, catalog, limit, error_floor, overwrite, quiet):
    """Fit the simulator's forward model (labels, RV, continuum) to every spectrum of STORE.

    A physics fit beside the network (gaiarvs_cnn.simulate.physics_fit): a diagnostic for
    stars the network may not transfer to, and with --catalog a per-star consistency check of
    the network's labels. About 0.5 s per star.

    \b
    Example:
      gaiarvs-cnn fit-spectra gaia_rvs.h5 --catalog gaia_results/gaiarvs_cnn_catalog.fits \\
          -o gaia_results/physics_fit.ecsv
    """
    from ..simulate.physics_fit import fit_store

    labels = None
    if catalog is not None:
        from ..catalog import read_catalog

        labels = read_catalog(catalog)
    set_output(out)
    table = fit_store(store, labels=labels, limit=limit, out=out, overwrite=overwrite,
                      error_floor=error_floor, progress=not quiet)
    n_ok = int(table["fit_success"].sum())
    line = f"fit-spectra: {n_ok} of {len(table)} spectra fitted -> {out}"
    if "delta_chi2" in table.colnames:
        checked = int((table["delta_chi2"] == table["delta_chi2"]).sum())
        line += f"; {checked} checked against {catalog.name}"
    click.echo(line)
