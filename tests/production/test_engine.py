"""The engine: run lock, resume identity, old work directories, signals (issue 18 items 1, 7, 8).

Tiny bundle and stores from tests/conftest.py. Two tests start a second Python process (the
issue's repros: a concurrent run into the same --out, and SIGINT).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import gaiarvs_cnn
from gaiarvs_cnn import conf
from gaiarvs_cnn.catalog import read_catalog
from gaiarvs_cnn.cli import main
from gaiarvs_cnn.exceptions import InputDataError, OutputExistsError
from gaiarvs_cnn.io.store import Store
from gaiarvs_cnn.production import CatalogRun, RunLock, RunLockedError, produce_catalog

CHUNK = 40
LOCK = ".gaiarvs_cnn_catalog.lock"
ROOT = Path(gaiarvs_cnn.__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    with conf.set_temp("threads", 1):
        yield


def files_run(store, bundle, out, **kw):
    return CatalogRun(**{"source": "files", "store": store, "model": bundle, "out": out,
                         "chunk_size": CHUNK, "limit": 120, "formats": "fits",
                         "progress": False, **kw})


def interrupt_after_first_chunk(run):
    def stop(i):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        produce_catalog(run, on_chunk=stop)
    assert sorted(p.name for p in run.partial_dir.glob("part-*.npz")) == ["part-000000.npz"]


def _default_sigint():
    """Give the child Ctrl-C as in a terminal: a test run started in the background (where
    the shell ignores SIGINT, which children inherit) must still see the interrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args):
    """The command as a separate process (``python -m gaiarvs_cnn``) with this checkout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-m", "gaiarvs_cnn", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)


def wait_for(condition, proc, timeout=240.0):
    t0 = time.monotonic()
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"process ended early ({proc.returncode}): {out}\n{err}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail("timed out waiting for the other process")
        time.sleep(0.05)


def lock_holder(path):
    try:
        return json.loads(path.read_text() or "{}").get("pid")
    except (OSError, ValueError):
        return None


# -- run lock -------------------------------------------------------------------------------
def test_lock_held_by_a_live_run_refuses_with_its_pid_and_host(tmp_path):
    with RunLock(tmp_path / "x.lock", "catalogue x"):
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()} on host "
                                                 f"{socket.gethostname()}") as err:
            RunLock(tmp_path / "x.lock", "catalogue x").acquire()
        assert "wait for it to finish" in str(err.value)
    assert not (tmp_path / "x.lock").exists()
    RunLock(tmp_path / "x.lock", "catalogue x").acquire().release()  # free again


def test_stale_lock_of_a_killed_run_is_taken_over(tiny_observed_store, tiny_bundle, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                             "started": "2026-01-01T00:00:00Z"}))
    summary = produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path, limit=40))
    assert summary.n_written == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaiarvs_cnn_catalog.fits"]


def test_concurrent_run_into_the_same_out_refuses_at_once(tiny_bundle, tmp_path):
    """Issue 18 item 1: ``produce-catalog --seed 7 & produce-catalog --seed 8`` into one --out."""
    out = tmp_path / "cc"
    common = ["produce-catalog", "--model", tiny_bundle, "--n-stars", 60, "--chunk-size", 10,
              "--out", out, "--format", "fits", "--overwrite", "--quiet"]
    first = cli(*common, "--seed", 7)
    try:
        wait_for(lambda: lock_holder(out / LOCK) == first.pid, first)
        t0 = time.monotonic()
        second = CliRunner().invoke(main, [*map(str, common), "--seed", "8"])
        assert time.monotonic() - t0 < 10  # refused at once, not after simulating
        assert second.exit_code == 1, second.output
        assert f"pid {first.pid} on host {socket.gethostname()}" in second.output
        assert "wait for it to finish" in second.output
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err
    cat = read_catalog(out / "gaiarvs_cnn_catalog.fits")
    assert json.loads(cat.meta["INPUTSEL"])["seed"] == 7
    from gaiarvs_cnn.simulate.survey import simulate_store

    seed7 = simulate_store(tmp_path / "seed7.h5", 60, seed=7, kind="observed", progress=False)
    with Store.open(seed7) as st:
        assert set(cat["source_id"]) <= set(st.source_ids())
    assert not (out / LOCK).exists() and not list(out.glob("*.work-*"))


def test_sigint_exits_130_and_resume_completes_the_same_catalogue(tiny_observed_store,
                                                                  tiny_bundle, tmp_path):
    # 200 chunks of one star: the run outlasts the poll for its first finished chunk by
    # far. The interrupt must never be lost: PyTables drops the KeyboardInterrupt when the
    # signal is handled while it reads node attributes (about 1 in 25 tries on a loaded
    # machine), and the engine's check of the recorded signal (utils.interrupt) stops the
    # run at the next chunk all the same.
    out = tmp_path / "out"
    args = ["predict", "--store", tiny_observed_store, "--model", tiny_bundle, "--out",
            out, "--format", "fits", "--chunk-size", 1, "--limit", 200, "--quiet"]
    proc = cli(*args)
    try:
        wait_for(lambda: bool(list(out.glob("*.work-*/part-*.npz"))), proc)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "--resume" in err and not (out / "gaiarvs_cnn_catalog.fits").exists()
    resumed = CliRunner().invoke(main, [*map(str, args), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert " 0 already done" not in resumed.output
    fresh = tmp_path / "fresh.fits"
    produce_catalog(files_run(tiny_observed_store, tiny_bundle, fresh, chunk_size=1,
                              limit=200))
    a, b = read_catalog(out / "gaiarvs_cnn_catalog.fits"), read_catalog(fresh)
    for name in a.colnames:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)


# -- resume identity ------------------------------------------------------------------------
def test_other_input_of_equal_size_is_never_resumed(tiny_observed_store, tiny_bundle, tmp_path):
    """Issue 18 item 7: identity from content, not path + size."""
    store = tmp_path / "stars.h5"
    shutil.copy(tiny_observed_store, store)
    with Store.open(store, "a") as st:
        st.update_meta(note="aaaa")
    other = tmp_path / "other.h5"
    shutil.copy(store, other)
    with Store.open(other, "a") as st:
        st.update_meta(note="bbbb")
    assert store.stat().st_size == other.stat().st_size
    run = files_run(store, tiny_bundle, tmp_path / "out")
    interrupt_after_first_chunk(run)
    os.replace(other, store)  # same path, same size, other content
    with pytest.raises(InputDataError, match=r"\['input'\] differ"):
        produce_catalog(files_run(store, tiny_bundle, tmp_path / "out", resume=True))
    # without resume the run starts over from the first chunk
    computed = []
    produce_catalog(files_run(store, tiny_bundle, tmp_path / "out"), on_chunk=computed.append)
    assert computed == [0, 1, 2]


def test_bfloat16_run_is_recorded_and_never_resumed_as_float32(tiny_observed_store,
                                                                tiny_bundle, tmp_path):
    bf16 = files_run(tiny_observed_store, tiny_bundle, tmp_path / "out", precision="bfloat16")
    f32 = files_run(tiny_observed_store, tiny_bundle, tmp_path / "out")
    assert bf16.partial_dir != f32.partial_dir  # chunks of the two never mix
    interrupt_after_first_chunk(bf16)
    computed = []
    produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path / "out",
                              precision="bfloat16", resume=True), on_chunk=computed.append)
    assert computed == [1, 2]
    cat = read_catalog(tmp_path / "out" / "gaiarvs_cnn_catalog.fits")
    assert cat.meta["PRECISN"] == "bfloat16"
    produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path / "f32"))
    ref = read_catalog(tmp_path / "f32" / "gaiarvs_cnn_catalog.fits")
    assert "PRECISN" not in ref.meta
    assert np.array_equal(cat["source_id"], ref["source_id"])
    assert 0 < np.max(np.abs(cat["teff"] - ref["teff"])) < 50


def test_summary_says_why_no_star_is_good_without_tsne(tiny_observed_store, tiny_bundle,
                                                       tmp_path):
    off = produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path / "off",
                                    tsne=False))
    assert off.n_good == 0 and off.n_written > 0
    assert any("t-SNE digit is 1, not tested" in line for line in off.lines())
    on = produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path / "on"))
    assert not any("not tested" in line for line in on.lines())


def test_unknown_precision_stops_before_any_work(tiny_observed_store, tiny_bundle, tmp_path):
    with pytest.raises(InputDataError, match="Unknown precision 'float16'"):
        produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path / "out",
                                  precision="float16"))
    assert not (tmp_path / "out").exists()


def test_simulated_inputs_of_other_seeds_get_their_own_work_directories(tiny_bundle, tmp_path):
    runs = [CatalogRun(source="simulated", n_stars=40, seed=s, model=tiny_bundle,
                       out=tmp_path, formats="fits", chunk_size=20, progress=False)
            for s in (7, 8)]
    assert runs[0].partial_dir != runs[1].partial_dir
    for run in runs:
        interrupt_after_first_chunk(run)
        assert [p.name for p in run.partial_dir.glob("simulated-*.h5")] == [
            f"simulated-seed{run.seed}-n40.h5"]
    summary = produce_catalog(CatalogRun(**{**runs[1].__dict__, "resume": True}))
    assert summary.resumed_chunks == 1
    cat = read_catalog(tmp_path / "gaiarvs_cnn_catalog.fits")
    assert json.loads(cat.meta["INPUTSEL"])["seed"] == 8
    assert runs[0].partial_dir.exists() and not runs[1].partial_dir.exists()


# -- a work directory of another run -------------------------------------------------------
def test_work_directory_of_another_run_is_refused_with_what_to_do(tiny_observed_store,
                                                                  tiny_bundle, tmp_path):
    work = tmp_path / "work"  # an explicit work directory holding another run's run.json
    work.mkdir()
    (work / "run.json").write_text(json.dumps({"token": "0123456789abcdef"}))
    with pytest.raises(OutputExistsError, match="holds the chunks of another run.*overwrite"):
        produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path / "b.fits",
                                  work_dir=work, limit=40))
    with pytest.raises(InputDataError, match="Cannot resume from .*work.*without resume"):
        produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path / "b.fits",
                                  work_dir=work, limit=40, resume=True))
    produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path / "b.fits",
                              work_dir=work, limit=40, overwrite=True))
    assert json.loads((work / "run.json").read_text())["state_version"] == 2
    assert (work / "part-000000.npz").exists()  # an explicit work directory is kept


def test_predict_reports_a_missing_store_before_loading_the_model(tmp_path):
    result = CliRunner().invoke(main, ["predict", "--store", str(tmp_path / "none.h5"),
                                       "--model", str(tmp_path / "no_bundle"), "--out",
                                       str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 1
    assert "No store or manifest at" in result.output and "bundle" not in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
