"""HATS: the catalogue as a HEALPix-partitioned Parquet collection, for LSDB cross-matches.

HATS (Hierarchical Adaptive Tiling Scheme) is the layout written by ``hats-import`` and read
by `lsdb <https://docs.lsdb.io>`_: a directory ``<name>/`` with ``hats.properties``,
``partition_info.csv``, ``dataset/_metadata`` and one Parquet file per HEALPix pixel,
``dataset/Norder=<k>/Dir=<d>/Npix=<n>.parquet``, each sorted by the ``_healpix_29`` spatial
index. Pixels are split until none holds more than ``pixel_threshold`` stars (so dense
fields get small pixels). With it a user cross-matches our labels with Gaia DR3, APOGEE or
GALAH in LSDB at scale::

    import lsdb
    ours = lsdb.open_catalog("gaiarvs_cnn_catalog")
    matched = ours.crossmatch(lsdb.open_catalog("https://data.lsdb.io/hats/gaia_dr3"),
                              radius_arcsec=1).compute()

`HATSWriter` streams: each chunk (the 17 data-model columns plus ``ra`` and ``dec`` of the
store, degrees, ICRS epoch 2016.0) is staged as one Parquet file; on close, hats-import's
map-reduce pipeline (`hats_import.pipeline_with_client`) bins the staged rows, splits them
into pixels and writes the catalogue, on the given `dask.distributed.Client` (an in-process
one otherwise). No step gathers the catalogue: memory is bounded by one chunk while
writing and by one pixel (``pixel_threshold`` rows) while reducing. With a distributed
client, the output directory must be on a file system the workers share.

Columns: ``source_id``, ``ra``, ``dec``, then the 16 other data-model columns in order
(``flag_boundary`` as a string), and the index ``_healpix_29``. Provenance (``meta``), the
star counts (``gaiarvs_cnn_nstars``, ``gaiarvs_cnn_ngood``) and the units of the columns
(``gaiarvs_cnn_units``, JSON) are written to ``hats.properties`` as ``gaiarvs_cnn_*`` keys;
`read_hats` returns them in ``Table.meta``. (A Gaia DR3 ``source_id`` also encodes its
HEALPix level-12 pixel, ``source_id // 34359738368``; the positions used here are the
store's ``ra``/``dec``, which place each star in its exact order-29 pixel.)

Needs the optional dependencies ``pip install "gaiarvs-cnn[hats]"`` (hats, hats-import).
"""
from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy import log
from astropy.table import Table

from ..exceptions import InputDataError, OutputExistsError
from ..utils.atomic import replace_directory, temporary_path

__all__ = ["HATSWriter", "read_hats", "HATS_POSITION_COLUMNS", "GAIA_HEALPIX12_DIVISOR"]

#: The store columns a HATS catalogue needs besides the data model (degrees).
HATS_POSITION_COLUMNS = ("ra", "dec")
#: ``source_id // GAIA_HEALPIX12_DIVISOR`` is a Gaia source's nested HEALPix level-12 pixel.
GAIA_HEALPIX12_DIVISOR = 34359738368
_PROPERTY_PREFIX = "gaiarvs_cnn_"
_STAGING = "staging"


def _hats_import():
    try:
        from hats_import.catalog.arguments import ImportArguments
        from hats_import.pipeline import pipeline_with_client
    except ImportError as exc:
        raise InputDataError(
            "Writing a HATS catalogue needs the hats and hats-import packages: "
            "`pip install \"gaiarvs-cnn[hats]\"`, or choose another format (Parquet).") from exc
    return ImportArguments, pipeline_with_client


def _columns() -> list[dict]:
    from .datamodel import catalog_columns

    return catalog_columns()


def _output_names() -> list[str]:
    names = [c["name"] for c in _columns()]
    return [names[0], *HATS_POSITION_COLUMNS, *names[1:]]


def _arrow_schema():
    import pyarrow as pa

    types = {"int64": pa.int64(), "float32": pa.float32(), "float64": pa.float64(),
             "str8": pa.string()}
    fields = {c["name"]: types[c["dtype"]] for c in _columns()}
    fields.update({name: pa.float64() for name in HATS_POSITION_COLUMNS})
    return pa.schema([(name, fields[name]) for name in _output_names()])


def _property_value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return " ".join(text.split())          # one line: hats.properties is key=value per line


class HATSWriter:
    """Streaming writer of a HATS catalogue directory (use it as a context manager).

    Parameters
    ----------
    path : path-like
        The catalogue directory (its name is the catalogue name, ``obs_collection``).
    meta : mapping, optional
        Provenance, written to ``hats.properties`` (see the module documentation).
    overwrite : bool, optional
        Replace an existing directory (only once the new catalogue is complete).
    client : `dask.distributed.Client`, optional
        Where hats-import runs; default an in-process client with ``conf.threads``
        threads (all cores when 0).
    pixel_threshold : int, optional
        Most stars per HEALPix pixel file (default `pixel_threshold`).
    highest_order : int, optional
        Deepest HEALPix order of a partition (default `highest_order`).

    Examples
    --------
    >>> with HATSWriter("gaiarvs_cnn_catalog") as w:          # doctest: +SKIP
    ...     for chunk in chunks:      # 17 data-model columns + the store's ra, dec
    ...         w.write(chunk)
    """

    #: Format name (a key of ``CATALOG_FORMATS``).
    format = "hats"
    #: A partitioned format streams: no row limit.
    max_rows = None
    #: Default most stars per pixel file (hats-import's default is 10^6).
    pixel_threshold = 1_000_000
    #: Default deepest HEALPix order of a pixel file (order 10: 3.4 arcmin pixels).
    highest_order = 10

    def __init__(self, path, *, meta: Mapping | None = None, overwrite: bool = False,
                 client=None, pixel_threshold: int | None = None,
                 highest_order: int | None = None):
        self.path = Path(path)
        self.meta = dict(meta or {})
        self.overwrite = overwrite
        self.client = client
        if pixel_threshold is not None:
            self.pixel_threshold = int(pixel_threshold)
        if highest_order is not None:
            self.highest_order = int(highest_order)
        self.n_rows = 0
        self.n_good = 0
        self.tmp: Path | None = None
        self._staged: list[Path] = []
        self.seconds: dict[str, float] = {"stage": 0.0, "import": 0.0}

    # -- context manager ----------------------------------------------------------------
    def __enter__(self) -> HATSWriter:
        if self.path.exists() and not self.overwrite:
            raise OutputExistsError(self.path, what="HATS catalogue")
        _hats_import()                               # fail before any work is done
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = temporary_path(self.path)
        (self.tmp / _STAGING).mkdir(parents=True)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._finish()
                log.info(f"Wrote {self.n_rows} stars to {self.path} (hats)")
        finally:
            if self.tmp is not None:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    # -- rows -------------------------------------------------------------------------
    def write(self, table: Table) -> None:
        """Stage the rows of one chunk (one Parquet file).

        Parameters
        ----------
        table : `~astropy.table.Table`
            The 17 data-model columns and the store's ``ra`` and ``dec`` (deg).

        Raises
        ------
        InputDataError
            If a column is missing or a star has no finite position (naming it).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.tmp is None:
            raise RuntimeError("Use the writer as a context manager: "
                               "`with HATSWriter(path) as w: w.write(table)`.")
        t0 = time.perf_counter()
        missing = [n for n in _output_names() if n not in table.colnames]
        if missing:
            raise InputDataError(
                f"A HATS catalogue chunk lacks column(s) {missing}; HATS partitions the sky "
                "by position, so each chunk needs the 17 data-model columns and the store's "
                "'ra' and 'dec' (deg).")
        schema = _arrow_schema()
        arrays = []
        for name in schema.names:
            col = table[name]
            values = np.asarray(getattr(col, "value", col))
            if name == "flag_boundary":
                values = np.char.decode(values, "ascii") if values.dtype.kind == "S" else values
                arrays.append(pa.array(values.astype(str), type=pa.string()))
                continue
            mask = np.ma.getmaskarray(col) if np.ma.isMaskedArray(col) else None
            arrays.append(pa.array(np.asarray(values, dtype=schema.field(name).type
                                              .to_pandas_dtype()), mask=mask,
                                   type=schema.field(name).type))
        pos_ok = np.isfinite(np.asarray(table["ra"], float)) & np.isfinite(
            np.asarray(table["dec"], float))
        if not pos_ok.all():
            bad = np.asarray(table["source_id"])[~pos_ok][:10].tolist()
            raise InputDataError(f"source_id(s) {bad} have no finite ra/dec; a HATS catalogue "
                                 "places every star by position. Remove them or use Parquet.")
        path = self.tmp / _STAGING / f"chunk_{len(self._staged):06d}.parquet"
        pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)
        self._staged.append(path)
        self.n_rows += len(table)
        self.n_good += int(np.count_nonzero(arrays[schema.names.index("flag_boundary")]
                                            .to_numpy(zero_copy_only=False) == "00000000"))
        self.seconds["stage"] += time.perf_counter() - t0

    def counts(self) -> dict:
        """``NSTARS`` and ``NGOOD`` so far."""
        return {"NSTARS": self.n_rows, "NGOOD": self.n_good}

    # -- finishing ----------------------------------------------------------------------
    def _properties(self) -> dict[str, str]:
        units = {c["name"]: c["unit"] for c in _columns() if c["unit"]}
        units.update({name: "deg" for name in HATS_POSITION_COLUMNS})
        props = {f"{_PROPERTY_PREFIX}{k}".lower(): _property_value(v)
                 for k, v in self.meta.items()}
        props.update({f"{_PROPERTY_PREFIX}nstars": str(self.n_rows),
                      f"{_PROPERTY_PREFIX}ngood": str(self.n_good),
                      f"{_PROPERTY_PREFIX}units": _property_value(units)})
        return props

    def _finish(self) -> None:
        if not self._staged:                       # hats-import needs at least one row
            raise InputDataError(f"No stars were written to {self.path}; a HATS catalogue "
                                 "needs at least one star.")
        ImportArguments, pipeline_with_client = _hats_import()
        t0 = time.perf_counter()
        assert self.tmp is not None                  # set by __enter__
        out = self.tmp / "out"
        args = ImportArguments(
            output_path=str(out), output_artifact_name=self.path.name,
            input_file_list=[str(p) for p in self._staged], file_reader="parquet",
            ra_column="ra", dec_column="dec", sort_columns="source_id",
            pixel_threshold=self.pixel_threshold, highest_healpix_order=self.highest_order,
            expected_total_rows=self.n_rows, tmp_dir=str(self.tmp / "work"), resume=False,
            progress_bar=False, addl_hats_properties=self._properties())
        with self._client() as client:
            pipeline_with_client(args, client)
        replace_directory(out / self.path.name, self.path)
        self.seconds["import"] += time.perf_counter() - t0

    @contextlib.contextmanager
    def _client(self):
        if self.client is not None:
            yield self.client
            return
        import os

        from dask.distributed import Client, LocalCluster

        from ..settings import conf

        threads = int(conf.threads) if int(conf.threads) > 0 else (os.cpu_count() or 1)
        # in-process (threads, no worker processes), no dashboard
        with LocalCluster(processes=False, n_workers=1, threads_per_worker=threads,
                          dashboard_address=None) as cluster, \
                Client(cluster) as client:
            yield client


def read_hats(path) -> Table:
    """Read a HATS catalogue written by `HATSWriter` into one astropy Table.

    Meant for checks and small catalogues (it gathers every pixel); use
    ``lsdb.open_catalog(path)`` for large ones.

    Parameters
    ----------
    path : path-like
        The catalogue directory.

    Returns
    -------
    `~astropy.table.Table`
        Rows sorted by ``source_id``; columns as written (without ``_healpix_29``), with
        their units; ``meta`` holds the ``gaiarvs_cnn_*`` properties (prefix removed).
    """
    import astropy.units as u
    import pyarrow.dataset as ds

    path = Path(path)
    props_file = path / "hats.properties"
    if not props_file.exists():
        raise InputDataError(f"{path} is not a HATS catalogue (no hats.properties).")
    props = {}
    for line in props_file.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    names = _output_names()
    data = ds.dataset(path / "dataset", format="parquet", partitioning="hive",
                      exclude_invalid_files=True).to_table(columns=names)
    table = Table({n: data[n].to_numpy(zero_copy_only=False) for n in names})
    table.sort("source_id")
    meta = {k[len(_PROPERTY_PREFIX):]: v for k, v in props.items()
            if k.startswith(_PROPERTY_PREFIX)}
    units = json.loads(meta.pop("units", "{}"))
    for name, unit in units.items():
        if name in table.colnames:
            table[name].unit = u.Unit(unit, parse_strict="silent")
    table.meta.update(meta)
    return table


def _register() -> None:
    from .registry import register_format
    from .writers import register_writer

    register_format(HATSWriter.format, "")        # a directory named after the catalogue
    register_writer(HATSWriter.format, HATSWriter)


_register()
