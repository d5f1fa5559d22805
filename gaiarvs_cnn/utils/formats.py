"""File suffix -> table format: the one table of suffixes of the package.

Input products (`gaiarvs_cnn.io.tables`) and catalogues (`gaiarvs_cnn.catalog`) both look a
file's format up here, by the longest matching suffix, case-insensitively.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["SUFFIX_FORMATS", "ASTROPY_FORMATS", "format_from_suffix"]

#: Suffix -> format name (``fits``, ``votable``, ``ecsv``, ``csv``, ``parquet``).
SUFFIX_FORMATS = {
    ".fits": "fits", ".fit": "fits", ".fts": "fits", ".fits.gz": "fits",
    ".vot": "votable", ".xml": "votable", ".votable": "votable",
    ".ecsv": "ecsv", ".csv": "csv",
    ".parquet": "parquet", ".pq": "parquet",
}
#: Format name -> the `astropy.io.registry` format of `astropy.table.Table.read`.
ASTROPY_FORMATS = {"fits": "fits", "votable": "votable", "ecsv": "ascii.ecsv",
                   "csv": "ascii.csv", "parquet": "parquet"}


def format_from_suffix(path) -> str | None:
    """The format name of a file from its suffix, or None when no suffix is known.

    Parameters
    ----------
    path : str or path-like
        The file name (only its name is looked at).

    Returns
    -------
    str or None
        A value of `SUFFIX_FORMATS`.

    Examples
    --------
    >>> format_from_suffix("cat.FITS.gz")
    'fits'
    >>> format_from_suffix("notes.txt") is None
    True
    """
    name = Path(path).name.lower()
    for suffix in sorted(SUFFIX_FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIX_FORMATS[suffix]
    return None
