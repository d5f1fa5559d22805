"""gaiarvs-cnn: stellar parameters from Gaia-RVS spectra with a hybrid CNN ensemble.

Re-implements, as reusable software, the method of Guiglion, Nepal et al. (2024, A&A),
"Beyond Gaia DR3: tracing the [alpha/M]-[M/H] bimodality from the inner to the outer
Milky Way disc with Gaia-RVS and convolutional neural networks".
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from astropy import config as _config  # noqa: E402

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - only when running from a bare checkout
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("gaiarvs-cnn")
    except PackageNotFoundError:
        __version__ = "0.0.0"


class Conf(_config.ConfigNamespace):
    """Configuration parameters for `gaiarvs_cnn` (see ``gaiarvs_cnn.conf``).

    Items: ``cache_dir``, the service URLs ``gaia_tap_url``, ``gaia_datalink_url``,
    ``aip_tap_url`` and ``vizier_url``, the request limits ``datalink_max_ids`` and
    ``aip_datalink_max_ids``, ``timeout`` (s), ``retries``, ``chunk_size`` (stars) and
    ``threads``. Change them for a session with ``conf.set_temp`` or permanently in
    the astropy configuration file.

    Examples
    --------
    >>> from gaiarvs_cnn import conf
    >>> with conf.set_temp("chunk_size", 1000):
    ...     print(conf.chunk_size)
    1000
    """

    cache_dir = _config.ConfigItem(
        "",
        "Directory for downloaded archive products; empty means the astropy cache "
        "directory (``astropy.config.paths.get_cache_dir()/gaiarvs_cnn``).",
    )
    gaia_tap_url = _config.ConfigItem(
        "https://gea.esac.esa.int/tap-server/tap", "ESA Gaia archive TAP service."
    )
    gaia_datalink_url = _config.ConfigItem(
        "https://gea.esac.esa.int/data-server/data", "ESA Gaia archive DataLink service."
    )
    aip_tap_url = _config.ConfigItem(
        "https://gaia.aip.de/tap", "AIP Gaia DR3 TAP mirror."
    )
    vizier_url = _config.ConfigItem(
        "https://tapvizier.cds.unistra.fr/TAPVizieR/tap", "VizieR TAP service."
    )
    datalink_max_ids = _config.ConfigItem(
        5000, "Maximum source ids per DataLink request at the ESA archive.", cfgtype="integer"
    )
    aip_datalink_max_ids = _config.ConfigItem(
        2000, "Maximum source ids per spectra request at AIP.", cfgtype="integer"
    )
    timeout = _config.ConfigItem(120.0, "Network timeout in seconds.", cfgtype="float")
    retries = _config.ConfigItem(4, "Retries (with exponential backoff) per request.",
                                 cfgtype="integer")
    chunk_size = _config.ConfigItem(
        4096, "Stars per chunk when streaming the HDF5 store.", cfgtype="integer"
    )
    threads = _config.ConfigItem(
        0, "TensorFlow intra-op threads (0 = all cores).", cfgtype="integer"
    )


conf = Conf()


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
    from .catalog import read_catalog as _read

    return _read(path)


__all__ = ["__version__", "conf", "Conf", "read_catalog"]
