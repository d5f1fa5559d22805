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

Library errors name the library's parameters and functions as structured parts
(`~gaiarvs_cnn.exceptions.Param`, `~gaiarvs_cnn.exceptions.Call`); the handler spells them
with the flags of the command that failed, read from click's own metadata: a parameter is
the command option whose ``name`` is the library parameter's name (``overwrite=True`` ->
``--overwrite``, ``on_error='skip'`` -> ``--on-error skip``, ``rvs_files`` -> ``--rvs``),
and a library function is the command that declares it calls it (``Command(calls=...)``:
``simulate_store(..., kind='training')`` -> ``'gaiarvs-cnn simulate --kind training'``).
No message text is rewritten: renaming a library parameter renames it in the option's
declaration too, and the message follows.
"""
from __future__ import annotations

import errno
from collections.abc import Callable, Iterator, Mapping, Sequence

import click
from astropy import log

from ..exceptions import Call, GaiaRVSCNNError, Param
from ..version import __version__

__all__ = ["main", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_PARTIAL", "EXIT_INTERRUPTED",
           "EXIT_BROKEN_PIPE",
           "Interrupted", "Command", "GaiaRVSCNNGroup", "RegistryChoice", "cli_spelling",
           "set_output"]

#: The command's name (the console script of pyproject.toml).
PROG = "gaiarvs-cnn"
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: Exit codes of every command.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
#: Standard output closed by its reader (``| head``): 128 + SIGPIPE, no message.
EXIT_BROKEN_PIPE = 141

#: errno values that mean the output could not be written.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS,
                 getattr(errno, "EDQUOT", errno.ENOSPC)}
_OUTPUT_KEY = "gaiarvs_cnn.output"
#: ``ctx.meta`` key of the context of the command that runs (the innermost one).
_RUNNING_KEY = "gaiarvs_cnn.running"


class _Context(click.Context):
    """A command's context; records itself in ``meta`` (shared by the whole chain) as the
    running command, so that the error handler spells with that command's flags."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.meta[_RUNNING_KEY] = self


class _Calls:
    """What `Command` and `GaiaRVSCNNGroup` share: their context and ``calls``."""

    context_class: type[click.Context] = _Context

    def __init__(self, *args, calls: str | Sequence[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = (calls,) if isinstance(calls, str) else tuple(calls)


class Command(_Calls, click.Command):
    """A ``gaiarvs-cnn`` command.

    Parameters
    ----------
    *args, **kwargs
        As `click.Command`.
    calls : str or sequence of str, optional
        The library functions the command runs (public names, e.g. ``"simulate_store"``):
        an error that advises calling one of them names this command instead.
    """


class RegistryChoice(click.Choice):
    """A choice among names a library registry holds, read when first needed (the
    registries' modules are slow to import).

    Parameters
    ----------
    names : callable
        ``names() -> sequence of str``.
    *extra : str
        Further choices, after the registry's (``"all"``).
    """

    def __init__(self, names: Callable[[], Sequence[str]], *extra: str):
        self._names = names
        self._extra = extra
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return (*self._names(), *self._extra)


def _option_text(param: click.Parameter, ref: Param) -> str:
    """``ref`` spelled with the option ``param``: ``--overwrite``, ``--store PATH``."""
    if isinstance(param, click.Argument):
        return param.human_readable_name
    long = [o for o in param.opts if o.startswith("--")] or list(param.opts)
    flag = long[0]
    if isinstance(param, click.Option) and param.is_bool_flag:
        if ref.has_value and not ref.value:
            return param.secondary_opts[0] if param.secondary_opts else f"no {flag}"
        return flag
    if ref.placeholder is not None:
        return f"{flag} {ref.placeholder}"
    if ref.has_value and isinstance(ref.value, Mapping):      # KEY=VALUE options
        return " ".join(f"{flag} {k}={v}" for k, v in ref.value.items())
    return f"{flag} {ref.value}" if ref.has_value else flag


def _find_param(command: click.Command, name: str) -> click.Parameter | None:
    return next((p for p in command.params if p.name == name), None)


def _walk(command: click.Command, path: tuple[str, ...] = ()
          ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


def cli_spelling(ctx: click.Context) -> Callable[[Param | Call], str]:
    """How the command of ``ctx`` spells the references of a library error.

    Parameters
    ----------
    ctx : click.Context
        The context of the command that failed.

    Returns
    -------
    callable
        ``spell(reference) -> str`` for `~gaiarvs_cnn.exceptions.GaiaRVSCNNError.render`:
        a `~gaiarvs_cnn.exceptions.Param` becomes the option of the command (or of its
        parent groups) whose ``name`` is the parameter's, a `~gaiarvs_cnn.exceptions.Call`
        the command that declares it calls the function; anything else keeps the
        library's spelling.
    """
    root = ctx.find_root()

    def spell_param(ref: Param, chain: list[click.Command]) -> str:
        for command in chain:
            param = _find_param(command, ref.name)
            if param is not None:
                return _option_text(param, ref)
        return str(ref)

    def spell(ref: Param | Call) -> str:
        if isinstance(ref, Param):
            chain = []
            c: click.Context | None = ctx
            while c is not None:
                chain.append(c.command)
                c = c.parent
            return spell_param(ref, chain)
        for path, command in _walk(root.command):
            if ref.function in getattr(command, "calls", ()):
                words = [PROG, *path, *(spell_param(p, [command]) for p in ref.params)]
                return "'" + " ".join(words) + "'"
        return str(ref)

    return spell


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
    reason = str(exc).partition("error message = '")[2].partition("'")[0]
    reason = reason or "HDF5 write error (disk full or file too large?)"
    return f"cannot write {output or 'the HDF5 store'}: {reason}."


def _is_hdf5_error(exc: Exception) -> bool:
    return type(exc).__module__.split(".")[0] == "tables"


class GaiaRVSCNNGroup(_Calls, click.Group):
    """A command group: maps every error of a command to a message and exit code.

    Its commands are `Command` and its sub-groups `GaiaRVSCNNGroup`; like `Command`, it
    accepts ``calls``.
    """

    command_class = Command
    group_class = type

    def invoke(self, ctx: click.Context):
        import sys

        from ..utils import interrupt

        if ctx.parent is None:  # the command line itself, not a sub-group
            interrupt.install()
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()   # a closed pipe shows here, not in click's own handler
            return result
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            raise Interrupted() from None
        except GaiaRVSCNNError as exc:
            log.debug("error", exc_info=True)
            running = ctx.meta.get(_RUNNING_KEY, ctx)
            raise click.ClickException(exc.render(cli_spelling(running))) from None
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
@click.version_option(__version__, "-V", "--version", prog_name=PROG)
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
                 "distributed_cmds", "config_cmd", "fit",
                 "run_cmd"):
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise


_register()
