"""``gaiarvs-cnn simulate``: write a simulated Gaia-RVS survey to an HDF5 store."""
from __future__ import annotations

import click

from . import RegistryChoice, main, set_output


def _simulation_kinds() -> tuple[str, ...]:
    from ..simulate.survey import SIM_KINDS

    return SIM_KINDS

@main.command("simulate", calls="simulate_store")
@click.option("--n", "n", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Number of stars.")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True,
              help="Random seed.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="sim.h5",
              show_default=True, help="Output HDF5 store.")
@click.option("--kind", type=RegistryChoice(_simulation_kinds),
              default="observed", show_default=True,
              help="training: APOGEE-like labelled stars passing the paper's cuts (S/N>=30); "
                   "observed: the sample to parameterise (S/N>=15, a few % out-of-range "
                   "stars and cluster members); out-of-range: hot, M-giant, very metal-poor; "
                   "calibration: labelled stars as for training but down to S/N 15 (held "
                   "out, for 'gaiarvs-cnn calibrate').")
@click.option("--snr", type=click.FloatRange(min=1e-3), default=None,
              help="Give every star this RVS S/N (default: drawn from G_RVS like DR3).")
@click.option("--snr-range", type=(float, float), default=None,
              help="Draw the S/N log-uniformly between two values, e.g. --snr-range 15 25.")
@click.option("--rv-sigma", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Std. dev. of residual radial-velocity shifts left in the spectra [km/s].")
@click.option("--realism", default=None, metavar="SPEC",
              help="Ingredients of real DR3 spectra (domain randomisation): 'dr3' (all), "
                   "'none', or a list such as 'continuum,nearby' or 'dr3,-nearby' "
                   "[default: 'dr3' for --kind training, 'none' otherwise].")
@click.option("--chunk-size", type=click.IntRange(min=1), default=4096, show_default=True,
              help="Stars simulated and written per chunk.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def simulate(n, seed, output, kind, snr, snr_range, rv_sigma, realism, chunk_size, overwrite,
             quiet):
    """Simulate Gaia-RVS stars (spectra, G/BP/RP, parallax, XP, truth) into a store.

    \b
    Examples:
      gaiarvs-cnn simulate --n 100000 --seed 1 -o sim.h5
      gaiarvs-cnn simulate --n 20000 --kind training -o train.h5
      gaiarvs-cnn simulate --n 20000 --kind training --realism none -o ideal.h5
      gaiarvs-cnn simulate --n 5000 --seed 2 --snr-range 15 25 -o faint.h5
    """
    from ..simulate.survey import RECOMMENDED_REALISM, LogUniformSNR, simulate_store

    if snr is not None and snr_range is not None:
        raise click.UsageError("Give either --snr or --snr-range, not both.")
    draw = LogUniformSNR(*snr_range) if snr_range is not None else snr
    set_output(output)
    path = simulate_store(output, n, seed=seed, kind=kind, chunk_size=chunk_size,
                          overwrite=overwrite, snr=draw, rv_sigma=rv_sigma,
                          progress=not quiet,
                          realism=RECOMMENDED_REALISM[kind] if realism is None else realism)
    click.echo(f"Wrote {n} simulated {kind} stars to {path}")
