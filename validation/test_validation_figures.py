"""Image-comparison tests of every figure of `gaiarvs_cnn.validation` (pytest-mpl).

Inputs are small, seeded synthetic catalogues (`gaiarvs_cnn.validation.synthetic`), so
the figures are reproducible bit for bit on one matplotlib version. Baselines live in
``validation/baseline/`` (PNG, dpi 60) and were generated with::

    python -m pytest validation/test_validation_figures.py \\
        --mpl-generate-path=validation/baseline

Tolerance: RMS difference of 2 (0-255 grey levels), enough for anti-aliasing noise
between FreeType builds but failing for any change of data, layout or labels.
"""
import numpy as np
import pytest
from astropy.table import join

from gaiarvs_cnn.validation.bimodality import add_galactocentric, plot_bimodality, select_giants
from gaiarvs_cnn.validation.clusters import cluster_statistics, plot_clusters
from gaiarvs_cnn.validation.crossmatch import match_reference
from gaiarvs_cnn.validation.figures import plot_comparison, plot_kiel
from gaiarvs_cnn.validation.galah import compare_galah, plot_galah_snr
from gaiarvs_cnn.validation.precision import (
    cramer_rao_table,
    fisher_bounds,
    plot_calibration,
    plot_precision_vs_snr,
    precision_vs_snr,
)
from gaiarvs_cnn.validation.seismic import plot_seismic
from gaiarvs_cnn.validation.synthetic import (
    synthetic_catalog,
    synthetic_reference,
    synthetic_truth,
)

MPL = {"tolerance": 2, "savefig_kwargs": {"dpi": 60}}


@pytest.fixture(scope="module")
def data():
    truth = synthetic_truth(1500, seed=101, cluster_fraction=0.06)
    cat = synthetic_catalog(truth, seed=102, bias={"teff": 20.0, "logg": 0.03})
    return join(cat, truth, keys="source_id")


@pytest.fixture(scope="module")
def galah(data):
    ref = synthetic_reference(data, "galah", seed=103, offset={"teff": -30.0, "feh": 0.05})
    return match_reference(data, ref)


@pytest.mark.mpl_image_compare(filename="validation_plot_comparison.png", **MPL)
def test_plot_comparison(galah):
    return plot_comparison(galah, "ref_", ("teff", "logg", "feh", "alpham"), "GALAH DR3")


@pytest.mark.mpl_image_compare(filename="validation_plot_kiel.png", **MPL)
def test_plot_kiel(data):
    return plot_kiel(data, np.asarray(data["rvs_snr"]),
                     background=np.asarray(data["flag_boundary"]) != "00000000")


@pytest.mark.mpl_image_compare(filename="validation_plot_seismic.png", **MPL)
def test_plot_seismic(data):
    ref = synthetic_reference(data, "seismic", seed=104, offset={"logg": 0.05})
    return plot_seismic(match_reference(data, ref))


@pytest.mark.mpl_image_compare(filename="validation_plot_galah_snr.png", **MPL)
def test_plot_galah_snr(galah):
    return plot_galah_snr(compare_galah(galah))


@pytest.mark.mpl_image_compare(filename="validation_plot_clusters.png", **MPL)
def test_plot_clusters(data):
    members = match_reference(data, synthetic_reference(data, "clusters"))
    ref = synthetic_reference(data, "galah", seed=105, offset={"feh": 0.05}, fraction=0.8)
    matched = match_reference(members, ref, "galah_", join_type="left")
    return plot_clusters(matched, cluster_statistics(matched))


@pytest.mark.mpl_image_compare(filename="validation_plot_precision_vs_snr.png", **MPL)
def test_plot_precision_vs_snr(data):
    gsp = synthetic_reference(data, "gsp-spec", seed=106,
                              scatter={"teff": 150.0, "logg": 0.25, "mh": 0.15, "alpham": 0.08},
                              fraction=1.0)
    matched = match_reference(data, gsp, "gsp_")
    prec = precision_vs_snr(matched, "true_", "gsp_", edges=(15, 25, 40, 60, np.inf))
    jmat = np.random.default_rng(107).normal(0, 0.004, (800, 5)) * [1e-3, 1, 1, 1, 1]
    cr = cramer_rao_table(data, fisher_bounds(lambda labels: jmat), max_stars=10)
    return plot_precision_vs_snr(prec, reference_name="truth", cramer_rao=cr)


@pytest.mark.mpl_image_compare(filename="validation_plot_calibration.png", **MPL)
def test_plot_calibration(data):
    return plot_calibration(data, "true_")


@pytest.mark.mpl_image_compare(filename="validation_plot_bimodality.png", **MPL)
def test_plot_bimodality(data):
    table = add_galactocentric(data.copy())
    return plot_bimodality(table, select_giants(table, logg_max=3.0, snr_range=(15, 60)),
                           r_edges=(0.0, 8.0, 9.0, 16.0), z_edges=(0.0, 0.5, 4.0))


@pytest.mark.mpl_image_compare(filename="validation_plot_flag_agreement.png", **MPL)
def test_plot_flag_agreement():
    from gaiarvs_cnn.validation.published import flag_agreement, plot_flag_agreement

    rng = np.random.default_rng(301)
    ours = np.where(rng.random(400) < 0.1, "10000000", "00000000")
    theirs = np.array([f[:6] + ("1" if rng.random() < 0.05 else "0") + f[7] for f in ours])
    theirs[:15] = "00000001"
    return plot_flag_agreement(flag_agreement(ours, theirs))
