"""The one HTTP client of the archive adapters: a session with timeouts and retries.

`HTTPClient` sends requests with a timeout (``conf.timeout``) and retries transient
failures (see `gaiarvs_cnn.archives.retry`) with exponential backoff (``conf.retries``),
waiting at least as long as an HTTP 429/503 ``Retry-After`` header asks; other HTTP 4xx
errors are raised at once. Its ``session`` is also the one `pyvo` uses for TAP.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import requests
from astropy import log

from ..exceptions import ArchiveError
from .retry import (
    MAX_RETRY_AFTER,
    RETRY_STATUS,
    HTTPStatusError,
    RetryableError,
    _as_archive_error,
    _HTTPStatus,
    _pyvo_retry_after,
    _transient_pyvo_problem,
    check_http_status,
    retry_after_seconds,
)

__all__ = ["HTTPClient"]


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
