"""Figure of the t-SNE classification of RVS spectra (after the paper's Fig. 17)."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .tsne import TSNEReference

__all__ = ["plot_tsne_classification"]

_TRAIN_COLOUR = "tab:green"
_OBS_COLOUR = "goldenrod"


def plot_tsne_classification(reference: TSNEReference, details: Mapping[str, np.ndarray],
                             perplexity: float | None = None, bins: int = 40):
    """Four panels of one t-SNE map: density, training vs observed, training-like, unlike.

    Parameters
    ----------
    reference : `~gaiarvs_cnn.flags.TSNEReference`
        The training map.
    details : mapping
        `TSNEReference.classify` of the observed spectra (positions and classification).
    perplexity : float, optional
        Which map (default: the reference's second perplexity, 50 for the paper's set).
    bins : int
        Bins per axis of the density panel.

    Returns
    -------
    `matplotlib.figure.Figure`
        Panels a) 2-d histogram of training + observed stars, b) training (green) and
        observed (yellow) stars, c) observed training-like, d) observed training-unlike
        spectra (placed with ``transform``; see `gaiarvs_cnn.flags`).
    """
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    p = float(perplexity if perplexity is not None else reference.perplexities[
        min(1, len(reference.perplexities) - 1)])
    train = reference.maps[p] - (reference.maps[p].max(axis=0)
                                 + reference.maps[p].min(axis=0)) / 2
    obs = np.asarray(details[f"position_{p:g}"])
    like = np.asarray(details["training_like"], dtype=bool)
    both = np.concatenate([train, obs])
    lo, hi = both.min(axis=0), both.max(axis=0)
    fig = Figure(figsize=(11, 3.2), layout="constrained")
    axes = fig.subplots(1, 4, sharex=True, sharey=True)
    *_, image = axes[0].hist2d(both[:, 0], both[:, 1], bins=bins,
                               range=[[lo[0], hi[0]], [lo[1], hi[1]]], norm=LogNorm(),
                               cmap="viridis")
    fig.colorbar(image, ax=axes[0], label="spectra per bin")
    dots = {"linewidths": 0, "rasterized": True}
    axes[1].scatter(*obs.T, s=4, c=_OBS_COLOUR, label="observed", **dots)
    axes[1].scatter(*train.T, s=4, c=_TRAIN_COLOUR, label="training", **dots)
    axes[1].legend(loc="lower right", fontsize=7, markerscale=3)
    for ax, sel, title in ((axes[2], like, "training-like"),
                           (axes[3], ~like, "training-unlike")):
        ax.scatter(*train.T, s=3, c="0.8", **dots)
        ax.scatter(*obs[sel].T, s=6, c=_OBS_COLOUR, **dots)
        ax.set_title(f"{title} ({int(sel.sum())})", fontsize=9)
    axes[0].set_title(f"all ({len(both)}), perplexity {p:g}", fontsize=9)
    axes[1].set_title("training / observed", fontsize=9)
    for ax, letter in zip(axes, "abcd"):
        ax.set_xlabel("t-SNE X")
        ax.locator_params(nbins=4)
        ax.text(0.03, 0.95, f"{letter})", transform=ax.transAxes, va="top")
    axes[0].set_ylabel("t-SNE Y")
    return fig
