"""Ctrl-C that no extension module can lose: the command line's SIGINT handler records the
signal, and long jobs check the record between their steps.

Python turns SIGINT into `KeyboardInterrupt` where its handler runs. When that happens
inside an extension module that asks Python to run pending signal handlers and then drops
the error, the interrupt is lost: PyTables 3.11 does so while it reads an HDF5 node's
attributes (`tables.attributeset.AttributeSet.__getattr__`), and a ``predict`` interrupted
at that moment ran to its end and exited 0 (seen in about 1 of 25 tries on a loaded machine,
traced to that call). `install` (done by the ``gaiarvs-cnn`` command) makes the handler also
set a flag; `check` raises `KeyboardInterrupt` once the flag is set, and the catalogue
engine, training and the archive fetches call it after each chunk or member, so the run
stops at the next step with every finished step kept.
"""
from __future__ import annotations

import signal
import threading

__all__ = ["install", "check", "requested"]

_requested = threading.Event()


def _handler(signum, frame) -> None:
    _requested.set()
    raise KeyboardInterrupt


def install() -> None:
    """Record SIGINT in a flag and raise `KeyboardInterrupt` (as Python's own handler does).

    Only in the main thread, and only where SIGINT has Python's default handler (not where
    it is ignored, nor where the caller installed its own). The flag is cleared.
    """
    _requested.clear()
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _handler)


def requested() -> bool:
    """Whether SIGINT arrived since `install`."""
    return _requested.is_set()


def check() -> None:
    """Raise `KeyboardInterrupt` if SIGINT arrived since `install`, even if the exception
    the handler raised was lost inside an extension module.

    Raises
    ------
    KeyboardInterrupt
    """
    if _requested.is_set():
        raise KeyboardInterrupt
