"""The [alpha/M] - [M/H] bimodality of giants across the Galaxy (paper Sect. 7, Fig. 24).

Galactocentric cylindrical radius R and height Z are computed with
`astropy.coordinates.Galactocentric` from the Gaia position and the inverse parallax
(the paper used StarHorse distances, which this toolkit does not have; stars with
``parallax_over_error < 5`` are dropped for that reason). The frame assumes an
in-plane Sun-Galactic centre distance R0 = 8.19 kpc (GRAVITY 2018), the astropy
default solar height z_sun = 20.8 pc (so ``galcen_distance = sqrt(R0^2 + z_sun^2)``),
v_LSR = 240 km/s (Reid et al. 2014) and (U, V, W)_sun = (11.1, 12.24, 7.25) km/s
(Schönrich et al. 2010).

Giants of the paper's sample: log g < 2.2, 15 <= S/N <= 25, ``flag_boundary ==
"00000000"``. In each (R, ``|Z|``) bin the two [alpha/M] sequences are characterised by a
two-component Gaussian mixture of [alpha/M] at intermediate metallicity
(-1 < [M/H] < 0), compared with one component through the BIC.
"""
from __future__ import annotations

from collections.abc import Sequence

import astropy.coordinates as coord
import astropy.units as u
import numpy as np
from astropy.table import Table
from matplotlib.figure import Figure

from ..utils.arrays import masked_to_nan
from .crossmatch import good_mask
from .style import add_colorbar, axis_label, density_panel, new_figure, styled

__all__ = ["R0_INPLANE", "Z_SUN", "V_LSR", "SOLAR_MOTION", "HIGH_ALPHA", "galactocentric_frame",
           "galactocentric_rz", "add_galactocentric", "select_giants", "alpha_sequences",
           "bimodality_grid", "plot_bimodality", "R_EDGES", "Z_EDGES"]

#: In-plane distance of the Sun from the Galactic centre.
R0_INPLANE = 8.19 * u.kpc
#: Height of the Sun above the plane (astropy default).
Z_SUN = 20.8 * u.pc
#: Circular velocity of the local standard of rest.
V_LSR = 240.0 * u.km / u.s
#: Peculiar motion of the Sun (U, V, W).
SOLAR_MOTION = (11.1, 12.24, 7.25) * u.km / u.s
#: [alpha/M] separating the low- and high-alpha sequences (paper Sect. 7).
HIGH_ALPHA = 0.15
#: Bins of galactocentric radius and of |Z| (kpc).
R_EDGES = (0.0, 4.0, 6.0, 8.0, 10.0, 12.0, 16.0)
Z_EDGES = (0.0, 0.5, 1.0, 1.5, 4.0)
#: Metallicity window where both sequences coexist.
MH_WINDOW = (-1.0, 0.0)


def galactocentric_frame() -> coord.Galactocentric:
    """The paper's Galactocentric frame (see module docstring).

    Returns
    -------
    `~astropy.coordinates.Galactocentric`
    """
    v_sun = coord.CartesianDifferential(SOLAR_MOTION + u.Quantity([0.0, V_LSR.value, 0.0],
                                                                  u.km / u.s))
    return coord.Galactocentric(galcen_distance=np.hypot(R0_INPLANE, Z_SUN).to(u.kpc),
                                z_sun=Z_SUN, galcen_v_sun=v_sun)


def galactocentric_rz(ra, dec, parallax) -> tuple[np.ndarray, np.ndarray]:
    """Galactocentric cylindrical radius R and height Z (kpc) from Gaia astrometry.

    Parameters
    ----------
    ra, dec : array or `~astropy.units.Quantity`
        ICRS position (deg if no unit).
    parallax : array or `~astropy.units.Quantity`
        Parallax (mas if no unit); the distance is its inverse. Non-positive parallaxes
        give NaN.

    Returns
    -------
    R, Z : ndarray
        In kpc.

    Examples
    --------
    >>> R, Z = galactocentric_rz([266.405], [-28.936], [1e6])   # at the Sun
    >>> round(float(R[0]), 2), round(float(Z[0]), 4)
    (8.19, 0.0208)
    """
    plx = u.Quantity(parallax, u.mas)
    good = np.isfinite(plx) & (plx > 0 * u.mas)
    dist = (1.0 / np.where(good, plx.to_value(u.mas), 1.0)) * u.kpc
    sky = coord.SkyCoord(ra=u.Quantity(ra, u.deg), dec=u.Quantity(dec, u.deg), distance=dist,
                         frame="icrs")
    gc = sky.transform_to(galactocentric_frame())
    r = np.hypot(gc.x, gc.y).to_value(u.kpc)
    z = gc.z.to_value(u.kpc)
    return np.where(good, r, np.nan), np.where(good, z, np.nan)


def add_galactocentric(table: Table, min_parallax_over_error: float = 5.0) -> Table:
    """Add ``R_gc`` and ``Z_gc`` (kpc) from ``ra, dec, parallax`` (NaN for poor parallaxes).

    Parameters
    ----------
    table : `~astropy.table.Table`
        Catalogue with ``ra``, ``dec``, ``parallax`` (and ``parallax_error``); modified in
        place.
    min_parallax_over_error : float
        Parallaxes less significant than this give NaN (0 keeps all positive ones).

    Returns
    -------
    `~astropy.table.Table`
        ``table`` with ``R_gc`` and ``Z_gc``.
    """
    plx = masked_to_nan(table["parallax"])
    r, z = galactocentric_rz(np.asarray(table["ra"], float), np.asarray(table["dec"], float),
                             plx)
    if "parallax_error" in table.colnames and min_parallax_over_error > 0:
        err = masked_to_nan(table["parallax_error"])
        poor = ~(plx / err >= min_parallax_over_error)
        r[poor], z[poor] = np.nan, np.nan
    table["R_gc"] = r * u.kpc
    table["Z_gc"] = z * u.kpc
    table["R_gc"].description = "Galactocentric cylindrical radius (1/parallax distance)"
    table["Z_gc"].description = "Height above the Galactic plane (1/parallax distance)"
    return table


def select_giants(table: Table, logg_max: float = 2.2, snr_range: tuple = (15.0, 25.0),
                  snr_column: str = "rvs_snr", good_only: bool = True) -> np.ndarray:
    """Mask of the paper's bimodality giants: log g < 2.2, 15 <= S/N <= 25, flag good.

    Parameters
    ----------
    table : `~astropy.table.Table`
        Catalogue with ``logg`` and the S/N column.
    logg_max : float
        Upper log g limit (exclusive).
    snr_range : (float, float)
        Inclusive S/N range.
    snr_column : str
        RVS S/N column.
    good_only : bool
        Also require ``flag_boundary == "00000000"``.

    Returns
    -------
    numpy.ndarray of bool
    """
    logg = masked_to_nan(table["logg"])
    snr = masked_to_nan(table[snr_column])
    mask = (logg < logg_max) & (snr >= snr_range[0]) & (snr <= snr_range[1])
    return mask & good_mask(table) if good_only else mask


def alpha_sequences(mh: np.ndarray, alpham: np.ndarray, mh_window: tuple = MH_WINDOW,
                    seed: int = 0, min_stars: int = 30) -> dict:
    """Characterise the low- and high-[alpha/M] sequences at intermediate metallicity.

    Fits one- and two-component Gaussian mixtures to [alpha/M] of the stars with
    ``mh_window[0] < [M/H] < mh_window[1]``.

    Parameters
    ----------
    mh, alpham : array-like
        [M/H] and [alpha/M] (dex).
    mh_window : (float, float)
        Metallicity window (dex).
    seed : int
        Random state of the mixture fits.
    min_stars : int
        Fewer stars give NaN statistics.

    Returns
    -------
    dict
        ``n``, ``frac_high`` (fraction with [alpha/M] > 0.15 dex), ``mu_low``,
        ``mu_high``, ``sig_low``, ``sig_high``, ``w_high`` (weight of the high
        component), ``separation`` (``(mu_high - mu_low) / sqrt(sig_low^2 +
        sig_high^2)``) and ``delta_bic`` (BIC(1) - BIC(2); > 10 strongly favours two
        sequences). NaN where fewer than ``min_stars`` stars.
    """
    from sklearn.mixture import GaussianMixture

    mh, alpham = np.asarray(mh, float), np.asarray(alpham, float)
    sel = np.isfinite(mh) & np.isfinite(alpham) & (mh > mh_window[0]) & (mh < mh_window[1])
    a = alpham[sel].reshape(-1, 1)
    out = {"n": int(sel.sum()), "frac_high": float(np.mean(a > HIGH_ALPHA)) if a.size
           else np.nan}
    keys = ("mu_low", "mu_high", "sig_low", "sig_high", "w_high", "separation", "delta_bic")
    if a.shape[0] < min_stars:
        return {**out, **{k: np.nan for k in keys}}
    g1 = GaussianMixture(1, random_state=seed).fit(a)
    g2 = GaussianMixture(2, random_state=seed,
                         means_init=np.percentile(a, [20.0, 80.0]).reshape(2, 1)).fit(a)
    order = np.argsort(g2.means_[:, 0])
    mu = g2.means_[order, 0]
    sig = np.sqrt(g2.covariances_[order].reshape(-1))
    return {**out, "mu_low": float(mu[0]), "mu_high": float(mu[1]), "sig_low": float(sig[0]),
            "sig_high": float(sig[1]), "w_high": float(g2.weights_[order][1]),
            "separation": float((mu[1] - mu[0]) / np.hypot(*sig)),
            "delta_bic": float(g1.bic(a) - g2.bic(a))}


def _chemistry_and_position(table: Table) -> tuple[np.ndarray, ...]:
    """[M/H], [alpha/M], R and ``|Z|`` of every row as float arrays."""
    return (masked_to_nan(table["mh"]), masked_to_nan(table["alpham"]),
            masked_to_nan(table["R_gc"]), np.abs(masked_to_nan(table["Z_gc"])))


def bimodality_grid(table: Table, mask: np.ndarray | None = None,
                    r_edges: Sequence[float] = R_EDGES, z_edges: Sequence[float] = Z_EDGES,
                    seed: int = 0) -> Table:
    """`alpha_sequences` statistics in bins of R and ``|Z|`` (plus the whole selection).

    Parameters
    ----------
    table : `~astropy.table.Table`
        Catalogue with ``mh``, ``alpham``, ``R_gc``, ``Z_gc`` (see `add_galactocentric`).
    mask : bool array, optional
        Stars to use (default `select_giants`).
    r_edges, z_edges : sequence of float
        Bin edges in R and ``|Z|`` (kpc).
    seed : int
        Random state of the mixture fits.

    Returns
    -------
    `~astropy.table.Table`
        ``r_lo, r_hi, absz_lo, absz_hi, median_mh, median_alpham`` and the keys of
        `alpha_sequences`; the first row (R and ``|Z|`` bounds NaN) is the whole selection.
    """
    mask = select_giants(table) if mask is None else np.asarray(mask, bool)
    mh, al, r, az = _chemistry_and_position(table)
    rows = []
    bins = [(np.nan, np.nan, np.nan, np.nan)] + [
        (r0, r1, z0, z1) for z0, z1 in zip(z_edges[:-1], z_edges[1:])
        for r0, r1 in zip(r_edges[:-1], r_edges[1:])]
    for r0, r1, z0, z1 in bins:
        sel = mask.copy() if np.isnan(r0) else mask & (r >= r0) & (r < r1) & (az >= z0) & (az < z1)
        stats = alpha_sequences(mh[sel], al[sel], seed=seed)
        rows.append({"r_lo": r0, "r_hi": r1, "absz_lo": z0, "absz_hi": z1,
                     "n_bin": int(sel.sum()),
                     "median_mh": float(np.nanmedian(mh[sel])) if sel.any() else np.nan,
                     "median_alpham": float(np.nanmedian(al[sel])) if sel.any() else np.nan,
                     **stats})
    out = Table(rows=rows)
    for c in ("r_lo", "r_hi", "absz_lo", "absz_hi"):
        out[c].unit = u.kpc
    out.meta["selection"] = "log g < 2.2, 15 <= S/N <= 25, flag_boundary = 00000000"
    return out


@styled
def plot_bimodality(table: Table, mask: np.ndarray | None = None,
                    r_edges: Sequence[float] = R_EDGES, z_edges: Sequence[float] = Z_EDGES
                    ) -> Figure:
    """[alpha/M] vs [M/H] density maps with contours in bins of R (columns) and ``|Z|`` (rows).

    The top row holds the highest ``|Z|`` bin, as in the paper's Fig. 24. The dashed line
    marks [alpha/M] = 0.15 dex, the paper's sequence boundary.

    Parameters
    ----------
    table : `~astropy.table.Table`
        Catalogue with ``mh``, ``alpham``, ``R_gc``, ``Z_gc``.
    mask : bool array, optional
        Stars to plot (default `select_giants`).
    r_edges, z_edges : sequence of float
        Bin edges in R and ``|Z|`` (kpc).

    Returns
    -------
    `~matplotlib.figure.Figure`
    """
    mask = select_giants(table) if mask is None else np.asarray(mask, bool)
    mh, al, r, az = _chemistry_and_position(table)
    nz, nr = len(z_edges) - 1, len(r_edges) - 1
    fig, axes = new_figure(nz, nr, panel_size=(1.7, 1.5), sharex=True, sharey=True)
    xb, yb = np.linspace(-1.6, 0.6, 34), np.linspace(-0.15, 0.45, 31)
    inside = mask & np.isfinite(r) & np.isfinite(az)
    vmax = max(10.0, np.histogram2d(mh[inside], al[inside], bins=(xb, yb))[0].max()
               if inside.any() else 0.0)
    image = None
    for i in range(nz):
        row = nz - 1 - i
        for j in range(nr):
            ax = axes[row, j]
            sel = (mask & (r >= r_edges[j]) & (r < r_edges[j + 1]) & (az >= z_edges[i])
                   & (az < z_edges[i + 1]))
            im = density_panel(ax, mh[sel], al[sel], bins=(xb, yb), cmap="viridis", vmax=vmax)
            image = im if im is not None else image
            if sel.sum() >= 20:
                h, _, _ = np.histogram2d(mh[sel], al[sel], bins=(xb[::2], yb[::2]))
                if h.max() > 3:
                    ax.contour(0.5 * (xb[::2][1:] + xb[::2][:-1]),
                               0.5 * (yb[::2][1:] + yb[::2][:-1]), h.T,
                               levels=np.array([0.2, 0.5, 0.8]) * h.max(), colors="white",
                               linewidths=0.5)
            ax.axhline(HIGH_ALPHA, color="0.4", ls="--", lw=0.5)
            ax.text(0.04, 0.95, f"{r_edges[j]:g}<R<{r_edges[j + 1]:g}\n"
                    f"{z_edges[i]:g}<|Z|<{z_edges[i + 1]:g}\nN={int(sel.sum())}",
                    transform=ax.transAxes, va="top", fontsize=4.5)
            if row == nz - 1:
                ax.set_xlabel(axis_label("mh"))
            if j == 0:
                ax.set_ylabel(axis_label("alpham"))
    axes[0, 0].set_xlim(xb[0], xb[-1])
    axes[0, 0].set_ylim(yb[0], yb[-1])
    if image is not None:
        add_colorbar(fig, image, axes.ravel().tolist(), "giants per bin")
    fig.suptitle("R, |Z| in kpc (galactocentric, 1/parallax distances)")
    return fig
