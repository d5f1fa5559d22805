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
