"""Array conversions shared by every layer: the one masked-to-NaN conversion of the package."""
from __future__ import annotations

import numpy as np

__all__ = ["masked_to_nan"]


def masked_to_nan(values, dtype=np.float64) -> np.ndarray:
    """Return ``values`` as a float array, masked entries as NaN.

    Parameters
    ----------
    values : array-like, `numpy.ma.MaskedArray` or `~astropy.table.Column`
        Values, possibly masked (a `~astropy.table.MaskedColumn`, a masked table cell).
    dtype : dtype, optional
        Floating-point type of the result (default float64).

    Returns
    -------
    numpy.ndarray
        The values as ``dtype``, NaN where ``values`` was masked.

    Raises
    ------
    ValueError, TypeError
        If the values are not numbers (e.g. text that is not a number).

    Examples
    --------
    >>> import numpy as np
    >>> masked_to_nan(np.ma.array([1, 2, 3], mask=[False, True, False]))
    array([ 1., nan,  3.])
    """
    return np.ma.filled(np.ma.asarray(values).astype(dtype), np.nan)
