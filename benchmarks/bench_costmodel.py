"""DR3/DR4/DR5 cost model: CPU time per star of every stage on one core, training, storage.

Runs the production stages one after the other on a simulated column-wise store of
``--n-stars`` observed stars, on ONE thread (``conf.threads = 1``, TensorFlow limited to one
intra/inter-op thread, numpy's BLAS to one thread), and records per stage the CPU time of
the process (and wall time):

* ``read``: `Store.iter_chunks` (every column) of the store;
* ``cuts``: `gaiarvs_cnn.selection.usable_mask`;
* ``ensemble``: `gaiarvs_cnn.model.predict_batch` with the shipped bundle (fused members);
* ``paper_ensemble``: the paper's network (28 members of ``NetworkConfig()``, untrained
  weights: the cost does not depend on them) on the first ``--paper-stars`` usable stars,
  the same `~gaiarvs_cnn.model.predict.FusedEnsemble`;
* ``flags``: the bundle's `TSNEReference.training_like` + `flag_boundary`;
* ``write``: `build_catalog_table` + `open_writer` (Parquet and FITS, streamed chunks).

Training: one member of each network (the shipped bundle's and the paper's) is trained for
``--train-epochs`` timed epochs (after one warm-up epoch) on ``--train-stars`` simulated
training stars with the pipeline of `gaiarvs_cnn.model.training` (75/25 split, validation
included), giving CPU seconds per member, per epoch, per 1000 training stars.

The HATS write (partitioning) is measured by ``benchmarks/bench_hats.py``
(``results/hats.json``) and added from there when that file exists. Storage per star is
measured on the store's HDF5 nodes and the catalogue files; the network volume per star is
the size of the real Gaia DR3 DataLink products in ``tests/data/gaia_real``. Everything is
then extrapolated (`gaiarvs_cnn.production.costmodel`) to DR3 (886 080 stars), DR4 (3e7)
and DR5 (2e8) on 1-1024 workers, and the cost figure is drawn to
``docs/_static/costmodel.png``. The result records the commit and the shipped bundle's id
(``tests/test_docs_benchmarks.py`` fails when the docs quote a result of another bundle).

Run (about 10 minutes on 2 shared cores; rerun after the shipped bundle changes)::

    python benchmarks/bench_costmodel.py

Results are printed and written to ``benchmarks/results/costmodel.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _header import provenance, result_header  # noqa: E402

SCRIPT_VERSION = 2
REAL = ROOT / "tests" / "data" / "gaia_real"
#: Real DataLink products (Gaia DR3) whose sizes give the network volume per star.
NETWORK_FILES = {
    "rvs_fits": REAL / "rvs_datalink_fits" / "RVS-Gaia DR3 863983115982280448.fits",
    "rvs_csv": REAL / "rvs_datalink_csv" / "HD176650.csv",
    "xp_continuous_csv": REAL / "xp_continuous" / "XP_CONTINUOUS_RAW.csv",
    "xp_continuous_votable": REAL / "xp_continuous" / "XP_CONTINUOUS_RAW.xml",
}
FIGURE = ROOT / "docs" / "_static" / "costmodel.png"
#: Paper: 28 members (7 splits x 4), a training sample of about 45 000 stars, at most 200
#: epochs (early stopping ends most members earlier: an upper limit).
PAPER_TRAINING = {"n_members": 28, "n_train_stars": 45_000, "epochs": 200}


class _Stage:
    """Accumulates CPU and wall seconds of one stage."""

    def __init__(self):
        self.cpu = self.wall = 0.0

    def __enter__(self):
        self._c, self._w = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.cpu += time.process_time() - self._c
        self.wall += time.perf_counter() - self._w


def _node_bytes(path: Path) -> dict[str, int]:
    import tables

    out = {}
    with tables.open_file(str(path)) as h5:
        for node in h5.walk_nodes("/", classname="Leaf"):
            out[node._v_pathname] = int(node.size_on_disk)
    return out


def _network_bytes() -> dict[str, float]:
    """Bytes per star of each real DataLink product (file size / stars in the file)."""
    from astropy.table import Table

    out = {}
    for key, path in NETWORK_FILES.items():
        if not path.exists():
            continue
        n = 1
        if key.startswith("xp_"):
            fmt = "ascii.csv" if path.suffix == ".csv" else "votable"
            n = max(1, len(Table.read(path, format=fmt)))
        out[key] = round(path.stat().st_size / n, 1)
    return out


def _train_cost(config, batch, epochs: int, seed: int = 0) -> dict:
    """CPU seconds of one member per epoch per 1000 stars (train + validation), one core."""
    import keras

    from gaiarvs_cnn.model.network import build_model, compile_model
    from gaiarvs_cnn.model.training import _dataset, make_splits, training_arrays
    from gaiarvs_cnn.preprocess import InputScalers

    scalers = InputScalers.fit(batch)
    x, y = training_arrays(batch, scalers, config)
    tr, va = make_splits(len(y), 1, seed)[0]
    train = _dataset({k: v[tr] for k, v in x.items()}, y[tr], config.batch_size, seed)
    val = _dataset({k: v[va] for k, v in x.items()}, y[va], config.batch_size, None)
    keras.utils.set_random_seed(seed)
    model = compile_model(build_model(config), config)
    model.fit(train, validation_data=val, epochs=1, verbose=0)      # warm-up: tracing
    c, w = time.process_time(), time.perf_counter()
    model.fit(train, validation_data=val, epochs=epochs, verbose=0)
    cpu, wall = time.process_time() - c, time.perf_counter() - w
    n = len(y)
    return {"n_stars": n, "epochs_timed": epochs,
            "cpu_s_per_member_epoch_per_1000_stars": round(cpu / epochs / (n / 1000), 4),
            "wall_s_per_member_epoch_per_1000_stars": round(wall / epochs / (n / 1000), 4),
            "flops_per_star_forward": config.flops_per_star()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-stars", type=int, default=5000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--paper-stars", type=int, default=1000,
                        help="stars timed through the 28-member paper ensemble")
    parser.add_argument("--train-stars", type=int, default=2000)
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--figure", type=Path, default=FIGURE)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results"
                        / "costmodel.json")
    args = parser.parse_args(argv)

    from gaiarvs_cnn import conf
    from gaiarvs_cnn.model.predict import configure_threads

    conf.threads = 1
    configure_threads(1)                      # before TensorFlow starts: one core
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import keras

    from gaiarvs_cnn.catalog import build_catalog_table, open_writer
    from gaiarvs_cnn.flags import flag_boundary
    from gaiarvs_cnn.io.store import Store
    from gaiarvs_cnn.model import FusedEnsemble, ModelBundle, NetworkConfig, build_model
    from gaiarvs_cnn.model.predict import grid_slice, predict_batch
    from gaiarvs_cnn.production.costmodel import (
        RELEASES,
        WORKERS,
        cost_figure,
        cost_table,
        training_hours,
    )
    from gaiarvs_cnn.selection import usable_mask
    from gaiarvs_cnn.simulate.survey import simulate_batch, simulate_store
    from gaiarvs_cnn.utils.atomic import write_text_atomic

    bundle = ModelBundle.load()
    result = {**result_header(__file__, SCRIPT_VERSION, args), "threads": 1,
              **provenance(bundle.path)}
    paper = NetworkConfig()
    paper_members = []
    for i in range(PAPER_TRAINING["n_members"]):
        keras.utils.set_random_seed(i)
        paper_members.append(build_model(paper))
    paper_fused = FusedEnsemble(paper_members, paper)
    work = Path(tempfile.mkdtemp(prefix="bench_costmodel."))
    try:
        store_path = simulate_store(work / "obs.h5", args.n_stars, seed=args.seed,
                                    kind="observed", progress=False)
        tsne = bundle.tsne_reference()
        stages = {name: _Stage() for name in ("read", "cuts", "ensemble", "paper_ensemble",
                                              "flags", "write_parquet", "write_fits")}
        n_used = n_paper = 0
        meta = {"bundle_id": bundle.bundle_id}
        with Store.open(store_path) as store, \
                open_writer(work / "cat.parquet", meta=meta) as parquet, \
                open_writer(work / "cat.fits", meta=meta) as fits_writer:
            chunks = store.iter_chunks(args.chunk)
            while True:
                with stages["read"]:
                    batch = next(chunks, None)
                if batch is None:
                    break
                with stages["cuts"]:
                    batch = batch[usable_mask(batch)]
                n_used += len(batch)
                with stages["ensemble"]:
                    pred = predict_batch(bundle, batch)
                if n_paper < args.paper_stars:
                    part = batch[: args.paper_stars - n_paper]
                    with stages["paper_ensemble"]:
                        x = bundle.scalers.transform_inputs(part)
                        x["rvs"] = np.ascontiguousarray(x["rvs"][:, grid_slice(paper)])
                        paper_fused({k: x[k] for k in paper.inputs})
                    n_paper += len(part)
                with stages["flags"]:
                    flags = flag_boundary(pred, batch, bundle.ranges,
                                          tsne.training_like(batch["flux"]))
                with stages["write_parquet"]:
                    parquet.write(build_catalog_table(pred, flags))
                with stages["write_fits"]:
                    fits_writer.write(build_catalog_table(pred, flags))
        n = args.n_stars
        counts = {"paper_ensemble": n_paper}
        per_star = {}
        for name, s in stages.items():
            k = counts.get(name, n)
            per_star[name] = {"cpu_ms_per_star": round(1000 * s.cpu / k, 4),
                              "wall_ms_per_star": round(1000 * s.wall / k, 4),
                              "stars_per_s_per_core": round(k / s.cpu, 1) if s.cpu else None}
        per_star["paper_ensemble"]["n_stars"] = n_paper
        per_star["paper_ensemble"]["n_members"] = len(paper_members)
        per_star["ensemble"]["n_members"] = bundle.n_members
        hats_json = ROOT / "benchmarks" / "results" / "hats.json"
        if hats_json.exists():
            hats = json.loads(hats_json.read_text())["hats"]
            ms = hats["cpu_ms_per_star"]
            per_star["write_hats"] = {"cpu_ms_per_star": ms, "from": "results/hats.json",
                                      "stars_per_s_per_core": round(1000 / ms, 1)}
        result["n_stars"] = n
        result["n_usable"] = n_used
        result["stages"] = per_star
        chain = ("read", "cuts", "ensemble", "flags", "write_parquet")
        total = {"shipped_bundle": sum(per_star[s]["cpu_ms_per_star"] for s in chain)}
        total["paper_network"] = (total["shipped_bundle"] - per_star["ensemble"]["cpu_ms_per_star"]
                                  + per_star["paper_ensemble"]["cpu_ms_per_star"])
        result["total_stages"] = list(chain)
        result["total_cpu_ms_per_star"] = {k: round(v, 4) for k, v in total.items()}
        result["stars_per_s_per_core"] = {k: round(1000 / v, 1) for k, v in total.items()}

        # training: one member of each network, one core
        train_batch = simulate_batch(args.train_stars, seed=args.seed + 1, kind="training")
        train_batch = train_batch[np.all(np.isfinite(train_batch["labels"]), axis=1)]
        epochs_run = list(bundle.meta.get("epochs_run", {}).values())
        recipes = {
            "shipped_bundle": {"n_members": bundle.n_members,
                               "n_train_stars": bundle.meta.get("training_sample", {})
                               .get("n_stars"),
                               "epochs": round(float(np.mean(epochs_run)), 1)
                               if epochs_run else None,
                               "epochs_from": "mean epochs run by the shipped members"},
            "paper_network": {**PAPER_TRAINING,
                              "epochs_from": "the paper's maximum (early stopping ends "
                                             "most members earlier: an upper limit)"}}
        training = {}
        for name, config in (("shipped_bundle", bundle.config), ("paper_network", paper)):
            cost = _train_cost(config, train_batch, args.train_epochs, seed=args.seed)
            recipe = recipes[name]
            hours = {w: training_hours(cost["cpu_s_per_member_epoch_per_1000_stars"],
                                       n_members=recipe["n_members"],
                                       n_train_stars=recipe["n_train_stars"],
                                       epochs=recipe["epochs"], workers=w) for w in WORKERS}
            core_h = hours[1][0]
            wall = {str(w): float(f"{h[1]:.3g}") for w, h in hours.items()}
            training[name] = {**cost, "recipe": recipe, "core_hours": float(f"{core_h:.3g}"),
                              "wall_hours_on_workers": wall}
        result["training"] = training

        nodes = _node_bytes(store_path)
        spectra = nodes.get("/arrays/flux", 0)
        errors = nodes.get("/arrays/flux_error", 0)
        xp = sum(v for k, v in nodes.items() if "coefficient" in k)
        scalars = nodes.get("/stars", 0)
        storage = {"store_flux": spectra / n, "store_flux_error": errors / n,
                   "store_xp": xp / n, "store_scalars": scalars / n,
                   "store_total": (work / "obs.h5").stat().st_size / n,
                   "catalogue_parquet": (work / "cat.parquet").stat().st_size / n_used,
                   "catalogue_fits": (work / "cat.fits").stat().st_size / n_used}
        result["bytes_per_star"] = {k: round(v, 1) for k, v in storage.items()}
        network = _network_bytes()
        result["network_bytes_per_star"] = network
        fetch = network.get("rvs_fits", 0) + network.get("xp_continuous_votable", 0)

        extrapolation = {}
        tables = {k: cost_table(v) for k, v in total.items()}
        for release, size in RELEASES.items():
            extrapolation[release] = {
                "n_stars": size,
                **{k: {kk: vv for kk, vv in t[release].items() if kk != "n_stars"}
                   for k, t in tables.items()},
                "storage_TB": {k: round(size * v / 1e12, 4) for k, v in storage.items()},
                "network_TB_fetch_rvs_fits_xp_votable": round(size * fetch / 1e12, 3),
            }
        result["extrapolation"] = extrapolation
        fig = cost_figure({"shipped bundle": total["shipped_bundle"],
                           "paper network": total["paper_network"]},
                          {"shipped bundle": training["shipped_bundle"]["core_hours"],
                           "paper network": training["paper_network"]["core_hours"]})
        args.figure.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.figure, dpi=100)
        result["figure"] = args.figure.resolve().relative_to(ROOT).as_posix() \
            if args.figure.resolve().is_relative_to(ROOT) else args.figure.name
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_average_end"] = list(os.getloadavg())
    text = json.dumps(result, indent=1)
    print(text)
    write_text_atomic(args.out, text + "\n")
    return result


if __name__ == "__main__":
    main()
