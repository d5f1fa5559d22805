"""Reading every table of a file, file object or bytes, whatever its format.

The format comes from the file name's suffix (the package's one suffix table,
`gaiarvs_cnn.utils.formats`), else from the content. Empty, header-only, truncated (zip,
gzip), binary and HDF5 content raises `~gaiarvs_cnn.exceptions.InputDataError` naming the
file.
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from astropy.io import votable
from astropy.io.registry import identify_format
from astropy.table import Table

from ..exceptions import InputDataError
from ..utils.formats import ASTROPY_FORMATS, format_from_suffix

__all__ = ["read_tables", "infer_format", "votable_element_to_table", "source_name"]

_FORMAT_ALIASES = {"csv": "ascii.csv", "ecsv": "ascii.ecsv", "xml": "votable",
                   "vot": "votable", "votable": "votable", "fits": "fits",
                   "ascii.csv": "ascii.csv", "ascii.ecsv": "ascii.ecsv"}


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_GZIP_MAGIC = b"\x1f\x8b"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


#: Formats taken from astropy's io-registry identifiers when the name has no known suffix.
_IDENTIFIED = ("fits", "votable")


def infer_format(name: str, head: bytes) -> str:
    """The astropy format of a file: from its name's suffix, else from its first bytes.

    Parameters
    ----------
    name : str
        File name (its suffix is looked up in `gaiarvs_cnn.utils.formats`).
    head : bytes
        The first bytes of the content (2 kB are enough).

    Returns
    -------
    str
        ``'fits'`` or ``'votable'`` when astropy's identifiers recognise the content
        (`astropy.io.registry.identify_format`), ``'ascii.ecsv'`` for an ECSV header line
        (astropy identifies ECSV by its suffix only), else ``'ascii.csv'``.
    """
    by_suffix = format_from_suffix(name)             # the package's one suffix table
    if by_suffix is not None:
        return ASTROPY_FORMATS[by_suffix]
    found = identify_format("read", Table, None, io.BytesIO(head), [], {})
    for fmt in _IDENTIFIED:
        if fmt in found:
            return fmt
    if head.lstrip().startswith(b"# %ECSV"):
        return "ascii.ecsv"
    return "ascii.csv"


def _check_content(data: bytes, name: str) -> bytes:
    """Refuse empty, zip, HDF5 and broken gzip content with a message naming ``name``."""
    if not data.strip():
        raise InputDataError(f"{name} is empty (no header, no rows); download the product "
                             "again.")
    if data.startswith(_ZIP_MAGIC):
        if zipfile.is_zipfile(io.BytesIO(data)):
            raise InputDataError(f"{name} is a zip archive: read it as a DataLink bundle "
                                 "(read_datalink_products or read_products).")
        raise InputDataError(f"{name} is an incomplete zip archive (truncated download?): "
                             "its table of contents is missing; download it again.")
    if data.startswith(_HDF5_MAGIC):
        raise InputDataError(f"{name} is an HDF5 file (a star store?), not a Gaia archive "
                             "product; open stores with gaiarvs_cnn.io.store.Store.")
    if data.startswith(_GZIP_MAGIC):
        import gzip

        try:
            return _check_content(gzip.decompress(data), name)
        except (OSError, EOFError) as exc:
            raise InputDataError(f"{name} is an incomplete gzip file (truncated download?): "
                                 f"{exc}.") from None
    return data


def _votable_tables(src) -> list[Table]:
    """All tables of a VOTable, with the TABLE's PARAMs merged into ``meta``."""
    return [votable_element_to_table(te)
            for te in votable.parse(src, verify="ignore").iter_tables()]


def votable_element_to_table(te) -> Table:
    table = te.to_table(use_names_over_ids=True)
    for param in getattr(te, "params", []):
        table.meta[param.name] = param.value
    return table


def _fits_tables(src) -> list[Table]:
    from astropy.io import fits

    with fits.open(src, memmap=False) as hdul:
        return [Table.read(hdu, format="fits") for hdu in hdul[1:]
                if isinstance(hdu, fits.BinTableHDU | fits.TableHDU)]


def read_tables(source, format: str | None = None, name: str | None = None) -> list[Table]:
    """Read every table of a file, file object or bytes (format inferred when None).

    Raises
    ------
    InputDataError
        Naming the file when it is empty, truncated, or cannot be read in the
        given/inferred format.
    """
    if isinstance(source, str | os.PathLike):
        name = name or str(source)
        if not Path(source).is_file():
            raise InputDataError(f"{name}: no such file.")
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise InputDataError(f"cannot read {name}: {exc.strerror or exc}.") from exc
    elif isinstance(source, bytes):
        data = source
    else:
        data = source.read()
        name = name or getattr(source, "name", "<file object>")
        data = data.encode() if isinstance(data, str) else data
    name = name or "<bytes>"
    fmt = _FORMAT_ALIASES.get(format, format) if format else infer_format(name, data[:2048])
    data = _check_content(data, name)
    if fmt not in ("fits", "votable"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputDataError(f"{name} is not a text table (byte {exc.start} is not "
                                 "UTF-8): a binary file, or a truncated or corrupted "
                                 "download? Check the file or pass format=.") from None
    try:
        if fmt == "fits":
            tables = _fits_tables(io.BytesIO(data))
        elif fmt == "votable":
            tables = _votable_tables(io.BytesIO(data))
        else:
            tables = [Table.read(text.splitlines(), format=fmt, guess=False)]
    except Exception as exc:  # any reader failure: name the file and the format
        raise InputDataError(f"Cannot read {name} as {fmt}: {exc}. Check the file is a "
                             "complete Gaia archive product or pass format=.") from exc
    if not tables:
        raise InputDataError(f"{name} holds no table (read as {fmt}); is it a Gaia archive "
                             "product?")
    return tables


def source_name(source) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    return getattr(source, "name", "<file object>")
