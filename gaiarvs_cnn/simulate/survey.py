"""The simulated Gaia-RVS survey: the offline default source of gaiarvs-cnn.

A source adapter like the real ones: it writes `~gaiarvs_cnn.io.batch.StarBatch` objects
with the store's core columns (RVS flux on the 2401-pixel grid, G/BP/RP, parallax,
RUWE, RVS S/N, 55+55 XP coefficients, labels) plus the truth columns
`SIM_EXTRA_COLUMNS`, and reference catalogues (APOGEE-, GALAH-, K2-GAP-, cluster-,
GSP-Spec- and GSP-Phot-like) derived from the same truth in the canonical schema of
`gaiarvs_cnn.io.reference`.

Physics (see the private modules for details):

* populations: `gaiarvs_cnn.simulate.population` (thin/thick disc with two
  [alpha/M] sequences, metal-poor halo tail, dwarfs/RGB/red clump, out-of-range hot
  stars, M giants and very metal-poor stars, open clusters);
* spectra: `gaiarvs_cnn.simulate.spectra` (line list, curve of growth, R = 11500
  LSF, analytic d(flux)/d(label));
* photometry, astrometry, S/N and XP: `gaiarvs_cnn.simulate.photometry`;
* reference surveys: `gaiarvs_cnn.simulate.reference`.

Examples
--------
>>> from gaiarvs_cnn.simulate.survey import simulate_batch
>>> batch = simulate_batch(10, seed=1, kind="training")
>>> batch["flux"].shape, batch["true_labels"].shape
((10, 2401), (10, 5))
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
from astropy import log
from tqdm.auto import tqdm

from ..constants import LABELS, PAPER_TRAINING_RANGES, RVS_NPIX
from ..exceptions import InputDataError
from ..io.batch import CORE_COLUMNS, ColumnSpec, StarBatch
from ..io.store import atomic_store
from .domain import (
    NEARBY_MAX_PARALLAX,
    NOISE_CORRELATION_PX,
    DomainRandomisation,
    continuum_factor,
    correlated_normal,
    noise_templates,
    resolution_per_star,
    rv_sigma_per_star,
    template_index,
)
from .figures import plot_calcium_triplet, plot_kiel_spectra, plot_real_comparison
from .photometry import astrometry_and_photometry, rvs_snr_from_grvs, xp_coefficients
from .population import CLUSTERS, FEH_ALPHA_COEFF, POPULATION_CODES, draw_population
from .reference import apogee_labels, reference_catalog
from .spectra import SpectrumModel

__all__ = ["SIM_EXTRA_COLUMNS", "SIM_KINDS", "RECOMMENDED_REALISM", "SpectrumModel",
           "LogUniformSNR", "simulate_batch", "simulate_store", "reference_catalog", "forward",
           "jacobian", "cramer_rao_bound", "POPULATION_CODES", "CLUSTERS", "plot_kiel_spectra",
           "plot_calcium_triplet", "plot_real_comparison"]

#: Kinds of simulated samples.
SIM_KINDS = ("training", "observed", "out-of-range", "calibration")

_LABEL_DOC = ", ".join(LABELS)

#: Truth columns added to every simulated store (beyond `~gaiarvs_cnn.io.batch.CORE_COLUMNS`).
SIM_EXTRA_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("true_labels", "float32", (len(LABELS),), "",
               f"True labels ({_LABEL_DOC}; K, dex, dex, dex, dex)"),
    ColumnSpec("population", "int8", (), "",
               "0 thin disc, 1 thick disc, 2 halo/metal-poor, 3 hot (Paschen), "
               "4 M giant (TiO), 5 open-cluster member"),
    ColumnSpec("cluster_id", "int16", (), "", "Index in simulated.CLUSTERS, -1 if none"),
    ColumnSpec("rv_shift", "float32", (), "km / s",
               "Residual radial velocity left in the spectrum"),
    ColumnSpec("galactic_R", "float32", (), "kpc", "Galactocentric cylindrical radius"),
    ColumnSpec("galactic_Z", "float32", (), "kpc", "Height above the Galactic plane"),
    ColumnSpec("true_parallax", "float32", (), "mas", "Noise-free parallax"),
    ColumnSpec("a_v", "float32", (), "mag", "V-band extinction"),
    ColumnSpec("mass", "float32", (), "solMass", "Stellar mass"),
)
_ALL_SPECS = tuple(CORE_COLUMNS) + SIM_EXTRA_COLUMNS

# population mixture, S/N floor, G_RVS range, source_id prefix per kind
_KIND_SETUP = {
    "training": ({"field": 0.85, "metal-poor": 0.15}, 30.0, (5.0, 12.0), 1),
    "observed": ({"field": 0.95, "out": 0.03, "cluster": 0.02}, 15.0, (4.0, 12.0), 2),
    "out-of-range": ({"out": 1.0}, 15.0, (4.0, 12.0), 3),
    "calibration": ({"field": 1.0}, 15.0, (4.0, 12.0), 4),
}
#: Domain randomisation (`gaiarvs_cnn.simulate.domain`) recommended for each kind, used by
#: ``gaiarvs-cnn simulate`` when ``--realism`` is not given: the training sample teaches
#: what real DR3 spectra look like; the samples the precision and the calibration are
#: measured on keep the forward model's white noise (the Cramér-Rao bounds of
#: `cramer_rao_bound` hold for them). The library's own default is ``'none'``.
RECOMMENDED_REALISM = {"training": "dr3", "observed": "none", "out-of-range": "none",
                       "calibration": "none"}
# kinds with APOGEE-like reference labels, selected by the paper's training cuts
_LABELLED_KINDS = ("training", "calibration")
_SPEC_CHUNK = 2048


@functools.lru_cache(maxsize=1)
def _model() -> SpectrumModel:
    return SpectrumModel()


def forward(labels, rv_shift_kms=None) -> np.ndarray:
    """Noise-free simulated RVS flux for labels (N, 5) or (5,); see `SpectrumModel.flux`.

    Parameters
    ----------
    labels : array_like, shape (N, 5) or (5,)
        Teff [K], log g [dex], [M/H], [alpha/M], [Fe/H] [dex], in
        `~gaiarvs_cnn.constants.LABELS` order.
    rv_shift_kms : array_like, shape (N,), optional
        Residual radial velocity [km/s] that shifts the lines (positive = redshift);
        None for no shift.

    Returns
    -------
    numpy.ndarray of float32, shape (N, 2401) or (2401,)
        Normalised flux on the Gaia DR3 RVS grid; 1-d when ``labels`` is 1-d.
    """
    lab = np.asarray(labels, dtype=float)
    out = _model().flux(np.atleast_2d(lab), rv_shift_kms)
    return out[0] if lab.ndim == 1 else out


def jacobian(labels) -> np.ndarray:
    """d(flux)/d(label) at one star, shape (2401, 5) (see `SpectrumModel.jacobian`).

    Parameters
    ----------
    labels : array_like, shape (5,)
        Teff [K], log g [dex], [M/H], [alpha/M], [Fe/H] [dex].

    Returns
    -------
    numpy.ndarray, shape (2401, 5)
        Derivatives of the normalised flux per unit of each label (per K for Teff,
        per dex otherwise), in `~gaiarvs_cnn.constants.LABELS` order.
    """
    return _model().jacobian(labels)


class LogUniformSNR:
    """An S/N distribution for `simulate_batch`: log-uniform between ``lo`` and ``hi``.

    Calling the instance as ``draw(rng, n)`` returns ``n`` S/N values (per pixel).

    Parameters
    ----------
    lo, hi : float
        Lower and upper bounds of the S/N (per pixel, dimensionless), ``0 < lo <= hi``.

    Raises
    ------
    InputDataError
        If the bounds do not satisfy ``0 < lo <= hi``.

    Examples
    --------
    >>> import numpy as np
    >>> draw = LogUniformSNR(15, 25)
    >>> bool(np.all((draw(np.random.default_rng(0), 100) >= 15)))
    True
    """

    def __init__(self, lo: float, hi: float):
        if not 0 < lo <= hi:
            raise InputDataError(f"S/N range ({lo}, {hi}) must satisfy 0 < lo <= hi.")
        self.lo, self.hi = float(lo), float(hi)

    def __call__(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.exp(rng.uniform(np.log(self.lo), np.log(self.hi), n))

    def __repr__(self) -> str:
        return f"LogUniformSNR({self.lo:g}, {self.hi:g})"


def cramer_rao_bound(labels, snr: float, feh_free: bool = False) -> np.ndarray:
    """Cramer-Rao lower bound on the label uncertainties from the RVS spectrum alone.

    Uses the exact Jacobian of the noise-free model and the simulator's noise model
    (per-pixel Gaussian, sigma = sqrt(flux) / (S/N)): ``sqrt(diag(F^-1))`` with the Fisher
    matrix ``F = J^T diag(1/sigma^2) J``. By default [Fe/H] follows the simulator's relation
    [Fe/H] = [M/H] - 0.1 [alpha/M] (4 free labels; the [Fe/H] bound is propagated), because
    the spectrum alone cannot separate [M/H] from [alpha/M] and [Fe/H] otherwise.

    Parameters
    ----------
    labels : array, shape (5,)
        Teff [K], log g [dex], [M/H], [alpha/M], [Fe/H] [dex].
    snr : float
        RVS S/N of the spectrum.
    feh_free : bool
        Treat the five labels as independent (bounds on [M/H] and [alpha/M] then blow up).

    Returns
    -------
    array, shape (5,)
        Minimum standard deviations (K, dex, dex, dex, dex) in LABELS order.
    """
    jac = jacobian(labels)
    flux = forward(np.asarray(labels, dtype=float)).astype(float)
    inv_var = float(snr) ** 2 / np.clip(flux, 0.05, None)
    # d(labels)/d(free parameters)
    chain = np.eye(5) if feh_free else np.vstack([np.eye(4), [0, 0, 1.0, -FEH_ALPHA_COEFF]])
    jac_free = jac @ chain
    cov = np.linalg.inv(jac_free.T @ (jac_free * inv_var[:, None]))
    return np.sqrt(np.diag(chain @ cov @ chain.T))


def _draw_grvs(n: int, rng: np.random.Generator, lo: float, hi: float) -> np.ndarray:
    """Apparent G_RVS [mag] from number counts ~ 10^(0.4 m) up to a soft survey limit."""
    k = 0.4
    u = rng.random(n)
    m = np.log10(10 ** (k * lo) + u * (10 ** (k * hi) - 10 ** (k * lo))) / k
    return m + rng.normal(0, 0.08, n)


def _snr(snr, grvs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if snr is None:
        return rvs_snr_from_grvs(grvs, rng)
    if callable(snr):
        values = np.asarray(snr(rng, len(grvs)), dtype=float)
        if values.shape != grvs.shape:
            raise InputDataError(f"The snr callable returned shape {values.shape}, "
                                 f"expected ({len(grvs)},): it must be snr(rng, n) -> array.")
        return values
    return np.full(len(grvs), float(snr))


def _training_cuts(cols: dict, labels: np.ndarray, label_errors: np.ndarray,
                   snr_floor: float = 30.0, max_parallax: float | None = None) -> np.ndarray:
    """Paper Sects. 2.4-2.6 cuts: S/N >= ``snr_floor`` (30 in the paper), parallax error
    < 20 %, RUWE < 1.4, Table 1 ranges (the parallax up to ``max_parallax`` if given)."""
    plx = cols["parallax"]
    keep = ((cols["rvs_snr"] >= snr_floor) & (cols["parallax_error"] < 0.2 * plx)
            & (cols["ruwe"] < 1.4))
    ranges = dict(PAPER_TRAINING_RANGES)
    if max_parallax is not None:
        ranges["parallax"] = (ranges["parallax"][0], float(max_parallax))
    for name, (lo, hi) in ranges.items():
        val = cols[name] if name in cols else labels[:, LABELS.index(name)]
        keep &= (val >= lo) & (val <= hi)
    keep &= (label_errors[:, 0] < 100) & (label_errors[:, 1] < 0.1) & (label_errors[:, 3] < 0.1)
    return keep


def _noisy_spectra(labels, rv, snr, rng, domain: DomainRandomisation | None = None,
                   dr_rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Noisy flux and flux_error (N, 2401) float32 with a few NaN edge pixels.

    ``domain`` adds the ingredients of real DR3 spectra (`gaiarvs_cnn.simulate.domain`),
    drawn from ``dr_rng``; the draws of ``rng`` are the same with or without them.
    """
    domain = domain or DomainRandomisation()
    n = len(labels)
    flux = np.empty((n, RVS_NPIX), np.float32)
    err = np.empty((n, RVS_NPIX), np.float32)
    model = _model()
    if domain.any:
        templates = noise_templates()
        which = template_index(n, dr_rng)
        resolution = resolution_per_star(n, dr_rng) if domain.lsf_spread else None
        corr_px = dr_rng.uniform(*NOISE_CORRELATION_PX, n) if domain.correlated_noise else None
    for lo in range(0, n, _SPEC_CHUNK):
        sl = slice(lo, lo + _SPEC_CHUNK)
        clean = model.flux(labels[sl], rv[sl],
                           None if not domain.lsf_spread else resolution[sl])
        sigma = np.sqrt(np.maximum(clean, np.float32(0.05)))
        if domain.error_templates:
            sigma *= np.asarray(templates["error_shape"])[which[sl]]
        sigma /= snr[sl, None].astype(np.float32)
        noise = rng.standard_normal(clean.shape, dtype=np.float32)
        if domain.correlated_noise:
            noise = correlated_normal(len(clean), dr_rng, corr_px[sl])
        noise *= sigma
        noise += clean
        if domain.continuum:
            factor = continuum_factor(snr[sl], dr_rng)
            noise *= factor
            sigma *= factor
        flux[sl] = noise
        err[sl] = sigma
    # NaN pixels at the edges (as in DR3 mean spectra): ~1/3 of the stars at each end
    n_blue = np.where(rng.random(n) < 0.35, rng.integers(1, 12, n), 0)
    n_red = np.where(rng.random(n) < 0.35, rng.integers(1, 12, n), 0)
    if domain.nan_templates:   # the NaN pixels of a real spectrum instead
        mask = np.asarray(templates["nan_mask"])[which]
        flux[mask] = np.nan
        err[mask] = np.nan
        return flux, err
    for i in np.flatnonzero((n_blue > 0) | (n_red > 0)):
        for arr in (flux, err):
            arr[i, :n_blue[i]] = np.nan
            arr[i, RVS_NPIX - n_red[i]:] = np.nan
    return flux, err


def _draw_stars(n: int, rng: np.random.Generator, kind: str, snr) -> dict[str, np.ndarray]:
    """Draw ``n`` candidate stars (no spectra yet) as a dict of columns."""
    fractions, _, (lo, hi), _ = _KIND_SETUP[kind]
    pop = draw_population(n, rng, fractions)
    geometry = tuple(np.asarray([c[i] for c in CLUSTERS]) for i in (3, 4, 5))
    cols = astrometry_and_photometry(pop, _draw_grvs(n, rng, lo, hi), rng, geometry)
    cols["rvs_snr"] = _snr(snr, cols["grvs"], rng)
    cols.update(true_labels=pop.labels, population=pop.code, cluster_id=pop.cluster_id,
                true_parallax=1.0 / cols["distance_kpc"], mass=pop.mass)
    return cols


def _select(cols: dict, keep: np.ndarray) -> dict:
    return {k: v[keep] for k, v in cols.items()}


def simulate_batch(n: int, seed=0, kind: str = "observed",
                   snr: float | Callable | None = None, *, rv_sigma: float = 0.5,
                   id_offset: int = 0, realism=None) -> StarBatch:
    """Simulate ``n`` Gaia-RVS stars (spectra, photometry, astrometry, XP and truth).

    Parameters
    ----------
    n : int
        Number of stars.
    seed : int or sequence of int
        Seed of `numpy.random.default_rng`; same seed, same stars.
    kind : {'observed', 'training', 'out-of-range', 'calibration'}
        ``'training'``: APOGEE x RVS-like stars passing the paper's training cuts
        (S/N >= 30, parallax error < 20 %, RUWE < 1.4, Table 1 label/G/parallax ranges),
        with APOGEE-like ``labels`` and ``label_errors``; 15 % of them are drawn flat in
        [M/H] between -2.29 and -0.9 (`gaiarvs_cnn.simulate.population.METAL_POOR_MH`)
        to populate the metal-poor end. ``'calibration'``: labelled APOGEE x RVS-like
        field stars (the field mixture of the observed sample) passing the same cuts
        but down to S/N 15, the held-out sample on which the uncertainty calibration is
        fitted (`gaiarvs_cnn.model.calibration`). ``'observed'``: the RVS sample
        to parameterise (S/N >= 15; 3 % out-of-range stars, 2 % open-cluster members;
        ``labels`` NaN). ``'out-of-range'``: only hot (Paschen), M-giant (TiO) and very
        metal-poor stars.
    snr : float, callable or None
        RVS S/N per star: None draws it from G_RVS like DR3 (about a third at 15-25 in the
        observed sample); a float gives every star that S/N; a callable
        ``snr(rng, n) -> array`` draws it (then independent of magnitude).
        The kind's S/N floor (30 for training, 15 otherwise) is applied in all cases.
    rv_sigma : float
        Standard deviation [km/s] of the residual radial-velocity shifts of the spectra.
    id_offset : int
        Added to the running star number in the ``source_id`` (for streaming chunks).
    realism : str or `~gaiarvs_cnn.simulate.domain.DomainRandomisation`, optional
        Ingredients of real DR3 spectra to add (domain randomisation,
        `gaiarvs_cnn.simulate.domain`): ``'dr3'`` (all), ``'none'``, a comma-separated list
        such as ``'continuum,nearby'`` or ``'dr3,-nearby'``; None is ``'none'`` (the ideal
        forward model); `RECOMMENDED_REALISM` gives ``'dr3'`` for training samples. Its
        draws come from a generator of their own, so the stars and the draws of the other
        columns do not change with it (except through the ``nearby`` training cut).

    Returns
    -------
    `~gaiarvs_cnn.io.batch.StarBatch`
        With `~gaiarvs_cnn.io.batch.CORE_COLUMNS` and `SIM_EXTRA_COLUMNS`.

    Raises
    ------
    InputDataError
        For an unknown kind or realism ingredient, or an S/N that can never pass the
        kind's S/N floor.
    """
    if kind not in _KIND_SETUP:
        raise InputDataError(f"Unknown simulation kind {kind!r}; use one of {SIM_KINDS}.")
    n = int(n)
    if n < 0:
        raise InputDataError(f"Cannot simulate n={n} stars; n must be >= 0.")
    if n == 0:
        return StarBatch.empty(0, _ALL_SPECS)
    _, snr_floor, _, prefix = _KIND_SETUP[kind]
    domain = DomainRandomisation.parse(realism)
    max_parallax = NEARBY_MAX_PARALLAX if domain.nearby else None
    if snr is not None and not callable(snr) and float(snr) < snr_floor:
        raise InputDataError(f"snr={snr} is below the {kind} sample's S/N floor of {snr_floor}; "
                             f"use snr >= {snr_floor}.")
    rng = np.random.default_rng(seed)
    parts, have, tries = [], 0, 0
    rate = 0.3 if kind in _LABELLED_KINDS else 0.75   # expected fraction passing the cuts
    while have < n:
        m = 64 + int(1.15 * (n - have) / rate)
        cols = _draw_stars(m, rng, kind, snr)
        if kind in _LABELLED_KINDS:
            labels, errors = apogee_labels(cols["true_labels"], rng)
            keep = _training_cuts(cols, labels, errors, snr_floor, max_parallax)
            cols["labels"], cols["label_errors"] = labels, errors
        else:
            keep = cols["rvs_snr"] >= snr_floor
        parts.append(_select(cols, keep))
        have += int(keep.sum())
        rate = max(0.02, 0.5 * rate + 0.5 * keep.mean())
        tries += 1
        if tries > 50:
            raise InputDataError(f"Could not draw {n} {kind} stars passing the cuts "
                                 "(check the snr option).")
    cols = {k: np.concatenate([p[k] for p in parts])[:n] for k in parts[0]}
    tl = cols["true_labels"]
    cols.update(xp_coefficients(tl[:, 0], tl[:, 2], cols["a_v"], cols["phot_bp_mean_mag"],
                                cols["phot_rp_mean_mag"], rng))
    cols["rv_shift"] = rng.normal(0.0, rv_sigma, n) if rv_sigma > 0 else np.zeros(n)
    dr_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    if domain.rv_snr:
        cols["rv_shift"] = dr_rng.normal(0.0, rv_sigma_per_star(cols["rvs_snr"], rv_sigma))
    cols["flux"], cols["flux_error"] = _noisy_spectra(cols["true_labels"], cols["rv_shift"],
                                                      cols["rvs_snr"], rng, domain, dr_rng)
    seed_tag = int(np.random.SeedSequence(seed).generate_state(1)[0]) % 10**6
    cols["source_id"] = prefix * 10**17 + seed_tag * 10**10 + id_offset + np.arange(n)
    names = {s.name for s in _ALL_SPECS}
    return StarBatch({k: v for k, v in cols.items() if k in names}, _ALL_SPECS)


def simulate_store(path, n: int, seed=0, kind: str = "observed", chunk_size: int = 4096,
                   overwrite: bool = False, snr: float | Callable | None = None,
                   rv_sigma: float = 0.5, progress: bool = True, realism=None) -> Path:
    """Simulate ``n`` stars into a new HDF5 store, chunk by chunk (with a progress bar).

    Parameters
    ----------
    path : path-like
        New store file, written under a temporary name and renamed when complete (see
        `~gaiarvs_cnn.io.store.atomic_store`): a killed run never leaves a partial store
        under ``path``.
    n, seed, kind, snr, rv_sigma, realism
        As for `simulate_batch`; chunk ``i`` uses the seed ``[seed, i]``.
    chunk_size : int
        Stars per chunk.
    overwrite : bool
        Replace an existing file (once the new one is complete).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    `pathlib.Path`
        The store path. ``store.meta`` records the kind, seed, n and simulator version.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    from ..version import __version__

    path = Path(path)
    meta = {"source": "simulated", "kind": kind, "seed": repr(seed), "n": int(n),
            "snr": repr(snr), "rv_sigma": float(rv_sigma),
            "realism": DomainRandomisation.parse(realism).spec,
            "simulator_version": __version__, "label_order": list(LABELS)}
    with atomic_store(path, extra_columns=SIM_EXTRA_COLUMNS, meta=meta, overwrite=overwrite,
                      expected_rows=int(n)) as store:
        bar = tqdm(total=int(n), unit="star", desc=f"simulate {kind}", disable=not progress)
        for i, lo in enumerate(range(0, int(n), int(chunk_size))):
            m = min(int(chunk_size), int(n) - lo)
            seq = [*(np.atleast_1d(seed).tolist()), i]
            store.append(simulate_batch(m, seed=seq, kind=kind, snr=snr, rv_sigma=rv_sigma,
                                        id_offset=lo, realism=realism))
            bar.update(m)
        bar.close()
    log.info(f"Simulated {n} {kind} stars into {path}")
    return path

