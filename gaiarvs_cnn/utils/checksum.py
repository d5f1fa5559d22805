"""Checksums of files: the one SHA-256 reader of the package."""
from __future__ import annotations

import hashlib

__all__ = ["sha256_file"]

_BLOCK = 1 << 20


def sha256_file(path) -> str:
    """Return the hexadecimal SHA-256 digest of a file, read in 1 MiB blocks.

    Parameters
    ----------
    path : path-like
        File to hash.

    Returns
    -------
    str
        The SHA-256 digest as 64 lowercase hexadecimal characters.

    Raises
    ------
    OSError
        If the file cannot be opened or read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
