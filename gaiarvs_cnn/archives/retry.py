"""The retry policy of the archive adapters: which failures are transient, how long to wait.

Connection errors, timeouts, HTTP 5xx/429 and payloads that fail validation
(`RetryableError`) are transient; a ``Retry-After`` header (HTTP 429/503) sets the
shortest wait. Other HTTP 4xx answers become a final `HTTPStatusError`. The errors of
`pyvo` (which wraps HTTP problems in its own exceptions) are translated here too.
"""
from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

import requests

from ..exceptions import ArchiveError

__all__ = ["RETRY_STATUS", "MAX_RETRY_AFTER", "retry_after_seconds", "HTTPStatusError",
           "RetryableError", "check_http_status"]

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

    For example a truncated zip file or an incomplete VOTable.
    """


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
