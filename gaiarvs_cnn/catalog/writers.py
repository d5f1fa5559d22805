"""Streaming catalogue writers: FITS, VOTable (BINARY2), ECSV and Parquet, one chunk at a time.

`open_writer` returns a context manager; each `CatalogWriter.write` appends the rows of one
chunk, so memory is bounded by one chunk whatever the number of stars. The file is written
under a temporary name (`gaiarvs_cnn.utils.atomic.atomic_path`) and renamed into place when
the ``with`` block ends normally; on an exception nothing at the final path changes.

What every format carries, so that a plain ``Table.read(path)`` returns the data model with
no warnings (the column's unit, description, UCD in ``col.meta['ucd']``, ``flag_boundary``
as 8-character `str`, provenance in ``Table.meta``):

FITS
    Primary HDU (provenance keywords) and a binary table. The header is written first with
    the final ``NAXIS2`` reserved and rewritten in place on close (same number of cards), the
    rows are appended as big-endian records. ``TUNITn`` is written where the unit is a FITS
    unit (``K``); ``dex`` and ``dex(cm/s2)`` are not FITS units (a ``TUNITn`` with them
    makes astropy warn), so those units travel in astropy's serialized-column header
    (``COMMENT --BEGIN-ASTROPY-SERIALIZED-COLUMNS--``, the mechanism of
    ``Table.write(format='fits')``), which also restores descriptions, UCDs and the text
    flag; other readers get ``TCOMMn`` (description, with the unit in brackets where no
    ``TUNITn``) and ``TUCDn``. Long strings use ``CONTINUE`` cards, declared by ``LONGSTRN``.
    The HDUs carry ``DATASUM``/``CHECKSUM``.
VOTable
    Version 1.3 (units in the CDS syntax of that version: ``K``, ``[cm/s2]``, ``[-]``, which
    astropy parses as ``u.K``, ``u.dex(u.cm / u.s**2)``, ``u.dex``), BINARY2 serialization:
    the base64 stream is written as rows arrive. Provenance: ``INFO`` elements, and the
    table ``DESCRIPTION`` (which ``Table.read`` puts in ``meta['description']``); the counts
    are ``INFO`` elements after the data.
ECSV
    astropy's ECSV header (YAML: units, descriptions, UCDs, provenance in ``meta``), then one
    line per star, written by `pyarrow.csv` (floats in their shortest exact form).
Parquet
    pyarrow row groups (`pyarrow.parquet.ParquetWriter`), astropy's ``table_meta_yaml``
    footer metadata (so ``Table.read`` restores units, descriptions and ``meta``).

All four formats stream; none has a size limit.
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from xml.sax.saxutils import quoteattr

import astropy.units as u
import numpy as np
from astropy import log
from astropy.io import fits
from astropy.table import Column, SerializedColumn, Table
from astropy.table import meta as table_meta
from astropy.utils.exceptions import AstropyWarning

from ..exceptions import GaiaRVSCNNError, InputDataError, OutputExistsError
from ..flags.boundary import GOOD_FLAG
from ..utils.atomic import atomic_path
from .datamodel import (
    FLAG_WIDTH,
    _check_columns,
    _provenance_meta,
    catalog_columns,
    datamodel,
    flag_text,
)
from .registry import CATALOG_FORMATS, format_of

__all__ = ["CatalogWriteError", "CatalogWriter", "FITSWriter", "VOTableWriter", "ECSVWriter",
           "ParquetWriter", "WRITERS", "open_writer", "register_writer", "write_catalog"]

#: Counts patched into a header on close are first written as these 15-digit placeholders.
_ROWS, _GOOD = 999_999_999_999_901, 999_999_999_999_902
_COUNT_WIDTH = 15


class CatalogWriteError(GaiaRVSCNNError, OSError):
    """Writing a catalogue failed (e.g. disk full); nothing was left under the final name."""


# ---------------------------------------------------------------------------------------
# the columns as each format stores them
# ---------------------------------------------------------------------------------------
def _is_fits_unit(unit: str) -> bool:
    try:
        u.Unit(unit).to_string("fits")
    except ValueError:
        return False
    return True


def _cds_unit(unit: str) -> str:
    """The unit in the CDS syntax of VOTable 1.3 (``[-]`` for dex, ``[cm/s2]`` for log g)."""
    un = u.Unit(unit)
    if un == u.dex:
        return "[-]"
    return un.to_string("cds")


def _flag_values(table: Table) -> np.ndarray:
    """``flag_boundary`` as 8-character text; a clear error naming the first bad star."""
    flags, bad = flag_text(table["flag_boundary"])
    if bad is not None:
        raise InputDataError(
            f"flag_boundary of source_id {table['source_id'][bad]} is "
            f"{str(flags[bad])!r}; a boundary flag is {FLAG_WIDTH} characters "
            "'0'/'1' (gaiarvs_cnn.flags.flag_boundary).")
    return flags


def _values(table: Table, spec: Mapping) -> np.ndarray:
    """A column as a plain array of its data-model dtype (masked floats become NaN)."""
    name = spec["name"]
    if name == "flag_boundary":
        return _flag_values(table)
    col = table[name]
    if getattr(col, "mask", None) is not None and np.any(col.mask):
        if spec["dtype"].startswith("float"):
            col = col.filled(np.nan)
        else:
            i = int(np.flatnonzero(col.mask)[0])
            raise InputDataError(f"Column {name} has a missing value at row {i}; a catalogue "
                                 f"{name} cannot be empty.")
    return np.asarray(col, dtype=spec["dtype"])


def _model_table(meta: Mapping | None = None, *, flag_dtype: str = "U8") -> Table:
    """An empty table of the 17 data-model columns with unit, description, UCD, format."""
    table = Table(meta=dict(meta or {}))
    for spec in catalog_columns():
        dtype = flag_dtype if spec["name"] == "flag_boundary" else spec["dtype"]
        table[spec["name"]] = Column(
            np.zeros(0, dtype), unit=u.Unit(spec["unit"]) if spec["unit"] else None,
            description=spec["description"], format="{:" + spec["format"] + "}",
            meta={"ucd": spec["ucd"]})
    return table


def _meta_value(value):
    return value if isinstance(value, int | float | str | bool) else json.dumps(value)


# ---------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------
class CatalogWriter:
    """Base class of the streaming catalogue writers (use `open_writer`).

    Parameters
    ----------
    path : path-like
        Final file name.
    meta : mapping, optional
        Provenance (``bundle_id``, ``bundle``, ``input_selection``, ``n_input`` or FITS-style
        keywords); the counts ``NSTARS`` and ``NGOOD`` are added on close.
    overwrite : bool, optional
        Replace an existing ``path`` (only once the new file is complete).
    client : `dask.distributed.Client`, optional
        Unused by single-file formats.
    """

    #: Format name (a key of `CATALOG_FORMATS`).
    format = ""
    #: Most rows the format can write (None: no limit, the format streams).
    max_rows: int | None = None

    def __init__(self, path, *, meta: Mapping | None = None, overwrite: bool = False,
                 client=None):
        self.path = Path(path)
        self.meta = _provenance_meta(meta or {})
        self.meta.pop("NSTARS", None)
        self.meta.pop("NGOOD", None)
        self.overwrite = overwrite
        self.client = client
        self.n_rows = 0
        self.n_good = 0
        self._stack: contextlib.ExitStack | None = None
        self.tmp: Path | None = None

    # -- context manager ----------------------------------------------------------------
    def __enter__(self):
        if self.path.exists() and not self.overwrite:
            raise OutputExistsError.for_path(self.path, what="catalogue")
        self._stack = contextlib.ExitStack()
        self.tmp = self._stack.enter_context(atomic_path(self.path))
        try:
            self._open()
        except BaseException as exc:
            self._fail(exc)
            raise self._wrap(exc) from exc
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._fail(exc)
            return False
        try:
            self._close()
        except BaseException as err:
            self._fail(err)
            raise self._wrap(err) from err
        try:
            self._stack.close()                      # renames the temporary file into place
        except OSError as err:
            raise self._wrap(err) from err
        log.info(f"Wrote {self.n_rows} stars to {self.path} ({self.format})")
        return False

    def _fail(self, exc) -> None:
        with contextlib.suppress(Exception):
            self._abort()
        self._stack.__exit__(type(exc), exc, exc.__traceback__)   # removes the temporary

    def _wrap(self, exc):
        if isinstance(exc, OSError) and not isinstance(exc, GaiaRVSCNNError):
            return CatalogWriteError(f"Could not write {self.path} ({exc}); nothing was "
                                     "written under that name. Free disk space or choose "
                                     "another output directory.")
        return exc

    # -- rows -------------------------------------------------------------------------
    def write(self, table: Table) -> None:
        """Append the rows of one chunk.

        Parameters
        ----------
        table : `~astropy.table.Table`
            The 17 data-model columns in order (`gaiarvs_cnn.catalog.build_catalog_table`).

        Raises
        ------
        InputDataError
            If the columns differ from the data model or a flag is not 8 characters.
        CatalogWriteError
            If writing fails (e.g. disk full).
        """
        if self._stack is None:
            raise RuntimeError("Use the writer as a context manager: "
                               "`with open_writer(path) as w: w.write(table)`.")
        _check_columns(table)
        if self.max_rows is not None and self.n_rows + len(table) > self.max_rows:
            raise InputDataError(
                f"The {self.format} writer holds at most {self.max_rows} rows; "
                "write a catalogue this large as Parquet (format='parquet') or HATS.")
        columns = {spec["name"]: _values(table, spec) for spec in catalog_columns()}
        try:
            self._append(columns, len(table))
        except OSError as exc:
            raise self._wrap(exc) from exc
        self.n_rows += len(table)
        self.n_good += int(np.count_nonzero(columns["flag_boundary"] == GOOD_FLAG))

    def counts(self) -> dict:
        """``NSTARS`` and ``NGOOD`` so far."""
        return {"NSTARS": self.n_rows, "NGOOD": self.n_good}

    # -- per format -------------------------------------------------------------------
    def _open(self) -> None:
        raise NotImplementedError

    def _append(self, columns: dict, n: int) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _abort(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()


class _PatchedHeaderWriter(CatalogWriter):
    """A writer whose header holds count placeholders, patched in place on close."""

    def _write_header(self, header: bytes) -> None:
        self._patches = []
        for value in (_ROWS, _GOOD):
            token = str(value).encode()
            start = header.find(token)
            while start >= 0:
                self._patches.append((start, value))
                start = header.find(token, start + 1)
        self._fh = open(self.tmp, "wb")
        self._fh.write(header)

    def _patch_counts(self) -> None:
        actual = {_ROWS: self.n_rows, _GOOD: self.n_good}
        for offset, value in self._patches:
            self._fh.seek(offset)
            self._fh.write(f"{actual[value]:>{_COUNT_WIDTH}d}".encode())
        self._fh.seek(0, io.SEEK_END)


class FITSWriter(CatalogWriter):
    """FITS: primary HDU with provenance, then a binary table appended row by row."""

    format = "fits"

    def _headers(self) -> tuple[fits.Header, fits.Header]:
        specs = catalog_columns()
        tform = {"int64": "K", "float32": "E", "str8": f"{FLAG_WIDTH}A"}
        cols = [fits.Column(name=s["name"], format=tform[s["dtype"]],
                            unit=s["unit"] if s["unit"] and _is_fits_unit(s["unit"]) else None)
                for s in specs]
        table_hdr = fits.BinTableHDU.from_columns(cols, nrows=0).header
        table_hdr["NAXIS2"] = self.n_rows
        for i, spec in enumerate(specs, start=1):
            last = f"TUNIT{i}" if f"TUNIT{i}" in table_hdr else f"TFORM{i}"
            text = spec["description"]
            if spec["unit"] and f"TUNIT{i}" not in table_hdr:
                text += f" [{spec['unit']}]"
            table_hdr.insert(last, (f"TCOMM{i}", text), after=True)
            table_hdr.insert(f"TCOMM{i}", (f"TUCD{i}", spec["ucd"], "UCD"), after=True)
        table_hdr["EXTNAME"] = (datamodel()["name"].upper(), "gaiarvs-cnn catalogue")
        primary = fits.PrimaryHDU().header
        primary["EXTEND"] = True
        comments = datamodel()["provenance_keywords"]
        meta = {**self.meta, **self.counts()}
        for hdr in (primary, table_hdr):
            hdr["LONGSTRN"] = ("OGIP 1.0", "The OGIP long string convention may be used")
            for key, value in meta.items():
                value = _meta_value(value)
                comment = comments.get(key, "")
                fits_card = len(str(value)) + len(comment) <= 60
                hdr[key] = (value, comment) if fits_card else value
        for line in _serialized_column_comments():
            table_hdr.add_comment(line)
        for hdr in (primary, table_hdr):
            hdr["DATASUM"] = ("0" * 10, "data unit checksum")
            hdr["CHECKSUM"] = ("0" * 16, "HDU checksum")
        return primary, table_hdr

    def _open(self) -> None:
        primary, table_hdr = self._headers()
        self._sizes = (len(primary.tostring()), len(table_hdr.tostring()))
        self._fh = open(self.tmp, "wb")
        self._fh.write(_with_checksum(primary, 0).tostring().encode("ascii"))
        self._fh.write(table_hdr.tostring().encode("ascii"))
        self._dtype = np.dtype([(s["name"], {"int64": ">i8", "float32": ">f4",
                                             "str8": f"S{FLAG_WIDTH}"}[s["dtype"]])
                                for s in catalog_columns()])
        self._datasum = 0
        self._nbytes = 0

    def _append(self, columns: dict, n: int) -> None:
        rec = np.empty(n, self._dtype)
        for name, values in columns.items():
            rec[name] = np.char.encode(values, "ascii") if values.dtype.kind == "U" else values
        data = rec.tobytes()
        self._datasum = _ones_complement_sum(data, self._datasum)
        self._nbytes += len(data)
        self._fh.write(data)

    def _close(self) -> None:
        pad = -self._nbytes % 2880                    # FITS blocks are 2880 bytes
        self._fh.write(b"\0" * pad)
        primary, table_hdr = self._headers()
        primary_bytes = _with_checksum(primary, 0).tostring().encode("ascii")
        table_bytes = _with_checksum(table_hdr, self._datasum).tostring().encode("ascii")
        if (len(primary_bytes), len(table_bytes)) != self._sizes:  # pragma: no cover
            raise RuntimeError("FITS header size changed between open and close.")
        self._fh.seek(0)
        self._fh.write(primary_bytes)
        self._fh.write(table_bytes)
        self._fh.close()


def _serialized_column_comments() -> list[str]:
    """astropy's serialized-column YAML, split into COMMENT cards as `Table.write` does.

    It restores, on `~astropy.table.Table.read`: descriptions and UCDs (``datatype``),
    the ``dex`` units that FITS cannot hold (as `~astropy.units.Quantity` columns, which a
    `~astropy.table.Table` turns back into columns with that unit) and ``flag_boundary`` as
    text (a `~astropy.table.Column` of dtype ``U8`` built from the ``8A`` bytes).
    """
    table = _model_table(flag_dtype=f"S{FLAG_WIDTH}")
    serialized = {}
    for spec in catalog_columns():
        name = spec["name"]
        if spec["unit"] and not _is_fits_unit(spec["unit"]):
            unit = u.Unit(spec["unit"])
            cls = ("function.logarithmic.Dex" if isinstance(unit, u.FunctionUnitBase)
                   else "quantity.Quantity")
            serialized[name] = {"__class__": f"astropy.units.{cls}", "unit": unit,
                                "value": SerializedColumn({"name": name})}
        elif name == "flag_boundary":
            serialized[name] = {"__class__": "astropy.table.column.Column",
                                "data": SerializedColumn({"name": name}),
                                "dtype": f"U{FLAG_WIDTH}"}
    table.meta = {"__serialized_columns__": serialized}
    lines = ["--BEGIN-ASTROPY-SERIALIZED-COLUMNS--"]
    for line in table_meta.get_yaml_from_table(table):
        if not line:
            lines.append("")
            continue
        pieces = [line[i:i + 70] for i in range(0, len(line), 70)]
        lines.extend([p + "\\" for p in pieces[:-1]] + [pieces[-1]])
    lines.append("--END-ASTROPY-SERIALIZED-COLUMNS--")
    return lines


def _ones_complement_sum(data: bytes, sum32: int = 0) -> int:
    """32-bit ones-complement sum of big-endian words (FITS checksum convention)."""
    words = np.frombuffer(data, dtype=">u4", count=len(data) // 4)
    total = int(sum32) + int(words.sum(dtype=np.uint64))
    if len(data) % 4:                                    # rows here are 4-byte multiples
        tail = data[len(data) // 4 * 4:] + b"\0" * (4 - len(data) % 4)
        total += int.from_bytes(tail, "big")
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


_CHECKSUM_EXCLUDE = frozenset(b":;<=>?@[\\]^_`")


def _encode_checksum(value: int) -> str:
    """The 16-character ASCII encoding of a checksum (FITS checksum convention, A.7.2)."""
    asc = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        quotient, remainder = byte // 4 + ord("0"), byte % 4
        ch = [quotient + remainder, quotient, quotient, quotient]
        check = True
        while check:
            check = False
            for j in (0, 2):
                while ch[j] in _CHECKSUM_EXCLUDE or ch[j + 1] in _CHECKSUM_EXCLUDE:
                    ch[j] += 1
                    ch[j + 1] -= 1
                    check = True
        for j in range(4):
            asc[4 * j + i] = ch[j]
    text = bytes(asc)
    return (text[-1:] + text[:-1]).decode("ascii")     # rotate right by one


def _with_checksum(header: fits.Header, datasum: int) -> fits.Header:
    """``header`` with ``DATASUM`` and ``CHECKSUM`` for data of ones-complement sum ``datasum``."""
    header = header.copy()
    header["DATASUM"] = str(datasum)
    header["CHECKSUM"] = "0" * 16
    total = _ones_complement_sum(header.tostring().encode("ascii"), datasum)
    header["CHECKSUM"] = _encode_checksum(~total & 0xFFFFFFFF)
    return header


class VOTableWriter(_PatchedHeaderWriter):
    """VOTable 1.3, BINARY2 serialization, the base64 stream written as rows arrive."""

    format = "votable"
    _OPEN_TAG = b'<STREAM encoding="base64">'

    def _open(self) -> None:
        from astropy.io.votable import from_table
        from astropy.io.votable.tree import Info

        specs = catalog_columns()
        template = _model_table(flag_dtype=f"S{FLAG_WIDTH}")
        template.add_row()                 # astropy writes no DATA element for no rows
        vot = from_table(template)
        vot.version = "1.3"
        resource = vot.resources[0]
        vtab = resource.tables[0]
        vtab.name = datamodel()["name"]
        vtab.description = _description(self.meta)
        for field, spec in zip(vtab.fields, specs):
            field.ucd = spec["ucd"]
            field.description = spec["description"]
            field._unit = u.UnrecognizedUnit(_cds_unit(spec["unit"])) if spec["unit"] else None
            if spec["name"] == "flag_boundary":
                field.datatype, field.arraysize = "char", str(FLAG_WIDTH)
        for key, value in self.meta.items():
            resource.infos.append(Info(name=key, value=str(_meta_value(value))))
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            vot.to_xml(buf, tabledata_format="binary2")
        # astropy wraps DESCRIPTION text over lines; keep each one on one line so that a
        # reader gets the description exactly
        text = re.sub(rb"<DESCRIPTION>\s*(.*?)\s*</DESCRIPTION>",
                      lambda m: b"<DESCRIPTION>" + b" ".join(m.group(1).split()) +
                      b"</DESCRIPTION>", buf.getvalue(), flags=re.DOTALL)
        start = text.index(self._OPEN_TAG) + len(self._OPEN_TAG)
        self._tail = text[text.index(b"</STREAM>", start):]
        self._write_header(text[:start] + b"\n")
        n_null = (len(specs) + 7) // 8
        self._dtype = np.dtype([("__null__", f"V{n_null}")] + [
            (s["name"], {"int64": ">i8", "float32": ">f4", "str8": f"S{FLAG_WIDTH}"}[s["dtype"]])
            for s in specs])
        self._carry = b""

    def _append(self, columns: dict, n: int) -> None:
        rec = np.zeros(n, self._dtype)
        for name, values in columns.items():
            rec[name] = np.char.encode(values, "ascii") if values.dtype.kind == "U" else values
        data = self._carry + rec.tobytes()
        cut = len(data) // 3 * 3
        self._carry = data[cut:]
        self._fh.write(base64.b64encode(data[:cut]) + b"\n")

    def _close(self) -> None:
        self._fh.write(base64.b64encode(self._carry))
        end = self._tail.index(b"</DATA>") + len(b"</DATA>")
        infos = "".join(f'\n   <INFO name={quoteattr(k)} value="{v}"/>'
                        for k, v in self.counts().items()).encode()
        self._fh.write(self._tail[:end] + infos + self._tail[end:])
        self._patch_counts()
        self._fh.close()


def _description(meta: Mapping) -> str:
    """Table description with the provenance (``Table.read`` puts it in ``meta``)."""
    items = {**meta, "NSTARS": _ROWS, "NGOOD": _GOOD}
    return datamodel()["title"] + ". Provenance: " + "; ".join(
        f"{k} = {_meta_value(v)}" for k, v in items.items()) + "."


class ECSVWriter(_PatchedHeaderWriter):
    """ECSV: astropy's YAML header, then one space-separated line per star."""

    format = "ecsv"

    def _open(self) -> None:
        table = _model_table({**self.meta, "NSTARS": _ROWS, "NGOOD": _GOOD})
        buf = io.StringIO()
        table.write(buf, format="ascii.ecsv")
        self._write_header(buf.getvalue().encode("utf-8"))

    def _append(self, columns: dict, n: int) -> None:
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        # Arrow writes each float in its shortest exact form (a float32 reads back equal);
        # the flags are digits only, so no value needs quoting.
        pa_csv.write_csv(pa.table(columns), self._fh, pa_csv.WriteOptions(
            include_header=False, delimiter=" ", quoting_style="none"))

    def _close(self) -> None:
        self._patch_counts()
        self._fh.close()


class ParquetWriter(CatalogWriter):
    """Parquet: pyarrow row groups, astropy's ``table_meta_yaml`` footer metadata."""

    format = "parquet"
    #: Rows buffered per Parquet row group (about 10 MB of catalogue).
    row_group_rows = 1 << 17

    def _open(self) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise InputDataError(f"Writing {self.path} (Parquet) needs pyarrow: "
                                 "`pip install pyarrow`, or choose another format.") from exc
        self._pa = pa
        types = {"int64": pa.int64(), "float32": pa.float32(), "str8": pa.string()}
        self._schema = pa.schema([(s["name"], types[s["dtype"]]) for s in catalog_columns()])
        # The footer's key-value metadata is written on close (it holds the counts); without
        # a stored Arrow schema, readers take the schema metadata from it.
        self._writer = pq.ParquetWriter(self.tmp, self._schema, version="2.6",
                                        store_schema=False)
        self._buffer: list[dict] = []
        self._buffered = 0

    def _append(self, columns: dict, n: int) -> None:
        self._buffer.append(columns)
        self._buffered += n
        if self._buffered >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        arrays = [self._pa.array(np.concatenate([c[name] for c in self._buffer]),
                                 type=self._schema.field(name).type)
                  for name in self._schema.names]
        self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema))
        self._buffer, self._buffered = [], 0

    def _close(self) -> None:
        self._flush()
        table = _model_table({**self.meta, **self.counts()})
        yaml = "\n".join(table_meta.get_yaml_from_table(table))
        self._writer.add_key_value_metadata({"table_meta_yaml": yaml,
                                             "table::len::flag_boundary": str(FLAG_WIDTH)})
        self._writer.close()

    def _abort(self) -> None:
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.close()


#: Format name -> writer class (`register_writer` adds partitioned formats).
WRITERS: dict[str, type[CatalogWriter]] = {"fits": FITSWriter, "votable": VOTableWriter,
                                           "ecsv": ECSVWriter, "parquet": ParquetWriter}


def register_writer(name: str, writer: type[CatalogWriter]) -> None:
    """Register the writer class of a catalogue format (see `registry.register_format`)."""
    if name not in CATALOG_FORMATS:
        raise InputDataError(f"Register the format '{name}' (register_format) first.")
    WRITERS[name] = writer


def open_writer(path, format: str | None = None, *, meta: Mapping | None = None,
                overwrite: bool = False, client=None) -> CatalogWriter:
    """A streaming writer of a catalogue file (use it as a context manager).

    Parameters
    ----------
    path : path-like
        Destination; the format is taken from the suffix unless ``format`` is given.
    format : str, optional
        A name of `CATALOG_FORMATS` (``'fits'``, ``'votable'``, ``'ecsv'``, ``'parquet'``).
    meta : mapping, optional
        Provenance (``bundle_id``, ``bundle``, ``input_selection``, ``n_input``, ...) that a
        reader finds in ``Table.meta``; ``NSTARS``/``NGOOD`` are counted by the writer.
    overwrite : bool, optional
        Replace an existing file (only once the new one is complete).
    client : `dask.distributed.Client`, optional
        For partitioned formats only.

    Returns
    -------
    CatalogWriter
        ``with open_writer(path) as w: w.write(chunk)`` for each chunk table.

    Raises
    ------
    OutputExistsError
        On entering the block, if ``path`` exists and ``overwrite`` is False.
    CatalogWriteError
        If writing fails; nothing at ``path`` changes.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from gaiarvs_cnn.catalog import build_catalog_table, catalog_columns, read_catalog
    >>> names = [c["name"] for c in catalog_columns()[:-1]]
    >>> chunk = build_catalog_table({name: np.arange(2) for name in names},
    ...                             np.array(["00000000", "00000010"]))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cat.parquet"
    >>> with open_writer(path, meta={"bundle_id": "demo"}) as w:
    ...     w.write(chunk)
    ...     w.write(chunk)
    INFO: Wrote 4 stars to ...cat.parquet (parquet) [gaiarvs_cnn.catalog.writers]
    >>> len(read_catalog(path))
    4
    """
    fmt = format_of(path, format)
    return WRITERS[fmt](path, meta=meta, overwrite=overwrite, client=client)


def write_catalog(table: Table, path, format: str | None = None, overwrite: bool = False,
                  provenance: Mapping | None = None) -> Path:
    """Write a catalogue table atomically in one go (FITS, VOTable, ECSV or Parquet).

    Parameters
    ----------
    table : `~astropy.table.Table`
        From `build_catalog_table` (the 17 data-model columns, in order); its ``meta``
        is written as provenance.
    path : path-like
        Destination; the format is taken from the suffix unless ``format`` is given.
    format : str, optional
        A name of `CATALOG_FORMATS`.
    overwrite : bool
        Replace an existing file (only once the new one is complete).
    provenance : mapping, optional
        Extra provenance (``bundle_id``, ``bundle``, ``input_selection``, ``n_input``, ...).

    Returns
    -------
    Path

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    CatalogWriteError
        If writing fails (e.g. disk full); any earlier catalogue under ``path`` is untouched.
    """
    _check_columns(table)
    meta = {k: v for k, v in table.meta.items() if k not in ("comments", "NSTARS", "NGOOD")}
    meta.update(provenance or {})
    with open_writer(path, format, meta=meta, overwrite=overwrite) as writer:
        writer.write(table)
    return Path(path)
