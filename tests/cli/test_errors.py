"""The command line's one error handler (issue 18): one-line messages and exit codes.

0 ok, 1 error, 2 usage, 3 partial fetch (``fetch``), 130 interrupted.
"""
import errno
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner

from gaiarvs_cnn.cli import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    GaiaRVSCNNGroup,
    cli_spelling,
    main,
)
from gaiarvs_cnn.exceptions import (
    Call,
    DuplicateSourceError,
    InputDataError,
    OutputExistsError,
    Param,
    StoreError,
)
from gaiarvs_cnn.io.batch import StarBatch
from gaiarvs_cnn.io.store import Store

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parents[1] / "data" / "gaia_real"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result, code, *parts):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1, result.output
    for part in parts:
        assert part in error_lines[0], result.output


def _spelled(command_path, error):
    """``error`` as the command ``command_path`` (e.g. ``["store", "ingest"]``) reports it."""
    ctx = main.make_context("gaiarvs-cnn", [], resilient_parsing=True)
    for name in command_path:
        cmd = ctx.command.get_command(ctx, name)
        ctx = cmd.make_context(name, [], parent=ctx, resilient_parsing=True)
    return error.render(cli_spelling(ctx))


def test_library_errors_are_spelled_with_the_commands_flags():
    assert _spelled(["simulate"], OutputExistsError("a.h5")) == \
        "a.h5 exists; pass --overwrite to replace it."
    assert _spelled(["simulate"], OutputExistsError("x", hint=("pass ", Param("overwrite", True)))
                    ) == "x exists; pass --overwrite."
    assert _spelled(["store", "ingest"], InputDataError(
        "remove them (", Param("on_error", "skip"), " keeps the first)")) == \
        "remove them (--on-error skip keeps the first)"
    assert _spelled(["predict"], StoreError(
        "re-create the manifest with ", Call("create_manifest"), ".")) == \
        "re-create the manifest with 'gaiarvs-cnn manifest create'."
    assert _spelled(["predict"], InputDataError(
        "e.g. ", Call("simulate_store", Param("kind", "training")), ".")) == \
        "e.g. 'gaiarvs-cnn simulate --kind training'."
    assert _spelled(["validate"], InputDataError("pass ", Param("store", placeholder="PATH"))
                    ) == "pass --store PATH"
    assert _spelled(["fetch", "reference"], InputDataError(
        "(", Param("source_ids"), " or ", Param("store"), ")")) == "(--source-ids or --store)"
    assert _spelled(["store", "ingest"], InputDataError("pass it with ", Param("xp_files"))
                    ) == "pass it with --xp"
    assert _spelled(["validate"], InputDataError(
        "(", Param("reference_files", {"galah": "PATH"}), ")")) == "(--reference galah=PATH)"
    # the library spells the same errors in its own terms
    assert str(InputDataError("e.g. ", Call("simulate_store", Param("kind", "training")))) == \
        "e.g. simulate_store(..., kind='training')"


def test_every_declared_library_function_exists():
    import gaiarvs_cnn
    from gaiarvs_cnn.cli import _walk

    public = set()
    for module_name in ("io", "simulate", "model", "production", "archives", "catalog",
                        "validation"):
        import importlib
        import pkgutil

        pkg = importlib.import_module(f"gaiarvs_cnn.{module_name}")
        for info in pkgutil.iter_modules(pkg.__path__):
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            public.update(n for n in dir(module) if not n.startswith("_"))
            for obj in vars(module).values():  # methods such as GaiaArchive.fetch_to_store
                if isinstance(obj, type) and obj.__module__ == module.__name__:
                    public.update(n for n in vars(obj) if not n.startswith("_"))
    declared = {f for _, cmd in _walk(main) for f in getattr(cmd, "calls", ())}
    assert declared and declared <= public, declared - public
    assert gaiarvs_cnn


def test_renamed_library_parameter_still_names_the_right_flag(tmp_path, monkeypatch):
    """The library renames ``overwrite`` to ``replace``: the command's option declares the
    new name (``click.option("--overwrite", "replace")``), the error names the parameter
    ``replace``, and the message still says ``--overwrite`` -- no text is matched."""
    group = GaiaRVSCNNGroup("gaiarvs-cnn")

    def write(path, *, replace=False):
        raise OutputExistsError(path, parameter="replace")

    @group.command("write", calls="write")
    @click.option("--overwrite", "replace", is_flag=True)
    @click.argument("path")
    def write_cmd(path, replace):
        write(path, replace=replace)

    @group.command("other")
    def other():
        raise InputDataError("see ", Call("write", Param("replace", True)), ".")

    result = CliRunner().invoke(group, ["write", str(tmp_path / "a.h5")])
    _one_line_error(result, EXIT_ERROR, "a.h5 exists; pass --overwrite to replace it.")
    assert "replace" not in result.output.replace("to replace it", "")
    result = CliRunner().invoke(group, ["other"])
    _one_line_error(result, EXIT_ERROR, "see 'gaiarvs-cnn write --overwrite'.")


def test_renamed_parameter_of_a_real_command(tmp_path, monkeypatch):
    """``store ingest`` passes ``--rvs`` as the library's ``rvs_files``: an error about
    ``rvs_files`` names ``--rvs``, and one about a parameter the command lacks keeps the
    library's spelling."""
    from gaiarvs_cnn.io import ingest

    def fail(*args, **kwargs):
        raise InputDataError("f.csv holds RVS spectra; pass it with ", Param("rvs_files"),
                             " (or ", Param("no_such_parameter", 3), ").", file="f.csv")

    monkeypatch.setattr(ingest, "ingest_to_store", fail)
    csv = DATA / "rvs_datalink_csv" / "KOI-001.csv"
    result = _run("store", "ingest", "--rvs", csv, "-o", tmp_path / "o.h5")
    _one_line_error(result, EXIT_ERROR,
                    "f.csv holds RVS spectra; pass it with --rvs (or no_such_parameter=3).")


def test_structured_errors_know_their_subject_and_survive_pickling():
    import pickle

    err = OutputExistsError("sim.h5", what="store")
    assert (err.parameter, err.file, err.path) == ("overwrite", "sim.h5", "sim.h5")
    assert isinstance(err, FileExistsError)
    dup = DuplicateSourceError("Gaia DR3 7: repeated; (", Param("on_error", "skip"), ")",
                               source_id=7)
    assert (dup.parameter, dup.source_id) == ("on_error", 7)
    for e in (err, dup):
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e)
        assert back.parts == e.parts and back.source_id == e.source_id


def test_simulate_onto_existing_file_says_pass_overwrite(tmp_path):
    out = tmp_path / "sim.h5"
    assert _run("simulate", "--n", 20, "--quiet", "-o", out).exit_code == 0
    _one_line_error(_run("simulate", "--n", 20, "--quiet", "-o", out), EXIT_ERROR,
                    "exists; pass --overwrite")


@pytest.mark.parametrize("args, option", [
    (["train", "--splits", "0"], "--splits"),
    (["train", "--epochs", "-1"], "--epochs"),
    (["train", "--models", "0"], "--models"),
    (["store", "ingest", "--chunk-size", "0"], "--chunk-size"),
])
def test_option_ranges_are_usage_errors(tmp_path, args, option):
    store = tmp_path / "s.h5"
    with Store.create(store) as s:
        s.append(StarBatch({"source_id": np.arange(1, 3)}))
    extra = (["--store", store, "--out", tmp_path / "b"] if args[0] == "train" else
             ["--rvs", DATA / "rvs_datalink_csv" / "KOI-001.csv", "-o", tmp_path / "o.h5"])
    result = _run(*args, *extra)
    assert result.exit_code == EXIT_USAGE, result.output
    assert option in result.output and "Traceback" not in result.output


def test_store_info_of_an_incomplete_store_says_so(tmp_path):
    path = tmp_path / "partial.h5"
    store = Store.create(path, complete=False)
    store.append(StarBatch({"source_id": np.arange(1, 4)}))
    store.close()
    result = _run("store", "info", path)
    assert result.exit_code == 0, result.output
    assert "INCOMPLETE" in result.output and "Stars: 3" in result.output


def test_store_info_of_a_truncated_store_is_one_line(tmp_path):
    from gaiarvs_cnn.simulate.survey import simulate_store

    data = simulate_store(tmp_path / "full.h5", 30, progress=False).read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    result = _run("store", "info", tmp_path / "cut.h5")
    _one_line_error(result, EXIT_ERROR, "is not a readable HDF5 store (truncated?)")
    assert "HDF5-DIAG" not in result.output


def test_ingest_of_an_rvs_file_given_as_xp_says_which_flag(tmp_path):
    csv = DATA / "rvs_datalink_csv"
    result = _run("store", "ingest", "--rvs", csv / "KOI-001.csv", "--xp", csv / "HD176650.csv",
                  "-o", tmp_path / "o.h5")
    _one_line_error(result, EXIT_ERROR, "HD176650.csv holds RVS spectra, not XP continuous "
                                        "coefficients; pass it with --rvs.")


def test_ingest_of_a_folder_of_foreign_files_names_them(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("not a product\n")
    result = _run("store", "ingest", "--rvs", tmp_path / "in", "-o", tmp_path / "o.h5",
                  "--on-error", "skip")
    _one_line_error(result, EXIT_ERROR, "No star to write", "notes.txt")
    assert not (tmp_path / "o.h5").exists()


def test_keyboard_interrupt_exits_130(tmp_path, monkeypatch):
    from gaiarvs_cnn.simulate import survey

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(survey, "simulate_store", interrupted)
    result = _run("simulate", "--n", 10, "-o", tmp_path / "x.h5")
    assert result.exit_code == EXIT_INTERRUPTED, result.output
    assert "Interrupted" in result.output


@pytest.mark.parametrize("code, verb", [(errno.ENOSPC, "write"), (errno.EFBIG, "write"),
                                        (errno.EACCES, "write"), (errno.ENOENT, "read")])
def test_os_errors_name_the_file(tmp_path, monkeypatch, code, verb):
    from gaiarvs_cnn.simulate import survey

    def failing(path, *args, **kwargs):
        raise OSError(code, os.strerror(code))      # as write() raises it: no file name

    monkeypatch.setattr(survey, "simulate_store", failing)
    result = _run("simulate", "--n", 10, "-o", tmp_path / "x.h5")
    _one_line_error(result, EXIT_ERROR, f"cannot {verb} {tmp_path / 'x.h5'}: "
                                        f"{os.strerror(code)}")


def test_hdf5_write_error_names_the_file_and_reason(tmp_path, monkeypatch):
    import tables

    from gaiarvs_cnn.simulate import survey

    def failing(path, *args, **kwargs):
        raise tables.HDF5ExtError("Problems appending the records.\nHDF5-DIAG: Error detected "
                                  "in HDF5 (1.14.2):\n  #000: H5Dio.c line 1 in H5Dwrite(): "
                                  "file write failed: errno = 28, error message = 'No space "
                                  "left on device'")

    monkeypatch.setattr(survey, "simulate_store", failing)
    result = _run("simulate", "--n", 10, "-o", tmp_path / "x.h5")
    _one_line_error(result, EXIT_ERROR, f"cannot write {tmp_path / 'x.h5'}: No space left on "
                                        "device")
    assert "HDF5-DIAG" not in result.output


def _default_sigint():
    """Give the child Ctrl-C as in a terminal: a test run started in the background (where
    the shell ignores SIGINT, which children inherit) must still see the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, "-m", "gaiarvs_cnn", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, **kwargs)


def test_file_size_limit_gives_cannot_write(tmp_path):
    """``ulimit -f``: the write fails with EFBIG (Python ignores SIGXFSZ)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    proc = _cli(["simulate", "--n", 3000, "--chunk-size", 200, "--quiet", "-o",
                 tmp_path / "sim.h5"],
                cwd=tmp_path, preexec_fn=limit)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_ERROR, err
    assert "cannot write" in err and "File too large" in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "sim.h5").exists()
    assert not list(tmp_path.iterdir())             # no temporary left either


def test_sigint_during_simulate_exits_130_and_leaves_no_store(tmp_path):
    proc = _cli(["simulate", "--n", 200_000, "--chunk-size", 500, "--quiet",
                 "-o", tmp_path / "sim.h5"], cwd=tmp_path, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".sim.h5.*")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(tmp_path.glob(".sim.h5.*")), "the writer never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "Interrupted" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


# -- issue 27: messages and tracebacks --------------------------------------------------
@pytest.mark.parametrize("line, shown", [
    ("12345 OR 1=1", "'12345 OR 1=1'"), ("1;DROP TABLE x", "'1;DROP TABLE x'"),
    ("12345678901234567890123", "'12345678901234567890123'"), ("-5", "'-5'")])
def test_a_bad_source_ids_line_is_named(tmp_path, line, shown):
    ids = tmp_path / "ids.txt"
    ids.write_text(f"# my stars\n4295806720\n{line}\n")
    result = _run("fetch", "gaia", "--source-ids", ids, "-o", tmp_path / "s.h5")
    _one_line_error(result, EXIT_ERROR, "ids.txt, line 3", shown, "not a Gaia DR3 source_id")
    assert not (tmp_path / "s.h5").exists()


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_ids_below_one_is_a_usage_error(tmp_path, value):
    ids = tmp_path / "ids.txt"
    ids.write_text("4295806720\n")
    result = _run("fetch", "gaia", "--source-ids", ids, "-o", tmp_path / "s.h5",
                  "--max-ids", value)
    assert result.exit_code == EXIT_USAGE and "--max-ids" in result.output


def test_fetch_into_a_directory_is_refused_before_any_query(tmp_path, monkeypatch):
    from gaiarvs_cnn.archives.gaia import GaiaArchive

    def no_network(*args, **kwargs):
        raise AssertionError("the archive was asked")

    monkeypatch.setattr(GaiaArchive, "fetch_to_store", no_network)
    ids = tmp_path / "ids.txt"
    ids.write_text("4295806720\n")
    result = _run("fetch", "gaia", "--source-ids", ids, "-o", tmp_path)
    assert result.exit_code == EXIT_USAGE and "is a directory" in result.output


def test_shard_of_an_empty_store_leaves_no_folder(tmp_path):
    store = tmp_path / "empty.h5"
    Store.create(store).close()
    result = _run("shard", store, tmp_path / "shards", "--stars-per-shard", 10)
    _one_line_error(result, EXIT_ERROR, "holds no star", "nothing to shard")
    assert not (tmp_path / "shards").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.h5"]


def test_output_and_input_errors_say_write_or_read():
    from gaiarvs_cnn.cli import _os_error_message

    # PyTables' own check of a read-only folder carries no errno
    unwritable = OSError("directory ``/ro`` exists but it can not be written")
    assert _os_error_message(unwritable, "/ro/x.h5").startswith("cannot write /ro/x.h5")
    denied_out = PermissionError(errno.EACCES, "Permission denied", "/ro/.x.h5.1.ab.tmp")
    assert _os_error_message(denied_out, "/ro/x.h5").startswith("cannot write /ro/.x.h5")
    denied_in = PermissionError(errno.EACCES, "Permission denied", "/data/in.h5")
    assert _os_error_message(denied_in, "/out/x.h5").startswith("cannot read /data/in.h5")
    full = OSError(errno.ENOSPC, "No space left on device")
    assert _os_error_message(full, "/out/x.h5").startswith("cannot write /out/x.h5")


def test_a_closed_output_pipe_ends_quietly(tmp_path):
    """``gaiarvs-cnn store info s.h5 | head`` said "cannot read a file: Broken pipe"."""
    from gaiarvs_cnn.cli import EXIT_BROKEN_PIPE

    store = tmp_path / "s.h5"
    with Store.create(store) as s:
        s.append(StarBatch({"source_id": np.arange(1, 3)}))
    proc = subprocess.Popen([sys.executable, "-m", "gaiarvs_cnn", "store", "info", str(store)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    proc.stdout.close()          # the reader is gone before the first line
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert proc.returncode == EXIT_BROKEN_PIPE and "Error" not in err and "Traceback" not in err


def test_a_store_locked_by_another_process_is_in_use_not_truncated(tmp_path):
    store = tmp_path / "s.h5"
    with Store.create(store) as s:
        s.append(StarBatch({"source_id": np.arange(1, 3)}))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time, tables; f = tables.open_file(sys.argv[1], "
         "'a'); print('held', flush=True); time.sleep(60)", str(store)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = _run("store", "info", store)
    finally:
        holder.kill()
        holder.wait()
    _one_line_error(result, EXIT_ERROR, "is in use", "Wait for it to finish")
    assert "truncated" not in result.output
