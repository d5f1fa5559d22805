"""Settings of `gaiarvs_cnn` (an `astropy.config.ConfigNamespace`).

The values are read from ``gaiarvs_cnn.cfg`` in the Astropy configuration directory
(``astropy.config.get_config_dir()``, i.e. ``~/.astropy/config`` or
``$XDG_CONFIG_HOME/astropy``; `config_file` names it) and can be changed for a session
with ``conf.set_temp``. ``gaiarvs_cnn.conf`` is this module's `conf`; `config_report`
lists every setting with where its value comes from (``gaiarvs-cnn config``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from astropy import config as _config

__all__ = ["Conf", "conf", "config_file", "config_report", "Setting"]

# The items belong to the top-level package, so that they are read from the top (section-less)
# part of ``gaiarvs_cnn.cfg``, where they have always been, not from a ``[settings]`` section.
_PACKAGE = "gaiarvs_cnn"


def _item(*args, **kwargs) -> _config.ConfigItem:
    return _config.ConfigItem(*args, module=_PACKAGE, **kwargs)


class Conf(_config.ConfigNamespace):
    """Configuration parameters for `gaiarvs_cnn` (see ``gaiarvs_cnn.conf``).

    Items: ``cache_dir``, the service URLs ``gaia_tap_url``, ``gaia_datalink_url``,
    ``aip_tap_url``, ``vizier_url``, ``xmatch_url`` and ``gaia_bulk_url``,
    ``datalink_data_structure``, ``xmatch_max_distance`` (arcsec),
    the request limits ``datalink_max_ids`` and ``aip_datalink_max_ids``, the id-list
    sizes ``tap_upload_max_ids`` and ``tap_in_list_max_ids``, ``timeout`` (s),
    ``request_deadline`` (s), ``retries``, the answer limits ``max_response_bytes``,
    ``zip_member_max_bytes`` and ``zip_max_bytes``, ``chunk_size`` (stars), ``threads``
    and ``on_error`` (the bad-star policy of the readers). Change them for a session with
    ``conf.set_temp`` or permanently in the astropy configuration file.

    Examples
    --------
    >>> from gaiarvs_cnn import conf
    >>> with conf.set_temp("chunk_size", 1000):
    ...     print(conf.chunk_size)
    1000
    """

    cache_dir = _item(
        "",
        "Directory for downloaded archive products; empty means the astropy cache "
        "directory (``astropy.config.paths.get_cache_dir()/gaiarvs_cnn``).",
    )
    gaia_tap_url = _item(
        "https://gea.esac.esa.int/tap-server/tap", "ESA Gaia archive TAP service."
    )
    gaia_datalink_url = _item(
        "https://gea.esac.esa.int/data-server/data", "ESA Gaia archive DataLink service."
    )
    aip_tap_url = _item(
        "https://gaia.aip.de/tap", "AIP Gaia DR3 TAP mirror."
    )
    vizier_url = _item(
        "https://tapvizier.cds.unistra.fr/TAPVizieR/tap", "VizieR TAP service."
    )
    xmatch_url = _item(
        "https://cdsxmatch.cds.unistra.fr/xmatch/api/v1/sync",
        "CDS XMatch service (astroquery.xmatch), for positional cross-matches of reference "
        "tables without Gaia ids with Gaia DR3 (VizieR I/355/gaiadr3)."
    )
    xmatch_max_distance = _item(
        2.0, "Largest separation (arcsec) accepted by a positional cross-match with Gaia "
        "DR3; the nearest counterpart within it is kept.", cfgtype="float"
    )
    gaia_bulk_url = _item(
        "https://cdn.gea.esac.esa.int/Gaia/gdr3/Spectroscopy",
        "Gaia DR3 bulk-download area holding rvs_mean_spectrum/ and "
        "xp_continuous_mean_spectrum/ (each with an _MD5SUM.txt); assumed layout."
    )
    datalink_max_ids = _item(
        5000, "Maximum source ids per DataLink request at the ESA archive.", cfgtype="integer"
    )
    datalink_data_structure = _item(
        "INDIVIDUAL", "DataLink DATA_STRUCTURE spelling the ESA server accepts: INDIVIDUAL "
        "(current) or DATAMODEL_STANDARD (announced renaming); the other spelling is tried "
        "once on an HTTP 400 naming DATA_STRUCTURE."
    )
    aip_datalink_max_ids = _item(
        2000, "Maximum source ids per spectra request at AIP.", cfgtype="integer"
    )
    tap_upload_max_ids = _item(
        50000, "Most source ids per TAP table upload (a service's published uploadLimit "
        "and outputLimit lower it).", cfgtype="integer"
    )
    tap_in_list_max_ids = _item(
        1000, "Source ids per ADQL IN list, at services without TAP uploads.",
        cfgtype="integer"
    )
    timeout = _item(120.0, "Network timeout in seconds: longest wait to connect, and "
                    "longest silence while an answer arrives.", cfgtype="float")
    request_deadline = _item(
        3600.0, "Longest time (s) one HTTP request may take in all, from connecting to "
        "the last byte of the answer (a server trickling bytes is cut off then).",
        cfgtype="float")
    retries = _item(4, "Retries (with exponential backoff) per request.",
                                 cfgtype="integer")
    max_response_bytes = _item(
        2 ** 31, "Largest answer body (bytes, after gzip/deflate decoding) accepted from "
        "an archive; a larger or endless answer fails without being read further.",
        cfgtype="integer")
    zip_member_max_bytes = _item(
        2 ** 28, "Largest uncompressed size (bytes) of one file in a downloaded DataLink "
        "zip; checked before the file is read.", cfgtype="integer")
    zip_max_bytes = _item(
        2 ** 32, "Largest uncompressed size (bytes) of all files of a downloaded DataLink "
        "zip together; checked before any file is read.", cfgtype="integer")
    chunk_size = _item(
        4096, "Stars per chunk when streaming the HDF5 store.", cfgtype="integer"
    )
    threads = _item(
        0, "TensorFlow intra-op threads (0 = all cores).", cfgtype="integer"
    )
    on_error = _item(
        ["raise", "skip"],
        "What readers and ingest do with a bad star: 'raise' stops at the first one, "
        "'skip' leaves it out and logs its source_id and reason.",
    )


conf = Conf()


@dataclass(frozen=True)
class Setting:
    """One configuration item as `config_report` sees it.

    Parameters
    ----------
    name : str
        The item (``conf.<name>``).
    value : object
        The value in effect now.
    origin : str
        ``"default"``, ``"file"`` (set in `config_file`) or ``"session"`` (changed in
        this process: ``conf.set_temp`` or assignment).
    default : object
        The built-in default.
    description : str
        What the item does.
    """

    name: str
    value: object
    origin: str
    default: object
    description: str


def config_file() -> Path:
    """The configuration file the settings are read from.

    ``gaiarvs_cnn.cfg`` in the Astropy configuration directory
    (``astropy.config.get_config_dir()``); it may not exist (then every item has its
    default). Write a commented template there with
    ``astropy.config.create_config_file("gaiarvs_cnn")``.

    Returns
    -------
    pathlib.Path
        The file (existing or not).
    """
    filename = _config.get_config(_PACKAGE).filename  # what astropy reads
    return Path(filename) if filename else Path(_config.get_config_dir()) / f"{_PACKAGE}.cfg"


def config_report() -> list[Setting]:
    """Every configuration item, its value in effect and where that value comes from.

    The file is parsed afresh from disk (`config_file`), so that a value changed in this
    process (``conf.set_temp`` or assignment) is told apart from one set in the file.

    Returns
    -------
    list of Setting
        In the order of `Conf`.

    Raises
    ------
    astropy.config.ConfigurationItemError
        Not raised for a bad file value: such a value is reported with origin
        ``"file (invalid: ...)"``.

    Examples
    --------
    >>> with conf.set_temp("retries", 9):
    ...     [(s.value, s.origin) for s in config_report() if s.name == "retries"]
    [(9, 'session')]
    """
    from astropy.extern.configobj import configobj

    path = config_file()
    on_disk = configobj.ConfigObj(str(path), interpolation=False) if path.exists() else {}
    out = []
    for name, item in type(conf).__dict__.items():
        if not isinstance(item, _config.ConfigItem):
            continue
        value = getattr(conf, name)
        origin = "default"
        if name in on_disk:
            try:
                file_value = item._validate_val(on_disk[name])
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                origin = f"file (invalid: {exc})"
            else:
                origin = "file" if file_value == value else "session"
        elif value != item.defaultvalue:
            origin = "session"
        out.append(Setting(name, value, origin, item.defaultvalue, item.description))
    return out
