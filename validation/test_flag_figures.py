"""Figure test of the t-SNE classification (after paper Fig. 17) on a seeded simulation.

The training maps are fixed inputs: ``tests/data/tsne_figure_reference/`` holds the
`TSNEReference` that `fit_figure_reference` fitted (``python validation/test_flag_figures.py``
writes it again). t-SNE is chaotic: the simulated training spectra differ in their last bits
between CPUs (numpy's AVX2 and AVX-512 kernels of exp/log), and any such difference gives a
rotated, reshaped map (RMS 33 against the baseline on an Intel AVX-512 machine). The fit itself
is CPU-independent for fixed spectra (tests/flags/test_flags.py), and the classification of new
spectra in a stored map is too (float64 projection rounded to float32, exact neighbour
distances), so the figure and its counts are the same on every x86-64 CPU.
"""
from pathlib import Path

import numpy as np
import pytest

from gaiarvs_cnn import conf
from gaiarvs_cnn.flags import TSNEReference
from gaiarvs_cnn.flags.figures import plot_tsne_classification
from gaiarvs_cnn.simulate.survey import simulate_batch

REFERENCE = Path(__file__).parents[1] / "tests" / "data" / "tsne_figure_reference"
#: Training-like stars among the 190 observed ones in the stored maps.
N_LIKE = 164


def fit_figure_reference(path=REFERENCE):
    """Fit the figure's reference (300 training spectra, perplexities 5 and 10) to ``path``."""
    train = simulate_batch(300, seed=31, kind="training")
    with conf.set_temp("threads", 1):
        return TSNEReference.fit(train["flux"], perplexities=(5, 10), n_pca=10, seed=0,
                                 n_iter=(50, 100)).save(path)


@pytest.fixture(scope="module")
def classified():
    """The stored reference and the classification of 150 + 40 simulated stars."""
    obs = np.concatenate([simulate_batch(150, seed=32, kind="observed")["flux"],
                          simulate_batch(40, seed=33, kind="out-of-range")["flux"]])
    ref = TSNEReference.load(REFERENCE)
    with conf.set_temp("threads", 1):
        return ref, ref.classify(obs)


@pytest.mark.mpl_image_compare(tolerance=5, savefig_kwargs={"dpi": 60})
def test_tsne_classification_figure(classified):
    return plot_tsne_classification(*classified, perplexity=10)


def test_tsne_figure_panels_count_like_and_unlike_stars(classified):
    ref, details = classified
    fig = plot_tsne_classification(ref, details)
    n_like = int(details["training_like"].sum())
    titles = [ax.get_title() for ax in fig.axes[:5]]
    assert f"training-like ({n_like})" in titles
    assert f"training-unlike ({190 - n_like})" in titles
    assert n_like == N_LIKE


if __name__ == "__main__":
    print(f"wrote {fit_figure_reference()}")
