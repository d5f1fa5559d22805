"""The registry of catalogue formats: names, suffixes, and how a format string is parsed.

`CATALOG_FORMATS` is the one list of catalogue formats (name -> suffix); suffixes of files
are looked up in `gaiarvs_cnn.utils.formats` (the package's one suffix table). Partitioned
formats (HATS, a directory) register themselves with `register_format`.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..exceptions import InputDataError
from ..utils.formats import format_from_suffix
from .datamodel import DEFAULT_NAME

__all__ = ["CATALOG_FORMATS", "BOTH", "format_of", "output_paths", "parse_formats",
           "register_format"]

#: Catalogue format name -> file suffix (``""`` for a directory format such as HATS).
CATALOG_FORMATS: dict[str, str] = {"fits": ".fits", "votable": ".vot", "ecsv": ".ecsv",
                                   "parquet": ".parquet"}
#: The formats meant by ``"both"`` (the default of produce-catalog: FITS and VOTable).
BOTH = ("fits", "votable")


def register_format(name: str, suffix: str) -> None:
    """Add a catalogue format (e.g. a partitioned one) to `CATALOG_FORMATS`.

    Parameters
    ----------
    name : str
        Format name, as given to `format_of` and `parse_formats`.
    suffix : str
        File suffix (``""`` for a directory whose name is the catalogue name).
    """
    CATALOG_FORMATS[name] = suffix


def _check_name(format: str) -> str:
    if format not in CATALOG_FORMATS:
        raise InputDataError(f"Unknown catalogue format '{format}'; use one of "
                             f"{sorted(CATALOG_FORMATS)} (or 'both' for fits and votable).")
    return format


def parse_formats(formats) -> list[str]:
    """The list of catalogue format names meant by a format specification.

    Parameters
    ----------
    formats : str or sequence of str
        ``"both"`` (FITS and VOTable), one name (``"parquet"``), a comma-separated list
        (``"fits,votable,parquet"``) or a sequence of names.

    Returns
    -------
    list of str
        Distinct names of `CATALOG_FORMATS`, in the order given.

    Raises
    ------
    InputDataError
        If a name is not a catalogue format.

    Examples
    --------
    >>> parse_formats("fits, parquet")
    ['fits', 'parquet']
    >>> parse_formats("both")
    ['fits', 'votable']
    """
    items = formats.split(",") if isinstance(formats, str) else list(formats)
    names: list[str] = []
    for item in (str(i).strip().lower() for i in items):
        for name in (BOTH if item == "both" else (item,)):
            if name and _check_name(name) not in names:
                names.append(name)
    if not names:
        raise InputDataError(f"No catalogue format in {formats!r}; use one of "
                             f"{sorted(CATALOG_FORMATS)}.")
    return names


def format_of(path, format: str | None = None) -> str:
    """The catalogue format of a path.

    Parameters
    ----------
    path : path-like
        File name; its suffix is looked up in `gaiarvs_cnn.utils.formats.SUFFIX_FORMATS`
        (``.fits``, ``.fit``, ``.fits.gz``, ``.vot``, ``.xml``, ``.votable``, ``.ecsv``,
        ``.parquet``).
    format : str, optional
        A name of `CATALOG_FORMATS`, returned as is when given (after checking it).

    Returns
    -------
    str
        A name of `CATALOG_FORMATS`.

    Raises
    ------
    InputDataError
        If the format is unknown or cannot be told from the suffix.
    """
    if format is not None:
        return _check_name(format)
    fmt = format_from_suffix(path)
    if fmt not in CATALOG_FORMATS:
        suffixes = ", ".join(s for s in CATALOG_FORMATS.values() if s)
        raise InputDataError(f"Cannot tell the catalogue format of {path}; use a suffix "
                             f"({suffixes}) or pass format= one of {sorted(CATALOG_FORMATS)}.")
    return fmt


def output_paths(out_dir, formats: str | Sequence[str] = "both",
                 name: str = DEFAULT_NAME) -> list[Path]:
    """Catalogue paths in a directory, one per format.

    Parameters
    ----------
    out_dir : path-like
        Output directory.
    formats : str or sequence of str
        As for `parse_formats` (``"both"``, ``"parquet"``, ``"fits,votable,parquet"``).
    name : str
        Base name (each format's suffix appended).

    Returns
    -------
    list of Path
    """
    return [Path(out_dir) / f"{name}{CATALOG_FORMATS[f]}" for f in parse_formats(formats)]
