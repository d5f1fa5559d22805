"""Atomic writes: every user-visible file is written under a temporary name and renamed.

One temporary-name scheme for the whole package: ``.<name>.<pid>.<random>.tmp`` in the
directory of the final file (same file system, so `os.replace` is atomic; hidden, so a
listing of the output directory never shows it; unique, so concurrent writers never share
one). A crash leaves at most such a hidden file, never a truncated file under the final
name.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..exceptions import OutputExistsError

__all__ = ["TMP_SUFFIX", "temporary_path", "atomic_path", "atomic_directory",
           "write_bytes_atomic", "write_text_atomic", "write_json_atomic", "chmod_default",
           "is_temporary", "refuse_existing", "replace_directory", "remove_path"]

#: Suffix of every temporary file or directory made by this module.
TMP_SUFFIX = ".tmp"


def temporary_path(path, *, suffix: str = "") -> Path:
    """A unique hidden temporary sibling of ``path`` (nothing is created).

    Parameters
    ----------
    path : str or path-like
        The final file name.
    suffix : str, optional
        Appended after ``.tmp``, for writers that insist on an extension (Keras: ``.keras``).

    Returns
    -------
    `~pathlib.Path`
        ``<dir>/.<name>.<pid>.<random>.tmp<suffix>``.
    """
    path = Path(path)
    token = f"{os.getpid()}.{secrets.token_hex(4)}"
    return path.with_name(f".{path.name}.{token}{TMP_SUFFIX}{suffix}")


def is_temporary(path) -> bool:
    """Whether ``path`` is a temporary name made by `temporary_path`."""
    name = Path(path).name
    return name.startswith(".") and TMP_SUFFIX in name


def chmod_default(path) -> None:
    """Give a file or directory the mode a plain ``open``/``mkdir`` would (umask applied).

    `tempfile` creates 0600 files and 0700 directories; published files should not differ
    in mode from files written directly.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~umask)


def remove_path(path) -> None:
    """Remove a file or a directory tree (a temporary output); nothing if it is absent."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_path(path, *, mkdir: bool = True, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``path`` when the block succeeds.

    On an exception the temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or path-like
        The final file name (replaced if it exists: callers decide about overwriting).
    mkdir : bool, optional
        Create the parent directory first.
    suffix : str, optional
        Extension kept at the end of the temporary name (see `temporary_path`).

    Yields
    ------
    `~pathlib.Path`
        Where to write.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "a.txt").read_text()
    'done'
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path, suffix=suffix)
    try:
        yield tmp
        if tmp.exists():
            chmod_default(tmp)
        os.replace(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path) -> Iterator[Path]:
    """Yield a temporary directory; it replaces ``path`` (a directory) when the block succeeds.

    An existing ``path`` is moved aside first and removed only once the new one is in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    tmp.mkdir()
    try:
        yield tmp
        replace_directory(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise


def replace_directory(finished, path) -> None:
    """Move the finished directory ``finished`` to ``path``, replacing what is there.

    The old directory is moved aside first and removed only once the new one is in place, so
    ``path`` always holds a complete directory. ``finished`` must be on the same file system
    (a `temporary_path` sibling).
    """
    path = Path(path)
    chmod_default(finished)
    if path.exists():
        old = temporary_path(path)
        os.replace(path, old)
        os.replace(finished, path)
        remove_path(old)
    else:
        os.replace(finished, path)


def write_bytes_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_text_atomic(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_json_atomic(path, obj, *, indent: int = 1, sort_keys: bool = False) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically; returns ``path``.

    Parameters
    ----------
    path : str or path-like
        Destination file; parent directories are created.
    obj : object
        JSON-serialisable object; numpy scalars and arrays and paths are converted.
    indent : int, optional
        JSON indentation.
    sort_keys : bool, optional
        Sort the keys of every mapping.

    Returns
    -------
    `~pathlib.Path`
        ``path``.

    Raises
    ------
    TypeError
        If ``obj`` holds something that is not JSON serialisable.
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, default=_json_default)
    return write_text_atomic(path, text)


def refuse_existing(path, *, overwrite: bool, what: str = "") -> None:
    """Raise `~gaiarvs_cnn.exceptions.OutputExistsError` if ``path`` exists and not ``overwrite``.

    The error's ``parameter`` is ``"overwrite"``; the command line names its own flag for it
    (``--overwrite``).

    Parameters
    ----------
    path : str or path-like
        The output about to be written.
    overwrite : bool
        Whether replacing it was requested.
    what : str, optional
        What the file is (``"catalogue"``, ``"store"``), for the message.
    """
    if not overwrite and Path(path).exists():
        raise OutputExistsError(path, what=what)
