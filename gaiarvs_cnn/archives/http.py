"""The one HTTP client of the archive adapters: bounded, streamed requests with retries.

Every request of `HTTPClient` -- its own (`HTTPClient.fetch`, `HTTPClient.download`) and
those `pyvo` makes for TAP through ``HTTPClient.session`` -- is bounded:

* **time**: ``conf.timeout`` to connect and for each silence while the answer arrives,
  and ``conf.request_deadline`` in all, from sending the request to the last byte of the
  answer. A watchdog thread cuts the connection of a request past its deadline, so a
  server trickling one byte a second is cut off too (`DeadlineExceeded`, retried);
* **memory**: answers are streamed, never read whole by the client: at most
  ``conf.max_response_bytes`` of body, counted after gzip/deflate decoding (so a
  compressed "bomb" stops at the same limit; urllib3 >= 2.6 inflates only what each
  read asks for), else `ResponseTooLarge` (final). `HTTPClient.download` writes the
  answer to a file chunk by chunk, so its memory does not grow with the answer.

Failed attempts are sorted by `gaiarvs_cnn.archives.retry.classify` and retried with
`tenacity`: ``conf.retries`` more attempts, exponential backoff, at least as long as a
``Retry-After`` header asks; connection resets in the middle of an answer are retried
like any other connection error.
"""
from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests
import urllib3
from astropy import log
from requests.adapters import HTTPAdapter

from ..exceptions import ArchiveError
from .retry import (
    MAX_RETRY_AFTER,
    DeadlineExceeded,
    ResponseTooLarge,
    Transient,
    check_http_status,
    classify,
)

__all__ = ["HTTPClient", "DOWNLOAD_CHUNK"]

#: Bytes per read when streaming an answer.
DOWNLOAD_CHUNK = 1 << 16


# -- deadlines ----------------------------------------------------------------------------
class _Deadline:
    """The deadline of one request and the connections it has used."""

    def __init__(self, seconds: float):
        self.seconds = float(seconds)
        self.at = time.monotonic() + self.seconds
        #: (connection, socket) pairs used by the request
        self.sockets: list = []
        self.expired = self.finished = False

    def attach(self, connection) -> None:
        """Put ``connection`` (and its socket, once connected) under this deadline."""
        connection.gaiarvs_deadline = self
        self.record(connection)

    def record(self, connection) -> None:
        if getattr(connection, "sock", None) is not None:
            self.sockets.append((connection, connection.sock))

    def expire(self) -> None:
        """Cut the sockets still serving this request (called by the watchdog).

        The socket, not the connection: a response that ends its connection keeps the
        socket after the connection has let go of it. A connection already serving
        another request is left alone.
        """
        if self.finished:
            return
        self.expired = True
        for conn, sock in self.sockets:
            if getattr(conn, "gaiarvs_deadline", None) is self:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # a blocked read returns at once
                except OSError:
                    pass

    def finish(self) -> None:
        """The answer has been read (or the request failed): nothing left to cut."""
        if not self.expired:
            self.finished = True
            self.sockets = []

    def error(self, what: str) -> DeadlineExceeded:
        return DeadlineExceeded(f"{what}: not complete within the request deadline of "
                                f"{self.seconds:g} s (conf.request_deadline); the "
                                f"connection was cut")


class _Watchdog:
    """One daemon thread that expires the deadlines of every request in this process."""

    def __init__(self):
        self._heap: list = []
        self._cond = threading.Condition()
        self._counter = itertools.count()
        self._pid = None

    def watch(self, deadline: _Deadline) -> None:
        with self._cond:
            if self._pid != os.getpid():  # first use, or a forked child: (re)start
                self._pid, self._heap = os.getpid(), []
                threading.Thread(target=self._run, name="gaiarvs-http-deadlines",
                                 daemon=True).start()
            heapq.heappush(self._heap, (deadline.at, next(self._counter), deadline))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                at, _, deadline = self._heap[0]
                wait = at - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
            deadline.expire()


_WATCHDOG = _Watchdog()
#: The deadline of the request being sent by this thread (read by the connections).
_CURRENT = threading.local()


class _WatchedMixin:
    """A urllib3 connection that puts itself under the current request's deadline."""

    gaiarvs_deadline = None

    def request(self, *args, **kwargs):
        deadline = getattr(_CURRENT, "deadline", None)
        self.gaiarvs_deadline = deadline
        if deadline is not None:
            deadline.attach(self)
        return super().request(*args, **kwargs)

    def connect(self):
        super().connect()
        if self.gaiarvs_deadline is not None:
            self.gaiarvs_deadline.record(self)


class _WatchedHTTPConnection(_WatchedMixin, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedMixin, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """`requests` adapter whose connections obey the request deadlines."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool,
                                                   "https": _WatchedHTTPSPool}


# -- the session ----------------------------------------------------------------------------
class _BoundedSession(requests.Session):
    """A `requests.Session` whose every request is bounded in time and size.

    Parameters
    ----------
    timeout : float
        Connect and read time-out (s), applied when the caller (pyvo) gives none.
    deadline : float
        Seconds for the whole request, the body included.
    max_bytes : int
        Largest body (decoded bytes).
    """

    def __init__(self, timeout: float, deadline: float, max_bytes: int):
        super().__init__()
        self.timeout, self.deadline, self.max_bytes = timeout, deadline, int(max_bytes)
        for prefix in ("http://", "https://"):
            self.mount(prefix, _WatchedAdapter())
        self.hooks["response"].append(self._bound_body)

    def request(self, method, url, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        deadline = _Deadline(self.deadline)
        _WATCHDOG.watch(deadline)
        outer = getattr(_CURRENT, "deadline", None)
        _CURRENT.deadline = deadline
        try:
            response = super().request(method, url, **kwargs)
        except Exception as exc:
            deadline.finish()
            if deadline.expired and not isinstance(exc, ArchiveError):
                raise deadline.error(f"{method} {url}") from exc
            raise
        finally:
            _CURRENT.deadline = outer
        if response._content_consumed:
            deadline.finish()
        return response

    def _bound_body(self, response: requests.Response, **kwargs) -> requests.Response:
        """Response hook: the body can only be read through the limits."""
        deadline = _CURRENT.deadline
        raw, what = response.raw, f"{response.request.method} {response.url}"
        limit = self.max_bytes
        size = response.headers.get("Content-Length", "")
        if size.isdigit() and int(size) > limit and "Content-Encoding" not in response.headers:
            response.close()
            raise _too_large(what, limit, f"announces {int(size)} bytes")
        count = [0]

        def account(data: bytes) -> bytes:
            if deadline.expired:
                raise deadline.error(what)
            count[0] += len(data)
            if count[0] > limit:
                response.close()
                raise _too_large(what, limit, "is longer")
            return data

        read, read_chunked = raw.read, raw.read_chunked

        def bounded_read(amt=None, decode_content=None, **kw):
            try:
                data = read(amt, decode_content=decode_content, **kw)
            except Exception as exc:
                if deadline.expired:
                    raise deadline.error(what) from exc
                raise
            data = account(data)
            if not data or amt is None:
                deadline.finish()
            return data

        def bounded_read_chunked(amt=None, decode_content=None):
            chunks = read_chunked(amt, decode_content=decode_content)
            while True:
                try:
                    data = next(chunks)
                except StopIteration:
                    if deadline.expired:
                        raise deadline.error(what) from None
                    deadline.finish()
                    return
                except Exception as exc:
                    if deadline.expired:
                        raise deadline.error(what) from exc
                    raise
                yield account(data)

        raw.read, raw.read_chunked = bounded_read, bounded_read_chunked
        return response


def _too_large(what: str, limit: int, how: str) -> ResponseTooLarge:
    return ResponseTooLarge(f"{what}: the answer {how} than the limit of {limit} bytes "
                            f"(conf.max_response_bytes, counted after decompression); not "
                            f"read further. Raise conf.max_response_bytes if this answer "
                            f"is expected, or ask for less per request.")


# -- the client ------------------------------------------------------------------------------
class HTTPClient:
    """HTTP with bounds (time, size) and retries with exponential backoff.

    Parameters
    ----------
    timeout : float, optional
        Seconds to connect and of silence while an answer arrives; default
        ``conf.timeout``.
    retries : int, optional
        Extra attempts after a transient failure; default ``conf.retries``.
    backoff : float
        Seconds before the first retry; doubled at each further retry. A longer
        ``Retry-After`` (HTTP 429/503) is honoured instead.
    max_retry_after : float
        Longest ``Retry-After`` honoured (s); a service asking for more fails at once.
    deadline : float, optional
        Seconds for one whole request, the answer included; default
        ``conf.request_deadline``.
    max_bytes : int, optional
        Largest answer (bytes, decoded); default ``conf.max_response_bytes``.
    """

    def __init__(self, timeout: float | None = None, retries: int | None = None,
                 backoff: float = 1.0, *, max_retry_after: float = MAX_RETRY_AFTER,
                 deadline: float | None = None, max_bytes: int | None = None):
        from ..settings import conf

        self.timeout = float(conf.timeout if timeout is None else timeout)
        self.retries = int(conf.retries if retries is None else retries)
        self.backoff = float(backoff)
        self.max_retry_after = float(max_retry_after)
        self.deadline = float(conf.request_deadline if deadline is None else deadline)
        self.max_bytes = int(conf.max_response_bytes if max_bytes is None else max_bytes)
        #: TAP base URL -> `TAPLimits` read by `tap_limits`.
        self.tap_limits: dict = {}
        self.session = _BoundedSession(self.timeout, self.deadline, self.max_bytes)

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
            On a final error (HTTP 4xx other than 429, rejected query, answer too large)
            or when every attempt failed.
        """
        import tenacity

        def attempt():
            try:
                return func()
            except Exception as exc:
                verdict = classify(what, exc, timeout=self.timeout,
                                   max_retry_after=self.max_retry_after)
                if verdict is None or verdict is exc:
                    raise
                raise verdict from exc

        def wait(state) -> float:
            delay = self.backoff * 2 ** (state.attempt_number - 1)
            ask = state.outcome.exception().retry_after
            return delay if ask is None else max(delay, ask)

        def before_sleep(state) -> None:
            log.warning(f"{what}: attempt {state.attempt_number} failed "
                        f"({state.outcome.exception().reason}); retrying in "
                        f"{state.next_action.sleep:.2g} s.")

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(Transient),
            stop=tenacity.stop_after_attempt(self.retries + 1), wait=wait,
            before_sleep=before_sleep, sleep=lambda s: time.sleep(s))
        try:
            return retrying(attempt)
        except tenacity.RetryError as exc:
            last = exc.last_attempt.exception()
            raise ArchiveError(f"{what}: failed after {self.retries + 1} attempt(s); last "
                               f"error: {last.reason}. Try again later or raise "
                               f"conf.retries/conf.timeout.") from last.__cause__

    def fetch(self, method: str, url: str, *, what: str = "",
              validate: Callable[[bytes], None] | None = None, **kwargs) -> bytes:
        """Return the body of a successful request (at most ``max_bytes``), retrying.

        Meant for small answers (checksum lists); large ones go to a file with
        `download`.

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
        def once() -> bytes:
            with self.session.request(method, url, stream=True, **kwargs) as resp:
                check_http_status(resp)
                body = b"".join(resp.iter_content(DOWNLOAD_CHUNK))
            if validate is not None:
                validate(body)
            return body

        return self.with_retries(f"{what or method} {url}", once)

    def download(self, method: str, url: str, path, *, what: str = "",
                 validate: Callable[[Path], None] | None = None, **kwargs) -> Path:
        """Stream the body of a successful request into the file ``path``, retrying.

        The body goes to a temporary file chunk by chunk (memory does not grow with
        the answer), is checked by ``validate`` and only then renamed to ``path``
        (`gaiarvs_cnn.utils.atomic.atomic_path`): an answer that fails is never left
        under the final name.

        Parameters
        ----------
        method, url : str
            HTTP method and URL.
        path : path-like
            The final file (replaced if it exists).
        what : str
            Purpose, used in messages.
        validate : callable, optional
            Called with the temporary file's path; raises `RetryableError` if the
            payload is unusable (downloaded again) or `ArchiveError` if it is final.
        **kwargs
            Passed to `requests.Session.request` (``data``, ``params``...).

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        ArchiveError
            On a final error or when every attempt failed.
        """
        from ..utils.atomic import atomic_path

        path = Path(path)

        def once() -> Path:
            with atomic_path(path) as tmp:
                with self.session.request(method, url, stream=True, **kwargs) as resp:
                    check_http_status(resp)
                    with open(tmp, "wb") as fh:
                        for chunk in resp.iter_content(DOWNLOAD_CHUNK):
                            fh.write(chunk)
                if validate is not None:
                    validate(tmp)
            return path

        return self.with_retries(f"{what or method} {url}", once)
