"""Sensitivity maps of the network (paper Sect. 3.5, Figs. 9-10).

`label_gradients` averages d(label)/d(input) over a group of stars and over the ensemble
members with `tf.GradientTape`: per RVS pixel (in label units per unit of normalised
flux) and per XP coefficient (label units per unit of the first-coefficient-normalised
XP coefficient). `plot_rvs_gradients` draws the mean spectrum and the RVS gradients
with the Ca II triplet and the main lines the paper discusses marked (Fig. 9);
`xp_label_correlation` and `plot_xp_gradients` give the label-XP correlation heat maps
and the XP gradients of the BP and RP coefficients (Fig. 10).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..constants import LABEL_LATEX, LABEL_UNITS, LABELS, XP_NCOEFF
from ..exceptions import InputDataError
from .bundle import ModelBundle

__all__ = ["GradientMaps", "label_gradients", "plot_rvs_gradients", "plot_xp_gradients",
           "xp_label_correlation", "RVS_LINES_NM"]

#: Lines marked on gradient figures: (vacuum wavelength [nm], label). Ca II triplet from
#: NIST; the blends are the features of paper Sect. 3.5.1 (approximate positions).
RVS_LINES_NM = (
    (850.035, "Ca II"), (854.444, "Ca II"), (866.452, "Ca II"),
    (852.1, "Fe I+Ti I"), (853.8, "Fe I+Ti I"), (855.3, "Cr II"), (865.2, "Si I+V II+N"),
    (867.6, "Fe I"), (869.6, "S I"),
)


@dataclass
class GradientMaps:
    """Mean gradients of the labels with respect to the inputs.

    The parameters are also available as attributes.

    Parameters
    ----------
    labels : tuple of str
        Label names, in the order of the gradient rows.
    wavelength_nm : ndarray (n_pixels,)
        RVS wavelength axis (nm, vacuum).
    rvs : ndarray (n_labels, n_pixels) or None
        d(label)/d(normalised flux), label units per unit flux.
    xp_index : ndarray (110,)
        0-54 BP coefficients, 55-109 RP coefficients.
    xp : ndarray (n_labels, 110) or None
        d(label)/d(normalised XP coefficient).
    mean_flux : ndarray (n_pixels,)
        Mean normalised spectrum of the group.
    n_stars, n_members : int
        Number of stars averaged over and of ensemble members used.
    """

    labels: tuple[str, ...]
    wavelength_nm: np.ndarray
    rvs: np.ndarray | None
    xp_index: np.ndarray
    xp: np.ndarray | None
    mean_flux: np.ndarray
    n_stars: int
    n_members: int


def _member_gradients(model, inputs: dict, names: Sequence[str], n_labels: int
                      ) -> dict[str, np.ndarray]:
    """Sum over stars of d(scaled output j)/d(input) for each output j: {name: (L, ...)}."""
    import tensorflow as tf

    tensors = {k: tf.convert_to_tensor(v) for k, v in inputs.items()}
    with tf.GradientTape(persistent=True) as tape:
        for k in names:
            tape.watch(tensors[k])
        out = model(tensors, training=False)
        sums = [tf.reduce_sum(out[:, j]) for j in range(n_labels)]
    grads = {k: np.stack([tape.gradient(s, tensors[k]).numpy().sum(axis=0) for s in sums])
             for k in names}
    del tape
    return grads


def label_gradients(bundle: ModelBundle, batch, batch_size: int = 128,
                    members: Sequence[int] | None = None) -> GradientMaps:
    """Mean gradients of every label over the stars of ``batch`` and the ensemble members.

    Parameters
    ----------
    bundle : ModelBundle
    batch : `~gaiarvs_cnn.io.batch.StarBatch`
        The group of stars (e.g. red-clump stars with [M/H] ~ 0).
    batch_size : int
        Stars per gradient evaluation.
    members : sequence of int, optional
        Indices of the members to average (default: all).

    Returns
    -------
    GradientMaps
        In physical label units (K or dex per unit input).
    """
    from .predict import prepare_inputs

    if len(batch) == 0:
        raise InputDataError("label_gradients needs at least one star.")
    config = bundle.config
    inputs = prepare_inputs(bundle, batch)
    names = [k for k in ("rvs", "xp") if k in config.inputs]
    if not names:
        raise InputDataError("The bundle's network has neither RVS nor XP inputs.")
    chosen = [bundle.member(i) for i in (members if members is not None
                                         else range(bundle.n_members))]
    total: dict[str, np.ndarray] = {}
    n = len(batch)
    for model in chosen:
        for lo in range(0, n, batch_size):
            part = {k: v[lo:lo + batch_size] for k, v in inputs.items()}
            for k, g in _member_gradients(model, part, names, len(config.labels)).items():
                total[k] = total.get(k, 0) + g
    label_range = bundle.scalers.labels.range[:, None]
    scale = n * len(chosen)
    rvs = xp = None
    if "rvs" in total:
        rvs = total["rvs"][..., 0] / scale * label_range
    if "xp" in total:
        xp = total["xp"] / scale * label_range / bundle.scalers.xp.range[None, :]
    flux = inputs["rvs"][..., 0].mean(axis=0) if "rvs" in inputs else np.full(
        config.n_pixels, np.nan)
    return GradientMaps(tuple(config.labels), config.wavelength_nm(), rvs,
                        np.arange(2 * XP_NCOEFF), xp, flux, n, len(chosen))


def plot_rvs_gradients(maps: GradientMaps, labels: Sequence[str] = LABELS[:4],
                       lines: Sequence[tuple[float, str]] = RVS_LINES_NM, title: str = ""):
    """Mean spectrum and d(label)/d(pixel) panels with line positions (paper Fig. 9).

    Parameters
    ----------
    maps : GradientMaps
        From `label_gradients`.
    labels : sequence of str
        Labels to show, one panel each.
    lines : sequence of (float, str)
        Vacuum wavelengths (nm) and names of lines to mark.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    if maps.rvs is None:
        raise InputDataError("These gradient maps have no RVS input (RVS-less network).")
    wl = maps.wavelength_nm
    fig = Figure(figsize=(8, 1.6 * (len(labels) + 1)))
    axes = fig.subplots(len(labels) + 1, 1, sharex=True)
    axes[0].plot(wl, maps.mean_flux, color="k", lw=0.6)
    axes[0].set_ylabel("flux")
    colours = {"Ca II": "tab:red"}
    for x, name in lines:
        for ax in axes:
            ax.axvline(x, color=colours.get(name, "tab:blue"), lw=0.6, alpha=0.5)
        axes[0].annotate(name, (x, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                         fontsize=6, va="top", ha="right")
    for ax, lab in zip(axes[1:], labels):
        j = maps.labels.index(lab)
        ax.plot(wl, maps.rvs[j], color="k", lw=0.6)
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_ylabel(rf"$\partial${LABEL_LATEX[lab]}/$\partial$f" + "\n"
                      + f"[{LABEL_UNITS[lab].to_string()}]", fontsize=7)
    axes[-1].set_xlabel("wavelength (vacuum) [nm]")
    axes[0].set_title(title or f"RVS gradients, {maps.n_stars} stars, "
                               f"{maps.n_members} members", fontsize=9)
    fig.tight_layout()
    return fig


def xp_label_correlation(batch, labels: Sequence[str] = LABELS) -> np.ndarray:
    """Pearson correlation of each label with each normalised XP coefficient (paper Fig. 10).

    Parameters
    ----------
    batch : `~gaiarvs_cnn.io.batch.StarBatch`
        Stars with ``labels``, ``bp_coefficients`` and ``rp_coefficients`` (e.g. the
        training sample). Stars lacking a label or an XP spectrum are left out.
    labels : sequence of str
        Labels (rows of the result), a subset of `~gaiarvs_cnn.constants.LABELS`.

    Returns
    -------
    ndarray, shape (len(labels), 110)
        Correlation coefficients in [-1, 1]: BP coefficients 0-54 then RP 55-109, each
        divided by the first coefficient of its band as the network sees them
        (`~gaiarvs_cnn.preprocess.normalise_xp`); NaN where a coefficient is constant.

    Raises
    ------
    gaiarvs_cnn.exceptions.InputDataError
        If fewer than three stars have all the labels and an XP spectrum.
    """
    from ..preprocess import normalise_xp, xp_available

    cols = [LABELS.index(lab) for lab in labels]
    y = np.asarray(batch["labels"], dtype=np.float64)[:, cols]
    ok = np.all(np.isfinite(y), axis=1) & xp_available(batch["bp_coefficients"],
                                                       batch["rp_coefficients"])
    if ok.sum() < 3:
        raise InputDataError(f"xp_label_correlation needs >= 3 stars with labels {labels} and "
                             f"XP coefficients; {int(ok.sum())} have them.")
    xp = normalise_xp(batch["bp_coefficients"][ok], batch["rp_coefficients"][ok])
    xc = xp - xp.mean(axis=0)
    y = y[ok]
    yc = y - y.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (yc.T @ xc) / np.outer(np.sqrt((yc ** 2).sum(axis=0)),
                                      np.sqrt((xc ** 2).sum(axis=0)))


def _xp_heatmap(ax, correlation: np.ndarray, labels: Sequence[str], band: str):
    image = ax.imshow(correlation, aspect="auto", cmap="coolwarm", vmin=-1, vmax=1,
                      interpolation="nearest", extent=(-0.5, XP_NCOEFF - 0.5,
                                                       len(labels) - 0.5, -0.5))
    ax.set_yticks(range(len(labels)), [LABEL_LATEX[lab] for lab in labels], fontsize=7)
    ax.set_title(f"{band}: correlation of labels and XP coefficients", fontsize=8)
    return image


def _xp_gradient_panel(ax, gradients: np.ndarray, labels: Sequence[str], band: str) -> None:
    for lab, grad in zip(labels, gradients):
        peak = float(np.nanmax(np.abs(grad))) or 1.0
        unit = LABEL_UNITS[lab].to_string()
        unit = "dex" if not unit or unit.startswith("dex") else unit
        ax.plot(np.arange(XP_NCOEFF), grad / peak, marker="o", ms=2, lw=0.8,
                label=f"{LABEL_LATEX[lab]} (max |grad| {peak:.3g} {unit})")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_xlim(-0.5, XP_NCOEFF - 0.5)
    ax.set_ylabel(f"{band} " + r"$\partial$label/$\partial$XP" + "\n(/ max |grad|)",
                  fontsize=7)
    ax.legend(fontsize=6, ncols=len(labels), loc="lower center", bbox_to_anchor=(0.5, 1.0),
              frameon=False, title=f"{band}: mean gradients", title_fontsize=8)


def plot_xp_gradients(maps: GradientMaps, correlation: np.ndarray | None = None,
                      labels: Sequence[str] = LABELS[:4], title: str = ""):
    """XP sensitivity map (paper Fig. 10): label-XP correlations and gradients, BP and RP.

    Parameters
    ----------
    maps : GradientMaps
        From `label_gradients`; ``maps.xp`` holds the gradients.
    correlation : ndarray (len(labels), 110), optional
        From `xp_label_correlation` on the training sample, with the same ``labels``;
        drawn as a heat map above each band's gradients. Without it only the gradient
        panels are drawn.
    labels : sequence of str
        Labels to show. Each gradient curve is divided by its largest absolute value
        (given, with its unit, in the legend) so that K and dex share an axis.
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    gaiarvs_cnn.exceptions.InputDataError
        If the maps have no XP gradients or the correlation has the wrong shape.
    """
    from matplotlib.figure import Figure

    if maps.xp is None:
        raise InputDataError("These gradient maps have no XP input (XP-less network).")
    if correlation is not None and np.shape(correlation) != (len(labels), 2 * XP_NCOEFF):
        raise InputDataError(f"correlation has shape {np.shape(correlation)}; expected "
                             f"({len(labels)}, {2 * XP_NCOEFF}) for labels {tuple(labels)}.")
    grads = maps.xp[[maps.labels.index(lab) for lab in labels]]
    rows_per_band = 1 if correlation is None else 2
    fig = Figure(figsize=(8, 2.0 * 2 * rows_per_band + 0.4), layout="constrained")
    axes = fig.subplots(2 * rows_per_band, 1, sharex=True)
    for b, band in enumerate(("BP", "RP")):
        part = slice(b * XP_NCOEFF, (b + 1) * XP_NCOEFF)
        row = b * rows_per_band
        if correlation is not None:
            image = _xp_heatmap(axes[row], np.asarray(correlation)[:, part], labels, band)
        _xp_gradient_panel(axes[row + rows_per_band - 1], grads[:, part], labels, band)
    if correlation is not None:
        fig.colorbar(image, ax=list(axes), pad=0.01, fraction=0.03, label="Pearson r")
    axes[-1].set_xlabel("XP coefficient index (within band)")
    fig.suptitle(title or f"XP gradients, {maps.n_stars} stars, {maps.n_members} members",
                 fontsize=9)
    return fig
