"""Figure tests of the RVS and XP gradient maps (paper Figs. 9-10) on seeded synthetic maps."""
import numpy as np
import pytest

from gaiarvs_cnn.constants import LABELS, rvs_wavelength_nm
from gaiarvs_cnn.exceptions import InputDataError
from gaiarvs_cnn.model.gradients import (
    RVS_LINES_NM,
    GradientMaps,
    plot_rvs_gradients,
    plot_xp_gradients,
)


def synthetic_maps() -> GradientMaps:
    """Gaussian absorption lines at the marked positions, gradients peaking on them."""
    wl = rvs_wavelength_nm()
    rng = np.random.default_rng(0)
    depth = np.array([0.6 if name == "Ca II" else 0.2 for _, name in RVS_LINES_NM])
    profiles = np.exp(-0.5 * ((wl[None, :] - np.array([x for x, _ in RVS_LINES_NM])[:, None])
                              / 0.08) ** 2)
    flux = 1 - depth @ profiles
    weights = rng.normal(size=(len(LABELS), len(RVS_LINES_NM)))
    scale = np.array([200.0, 0.5, 0.3, 0.1, 0.3])[:, None]
    rvs = scale * (weights @ profiles) + 0.02 * scale * rng.normal(size=(5, wl.size))
    k = np.arange(55)
    envelope = np.exp(-k / 15.0)  # low orders carry most information, as in the paper
    xp = np.concatenate([envelope * np.cos(0.7 * k), envelope * np.sin(0.5 * k)])
    xp = scale * (1 + 0.3 * rng.normal(size=(5, 1))) * (xp + 0.1 * rng.normal(size=(5, 110)))
    return GradientMaps(LABELS, wl, rvs, np.arange(110), xp, flux, 100, 4)


def synthetic_correlation() -> np.ndarray:
    """Correlations of 4 labels with 110 coefficients, strong at low orders."""
    rng = np.random.default_rng(1)
    k = np.tile(np.arange(55), 2)
    corr = np.tanh(rng.normal(scale=1.5, size=(4, 110)) * np.exp(-k / 20.0))
    corr[:, [0, 55]] = np.nan  # the first coefficient of a band is 1 after normalisation
    return corr


@pytest.mark.mpl_image_compare(tolerance=3, savefig_kwargs={"dpi": 60})
def test_rvs_gradient_figure():
    return plot_rvs_gradients(synthetic_maps())


def test_rvs_gradient_figure_has_one_panel_per_label_and_marks_ca_triplet():
    fig = plot_rvs_gradients(synthetic_maps(), labels=("teff", "mh"))
    assert len(fig.axes) == 3
    marked = [line.get_xdata()[0] for line in fig.axes[0].lines[1:]]
    for ca in (850.035, 854.444, 866.452):
        assert ca in marked


@pytest.mark.mpl_image_compare(tolerance=3, savefig_kwargs={"dpi": 60})
def test_xp_gradient_figure():
    return plot_xp_gradients(synthetic_maps(), synthetic_correlation())


def test_xp_gradient_figure_panels_and_normalised_curves():
    maps = synthetic_maps()
    fig = plot_xp_gradients(maps, synthetic_correlation())
    assert len(fig.axes) == 5  # BP heat map, BP gradients, RP heat map, RP gradients, colour bar
    bp_lines = [line for line in fig.axes[1].lines if len(line.get_ydata()) == 55]
    assert len(bp_lines) == 4
    for j, line in enumerate(bp_lines):
        bp = maps.xp[j, :55]
        np.testing.assert_allclose(line.get_ydata(), bp / np.abs(bp).max())
    assert len(plot_xp_gradients(maps, labels=("teff", "mh")).axes) == 2


def test_xp_gradient_figure_refuses_bad_inputs():
    maps = synthetic_maps()
    with pytest.raises(InputDataError, match="shape"):
        plot_xp_gradients(maps, synthetic_correlation()[:, :55])
    maps.xp = None
    with pytest.raises(InputDataError, match="no XP input"):
        plot_xp_gradients(maps)


@pytest.mark.mpl_image_compare(filename="xp_gradients_demo_bundle.png", tolerance=3,
                               savefig_kwargs={"dpi": 60})
def test_xp_gradient_figure_of_the_shipped_bundle_on_simulated_training_stars():
    """Paper Fig. 10 recomputed: the label-XP correlations of a simulated training set (XP
    in the real DR3 basis) above the shipped bundle's mean XP gradients for red-clump-like
    stars. Regenerate the baseline when the simulator or the shipped bundle changes."""
    from gaiarvs_cnn.model import ModelBundle, demo_bundle_path, label_gradients
    from gaiarvs_cnn.model.gradients import xp_label_correlation
    from gaiarvs_cnn.simulate.survey import simulate_batch

    train = simulate_batch(800, seed=21, kind="training")
    labels = ("teff", "logg", "mh", "alpham")
    corr = xp_label_correlation(train, labels=labels)
    lab = train["labels"]
    clump = train[(np.abs(lab[:, 1] - 2.45) < 0.25) & (np.abs(lab[:, 2]) < 0.3)]
    assert len(clump) >= 20
    maps = label_gradients(ModelBundle.load(demo_bundle_path()), clump, members=range(4))
    assert np.all(np.isfinite(maps.xp))
    return plot_xp_gradients(maps, corr, labels=labels,
                             title=f"{len(train)} simulated training stars (DR3 XP basis); "
                                   f"gradients of 4 members, {len(clump)} clump-like stars")
