"""Simulated Gaia DR3 XP continuous spectra in the real DR3 basis (via GaiaXPy).

Forward model of one band (BP or RP), everything except the SED taken from the files that
GaiaXPy ships in ``gaiaxpy/config`` (read through GaiaXPy's own parsers, offline):

1. the photon SED of the star, ``N(lambda)`` [photons s^-1 m^-2 nm^-1, arbitrary scale], is
   sampled on a pseudo-wavelength grid ``u`` = 0 ... 60 (``XP_PWL``) mapped to wavelength
   with the DR3 dispersion function (``TabulatedDispersionFunction-DR3-v375wiv142r``,
   `gaiaxpy.core.dispersion_function.pwl_to_wl`);
2. the internal (instrument) spectrum is ``s(u) = N(lambda(u)) A R(lambda(u)) |dlambda/du|``
   with the telescope pupil area ``A`` = 0.7278 m^2 and the mean instrument response
   ``R(lambda)`` of DR3's external calibration (``bpC03_v375wi_response.csv``,
   ``rpC03_v142r_response.csv``), smoothed by a Gaussian line-spread function of
   ``XP_LSF_SIGMA_PWL`` pseudo-wavelength units;
3. the coefficients are the least-squares projection of ``s(u)`` on the DR3 internal basis
   (55 Hermite-based functions per band with their transformation matrix and
   pseudo-wavelength range, ``OptimisedCalibratedBases_BpId32_RpId37_withNormalisation.xml``,
   sampled by `gaiaxpy.converter.converter.get_design_matrices`);
4. each band is scaled so that ``sum(s) du`` (the band's photon rate, e-/s) equals the
   star's BP or RP flux from its magnitude and the DR3 zero points (Riello et al. 2021,
   ``XP_ZERO_POINTS``); the ratios ``c_k / c_0`` come from the SED alone.

How the LSF widths were set (not invented): the real DR3 XP_SAMPLED spectrum of
Gaia DR3 5937083312263887616 (the astroquery DataLink bundle in ``tests/data/gaia_real``),
pushed through steps 1-3, reproduces that star's own XP_CONTINUOUS coefficients best
(rms of ``c_k/c_0 - c_k/c_0 (real)`` 0.008 BP, 0.006 RP, against 0.020 and 0.009 without an
LSF) for sigma = 1.25 (BP) and 2.0 (RP) pseudo-wavelength units; the absolute scale of that
round trip agrees with the real ``c_0`` to 9 % (BP) and 4 % (RP).

Noise model (`xp_noise_model`, fitted to the three real DR3 XP_CONTINUOUS rows shipped in
``gaiarvs_cnn/data/xp_dr3_reference.ecsv``): the squared coefficient errors are a photon
(Poisson) term ``g v_k``, with ``v_k = sum_u s(u) phi_k(u)^2 du`` of the star's own internal
spectrum (`photon_variance`) and one gain ``g`` per band, times a log-normal transit-number
scatter (sigma 0.25, as the RVS S/N), plus a calibration floor ``(q_k c_0)^2``; ``g`` and
``q`` are fitted to the rows (RVS-bright stars, G ~ 8-14, where DR3 XP errors are mostly
proportional to the flux: the fit gives g = 0 for BP, and errors within 0.7-1.15 of the
real ones for the three stars). The photon part of the noise is correlated with the mean
correlation matrix of the fainter rows, the floor part with the mean of all rows, so the
correlations change with G as the mix of the two terms does.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..exceptions import InputDataError

__all__ = ["XP_BANDS", "XP_PWL", "XP_LSF_SIGMA_PWL", "XP_ZERO_POINTS", "XpBand", "xp_band",
           "xp_noise_model", "XpNoiseModel", "project_sed", "xp_coefficients",
           "read_reference_rows", "band_photon_rate", "unpack_correlations", "photon_variance",
           "sampled_spectrum", "xp_colour"]

XP_BANDS = ("bp", "rp")
#: Pseudo-wavelength samples of the internal spectrum (GaiaXPy's default convert grid, x10).
XP_PWL = np.linspace(0.0, 60.0, 601)
#: Gaussian LSF sigma [pseudo-wavelength units] per band (fitted, see the module docs).
XP_LSF_SIGMA_PWL = {"bp": 1.25, "rp": 2.0}
#: DR3 photometric zero points [mag] (Vega system, Riello et al. 2021): m = -2.5 log10(F) + ZP.
XP_ZERO_POINTS = {"bp": 25.3385, "rp": 24.7479}
#: Telescope pupil area [m^2] (GaiaXPy ``core.satellite.TELESCOPE_PUPIL_AREA``).
_PUPIL_AREA_M2 = 0.7278
_RESPONSE_FILES = {"bp": "bpC03_v375wi_response.csv", "rp": "rpC03_v142r_response.csv"}
_TRANSIT_SCATTER = 0.25
_REFERENCE_FILE = "xp_dr3_reference.ecsv"
_NEEDS_GAIAXPY = ("Simulated XP spectra need GaiaXPy (the DR3 XP bases and instrument "
                  "model): pip install 'gaiaxpy>=2.1'.")


def _import_gaiaxpy():
    """Import the ``gaiaxpy`` package, undoing its global matplotlib side effect.

    ``gaiaxpy/plotter/plotter.py`` (imported by the package) sets
    ``matplotlib.rcParams['text.usetex'] = True``, which breaks every later figure on a
    machine without LaTeX; the previous value is restored.
    """
    import matplotlib

    usetex = matplotlib.rcParams["text.usetex"]
    try:
        import gaiaxpy
    except ImportError as exc:  # pragma: no cover - gaiaxpy is a required dependency
        raise ModuleNotFoundError(_NEEDS_GAIAXPY) from exc
    finally:
        matplotlib.rcParams["text.usetex"] = usetex
    return gaiaxpy


def _gaiaxpy():
    """Import the GaiaXPy pieces used here, with a clear error if it is missing.

    GaiaXPy has no public API for its design matrices, dispersion function and
    configuration parsers (its public functions calibrate / convert whole tables), so these
    are its internal modules; this is the one place that imports them, and
    ``pyproject.toml`` bounds GaiaXPy to the minor version checked (``<2.2``).
    """
    _import_gaiaxpy()
    try:
        from gaiaxpy.config.paths import config_path, hermite_bases_file
        from gaiaxpy.converter.config import parse_config
        from gaiaxpy.converter.converter import get_design_matrices
        from gaiaxpy.core.dispersion_function import pwl_to_wl
    except ImportError as exc:  # pragma: no cover - gaiaxpy is a required dependency
        raise ModuleNotFoundError(_NEEDS_GAIAXPY) from exc
    return config_path, hermite_bases_file, parse_config, get_design_matrices, pwl_to_wl


@dataclass(frozen=True)
class XpBand:
    """The DR3 instrument model of one XP band on `XP_PWL`.

    Attributes
    ----------
    band : str
        ``'bp'`` or ``'rp'``.
    wavelength : ndarray
        Wavelength [nm] of each pseudo-wavelength sample.
    design : ndarray, shape (55, n_pwl)
        The DR3 internal basis functions sampled on `XP_PWL` (GaiaXPy design matrix).
    photon_weight : ndarray
        ``A R(lambda) |dlambda/du|`` [m^2 nm per pseudo-wavelength unit]: photon SED to
        internal spectrum.
    projector : ndarray, shape (55, n_pwl)
        LSF smoothing followed by the least-squares projection on ``design``.
    """

    band: str
    wavelength: np.ndarray
    design: np.ndarray
    photon_weight: np.ndarray
    projector: np.ndarray


def _gaussian_smoothing(n: int, sigma_samples: float) -> np.ndarray:
    """(n, n) matrix of a Gaussian smoothing with zero outside the grid (flux conserving)."""
    idx = np.arange(n)
    kern = np.exp(-0.5 * ((idx[:, None] - idx[None, :]) / sigma_samples) ** 2)
    return kern / (np.sqrt(2 * np.pi) * sigma_samples)


@functools.lru_cache(maxsize=2)
def xp_band(band: str) -> XpBand:
    """The DR3 instrument model of ``band`` ('bp' or 'rp') from the files GaiaXPy ships.

    Parameters
    ----------
    band : {'bp', 'rp'}

    Returns
    -------
    XpBand
    """
    if band not in XP_BANDS:
        raise ValueError(f"Unknown XP band {band!r}; use 'bp' or 'rp'.")
    config_path, hermite_file, parse_config, get_design_matrices, pwl_to_wl = _gaiaxpy()
    from pathlib import Path

    design = get_design_matrices(XP_PWL, parse_config(hermite_file))[band].get_design_matrix()
    design = np.asarray(design, dtype=float)
    wl = np.clip(np.asarray(pwl_to_wl(band, XP_PWL), dtype=float), 200.0, 1300.0)
    resp = np.genfromtxt(Path(config_path) / _RESPONSE_FILES[band], delimiter=",")
    response = np.interp(wl, resp[0], resp[1], left=0.0, right=0.0)
    dwl = np.abs(np.gradient(wl, XP_PWL))
    weight = _PUPIL_AREA_M2 * response * dwl
    step = XP_PWL[1] - XP_PWL[0]
    smooth = _gaussian_smoothing(XP_PWL.size, XP_LSF_SIGMA_PWL[band] / step) * 1.0
    projector = np.linalg.pinv(design.T) @ smooth
    return XpBand(band, wl, design, weight, projector)


def band_photon_rate(coefficients: np.ndarray, band: str) -> np.ndarray:
    """Photon rate [e-/s] of XP coefficients: the internal spectrum summed over `XP_PWL`."""
    b = xp_band(band)
    return np.asarray(coefficients, dtype=float) @ b.design.sum(axis=1) * (XP_PWL[1] - XP_PWL[0])


def project_sed(photon_sed, band: str) -> np.ndarray:
    """Project photon SEDs sampled at ``xp_band(band).wavelength`` on the DR3 basis.

    Parameters
    ----------
    photon_sed : array, shape (N, n_pwl) or (n_pwl,)
        Photon flux density [photons s^-1 m^-2 nm^-1] at the band's sample wavelengths.
    band : {'bp', 'rp'}

    Returns
    -------
    ndarray, shape (N, 55) or (55,)
        Coefficients [e-/s] of the internal spectrum in the DR3 basis.
    """
    b = xp_band(band)
    sed = np.asarray(photon_sed, dtype=float)
    return (sed * b.photon_weight) @ b.projector.T


def unpack_correlations(lower: np.ndarray, n: int = 55) -> np.ndarray:
    """Full (n, n) correlation matrix from DR3's packed ``*_coefficient_correlations``.

    DR3 stores the n(n-1)/2 off-diagonal elements of the lower triangle row by row,
    (1, 0), (2, 0), (2, 1), (3, 0), ... (the layout that
    `gaiaxpy.core.generic_functions.array_to_symmetric_matrix` reads).
    """
    lower = np.asarray(lower, dtype=float)
    if lower.size != n * (n - 1) // 2:
        raise ValueError(f"A packed {n}x{n} correlation matrix has {n * (n - 1) // 2} values, "
                         f"got {lower.size}.")
    out = np.eye(n)
    rows, cols = np.tril_indices(n, -1)
    out[rows, cols] = lower
    out[cols, rows] = lower
    return out


def read_reference_rows(path=None):
    """The real DR3 XP_CONTINUOUS rows shipped with the package (an astropy Table).

    Parameters
    ----------
    path : path-like, optional
        Another ECSV/FITS/VOTable file with the DR3 XP_CONTINUOUS columns.
    """
    from astropy.table import Table

    if path is None:
        path = resources.files("gaiarvs_cnn.data") / _REFERENCE_FILE
    return Table.read(str(path), format="ascii.ecsv" if str(path).endswith(".ecsv") else None)


def photon_variance(coefficients: np.ndarray, band: str) -> np.ndarray:
    """``v_k = sum_u s(u) phi_k(u)^2 du`` (N, 55): Poisson variance of each coefficient per unit
    gain, for the internal spectrum ``s = c @ design`` (negative values clipped)."""
    b = xp_band(band)
    du = XP_PWL[1] - XP_PWL[0]
    internal = np.clip(np.atleast_2d(coefficients) @ b.design, 0.0, None)
    return internal @ (b.design**2).T * du


@dataclass(frozen=True)
class XpNoiseModel:
    """Coefficient noise of one band (see the module documentation).

    Attributes
    ----------
    band : str
    gain : float
        ``e_k^2 / v_k`` of the faint real rows (`photon_variance`), dimensionless.
    floor_profile : ndarray, shape (55,)
        ``q_k``: calibration floor of the errors in units of ``c_0``.
    photon_chol, floor_chol : ndarray, shape (55, 55)
        Cholesky factors of the faint-row and bright-row correlation matrices.
    """

    band: str
    gain: float
    floor_profile: np.ndarray
    photon_chol: np.ndarray
    floor_chol: np.ndarray

    def _terms(self, coefficients):
        c = np.atleast_2d(np.asarray(coefficients, dtype=float))
        photon = np.sqrt(self.gain * photon_variance(c, self.band))
        return photon, self.floor_profile * np.abs(c[:, :1])

    def errors(self, coefficients: np.ndarray) -> np.ndarray:
        """Coefficient errors (N, 55) [e-/s] of noise-free coefficients (N, 55)."""
        photon, floor = self._terms(coefficients)
        return np.sqrt(photon**2 + floor**2)

    def draw(self, coefficients: np.ndarray, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
        """Correlated noise and the errors (each (N, 55)) of noise-free coefficients."""
        photon, floor = self._terms(coefficients)
        photon = photon * rng.lognormal(0.0, _TRANSIT_SCATTER, (len(photon), 1))
        z1 = rng.standard_normal(photon.shape) @ self.photon_chol.T
        z2 = rng.standard_normal(floor.shape) @ self.floor_chol.T
        return photon * z1 + floor * z2, np.sqrt(photon**2 + floor**2)


def _chol(corr: np.ndarray) -> np.ndarray:
    """Cholesky factor of a correlation matrix (eigenvalues floored at 1e-6)."""
    w, v = np.linalg.eigh(corr)
    fixed = (v * np.clip(w, 1e-6, None)) @ v.T
    d = np.sqrt(np.diag(fixed))
    return np.linalg.cholesky(fixed / np.outer(d, d))


@functools.lru_cache(maxsize=4)
def xp_noise_model(band: str, path=None, n_fit: int = 10) -> XpNoiseModel:
    """Noise model of ``band`` fitted to real DR3 XP_CONTINUOUS rows.

    The photon gain ``g`` and the floor ``q`` (``q_k = q p_k``, with ``p_k`` the median
    profile of ``e_k / c_0`` over the rows, normalised to 1 over the first ``n_fit``
    coefficients) are the non-negative least-squares fit of ``e^2 = g v + (q c_0)^2`` to the
    rows' mean squared errors of their first ``n_fit`` coefficients (relative residuals).

    Parameters
    ----------
    band : {'bp', 'rp'}
    path : path-like, optional
        Rows to derive it from (default: the shipped `read_reference_rows`).
    n_fit : int
        Number of leading (well-measured) coefficients used in the fit.

    Returns
    -------
    XpNoiseModel
    """
    from scipy.optimize import nnls

    rows = read_reference_rows(path)
    coeff = np.asarray([r[f"{band}_coefficients"] for r in rows], dtype=float)
    err = np.asarray([r[f"{band}_coefficient_errors"] for r in rows], dtype=float)
    corr = np.asarray([unpack_correlations(r[f"{band}_coefficient_correlations"])
                       for r in rows])
    if len(rows) < 2:
        raise InputDataError(f"The XP noise model needs at least two real {band.upper()} rows.")
    c0 = np.abs(coeff[:, :1])
    profile = np.median(err / c0, axis=0)
    profile /= np.sqrt(np.mean(profile[:n_fit] ** 2))
    var = photon_variance(coeff, band)
    mean_e2 = np.mean(err[:, :n_fit] ** 2, axis=1)
    design = np.stack([var[:, :n_fit].mean(axis=1), c0[:, 0] ** 2], axis=1) / mean_e2[:, None]
    (gain, q2), _ = nnls(design, np.ones(len(rows)))
    faint = c0[:, 0] < np.median(c0[:, 0]) if len(rows) > 2 else np.ones(len(rows), bool)
    return XpNoiseModel(band, float(gain), np.sqrt(q2) * profile,
                        _chol(corr[faint].mean(axis=0)), _chol(corr.mean(axis=0)))


def xp_coefficients(photon_sed: dict, mags: dict, rng: np.random.Generator | None
                    ) -> dict[str, np.ndarray]:
    """Noisy DR3-basis XP coefficients and errors from photon SEDs and BP/RP magnitudes.

    Parameters
    ----------
    photon_sed : dict
        ``{'bp': (N, n_pwl), 'rp': (N, n_pwl)}`` photon SEDs at each band's sample
        wavelengths (`XpBand.wavelength`), any scale.
    mags : dict
        ``{'bp': (N,), 'rp': (N,)}`` BP and RP magnitudes [mag] that set each band's flux.
    rng : `numpy.random.Generator` or None
        Noise generator; None returns the noise-free coefficients (errors still given).

    Returns
    -------
    dict
        ``bp_coefficients``, ``bp_coefficient_errors``, ``rp_coefficients``,
        ``rp_coefficient_errors`` [e-/s], each (N, 55).
    """
    out = {}
    for band in XP_BANDS:
        coeff = project_sed(photon_sed[band], band)
        target = 10 ** (-0.4 * (np.asarray(mags[band], dtype=float) - XP_ZERO_POINTS[band]))
        coeff *= (target / band_photon_rate(coeff, band))[:, None]
        noise_model = xp_noise_model(band)
        if rng is None:
            noise, err = 0.0, noise_model.errors(coeff)
        else:
            noise, err = noise_model.draw(coeff, rng)
        out[f"{band}_coefficients"] = coeff + noise
        out[f"{band}_coefficient_errors"] = err
    return out


def sampled_spectrum(bp_coefficients, rp_coefficients, sampling=None, *, source_ids=None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Absolute sampled spectra of XP coefficients with GaiaXPy's ``calibrate``.

    Parameters
    ----------
    bp_coefficients, rp_coefficients : array, shape (N, 55) or (55,)
        DR3-basis coefficients [e-/s] (real or simulated).
    sampling : array, optional
        Wavelengths [nm] (default 336-1020 nm in 2 nm steps, the XP_SAMPLED grid).
    source_ids : sequence of int, optional
        Identifiers passed to GaiaXPy (default 0 ... N-1).

    Returns
    -------
    wavelength : ndarray
        ``sampling`` [nm].
    flux : ndarray, shape (N, n_sampling) or (n_sampling,)
        Flux [W m^-2 nm^-1] (GaiaXPy's calibrated spectra; correlations not used).
    """
    import contextlib
    import io

    import pandas as pd

    calibrate = _import_gaiaxpy().calibrate

    bp = np.atleast_2d(np.asarray(bp_coefficients, dtype=float))
    rp = np.atleast_2d(np.asarray(rp_coefficients, dtype=float))
    sampling = np.arange(336.0, 1021.0, 2.0) if sampling is None else np.asarray(sampling)
    ids = list(range(len(bp))) if source_ids is None else [int(s) for s in source_ids]
    zeros = np.zeros(55 * 54 // 2)
    rows = {"source_id": ids}
    for band, c in (("bp", bp), ("rp", rp)):
        rows.update({f"{band}_coefficients": list(c),
                     f"{band}_coefficient_errors": [np.ones(c.shape[1])] * len(c),
                     f"{band}_coefficient_correlations": [zeros] * len(c),
                     f"{band}_n_parameters": [c.shape[1]] * len(c),
                     f"{band}_standard_deviation": [1.0] * len(c),
                     f"{band}_n_relevant_bases": [c.shape[1]] * len(c),
                     f"{band}_basis_function_id": [56 if band == "bp" else 57] * len(c)})
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        df, wl = calibrate(pd.DataFrame(rows), sampling=sampling, save_file=False)
    flux = np.stack([np.asarray(f, dtype=float) for f in df["flux"]])
    return np.asarray(wl, dtype=float), flux[0] if np.ndim(bp_coefficients) == 1 else flux


def xp_colour(bp_coefficients, rp_coefficients) -> np.ndarray:
    """BP - RP [mag] of XP coefficients (band photon rates and the DR3 zero points)."""
    rate_bp = band_photon_rate(bp_coefficients, "bp")
    rate_rp = band_photon_rate(rp_coefficients, "rp")
    return (-2.5 * np.log10(rate_bp / rate_rp) + XP_ZERO_POINTS["bp"] - XP_ZERO_POINTS["rp"])
