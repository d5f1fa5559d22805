"""Fixed facts of the Gaia-RVS data and of the method (paper Sects. 2-3).

Everything here is a physical or survey constant, not a setting: settings live in
`gaiarvs_cnn.conf`.
"""
from __future__ import annotations

import astropy.units as u
import numpy as np

#: Gaia DR3 RVS mean-spectrum grid: 2401 pixels, 846-870 nm, 0.01 nm per pixel (vacuum).
RVS_NPIX = 2401
RVS_WAVE_START = 846.0 * u.nm
RVS_WAVE_STEP = 0.01 * u.nm
RVS_WAVELENGTH = (846.0 + 0.01 * np.arange(RVS_NPIX)) * u.nm
#: Resolving power of RVS (Katz et al. 2023).
RVS_RESOLUTION = 11500.0

#: Continuum windows (nm) used to replace NaN pixels by their upper quartile (paper Sect. 2.1).
CONTINUUM_WINDOWS_NM = ((847.5, 849.5), (856.1, 858.2), (862.7, 864.8))

#: Number of BP and of RP continuous (XP) coefficients.
XP_NCOEFF = 55

#: The five output labels, in the network's output order (paper Sect. 3.1).
LABELS = ("teff", "logg", "mh", "alpham", "feh")
LABEL_UNITS = {
    "teff": u.K,
    "logg": u.dex(u.cm / u.s**2),
    "mh": u.dex,
    "alpham": u.dex,
    "feh": u.dex,
}
LABEL_LATEX = {
    "teff": r"$T_\mathrm{eff}$",
    "logg": r"$\log g$",
    "mh": r"[M/H]",
    "alpham": r"[$\alpha$/M]",
    "feh": r"[Fe/H]",
}
#: Names of the three input branches of the network (RVS spectrum, G/BP/RP + parallax, XP
#: coefficients), in the order the network concatenates them.
INPUT_NAMES = ("rvs", "phot", "xp")
#: Arithmetic of the network at prediction. ``float32`` (default) is the members' own;
#: ``bfloat16`` (opt-in) runs convolutions and matrix products on bfloat16 inputs and
#: weights (8-bit mantissa; oneDNN accumulates in float32), about twice as fast on CPUs
#: with AVX512_BF16 or AMX (`gaiarvs_cnn.model.predict.FusedEnsemble`). Its effect on the
#: labels is measured in ``benchmarks/bench_model.py`` (``results/model.json``,
#: ``bfloat16_labels``).
PRECISIONS = ("float32", "bfloat16")

#: Photometric/astrometric inputs of the second network branch, in order.
PHOT_INPUTS = ("phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag", "parallax")

#: Effective range of the paper's training sample (Table 1).
PAPER_TRAINING_RANGES = {
    "teff": (3705.0, 6395.0),
    "logg": (0.58, 4.70),
    "mh": (-2.29, 0.55),
    "alpham": (-0.18, 0.46),
    "feh": (-2.20, 0.54),
    "phot_g_mean_mag": (9.01, 14.21),
    "parallax": (0.05, 7.00),
}

#: Training-sample dispersion CNN - APOGEE reported by the paper (Sect. 3.3).
PAPER_TRAINING_SIGMA = {"teff": 59.0, "logg": 0.11, "mh": 0.07, "alpham": 0.04, "feh": 0.07}


def rvs_wavelength_nm() -> np.ndarray:
    """Return the RVS wavelength grid in nm as a float64 array of 2401 values.

    Returns
    -------
    ndarray of float64, shape (2401,)
        Vacuum wavelengths 846.00, 846.01, ..., 870.00 nm.

    Examples
    --------
    >>> from gaiarvs_cnn.constants import rvs_wavelength_nm
    >>> wl = rvs_wavelength_nm()
    >>> wl.size, float(wl[0]), float(wl[-1])
    (2401, 846.0, 870.0)
    """
    return RVS_WAVELENGTH.to_value(u.nm)
