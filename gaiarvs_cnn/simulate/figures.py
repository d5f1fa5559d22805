"""Figures of the simulated survey: spectra across the Kiel diagram, the Ca II triplet
versus log g and [M/H], simulated-versus-real RVS spectra and simulated-versus-real XP
spectra. Each function returns a `matplotlib.figure.Figure`.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..constants import rvs_wavelength_nm
from .realism import CA_TRIPLET_NM, ca_triplet_ew, residual_rms
from .spectra import SpectrumModel

__all__ = ["plot_kiel_spectra", "plot_calcium_triplet", "plot_real_comparison",
           "plot_xp_comparison", "KIEL_SEQUENCE"]

#: (Teff [K], log g, [M/H], [alpha/M], [Fe/H], name) shown by `plot_kiel_spectra`.
KIEL_SEQUENCE = (
    (8000.0, 4.0, 0.0, 0.0, 0.0, "A dwarf (Paschen)"),
    (6300.0, 4.2, 0.0, 0.0, 0.0, "F dwarf"),
    (5777.0, 4.44, 0.0, 0.0, 0.0, "solar twin"),
    (5000.0, 4.6, 0.0, 0.0, 0.0, "K dwarf"),
    (4750.0, 2.45, 0.0, 0.0, 0.0, "red clump"),
    (4750.0, 2.45, -0.87, 0.25, -0.9, "metal-poor red clump"),
    (4200.0, 1.6, 0.0, 0.0, 0.0, "RGB"),
    (3400.0, 0.5, 0.0, 0.0, 0.0, "M giant (TiO)"),
)


def plot_kiel_spectra(model: SpectrumModel | None = None) -> Figure:
    """Noise-free simulated spectra of `KIEL_SEQUENCE`, with their place in the Kiel diagram."""
    model = model or SpectrumModel()
    labels = np.array([row[:5] for row in KIEL_SEQUENCE])
    flux = model.flux(labels)
    wl = rvs_wavelength_nm()
    fig = Figure(figsize=(10, 8))
    gs = fig.add_gridspec(1, 2, width_ratios=(1, 3))
    kiel, ax = fig.add_subplot(gs[0]), fig.add_subplot(gs[1])
    colours = [colormaps["tab10"](i % 10) for i in range(len(labels))]
    kiel.scatter(labels[:, 0], labels[:, 1], c=colours, s=40)
    kiel.set_xlim(8500, 3000)
    kiel.set_ylim(5.2, 0.0)
    kiel.set_xticks([8000, 6000, 4000])
    kiel.set_xlabel(r"$T_\mathrm{eff}$ [K]")
    kiel.set_ylabel(r"$\log g$")
    step = 0.9
    for i, (row, f) in enumerate(zip(KIEL_SEQUENCE, flux)):
        off = step * (len(labels) - 1 - i)
        ax.plot(wl, f + off, color=colours[i], lw=0.6)
        ax.text(846.2, off + 1.03, f"{row[5]}: {row[0]:.0f} K, log g {row[1]:.2f}, "
                f"[M/H] {row[2]:+.2f}", fontsize=7, color=colours[i])
    ax.set_xlim(846, 870)
    ax.set_xlabel("vacuum wavelength [nm]")
    ax.set_ylabel("normalised flux + offset")
    fig.suptitle("Simulated Gaia-RVS spectra across the Kiel diagram (R = 11500)")
    return fig


def plot_calcium_triplet(model: SpectrumModel | None = None, teff: float = 5000.0) -> Figure:
    """Ca II 854.4 nm profile versus log g and [M/H], and the triplet EW versus [M/H]."""
    model = model or SpectrumModel()
    wl = rvs_wavelength_nm()
    win = np.abs(wl - CA_TRIPLET_NM[1]) < 1.5
    fig = Figure(figsize=(12, 4))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    loggs = (1.5, 2.5, 3.5, 4.5)
    mhs = (-1.5, -1.0, -0.5, 0.0, 0.3)
    f_g = model.flux(np.array([[teff, g, 0.0, 0.0, 0.0] for g in loggs]))
    for g, f in zip(loggs, f_g):
        ax1.plot(wl[win], f[win], lw=0.8, label=f"log g = {g}")
    f_m = model.flux(np.array([[teff, 2.5, m, 0.0, m] for m in mhs]))
    for m, f in zip(mhs, f_m):
        ax2.plot(wl[win], f[win], lw=0.8, label=f"[M/H] = {m:+.1f}")
    grid = np.linspace(-2.0, 0.5, 11)
    for g in loggs:
        ew = ca_triplet_ew(model.flux(np.array([[teff, g, m, 0.0, m] for m in grid])))
        ax3.plot(grid, ew.sum(axis=-1) * 10.0, marker="o", ms=3, label=f"log g = {g}")
    ax1.set_title(f"Ca II 854.4 nm, {teff:.0f} K, [M/H] = 0")
    ax2.set_title(f"Ca II 854.4 nm, {teff:.0f} K, log g = 2.5")
    ax3.set_title("Ca II triplet EW")
    for ax in (ax1, ax2):
        ax.ticklabel_format(axis="x", useOffset=False)
        ax.set_xlabel("vacuum wavelength [nm]")
        ax.set_ylabel("normalised flux")
    ax3.set_xlabel("[M/H]")
    ax3.set_ylabel(r"EW(8498+8542+8662) [$\AA$]")
    for ax in (ax1, ax2, ax3):
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_real_comparison(real: Mapping[str, np.ndarray], labels: Mapping[str, tuple],
                         model: SpectrumModel | None = None) -> Figure:
    """Overlay simulated spectra at given labels on real RVS spectra, with residuals.

    Parameters
    ----------
    real : mapping of name to array (2401,)
        Real normalised RVS fluxes (NaN allowed).
    labels : mapping of name to (Teff [K], log g, [M/H])
        Labels at which the simulator is evaluated ([alpha/M] = 0, [Fe/H] = [M/H]).
    """
    model = model or SpectrumModel()
    wl = rvs_wavelength_nm()
    names = list(real)
    fig = Figure(figsize=(12, 2.6 * len(names)))
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, names):
        t, g, m = labels[name]
        sim = model.flux(np.array([[t, g, m, 0.0, m]]))[0]
        rin, rout = residual_rms(real[name], sim)
        ax.plot(wl, real[name], color="k", lw=0.6, label="Gaia DR3")
        ax.plot(wl, sim, color="C3", lw=0.6, label="simulated")
        ax.plot(wl, real[name] - sim + 0.2, color="C0", lw=0.5, label="residual + 0.2")
        ax.set_ylim(0.0, 1.15)
        ax.set_xlim(846, 870)
        ax.set_title(f"{name}: {t:.0f} K, log g {g:.2f}, [M/H] {m:+.2f} - residual RMS "
                     f"{rin:.3f} in / {rout:.3f} out of Ca II", fontsize=9)
        ax.legend(fontsize=7, loc="lower right", ncol=3)
    axes[-1].set_xlabel("vacuum wavelength [nm]")
    fig.tight_layout()
    return fig


def plot_xp_comparison(wavelength: np.ndarray, real_flux: np.ndarray, sim_flux: np.ndarray,
                       real_coefficients: Mapping[str, np.ndarray],
                       sim_coefficients: Mapping[str, np.ndarray], *,
                       title: str = "") -> Figure:
    """A real Gaia DR3 XP spectrum next to simulated stars of similar colour.

    Parameters
    ----------
    wavelength : array
        Wavelengths [nm] of the sampled spectra.
    real_flux : array, shape (n_wl,)
        The real XP_SAMPLED flux [W m^-2 nm^-1].
    sim_flux : array, shape (N, n_wl)
        GaiaXPy-calibrated spectra of the simulated stars [W m^-2 nm^-1].
    real_coefficients, sim_coefficients : mapping
        ``{'bp': ..., 'rp': ...}`` coefficients, shape (55,) for the real star and (N, 55)
        for the simulated ones.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Top: the spectra, each divided by its mean flux at 400-950 nm; bottom: c_k / c_0 of
        BP and RP for k >= 1 (real star and the simulated median with its 16-84 % range).
    """
    wl = np.asarray(wavelength, dtype=float)
    norm = (wl >= 400) & (wl <= 950)
    real = np.asarray(real_flux, dtype=float)
    sims = np.atleast_2d(np.asarray(sim_flux, dtype=float))
    fig = Figure(figsize=(9, 7))
    top = fig.add_subplot(2, 1, 1)
    for i, f in enumerate(sims):
        top.plot(wl, f / f[norm].mean(), color="C3", lw=0.7, alpha=0.6,
                 label="simulated (GaiaXPy calibrate)" if i == 0 else None)
    top.plot(wl, real / real[norm].mean(), color="k", lw=1.2, label="Gaia DR3 XP_SAMPLED")
    top.set_xlabel("wavelength [nm]")
    top.set_ylabel("flux / mean(400-950 nm)")
    top.legend(fontsize=8)
    for j, band in enumerate(("bp", "rp")):
        ax = fig.add_subplot(2, 2, 3 + j)
        k = np.arange(np.shape(real_coefficients[band])[-1])
        rc = np.asarray(real_coefficients[band], dtype=float)
        sc = np.atleast_2d(np.asarray(sim_coefficients[band], dtype=float))
        ratio = sc / sc[:, :1]
        lo, med, hi = np.percentile(ratio, [16, 50, 84], axis=0)
        k, lo, med, hi = k[1:], lo[1:], med[1:], hi[1:]        # c_0 / c_0 = 1
        ax.fill_between(k, lo, hi, color="C3", alpha=0.3, lw=0)
        ax.plot(k, med, "o-", color="C3", ms=2.5, lw=0.8, label="simulated median")
        ax.plot(k, rc[1:] / rc[0], "s-", color="k", ms=2.5, lw=0.8, label="Gaia DR3")
        ax.set_xlim(0, k[-1] + 1)
        ax.set_ylim(-0.25, 0.25)
        ax.axhline(0.0, color="0.6", lw=0.5)
        ax.set_xlabel(f"{band.upper()} coefficient index k")
        ax.set_ylabel("c_k / c_0")
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
