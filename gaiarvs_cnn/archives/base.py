"""Shared plumbing of the archive adapters: cache, retries, timeouts, TAP, column mapping.

Nothing here knows about a particular service: the ESA and AIP Gaia archives
(`gaiarvs_cnn.archives.gaia`, `gaiarvs_cnn.archives.aip`) and the reference catalogues
(`gaiarvs_cnn.archives.apogee`, ...) build on these pieces.

* `DiskCache` keeps downloaded payloads in the astropy cache directory
  (``astropy.config.paths.get_cache_dir()/gaiarvs_cnn``, or ``conf.cache_dir``) so that a
  repeated validation run does not download again; ``refresh=True`` bypasses it.
* `HTTPClient` sends requests with a timeout (``conf.timeout``) and retries transient
  failures (connection errors, timeouts, HTTP 5xx/429, payloads that fail validation)
  with exponential backoff (``conf.retries``), waiting at least as long as an HTTP 429/503
  ``Retry-After`` header asks; other HTTP 4xx errors are raised at once.
* `run_tap` runs an ADQL query through `pyvo` (synchronously, or asynchronously when
  the result overflows the service's synchronous row limit). An answer without the
  ``QUERY_STATUS`` INFO that the TAP standard requires is refused with an `ArchiveError`
  (a truncated result could not be told from a complete one).
* `ColumnMap` renames a service's columns to the package's canonical names,
  case-insensitively (archives return ``SOURCE_ID`` in some formats, ``source_id`` in
  others).
"""
from __future__ import annotations

import hashlib
import io
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import numpy as np
import requests
from astropy import log
from astropy.table import Table

from ..exceptions import ArchiveError, InputDataError
from ..utils.columns import find_column

__all__ = ["cache_dir", "DiskCache", "HTTPClient", "RetryableError", "HTTPStatusError",
           "ColumnMap",
           "run_tap", "chunked", "id_list_adql", "masked_to_nan", "query_catalogue",
           "unique_best", "finish_reference", "TAPLimits", "tap_limits", "ids_votable",
           "query_by_ids", "retry_after_seconds", "MAX_RETRY_AFTER", "check_http_status"]

#: HTTP status codes worth retrying (server-side or rate-limit problems).
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
#: Longest ``Retry-After`` wait honoured (s); a service asking for more fails at once.
MAX_RETRY_AFTER = 600.0


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` header value (RFC 9110, Sect. 10.2.3).

    Parameters
    ----------
    value : str or None
        The header: a number of seconds or an HTTP-date.
    now : float, optional
        The current POSIX time (default `time.time`), for HTTP-dates.

    Returns
    -------
    float or None
        The wait (>= 0), or None when ``value`` is absent or unreadable.

    Examples
    --------
    >>> retry_after_seconds("120")
    120.0
    >>> retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0)
    10.0
    """
    if value is None:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def cache_dir() -> Path:
    """Return the download cache directory (created if needed).

    ``conf.cache_dir`` when set, otherwise ``<astropy cache dir>/gaiarvs_cnn``.

    Returns
    -------
    pathlib.Path
        The existing cache directory.
    """
    from astropy.config.paths import get_cache_dir

    from ..settings import conf

    path = Path(conf.cache_dir) if conf.cache_dir else Path(get_cache_dir()) / "gaiarvs_cnn"
    path.mkdir(parents=True, exist_ok=True)
    return path


class DiskCache:
    """A content cache on disk, one file per request, written atomically.

    Parameters
    ----------
    namespace : str
        Sub-directory of `cache_dir` (e.g. ``"esa"``, ``"vizier"``).
    refresh : bool
        If True, `get` always misses (downloads again) but `put` still stores.
    """

    def __init__(self, namespace: str, refresh: bool = False):
        self.directory = cache_dir() / namespace
        self.refresh = refresh

    @staticmethod
    def key(*parts) -> str:
        """Return a stable hash of the request parts (URL, parameters, ...).

        Parameters
        ----------
        *parts
            Objects identifying the request; hashed through their `repr`.

        Returns
        -------
        str
            The first 40 hexadecimal digits of the SHA-256 digest.
        """
        h = hashlib.sha256()
        for p in parts:
            h.update(repr(p).encode())
            h.update(b"\0")
        return h.hexdigest()[:40]

    def path(self, key: str) -> Path:
        """Return the file that holds (or would hold) the payload of ``key``.

        Parameters
        ----------
        key : str
            Cache key, as returned by `key`.

        Returns
        -------
        pathlib.Path
            ``<directory>/<key>``; it may not exist.
        """
        return self.directory / key

    def get(self, key: str) -> bytes | None:
        """Return the cached payload, or None (also when ``refresh`` is set).

        Parameters
        ----------
        key : str
            Cache key, as returned by `key`.

        Returns
        -------
        bytes or None
            The stored payload; None on a miss or when ``refresh`` is set.
        """
        p = self.path(key)
        if self.refresh or not p.exists():
            return None
        return p.read_bytes()

    def put(self, key: str, payload: bytes) -> Path:
        """Store ``payload`` under ``key`` (`gaiarvs_cnn.utils.atomic.write_bytes_atomic`).

        Parameters
        ----------
        key : str
            Cache key, as returned by `key`.
        payload : bytes
            The content to store.

        Returns
        -------
        pathlib.Path
            The file now holding ``payload``.
        """
        from ..utils.atomic import write_bytes_atomic

        return write_bytes_atomic(self.path(key), payload)


class HTTPStatusError(ArchiveError):
    """A final (not retried) HTTP error answer; ``status`` and ``body`` say what the
    service answered (e.g. an HTTP 400 naming a rejected parameter)."""

    def __init__(self, message: str, status: int, body: str = ""):
        super().__init__(message)
        self.status, self.body = int(status), body


class RetryableError(ArchiveError):
    """A response arrived but is unusable in a way a new attempt may fix.

    For example a truncated zip file or an incomplete VOTable.
    """


class _TimeoutSession(requests.Session):
    """A `requests.Session` that applies a default timeout (pyvo passes none)."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


class HTTPClient:
    """HTTP with timeouts and retries (exponential backoff).

    Parameters
    ----------
    timeout : float, optional
        Seconds per request (connect and read); default ``conf.timeout``.
    retries : int, optional
        Extra attempts after a transient failure; default ``conf.retries``.
    backoff : float
        Seconds before the first retry; doubled at each further retry. A longer
        ``Retry-After`` (HTTP 429/503) is honoured instead.
    max_retry_after : float
        Longest ``Retry-After`` honoured (s); a service asking for more fails at once.
    """

    def __init__(self, timeout: float | None = None, retries: int | None = None,
                 backoff: float = 1.0, *, max_retry_after: float = MAX_RETRY_AFTER):
        from ..settings import conf

        self.timeout = float(conf.timeout if timeout is None else timeout)
        self.retries = int(conf.retries if retries is None else retries)
        self.backoff = float(backoff)
        self.max_retry_after = float(max_retry_after)
        #: TAP base URL -> `TAPLimits` read by `tap_limits`.
        self.tap_limits: dict = {}
        self.session = _TimeoutSession(self.timeout)

    def with_retries(self, what: str, func: Callable[[], object]):
        """Call ``func()``; retry transient failures; raise `ArchiveError` at the end.

        Parameters
        ----------
        what : str
            Names the request in messages (URL and purpose).
        func : callable
            Called without arguments; performs one attempt.

        Returns
        -------
        object
            What ``func()`` returned on the first successful attempt.

        Raises
        ------
        ArchiveError
            On a final error (HTTP 4xx other than 429, rejected query) or when every
            attempt failed.
        """
        from pyvo.dal import DALAccessError

        last, wait = None, None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                if wait is not None:  # the service said how long to wait (Retry-After)
                    delay = max(delay, wait)
                log.warning(f"{what}: attempt {attempt} failed ({last}); retrying in "
                            f"{delay:.2g} s.")
                time.sleep(delay)
            wait = None
            try:
                return func()
            except (requests.Timeout, requests.ConnectionError) as exc:
                last = f"{type(exc).__name__}: no answer within {self.timeout:g} s" \
                    if isinstance(exc, requests.Timeout) else f"connection failed: {exc}"
            except RetryableError as exc:
                last = str(exc)
            except _HTTPStatus as exc:
                if exc.status not in RETRY_STATUS:
                    raise HTTPStatusError(f"{what}: HTTP {exc.status} {exc.reason}. "
                                          f"{exc.body[:300]} Check the query or the "
                                          f"service URL in gaiarvs_cnn.conf.", exc.status,
                                          exc.body) from None
                last = f"HTTP {exc.status} {exc.reason}"
                wait = retry_after_seconds(exc.retry_after)
            except DALAccessError as exc:  # pyvo wraps HTTP problems in its own errors
                last = _transient_pyvo_problem(exc)
                if last is None:
                    raise _as_archive_error(what, exc) from exc
                wait = retry_after_seconds(_pyvo_retry_after(exc))
            if wait is not None:
                last += f", Retry-After {wait:.0f} s"
                if wait > self.max_retry_after:
                    raise ArchiveError(f"{what}: the service is rate-limiting ({last}), "
                                       f"longer than {self.max_retry_after:g} s. Try again "
                                       f"later.")
        raise ArchiveError(f"{what}: failed after {self.retries + 1} attempt(s); last "
                           f"error: {last}. Try again later or raise conf.retries/"
                           f"conf.timeout.")

    def fetch(self, method: str, url: str, *, what: str = "",
              validate: Callable[[bytes], None] | None = None, **kwargs) -> bytes:
        """Return the body of a successful request, retrying as described above.

        Parameters
        ----------
        method, url : str
            HTTP method and URL.
        what : str
            Purpose, used in messages.
        validate : callable, optional
            Called with the body; raises `RetryableError` if the payload is unusable
            (it is then downloaded again) or `ArchiveError` if it is final.
        **kwargs
            Passed to `requests.Session.request` (``data``, ``params``...).

        Returns
        -------
        bytes
            The response body.

        Raises
        ------
        ArchiveError
            On a final error or when every attempt failed.
        """
        label = f"{what or method} {url}"

        def once() -> bytes:
            resp = self.session.request(method, url, **kwargs)
            check_http_status(resp)
            body = resp.content
            if validate is not None:
                validate(body)
            return body

        return self.with_retries(label, once)


class _HTTPStatus(Exception):
    def __init__(self, status: int, reason: str, body: str, retry_after: str | None = None):
        super().__init__(f"HTTP {status}")
        self.status, self.reason, self.body = status, reason or "", body or ""
        self.retry_after = retry_after


def check_http_status(response: requests.Response) -> None:
    """Hand an HTTP error answer to the retry policy of `HTTPClient.with_retries`.

    For use inside the ``func`` given to `HTTPClient.with_retries`, also by clients that
    make their own requests (astroquery): an answer with status >= 400 is then retried
    (429, 5xx; ``Retry-After`` honoured) or becomes a final `HTTPStatusError`.

    Parameters
    ----------
    response : requests.Response
        The answer to check.

    Raises
    ------
    Exception
        The retry policy's internal signal when ``response.status_code >= 400``; only
        `HTTPClient.with_retries` is meant to catch it.
    """
    if response.status_code >= 400:
        raise _HTTPStatus(response.status_code, response.reason, response.text,
                          response.headers.get("Retry-After"))


def _pyvo_retry_after(exc: Exception) -> str | None:
    """The ``Retry-After`` header of the HTTP response behind a pyvo error, if any."""
    seen, cur = set(), exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        raw = getattr(cur, "retry_after_raw", None)  # pyvo >= 1.8 DALRateLimitError
        if raw is not None:
            return raw
        response = getattr(cur, "response", None)
        if response is not None and getattr(response, "headers", None) is not None:
            return response.headers.get("Retry-After")
        cur = getattr(cur, "cause", None) or cur.__cause__ or cur.__context__
    return None


def _transient_pyvo_problem(exc: Exception) -> str | None:
    """Describe a pyvo failure worth retrying (timeout, connection, HTTP 5xx, malformed
    VOTable), or return None when retrying cannot help."""
    from pyvo.dal import DALFormatError, DALServiceError

    seen, cur = set(), exc
    while cur is not None and id(cur) not in seen:  # timeouts hide in the cause chain
        seen.add(id(cur))
        if isinstance(cur, requests.Timeout):
            return f"no answer within the timeout ({cur})"
        if isinstance(cur, requests.ConnectionError):
            return f"connection failed: {cur}"
        cur = getattr(cur, "cause", None) or cur.__cause__ or cur.__context__
    if isinstance(exc, DALFormatError):
        return f"malformed VOTable ({exc})"
    if isinstance(exc, DALServiceError) and exc.code in RETRY_STATUS:
        return f"HTTP {exc.code}: {exc}"
    return None


def _as_archive_error(what: str, exc: Exception) -> ArchiveError:
    """A final (not retried) pyvo failure as an `ArchiveError` saying what to do."""
    from pyvo.dal import DALQueryError, DALServiceError

    if isinstance(exc, DALQueryError):
        return ArchiveError(f"{what}: the service rejected the query: {exc}")
    if isinstance(exc, DALServiceError) and exc.code is not None:
        return ArchiveError(f"{what}: HTTP {exc.code}: {exc}. Check the query and the "
                            f"service URL in gaiarvs_cnn.conf.")
    return ArchiveError(f"{what}: {type(exc).__name__}: {exc}")


def run_tap(client: HTTPClient, url: str, adql: str, *, sync_max_rows: int | None = None,
            mode: str = "auto", cache: DiskCache | None = None,
            async_timeout: float = 3600.0, uploads: Mapping[str, Table] | None = None
            ) -> Table:
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
        return Table.read(io.BytesIO(hit), format="ascii.ecsv")
    service = pyvo.dal.TAPService(url, session=client.session)
    what = f"TAP query at {url}"
    result = None
    if mode in ("auto", "sync"):
        with warnings.catch_warnings():  # an overflow is handled below (async re-run)
            warnings.simplefilter("ignore", DALOverflowWarning)
            result = client.with_retries(what + " (sync)", lambda: service.run_sync(adql, **extra))
        overflow = _query_status(result, what) == "OVERFLOW" or (
            sync_max_rows is not None and len(result) >= sync_max_rows)
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
        (one id row of the VOTable costs `ID_ROW_BYTES`; 10 % margin), the output limit
        (at least one result row per id) and ``ceiling`` (``conf.tap_upload_max_ids``).

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
            sizes.append(int(0.9 * (self.upload_bytes - ID_VOTABLE_OVERHEAD) / ID_ROW_BYTES))
        if self.output_rows:
            sizes.append(self.output_rows)
        return max(1, min(sizes))


#: Bytes of one ``<TR><TD>id</TD></TR>`` row (19-digit id) and of the VOTable around them.
ID_ROW_BYTES = 40
ID_VOTABLE_OVERHEAD = 2048


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
                 uploads: bool | None = None) -> Table:
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

    Returns
    -------
    astropy.table.Table
        The rows of every chunk, stacked.

    Raises
    ------
    InputDataError
        If ``ids`` is empty.
    ArchiveError
        If a query fails (see `run_tap`).
    """
    from astropy.table import vstack

    from ..settings import conf

    ids = np.unique(np.asarray(list(ids), dtype=np.int64))
    if ids.size == 0:
        raise InputDataError("Empty list of source ids.")
    limits = tap_limits(client, url) if uploads is None else TAPLimits(uploads=uploads)
    cond = f"\nWHERE {where}" if where else ""
    parts = []
    if limits.uploads:
        size = limits.ids_per_upload(upload_size or conf.tap_upload_max_ids)
        adql = (f"SELECT {select}\nFROM TAP_UPLOAD.{UPLOAD_NAME} AS u\nJOIN {table} ON "
                f"{id_column} = u.source_id{' ' + joins if joins else ''}{cond}")
        for group in chunked(ids, size):
            # more ids than the synchronous row cap: go asynchronous at once
            mode = "async" if sync_max_rows and len(group) > sync_max_rows else "auto"
            parts.append(run_tap(client, url, adql, cache=cache, sync_max_rows=sync_max_rows,
                                 uploads={UPLOAD_NAME: ids_votable(group)}, mode=mode))
    else:
        size = in_list_size or conf.tap_in_list_max_ids
        for group in chunked(ids, size):
            adql = (f"SELECT {select}\nFROM {table}{' ' + joins if joins else ''}\nWHERE "
                    f"{id_list_adql(id_column, group)}{' AND ' + where if where else ''}")
            parts.append(run_tap(client, url, adql, cache=cache, sync_max_rows=sync_max_rows))
    return vstack(parts, metadata_conflicts="silent") if len(parts) > 1 else parts[0]


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


class ColumnMap:
    """Case-insensitive mapping from a service's column names to canonical names.

    Parameters
    ----------
    mapping : mapping of str to str or sequence of str
        Canonical name -> the service's column name, or several candidate names
        (first found wins; e.g. the survey's FITS name and its VizieR label).
    required : sequence of str, optional
        Canonical names that must be found (default: all of ``mapping``).
    service : str
        Name used in error messages.

    Examples
    --------
    >>> from astropy.table import Table
    >>> t = Table({"SOURCE_ID": [1, 2], "Teff": [5000.0, 4800.0]})
    >>> ColumnMap({"source_id": "source_id", "teff": ("TEFF", "Teff")}).apply(t).colnames
    ['source_id', 'teff']
    """

    def __init__(self, mapping: Mapping[str, str | Sequence[str]],
                 required: Sequence[str] | None = None, service: str = "service"):
        self.mapping = {k: ((v,) if isinstance(v, str) else tuple(v))
                        for k, v in mapping.items()}
        self.required = tuple(self.mapping if required is None else required)
        self.service = service

    def find(self, table: Table, canonical: str) -> str | None:
        """Return the table's column holding ``canonical`` (None if absent).

        Parameters
        ----------
        table : astropy.table.Table
            The service's table.
        canonical : str
            A canonical name, a key of ``mapping``.

        Returns
        -------
        str or None
            The first candidate name found in ``table`` (as the table spells it),
            or None.
        """
        return find_column(table.colnames, *self.mapping[canonical])

    def apply(self, table: Table, keep_other: bool = False) -> Table:
        """Return a new Table with canonical column names (units and meta kept).

        Parameters
        ----------
        table : astropy.table.Table
            The service's table.
        keep_other : bool
            If True, also keep the columns the map does not name, under their own names.

        Returns
        -------
        astropy.table.Table
            The mapped columns under their canonical names (plus the others when
            ``keep_other``).

        Raises
        ------
        ArchiveError
            Listing the required columns that the service did not return.
        """
        out = Table(meta=dict(table.meta))
        missing = []
        used = set()
        for canonical in self.mapping:
            src = self.find(table, canonical)
            if src is None:
                if canonical in self.required:
                    missing.append(f"{canonical} (as {'/'.join(self.mapping[canonical])})")
                continue
            out[canonical] = table[src]
            used.add(src)
        if missing:
            raise ArchiveError(f"{self.service} result lacks column(s) {missing}; it has "
                               f"{table.colnames[:30]}. The service may have renamed them: "
                               f"update the adapter's column map.")
        if keep_other:
            for c in table.colnames:
                if c not in used and c.lower() not in {n.lower() for n in out.colnames}:
                    out[c] = table[c]
        return out


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


def masked_to_nan(col) -> np.ndarray:
    """Return a float array with masked entries as NaN.

    Parameters
    ----------
    col : array-like or astropy.table.Column
        Values, possibly masked.

    Returns
    -------
    numpy.ndarray
        Float values, NaN where ``col`` was masked.
    """
    return np.ma.filled(np.ma.asarray(col, dtype=float), np.nan)


def query_catalogue(table: str, *, url: str, id_column: str | None = None,
                    ids: Iterable[int] | None = None, columns: str | ColumnMap = "*",
                    client: HTTPClient | None = None, refresh: bool = False,
                    namespace: str = "vizier", ids_per_query: int = 1000,
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
    ids_per_query : int
        Largest number of identifiers per ``IN`` list (the fallback without uploads).
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


def unique_best(table: Table, key: str, score: str | None = None) -> Table:
    """Keep one row per ``key`` value: the one with the highest ``score`` (or the first).

    Parameters
    ----------
    table : astropy.table.Table
        Input rows.
    key : str
        Column whose values should be unique.
    score : str, optional
        Column ranking duplicates (highest kept; NaN or masked ranks last); when None
        or absent from ``table``, the first row of each ``key`` value is kept.

    Returns
    -------
    astropy.table.Table
        One row per distinct ``key`` value, in input order.
    """
    if len(table) == 0:
        return table
    order = np.arange(len(table))
    if score is not None and score in table.colnames:
        order = np.argsort(-np.nan_to_num(masked_to_nan(table[score]), nan=-np.inf),
                           kind="stable")
    t = table[order]
    _, first = np.unique(np.asarray(t[key]), return_index=True)
    return t[np.sort(first)]


def finish_reference(t: Table, cut: Callable[[Table], np.ndarray] | None = None,
                     score: str | None = None, meta: Mapping | None = None,
                     unique: bool = True) -> Table:
    """Common last steps of a reference adapter on a canonical-named table.

    Drops rows without a Gaia id (0 or masked), applies ``cut`` (a function returning a
    boolean mask), keeps one row per source_id (highest ``score``) when ``unique``, and
    sets the canonical units of `~gaiarvs_cnn.io.reference.COLUMN_UNITS` (the values
    of every adapter's columns are already in those units; the services' unit strings,
    e.g. VizieR's ``[cm/s2]``, are not always parseable).

    Parameters
    ----------
    t : astropy.table.Table
        Table with canonical column names, including ``source_id``.
    cut : callable, optional
        Called with the table; returns a boolean mask of the rows to keep.
    score : str, optional
        Column ranking duplicate source_ids (see `unique_best`).
    meta : mapping, optional
        Entries added to the table's ``meta``.
    unique : bool
        If True, keep one row per source_id.

    Returns
    -------
    astropy.table.Table
        The cleaned table, with canonical units on the columns of ``COLUMN_UNITS``
        (masked values as NaN).
    """
    from ..io.reference import COLUMN_UNITS

    sid = np.ma.filled(np.ma.asarray(t["source_id"]), 0).astype(np.int64)
    t["source_id"] = sid
    t = t[sid > 0]
    if cut is not None and len(t):
        t = t[np.asarray(cut(t), dtype=bool)]
    if unique:
        t = unique_best(t, "source_id", score)
    for name, unit in COLUMN_UNITS.items():
        if name in t.colnames:
            t[name] = masked_to_nan(t[name])
            t[name].unit = unit
    t.meta.update(meta or {})
    return t
