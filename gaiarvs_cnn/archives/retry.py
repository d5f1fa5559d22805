"""The retry policy of the archive adapters: which failures are transient, how long to wait.

`classify` sorts every failure of one attempt (`gaiarvs_cnn.archives.http.HTTPClient`
runs the attempts with `tenacity`):

* transient, retried: connection errors and resets, also in the middle of an answer
  (``ChunkedEncodingError``, ``IncompleteRead``), time-outs and an exceeded
  ``conf.request_deadline`` (`DeadlineExceeded`), HTTP 429/500/502/503/504, answers that
  fail validation (`RetryableError`: a truncated zip, a malformed VOTable, an empty
  DataLink answer); a ``Retry-After`` header (HTTP 429/503) sets the shortest wait;
* final, raised at once as an `~gaiarvs_cnn.exceptions.ArchiveError`: other HTTP 4xx
  answers (`HTTPStatusError`), a query the service rejects, an answer larger than
  ``conf.max_response_bytes`` (`ResponseTooLarge`), a ``Retry-After`` longer than the
  client accepts.

The errors of `pyvo`, which wraps HTTP problems in its own exceptions, are translated
here too.
"""
from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import requests
import urllib3

from ..exceptions import ArchiveError

__all__ = ["RETRY_STATUS", "MAX_RETRY_AFTER", "retry_after_seconds", "HTTPStatusError",
           "RetryableError", "ResponseTooLarge", "DeadlineExceeded", "Transient",
           "check_http_status", "classify", "exception_chain"]

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


class HTTPStatusError(ArchiveError):
    """A final (not retried) HTTP error answer; ``status`` and ``body`` say what the
    service answered (e.g. an HTTP 400 naming a rejected parameter)."""

    def __init__(self, message: str, status: int, body: str = ""):
        super().__init__(message)
        self.status, self.body = int(status), body


class RetryableError(ArchiveError):
    """A response arrived but is unusable in a way a new attempt may fix.

    For example a truncated zip file, an incomplete VOTable or an empty DataLink answer.
    """


class ResponseTooLarge(ArchiveError):
    """An answer larger than the client's byte limit (``conf.max_response_bytes``, after
    gzip/deflate decoding); it is not read further and not retried."""


class DeadlineExceeded(requests.Timeout):
    """A request not finished within its total deadline (``conf.request_deadline``): its
    connection was cut. Transient (retried) like any time-out."""


class Transient(Exception):
    """One failed attempt worth retrying: ``reason`` for the messages and ``retry_after``,
    the wait (s) the service asked for, or None. Raised by `classify` (``from`` the
    original error) for the retry loop of `~gaiarvs_cnn.archives.http.HTTPClient`."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class _HTTPStatus(Exception):
    def __init__(self, status: int, reason: str, body: str, retry_after: str | None = None):
        super().__init__(f"HTTP {status}")
        self.status, self.reason, self.body = status, reason or "", body or ""
        self.retry_after = retry_after


#: Most characters of an HTTP error answer kept for the message.
ERROR_BODY_CHARS = 65536


def check_http_status(response: requests.Response) -> None:
    """Hand an HTTP error answer to the retry policy (`classify`).

    For use inside the ``func`` given to `HTTPClient.with_retries`, also by clients that
    make their own requests (astroquery): an answer with status >= 400 is then retried
    (429, 5xx; ``Retry-After`` honoured) or becomes a final `HTTPStatusError`. At most
    `ERROR_BODY_CHARS` of the error answer are read.

    Parameters
    ----------
    response : requests.Response
        The answer to check.

    Raises
    ------
    Exception
        The retry policy's internal signal when ``response.status_code >= 400``; only
        `classify` is meant to read it.
    """
    if response.status_code < 400:
        return
    if getattr(response, "_content_consumed", True):
        text = response.text[:ERROR_BODY_CHARS]
    else:  # streamed: read only the start of the error answer
        try:
            head = next(response.iter_content(ERROR_BODY_CHARS), b"")
        except (requests.RequestException, ArchiveError):
            head = b""
        response.close()
        text = head.decode(response.encoding or "utf-8", "replace")
    raise _HTTPStatus(response.status_code, response.reason, text,
                      response.headers.get("Retry-After"))


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes (``cause`` of pyvo errors, ``__cause__``, ``__context__``).

    Parameters
    ----------
    exc : BaseException
        The error raised.

    Yields
    ------
    BaseException
        ``exc``, then each cause once (a cycle ends the chain).
    """
    seen, cur = set(), exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = getattr(cur, "cause", None) or cur.__cause__ or cur.__context__


#: Errors of the transport layer that a new attempt may not meet (the connection dropped,
#: also in the middle of an answer; the answer was cut or its encoding broken).
_TRANSPORT_ERRORS = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
                     requests.exceptions.ContentDecodingError,
                     urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError,
                     http.client.IncompleteRead, ConnectionError)


def classify(what: str, exc: BaseException, *, timeout: float | None = None,
             max_retry_after: float = MAX_RETRY_AFTER) -> Transient | ArchiveError | None:
    """Sort the failure of one attempt: a `Transient` to retry, or the final error.

    Parameters
    ----------
    what : str
        Names the request in messages (URL and purpose).
    exc : BaseException
        What the attempt raised.
    timeout : float, optional
        The client's time-out (s), for the message of a time-out.
    max_retry_after : float
        Longest ``Retry-After`` accepted (s); a service asking for more gives a final
        error at once.

    Returns
    -------
    Transient or ArchiveError or None
        To be raised ``from exc`` by the caller; None when ``exc`` is no archive problem
        (a programming error: the caller re-raises it unchanged).
    """
    from pyvo.dal import DALAccessError, DALFormatError, DALServiceError

    chain = list(exception_chain(exc))
    for cur in chain:  # final whatever wraps it (pyvo wraps what a read raises)
        if isinstance(cur, ArchiveError) and not isinstance(cur, RetryableError):
            return cur
    transient: Transient | None = None
    for cur in chain:
        if isinstance(cur, DeadlineExceeded):
            transient = Transient(str(cur))
        elif isinstance(cur, requests.Timeout):
            transient = Transient(f"{type(cur).__name__}: no answer within "
                                  f"{timeout:g} s" if timeout else f"time-out ({cur})")
        elif isinstance(cur, _TRANSPORT_ERRORS):
            transient = Transient(f"connection failed or cut: {type(cur).__name__}: {cur}")
        elif isinstance(cur, RetryableError):
            transient = Transient(str(cur))
        elif isinstance(cur, _HTTPStatus):
            if cur.status not in RETRY_STATUS:
                return HTTPStatusError(f"{what}: HTTP {cur.status} {cur.reason}. "
                                       f"{cur.body[:300]} Check the query or the service "
                                       f"URL in gaiarvs_cnn.conf.", cur.status, cur.body)
            transient = Transient(f"HTTP {cur.status} {cur.reason}",
                                  retry_after_seconds(cur.retry_after))
        if transient is not None:
            break
    if transient is None and isinstance(exc, DALAccessError):
        if isinstance(exc, DALFormatError):
            transient = Transient(f"malformed VOTable ({exc})")
        elif isinstance(exc, DALServiceError) and exc.code in RETRY_STATUS:
            transient = Transient(f"HTTP {exc.code}: {exc}")
        else:
            return _as_archive_error(what, exc)
        transient.retry_after = retry_after_seconds(_pyvo_retry_after(exc))
    if transient is None:
        return None  # not an archive problem (a programming error): the caller re-raises
    if transient.retry_after is not None:
        transient.reason += f", Retry-After {transient.retry_after:.0f} s"
        if transient.retry_after > max_retry_after:
            return ArchiveError(f"{what}: the service is rate-limiting ({transient.reason}), "
                                f"longer than {max_retry_after:g} s. Try again later.")
    return transient


def _pyvo_retry_after(exc: Exception) -> str | None:
    """The ``Retry-After`` header of the HTTP response behind a pyvo error, if any."""
    for cur in exception_chain(exc):
        raw = getattr(cur, "retry_after_raw", None)  # pyvo >= 1.8 DALRateLimitError
        if raw is not None:
            return raw
        response = getattr(cur, "response", None)
        if response is not None and getattr(response, "headers", None) is not None:
            return response.headers.get("Retry-After")
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
