"""Checksums of files: the one SHA-256 reader of the package."""
from __future__ import annotations

import hashlib

__all__ = ["sha256_file"]


def sha256_file(path) -> str:
    """Return the hexadecimal SHA-256 digest of a file (`hashlib.file_digest`, read in blocks).

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
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
