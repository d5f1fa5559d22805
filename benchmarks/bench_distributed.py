"""Benchmark of Dask-distributed prediction + flagging, and a DR4/DR5 cost model.

Writes ``benchmarks/results/distributed.json`` with

* ``throughput``: stars/s of the single-process loop and of a LocalCluster with 1 and 2
  worker processes (1 thread each; timed on a second run, after a warm-up run that
  traces the TensorFlow function and builds the t-SNE embeddings on every worker),
  speed-up and efficiency (speed-up / workers), and CPU per star;
* ``overhead``: scheduler + I/O overhead per task versus chunk size, and the round trip
  of an empty task;
* ``agreement``: distributed vs single-process catalogue (bitwise labels, flags) and the
  t-SNE digit computed per partition vs on the whole sample at once;
* ``cost_model``: per-star CPU cost of the paper's full ensemble (28 members of the
  default `NetworkConfig`, timed on random weights: the cost does not depend on the
  weights) plus the measured t-SNE placement and I/O costs, extrapolated to Gaia DR4 and
  DR5 (stars, CPU-hours, wall time on K cores, input and output sizes).

Run (a few minutes on 2 cores)::

    python benchmarks/bench_distributed.py [--bundle DIR] [--n-stars 400]

Without ``--bundle`` the shipped demo bundle is used if present, else a tiny bundle is
trained (1 epoch) so the orchestration can still be timed; the JSON says which.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _header import recorded_path  # noqa: E402

from gaiarvs_cnn import conf  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "distributed.json"
#: Gaia releases: number of RVS spectra assumed (paper Sect. 1: "several 10 million",
#: then "more than 200 million"); DR4 is given as a low/high bracket.
RELEASES = {"DR3": 0.999e6, "DR4_low": 3.0e7, "DR4_high": 1.0e8, "DR5": 2.0e8}
CORES = (64, 512, 4096)


def _bundle(path: str | None, work: Path) -> tuple[Path, str]:
    from gaiarvs_cnn.model import demo_bundle_path

    if path:
        return Path(path), "given"
    demo = demo_bundle_path()
    if (demo / "manifest.json").exists():
        return demo, "demo bundle"
    return _tiny_bundle(work), "tiny bundle (1 epoch, 2 members; demo bundle absent)"


def _tiny_bundle(work: Path) -> Path:
    from gaiarvs_cnn.flags import TSNEReference
    from gaiarvs_cnn.io.store import Store
    from gaiarvs_cnn.model import NetworkConfig, train_ensemble
    from gaiarvs_cnn.simulate.survey import simulate_store

    train = simulate_store(work / "train.h5", 400, seed=3, kind="training", progress=False)
    cfg = NetworkConfig(conv_filters=(8, 8, 4), rvs_dense=16, phot_dense=8, xp_dense=8,
                        head_dense=(16, 8), jit_compile=False, batch_size=64)
    bundle = train_ensemble(train, work / "bundle", config=cfg, n_splits=1, n_models=2,
                            epochs=1, tsne=False, progress=False)
    with Store.open(train) as store:
        TSNEReference.fit(store.read(columns=["flux"])["flux"], seed=0,
                          n_iter=(100, 200)).save(bundle.tsne_dir)
    return bundle.path


def _serial(bundle_path: Path, store: Path, chunk: int):
    """Single-process loop (same per-chunk work as a Dask task): (wall s, CPU s, outputs)."""
    from gaiarvs_cnn.io.shards import open_source
    from gaiarvs_cnn.model import predict_and_flag
    from gaiarvs_cnn.model.predict import INPUT_COLUMNS
    from gaiarvs_cnn.production.task import load_bundle
    from gaiarvs_cnn.selection import usable_mask

    bundle = load_bundle(bundle_path)

    def run(batch):
        return predict_and_flag(bundle, batch[usable_mask(batch)])

    with open_source(store) as src:
        run(src.read(0, min(chunk, 32), INPUT_COLUMNS))  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        out = [run(b) for b in src.iter_chunks(chunk, INPUT_COLUMNS)]
        return time.perf_counter() - t0, time.process_time() - c0, out


def _cluster(n_workers: int):
    import distributed

    cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                       processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    return distributed.Client(cluster), cluster


def _dask_run(client, bundle_path, store, chunk, work: Path) -> dict:
    from gaiarvs_cnn.production import CatalogRun, DaskExecutor, produce_catalog

    out = work / f"cat_{chunk}_{len(client.scheduler_info()['workers'])}.fits"
    run = produce_catalog(CatalogRun(source="files", store=store, model=bundle_path, out=out,
                                     formats="fits", chunk_size=chunk, progress=False,
                                     overwrite=True), executor=DaskExecutor(client=client))
    n_workers = len(client.scheduler_info()["workers"])
    n_in = sum(r["n_stars"] for r in run.tasks)
    return {"chunk_size": chunk, "workers": n_workers, "tasks": run.n_chunks,
            "stars": n_in, "compute_wall_s": round(run.compute_seconds, 3),
            "stars_per_s": round(n_in / run.compute_seconds, 2),
            "task_wall_s_total": round(sum(r["seconds"] for r in run.tasks), 3),
            "task_cpu_s_total": round(sum(r["cpu_seconds"] for r in run.tasks), 3),
            "cpu_ms_per_star": round(1e3 * sum(r["cpu_seconds"] for r in run.tasks) / n_in, 3),
            "merge_and_write_s": round(run.wall_seconds - run.compute_seconds, 3),
            "load_avg_1min": round(os.getloadavg()[0], 2), "catalogue": str(out)}


def _overhead_fit(runs: list[dict], noop: float) -> dict:
    """Fixed CPU cost per task from sum(task CPU) = stars * c + tasks * f (least squares)."""
    tasks = np.array([r["tasks"] for r in runs], float)
    cpu = np.array([r["task_cpu_s_total"] for r in runs], float)
    f, intercept = np.polyfit(tasks, cpu, 1)
    return {"by_chunk_size": runs, "empty_task_roundtrip_s": round(noop, 5),
            "fixed_cpu_s_per_task": round(float(f), 4),
            "cpu_s_per_star_from_fit": round(float(intercept) / runs[0]["stars"], 5),
            "note": "fixed_cpu_s_per_task = per-call costs inside a task (ensemble batches "
                    "zero-padded to 256 stars, 250 t-SNE transform iterations per perplexity "
                    "on the FFT grid, opening the HDF5 file); the scheduler itself costs "
                    "empty_task_roundtrip_s per task."}


def _noop_roundtrip(client, n: int = 200) -> float:
    t0 = time.perf_counter()
    futures = [client.submit(int, i, pure=False) for i in range(n)]
    client.gather(futures)
    return (time.perf_counter() - t0) / n


def _warm(client, bundle_path) -> float:
    from gaiarvs_cnn.production.worker_plugins import BundlePreload

    t0 = time.perf_counter()
    client.register_plugin(BundlePreload(str(bundle_path), 1))
    return time.perf_counter() - t0


def _agreement(serial_out, catalogue: Path, ref, store: Path, chunk: int) -> dict:
    from gaiarvs_cnn.catalog import read_catalog
    from gaiarvs_cnn.io.shards import open_source

    table = read_catalog(catalogue)
    labels = ["teff", "logg", "mh", "alpham", "feh"]
    ser = {k: np.concatenate([o[k] for o in serial_out]) for k in [*labels, "flag_boundary"]}
    with open_source(store) as src:
        flux = src.read(columns=["flux"])["flux"]
    whole = ref.training_like(flux)
    per = np.concatenate([ref.training_like(flux[i:i + chunk])
                          for i in range(0, len(flux), chunk)])
    return {
        "labels_bitwise_identical": bool(all(np.array_equal(np.asarray(table[k]), ser[k])
                                             for k in labels)),
        "labels_max_abs_diff": {k: float(np.max(np.abs(np.asarray(table[k], float)
                                                        - ser[k].astype(float))))
                                for k in labels},
        "flags_identical_fraction": float(np.mean(np.asarray(table["flag_boundary"])
                                                  == ser["flag_boundary"])),
        "tsne_per_partition_vs_whole_agreement": float(np.mean(whole == per)),
        "tsne_training_like_fraction": float(np.mean(whole)),
        "tsne_partition_size": chunk,
    }


def _full_ensemble_cost(n: int = 256, members: int = 28) -> dict:
    """CPU seconds per star of the paper's 28-member ensemble (default config), 1 thread."""
    import tensorflow as tf

    from gaiarvs_cnn.model import NetworkConfig, build_model

    model = build_model(NetworkConfig())
    fn = tf.function(lambda x: model(x, training=False))
    rng = np.random.default_rng(0)
    x = {"rvs": rng.random((n, 2401, 1), dtype=np.float32),
         "phot": rng.random((n, 4), dtype=np.float32),
         "xp": rng.random((n, 110), dtype=np.float32)}
    fn(x)
    reps = 3
    t0 = time.process_time()
    for _ in range(reps):
        fn(x)
    per_member = (time.process_time() - t0) / reps / n
    return {"member_params": int(model.count_params()), "members": members,
            "cpu_s_per_star_per_member": per_member,
            "cpu_s_per_star": per_member * members}


def _tsne_cost(ref, store: Path, n: int = 200) -> float:
    from gaiarvs_cnn.io.shards import open_source

    with open_source(store) as src:
        flux = src.read(0, n, ["flux"])["flux"]
    ref.training_like(flux[:16])
    t0 = time.process_time()
    ref.training_like(flux)
    return (time.process_time() - t0) / len(flux)


def _io_cost(store: Path) -> tuple[float, float]:
    """(CPU s per star to read the model inputs, compressed store bytes per star)."""
    from gaiarvs_cnn.io.shards import open_source
    from gaiarvs_cnn.model.predict import INPUT_COLUMNS

    with open_source(store) as src:
        t0 = time.process_time()
        n = sum(len(b) for b in src.iter_chunks(4096, INPUT_COLUMNS))
        return (time.process_time() - t0) / n, store.stat().st_size / n


def _cost_model(per_star: dict, efficiency: float, out_bytes: float, in_bytes: float) -> dict:
    cpu = per_star["total_cpu_s_per_star"]
    rows = {}
    for name, n in RELEASES.items():
        hours = n * cpu / 3600
        rows[name] = {"stars": n, "cpu_hours": round(hours, 1),
                      "wall_hours": {str(k): round(hours / (k * efficiency), 2) for k in CORES},
                      "catalogue_GB": round(n * out_bytes / 1e9, 2),
                      "input_store_TB": round(n * in_bytes / 1e12, 2),
                      "input_float32_flux_TB": round(n * 2401 * 4 / 1e12, 2)}
    return {"per_star_cpu_s": per_star, "parallel_efficiency_assumed": efficiency,
            "catalogue_bytes_per_star": round(out_bytes, 1),
            "store_bytes_per_star": round(in_bytes, 1), "releases": rows,
            "assumptions": [
                "CPU time per star = 28 members of the paper's default network (timed, 1 "
                "thread, batch 256, random weights) + t-SNE placement (timed with the "
                "benchmark bundle's reference) + reading the inputs from HDF5.",
                "Embarrassingly parallel partitions: wall = CPU-hours / (K cores x "
                "efficiency); efficiency = CPU per star in the single process / CPU per star "
                "in the 2 Dask workers (capped to [0.5, 1]); wall-clock speed-ups could not "
                "be measured on the shared, saturated 2-core machine (see load_avg_1min).",
                "Partitions of >= 10^4 stars: the fixed per-task cost and the scheduler "
                "round trip (overhead section) are then < 1 % of a task.",
                "DR4 = 3e7-1e8 and DR5 = 2e8 RVS spectra (paper Sect. 1); one catalogue "
                "row per spectrum; the store keeps flux and flux_error (compressed).",
                "The shared machine was loaded by other jobs: timings are upper limits.",
            ]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=None)
    parser.add_argument("--n-stars", type=int, default=400)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--overhead-chunks", default="25,50,100,200")
    args = parser.parse_args(argv)
    conf.threads = 1
    from gaiarvs_cnn.production.task import load_bundle
    from gaiarvs_cnn.simulate.survey import simulate_store

    work = Path(tempfile.mkdtemp(prefix="bench_distributed_"))
    t_start = time.perf_counter()
    try:
        bundle_path, bundle_kind = _bundle(args.bundle, work)
        store = simulate_store(work / "obs.h5", args.n_stars, seed=9, kind="observed",
                               progress=False)
        serial_s, serial_cpu, serial_out = _serial(bundle_path, store, args.chunk)
        result = {"machine": {"cores": os.cpu_count(), "python": platform.python_version(),
                              "load_avg_1min_at_start": os.getloadavg()[0]},
                  "bundle": {"path": recorded_path(bundle_path), "kind": bundle_kind},
                  "n_stars": args.n_stars, "chunk_size": args.chunk}
        throughput = {"serial": {"workers": 1, "stars_per_s": round(args.n_stars / serial_s, 2),
                                 "wall_s": round(serial_s, 3),
                                 "cpu_ms_per_star": round(1e3 * serial_cpu / args.n_stars, 3),
                                 "load_avg_1min": round(os.getloadavg()[0], 2)}}
        runs = {}
        for n_workers in (1, 2):
            client, cluster = _cluster(n_workers)
            try:
                warm = _warm(client, bundle_path)
                _dask_run(client, bundle_path, store, args.chunk, work)  # traces TF, t-SNE
                runs[n_workers] = _dask_run(client, bundle_path, store, args.chunk, work)
                runs[n_workers]["worker_start_and_bundle_load_s"] = round(warm, 2)
                if n_workers == 2:
                    overhead = [_dask_run(client, bundle_path, store, int(c), work)
                                for c in args.overhead_chunks.split(",")]
                    noop = _noop_roundtrip(client)
            finally:
                client.close()
                cluster.close()
        base = runs[1]["stars_per_s"]
        serial_cpu_star = throughput["serial"]["cpu_ms_per_star"]
        for n_workers, run in runs.items():
            speedup = run["stars_per_s"] / base
            throughput[f"dask_{n_workers}_workers"] = {
                **run, "speedup_vs_1_worker": round(speedup, 3),
                "efficiency": round(speedup / n_workers, 3),
                "cpu_efficiency_vs_serial": round(serial_cpu_star / run["cpu_ms_per_star"], 3)}
        result["throughput"] = throughput
        result["overhead"] = _overhead_fit(overhead, noop)
        ref = load_bundle(bundle_path).tsne_reference()
        result["agreement"] = _agreement(serial_out, Path(runs[2]["catalogue"]), ref, store,
                                         args.chunk)
        cat = Path(runs[2]["catalogue"])
        io_s, store_bytes = _io_cost(store)
        per_star = {**_full_ensemble_cost(), "tsne_cpu_s_per_star": _tsne_cost(ref, store),
                    "io_cpu_s_per_star": io_s}
        per_star["total_cpu_s_per_star"] = (per_star["cpu_s_per_star"]
                                            + per_star["tsne_cpu_s_per_star"] + io_s)
        eff = float(np.clip(throughput["dask_2_workers"]["cpu_efficiency_vs_serial"], 0.5, 1.0))
        result["cost_model"] = _cost_model(per_star, eff, cat.stat().st_size / args.n_stars,
                                           store_bytes)
        fixed = max(result["overhead"]["fixed_cpu_s_per_task"], 0.0) + noop
        result["cost_model"]["task_overhead_fraction_at_10000_stars_per_task"] = round(
            fixed / (fixed + 1e4 * per_star["total_cpu_s_per_star"]), 5)
        result["benchmark_wall_s"] = round(time.perf_counter() - t_start, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, RESULTS)
    return result


if __name__ == "__main__":
    main()
