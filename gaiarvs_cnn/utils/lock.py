"""Run locks: one run at a time per output (catalogue, bundle, store) and work directory.

The commands that write a folder or a catalogue hold one (`RunLock.beside` the output):
``predict`` and ``produce-catalog`` (catalogue and work directory), ``train`` (bundle
directory; and each member while it trains), ``calibrate`` (the bundle), ``shard`` (the
shard folder) and ``validate`` (the report folder).

A lock is a small JSON file (``pid``, ``host``, ``started``) held with an exclusive
``fcntl.flock`` for the whole run. The kernel drops the ``flock`` when its process ends,
however it ends (SIGKILL included), so a lock file whose ``flock`` can be taken is stale:
it is taken over, with a warning naming the run that left it. A lock that is held refuses
the second run at once, naming the other run's pid and host.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from astropy import log

from ..exceptions import GaiaRVSCNNError

__all__ = ["RunLock", "RunLockedError"]


class RunLockedError(GaiaRVSCNNError):
    """Another run holds the lock of an output or work directory.

    Attributes
    ----------
    holder : dict
        What the lock file says about the other run (``pid``, ``host``, ``started``).
    """

    holder: dict = {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """Exclusive lock of one output (or work directory) for the duration of a run.

    Use as a context manager; the lock file is removed on exit.

    Parameters
    ----------
    path : str or path-like
        The lock file (its directory is created).
    what : str
        What is protected, for the message (e.g. ``"catalogue cat.fits"``).
    """

    def __init__(self, path, what: str):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    @classmethod
    def beside(cls, output, what: str) -> RunLock:
        """The lock of ``output`` (a file or directory): ``.<name>.lock`` next to it.

        Beside rather than inside, so that a directory replaced as a whole (or checked
        file by file, like a model bundle) never holds the lock file.

        Parameters
        ----------
        output : str or path-like
            The file or directory the run writes.
        what : str
            What it is, for the message (e.g. ``"model bundle my_bundle"``).

        Returns
        -------
        RunLock
            Not yet acquired.
        """
        output = Path(output)
        return cls(output.parent / f".{output.name}.lock", what)

    def _read_holder(self, fd: int) -> dict:
        with contextlib.suppress(OSError, ValueError):
            os.lseek(fd, 0, os.SEEK_SET)
            return json.loads(os.read(fd, 4096).decode() or "{}")
        return {}

    def acquire(self) -> RunLock:
        """Take the lock, or raise `RunLockedError` at once if another run holds it.

        Returns
        -------
        RunLock
            ``self``.
        """
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self._read_holder(fd)
                os.close(fd)
                raise self._locked_error(holder) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file meanwhile: lock the new one
        old = self._read_holder(fd)
        if old.get("pid"):
            alive = old.get("host") == socket.gethostname() and _pid_alive(int(old["pid"]))
            log.warning(f"Taking over the stale lock {self.path} of pid {old['pid']} on host "
                        f"{old.get('host', '?')} ({'pid reused' if alive else 'no longer running'}"
                        f"; started {old.get('started', '?')}).")
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def _locked_error(self, holder: dict) -> RunLockedError:
        pid, host = holder.get("pid", "?"), holder.get("host", "?")
        if host == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid):
            advice = (f"pid {pid} is no longer running on this host; remove {self.path} if "
                      "no other process holds it")
        else:
            advice = (f"wait for it to finish, or choose another output; if that run is gone "
                      f"(host {host}, pid {pid}), remove {self.path}")
        err = RunLockedError(
            f"Another gaiarvs-cnn run (pid {pid} on host {host}, started "
            f"{holder.get('started', '?')}) is writing the {self.what} (lock {self.path}): "
            f"{advice}.")
        err.holder = dict(holder)
        return err

    def release(self) -> None:
        """Remove the lock file and drop the lock (does nothing if not held)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
