"""Figure tests of the simulated survey (pytest-mpl baselines in validation/baseline/)."""
from __future__ import annotations

from pathlib import Path

import pytest

from gaiarvs_cnn.simulate import realism
from gaiarvs_cnn.simulate.survey import (
    plot_calcium_triplet,
    plot_kiel_spectra,
    plot_real_comparison,
)

DATA = Path(__file__).parent.parent / "tests" / "data"
MPL = {"tolerance": 3, "savefig_kwargs": {"dpi": 60}}


@pytest.mark.mpl_image_compare(filename="simulated_kiel_spectra.png", **MPL)
def test_kiel_spectra_figure():
    return plot_kiel_spectra()


@pytest.mark.mpl_image_compare(filename="simulated_calcium_triplet.png", **MPL)
def test_calcium_triplet_figure():
    return plot_calcium_triplet()


@pytest.mark.mpl_image_compare(filename="simulated_vs_real_spectra.png", **MPL)
def test_simulated_versus_real_spectra_figure():
    real = {name: flux for name, (flux, _) in realism.load_reference_spectra(DATA).items()}
    labels = {name: realism.REFERENCE_STARS[name][0] for name in real}
    fig = plot_real_comparison(real, labels)
    assert len(fig.axes) == 4
    return fig


@pytest.mark.mpl_image_compare(filename="simulated_vs_real_xp.png", **MPL)
def test_simulated_versus_real_xp_figure():
    """Gaia DR3 5937083312263887616 (XP_SAMPLED, XP_CONTINUOUS) and the five simulated stars
    of the nearest XP colour (GaiaXPy-calibrated)."""
    import io
    import zipfile

    import numpy as np
    from astropy.table import Table

    from gaiarvs_cnn.simulate import xp
    from gaiarvs_cnn.simulate.figures import plot_xp_comparison
    from gaiarvs_cnn.simulate.survey import simulate_batch

    bundle = DATA / "gaia_real" / "astroquery_gaia" / (
        "gaia_dr3_source_id_5937083312263887616_dl_products_csv.zip")
    with zipfile.ZipFile(bundle) as z:
        sampled = Table.read(io.BytesIO(z.read("XP_SAMPLED-Gaia DR3 5937083312263887616.csv")),
                             format="ascii.csv")
    rows = xp.read_reference_rows()
    real = rows[rows["source_id"] == 5937083312263887616][0]
    real_c = {b: np.asarray(real[f"{b}_coefficients"], float) for b in xp.XP_BANDS}
    sim = simulate_batch(600, seed=3, kind="observed")
    colour = xp.xp_colour(sim["bp_coefficients"], sim["rp_coefficients"])
    idx = np.argsort(np.abs(colour - xp.xp_colour(real_c["bp"], real_c["rp"])))[:5]
    sim_c = {b: sim[f"{b}_coefficients"][idx] for b in xp.XP_BANDS}
    wl, flux = xp.sampled_spectrum(sim_c["bp"], sim_c["rp"])
    fig = plot_xp_comparison(wl, np.asarray(sampled["flux"], float), flux, real_c, sim_c,
                             title="Gaia DR3 5937083312263887616 and simulated stars of "
                                   "similar XP colour")
    assert len(fig.axes) == 3
    return fig
