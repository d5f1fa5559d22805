"""A real Dask cluster with a killed worker: ``dask scheduler`` + ``dask worker`` processes.

Starts a ``dask scheduler`` and ``--workers`` ``dask worker`` processes (no nanny, one thread
each) on loopback as separate processes -- not a `~distributed.LocalCluster` -- runs
``gaiarvs-cnn predict --scheduler tcp://127.0.0.1:PORT`` on a simulated store, kills one
worker (SIGKILL) once the first chunks are written, and checks that the catalogue equals the
one of the in-process run (`gaiarvs_cnn.production.LocalExecutor`) column by column.

Writes ``benchmarks/results/cluster.json``: script version and arguments, machine, software
versions, the killed worker (pid, seconds after the start, chunks done by then), the wall
times of both runs and the comparison. ``tests/production/test_cluster.py`` runs
`cluster_run` on the test fixtures.

Run (a few minutes on 2 shared cores)::

    python benchmarks/bench_cluster.py [--n-stars 400] [--chunk-size 20] [--workers 2]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _header import recorded_arguments  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cluster.json"
#: Version of this script (recorded in the JSON).
SCRIPT_VERSION = 2


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
            "OMP_NUM_THREADS": "1"}


def _wait(condition, what: str, timeout: float, procs=()) -> None:
    t0 = time.monotonic()
    while not condition():
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: a process ended early ({proc.args[:4]}, exit "
                                   f"{proc.returncode})")
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


class LoopbackCluster:
    """``dask scheduler`` and ``n_workers`` ``dask worker`` processes on 127.0.0.1.

    Parameters
    ----------
    work : Path
        Directory for the scheduler file and the processes' logs.
    n_workers : int
        Worker processes (one thread each, no nanny: a killed worker stays dead).
    timeout : float
        Seconds to wait for the scheduler and for every worker to connect.
    """

    def __init__(self, work: Path, n_workers: int = 2, timeout: float = 240.0):
        self.work = Path(work)
        self.n_workers = n_workers
        self.timeout = timeout
        self.scheduler = None
        self.workers: list[subprocess.Popen] = []
        self.address = ""
        self._logs: list = []

    def _start(self, *args: str, log: str) -> subprocess.Popen:
        out = open(self.work / log, "w")
        self._logs.append(out)
        return subprocess.Popen([sys.executable, "-m", "dask", *args], env=_env(), stdout=out,
                                stderr=subprocess.STDOUT)

    def __enter__(self) -> LoopbackCluster:
        from distributed import Client

        self.work.mkdir(parents=True, exist_ok=True)
        sched_file = self.work / "scheduler.json"
        try:
            self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", "0",
                                         "--no-dashboard", "--scheduler-file", str(sched_file),
                                         log="scheduler.log")
            _wait(lambda: sched_file.exists() and sched_file.stat().st_size > 0,
                  "dask scheduler", self.timeout, [self.scheduler])
            time.sleep(0.2)  # the file is written in one go; let it be closed
            self.address = json.loads(sched_file.read_text())["address"]
            for i in range(self.n_workers):
                self.workers.append(self._start(
                    "worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                    "--name", f"worker-{i}", "--memory-limit", "0", "--death-timeout", "60",
                    log=f"worker-{i}.log"))
            with Client(self.address, timeout="60s") as client:
                client.wait_for_workers(self.n_workers, timeout=self.timeout)
        except BaseException:
            self.close()
            raise
        return self

    def kill_worker(self, i: int = 0) -> int:
        """SIGKILL worker ``i``; return its pid."""
        proc = self.workers[i]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        return proc.pid

    def close(self) -> None:
        """Stop every process (terminate, then kill after 10 s) and close the logs."""
        procs = [p for p in [*self.workers, self.scheduler] if p is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for out in self._logs:
            out.close()

    def __exit__(self, *exc) -> None:
        self.close()


def _compare(a_path: Path, b_path: Path) -> dict:
    from gaiarvs_cnn.catalog import read_catalog

    a, b = read_catalog(a_path), read_catalog(b_path)
    differ = [name for name in a.colnames
              if name not in b.colnames or not np.array_equal(np.asarray(a[name]),
                                                              np.asarray(b[name]))]
    return {"rows": [len(a), len(b)], "columns": len(a.colnames),
            "columns_differing": differ,
            "identical": bool(len(a) == len(b) and a.colnames == b.colnames and not differ)}


def cluster_run(store, bundle, work, *, chunk_size: int = 20, n_workers: int = 2,
                kill_after: int = 1, timeout: float = 600.0) -> dict:
    """In-process run, then the same ``predict`` on a loopback cluster with a killed worker.

    Parameters
    ----------
    store, bundle : path-like
        Input store and model bundle.
    work : path-like
        Empty working directory (catalogues, work directory, process logs).
    chunk_size : int
        Stars per chunk (the same for both runs).
    n_workers : int
        ``dask worker`` processes.
    kill_after : int
        Kill worker 0 once this many chunk files exist.
    timeout : float
        Seconds allowed for the cluster run.

    Returns
    -------
    dict
        What happened (see the module docstring); ``comparison.identical`` is the verdict.
    """
    from gaiarvs_cnn import conf
    from gaiarvs_cnn.production import CatalogRun, produce_catalog

    work = Path(work)
    t0 = time.perf_counter()
    with conf.set_temp("threads", 1):
        local = produce_catalog(CatalogRun(source="files", store=store, model=bundle,
                                           out=work / "local.fits", formats="fits",
                                           chunk_size=chunk_size, progress=False))
    local_s = time.perf_counter() - t0
    chunks = work / "chunks"
    result = {"n_stars_in": local.n_input, "n_chunks": local.n_chunks,
              "chunk_size": chunk_size, "local_wall_s": round(local_s, 2)}
    t_start = time.perf_counter()
    with LoopbackCluster(work / "cluster", n_workers) as cluster:
        result["cluster_start_s"] = round(time.perf_counter() - t_start, 2)
        cmd = [sys.executable, "-m", "gaiarvs_cnn", "predict", "--store", str(store),
               "--model", str(bundle), "--out", str(work / "cluster.fits"), "--format",
               "fits", "--chunk-size", str(chunk_size), "--scheduler", cluster.address,
               "--work-dir", str(chunks), "--retries", "2", "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: len(list(chunks.glob("part-*.npz"))) >= kill_after,
                  "first chunks", timeout, [proc])
            done_at_kill = len(list(chunks.glob("part-*.npz")))
            killed_at = time.perf_counter() - t0
            pid = cluster.kill_worker(0)
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        wall = time.perf_counter() - t0
    result.update({
        "scheduler": "dask scheduler (separate process, loopback)",
        "workers": n_workers, "threads_per_worker": 1, "nanny": False,
        "killed_worker": {"name": "worker-0", "pid": pid, "signal": "SIGKILL",
                          "seconds_after_start": round(killed_at, 2),
                          "chunks_done_before_kill": done_at_kill},
        "predict_exit_code": proc.returncode,
        "predict_summary": [line.strip() for line in out.strip().splitlines()
                            if "chunk(s)" in line or line.strip().startswith("time ")],
        "predict_error": err.strip().splitlines()[-1:] if proc.returncode else [],
        "cluster_wall_s": round(wall, 2),
        "comparison": (_compare(work / "cluster.fits", work / "local.fits")
                       if proc.returncode == 0 else {"identical": False}),
    })
    return result


_LOCAL_TRAIN = """
from gaiarvs_cnn import conf
from gaiarvs_cnn.model.predict import configure_threads
conf.threads = 1
configure_threads(1)
from gaiarvs_cnn.model import NetworkConfig, train_ensemble
config = NetworkConfig.from_json(open({config!r}).read())
train_ensemble({store!r}, {out!r}, config, n_splits={splits}, n_models={models},
               epochs={epochs}, seed={seed}, tsne=False, progress=False)
"""


def _compare_bundles(a_path: Path, b_path: Path) -> dict:
    """Members' weights, ensemble settings and residual statistics of two bundles.

    ``members_differing`` names the members whose weights are not bit-identical;
    ``max_weight_difference`` is the largest absolute difference of any weight, beside the
    largest absolute weight (``max_weight``).
    """
    import keras

    from gaiarvs_cnn.model import ModelBundle

    a, b = ModelBundle.load(a_path), ModelBundle.load(b_path)
    differ, max_diff, max_w = [], 0.0, 0.0
    for name, ma, mb in zip(a.meta["ensemble"]["members"], a.members, b.members):
        wa, wb = ma.get_weights(), mb.get_weights()
        if len(wa) != len(wb) or any(x.shape != y.shape for x, y in zip(wa, wb)):
            differ.append(name)
            max_diff = float("inf")
            continue
        if not all(np.array_equal(x, y) for x, y in zip(wa, wb)):
            differ.append(name)
        max_diff = max(max_diff, *(float(np.abs(x - y).max()) for x, y in zip(wa, wb)))
        max_w = max(max_w, *(float(np.abs(x).max()) for x in wa))
    keras.backend.clear_session()
    return {"members": [a.n_members, b.n_members],
            "member_names_equal": a.meta["ensemble"]["members"] == b.meta["ensemble"]["members"],
            "ensemble_settings_equal": a.meta["ensemble"] == b.meta["ensemble"],
            "members_differing": differ, "max_weight_difference": max_diff,
            "max_weight": max_w,
            "identical": bool(a.n_members == b.n_members and not differ
                              and a.meta["ensemble"] == b.meta["ensemble"])}


def cluster_train_run(store, config, work, *, n_splits: int = 3, n_models: int = 2,
                      epochs: int = 2, seed: int = 3, n_workers: int = 2,
                      kill_after: int = 1, timeout: float = 900.0) -> dict:
    """``gaiarvs-cnn train --scheduler`` on a loopback cluster with a killed worker.

    Trains the ensemble once locally (one process, one TensorFlow thread) and once with
    every member a task on ``dask scheduler`` + ``n_workers`` ``dask worker`` processes
    (one thread each), killing worker 0 (SIGKILL) once ``kill_after`` members are finished;
    then compares the two bundles member by member (`_compare_bundles`).

    Parameters
    ----------
    store : path-like
        Training store (labelled stars).
    config : NetworkConfig
        The network (a tiny one in the tests).
    work : path-like
        Empty working directory.
    n_splits, n_models, epochs, seed : int
        Ensemble settings of both runs.
    n_workers, kill_after : int
        ``dask worker`` processes; kill worker 0 once this many members are finished.
    timeout : float
        Seconds allowed for each run.

    Returns
    -------
    dict
        Wall times, the killed worker, the training command's exit code and summary, and
        ``comparison`` (``identical`` is the verdict).
    """
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "config.json"
    cfg.write_text(config.to_json())
    n_members = n_splits * n_models
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _LOCAL_TRAIN.format(
        config=str(cfg), store=str(store), out=str(work / "local"), splits=n_splits,
        models=n_models, epochs=epochs, seed=seed)], env=_env(), check=True,
        capture_output=True, timeout=timeout)
    result = {"n_members": n_members, "epochs": epochs,
              "local_wall_s": round(time.perf_counter() - t0, 2)}
    out_dir = work / "cluster"
    history = out_dir / "history"
    with LoopbackCluster(work / "dask", n_workers) as cluster:
        cmd = [sys.executable, "-m", "gaiarvs_cnn", "train", "--store", str(store), "--out",
               str(out_dir), "--config", str(cfg), "--splits", str(n_splits), "--models",
               str(n_models), "--epochs", str(epochs), "--seed", str(seed), "--no-tsne",
               "--scheduler", cluster.address, "--threads-per-worker", "1", "--retries", "2"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            _wait(lambda: len(list(history.glob("*.json"))) >= kill_after,
                  "first members", timeout, [proc])
            done_at_kill = len(list(history.glob("*.json")))
            killed_at = time.perf_counter() - t0
            pid = cluster.kill_worker(0)
            out, err = proc.communicate(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        wall = time.perf_counter() - t0
    result.update({
        "scheduler": "dask scheduler (separate process, loopback)",
        "workers": n_workers, "threads_per_worker": 1,
        "killed_worker": {"name": "worker-0", "pid": pid, "signal": "SIGKILL",
                          "seconds_after_start": round(killed_at, 2),
                          "members_done_before_kill": done_at_kill},
        "train_exit_code": proc.returncode,
        "train_summary": [line.strip() for line in out.strip().splitlines()][-1:],
        "train_error": err.strip().splitlines()[-3:] if proc.returncode else [],
        "cluster_wall_s": round(wall, 2),
        "comparison": (_compare_bundles(out_dir, work / "local") if proc.returncode == 0
                       else {"identical": False}),
    })
    return result


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stars", type=int, default=400)
    parser.add_argument("--chunk-size", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--bundle", default=None, help="default: the shipped demo bundle")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import dask
    import distributed

    from gaiarvs_cnn.model import demo_bundle_path
    from gaiarvs_cnn.simulate.survey import simulate_store
    from gaiarvs_cnn.utils.atomic import write_json_atomic
    from gaiarvs_cnn.version import __version__

    with tempfile.TemporaryDirectory(prefix="bench_cluster_") as tmp:
        work = Path(tmp)
        store = simulate_store(work / "obs.h5", args.n_stars, seed=9, kind="observed",
                               progress=False)
        bundle = Path(args.bundle) if args.bundle else demo_bundle_path()
        result = {"script": "benchmarks/bench_cluster.py", "script_version": SCRIPT_VERSION,
                  "arguments": recorded_arguments(args),
                  "machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                              "platform": platform.platform(),
                              "load_avg_1min_at_start": round(os.getloadavg()[0], 2)},
                  "versions": {"gaiarvs_cnn": __version__, "dask": dask.__version__,
                               "distributed": distributed.__version__},
                  "bundle": str(bundle.name), "input": "simulated observed, seed 9",
                  **cluster_run(store, bundle, work, chunk_size=args.chunk_size,
                                n_workers=args.workers)}
    with contextlib.suppress(FileExistsError):
        args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out, result)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
