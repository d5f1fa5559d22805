"""The ``gaiarvs-cnn`` command line (click). It only parses options and calls the library.

Each sub-command lives in its own module of this package and is registered here.

**Errors and exit codes** are handled in one place, `GaiaRVSCNNGroup.invoke`: every
command ends with one line on stderr and an exit code:

=====  ===================================================================================
code   meaning
=====  ===================================================================================
0      success
1      error: a `~gaiarvs_cnn.exceptions.GaiaRVSCNNError` (bad input, unreadable store,
       existing output, ...) or an operating-system error (``cannot write FILE: reason``)
2      usage error: a bad option or value (click)
3      partial fetch: some stars could not be downloaded (``fetch``; resumable)
130    interrupted (Ctrl-C / SIGINT)
141    standard output closed by its reader (``| head``): quiet, as a Unix filter
=====  ===================================================================================

Library messages speak in parameter names (``overwrite=True``, ``on_error='skip'``); they
are translated here into the command's flags (``--overwrite``, ``--on-error skip``).
"""
from __future__ import annotations

import errno
import re

import click
from astropy import log

from ..version import __version__

__all__ = ["main", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_PARTIAL", "EXIT_INTERRUPTED",
           "EXIT_BROKEN_PIPE",
           "Interrupted", "translate_message", "set_output"]

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: Exit codes of every command.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: Standard output closed by its reader (``| head``): 128 + SIGPIPE, no message.
EXIT_BROKEN_PIPE = 141

#: Library parameter spellings -> command-line flags (applied to every error message).
_FLAG_TRANSLATIONS = (
    (re.compile(r"overwrite=True \((?:CLI: )?--overwrite\)"), "--overwrite"),
    (re.compile(r"--overwrite \(overwrite=True\)"), "--overwrite"),
    (re.compile(r"\(or overwrite=True\)"), "(or --overwrite)"),
    (re.compile(r"overwrite=True"), "--overwrite"),
    (re.compile(r"on_error=['\"](raise|skip)['\"]"), r"--on-error \1"),
    (re.compile(r"with create_manifest\b"), "with 'gaiarvs-cnn manifest create'"),
    (re.compile(r"pass it as rvs_files"), "pass it with --rvs"),
    (re.compile(r"pass it as xp_files"), "pass it with --xp"),
    (re.compile(r"pass it as gaia_source"), "pass it with --gaia-source"),
    (re.compile(r"\bstore=PATH"), "--store PATH"),
    (re.compile(r"\(source_ids or store\)"), "(--source-ids or --store)"),
    (re.compile(r"create one with fetch_to_store"), "create one with 'gaiarvs-cnn fetch gaia'"),
    (re.compile(r"create one with ingest_to_store or simulate_store"),
     "create one with 'gaiarvs-cnn store ingest' or 'gaiarvs-cnn simulate'"),
    (re.compile(r"simulate_store\(\.\.\., kind='training'\)"),
     "'gaiarvs-cnn simulate --kind training'"),
)
#: errno values that mean the output could not be written.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS,
                 getattr(errno, "EDQUOT", errno.ENOSPC)}
_OUTPUT_KEY = "gaiarvs_cnn.output"


def translate_message(message: str) -> str:
    """A library message with parameter names replaced by the command's flags.

    Parameters
    ----------
    message : str
        E.g. ``"sim.h5 exists; pass overwrite=True to replace it."``.

    Returns
    -------
    str
        E.g. ``"sim.h5 exists; pass --overwrite to replace it."``.
    """
    for pattern, flag in _FLAG_TRANSLATIONS:
        message = pattern.sub(flag, message)
    return message


def set_output(path) -> None:
    """Record the file the running command writes, for "cannot write FILE" messages.

    Operating-system errors raised while writing (a full disk, ``ulimit -f``) often carry
    no file name; the error handler then names this one.
    """
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_OUTPUT_KEY] = str(path)


class Interrupted(click.ClickException):
    """The command was interrupted (SIGINT); exits with code 130."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str = "Interrupted."):
        super().__init__(message)


def _is_output(filename, output: str | None) -> bool:
    """Whether ``filename`` is the command's output, inside it or its temporary sibling."""
    if output is None:
        return False
    from pathlib import Path

    f, out = Path(filename).absolute(), Path(output).absolute()
    return (f == out or out in f.parents
            or (f.parent == out.parent and f.name.startswith(f".{out.name}.")))


def _os_error_message(exc: OSError, output: str | None) -> str:
    reason = exc.strerror or str(exc)
    filename = exc.filename or output
    if exc.errno in (errno.EACCES, errno.EPERM):   # either way: ask which file it was
        write = exc.filename is None or _is_output(exc.filename, output)
    elif exc.errno is None:   # e.g. PyTables: "directory ... can not be written"
        write = "writ" in reason.lower()
    else:
        write = exc.errno in _WRITE_ERRNOS
    return f"cannot {'write' if write else 'read'} {filename or 'a file'}: {reason}."


def _stdout_is_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone (``| head``)."""
    import select
    import sys

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll, or stdout is no file
        return False


def _quiet_broken_pipe() -> None:
    """End like a Unix filter whose reader has gone: no message, status 141 (128 + SIGPIPE).

    Standard output is pointed at ``/dev/null`` first, so that Python's final flush does not
    print a second error.
    """
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    raise SystemExit(EXIT_BROKEN_PIPE)


def _hdf5_error_message(exc: Exception, output: str | None) -> str:
    log.debug(f"HDF5 error: {exc}")
    match = re.search(r"error message = '([^']+)'", str(exc))
    reason = match.group(1) if match else "HDF5 write error (disk full or file too large?)"
    return f"cannot write {output or 'the HDF5 store'}: {reason}."


def _is_hdf5_error(exc: Exception) -> bool:
    return type(exc).__module__.split(".")[0] == "tables"


class GaiaRVSCNNGroup(click.Group):
    """The root command group: maps every error of a command to a message and exit code."""

    def invoke(self, ctx: click.Context):
        import sys

        from ..exceptions import GaiaRVSCNNError

        try:
            result = super().invoke(ctx)
            sys.stdout.flush()   # a closed pipe shows here, not in click's own handler
            return result
        except click.ClickException as exc:
            exc.message = translate_message(exc.message)
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise Interrupted() from None
        except GaiaRVSCNNError as exc:
            log.debug("error", exc_info=True)
            raise click.ClickException(translate_message(str(exc))) from None
        except BrokenPipeError:
            if not _stdout_is_closed():
                raise
            _quiet_broken_pipe()
        except OSError as exc:
            log.debug("OS error", exc_info=True)
            raise click.ClickException(_os_error_message(exc, ctx.meta.get(_OUTPUT_KEY))
                                       ) from None
        except Exception as exc:
            if _is_hdf5_error(exc):
                raise click.ClickException(
                    _hdf5_error_message(exc, ctx.meta.get(_OUTPUT_KEY))) from None
            raise


@click.group(cls=GaiaRVSCNNGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="gaiarvs-cnn")
def main():
    """gaiarvs-cnn: Teff, log g, [M/H], [alpha/M], [Fe/H] for Gaia-RVS stars with a hybrid
    CNN ensemble (Guiglion, Nepal et al. 2024).

    \b
    Quick start (offline, built-in simulated survey):
      gaiarvs-cnn produce-catalog
      gaiarvs-cnn validate --catalog catalog/gaiarvs_cnn_catalog.fits --against all

    \b
    Examples (each command's --help has more; they chain: every input is the output of
    an earlier example, or a file you bring, named in the command's help):
      gaiarvs-cnn produce-catalog                      # offline: simulate, predict, flag, write
      gaiarvs-cnn simulate --n 100000 --seed 1 -o sim.h5
      gaiarvs-cnn simulate --n 20000 --kind training -o train.h5
      gaiarvs-cnn fetch gaia --source-ids ids.txt -o gaia_rvs.h5
      gaiarvs-cnn fetch reference --kind galah -o galah.fits
      gaiarvs-cnn store info gaia_rvs.h5
      gaiarvs-cnn train --store train.h5 --out my_bundle/
      gaiarvs-cnn calibrate --model my_bundle/ --store heldout.h5
      gaiarvs-cnn predict --store gaia_rvs.h5 --model my_bundle/ --out gaia_results/
      gaiarvs-cnn shard sim.h5 survey_shards --stars-per-shard 20000
      gaiarvs-cnn manifest validate survey_shards/manifest.json
      gaiarvs-cnn validate --catalog catalog/gaiarvs_cnn_catalog.fits --against all
    """


def _register() -> None:
    """Import the command modules; each adds its command(s) to `main`."""
    import importlib

    for name in ("store_cmds", "simulate", "train", "catalog_cmds", "fetch", "validate",
                 "distributed_cmds", "config_cmd", "fit"):
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise


_register()
