"""TAP through `pyvo`: query execution, service capabilities, id uploads, ADQL builders.

* `run_tap` runs an ADQL query (synchronously, or asynchronously when the result
  overflows the service's synchronous row limit). An answer without the
  ``QUERY_STATUS`` INFO that the TAP standard requires is refused with an `ArchiveError`
  (a truncated result could not be told from a complete one).
* `tap_limits` reads a service's upload support and limits (TAPRegExt capabilities);
  `query_by_ids` sends id lists as uploaded tables (or ``IN`` lists) in chunks that fit
  (a byte limit is compared with `id_upload_bytes`, the size of the VOTable as sent).
* `tap_requests` and `id_query_requests` count ahead of time the HTTP requests that
  `run_tap` and `query_by_ids` send (the asynchronous jobs' included,
  `ASYNC_JOB_REQUESTS`), from the same rules (`upload_mode`, `sync_capped`).
* `query_catalogue` fetches a reference catalogue, whole or by ids.
"""
from __future__ import annotations

import functools
import hashlib
import io
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from astropy import log
from astropy.table import Table

from ..exceptions import ArchiveError, InputDataError
from .cache import DiskCache
from .http import HTTPClient
from .tables import ColumnMap

__all__ = ["run_tap", "TAPLimits", "tap_limits", "ids_votable", "id_upload_bytes",
           "query_by_ids", "ASYNC_JOB_REQUESTS", "sync_capped", "upload_mode", "tap_requests",
           "id_query_requests",
           "only_requested", "chunked", "id_list_adql", "query_catalogue", "UPLOAD_NAME"]


#: HTTP requests of one asynchronous job as `run_tap` runs it (pyvo's ``run_async``), by
#: endpoint under the TAP base URL, at a UWS service that answers the job's creation and
#: its phase change with 303 See Other (as UWS asks; pyvo follows both with a GET): the
#: creation (POST ``/async``, then the GET of the job it redirects to), pyvo's first
#: read of the job, the phase change to RUN (POST ``/phase``, then the GET of the job),
#: one blocking phase check (``WAIT``), the result, and the deletion (DELETE, not
#: followed). This is the least a job costs: one still running at its phase check adds
#: a GET of ``/async/{job}`` per further check.
ASYNC_JOB_REQUESTS = {"/async": 1, "/async/{job}": 5, "/async/{job}/phase": 1,
                      "/async/{job}/results/result": 1}


def sync_capped(n_rows: int, sync_max_rows: int | None) -> bool:
    """Whether a synchronous answer of ``n_rows`` rows may have been cut at the service's
    row cap: it holds ``sync_max_rows`` rows or more (`run_tap` re-runs such a query as
    an asynchronous job in ``"auto"`` mode, as it does an answer whose ``QUERY_STATUS``
    is ``OVERFLOW``).

    Parameters
    ----------
    n_rows : int
    sync_max_rows : int or None
        The service's synchronous row cap (None: no cap known).

    Returns
    -------
    bool
    """
    return sync_max_rows is not None and n_rows >= sync_max_rows


def upload_mode(n_ids: int, sync_max_rows: int | None) -> str:
    """How `query_by_ids` runs one uploaded chunk of ``n_ids`` ids: as an asynchronous
    job at once (``"async"``) when it holds more ids than the synchronous row cap (its
    answer, one row per id found, may not fit), else ``"auto"`` (see `run_tap`).

    Parameters
    ----------
    n_ids : int
    sync_max_rows : int or None

    Returns
    -------
    str
    """
    return "async" if sync_max_rows and n_ids > sync_max_rows else "auto"


def tap_requests(mode: str = "auto", *, rows: int | None = None,
                 sync_max_rows: int | None = None) -> int:
    """The HTTP requests that `run_tap` sends for one query (not in the cache).

    ``"sync"``: one; ``"async"``: a job (`ASYNC_JOB_REQUESTS`, done at its first phase
    check); ``"auto"``: one, plus a job when the answer's ``rows`` reach the cap
    (`sync_capped`).

    Parameters
    ----------
    mode : {"auto", "sync", "async"}
        As for `run_tap`.
    rows : int, optional
        Rows the answer is expected to hold; None when unknown (no re-run counted).
    sync_max_rows : int, optional
        The service's synchronous row cap.

    Returns
    -------
    int
        Not counted: further phase checks of a job still running, the re-run of an
        answer that the service marks ``OVERFLOW`` below ``sync_max_rows``, retries.
    """
    job = sum(ASYNC_JOB_REQUESTS.values())
    if mode == "async":
        return job
    if mode == "sync" or rows is None or not sync_capped(rows, sync_max_rows):
        return 1
    return 1 + job


def run_tap(client: HTTPClient, url: str, adql: str, *, sync_max_rows: int | None = None,
            mode: str = "auto", cache: DiskCache | None = None,
            async_timeout: float = 3600.0, uploads: Mapping[str, Table] | None = None,
            validate: Callable[[Table], None] | None = None) -> Table:
    """Run an ADQL query on a TAP service and return an astropy Table.

    Parameters
    ----------
    client : `HTTPClient`
        Provides the session (timeout) and the retry policy.
    url : str
        TAP base URL (``.../tap``); ``/sync`` and ``/async`` are appended by pyvo.
    adql : str
        The query.
    sync_max_rows : int, optional
        Row cap of synchronous queries at this service (ESA: 2000). In ``"auto"`` mode
        a synchronous result that overflows (``QUERY_STATUS=OVERFLOW`` or exactly this
        many rows) is re-run as an asynchronous job.
    mode : {"auto", "sync", "async"}
        How to run the query.
    cache : `DiskCache`, optional
        Where results are kept (ECSV), keyed on URL and query.
    async_timeout : float
        Seconds to wait for an asynchronous job.
    uploads : mapping of str to astropy.table.Table, optional
        Tables sent with the query (TAP ``UPLOAD``, as VOTables) and visible to the ADQL
        as ``TAP_UPLOAD.<name>``; part of the cache key.
    validate : callable, optional
        Called with the result table; raises `~gaiarvs_cnn.exceptions.ArchiveError` when
        the answer is unusable (e.g. lacks required columns). It runs before the answer
        is cached, so a bad answer is never cached, and on a cached answer too (one that
        fails is dropped from the cache and the query runs again).

    Returns
    -------
    astropy.table.Table
        The query result (read from the cache when present).

    Raises
    ------
    ArchiveError
        HTTP errors, malformed VOTables or rejected queries (after retries).
    """
    import pyvo
    from astropy.io.votable.exceptions import VOWarning
    from pyvo.dal.exceptions import DALOverflowWarning

    uploads = dict(uploads or {})
    key = DiskCache.key(url, adql, *(_table_digest(name, t) for name, t in
                                     sorted(uploads.items())))
    extra = {"uploads": uploads} if uploads else {}
    if cache is not None and (hit := cache.get(key)) is not None:
        table = Table.read(io.BytesIO(hit), format="ascii.ecsv")
        try:
            if validate is not None:
                validate(table)
            return table
        except ArchiveError as exc:
            log.warning(f"Cached TAP answer {cache.path(key)} is unusable ({exc}); "
                        f"querying {url} again.")
            cache.path(key).unlink(missing_ok=True)
    service = pyvo.dal.TAPService(url, session=client.session)
    what = f"TAP query at {url}"
    result = None
    if mode in ("auto", "sync"):
        with warnings.catch_warnings():  # an overflow is handled below (async re-run)
            warnings.simplefilter("ignore", DALOverflowWarning)
            result = client.with_retries(what + " (sync)", lambda: service.run_sync(adql, **extra))
        overflow = (_query_status(result, what) == "OVERFLOW"
                    or sync_capped(len(result), sync_max_rows))
        if overflow and mode == "auto":
            log.info(f"{what}: synchronous result capped at {len(result)} rows; "
                     f"running it as an asynchronous job.")
            result = None
    if result is None:
        result = client.with_retries(what + " (async)", lambda: service.run_async(
            adql, timeout=async_timeout, **extra))
        if _query_status(result, what) == "OVERFLOW":
            raise ArchiveError(f"{what}: the asynchronous result was truncated by the "
                               f"service's row limit (QUERY_STATUS=OVERFLOW, {len(result)} "
                               f"rows). Select fewer rows per query.")
    with warnings.catch_warnings():  # unit strings such as VizieR's "[cm/s2]"
        warnings.simplefilter("ignore", VOWarning)
        table = result.to_table()
    if validate is not None:
        validate(table)  # before caching: a bad answer is never cached
    if cache is not None:
        buf = io.StringIO()
        table.write(buf, format="ascii.ecsv")
        cache.put(key, buf.getvalue().encode())
    return table


def _table_digest(name: str, table: Table) -> tuple:
    """A short stable identity of an upload table (for cache keys)."""
    h = hashlib.sha256()
    for c in table.colnames:
        h.update(c.encode())
        h.update(np.ascontiguousarray(np.asarray(table[c])).tobytes())
    return name, h.hexdigest()[:20]


#: Table name of the id list in `query_by_ids` uploads (``TAP_UPLOAD.gaiarvs_ids``).
UPLOAD_NAME = "gaiarvs_ids"


@dataclass(frozen=True)
class TAPLimits:
    """What a TAP service publishes about uploads and output sizes (TAPRegExt capabilities).

    Parameters
    ----------
    uploads : bool
        The service declares at least one ``uploadMethod`` (TAP_UPLOAD supported).
    upload_rows : int, optional
        Hard ``uploadLimit`` in rows, when published in rows.
    upload_bytes : int, optional
        Hard ``uploadLimit`` in bytes, when published in bytes.
    output_rows : int, optional
        Hard ``outputLimit`` in rows, when published in rows.
    source : str
        Where the values come from (``"capabilities"`` or why they are unknown).
    """

    uploads: bool = False
    upload_rows: int | None = None
    upload_bytes: int | None = None
    output_rows: int | None = None
    source: str = "unknown"

    def ids_per_upload(self, ceiling: int) -> int:
        """The largest id list to upload in one query: the service's row and byte limits
        (the bytes of the VOTable as it is sent, `id_upload_bytes`, with a 10 % margin
        for the service's own accounting), the output limit (at least one result row per
        id) and ``ceiling`` (``conf.tap_upload_max_ids``).

        Parameters
        ----------
        ceiling : int
            Upper bound of our own.

        Returns
        -------
        int
            At least 1.
        """
        sizes = [int(ceiling)]
        if self.upload_rows:
            sizes.append(self.upload_rows)
        if self.upload_bytes:
            overhead, per_id = _id_votable_sizes()
            sizes.append(int((0.9 * self.upload_bytes - overhead) // per_id))
        if self.output_rows:
            sizes.append(self.output_rows)
        return max(1, min(sizes))


#: The largest Gaia DR3 source_id has 19 digits (int64); `id_upload_bytes` sizes uploads
#: for ids of that width.
_WIDEST_ID = np.iinfo(np.int64).max


@functools.lru_cache(maxsize=1)
def _id_votable_sizes() -> tuple[int, int]:
    """(bytes around the rows, bytes per row) of an `ids_votable` upload, measured by
    writing it the way pyvo sends it (astropy VOTable, TABLEDATA) with the widest ids."""
    one, two = (len(_votable_bytes(ids_votable([_WIDEST_ID] * n))) for n in (1, 2))
    return one - (two - one), two - one


def _votable_bytes(table: Table) -> bytes:
    """``table`` serialised as pyvo serialises an uploaded astropy Table."""
    buf = io.BytesIO()
    table.write(buf, format="votable")
    return buf.getvalue()


def id_upload_bytes(n_ids: int) -> int:
    """Bytes of the VOTable of ``n_ids`` ids that a TAP upload sends (at most: every id
    as wide as the widest int64); what a byte ``uploadLimit`` is compared with.

    Parameters
    ----------
    n_ids : int

    Returns
    -------
    int
    """
    overhead, per_id = _id_votable_sizes()
    return overhead + int(n_ids) * per_id


def tap_limits(client: HTTPClient, url: str) -> TAPLimits:
    """Read (once per client and URL) a TAP service's upload support and limits.

    The VOSI ``<url>/capabilities`` document is parsed by `pyvo`; the TAPRegExt elements
    ``uploadMethod``, ``uploadLimit`` (hard, ``row`` or ``byte``) and ``outputLimit``
    (hard, ``row``) are read. A service without a readable capabilities document is
    reported as not supporting uploads (callers fall back to ``IN`` lists).

    Parameters
    ----------
    client : `HTTPClient`
        Session, timeout and retries.
    url : str
        TAP base URL.

    Returns
    -------
    TAPLimits
        What the service publishes.
    """
    if url in client.tap_limits:
        return client.tap_limits[url]
    import pyvo
    from pyvo.dal import DALServiceError

    service = pyvo.dal.TAPService(url, session=client.session)
    try:
        cap = client.with_retries(f"TAP capabilities at {url}", service.get_tap_capability)
    except (ArchiveError, DALServiceError) as exc:
        log.info(f"{url}: no TAP capabilities ({exc}); id lists go as ADQL IN lists.")
        limits = TAPLimits(source=f"capabilities unreadable: {exc}")
    else:
        up = _hard_limit(getattr(cap, "uploadlimit", None))
        out = _hard_limit(getattr(cap, "outputlimit", None))
        limits = TAPLimits(uploads=bool(getattr(cap, "uploadmethods", None)),
                           upload_rows=up.get("row"), upload_bytes=up.get("byte"),
                           output_rows=out.get("row"), source="capabilities")
    client.tap_limits[url] = limits
    return limits


def _hard_limit(limits) -> dict:
    """{unit: value} of the hard (else default) value of a TAPRegExt DataLimits element."""
    if limits is None:
        return {}
    value = getattr(limits, "hard", None) or getattr(limits, "default", None)
    try:
        return {value.unit: int(value.content)}
    except (AttributeError, TypeError, ValueError):
        return {}


def ids_votable(ids: Iterable[int], column: str = "source_id") -> Table:
    """The id list as a one-column table (sent as a VOTable ``long`` column by `run_tap`).

    Parameters
    ----------
    ids : iterable of int
        The identifiers.
    column : str
        Column name (``TAP_UPLOAD.<name>.<column>`` in the ADQL).

    Returns
    -------
    astropy.table.Table
        One int64 column.
    """
    return Table({column: np.asarray(list(ids), dtype=np.int64)})


def query_by_ids(client: HTTPClient, url: str, ids: Iterable[int], *, select: str,
                 table: str, id_column: str, joins: str = "", where: str | None = None,
                 cache: DiskCache | None = None, sync_max_rows: int | None = None,
                 in_list_size: int | None = None, upload_size: int | None = None,
                 uploads: bool | None = None,
                 validate: Callable[[Table], None] | None = None) -> Table:
    """Rows of ``table`` whose ``id_column`` is one of ``ids``, by TAP table upload.

    When the service declares TAP uploads (`tap_limits`), the ids go in chunks as an
    uploaded VOTable joined in ADQL::

        SELECT <select> FROM TAP_UPLOAD.gaiarvs_ids AS u JOIN <table> ON <id_column> =
        u.source_id <joins> WHERE <where>

    each chunk at most ``TAPLimits.ids_per_upload(upload_size)`` ids. Otherwise (the
    documented fallback) they go as ``<id_column> IN (...)`` lists of ``in_list_size``.

    Parameters
    ----------
    client : `HTTPClient`
        Session, timeout and retries.
    url : str
        TAP base URL.
    ids : iterable of int
        The identifiers (duplicates ignored).
    select : str
        ADQL select list (qualified with the alias of ``table`` where needed).
    table : str
        ``FROM`` item, with its alias (``gaiadr3.gaia_source AS g``).
    id_column : str
        The id column as the ADQL names it (``g.source_id``).
    joins : str
        Further ``JOIN`` clauses.
    where : str, optional
        Further condition.
    cache : `DiskCache`, optional
        Result cache (see `run_tap`).
    sync_max_rows : int, optional
        Synchronous row cap (see `run_tap`).
    in_list_size, upload_size : int, optional
        Ids per ``IN`` list / per upload; default ``conf.tap_in_list_max_ids`` /
        ``conf.tap_upload_max_ids``.
    uploads : bool, optional
        Force (True) or forbid (False) uploads; default: what the service declares.
    validate : callable, optional
        Checks each chunk's answer before it is cached (see `run_tap`).

    Returns
    -------
    astropy.table.Table
        The rows of every chunk, stacked (the chunks hold distinct ids, so no row is
        answered twice; `id_query_requests` counts the requests). Rows whose id (the
        result column named like ``id_column``) is not one of the ids asked for in their
        chunk are dropped with a warning: a service's answer never adds stars that were
        not requested.

    Raises
    ------
    InputDataError
        If ``ids`` is empty.
    ArchiveError
        If a query fails (see `run_tap`).
    """
    from astropy.table import vstack

    ids = np.unique(np.asarray(list(ids), dtype=np.int64))
    if ids.size == 0:
        raise InputDataError("Empty list of source ids.")
    limits, size = _id_chunks(client, url, in_list_size=in_list_size,
                              upload_size=upload_size, uploads=uploads)
    cond = f"\nWHERE {where}" if where else ""
    parts = []
    if limits.uploads:
        adql = (f"SELECT {select}\nFROM TAP_UPLOAD.{UPLOAD_NAME} AS u\nJOIN {table} ON "
                f"{id_column} = u.source_id{' ' + joins if joins else ''}{cond}")
        for group in chunked(ids, size):
            answer = run_tap(client, url, adql, cache=cache, sync_max_rows=sync_max_rows,
                             uploads={UPLOAD_NAME: ids_votable(group)},
                             mode=upload_mode(len(group), sync_max_rows),
                             validate=validate)
            parts.append(only_requested(answer, id_column, group, url))
    else:
        for group in chunked(ids, size):
            adql = (f"SELECT {select}\nFROM {table}{' ' + joins if joins else ''}\nWHERE "
                    f"{id_list_adql(id_column, group)}{' AND ' + where if where else ''}")
            answer = run_tap(client, url, adql, cache=cache, sync_max_rows=sync_max_rows,
                             validate=validate)
            parts.append(only_requested(answer, id_column, group, url))
    return vstack(parts, metadata_conflicts="silent") if len(parts) > 1 else parts[0]


def _id_chunks(client: HTTPClient, url: str, *, in_list_size: int | None,
               upload_size: int | None, uploads: bool | None) -> tuple[TAPLimits, int]:
    """The service's limits and the ids per query of `query_by_ids` (per upload when
    ``limits.uploads``, else per ``IN`` list)."""
    from ..settings import conf

    limits = tap_limits(client, url) if uploads is None else TAPLimits(uploads=uploads)
    if limits.uploads:
        return limits, limits.ids_per_upload(upload_size or conf.tap_upload_max_ids)
    return limits, in_list_size or conf.tap_in_list_max_ids


def id_query_requests(client: HTTPClient, url: str, n_ids: int, *,
                      sync_max_rows: int | None = None, rows_per_id: float | None = None,
                      in_list_size: int | None = None, upload_size: int | None = None,
                      uploads: bool | None = None, read_capabilities: bool = True) -> int:
    """The HTTP requests that `query_by_ids` sends for ``n_ids`` distinct ids (none
    cached): the service's capabilities document (`tap_limits`), then each chunk's query
    (`tap_requests`; an uploaded chunk runs as `upload_mode` says), the chunks sized by
    the service's published limits (read once per client).

    Parameters
    ----------
    client : `HTTPClient`
        Session, timeout and retries (reads the capabilities).
    url : str
        TAP base URL.
    n_ids : int
        Distinct ids.
    sync_max_rows : int, optional
        As for `query_by_ids`.
    rows_per_id : float, optional
        Rows the answer is expected to hold per id (a chunk whose answer reaches
        ``sync_max_rows`` is re-run as a job); None when unknown: no re-run counted.
    in_list_size, upload_size, uploads : optional
        As for `query_by_ids`.
    read_capabilities : bool
        Count the capabilities document (False: the client of `query_by_ids` has read
        it already). Not read when ``uploads`` is given.

    Returns
    -------
    int
        0 for no id. Each asynchronous job at its least (`ASYNC_JOB_REQUESTS`); not
        counted: further phase checks, retries.
    """
    if n_ids <= 0:
        return 0
    limits, size = _id_chunks(client, url, in_list_size=in_list_size,
                              upload_size=upload_size, uploads=uploads)
    count = int(read_capabilities and uploads is None)
    for group in chunked(range(int(n_ids)), size):
        rows = None if rows_per_id is None else int(np.ceil(len(group) * rows_per_id))
        mode = upload_mode(len(group), sync_max_rows) if limits.uploads else "auto"
        count += tap_requests(mode, rows=rows, sync_max_rows=sync_max_rows)
    return count


def only_requested(table: Table, id_column: str, ids: np.ndarray, url: str = "") -> Table:
    """Drop (with a warning) the rows of a TAP answer whose id was not asked for.

    Parameters
    ----------
    table : astropy.table.Table
        The answer.
    id_column : str
        The id column as the ADQL names it (``g.source_id``, ``t."Source"``); the answer's
        column of that name (case-insensitive) is compared. An answer without it is
        returned unchanged.
    ids : numpy.ndarray
        The ids asked for.
    url : str
        The service, for the warning.

    Returns
    -------
    astropy.table.Table
        The rows whose id is one of ``ids``.
    """
    from ..utils.columns import find_column

    name = find_column(table.colnames, id_column.rsplit(".", 1)[-1].strip('"'))
    if name is None or not len(table):
        return table
    values = np.ma.filled(np.ma.asarray(table[name]), -1)
    keep = np.isin(values, np.asarray(ids))
    if not keep.all():
        extra = np.unique(values[~keep])
        log.warning(f"TAP answer of {url or 'the service'} holds {int((~keep).sum())} row(s) "
                    f"for {extra.size} {name} value(s) that were not requested "
                    f"({extra[:5].tolist()}); they are dropped.")
        table = table[keep]
    return table


def _query_status(result, what: str) -> str:
    """The upper-case ``QUERY_STATUS`` of a pyvo TAP result; `ArchiveError` when the answer
    has none (not a standard TAP answer: a complete result cannot be told from a
    truncated one)."""
    status = result.query_status
    if not status:
        raise ArchiveError(f"{what}: the answer is a VOTable without the QUERY_STATUS INFO "
                           f"that the TAP standard requires, so a truncated result cannot be "
                           f"told from a complete one. Check that the URL in gaiarvs_cnn.conf "
                           f"is the service's TAP base URL (not a proxy or web page).")
    return str(status).upper()


def chunked(values: Sequence, size: int) -> Iterator[Sequence]:
    """Yield consecutive slices of at most ``size`` items.

    Parameters
    ----------
    values : sequence
        The items to split.
    size : int
        Largest slice length (>= 1).

    Yields
    ------
    sequence
        ``values[lo:lo + size]`` for ``lo = 0, size, 2 * size, ...``.

    Raises
    ------
    InputDataError
        If ``size`` is less than 1.
    """
    if size < 1:
        raise InputDataError(f"Chunk size must be >= 1, got {size}.")
    for lo in range(0, len(values), size):
        yield values[lo:lo + size]


def id_list_adql(column: str, ids: Iterable[int]) -> str:
    """Return an ADQL condition ``column IN (id1, id2, ...)`` for integer ids.

    Parameters
    ----------
    column : str
        Column name, as it should appear in the ADQL (quoted by the caller if needed).
    ids : iterable of int
        The identifiers.

    Returns
    -------
    str
        The ADQL condition.

    Raises
    ------
    InputDataError
        If ``ids`` is empty.
    """
    ids = np.asarray(list(ids), dtype=np.int64)
    if ids.size == 0:
        raise InputDataError("Empty list of source ids.")
    return f"{column} IN ({', '.join(str(int(i)) for i in ids)})"


def query_catalogue(table: str, *, url: str, id_column: str | None = None,
                    ids: Iterable[int] | None = None, columns: str | ColumnMap = "*",
                    client: HTTPClient | None = None, refresh: bool = False,
                    namespace: str = "vizier", ids_per_query: int | None = None,
                    sync_max_rows: int | None = None) -> Table:
    """Fetch a catalogue table (whole, or the rows whose ``id_column`` is in ``ids``) by TAP.

    Parameters
    ----------
    table : str
        Table name as the service spells it (VizieR: ``"III/286/catalog"``; quoted in
        the ADQL automatically when it contains ``/``).
    url : str
        TAP base URL.
    id_column : str, optional
        Column holding the identifiers of ``ids`` (quoted in the ADQL).
    ids : iterable of int, optional
        Restrict to these identifiers: uploaded as a table when the service supports
        it, otherwise in ``IN`` lists of ``ids_per_query`` (see `query_by_ids`).
    columns : str or `ColumnMap`
        ADQL select list; or a column map, in which case one row (``TOP 1 *``) is read
        first and only the columns the map finds (case-insensitively) are selected --
        robust to renamed columns, and much smaller than ``*`` for wide tables.
    client : `HTTPClient`, optional
        Retry policy and timeout; default a new `HTTPClient`.
    refresh : bool
        If True, bypass the download cache (query again).
    namespace : str
        Cache sub-directory (see `DiskCache`).
    ids_per_query : int, optional
        Largest number of identifiers per ``IN`` list (the fallback without uploads;
        default ``conf.tap_in_list_max_ids``).
    sync_max_rows : int, optional
        The service's synchronous row cap (see `run_tap`).

    Returns
    -------
    astropy.table.Table
        The selected rows and columns, as named by the service.

    Raises
    ------
    InputDataError
        If ``ids`` is given without ``id_column``, or is empty.
    ArchiveError
        If a query fails (see `run_tap`).
    """
    client = client or HTTPClient()
    cache = DiskCache(namespace, refresh=refresh)
    name = f'"{table}"' if "/" in table else table
    if isinstance(columns, ColumnMap):
        probe = run_tap(client, url, f"SELECT TOP 1 * FROM {name}", cache=cache, mode="sync")
        found = [columns.find(probe, c) for c in columns.mapping]
        columns = ", ".join(_quote(c) for c in dict.fromkeys(f for f in found if f))
    if ids is None:
        return run_tap(client, url, f"SELECT {columns} FROM {name}", cache=cache,
                       sync_max_rows=sync_max_rows)
    if id_column is None:
        raise InputDataError(f"Selecting ids in {table} needs the id column name.")
    ids = np.unique(np.asarray(list(ids), dtype=np.int64))
    if ids.size == 0:
        raise InputDataError(f"No identifiers given for {table}.")
    select = columns if columns.strip() == "*" else ", ".join(
        f"t.{c.strip()}" for c in columns.split(","))
    return query_by_ids(client, url, ids, select="t.*" if select == "*" else select,
                        table=f"{name} AS t", id_column=f"t.{_quote(id_column)}",
                        cache=cache, sync_max_rows=sync_max_rows, in_list_size=ids_per_query)


def _quote(column: str) -> str:
    """ADQL delimited identifier when the name is not a plain lower-case word."""
    return column if column.isidentifier() and column.islower() else f'"{column}"'
