"""Domain randomisation: what real Gaia DR3 RVS spectra show and the ideal forward model does not.

The forward model (`gaiarvs_cnn.simulate.spectra`) gives perfectly normalised spectra with
white noise at the nominal resolving power. Real DR3 mean RVS spectra differ (issue 24;
measured on the ten real DR3 RVS spectra of the test data, six DataLink CSV and four
DataLink FITS files, against the forward model at the SWEET-Cat labels of the acceptance
set, ``tests/data/real_stars``, or a quick least-squares fit of labels, radial velocity
and a quadratic continuum; ``tests/simulate/test_domain.py`` checks the draws against them):

``continuum``
    The pseudo-continuum normalisation is off by a smooth factor ``1 + c0 + c1 x + c2 x**2``
    (``x = (lambda - 858 nm) / 12 nm``): c0 = +0.1 to +0.7 % at S/N 90-160, -2.4 % (Kepler-1,
    S/N 21), +3.1 % (Kepler-7, S/N 18) and +3.6 % (DR3 863983115982280448, S/N 21);
    |c1| <= 0.8 %, |c2| <= 1.5 %. The simulator draws ``c0 ~ N(0, hypot(0.004, 0.6 / snr))``,
    ``c1 ~ N(0, hypot(0.001, 0.08 / snr))``, ``c2 ~ N(0, hypot(0.003, 0.2 / snr))`` and
    multiplies flux and flux_error by the factor.
``error_templates``
    The flux_error vector is not ``sqrt(flux) / snr``: its shape along the spectrum
    (relative to ``sqrt(flux)``) varies by 10-35 % r.m.s. with structure of its own. Each
    star takes the shape of one of the real spectra (`noise_templates`).
``correlated_noise``
    The noise of neighbouring pixels is correlated (the mean spectra are resampled from
    ~0.025 nm detector pixels to 0.01 nm): residual autocorrelation 0.78-0.88 at lag 1 and
    0.42-0.63 at lag 2 in the four spectra at S/N 18-31, where noise dominates (a Gaussian
    kernel of sigma 1.1 px gives 0.81 and 0.44). Each star's white noise is convolved with a
    Gaussian of sigma drawn uniformly in 0-1.3 px (per-pixel variance unchanged), so the
    training sample brackets white and real noise.
``nan_templates``
    NaN pixels follow the real patterns: trailing runs of 3-18 (one of 112) pixels, leading
    runs of 6 and 83 pixels, interior pixels (`noise_templates`), instead of symmetric
    1-11-pixel runs at both ends.
``rv_snr``
    Residual radial velocities grow at low S/N: 0.0-0.9 km/s at S/N >= 90, 2.7 and 6.4 km/s
    at S/N 31 and 21. Drawn as ``N(0, hypot(rv_sigma, 80 / snr))`` km/s.
``lsf_spread``
    The effective resolving power at the SWEET-Cat labels is 10 500 (Kepler-93) and 11 000
    (Kepler-409) rather than the nominal 11 500; each star gets R ~ U(10 000, 12 500).
``nearby``
    Three of the four real RVS stars with independent labels are nearby dwarfs (parallax
    4.6-14.7 mas, G = 9.4-11.3) while the paper's training cuts stop at 7 mas (Table 1):
    12 % of the simulated dwarfs lie beyond it, and the photometry branch never saw them.
    With this ingredient the training cut on parallax extends to `NEARBY_MAX_PARALLAX`.

`DomainRandomisation.parse` turns ``'dr3'`` (all of them), ``'none'``, a comma-separated
list of ingredient names, or ``'dr3,-continuum'`` (all but one) into the option set.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np
import scipy.fft
from astropy.table import Table

from ..constants import RVS_NPIX
from ..exceptions import InputDataError

__all__ = ["DomainRandomisation", "INGREDIENTS", "NEARBY_MAX_PARALLAX", "noise_templates",
           "continuum_factor", "correlated_normal", "rv_sigma_per_star",
           "resolution_per_star", "template_index", "build_noise_templates"]

#: Names of the ingredients, in the order they act.
INGREDIENTS = ("continuum", "error_templates", "correlated_noise", "nan_templates", "rv_snr",
               "lsf_spread", "nearby")
#: Upper parallax limit [mas] of the training cuts with the ``nearby`` ingredient.
NEARBY_MAX_PARALLAX = 40.0
#: Continuum polynomial: (floor, coefficient / snr) of the standard deviation of c0, c1, c2.
CONTINUUM_SIGMA = ((0.004, 0.6), (0.001, 0.08), (0.003, 0.2))
#: Range of the Gaussian noise-correlation kernel sigma [pixels].
NOISE_CORRELATION_PX = (0.0, 1.3)
#: Residual radial-velocity scatter coefficient [km/s at S/N 1].
RV_SNR_COEFF = 80.0
#: Range of the per-star resolving power.
RESOLUTION_RANGE = (10000.0, 12500.0)
_NFFT = 2560
_TEMPLATE_FILE = "rvs_dr3_noise_templates.ecsv"


@dataclass(frozen=True)
class DomainRandomisation:
    """Which ingredients of real DR3 spectra the simulator adds (see the module docs)."""

    continuum: bool = False
    error_templates: bool = False
    correlated_noise: bool = False
    nan_templates: bool = False
    rv_snr: bool = False
    lsf_spread: bool = False
    nearby: bool = False

    @classmethod
    def parse(cls, spec) -> DomainRandomisation:
        """Option set from ``'dr3'``, ``'none'``, ``'continuum,nearby'``, ``'dr3,-nearby'``.

        A `DomainRandomisation` is returned unchanged; None means ``'none'``.

        Raises
        ------
        InputDataError
            For an unknown ingredient name.
        """
        if isinstance(spec, cls):
            return spec
        text = "none" if spec is None else str(spec).strip().lower()
        on: set[str] = set()
        for part in (p.strip() for p in text.split(",") if p.strip()):
            name = part.lstrip("-+").replace("-", "_")
            if name == "dr3":
                on |= set(INGREDIENTS)
            elif name == "none":
                on.clear()
            elif name in INGREDIENTS:
                (on.discard if part.startswith("-") else on.add)(name)
            else:
                raise InputDataError(
                    f"Unknown domain-randomisation ingredient {part!r} in {spec!r}; use 'dr3', "
                    f"'none' or a comma-separated list of {', '.join(INGREDIENTS)} "
                    "(a leading '-' removes one, e.g. 'dr3,-nearby').")
        return cls(**{k: k in on for k in INGREDIENTS})

    @property
    def spec(self) -> str:
        """Canonical text form: ``'dr3'``, ``'none'`` or the comma-separated ingredients."""
        on = [k for k in INGREDIENTS if getattr(self, k)]
        if len(on) == len(INGREDIENTS):
            return "dr3"
        return ",".join(on) if on else "none"

    @property
    def any(self) -> bool:
        """True if any ingredient is on."""
        return any(dataclasses.astuple(self))


@functools.lru_cache(maxsize=1)
def noise_templates() -> Table:
    """The real DR3 error-vector shapes and NaN patterns shipped with the package.

    Columns ``source_id``, ``file``, ``rvs_snr``, ``error_shape`` (2401 values, median 1:
    flux_error / sqrt(flux) of the real spectrum, NaN pixels set to 1) and ``nan_mask``
    (2401 booleans). Built by `build_noise_templates` from the ten real spectra of the
    test data (provenance in the file's header).
    """
    path = resources.files("gaiarvs_cnn.data") / _TEMPLATE_FILE
    with resources.as_file(path) as p:
        t = Table.read(p, format="ascii.ecsv")
    t["error_shape"] = np.asarray(t["error_shape"], dtype=np.float32)
    t["nan_mask"] = np.asarray(t["nan_mask"], dtype=bool)
    return t


def build_noise_templates(spectra) -> Table:
    """Template table from real spectra ``[(source_id, file_name, flux, flux_error), ...]``.

    ``error_shape`` is ``flux_error / sqrt(max(f, 0.05))`` with ``f`` the flux smoothed by a
    5-pixel running median, divided by its median and rounded to 3 decimals; NaN pixels of
    the real flux form ``nan_mask`` (their shape value is 1).
    """
    from scipy.ndimage import median_filter

    rows = []
    for sid, name, flux, err in spectra:
        flux = np.asarray(flux, float)
        err = np.asarray(err, float)
        bad = ~(np.isfinite(flux) & np.isfinite(err) & (err > 0))
        smooth = median_filter(np.where(bad, np.nanmedian(flux), flux), size=5, mode="nearest")
        shape = np.where(bad, np.nan, err / np.sqrt(np.maximum(smooth, 0.05)))
        shape = shape / np.nanmedian(shape)
        snr = float(np.nanmedian(flux / err))
        rows.append((int(sid), name, round(snr, 1),
                     np.round(np.where(bad, 1.0, shape), 3), bad))
    return Table(rows=rows, names=("source_id", "file", "rvs_snr", "error_shape", "nan_mask"))


def template_index(n: int, rng: np.random.Generator) -> np.ndarray:
    """Index of the real template each of ``n`` stars takes (uniform)."""
    return rng.integers(0, len(noise_templates()), n)


def continuum_factor(snr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative continuum-normalisation error per star, shape (N, 2401), float32."""
    from ..constants import rvs_wavelength_nm

    snr = np.asarray(snr, float)
    x = ((rvs_wavelength_nm() - 858.0) / 12.0).astype(np.float32)
    coef = [rng.normal(0.0, np.hypot(floor, k / snr)) for floor, k in CONTINUUM_SIGMA]
    out = 1.0 + coef[0][:, None] + coef[1][:, None] * x + coef[2][:, None] * x * x
    return out.astype(np.float32)


def correlated_normal(n: int, rng: np.random.Generator, sigma_px: np.ndarray) -> np.ndarray:
    """Unit-variance Gaussian noise (n, 2401) correlated by a Gaussian kernel of ``sigma_px``."""
    white = rng.standard_normal((n, _NFFT), dtype=np.float32)
    freq = scipy.fft.rfftfreq(_NFFT).astype(np.float32)
    transfer = np.exp(-2.0 * (np.pi * freq[None, :] * np.asarray(sigma_px, np.float32)[:, None])
                      ** 2)
    # variance of the filtered unit white noise (Parseval over the full spectrum)
    power = transfer**2
    var = (power[:, 0] + 2.0 * power[:, 1:-1].sum(axis=1) + power[:, -1]) / _NFFT
    spec = scipy.fft.rfft(white, axis=-1, workers=-1) * transfer
    out = scipy.fft.irfft(spec, n=_NFFT, axis=-1, workers=-1)[:, :RVS_NPIX]
    out /= np.sqrt(var)[:, None]
    return out.astype(np.float32, copy=False)


def rv_sigma_per_star(snr: np.ndarray, rv_sigma: float) -> np.ndarray:
    """Residual radial-velocity scatter [km/s] per star: hypot(rv_sigma, 80 / snr)."""
    return np.hypot(float(rv_sigma), RV_SNR_COEFF / np.asarray(snr, float))


def resolution_per_star(n: int, rng: np.random.Generator) -> np.ndarray:
    """Resolving power per star, uniform in `RESOLUTION_RANGE`."""
    return rng.uniform(*RESOLUTION_RANGE, n)
