"""The ESA Gaia archive adapter: select DR3 stars with RVS spectra, download their RVS mean
spectra and XP continuous coefficients, and append them to a `~gaiarvs_cnn.io.store.Store`.

Services (URLs from `gaiarvs_cnn.conf`):

* TAP ``conf.gaia_tap_url`` (``https://gea.esac.esa.int/tap-server/tap``): synchronous
  results are capped at 2000 rows (`ESA_SYNC_MAX_ROWS`); larger selections run as
  asynchronous jobs.
* DataLink ``conf.gaia_datalink_url`` (``https://gea.esac.esa.int/data-server/data``):
  POST with ``ID`` (comma-separated source ids, at most ``conf.datalink_max_ids`` = 5000
  per call), ``RETRIEVAL_TYPE`` (``RVS`` or ``XP_CONTINUOUS``), ``DATA_STRUCTURE``,
  ``FORMAT``, ``RELEASE`` and ``USE_ZIP_ALWAYS=true`` -- the parameters
  `astroquery.gaia.GaiaClass.load_data` sends. The answer is a zip with one product file
  per source (``RVS-Gaia DR3 <id>.csv``, ``XP_CONTINUOUS-Gaia DR3 <id>.csv``).
  The valid ``DATA_STRUCTURE`` spelling is decided by the ESA server, not by a client
  library: ``INDIVIDUAL``/``RAW`` (what the operational server accepts, and what
  astroquery <= 0.4.11 sends: ``load_data(..., data_structure='INDIVIDUAL')`` in
  astroquery/gaia/core.py) or ``DATAMODEL_STANDARD``/``DATAMODEL_GAIA`` (the renaming of
  astroquery pull request #3629, July 2026, merged and then held back until the ESA
  server is deployed). The value sent is ``conf.datalink_data_structure``; on an HTTP 400
  that names ``DATA_STRUCTURE`` the request is retried once with the other spelling,
  which is then kept for the session (`data_structure_value`).

The selection applies the paper's Gaia cuts (Sects. 2.1-2.3; Sect. 2.5 for the training
sample), see `paper_cuts_adql`. Products are read with `gaiarvs_cnn.io.datalink` and a chunk is
appended only once complete and validated (2401 pixels on the RVS grid, finite positive
flux errors wherever the flux is finite, 55 BP and 55 RP coefficients with finite errors).

For the whole DR3 RVS sample, the archive's bulk files (``RvsMeanSpectrum_*.csv.gz``,
``XpContinuousMeanSpectrum_*.csv.gz``) are faster: ingest them with
`gaiarvs_cnn.io.ingest.bulk_to_store` (``gaiarvs-cnn store ingest``).

Examples
--------
>>> from gaiarvs_cnn.archives.gaia import GaiaArchive   # doctest: +SKIP
>>> archive = GaiaArchive()                              # doctest: +SKIP
>>> report = archive.fetch_to_store("stars.h5", source_ids=[4268620287278693120])  # doctest: +SKIP
"""
from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy import log
from astropy.table import Table
from tqdm import tqdm

from ..constants import LABELS
from ..exceptions import ArchiveError, InputDataError
from ..io.batch import StarBatch
from ..io.datalink import read_datalink_products
from ..io.gaia_source import gaia_source_to_batch, merge_on_source_id
from ..io.spectra import XP_COLUMNS
from ..io.store import Store
from ..selection import gaia_quality_adql, training_cut
from ..utils import interrupt
from .cache import DiskCache
from .http import HTTPClient
from .retry import HTTPStatusError, RetryableError
from .tables import ColumnMap
from .tap import chunked, id_list_adql, id_query_requests, query_by_ids, run_tap

__all__ = ["GaiaArchive", "FetchReport", "ESA_SYNC_MAX_ROWS", "RETRIEVAL_TYPES",
           "data_structure_value", "other_spelling", "paper_cuts_adql", "GAIA_SOURCE_COLUMNS",
           "check_product_errors", "check_zip", "check_datalink_zip"]

#: Row cap of synchronous TAP queries at the ESA archive.
ESA_SYNC_MAX_ROWS = 2000
#: DataLink products used by the method.
RETRIEVAL_TYPES = ("RVS", "XP_CONTINUOUS")
#: Store columns filled from each product.
PRODUCT_COLUMNS = {"RVS": ("flux", "flux_error"), "XP_CONTINUOUS": XP_COLUMNS}

_STRUCTURES = {"INDIVIDUAL": "individual", "DATAMODEL_STANDARD": "individual",
               "RAW": "raw", "DATAMODEL_GAIA": "raw"}
_SPELLING_OLD = {"individual": "INDIVIDUAL", "raw": "RAW"}
_SPELLING_NEW = {"individual": "DATAMODEL_STANDARD", "raw": "DATAMODEL_GAIA"}

#: gaia_source columns selected (store inputs and the training-cut columns).
GAIA_SOURCE_COLUMNS = (
    "source_id", "ra", "dec", "rvs_spec_sig_to_noise", "phot_g_mean_mag", "phot_bp_mean_mag",
    "phot_rp_mean_mag", "phot_g_mean_flux_over_error", "phot_bp_mean_flux_over_error",
    "phot_rp_mean_flux_over_error", "parallax", "parallax_error", "ruwe")
_SOURCE_ID = ColumnMap({"source_id": "source_id"}, service="Gaia DR3 query")
_PRODUCT_NAME = re.compile(r"^(?:.*/)?([A-Z_]+)-Gaia DR3 (\d+)\.\w+$")


def data_structure_value(structure: str = "INDIVIDUAL", new_spelling: bool | None = None) -> str:
    """Return the DataLink ``DATA_STRUCTURE`` value for ``structure``.

    Parameters
    ----------
    structure : str
        ``INDIVIDUAL`` / ``DATAMODEL_STANDARD`` (one file per source) or ``RAW`` /
        ``DATAMODEL_GAIA`` (case-insensitive); either spelling is accepted.
    new_spelling : bool, optional
        Force the ``DATAMODEL_*`` spelling (True) or the ``INDIVIDUAL``/``RAW`` one
        (False); default: the spelling of ``conf.datalink_data_structure``.

    Returns
    -------
    str
        The ``DATA_STRUCTURE`` value in the chosen spelling.

    Raises
    ------
    InputDataError
        If ``structure`` (or ``conf.datalink_data_structure``) is not a known data
        structure.
    """
    from ..settings import conf

    kind = _STRUCTURES.get(structure.upper())
    if kind is None:
        raise InputDataError(f"Unknown DataLink data structure {structure!r}; use one of "
                             f"{sorted(_STRUCTURES)}.")
    if new_spelling is None:
        configured = str(conf.datalink_data_structure).upper()
        if configured not in _STRUCTURES:
            raise InputDataError(f"conf.datalink_data_structure = {configured!r} is not a "
                                 f"DataLink data structure; use one of "
                                 f"{sorted(_STRUCTURES)}.")
        new_spelling = configured.startswith("DATAMODEL_")
    return (_SPELLING_NEW if new_spelling else _SPELLING_OLD)[kind]


def other_spelling(value: str) -> str:
    """The same ``DATA_STRUCTURE`` in the other spelling (``INDIVIDUAL`` <->
    ``DATAMODEL_STANDARD``, ``RAW`` <-> ``DATAMODEL_GAIA``)."""
    return data_structure_value(value, new_spelling=not value.upper().startswith("DATAMODEL_"))


def paper_cuts_adql(source_alias: str = "g", ap_alias: str = "ap") -> str:
    """ADQL condition of the paper's Gaia DR3 selection of the observed sample.

    `gaiarvs_cnn.selection.gaia_quality_adql` (Sects. 2.1-2.3: no galaxy/quasar candidates,
    not variable, ``non_single_star = 0``, G/BP/RP flux over error > 500, positive
    parallax, XP coefficients, ``classlabel_espels`` NULL) plus ``has_rvs = 'true'``.
    The query joins ``gaiadr3.astrophysical_parameters`` as ``ap_alias``. The training
    cuts (Sect. 2.5) are applied to the result with `gaiarvs_cnn.selection.training_cut`.

    Parameters
    ----------
    source_alias : str
        Alias of ``gaiadr3.gaia_source`` in the query.
    ap_alias : str
        Alias of ``gaiadr3.astrophysical_parameters`` in the query.

    Returns
    -------
    str
        The ADQL condition (without ``WHERE``).
    """
    return f"{source_alias}.has_rvs = 'true'\n  AND " + gaia_quality_adql(source_alias,
                                                                         ap_alias)


@dataclass
class FetchReport:
    """What a `GaiaArchive.fetch_to_store` run did.

    Parameters
    ----------
    stored : int
        Stars appended by this run.
    skipped_chunks : int
        Chunks already complete in the store (resumption).
    not_selected : list of int
        Requested ids absent from gaia_source or failing the cuts.
    missing : dict
        Product (``RVS``, ``XP_CONTINUOUS``) -> source ids the archive returned nothing for.
    rejected : dict
        source_id -> reason (bad pixel count, wavelength grid, non-finite errors...).
    failed_chunks : list of (list of int, str)
        Chunks that failed after all retries (ids, error); nothing of them was stored.
    """

    stored: int = 0
    skipped_chunks: int = 0
    not_selected: list = field(default_factory=list)
    missing: dict = field(default_factory=dict)
    rejected: dict = field(default_factory=dict)
    failed_chunks: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no chunk failed."""
        return not self.failed_chunks

    def summary(self) -> str:
        """One paragraph for logs and the command line.

        Returns
        -------
        str
            The counts of stored, skipped, unselected, missing, rejected and failed
            stars or chunks, separated by semicolons.
        """
        lines = [f"stored {self.stored} star(s); skipped {self.skipped_chunks} chunk(s) "
                 "already in the store"]
        if self.not_selected:
            lines.append(f"{len(self.not_selected)} id(s) not selected (not in gaia_source "
                         f"or failing the cuts): {self.not_selected[:10]}")
        for kind, ids in self.missing.items():
            if ids:
                lines.append(f"{len(ids)} id(s) without {kind} product: {ids[:10]}")
        if self.rejected:
            first = list(self.rejected.items())[:5]
            lines.append(f"{len(self.rejected)} star(s) rejected: {first}")
        for ids, err in self.failed_chunks:
            lines.append(f"FAILED chunk of {len(ids)} id(s) starting {ids[0]}: {err}")
        return "; ".join(lines)


class GaiaArchive:
    """Gaia DR3 at the ESA archive (TAP + DataLink).

    Parameters
    ----------
    tap_url, datalink_url : str, optional
        Default ``conf.gaia_tap_url`` and ``conf.gaia_datalink_url``.
    max_ids : int, optional
        Source ids per DataLink call (default ``conf.datalink_max_ids``, 5000).
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Timeout and retry policy.
    refresh : bool
        Bypass the download cache.
    product_format : str
        DataLink ``FORMAT`` (``csv``, ``ecsv``, ``fits`` or ``votable``).
    data_structure : str
        ``INDIVIDUAL`` (either spelling); sent in the spelling of
        ``conf.datalink_data_structure`` (see `data_structure_value`).
    """

    name = "esa"
    sync_max_rows = ESA_SYNC_MAX_ROWS
    gaia_source_table = "gaiadr3.gaia_source"
    ap_table = "gaiadr3.astrophysical_parameters"

    def __init__(self, tap_url: str | None = None, datalink_url: str | None = None,
                 max_ids: int | None = None, client: HTTPClient | None = None,
                 refresh: bool = False, product_format: str = "csv",
                 data_structure: str = "INDIVIDUAL"):
        from ..settings import conf

        self.tap_url = tap_url or conf.gaia_tap_url
        self.datalink_url = datalink_url or conf.gaia_datalink_url
        self.max_ids = int(max_ids or self._default_max_ids())
        self.client = client or HTTPClient()
        self.cache = DiskCache(self.name, refresh=refresh)
        self.product_format = product_format
        self.data_structure = data_structure_value(data_structure)

    @staticmethod
    def _default_max_ids() -> int:
        from ..settings import conf

        return conf.datalink_max_ids

    # -- TAP -----------------------------------------------------------------------
    def query(self, adql: str, mode: str = "auto") -> Table:
        """Run ADQL on the archive's TAP service (async when over the sync row cap).

        Parameters
        ----------
        adql : str
            The query.
        mode : {"auto", "sync", "async"}
            How to run it (see `~gaiarvs_cnn.archives.tap.run_tap`).

        Returns
        -------
        astropy.table.Table
            The query result.

        Raises
        ------
        ArchiveError
            If the query fails after the retries.
        """
        return run_tap(self.client, self.tap_url, adql, sync_max_rows=self.sync_max_rows,
                       mode=mode, cache=self.cache)

    def selection_adql(self, source_ids: Sequence[int], cuts: bool = True) -> str:
        """ADQL selecting `GAIA_SOURCE_COLUMNS` of ``source_ids`` (with the paper's cuts),
        with the ids as an ``IN`` list (the form used where uploads are unavailable).

        Parameters
        ----------
        source_ids : sequence of int
            Gaia DR3 source ids.
        cuts : bool
            If True, add the paper's Gaia cuts (`paper_cuts_adql`).

        Returns
        -------
        str
            The ADQL query.
        """
        spec = self._selection(cuts)
        return (f"SELECT {spec['select']}\nFROM {spec['table']} {spec['joins']}\nWHERE "
                f"{id_list_adql(spec['id_column'], source_ids)}"
                + (f" AND {spec['where']}" if spec["where"] else ""))

    def _selection(self, cuts: bool) -> dict:
        """The parts of the selection query (see `~gaiarvs_cnn.archives.tap.query_by_ids`)."""
        return {"select": ", ".join(f"g.{c}" for c in GAIA_SOURCE_COLUMNS),
                "table": f"{self.gaia_source_table} AS g", "id_column": "g.source_id",
                "joins": f"LEFT OUTER JOIN {self.ap_table} AS ap ON ap.source_id = "
                         f"g.source_id",
                "where": paper_cuts_adql("g", "ap") if cuts else None}

    def select_sources(self, source_ids: Iterable[int], cuts: bool = True,
                       training: bool = False) -> Table:
        """Return the gaia_source rows of the given ids that pass the cuts.

        The ids are uploaded as a table (TAP_UPLOAD) joined to ``gaia_source`` in chunks
        sized by the service's published limits; at a service without uploads they go
        as ``IN`` lists of ``conf.tap_in_list_max_ids`` (see
        `~gaiarvs_cnn.archives.tap.query_by_ids`).

        Parameters
        ----------
        source_ids : iterable of int
            Gaia DR3 source ids (duplicates are ignored).
        cuts : bool
            If True, apply the paper's Gaia cuts (`paper_cuts_adql`).
        training : bool
            If True, also apply `gaiarvs_cnn.selection.training_cut`.

        Returns
        -------
        astropy.table.Table
            The `GAIA_SOURCE_COLUMNS` of the selected stars.

        Raises
        ------
        InputDataError
            If ``source_ids`` is empty.
        ArchiveError
            If a query fails after the retries.
        """
        ids = np.unique(np.asarray(list(source_ids), dtype=np.int64))
        if ids.size == 0:
            raise InputDataError("No source ids to select.")
        table = query_by_ids(self.client, self.tap_url, ids, **self._selection(cuts),
                             cache=self.cache, sync_max_rows=self.sync_max_rows,
                             validate=self._check_selection)
        return table[training_cut(table)] if training and len(table) else table

    def _check_selection(self, table: Table) -> None:
        """Refuse (before it is cached) a selection answer without `GAIA_SOURCE_COLUMNS`."""
        from ..utils.columns import find_column

        missing = [c for c in GAIA_SOURCE_COLUMNS if find_column(table.colnames, c) is None]
        if missing:
            raise ArchiveError(
                f"The gaia_source answer of {self.tap_url} lacks column(s) {missing} (it has "
                f"{table.colnames[:10]}); the answer was not cached. Check conf.gaia_tap_url "
                f"(it must be the archive's TAP base URL) and run the command again once the "
                f"service answers normally; --refresh (refresh=True) also bypasses any "
                f"cached answer.")

    def ids_from_query(self, adql: str) -> np.ndarray:
        """Run a user's ADQL query and return its (unique) ``source_id`` values.

        Parameters
        ----------
        adql : str
            A query returning a ``source_id`` column.

        Returns
        -------
        numpy.ndarray
            Sorted unique source ids (int64).

        Raises
        ------
        ArchiveError
            If the query fails, lacks a ``source_id`` column or returns no rows.
        """
        ids = np.unique(np.asarray(_SOURCE_ID.apply(self.query(adql))["source_id"],
                                   dtype=np.int64))
        if ids.size == 0:
            raise ArchiveError(f"The query returned no rows: {adql[:200]}")
        return ids

    # -- spectra -------------------------------------------------------------------
    def _check_ids(self, source_ids: Sequence[int]) -> None:
        """Refuse more ids than the service accepts in one spectra request."""
        if len(source_ids) > self.max_ids:
            raise InputDataError(f"{len(source_ids)} ids in one {self.name} spectra request; "
                                 f"the limit is {self.max_ids}.")

    def _datalink_params(self, source_ids: Sequence[int], retrieval_type: str) -> dict:
        self._check_ids(source_ids)
        return {"ID": ",".join(str(int(i)) for i in source_ids),
                "RETRIEVAL_TYPE": retrieval_type, "DATA_STRUCTURE": self.data_structure,
                "FORMAT": self.product_format, "RELEASE": "Gaia DR3",
                "VALID_DATA": "false", "USE_ZIP_ALWAYS": "true"}

    def download_products(self, source_ids: Sequence[int], retrieval_type: str) -> Path:
        """Download (or take from the cache) the DataLink zip of one product type.

        Parameters
        ----------
        source_ids : sequence of int
            At most ``max_ids`` Gaia DR3 source ids.
        retrieval_type : str
            DataLink ``RETRIEVAL_TYPE`` (``RVS`` or ``XP_CONTINUOUS``).

        Returns
        -------
        Path
            The validated zip in the cache directory.

        Raises
        ------
        ArchiveError
            HTTP errors, or a zip that stays truncated/corrupt after the retries.
        InputDataError
            If there are more than ``max_ids`` source ids.
        """
        params = self._datalink_params(source_ids, retrieval_type)
        key = DiskCache.key(self.datalink_url, sorted(params.items()))
        if not self.cache.has(key):
            what = f"DataLink {retrieval_type} for {len(source_ids)} id(s)"

            def validate(path: Path) -> None:
                check_datalink_zip(path, retrieval_type)

            try:
                self.client.download("POST", self.datalink_url, self.cache.path(key),
                                     data=params, what=what, validate=validate)
            except HTTPStatusError as exc:
                if exc.status != 400 or "DATA_STRUCTURE" not in exc.body.upper():
                    raise
                other = other_spelling(self.data_structure)
                log.warning(f"DataLink refused DATA_STRUCTURE={self.data_structure} "
                            f"({exc.body[:200].strip()}); retrying with {other}. Set "
                            f"conf.datalink_data_structure = {other!r} to skip this.")
                self.data_structure = params["DATA_STRUCTURE"] = other
                self.client.download("POST", self.datalink_url, self.cache.path(key),
                                     data=params, what=what, validate=validate)
        return self.cache.path(key)

    def load_products(self, source_ids: Sequence[int],
                      retrieval_type: str) -> tuple[StarBatch, dict[int, str]]:
        """Spectra of one product type for at most ``max_ids`` sources.

        Parameters
        ----------
        source_ids : sequence of int
            At most ``max_ids`` Gaia DR3 source ids.
        retrieval_type : str
            DataLink ``RETRIEVAL_TYPE`` (``RVS`` or ``XP_CONTINUOUS``).

        Returns
        -------
        batch : StarBatch
            The good stars (read by `gaiarvs_cnn.io.datalink.read_datalink_products`, which
            checks pixel count, wavelength grid and XP lengths; this adds finite errors).
        rejected : dict
            source_id -> reason, for products that arrived but are unusable.

        Raises
        ------
        ArchiveError
            If the download fails or the bundle is unreadable.
        """
        path = self.download_products(source_ids, retrieval_type)
        with zipfile.ZipFile(path) as zf:
            arrived = {int(m.group(2)) for m in map(_PRODUCT_NAME.match, zf.namelist())
                       if m and m.group(1) == retrieval_type}
        try:
            batch = read_datalink_products(path, on_error="skip")[retrieval_type]
        except InputDataError as exc:
            raise ArchiveError(f"DataLink {retrieval_type} bundle {path.name} is unreadable: "
                               f"{exc}") from exc
        asked = np.asarray(source_ids, dtype=np.int64)
        extra = sorted(arrived - set(asked.tolist()))
        if extra:
            log.warning(f"DataLink {retrieval_type} bundle {path.name} holds products of "
                        f"{len(extra)} id(s) that were not requested ({extra[:5]}); they are "
                        f"dropped.")
            batch = batch[np.isin(batch["source_id"], asked)]
            arrived -= set(extra)
        got = set(batch["source_id"].tolist())
        rejected = {sid: f"{retrieval_type} product rejected by the reader (see the log)"
                    for sid in arrived - got}
        return check_product_errors(batch, retrieval_type, rejected)

    # -- store ---------------------------------------------------------------------
    def fetch_to_store(self, store_path, *, source_ids: Iterable[int] | None = None,
                       query: str | None = None, labels: Table | None = None,
                       cuts: bool = True, training: bool = False, overwrite: bool = False,
                       progress: bool = True) -> FetchReport:
        """Select stars, download their spectra chunk by chunk and append them to a store.

        Resumable: chunks whose stars are all in the store, or recorded as done in the
        store's ``meta["fetch_done_chunks"]`` (not with ``refresh``), are skipped. A chunk is
        written only once its RVS and XP products are complete and validated; a chunk
        that still fails after the retries is listed in the report (and in the store's
        ``meta["fetch_failed"]``), nothing of it is written, and a re-run retries it.

        Parameters
        ----------
        store_path : path-like
            HDF5 store; created if absent, appended to otherwise.
        source_ids : iterable of int, optional
            Gaia DR3 source ids to fetch.
        query : str, optional
            ADQL returning a ``source_id`` column (alternative to ``source_ids``).
        labels : Table, optional
            Canonical reference table (``source_id``, ``teff``... ``e_feh``, e.g. from
            `gaiarvs_cnn.archives.apogee.query_apogee`): its values fill the store's
            ``labels`` / ``label_errors``; its ids are fetched when neither
            ``source_ids`` nor ``query`` is given.
        cuts, training : bool
            Apply the paper's Gaia cuts (observed sample; ``training`` adds S/N >= 30,
            parallax error < 20 %, RUWE < 1.4).
        overwrite : bool
            Replace an existing store instead of appending.
        progress : bool
            Show a tqdm progress bar.

        Returns
        -------
        FetchReport
            What was stored, skipped, missing, rejected or failed.

        Raises
        ------
        InputDataError
            If both ``source_ids`` and ``query`` are given, no ids at all, or
            ``store_path`` is a directory (checked before the archive is asked).
        """
        if Path(store_path).is_dir():  # before asking the archive anything
            raise InputDataError(f"{store_path} is a directory; give the file name of the "
                                 f"HDF5 store to write, e.g. {Path(store_path) / 'stars.h5'}.")
        ids = self._requested_ids(source_ids, query, labels)
        sources = _Selection(self.select_sources(ids, cuts, training), self.max_ids)
        report = FetchReport()
        report.not_selected = sorted(set(ids.tolist()) - set(sources.ids.tolist()))
        with _open_or_create(store_path, overwrite, self) as store:
            done = set(store.meta.get("fetch_done_chunks", []))
            present = set(store.source_ids().tolist())
            for chunk in tqdm(list(chunked(sources.ids, self.max_ids)),
                              desc=f"fetch {self.name}", unit="chunk", disable=not progress):
                key = DiskCache.key(chunk.tolist())
                todo = np.array([i for i in chunk.tolist() if i not in present], dtype=np.int64)
                # refresh: a chunk recorded as done is asked for again (its stars not in
                # the store yet are fetched anew, not skipped)
                if (key in done and not self.cache.refresh) or todo.size == 0:
                    report.skipped_chunks += 1
                    continue
                try:
                    batch = self._chunk_batch(todo, sources, labels, report)
                except ArchiveError as exc:
                    log.error(f"Chunk of {len(todo)} id(s) starting {todo[0]} failed: {exc}")
                    report.failed_chunks.append((todo.tolist(), str(exc)))
                    continue
                store.append(batch)
                present.update(batch["source_id"].tolist())
                report.stored += len(batch)
                done.add(key)
                store.update_meta(fetch_done_chunks=sorted(done))
                interrupt.check()
            store.update_meta(fetch_failed=[c for c, _ in report.failed_chunks],
                              fetch_service=self.name)
        (log.info if report.ok else log.warning)(report.summary())
        return report

    def fetch_requests(self, n_ids: int) -> int:
        """The HTTP requests that `fetch_to_store` sends for ``n_ids`` distinct ids of
        which none is in the store yet, when every id is selected (one gaia_source row
        each).

        The selection (`select_sources`: the capabilities and each chunk's query,
        `~gaiarvs_cnn.archives.tap.id_query_requests`), then the products of each chunk
        of `max_ids` stars (`product_requests`). ``gaiarvs-cnn run --plan`` counts its
        fetch stages with it.

        Parameters
        ----------
        n_ids : int

        Returns
        -------
        int
            What is sent when each asynchronous job is done at its first phase check.
            Not counted: the query of a ``query`` selection (``gaiarvs-cnn run``'s probe
            has cached it), products already in the download cache, further phase
            checks of a job, retries.
        """
        if n_ids <= 0:
            return 0
        select = id_query_requests(self.client, self.tap_url, n_ids,
                                   sync_max_rows=self.sync_max_rows, rows_per_id=1)
        return select + sum(self.product_requests(len(chunk))
                            for chunk in chunked(range(int(n_ids)), self.max_ids))

    def product_requests(self, n_ids: int) -> int:
        """The HTTP requests of the products of one chunk of ``n_ids`` stars
        (`load_products` of each of `RETRIEVAL_TYPES`): one DataLink POST each."""
        return len(RETRIEVAL_TYPES)

    def _requested_ids(self, source_ids, query, labels) -> np.ndarray:
        if source_ids is not None and query is not None:
            raise InputDataError("Give either source_ids or query, not both.")
        if source_ids is not None:
            ids = np.asarray(list(source_ids), dtype=np.int64)
        elif query is not None:
            ids = self.ids_from_query(query)
        elif labels is not None:
            ids = np.asarray(labels["source_id"], dtype=np.int64)
        else:
            raise InputDataError("Nothing to fetch: give source_ids, query or labels.")
        if ids.size == 0:
            raise InputDataError("The list of source ids is empty.")
        return np.unique(ids)

    def _chunk_batch(self, ids: np.ndarray, sources: _Selection, labels: Table | None,
                     report: FetchReport) -> StarBatch:
        """Download, validate and assemble one chunk (nothing is written here)."""
        out = sources.batch(ids)
        for kind in RETRIEVAL_TYPES:
            batch, rejected = self.load_products(ids, kind)
            report.rejected.update(rejected)
            got = set(batch["source_id"].tolist())
            report.missing.setdefault(kind, []).extend(
                i for i in ids.tolist() if i not in got and i not in rejected)
            out = out[np.isin(out["source_id"], batch["source_id"])]
            if len(out):
                out = merge_on_source_id(out, batch, PRODUCT_COLUMNS[kind])
        if labels is not None:
            out["labels"], out["label_errors"] = label_arrays(out["source_id"], labels)
        return out


class _Selection:
    """The gaia_source rows of a fetch, made into store batches chunk by chunk.

    A `StarBatch` holds every store column, the spectra included (NaN until the products
    fill them, about 20 kB a star), so the whole selection is kept as its gaia_source
    table (a few columns) and only one chunk at a time becomes a batch: the memory of a
    fetch follows the chunk size, not the number of stars.

    Parameters
    ----------
    table : astropy.table.Table
        The selection (`GaiaArchive.select_sources`).
    max_rows : int
        Rows converted at once.
    """

    def __init__(self, table: Table, max_rows: int):
        from ..utils.columns import find_column

        # the stars gaia_source_to_batch keeps (bad rows are skipped, and logged, here)
        kept = [gaia_source_to_batch(table[i:i + max_rows], on_error="skip")["source_id"]
                for i in range(0, len(table), max_rows)]
        #: sorted unique source ids of the stars that make a batch
        self.ids = np.unique(np.concatenate(kept)) if kept else np.zeros(0, dtype=np.int64)
        self.table = table
        col = find_column(table.colnames, "source_id")
        self._rows = np.asarray(np.ma.getdata(table[col]) if col else [], dtype=np.int64)

    def batch(self, ids: np.ndarray) -> StarBatch:
        """The batch of the selected stars among ``ids`` (spectra still missing)."""
        return gaia_source_to_batch(self.table[np.isin(self._rows, ids)], on_error="skip")


def _open_or_create(path, overwrite: bool, archive: GaiaArchive) -> Store:
    path = Path(path)
    if path.exists() and not overwrite:
        return Store.open(path, "a")
    return Store.create(path, overwrite=overwrite,
                        meta={"source": f"Gaia DR3 via {archive.name}",
                              "tap_url": archive.tap_url})


def check_zip(payload) -> None:
    """Raise `RetryableError` unless ``payload`` is a complete, uncorrupted zip within the
    size budget (`gaiarvs_cnn.utils.zipcheck.check_zip_budget`, checked before any member
    is read; a zip over it is a final `ArchiveError`).

    Parameters
    ----------
    payload : bytes or path-like
        The zip, in memory or in a file.
    """
    from ..utils.zipcheck import check_zip_budget

    source = io.BytesIO(payload) if isinstance(payload, bytes | bytearray) else payload
    size = len(payload) if isinstance(payload, bytes | bytearray) else Path(payload).stat().st_size
    try:
        with zipfile.ZipFile(source) as zf:
            check_zip_budget(zf, label="DataLink zip")
            bad = zf.testzip()  # CRC of every member, read in blocks
    except InputDataError as exc:
        raise ArchiveError(f"{exc} Nothing of it is stored.") from None
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise RetryableError(f"partial or corrupt DataLink zip ({size} bytes: "
                             f"{exc}); not stored") from exc
    if bad is not None:
        raise RetryableError(f"DataLink zip member {bad!r} fails its CRC check; not stored")


def check_datalink_zip(payload, retrieval_type: str) -> None:
    """`check_zip`, and refuse an answer without any ``retrieval_type`` product.

    The archive answers every requested id it has a product for; a zip without any (an
    empty answer, seen from overloaded services) is taken as transient: it is retried
    and never cached, so the stars are not silently lost.

    Parameters
    ----------
    payload : bytes or path-like
        The zip, in memory or in a file.
    retrieval_type : str
        The DataLink ``RETRIEVAL_TYPE`` asked for.

    Raises
    ------
    RetryableError
        A truncated, corrupt or empty answer.
    ArchiveError
        A zip over the size budget.
    """
    check_zip(payload)
    source = io.BytesIO(payload) if isinstance(payload, bytes | bytearray) else payload
    with zipfile.ZipFile(source) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    if not any((m := _PRODUCT_NAME.match(n)) and m.group(1) == retrieval_type
               for n in names):
        raise RetryableError(
            f"the DataLink answer holds no {retrieval_type} product ({len(names)} file(s): "
            f"{names[:3]}); an empty answer is not stored. If these stars have no "
            f"{retrieval_type} product in Gaia DR3, leave them out of the id list")


def check_product_errors(batch: StarBatch, kind: str,
                         rejected: dict[int, str] | None = None
                         ) -> tuple[StarBatch, dict[int, str]]:
    """Drop stars whose uncertainties are unusable; return (good batch, rejected).

    RVS: ``flux_error`` must be finite and positive wherever ``flux`` is finite. XP:
    ``bp/rp_coefficient_errors`` must be finite.

    Parameters
    ----------
    batch : StarBatch
        Stars of one product type.
    kind : str
        The product type, ``RVS`` or ``XP_CONTINUOUS``.
    rejected : dict of int to str, optional
        Earlier rejections (source_id -> reason), copied into the result.

    Returns
    -------
    batch : StarBatch
        The stars with usable uncertainties.
    rejected : dict of int to str
        ``rejected`` plus the stars dropped here (source_id -> reason).
    """
    rejected = dict(rejected or {})
    if kind == "RVS":
        flux, err = batch["flux"], batch["flux_error"]
        with np.errstate(invalid="ignore"):
            bad = (np.isfinite(flux) & ~(np.isfinite(err) & (err > 0))).sum(axis=1)
        what = "RVS pixel(s) with finite flux but no finite positive flux_error"
    else:
        bad = sum((~np.isfinite(batch[c])).sum(axis=1)
                  for c in ("bp_coefficient_errors", "rp_coefficient_errors"))
        what = "non-finite XP coefficient error(s)"
    for sid, n in zip(batch["source_id"][bad > 0].tolist(), bad[bad > 0].tolist()):
        rejected[sid] = f"{n} {what}"
    return batch[bad == 0], rejected


def label_arrays(ids: np.ndarray, labels: Table) -> tuple[np.ndarray, np.ndarray]:
    """(N, 5) label values and errors in `~gaiarvs_cnn.constants.LABELS` order for
    ``ids`` from a canonical reference table (NaN where absent)."""
    from ..utils.arrays import masked_to_nan

    val = np.full((len(ids), len(LABELS)), np.nan)
    err = np.full_like(val, np.nan)
    row = {int(s): i for i, s in enumerate(np.asarray(labels["source_id"]))}
    where = np.array([row.get(int(s), -1) for s in ids], dtype=int)
    has = where >= 0
    for j, k in enumerate(LABELS):
        for out, name in ((val, k), (err, f"e_{k}")):
            if name in labels.colnames:
                out[has, j] = masked_to_nan(labels[name])[where[has]]
    return val, err
