"""gaiarvs-cnn: stellar parameters from Gaia-RVS spectra with a hybrid CNN ensemble.

Re-implements, as reusable software, the method of Guiglion, Nepal et al. (2024, A&A),
"Beyond Gaia DR3: tracing the [alpha/M]-[M/H] bimodality from the inner to the outer
Milky Way disc with Gaia-RVS and convolutional neural networks".
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .settings import Conf, conf  # noqa: E402
from .version import __version__  # noqa: E402


def read_catalog(path):
    """Read a gaiarvs-cnn catalogue (FITS or VOTable) into an `~astropy.table.Table`.

    See `gaiarvs_cnn.catalog.read_catalog`.

    Parameters
    ----------
    path : str or path-like
        Catalogue written by `gaiarvs_cnn.catalog.write_catalog`.

    Returns
    -------
    `~astropy.table.Table`
        The catalogue (paper Table 2 columns) with its data-model units;
        ``flag_boundary`` as text.

    Raises
    ------
    InputDataError
        If ``path`` does not exist or is not a gaiarvs-cnn catalogue.
    """
    from .catalog.readers import read_catalog as _read

    return _read(path)


__all__ = ["__version__", "conf", "Conf", "read_catalog"]
