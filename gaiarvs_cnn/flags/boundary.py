"""The eight-digit ``flag_boundary`` of the catalogue (paper Sect. 5).

Digits, left to right (``"0"`` = within, ``"1"`` = outside):

====  ===================  ==============================================================
pos   name                 set to ``"1"`` when
====  ===================  ==============================================================
1     ``teff``             predicted Teff outside the training-label range
2     ``logg``             predicted log g outside the training-label range
3     ``mh``               predicted [M/H] outside the training-label range
4     ``alpham``           predicted [alpha/M] outside the training-label range
5     ``feh``              predicted [Fe/H] outside the training-label range
6     ``phot_g_mean_mag``  input G magnitude outside the training range
7     ``parallax``         input parallax outside the training range
8     ``tsne``             the RVS spectrum is not training-like (t-SNE classification)
====  ===================  ==============================================================

A missing (NaN) value counts as outside: we cannot vouch for it.

The t-SNE classification of digit 8 is `gaiarvs_cnn.flags.tsne.TSNEReference`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..constants import LABELS
from ..exceptions import InputDataError

__all__ = ["FLAG_POSITIONS", "GOOD_FLAG", "flag_digits", "flag_boundary", "decode_flag"]

#: Quantity tested by each digit of ``flag_boundary``, left to right.
FLAG_POSITIONS = (*LABELS, "phot_g_mean_mag", "parallax", "tsne")
#: The flag of a star inside every training limit and with a training-like spectrum.
GOOD_FLAG = "0" * len(FLAG_POSITIONS)


def flag_digits(pred: Mapping[str, np.ndarray], batch, ranges: Mapping[str, Sequence[float]],
                tsne_like: np.ndarray) -> np.ndarray:
    """The eight flag digits as booleans (True = outside).

    Parameters
    ----------
    pred, batch, ranges, tsne_like
        As for `flag_boundary`.

    Returns
    -------
    ndarray of bool, shape (N, 8)
        Columns in the order of `FLAG_POSITIONS`.
    """
    n = len(np.asarray(tsne_like))
    out = np.zeros((n, len(FLAG_POSITIONS)), dtype=bool)
    for j, name in enumerate(FLAG_POSITIONS[:-1]):
        if name not in ranges:
            raise InputDataError(f"No training range for '{name}'; the model bundle's ranges "
                                 f"must give all of {list(FLAG_POSITIONS[:-1])}.")
        lo, hi = (float(v) for v in ranges[name])
        values = np.asarray(pred[name] if name in LABELS else batch[name], dtype=np.float64)
        if values.shape != (n,):
            raise InputDataError(f"'{name}' has shape {values.shape}, expected ({n},).")
        with np.errstate(invalid="ignore"):
            out[:, j] = ~((values >= lo) & (values <= hi))
    out[:, -1] = ~np.asarray(tsne_like, dtype=bool)
    return out


def flag_boundary(pred: Mapping[str, np.ndarray], batch, ranges: Mapping[str, Sequence[float]],
                  tsne_like: np.ndarray) -> np.ndarray:
    """Build the ``flag_boundary`` strings (``"0"`` within, ``"1"`` outside; see module doc).

    Parameters
    ----------
    pred : mapping
        Predicted labels (``teff`` [K], ``logg`` [dex cm s^-2], ``mh``, ``alpham``, ``feh``
        [dex]), e.g. from `gaiarvs_cnn.model.predict_batch`.
    batch : `~gaiarvs_cnn.io.batch.StarBatch` or mapping
        The input stars, for ``phot_g_mean_mag`` [mag] and ``parallax`` [mas].
    ranges : mapping
        ``(lo, hi)`` of the training sample for each of the 5 labels, ``phot_g_mean_mag``
        and ``parallax`` (inclusive).
    tsne_like : array of bool
        `TSNEReference.training_like` of the spectra.

    Returns
    -------
    ndarray of str (``<U8``)

    Examples
    --------
    >>> import numpy as np
    >>> pred = {"teff": np.array([5000., 9000.]), "logg": np.array([3., 3.]),
    ...         "mh": np.zeros(2), "alpham": np.zeros(2), "feh": np.zeros(2)}
    >>> batch = {"phot_g_mean_mag": np.array([12., 12.]), "parallax": np.array([1., 9.])}
    >>> from gaiarvs_cnn.constants import PAPER_TRAINING_RANGES
    >>> flag_boundary(pred, batch, PAPER_TRAINING_RANGES, np.array([True, False])).tolist()
    ['00000000', '10000011']
    """
    digits = flag_digits(pred, batch, ranges, tsne_like)
    chars = np.where(digits, "1", "0")
    return np.array(["".join(row) for row in chars], dtype=f"<U{len(FLAG_POSITIONS)}")


def decode_flag(flags: Sequence[str]) -> dict[str, np.ndarray]:
    """Split ``flag_boundary`` strings into one boolean array per position.

    Parameters
    ----------
    flags : sequence of str
        Eight-character flags.

    Returns
    -------
    dict of str to ndarray of bool
        Keyed by `FLAG_POSITIONS`; True = outside / not training-like.
    """
    arr = np.asarray(flags, dtype=f"<U{len(FLAG_POSITIONS)}")
    bad = [f for f in arr.tolist() if len(f) != len(FLAG_POSITIONS) or set(f) - {"0", "1"}]
    if bad:
        raise InputDataError(f"Malformed flag_boundary value(s) {bad[:5]}: expected "
                             f"{len(FLAG_POSITIONS)} characters of '0'/'1'.")
    return {name: np.array([f[j] == "1" for f in arr.tolist()], dtype=bool)
            for j, name in enumerate(FLAG_POSITIONS)}
