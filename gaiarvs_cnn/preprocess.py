"""Preprocessing of the network inputs (paper Sects. 2.1 and 3.1).

* NaN pixels of an RVS spectrum are replaced by the upper quartile (Q3) of the
  continuum flux in the three windows 847.5-849.5, 856.1-858.2 and 862.7-864.8 nm.
* Labels, G/BP/RP and parallax are min-max scaled to [0, 1].
* XP coefficients are divided by the first coefficient of their band (BP or RP), then
  min-max scaled.

* An RVS spectrum must lie on the RVS grid (`check_rvs_grid`) and be a plausible
  normalised spectrum (`check_rvs_flux`, `usable_rvs_flux`).

Scalers serialise to JSON and invert exactly; uncertainties are scaled by the range
only (no offset), so an error in physical units maps to an error in scaled units.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .constants import (
    CONTINUUM_WINDOWS_NM,
    INPUT_NAMES,
    LABELS,
    PHOT_INPUTS,
    RVS_NPIX,
    XP_NCOEFF,
    rvs_wavelength_nm,
)
from .exceptions import BadStarError, InputDataError

__all__ = [
    "continuum_mask",
    "fill_nan_pixels",
    "fill_nan_pixels_masked",
    "normalise_xp",
    "xp_available",
    "MinMaxScaler",
    "InputScalers",
    "check_rvs_grid",
    "check_rvs_flux",
    "rvs_flux_problems",
    "usable_rvs_flux",
    "FLUX_PLAUSIBLE_RANGE",
    "MAX_IMPLAUSIBLE_PIXELS",
    "FLUX_ABSURD",
    "CONTINUUM_MEDIAN_RANGE",
]


def continuum_mask(wavelength_nm: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the pixels inside the paper's three continuum windows.

    Parameters
    ----------
    wavelength_nm : array-like, optional
        Wavelengths (nm); default the 2401-pixel RVS grid (`rvs_wavelength_nm`).

    Returns
    -------
    ndarray of bool
        Same shape as the wavelengths; True inside 847.5-849.5, 856.1-858.2 or
        862.7-864.8 nm (edges included).

    Examples
    --------
    >>> from gaiarvs_cnn.preprocess import continuum_mask
    >>> int(continuum_mask().sum())
    623
    """
    wl = rvs_wavelength_nm() if wavelength_nm is None else np.asarray(wavelength_nm)
    mask = np.zeros(wl.shape, dtype=bool)
    for lo, hi in CONTINUUM_WINDOWS_NM:
        mask |= (wl >= lo - 1e-9) & (wl <= hi + 1e-9)
    return mask


#: Largest accepted difference from the RVS grid, nm (1 % of a pixel).
_GRID_ATOL_NM = 1e-4


def check_rvs_grid(wavelength_nm: np.ndarray, source_id=None) -> None:
    """Raise `InputDataError` unless ``wavelength_nm`` is the 2401-pixel RVS grid.

    Parameters
    ----------
    wavelength_nm : array-like
        Wavelengths of a spectrum (nm, vacuum); must match 846-870 nm in 0.01 nm steps
        to within 1e-4 nm.
    source_id : int, optional
        Gaia DR3 source_id, used to name the star in the error message.

    Raises
    ------
    InputDataError
        If the number of pixels or any wavelength differs from the RVS grid.
    """
    wl = np.asarray(wavelength_nm, dtype=float)
    who = f"Gaia DR3 {source_id}: " if source_id is not None else ""
    if wl.shape != (RVS_NPIX,):
        raise InputDataError(f"{who}RVS spectrum has {wl.size} pixels, expected {RVS_NPIX} "
                             "(846-870 nm in 0.01 nm steps).")
    # absolute tolerance only: numpy's default rtol (1e-5 x 860 nm) would accept a
    # shift of almost a whole pixel
    close = np.isclose(wl, rvs_wavelength_nm(), rtol=0.0, atol=_GRID_ATOL_NM)
    if not close.all():
        bad = int(np.argmax(~close))
        raise InputDataError(f"{who}wavelength grid differs from the RVS grid at pixel {bad} "
                             f"({wl[bad]:.4f} nm, expected {rvs_wavelength_nm()[bad]:.4f} nm).")


#: Range of plausible normalised RVS flux values (continuum = 1, deepest lines > 0).
FLUX_PLAUSIBLE_RANGE = (0.0, 3.0)
#: Pixels outside `FLUX_PLAUSIBLE_RANGE` (noise, a cosmic ray) tolerated per spectrum.
MAX_IMPLAUSIBLE_PIXELS = 5
#: Any pixel beyond +-this (or infinite) means the spectrum is not a normalised one.
FLUX_ABSURD = 10.0
#: Range of the median continuum flux of a normalised spectrum.
CONTINUUM_MEDIAN_RANGE = (0.5, 1.5)


def _flux_checks(flux: np.ndarray) -> dict[str, np.ndarray]:
    """The per-star quantities the sanity rules look at, for flux of shape (N, 2401)."""
    cont = flux[:, continuum_mask()]
    has_cont = np.isfinite(cont).any(axis=1)
    with np.errstate(invalid="ignore"):
        absurd = np.isinf(flux) | (np.abs(np.nan_to_num(flux, posinf=0, neginf=0))
                                   > FLUX_ABSURD)
        lo, hi = FLUX_PLAUSIBLE_RANGE
        off = (flux < lo) | (flux > hi)
        negative = flux < lo
    finite_cont = np.where(np.isfinite(cont), cont, np.nan)
    median = np.full(len(flux), np.nan)
    if has_cont.any():
        with np.errstate(all="ignore"):
            median[has_cont] = np.nanmedian(finite_cont[has_cont], axis=1)
    return {"has_cont": has_cont, "absurd": absurd, "n_off": off.sum(axis=1),
            "n_negative": negative.sum(axis=1), "median": median}


def usable_rvs_flux(flux) -> np.ndarray:
    """Per star: whether its normalised RVS flux passes the sanity rules of `check_rvs_flux`.

    Parameters
    ----------
    flux : array-like, shape (N, 2401)
        Normalised RVS flux (dimensionless); NaN pixels are allowed.

    Returns
    -------
    ndarray of bool, shape (N,)
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    c = _flux_checks(flux)
    lo, hi = CONTINUUM_MEDIAN_RANGE
    return (c["has_cont"] & ~c["absurd"].any(axis=1) & (c["n_off"] <= MAX_IMPLAUSIBLE_PIXELS)
            & (c["median"] >= lo) & (c["median"] <= hi))


def rvs_flux_problems(flux, where: str = "the input") -> list[str | None]:
    """Per star: why its normalised RVS flux is unusable (see `check_rvs_flux`), or None.

    Parameters
    ----------
    flux : array-like, shape (N, 2401)
        Normalised RVS flux (dimensionless).
    where : str, optional
        Where the spectra come from (a file name), for the messages.

    Returns
    -------
    list of (str or None)
        One entry per star.
    """
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    c = _flux_checks(flux)
    lo, hi = FLUX_PLAUSIBLE_RANGE
    out: list[str | None] = []
    for i in range(len(flux)):
        if not c["has_cont"][i]:
            out.append(f"all-NaN RVS spectrum in {where} (no finite flux in the continuum "
                       "windows); it cannot be used.")
        elif c["absurd"][i].any():
            k = int(np.argmax(c["absurd"][i]))
            out.append(f"RVS flux in {where} has {int(c['absurd'][i].sum())} infinite or "
                       f"absurd pixel(s) (e.g. {flux[i, k]:g} at pixel {k}); a normalised "
                       "spectrum lies near 0-1.")
        elif c["n_off"][i] > MAX_IMPLAUSIBLE_PIXELS:
            out.append(f"RVS flux in {where} has {int(c['n_off'][i])} pixels outside "
                       f"{lo:g}-{hi:g} ({int(c['n_negative'][i])} negative; at most "
                       f"{MAX_IMPLAUSIBLE_PIXELS} allowed): not a usable normalised "
                       "spectrum.")
        elif not CONTINUUM_MEDIAN_RANGE[0] <= c["median"][i] <= CONTINUUM_MEDIAN_RANGE[1]:
            out.append(f"RVS spectrum in {where} is not normalised: the median continuum "
                       f"flux is {c['median'][i]:g}, expected about 1.")
        else:
            out.append(None)
    return out


def check_rvs_flux(sid: int, flux, where: str) -> np.ndarray:
    """Physical sanity of one normalised RVS spectrum (NaN pixels are allowed: missing).

    A star is bad (`~gaiarvs_cnn.exceptions.BadStarError`) when its spectrum has no finite
    flux in the continuum windows, an infinite pixel or one beyond +-`FLUX_ABSURD`, more
    than `MAX_IMPLAUSIBLE_PIXELS` pixels outside `FLUX_PLAUSIBLE_RANGE` (negative flux,
    spikes), or a median continuum outside `CONTINUUM_MEDIAN_RANGE` (not normalised).

    Parameters
    ----------
    sid : int
        source_id, for the error.
    flux : array-like, shape (2401,)
        Normalised flux (dimensionless).
    where : str
        The file, for the error.

    Returns
    -------
    ndarray of float64
        ``flux``.

    Raises
    ------
    BadStarError
        Naming the star, the file and the reason.
    """
    flux = np.asarray(flux, dtype=np.float64)
    problem = rvs_flux_problems(flux[None], where)[0]
    if problem is not None:
        raise BadStarError(sid, problem)
    return flux


def fill_nan_pixels(flux: np.ndarray, source_ids: Sequence | None = None) -> np.ndarray:
    """Replace non-finite pixels by the Q3 of each spectrum's continuum-window flux.

    Parameters
    ----------
    flux : array, shape (2401,) or (N, 2401)
        Normalised RVS flux (dimensionless).
    source_ids : sequence, optional
        Used to name the star in errors.

    Returns
    -------
    ndarray of float32
        A copy of ``flux`` (same shape) with non-finite pixels replaced.

    Raises
    ------
    BadStarError
        If a spectrum has no finite pixel in the continuum windows (e.g. all NaN).
    """
    single = np.ndim(flux) == 1
    arr, usable = fill_nan_pixels_masked(flux)
    if not usable.all():
        i = int(np.flatnonzero(~usable)[0])
        sid = source_ids[i] if source_ids is not None else f"row {i}"
        raise BadStarError(sid, "RVS spectrum has no finite flux in the continuum windows "
                                "(all-NaN spectrum?); it cannot be used.")
    return arr[0] if single else arr


def fill_nan_pixels_masked(flux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`fill_nan_pixels` that marks unusable spectra instead of raising.

    Parameters
    ----------
    flux : array, shape (2401,) or (N, 2401)
        Normalised RVS flux (dimensionless).

    Returns
    -------
    filled : ndarray of float32, shape (N, 2401)
        A copy of ``flux`` with non-finite pixels replaced by the Q3 of the spectrum's
        continuum-window flux (by 1 in a spectrum without finite continuum flux).
    usable : ndarray of bool, shape (N,)
        False for the spectra without any finite pixel in the continuum windows.

    Raises
    ------
    InputDataError
        If the spectra do not have 2401 pixels.
    """
    arr = np.array(np.atleast_2d(flux), dtype=np.float32)
    if arr.shape[1] != RVS_NPIX:
        raise InputDataError(f"RVS flux has {arr.shape[1]} pixels, expected {RVS_NPIX}.")
    bad = ~np.isfinite(arr)
    usable = np.ones(len(arr), dtype=bool)
    rows = np.flatnonzero(bad.any(axis=1))
    if rows.size:
        # +-inf pixels are bad pixels, not continuum
        cont = np.where(bad[rows][:, continuum_mask()], np.nan, arr[rows][:, continuum_mask()])
        with np.errstate(all="ignore"):
            finite = np.isfinite(cont).any(axis=1)
            q3 = np.full(len(rows), 1.0, dtype=np.float32)
            if finite.any():
                q3[finite] = np.nanpercentile(cont[finite], 75, axis=1)
        usable[rows[~finite]] = False
        arr[rows] = np.where(bad[rows], q3[:, None], arr[rows])
    return arr, usable


class _quiet_nan_warnings:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


def xp_available(bp: np.ndarray, rp: np.ndarray) -> np.ndarray:
    """Boolean per star: both first XP coefficients finite and non-zero.

    Parameters
    ----------
    bp, rp : array-like, shape (55,) or (N, 55)
        BP and RP continuous coefficients (e-/s).

    Returns
    -------
    ndarray of bool, shape (N,)
        True where the star's XP coefficients can be normalised (`normalise_xp`).
    """
    first = np.stack([np.atleast_2d(bp)[:, 0], np.atleast_2d(rp)[:, 0]], axis=1)
    return np.all(np.isfinite(first) & (first != 0), axis=1)


def normalise_xp(bp: np.ndarray, rp: np.ndarray, source_ids: Sequence | None = None
                 ) -> np.ndarray:
    """Divide BP and RP coefficients by their first coefficient; return (N, 110).

    Parameters
    ----------
    bp, rp : array, shape (55,) or (N, 55)
        XP continuous coefficients (e-/s); the result is dimensionless.
    source_ids : sequence, optional
        Used to name the star in errors.

    Returns
    -------
    ndarray of float64, shape (N, 110)
        The 55 BP then the 55 RP coefficients, each divided by the first coefficient
        of its band (dimensionless).

    Raises
    ------
    BadStarError
        If a first coefficient is zero or not finite (missing XP spectrum); it names the
        source_id (or the row when ``source_ids`` is not given).
    """
    bp = np.atleast_2d(np.asarray(bp, dtype=np.float64))
    rp = np.atleast_2d(np.asarray(rp, dtype=np.float64))
    ok = xp_available(bp, rp)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise BadStarError(source_ids[i] if source_ids is not None else f"row {i}",
                           "missing or zero first XP coefficient (no XP continuous "
                           "spectrum?); it cannot be used.")
    return np.concatenate([bp / bp[:, :1], rp / rp[:, :1]], axis=1)


@dataclass
class MinMaxScaler:
    """Per-feature min-max scaling to [0, 1] that serialises to JSON and inverts exactly.

    Usually made with `MinMaxScaler.fit` or `MinMaxScaler.from_dict`.

    Parameters
    ----------
    names : list of str
        Feature names (for messages and JSON).
    minimum, maximum : array-like of float, shape (n_features,)
        Per-feature minimum and maximum of the data the scaler was fitted on, in the
        features' physical units. A feature with ``maximum == minimum`` is only shifted.

    Examples
    --------
    >>> import numpy as np
    >>> from gaiarvs_cnn.preprocess import MinMaxScaler
    >>> scaler = MinMaxScaler.fit(np.array([[4000.0], [6000.0]]), ["teff"])
    >>> scaler.transform([[5000.0]])
    array([[0.5]])
    >>> scaler.inverse_transform_error([[0.05]])
    array([[100.]])
    """

    names: list[str]
    minimum: np.ndarray = field(default_factory=lambda: np.zeros(0))
    maximum: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self):
        self.minimum = np.asarray(self.minimum, dtype=np.float64)
        self.maximum = np.asarray(self.maximum, dtype=np.float64)

    @classmethod
    def fit(cls, x: np.ndarray, names: Sequence[str]) -> MinMaxScaler:
        """Fit on ``x`` (N, n_features), ignoring NaN.

        Parameters
        ----------
        x : array-like, shape (N, n_features)
            Training values in physical units; NaN values are ignored.
        names : sequence of str
            One name per feature.

        Returns
        -------
        MinMaxScaler
            Scaler with the per-feature minimum and maximum of ``x``.

        Raises
        ------
        InputDataError
            If ``x`` is not (N, len(names)) or a feature has no finite value.
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != len(names):
            raise InputDataError(f"Expected (N, {len(names)}) values to fit, got {x.shape}.")
        with _quiet_nan_warnings():
            lo, hi = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise InputDataError("Cannot fit a scaler on a feature with no finite values: "
                                 f"{[n for n, v in zip(names, lo) if not np.isfinite(v)]}")
        return cls(list(names), lo, hi)

    @classmethod
    def identity(cls, names: Sequence[str]) -> MinMaxScaler:
        """The scaler that changes nothing (minimum 0, maximum 1): a branch not fitted.

        Parameters
        ----------
        names : sequence of str
            One name per feature.

        Returns
        -------
        MinMaxScaler
        """
        return cls(list(names), np.zeros(len(names)), np.ones(len(names)))

    @property
    def range(self) -> np.ndarray:
        """Per-feature ``maximum - minimum`` (1 where that is zero), physical units."""
        r = self.maximum - self.minimum
        return np.where(r > 0, r, 1.0)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scale values to [0, 1] (for data inside the fitted range).

        Parameters
        ----------
        x : array-like, shape (..., n_features)
            Values in physical units.

        Returns
        -------
        ndarray of float64
            ``(x - minimum) / range``, same shape as ``x``.
        """
        return (np.asarray(x, dtype=np.float64) - self.minimum) / self.range

    def inverse_transform(self, y: np.ndarray) -> np.ndarray:
        """Map scaled values back to physical units (inverse of `transform`).

        Parameters
        ----------
        y : array-like, shape (..., n_features)
            Scaled values.

        Returns
        -------
        ndarray of float64
            ``y * range + minimum``, in physical units, same shape as ``y``.
        """
        return np.asarray(y, dtype=np.float64) * self.range + self.minimum

    def transform_error(self, e: np.ndarray) -> np.ndarray:
        """Scale an uncertainty (range only, no offset).

        Parameters
        ----------
        e : array-like, shape (..., n_features)
            Uncertainties in physical units.

        Returns
        -------
        ndarray of float64
            ``e / range``: the uncertainties in scaled units.
        """
        return np.asarray(e, dtype=np.float64) / self.range

    def inverse_transform_error(self, e: np.ndarray) -> np.ndarray:
        """Unscale an uncertainty back to physical units (range only).

        Parameters
        ----------
        e : array-like, shape (..., n_features)
            Uncertainties in scaled units.

        Returns
        -------
        ndarray of float64
            ``e * range``: the uncertainties in physical units.
        """
        return np.asarray(e, dtype=np.float64) * self.range

    def to_dict(self) -> dict:
        """Return the scaler as a JSON-serialisable dict.

        Returns
        -------
        dict
            Keys ``names``, ``minimum`` and ``maximum`` (lists); the inverse of
            `from_dict`.
        """
        return {"names": list(self.names), "minimum": self.minimum.tolist(),
                "maximum": self.maximum.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping) -> MinMaxScaler:
        """Rebuild a scaler from the output of `to_dict`.

        Parameters
        ----------
        d : mapping
            With keys ``names``, ``minimum`` and ``maximum``.

        Returns
        -------
        MinMaxScaler
            The scaler, transforming exactly as the one serialised.
        """
        return cls(list(d["names"]), d["minimum"], d["maximum"])


@dataclass
class InputScalers:
    """The three scalers of the hybrid network: labels, photometry+parallax, XP.

    Usually made with `InputScalers.fit` on the training sample, saved with
    `to_json` in a model bundle and restored with `from_json`.

    Parameters
    ----------
    labels : MinMaxScaler
        Scaler of the five labels, in `~gaiarvs_cnn.constants.LABELS` order (K, dex).
    phot : MinMaxScaler
        Scaler of G, G_BP, G_RP (mag) and parallax (mas), in
        `~gaiarvs_cnn.constants.PHOT_INPUTS` order.
    xp : MinMaxScaler
        Scaler of the 110 normalised XP coefficients (`normalise_xp`, dimensionless).
    """

    labels: MinMaxScaler
    phot: MinMaxScaler
    xp: MinMaxScaler

    @classmethod
    def fit(cls, batch, inputs: Sequence[str] = INPUT_NAMES) -> InputScalers:
        """Fit on a training `~gaiarvs_cnn.io.batch.StarBatch` (labels must be known).

        Parameters
        ----------
        batch : `~gaiarvs_cnn.io.batch.StarBatch`
            Training stars with finite ``labels`` and the inputs of the branches
            ``inputs`` (photometry and parallax for ``phot``, XP coefficients for ``xp``).
        inputs : sequence of str, optional
            Branches of the network (its ``config.inputs``); default all three. The scaler
            of a branch the network does not use is not fitted (identity: minimum 0,
            maximum 1), so its columns may be missing (NaN).

        Returns
        -------
        InputScalers
            Scalers fitted on the range of ``batch``.

        Raises
        ------
        BadStarError
            If a star has no usable XP coefficients (``xp`` in ``inputs``).
        InputDataError
            If a feature of a used branch has no finite value.
        """
        xp_names = [f"{band}_{i}" for band in ("bp", "rp") for i in range(XP_NCOEFF)]
        if "phot" in inputs:
            phot = MinMaxScaler.fit(np.stack([batch[c] for c in PHOT_INPUTS], axis=1),
                                    PHOT_INPUTS)
        else:
            phot = MinMaxScaler.identity(PHOT_INPUTS)
        if "xp" in inputs:
            xp = MinMaxScaler.fit(normalise_xp(batch["bp_coefficients"],
                                               batch["rp_coefficients"],
                                               source_ids=batch["source_id"]), xp_names)
        else:
            xp = MinMaxScaler.identity(xp_names)
        return cls(MinMaxScaler.fit(batch["labels"], LABELS), phot, xp)

    def transform_inputs(self, batch, inputs: Sequence[str] = INPUT_NAMES
                         ) -> dict[str, np.ndarray]:
        """Return the network inputs (of the branches ``inputs``) as float32 arrays.

        Parameters
        ----------
        batch : `~gaiarvs_cnn.io.batch.StarBatch`
            Stars with the columns the branches need: ``flux`` (rvs), G, BP, RP and parallax
            (phot), XP coefficients (xp). The others are not read: an RVS-only network
            needs neither photometry nor XP.
        inputs : sequence of str, optional
            Branches to prepare, a subset of `~gaiarvs_cnn.constants.INPUT_NAMES` (a
            network's ``config.inputs``); default all three.

        Returns
        -------
        dict of str to ndarray of float32
            Keyed by ``inputs``: ``rvs`` has shape (N, 2401, 1) with NaN pixels filled
            (`fill_nan_pixels`); ``phot`` (N, 4) and ``xp`` (N, 110) are min-max scaled.

        Raises
        ------
        BadStarError
            Naming the first star whose inputs are not finite after preprocessing.
        """
        ids = batch["source_id"]
        out = {}
        if "rvs" in inputs:
            rvs = fill_nan_pixels(batch["flux"], source_ids=ids)
            out["rvs"] = rvs[..., None].astype(np.float32)
        checks = []
        if "phot" in inputs:
            phot = self.phot.transform(np.stack([batch[c] for c in PHOT_INPUTS], axis=1))
            out["phot"] = phot.astype(np.float32)
            checks.append(("photometry/parallax", phot))
        if "xp" in inputs:
            xp = self.xp.transform(normalise_xp(batch["bp_coefficients"],
                                                batch["rp_coefficients"], source_ids=ids))
            out["xp"] = xp.astype(np.float32)
            checks.append(("XP coefficients", xp))
        for name, arr in checks:
            bad = ~np.all(np.isfinite(arr), axis=1)
            if bad.any():
                raise BadStarError(ids[np.flatnonzero(bad)[0]],
                                   f"non-finite {name} after preprocessing")
        return out

    def to_json(self) -> str:
        """Serialise the three scalers to JSON.

        Returns
        -------
        str
            JSON object with keys ``labels``, ``phot`` and ``xp``; read it back with
            `from_json`.
        """
        return json.dumps({"labels": self.labels.to_dict(), "phot": self.phot.to_dict(),
                           "xp": self.xp.to_dict()}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> InputScalers:
        """Rebuild the scalers from the output of `to_json`.

        Parameters
        ----------
        text : str
            JSON written by `to_json`.

        Returns
        -------
        InputScalers
            The scalers, transforming exactly as the ones serialised.
        """
        d = json.loads(text)
        return cls(MinMaxScaler.from_dict(d["labels"]), MinMaxScaler.from_dict(d["phot"]),
                   MinMaxScaler.from_dict(d["xp"]))
