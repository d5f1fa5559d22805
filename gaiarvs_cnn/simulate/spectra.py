"""Forward model of normalised Gaia-RVS spectra for the simulated survey.

The model is a smooth, differentiable function of the five labels
(Teff [K], log g [dex cgs], [M/H], [alpha/M], [Fe/H] [dex]):

1. every absorber component ``l`` of the line list
   (``gaiarvs_cnn/data/rvs_linelist.ecsv``) has a peak line-to-continuum optical
   depth ``S_l`` with ``log10 S_l = log_tau0 + a [X/H] + b (theta - theta_sun)
   + c (log g - 4.44)`` (abundance, Saha-Boltzmann excitation/ionisation and pressure
   sensitivities, ``theta = 5040 / Teff``);
2. the optical depth on the RVS grid is ``tau = S @ Phi`` with fixed, pixel-averaged
   profiles ``Phi`` (Gaussian cores, Lorentzian damping/Stark wings, red-degraded
   molecular band heads);
3. the intrinsic flux is ``1 - D (1 - exp(-tau))`` (curve of growth: linear, then
   saturated cores, then damping wings, with a residual core flux ``1 - D``; the
   maximum depth ``D = D0 + D1 (4.44 - log g)`` is larger in low-density giant
   atmospheres, with D0, D1 in the line list's metadata);
4. the result is convolved with the Gaussian line-spread function of resolving power
   R = 11500 (FFT).

Because ``S`` is analytic in the labels, d(flux)/d(label) follows exactly by the chain
rule (`SpectrumModel.jacobian`).
"""
from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import scipy.fft
from astropy.table import Table

from ..constants import LABELS, RVS_NPIX, RVS_RESOLUTION, rvs_wavelength_nm

__all__ = ["SpectrumModel", "load_linelist", "THETA_SUN", "LOGG_SUN"]

#: 5040 / Teff of the Sun (Teff = 5777 K).
THETA_SUN = 5040.0 / 5777.0
#: Solar surface gravity, log10(g / cm s^-2).
LOGG_SUN = 4.44
_OVERSAMPLE = 10
_NFFT = 2560  # 2401 pixels + zero padding (2^9 x 5, fast FFT size)
_ABUNDANCE_KINDS = ("feh", "alpha", "mh", "none")


@functools.lru_cache(maxsize=1)
def load_linelist() -> Table:
    """Return the simulator's RVS line list (`~astropy.table.Table`, vacuum wavelengths in nm).

    See the header of ``gaiarvs_cnn/data/rvs_linelist.ecsv`` for the meaning of each column.
    """
    path = resources.files("gaiarvs_cnn.data") / "rvs_linelist.ecsv"
    with resources.as_file(path) as p:
        return Table.read(p, format="ascii.ecsv")


def _profiles(lines: Table, wavelength: np.ndarray) -> np.ndarray:
    """Pixel-averaged unit-peak profiles of every line component, shape (n_lines, n_pix)."""
    step = wavelength[1] - wavelength[0]
    sub = (np.arange(_OVERSAMPLE) + 0.5) / _OVERSAMPLE - 0.5
    fine = (wavelength[:, None] + sub[None, :] * step).ravel()
    out = np.empty((len(lines), wavelength.size))
    for i, row in enumerate(lines):
        dx = fine - float(row["wave_vac"])
        w = float(row["width"])
        if row["profile"] == "gauss":
            prof = np.exp(-0.5 * (dx / w) ** 2)
        elif row["profile"] == "lorentz":
            prof = w**2 / (dx**2 + w**2)
        elif row["profile"] == "band":
            prof = np.where(dx >= 0, np.exp(-np.clip(dx, 0, None) / w), 0.0)
        else:
            raise ValueError(f"Unknown profile {row['profile']!r} in the line list.")
        out[i] = prof.reshape(wavelength.size, _OVERSAMPLE).mean(axis=1)
    return out


def _lsf_transfer(resolution: float, step_nm: float) -> np.ndarray:
    """FFT of the unit-area Gaussian LSF (sigma = lambda / (2.3548 R)) at 858 nm."""
    sigma_pix = 858.0 / resolution / (2.0 * np.sqrt(2.0 * np.log(2.0))) / step_nm
    freq = scipy.fft.rfftfreq(_NFFT)
    return np.exp(-2.0 * (np.pi * freq * sigma_pix) ** 2)


class SpectrumModel:
    """Normalised RVS spectrum as an analytic function of the five labels.

    Parameters
    ----------
    resolution : float
        Resolving power of the Gaussian line-spread function (default RVS, 11500).
    lines : `~astropy.table.Table`, optional
        Line list; default `load_linelist`.

    Examples
    --------
    >>> import numpy as np
    >>> from gaiarvs_cnn.simulate.survey import SpectrumModel
    >>> model = SpectrumModel()
    >>> sun = np.array([[5777.0, 4.44, 0.0, 0.0, 0.0]])
    >>> model.flux(sun).shape
    (1, 2401)
    >>> model.jacobian(sun[0]).shape
    (2401, 5)
    """

    def __init__(self, resolution: float = RVS_RESOLUTION, lines: Table | None = None):
        self.lines = load_linelist() if lines is None else lines
        self.wavelength = rvs_wavelength_nm()
        self.resolution = float(resolution)
        self.phi = _profiles(self.lines, self.wavelength).astype(np.float32)
        self._transfer = _lsf_transfer(self.resolution, self.wavelength[1] - self.wavelength[0])
        self._log_tau0 = np.asarray(self.lines["log_tau0"], dtype=float)
        self._theta = np.asarray(self.lines["theta_coeff"], dtype=float)
        self._logg = np.asarray(self.lines["logg_coeff"], dtype=float)
        abund = np.asarray(self.lines["abundance"]).astype(str)
        coeff = np.asarray(self.lines["abundance_coeff"], dtype=float)
        # d log10 S / d (teff, logg, mh, alpham, feh) for the linear label terms
        self._abund_matrix = np.zeros((len(self.lines), len(LABELS)))
        self._abund_matrix[:, 2] = coeff * np.isin(abund, ("alpha", "mh"))
        self._abund_matrix[:, 3] = coeff * (abund == "alpha")
        self._abund_matrix[:, 4] = coeff * (abund == "feh")
        self.core_depth = float(self.lines.meta.get("core_depth", 0.64))
        self.core_depth_logg = float(self.lines.meta.get("core_depth_logg", 0.0))
        bad = set(abund) - set(_ABUNDANCE_KINDS)
        if bad:
            raise ValueError(f"Unknown abundance kind(s) {sorted(bad)} in the line list.")

    # -- strengths -------------------------------------------------------------------
    def log_strength(self, labels: np.ndarray) -> np.ndarray:
        """log10 of the peak optical depth of each line component, shape (N, n_lines).

        Parameters
        ----------
        labels : array, shape (N, 5)
            Teff [K], log g [dex], [M/H], [alpha/M], [Fe/H] [dex] (`~gaiarvs_cnn.constants.LABELS`).
        """
        lab = np.atleast_2d(np.asarray(labels, dtype=float))
        theta = 5040.0 / lab[:, :1] - THETA_SUN
        return (self._log_tau0[None, :] + theta * self._theta[None, :]
                + (lab[:, 1:2] - LOGG_SUN) * self._logg[None, :] + lab @ self._abund_matrix.T)

    def _dlogs_dlabels(self, labels: np.ndarray) -> np.ndarray:
        """d log10 S / d label, shape (N, n_lines, 5)."""
        lab = np.atleast_2d(np.asarray(labels, dtype=float))
        out = np.broadcast_to(self._abund_matrix, (len(lab), *self._abund_matrix.shape)).copy()
        out[:, :, 0] = -5040.0 / lab[:, :1] ** 2 * self._theta[None, :]
        out[:, :, 1] = self._logg[None, :]
        return out

    def max_depth(self, labels: np.ndarray) -> np.ndarray:
        """Maximum intrinsic line depth D per star (residual saturated-core flux 1 - D), (N, 1)."""
        logg = np.atleast_2d(np.asarray(labels, dtype=float))[:, 1:2]
        return self.core_depth + self.core_depth_logg * (LOGG_SUN - logg)

    def optical_depth(self, labels: np.ndarray) -> np.ndarray:
        """Line optical depth on the RVS grid before the LSF, shape (N, 2401)."""
        strength = (10.0 ** self.log_strength(labels)).astype(np.float32)
        return strength @ self.phi

    # -- spectra -----------------------------------------------------------------------
    def _convolve(self, depth: np.ndarray, shift_pix: np.ndarray | None = None,
                  resolution: np.ndarray | None = None) -> np.ndarray:
        """Convolve line depths (N, 2401) with the LSF, optionally shifting by pixels.

        ``resolution`` (N,) gives each star its own resolving power instead of the model's.
        """
        spec = scipy.fft.rfft(depth, n=_NFFT, axis=-1, workers=-1)
        if resolution is None:
            transfer = self._transfer[None, :]
        else:
            step = self.wavelength[1] - self.wavelength[0]
            transfer = np.stack([_lsf_transfer(r, step) for r in np.asarray(resolution, float)])
        if shift_pix is None:
            spec *= transfer.astype(spec.dtype)
        else:
            freq = scipy.fft.rfftfreq(_NFFT).astype(np.float32)
            phase = (-2.0 * np.pi * np.asarray(shift_pix, np.float32))[:, None] * freq[None, :]
            spec *= (np.cos(phase) + 1j * np.sin(phase)).astype(spec.dtype)
            spec *= transfer.astype(np.float32)
        return scipy.fft.irfft(spec, n=_NFFT, axis=-1, workers=-1)[:, :RVS_NPIX]

    def flux(self, labels: np.ndarray, rv_shift_kms: np.ndarray | None = None,
             resolution: np.ndarray | None = None) -> np.ndarray:
        """Noise-free normalised flux, shape (N, 2401), float32.

        Parameters
        ----------
        labels : array, shape (N, 5)
            Teff [K], log g [dex], [M/H], [alpha/M], [Fe/H] [dex].
        rv_shift_kms : array, shape (N,), optional
            Residual radial velocity [km/s] that shifts the lines (positive = redshift).
        resolution : array, shape (N,), optional
            Resolving power of each star's Gaussian LSF; default the model's ``resolution``.

        Returns
        -------
        array of float32, shape (N, 2401)
            Normalised flux on the Gaia DR3 RVS grid.
        """
        tau = self.optical_depth(labels)
        np.negative(tau, out=tau)
        np.expm1(tau, out=tau)
        tau *= -self.max_depth(labels).astype(np.float32)   # now the intrinsic line depth
        shift = None
        if rv_shift_kms is not None:
            step = self.wavelength[1] - self.wavelength[0]
            shift = np.asarray(rv_shift_kms, dtype=float) / 299792.458 * 858.0 / step
        out = self._convolve(tau, shift, resolution)
        np.subtract(np.float32(1.0), out, out=out)
        return out.astype(np.float32, copy=False)

    def jacobian(self, labels: np.ndarray) -> np.ndarray:
        """Exact d(flux)/d(label) of the noise-free model at one star, shape (2401, 5).

        Parameters
        ----------
        labels : array, shape (5,)
            Teff [K], log g [dex], [M/H], [alpha/M], [Fe/H] [dex].

        Returns
        -------
        array, shape (2401, 5)
            Derivatives of the normalised flux per unit of each label (per K for Teff,
            per dex otherwise), in `~gaiarvs_cnn.constants.LABELS` order.
        """
        lab = np.asarray(labels, dtype=float).reshape(1, len(LABELS))
        logs = self.log_strength(lab)[0]
        strength = 10.0**logs
        tau = strength @ self.phi.astype(float)
        dlogs = self._dlogs_dlabels(lab)[0]                 # (n_lines, 5)
        dtau = (np.log(10.0) * strength[:, None] * dlogs).T @ self.phi.astype(float)  # (5, npix)
        ddepth = self.max_depth(lab)[0, 0] * np.exp(-tau)[None, :] * dtau
        ddepth[1] -= self.core_depth_logg * -np.expm1(-tau)
        return -self._convolve(ddepth).T
