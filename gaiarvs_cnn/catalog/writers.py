"""Streaming catalogue writers: the base class, the format registry, `open_writer`, `write_catalog`.

`open_writer` returns a context manager; each `CatalogWriter.write` appends the rows of one
chunk, so memory is bounded by one chunk whatever the number of stars. The file is written
under a temporary name (`gaiarvs_cnn.utils.atomic.atomic_path`) and renamed into place when
the ``with`` block ends normally; on an exception nothing at the final path changes.

What every format carries, so that a plain ``Table.read(path)`` returns the data model with
no warnings: the column's unit, description, UCD in ``col.meta['ucd']``, ``flag_boundary``
as 8-character `str`, provenance in ``Table.meta``. One module per format says how:
`gaiarvs_cnn.catalog.fits`, `gaiarvs_cnn.catalog.votable`, `gaiarvs_cnn.catalog.ecsv`,
`gaiarvs_cnn.catalog.parquet` (and the partitioned `gaiarvs_cnn.catalog.hats`); each
registers its writer here. All formats stream; none has a size limit.
"""
from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy import log
from astropy.table import Column, Table

from ..exceptions import GaiaRVSCNNError, InputDataError, OutputExistsError
from ..flags.boundary import GOOD_FLAG
from ..utils.arrays import masked_to_nan
from ..utils.atomic import atomic_path
from .datamodel import FLAG_WIDTH, _check_columns, _provenance_meta, catalog_columns, flag_text
from .registry import CATALOG_FORMATS, format_of

__all__ = ["CatalogWriteError", "CatalogWriter", "PatchedHeaderWriter", "WRITERS",
           "open_writer", "register_writer", "write_catalog", "model_table", "meta_value"]

#: Counts patched into a header on close are first written as these 15-digit placeholders.
ROWS_PLACEHOLDER, GOOD_PLACEHOLDER = 999_999_999_999_901, 999_999_999_999_902
_COUNT_WIDTH = 15


class CatalogWriteError(GaiaRVSCNNError, OSError):
    """Writing a catalogue failed (e.g. disk full); nothing was left under the final name."""


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
            col = masked_to_nan(col, spec["dtype"])
        else:
            i = int(np.flatnonzero(col.mask)[0])
            raise InputDataError(f"Column {name} has a missing value at row {i}; a catalogue "
                                 f"{name} cannot be empty.")
    return np.asarray(col, dtype=spec["dtype"])


def model_table(meta: Mapping | None = None, *, flag_dtype: str = "U8") -> Table:
    """An empty table of the 17 data-model columns with unit, description, UCD, format."""
    table = Table(meta=dict(meta or {}))
    for spec in catalog_columns():
        dtype = flag_dtype if spec["name"] == "flag_boundary" else spec["dtype"]
        table[spec["name"]] = Column(
            np.zeros(0, dtype), unit=u.Unit(spec["unit"]) if spec["unit"] else None,
            description=spec["description"], format="{:" + spec["format"] + "}",
            meta={"ucd": spec["ucd"]})
    return table


def meta_value(value):
    """A provenance value as a FITS/VOTable scalar (JSON text for anything else)."""
    return value if isinstance(value, int | float | str | bool) else json.dumps(value)


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
            raise OutputExistsError(self.path, what="catalogue")
        self._stack = contextlib.ExitStack()
        self.tmp = self._stack.enter_context(atomic_path(self.path))
        self._or_fail(self._open)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self._fail(exc)
            return False
        self._or_fail(self._close)
        assert self._stack is not None               # set by __enter__
        try:
            self._stack.close()                      # renames the temporary file into place
        except OSError as err:
            raise self._wrap(err) from err
        log.info(f"Wrote {self.n_rows} stars to {self.path} ({self.format})")
        return False

    def _or_fail(self, step: Callable[[], None]) -> None:
        """Run ``step``; if it raises, abort, remove the temporary file and raise `_wrap`."""
        try:
            step()
        except BaseException as exc:
            self._fail(exc)
            raise self._wrap(exc) from exc

    def _fail(self, exc) -> None:
        with contextlib.suppress(Exception):
            self._abort()
        if self._stack is not None:
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


class PatchedHeaderWriter(CatalogWriter):
    """A writer whose header holds count placeholders, patched in place on close."""

    def _write_header(self, header: bytes) -> None:
        self._patches = []
        for value in (ROWS_PLACEHOLDER, GOOD_PLACEHOLDER):
            token = str(value).encode()
            start = header.find(token)
            while start >= 0:
                self._patches.append((start, value))
                start = header.find(token, start + 1)
        assert self.tmp is not None                  # set by __enter__
        self._fh = open(self.tmp, "wb")
        self._fh.write(header)

    def _patch_counts(self) -> None:
        actual = {ROWS_PLACEHOLDER: self.n_rows, GOOD_PLACEHOLDER: self.n_good}
        for offset, value in self._patches:
            self._fh.seek(offset)
            self._fh.write(f"{actual[value]:>{_COUNT_WIDTH}d}".encode())
        self._fh.seek(0, io.SEEK_END)


#: Format name -> writer class; each format's module registers its writer (`register_writer`).
WRITERS: dict[str, type] = {}


def register_writer(name: str, writer: type) -> None:
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
