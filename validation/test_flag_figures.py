"""Figure test of the t-SNE classification (after paper Fig. 17) on a seeded simulation."""
import numpy as np
import pytest

from gaiarvs_cnn import conf
from gaiarvs_cnn.flags import TSNEReference
from gaiarvs_cnn.flags.figures import plot_tsne_classification
from gaiarvs_cnn.simulate.survey import simulate_batch


@pytest.fixture(scope="module")
def classified():
    """A tiny reference (300 training spectra, perplexities 5 and 10) and 150 + 40 stars."""
    train = simulate_batch(300, seed=31, kind="training")
    obs = np.concatenate([simulate_batch(150, seed=32, kind="observed")["flux"],
                          simulate_batch(40, seed=33, kind="out-of-range")["flux"]])
    with conf.set_temp("threads", 1):
        ref = TSNEReference.fit(train["flux"], perplexities=(5, 10), n_pca=10, seed=0,
                                n_iter=(50, 100))
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
    assert 0 < n_like < 190
