"""Photometry, astrometry, extinction, RVS S/N and XP coefficients of simulated stars.

* Absolute G from the Stefan-Boltzmann law, ``L = M (Teff/Teff_sun)^4 / (g/g_sun)``
  (solar units), and the G-band bolometric correction of Andrae et al. (2018), so that
  parallax + G constrain log g.
* Intrinsic colour (BP-RP)_0 from Teff and [M/H] (inverted colour-Teff relation),
  G-RP from BP-RP, extinction A_V growing with distance in the dust layer
  (A_G = 0.83 A_V, E(BP-RP) = 0.42 A_V), G_RVS from G_RP (Sartoretti et al. 2023).
* Apparent magnitudes from a number-count law in G_RVS up to the RVS limit
  (G_RVS ~ 12), distance from the distance modulus; parallax = 1/d with DR3-like
  errors; RUWE log-normal around 1 with a binary tail.
* RVS S/N ~ 20 x 10^(0.2 (12 - G_RVS)) with a log-normal transit-number scatter.
* XP: a smooth photon SED (black body x metal-line blanketing in the blue x TiO x
  extinction curve) through the real DR3 instrument response, dispersion and basis
  shipped with GaiaXPy (`gaiarvs_cnn.simulate.xp`), with DR3-like correlated noise.
"""
from __future__ import annotations

import numpy as np

__all__ = ["absolute_g", "bc_g", "colours", "astrometry_and_photometry", "xp_coefficients",
           "rvs_snr_from_grvs", "NUMAX_SUN", "TEFF_SUN"]

TEFF_SUN = 5777.0
LOGG_SUN = 4.438
MBOL_SUN = 4.74
#: Solar frequency of maximum oscillation power [muHz].
NUMAX_SUN = 3090.0
_R0_KPC, _Z0_KPC = 8.2, 0.02
_DUST_SCALE_KPC = 0.12
_AV_PER_KPC = 0.9
_DUST_PATH_MAX_KPC = 2.5

_BC_HOT = (6.000e-02, 6.731e-05, -6.647e-08, 2.859e-11, -7.197e-15)
_BC_COOL = (1.749e00, 1.977e-03, 3.737e-07, -8.966e-11, -4.183e-14)


def bc_g(teff: np.ndarray) -> np.ndarray:
    """G-band bolometric correction [mag] (Andrae et al. 2018 polynomials in Teff - 5772 K)."""
    dt = np.asarray(teff, dtype=float) - 5772.0
    hot = sum(c * dt**i for i, c in enumerate(_BC_HOT))
    cool = sum(c * dt**i for i, c in enumerate(_BC_COOL))
    return np.where(teff >= 4000.0, hot, cool)


def absolute_g(teff, logg, mass) -> np.ndarray:
    """Absolute G magnitude [mag] from Teff [K], log g [dex] and mass [Msun]."""
    log_l = np.log10(mass) + 4.0 * np.log10(np.asarray(teff) / TEFF_SUN) - (logg - LOGG_SUN)
    return MBOL_SUN - 2.5 * log_l - bc_g(teff)


def colours(teff, mh, a_v) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (BP-RP, G-RP, G-G_RVS) [mag] for Teff [K], [M/H] [dex] and A_V [mag]."""
    theta = 5040.0 / np.asarray(teff, dtype=float)
    # theta = 0.4929 + 0.5092 c - 0.0353 c^2  (dwarf-like colour-Teff relation), solved for c
    a, b, c0 = -0.0353, 0.5092, 0.4929 - theta
    bprp0 = (-b + np.sqrt(b * b - 4 * a * c0)) / (2 * a) + 0.06 * mh
    bprp0 = np.where(teff < 3800, bprp0 + 4e-4 * (3800 - teff), bprp0)  # TiO reddening of M stars
    bprp = bprp0 + 0.42 * a_v
    grp = 0.02 + 0.58 * bprp - 0.03 * np.clip(bprp, 0, None) ** 2
    x = np.clip(bprp, -0.5, 3.5)
    g_grvs = grp + 0.0397 + 0.2852 * x + 0.0330 * x**2 + 0.0867 * x**3 * (x < 1.2) \
        + 0.0867 * 1.2**3 * (x >= 1.2)
    return bprp, grp, g_grvs


def rvs_snr_from_grvs(grvs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RVS S/N of the mean spectrum from G_RVS [mag] with transit-to-transit scatter."""
    return 20.0 * 10 ** (0.2 * (12.0 - grvs)) * rng.lognormal(0.0, 0.25, np.shape(grvs))


def _sky_and_distance(dist_kpc, scale_height, rng):
    """Galactic (l, b) [deg], galactocentric R, Z [kpc] for stars at ``dist_kpc``."""
    n = len(dist_kpc)
    z = rng.exponential(scale_height) * rng.choice([-1.0, 1.0], n)
    sinb = np.clip(z / dist_kpc, -1, 1)
    far = np.abs(z) >= dist_kpc
    sinb = np.where(far, rng.uniform(-1, 1, n), sinb)
    b = np.arcsin(sinb)
    lon = np.degrees(rng.uniform(0, 2 * np.pi, n))
    return (lon, np.degrees(b), *_galactocentric(dist_kpc, lon, np.degrees(b)))


def _galactocentric(dist_kpc, l_deg, b_deg) -> tuple[np.ndarray, np.ndarray]:
    """Galactocentric cylindrical R and height Z [kpc] (Sun at R = 8.2 kpc, Z = 20 pc)."""
    lr, br = np.radians(l_deg), np.radians(b_deg)
    x = _R0_KPC - dist_kpc * np.cos(br) * np.cos(lr)
    y = dist_kpc * np.cos(br) * np.sin(lr)
    return np.hypot(x, y), dist_kpc * np.sin(br) + _Z0_KPC


def galactic_to_icrs(l_deg, b_deg) -> tuple[np.ndarray, np.ndarray]:
    """Convert Galactic (l, b) to ICRS (ra, dec) [deg] with the IAU rotation matrix."""
    rot = np.array([[-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
                    [+0.4941094278755837, -0.4448296299600112, +0.7469822444972189],
                    [-0.8676661490190047, -0.1980763734312015, +0.4559837761750669]])
    lr, br = np.radians(l_deg), np.radians(b_deg)
    vec = np.stack([np.cos(br) * np.cos(lr), np.cos(br) * np.sin(lr), np.sin(br)])
    eq = rot.T @ vec
    ra = np.degrees(np.arctan2(eq[1], eq[0])) % 360.0
    return ra, np.degrees(np.arcsin(np.clip(eq[2], -1, 1)))


def astrometry_and_photometry(pop, grvs, rng, cluster_geometry=None) -> dict[str, np.ndarray]:
    """Distances, positions, extinction, magnitudes, parallaxes and RUWE for ``pop``.

    Parameters
    ----------
    pop : `~gaiarvs_cnn.simulate.population.Population`
    grvs : array
        Target apparent G_RVS magnitudes [mag] (field stars; clusters use their distance).
    rng : `numpy.random.Generator`
    cluster_geometry : tuple of arrays (dist_pc, l, b) per cluster id, optional
    """
    n = len(pop)
    mg = absolute_g(pop.teff, pop.logg, pop.mass)
    a_v = np.zeros(n)
    clumpiness = rng.uniform(0.5, 1.5, n)
    glon = glat = None
    for _ in range(3):  # fixed point: distance <-> extinction
        _, _, g_grvs = colours(pop.teff, pop.mh, a_v)
        dist = 10 ** ((grvs + g_grvs - mg - 0.83 * a_v + 5.0) / 5.0) / 1000.0
        if glon is None:
            glon, glat, _, _ = _sky_and_distance(dist, pop.scale_height, rng)
        sinb = np.abs(np.sin(np.radians(glat)))
        a_v = _AV_PER_KPC * clumpiness * np.minimum(
            np.minimum(dist, _DUST_PATH_MAX_KPC), _DUST_SCALE_KPC / np.maximum(sinb, 1e-3))
    big_r, big_z = _galactocentric(dist, glon, glat)
    if cluster_geometry is not None:
        member = pop.cluster_id >= 0
        cid = pop.cluster_id[member]
        dist[member] = cluster_geometry[0][cid] / 1000.0 * (1 + rng.normal(0, 0.01, member.sum()))
        glon[member] = cluster_geometry[1][cid] + rng.normal(0, 0.2, member.sum())
        glat[member] = cluster_geometry[2][cid] + rng.normal(0, 0.2, member.sum())
        sinb = np.maximum(np.abs(np.sin(np.radians(glat[member]))), 1e-3)
        a_v[member] = _AV_PER_KPC * np.minimum(np.minimum(dist[member], _DUST_PATH_MAX_KPC),
                                               _DUST_SCALE_KPC / sinb)
        big_r[member], big_z[member] = _galactocentric(dist[member], glon[member], glat[member])
    bprp, grp, g_grvs = colours(pop.teff, pop.mh, a_v)
    g = mg + 5.0 * np.log10(dist * 1000.0) - 5.0 + 0.83 * a_v
    grvs = g - g_grvs
    plx_true = 1.0 / dist
    plx_err = 0.012 + 0.02 * 10 ** (0.3 * (g - 14.0)) * rng.lognormal(0, 0.2, n)
    ruwe = np.where(rng.random(n) < 0.06, rng.uniform(1.4, 3.0, n), rng.lognormal(0.0, 0.08, n))
    ra, dec = galactic_to_icrs(glon, glat)
    g_err = 2.8e-4 + 1e-4 * 10 ** (0.4 * (g - 13.0))
    xp_err = 1.0e-3 + 1e-3 * 10 ** (0.4 * (g - 13.0))
    return {
        "distance_kpc": dist, "a_v": a_v, "ra": ra, "dec": dec,
        "galactic_R": big_r, "galactic_Z": big_z, "grvs": grvs,
        "phot_g_mean_mag": g + rng.normal(0, g_err),
        "phot_bp_mean_mag": g + (bprp - grp) + rng.normal(0, xp_err),
        "phot_rp_mean_mag": g - grp + rng.normal(0, xp_err),
        "phot_g_mean_mag_error": g_err, "phot_bp_mean_mag_error": xp_err,
        "phot_rp_mean_mag_error": xp_err,
        "parallax": plx_true + rng.normal(0, plx_err) * np.sqrt(ruwe), "parallax_error": plx_err,
        "ruwe": ruwe,
    }


# -- XP coefficients -----------------------------------------------------------------
def _sed(wl_nm: np.ndarray, teff, mh, a_v) -> np.ndarray:
    """Photon SED (arbitrary units) at ``wl_nm`` for each star: black body x blanketing x dust."""
    hc_k = 1.4388e7  # h c / k [nm K]
    x = hc_k / (wl_nm[None, :] * np.asarray(teff)[:, None])
    bb = 1.0 / (wl_nm[None, :] ** 4 * np.expm1(x))        # photon B_lambda
    blanket = np.exp(-0.35 * 10 ** (0.8 * np.asarray(mh)[:, None])
                     * (5000.0 / np.asarray(teff)[:, None]) ** 2 * np.exp(-(wl_nm - 330.0) / 90.0))
    tio = np.clip((3900.0 - np.asarray(teff)[:, None]) / 600.0, 0, None) * (
        np.exp(-0.5 * ((wl_nm - 710.0) / 25.0) ** 2) + np.exp(-0.5 * ((wl_nm - 770.0) / 20.0) ** 2))
    dust = 10 ** (-0.4 * np.asarray(a_v)[:, None] * (550.0 / wl_nm) ** 1.3)
    return bb * blanket * np.exp(-tio) * dust


def xp_coefficients(teff, mh, a_v, bp_mag, rp_mag, rng) -> dict[str, np.ndarray]:
    """BP and RP coefficients (with errors) in the real Gaia DR3 basis, in e-/s.

    The photon SED (`_sed`) goes through the DR3 instrument model and basis shipped with
    GaiaXPy (`gaiarvs_cnn.simulate.xp`); each band is scaled to the star's BP or RP flux.

    Parameters
    ----------
    teff, mh, a_v : array
        Teff [K], [M/H] [dex], A_V [mag].
    bp_mag, rp_mag : array
        BP and RP magnitudes [mag].
    rng : `numpy.random.Generator` or None
        None gives noise-free coefficients.

    Returns
    -------
    dict with ``bp_coefficients``, ``bp_coefficient_errors``, ``rp_coefficients``,
    ``rp_coefficient_errors`` (each (N, 55)).
    """
    from .xp import XP_BANDS, xp_band
    from .xp import xp_coefficients as _project

    seds = {b: _sed(xp_band(b).wavelength, teff, mh, a_v) for b in XP_BANDS}
    return _project(seds, {"bp": bp_mag, "rp": rp_mag}, rng)
