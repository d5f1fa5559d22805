"""Stellar populations of the simulated survey: labels, masses and Galactic positions.

The mixture imitates an APOGEE DR17 x Gaia-RVS sample (paper Sect. 2.6, Fig. 4): about
70 % giants (red giant branch and red clump), the rest main-sequence dwarfs and
subgiants, drawn from a thin disc (low-[alpha/M] sequence), a thick disc (high-[alpha/M]
sequence) and a metal-poor halo tail down to [M/H] ~ -2.3. Out-of-range populations
(hot stars with Paschen lines, M giants with TiO, very metal-poor giants) and
open-cluster members are available for boundary-flag and validation tests.

All draws are vectorised and use the `numpy.random.Generator` passed in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..exceptions import InputDataError

__all__ = ["POPULATION_CODES", "CLUSTERS", "Population", "draw_population", "feh_from",
           "FEH_ALPHA_COEFF"]

#: Integer codes of the ``population`` truth column.
POPULATION_CODES = {"thin": 0, "thick": 1, "halo": 2, "hot": 3, "mgiant": 4, "cluster": 5}

#: Simulated open clusters: name, [M/H], age [Gyr], distance [pc], l, b [deg].
CLUSTERS = (
    ("SimCl-M67", 0.00, 4.0, 860.0, 215.7, 31.9),
    ("SimCl-NGC6791", 0.30, 8.0, 4100.0, 70.0, 10.9),
    ("SimCl-NGC188", 0.05, 6.0, 1850.0, 122.8, 22.4),
    ("SimCl-NGC2682b", -0.10, 3.0, 1200.0, 200.0, 15.0),
    ("SimCl-Melotte66", -0.33, 3.5, 4700.0, 259.6, -14.2),
    ("SimCl-NGC2243", -0.45, 4.0, 4400.0, 239.5, -18.0),
    ("SimCl-NGC6819", 0.09, 2.5, 2600.0, 74.0, 8.5),
    ("SimCl-Hyades", 0.13, 0.7, 480.0, 180.1, -22.3),
)

# Mixture weights of a training-like (APOGEE x RVS) sample.
_DISC_WEIGHTS = {"thin": 0.74, "thick": 0.20, "halo": 0.06}
_STAGE_WEIGHTS = {"dwarf": 0.27, "subgiant": 0.05, "rgb": 0.43, "clump": 0.25}
_SCALE_HEIGHT_KPC = {"thin": 0.30, "thick": 0.90, "halo": 3.0}


@dataclass
class Population:
    """True labels and properties of ``n`` simulated stars (1-d arrays, physical units)."""

    teff: np.ndarray
    logg: np.ndarray
    mh: np.ndarray
    alpham: np.ndarray
    feh: np.ndarray
    mass: np.ndarray
    code: np.ndarray
    cluster_id: np.ndarray
    scale_height: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """(N, 5) array in `~gaiarvs_cnn.constants.LABELS` order."""
        return np.stack([self.teff, self.logg, self.mh, self.alpham, self.feh], axis=1)

    def __len__(self) -> int:
        return len(self.teff)


#: [Fe/H] = [M/H] - FEH_ALPHA_COEFF [alpha/M] (+ 0.02 dex scatter) in the simulated truth.
FEH_ALPHA_COEFF = 0.1


def feh_from(mh: np.ndarray, alpham: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[Fe/H] consistent with [M/H] and [alpha/M]: [M/H] - 0.1 [alpha/M] + N(0, 0.02)."""
    return mh - FEH_ALPHA_COEFF * alpham + rng.normal(0.0, 0.02, np.shape(mh))


def _chemistry(disc: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """[M/H] and [alpha/M] for thin (0), thick (1) and halo (2) stars (two alpha sequences)."""
    n = len(disc)
    mh = np.where(disc == 0, rng.normal(-0.05, 0.22, n),
                  np.where(disc == 1, rng.normal(-0.50, 0.25, n), rng.normal(-1.35, 0.45, n)))
    mh = np.clip(mh, -2.3, 0.55)
    low = np.clip(0.02 - 0.10 * mh, -0.05, 0.12)              # thin-disc sequence
    high = np.clip(0.19 - 0.13 * (mh + 0.3), 0.10, 0.32)      # thick-disc sequence
    halo = np.full(n, 0.30)
    alpha = np.where(disc == 0, low, np.where(disc == 1, high, halo))
    alpha = alpha + rng.normal(0.0, np.where(disc == 2, 0.05, 0.03), n)
    return mh, np.clip(alpha, -0.18, 0.46)


def rgb_teff(logg: np.ndarray, mh: np.ndarray) -> np.ndarray:
    """Effective temperature [K] of the red giant branch at ``logg`` and [M/H]."""
    return 4600.0 + 380.0 * (logg - 2.5) - 200.0 * mh


def _dwarf_logg(teff: np.ndarray, mass: np.ndarray, evolved: np.ndarray) -> np.ndarray:
    """Main-sequence log g from mass and Teff; subgiants move towards log g ~ 3.5."""
    radius = mass**0.8
    logg = 4.44 + np.log10(mass) - 2.0 * np.log10(radius)
    return logg - evolved * (logg - 3.5)


def _stages(n: int, rng: np.random.Generator, weights: dict) -> np.ndarray:
    names = list(weights)
    p = np.asarray([weights[k] for k in names], dtype=float)
    return rng.choice(len(names), size=n, p=p / p.sum())


def _field_stars(n: int, rng: np.random.Generator, disc_weights: dict | None = None,
                 flat_halo_mh: tuple[float, float] | None = None) -> Population:
    """Training-like field stars (thin, thick disc, halo; dwarfs, subgiants, RGB, RC).

    ``disc_weights`` replaces `_DISC_WEIGHTS` (same keys); ``flat_halo_mh`` draws the
    halo stars' [M/H] uniformly in that range instead of the halo's normal distribution.
    """
    disc = _stages(n, rng, _DISC_WEIGHTS if disc_weights is None else disc_weights)
    mh, alpham = _chemistry(disc, rng)
    if flat_halo_mh is not None:
        mh = np.where(disc == 2, rng.uniform(*flat_halo_mh, n), mh)
    stage = _stages(n, rng, _STAGE_WEIGHTS)
    # dwarfs and subgiants
    mass_d = np.clip(rng.lognormal(np.log(0.95), 0.15, n) - 0.1 * (disc > 0), 0.65, 1.45)
    teff_d = 5777.0 * mass_d**0.55 + 120.0 * (-mh) + rng.normal(0, 60, n)
    evolved = np.where(stage == 1, rng.uniform(0.3, 1.0, n), rng.uniform(0.0, 0.25, n))
    logg_d = _dwarf_logg(teff_d, mass_d, evolved) + rng.normal(0, 0.04, n)
    teff_d = teff_d - 300.0 * evolved * (stage == 1)
    # giants: RGB (log g 0.6 - 3.6) and red clump (log g ~ 2.45)
    logg_g = np.where(stage == 2, 3.7 - rng.power(0.75, n) * 3.1, rng.normal(2.45, 0.08, n))
    teff_g = np.where(stage == 2, rgb_teff(logg_g, mh), 4750.0 - 250.0 * mh) + rng.normal(0, 60, n)
    mass_g = np.clip(rng.lognormal(np.log(1.15), 0.25, n) - 0.2 * (disc > 0), 0.75, 3.0)
    giant = stage >= 2
    teff = np.clip(np.where(giant, teff_g, teff_d), 3710.0, 6390.0)
    logg = np.clip(np.where(giant, logg_g, logg_d), 0.6, 4.75)
    heights = np.asarray([_SCALE_HEIGHT_KPC[k] for k in _DISC_WEIGHTS])[disc]
    return Population(teff, logg, mh, alpham, feh_from(mh, alpham, rng),
                      np.where(giant, mass_g, mass_d), disc.astype(np.int8),
                      np.full(n, -1, np.int16), heights)


#: [M/H] range of the `_metal_poor_stars` component (down to the paper's training limit).
METAL_POOR_MH = (-2.29, -0.9)


def _metal_poor_stars(n: int, rng: np.random.Generator) -> Population:
    """Halo field stars with [M/H] uniform in `METAL_POOR_MH` (all evolutionary stages).

    The training sample adds them so that the metal-poor end of the training range is
    populated about as densely as the disc metallicities (issue 16: with the halo tail
    of the field mixture alone, 6 % of the stars, the CNN pulled [M/H] < -1.5 stars
    towards the sample mean by ~0.5 dex).
    """
    return _field_stars(n, rng, {"thin": 0.0, "thick": 0.0, "halo": 1.0}, METAL_POOR_MH)


def _out_of_range(n: int, rng: np.random.Generator) -> Population:
    """Hot stars (7000-9500 K), M giants (3100-3650 K) and very metal-poor giants."""
    kind = rng.choice(3, size=n, p=[0.4, 0.35, 0.25])
    teff = np.select([kind == 0, kind == 1],
                     [rng.uniform(7000, 9500, n), rng.uniform(3100, 3650, n)],
                     rng.uniform(4300, 5200, n))
    logg = np.select([kind == 0, kind == 1],
                     [rng.uniform(3.6, 4.3, n), rng.uniform(0.0, 1.0, n)],
                     rng.uniform(1.0, 3.0, n))
    mh = np.select([kind == 0, kind == 1], [rng.normal(0.0, 0.2, n), rng.normal(-0.1, 0.2, n)],
                   rng.uniform(-3.5, -2.5, n))
    alpham = np.where(kind == 2, 0.35, 0.02) + rng.normal(0, 0.03, n)
    code = np.select([kind == 0, kind == 1], [3, 4], 2).astype(np.int8)
    mass = np.select([kind == 0, kind == 1], [1.6 + 0.1 * (teff - 7000) / 500, 1.2], 0.8)
    return Population(teff, logg, mh, alpham, feh_from(mh, alpham, rng), mass, code,
                      np.full(n, -1, np.int16), np.where(kind == 2, 3.0, 0.3))


def _cluster_members(n: int, rng: np.random.Generator) -> Population:
    """Open-cluster members: shared [M/H], age-consistent turn-off and red clump."""
    cid = rng.integers(0, len(CLUSTERS), n).astype(np.int16)
    mh0 = np.asarray([c[1] for c in CLUSTERS])[cid]
    age = np.asarray([c[2] for c in CLUSTERS])[cid]
    mh = mh0 + rng.normal(0, 0.02, n)
    alpham = np.clip(0.02 - 0.10 * mh, -0.05, 0.12) + rng.normal(0, 0.02, n)
    m_to = (age / 10.0) ** (-1 / 2.5)                       # turn-off mass [Msun]
    giant = rng.random(n) < 0.45
    mass_d = m_to * rng.uniform(0.75, 0.98, n)
    teff_d = 5777.0 * mass_d**0.55 - 120.0 * mh
    logg_d = _dwarf_logg(teff_d, mass_d, np.zeros(n))
    clump = rng.random(n) < 0.5
    logg_g = np.where(clump, 2.45 + 0.25 * (m_to > 2.0), rng.uniform(1.2, 3.4, n))
    teff_g = np.where(clump, 4750.0 - 250.0 * mh, rgb_teff(logg_g, mh)) - 120.0 * (m_to - 1.2)
    teff = np.where(giant, teff_g, teff_d) + rng.normal(0, 40, n)
    logg = np.where(giant, logg_g, logg_d) + rng.normal(0, 0.03, n)
    return Population(np.clip(teff, 3710, 6390), np.clip(logg, 0.6, 4.75), mh, alpham,
                      feh_from(mh, alpham, rng), np.where(giant, m_to, mass_d),
                      np.full(n, 5, np.int8), cid, np.full(n, 0.3))


_COMPONENTS = {"field": _field_stars, "out": _out_of_range, "cluster": _cluster_members,
               "metal-poor": _metal_poor_stars}


def draw_population(n: int, rng: np.random.Generator, fractions: dict[str, float]) -> Population:
    """Draw ``n`` stars from the mixture ``fractions`` of the components.

    Components: ``'field'`` (thin/thick disc and halo), ``'out'`` (out of the training
    range), ``'cluster'`` (open-cluster members) and ``'metal-poor'`` (halo stars flat in
    [M/H], `_metal_poor_stars`).
    """
    unknown = set(fractions) - set(_COMPONENTS)
    if unknown:
        raise InputDataError(f"Unknown population component(s) {sorted(unknown)}; "
                             f"use {sorted(_COMPONENTS)}.")
    # the first three always take part in the multinomial draw (keeps old draws identical)
    keys = ("field", "out", "cluster") + (("metal-poor",) if "metal-poor" in fractions else ())
    p = np.asarray([fractions.get(k, 0.0) for k in keys], dtype=float)
    counts = rng.multinomial(n, p / p.sum())
    parts = [_COMPONENTS[k](c, rng) for k, c in zip(keys, counts) if c > 0]
    merged = Population(*(np.concatenate([getattr(pp, f) for pp in parts])
                          for f in Population.__dataclass_fields__))
    order = rng.permutation(n)
    return Population(*(getattr(merged, f)[order] for f in Population.__dataclass_fields__))
