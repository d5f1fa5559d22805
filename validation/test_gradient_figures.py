"""Figure test of the RVS gradient map (paper Fig. 9) on fixed, seeded synthetic maps."""
import numpy as np
import pytest

from gaiarvs_cnn.constants import LABELS, rvs_wavelength_nm
from gaiarvs_cnn.model.gradients import RVS_LINES_NM, GradientMaps, plot_rvs_gradients


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
    return GradientMaps(LABELS, wl, rvs, np.arange(110), None, flux, 100, 4)


@pytest.mark.mpl_image_compare(tolerance=3, savefig_kwargs={"dpi": 60})
def test_rvs_gradient_figure():
    return plot_rvs_gradients(synthetic_maps())


def test_rvs_gradient_figure_has_one_panel_per_label_and_marks_ca_triplet():
    fig = plot_rvs_gradients(synthetic_maps(), labels=("teff", "mh"))
    assert len(fig.axes) == 3
    marked = [line.get_xdata()[0] for line in fig.axes[0].lines[1:]]
    for ca in (850.035, 854.444, 866.452):
        assert ca in marked
