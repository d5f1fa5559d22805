"""The download cache of the archive adapters: one file per request, written atomically.

`DiskCache` keeps downloaded payloads in the astropy cache directory
(``astropy.config.paths.get_cache_dir()/gaiarvs_cnn``, or ``conf.cache_dir``) so that a
repeated validation run does not download again; ``refresh=True`` bypasses it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["cache_dir", "DiskCache"]


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

    def has(self, key: str) -> bool:
        """Whether ``key`` is cached (always False when ``refresh`` is set).

        Parameters
        ----------
        key : str
            Cache key, as returned by `key`.

        Returns
        -------
        bool
            True when `path` holds the payload and ``refresh`` is not set.
        """
        return not self.refresh and self.path(key).exists()

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
