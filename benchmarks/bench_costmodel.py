"""DR4/DR5 cost model: CPU time per star of every stage on one core, storage and network.

Runs the production stages one after the other on a simulated column-wise store of
``--n-stars`` observed stars, on ONE thread (``conf.threads = 1``, TensorFlow limited to one
intra/inter-op thread), and records per stage the CPU time of the process (and wall time):

* ``read``: `Store.iter_chunks` (every column) of the store;
* ``cuts``: `gaiarvs_cnn.selection.usable_mask`;
* ``ensemble``: `gaiarvs_cnn.model.predict_batch` (shipped demo bundle, fused members);
* ``flags``: the bundle's `TSNEReference.training_like` + `flag_boundary`;
* ``write``: `build_catalog_table` + `open_writer` (Parquet and FITS, streamed chunks).

The HATS write (partitioning) is measured by ``benchmarks/bench_hats.py``
(``results/hats.json``) and added from there when that file exists. Storage per star is
measured on the store's HDF5 nodes (spectra, errors, XP, scalars) and the catalogue files;
the network volume per star is the size of real Gaia DR3 DataLink products in
``/work/shared/data/real`` (RVS mean spectrum FITS and CSV, XP continuous FITS and
VOTable). Everything is then extrapolated linearly to 3e7 (DR4) and 2e8 (DR5) stars on N
workers (one core each; chunks are independent, so the scaling is linear up to the I/O of
the file system, which is not measured here).

Run (about 5 minutes at 5000 stars on 2 shared cores)::

    nice -n 10 python benchmarks/bench_costmodel.py --n-stars 5000

Results are printed and written to ``benchmarks/results/costmodel.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

SCRIPT_VERSION = 1
DR_SIZES = {"DR4": 3e7, "DR5": 2e8}
WORKERS = (1, 16, 64, 256, 1024)
REAL = Path("/work/shared/data/real")
#: Real DataLink products (Gaia DR3) whose sizes give the network volume per star.
NETWORK_FILES = {
    "rvs_fits": REAL / "rvs_datalink_fits" / "RVS-Gaia DR3 863983115982280448.fits",
    "rvs_csv": REAL / "rvs_datalink_csv" / "HD176650.csv",
    "xp_continuous_fits": (REAL / "astroquery_gaia" / "datalink_5937083312263887616"
                           / "XP_CONTINUOUS-Gaia DR3 5937083312263887616.fits"),
    "xp_continuous_votable": (REAL / "astroquery_gaia" / "datalink_5937083312263887616"
                              / "XP_CONTINUOUS-Gaia DR3 5937083312263887616.xml"),
}


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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-stars", type=int, default=5000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "costmodel.json")
    args = parser.parse_args(argv)

    from gaiarvs_cnn import __version__, conf
    from gaiarvs_cnn.model.predict import configure_threads

    conf.threads = 1
    configure_threads(1)                      # before TensorFlow starts: one core
    from gaiarvs_cnn.catalog import build_catalog_table, open_writer
    from gaiarvs_cnn.flags import flag_boundary
    from gaiarvs_cnn.io.store import Store
    from gaiarvs_cnn.model import ModelBundle, predict_batch
    from gaiarvs_cnn.selection import usable_mask
    from gaiarvs_cnn.simulate.survey import simulate_store
    from gaiarvs_cnn.utils.atomic import write_text_atomic

    work = Path(tempfile.mkdtemp(prefix="bench_costmodel."))
    result = {"script": Path(__file__).name, "script_version": SCRIPT_VERSION,
              "arguments": {k: str(v) if isinstance(v, Path) else v
                            for k, v in vars(args).items()},
              "gaiarvs_cnn": __version__, "threads": 1,
              "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                          "processor": platform.processor() or platform.machine()},
              "load_average_start": list(os.getloadavg())}
    try:
        store_path = simulate_store(work / "obs.h5", args.n_stars, seed=args.seed,
                                    kind="observed", progress=False)
        bundle = ModelBundle.load()
        tsne = bundle.tsne_reference()
        stages = {name: _Stage() for name in ("read", "cuts", "ensemble", "flags",
                                              "write_parquet", "write_fits")}
        n_used = 0
        with Store.open(store_path) as store, \
                open_writer(work / "cat.parquet", meta={"bundle_id": "demo"}) as parquet, \
                open_writer(work / "cat.fits", meta={"bundle_id": "demo"}) as fits_writer:
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
                with stages["flags"]:
                    flags = flag_boundary(pred, batch, bundle.ranges,
                                          tsne.training_like(batch["flux"]))
                with stages["write_parquet"]:
                    parquet.write(build_catalog_table(pred, flags))
                with stages["write_fits"]:
                    fits_writer.write(build_catalog_table(pred, flags))
        n = args.n_stars
        per_star = {name: {"cpu_ms_per_star": round(1000 * s.cpu / n, 4),
                           "wall_ms_per_star": round(1000 * s.wall / n, 4),
                           "stars_per_s_per_core": round(n / s.cpu, 1) if s.cpu else None}
                    for name, s in stages.items()}
        hats_json = Path(__file__).parent / "results" / "hats.json"
        if hats_json.exists():
            hats = json.loads(hats_json.read_text())["hats"]
            ms = hats["cpu_ms_per_star"]
            per_star["write_hats"] = {"cpu_ms_per_star": ms, "from": "results/hats.json",
                                      "stars_per_s_per_core": round(1000 / ms, 1)}
        result["n_stars"] = n
        result["n_usable"] = n_used
        result["stages"] = per_star
        pipeline_stages = ("read", "cuts", "ensemble", "flags", "write_parquet")
        total_ms = sum(per_star[s]["cpu_ms_per_star"] for s in pipeline_stages)
        result["total_cpu_ms_per_star"] = round(total_ms, 4)
        result["total_stages"] = list(pipeline_stages)
        result["stars_per_s_per_core"] = round(1000 / total_ms, 1)

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
        network = {k: p.stat().st_size for k, p in NETWORK_FILES.items() if p.exists()}
        result["network_bytes_per_star"] = network
        fetch = network.get("rvs_fits", 0) + network.get("xp_continuous_fits", 0)

        extrapolation = {}
        for release, size in DR_SIZES.items():
            core_hours = size * total_ms / 1000 / 3600
            extrapolation[release] = {
                "n_stars": size,
                "core_hours": round(core_hours, 1),
                "wall_hours_on_workers": {str(w): round(core_hours / w, 2) for w in WORKERS},
                "storage_TB": {k: round(size * v / 1e12, 3) for k, v in storage.items()},
                "network_TB_fetch_rvs_xp_fits": round(size * fetch / 1e12, 2),
            }
        result["extrapolation"] = extrapolation
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_average_end"] = list(os.getloadavg())
    text = json.dumps(result, indent=1)
    print(text)
    write_text_atomic(args.out, text + "\n")


if __name__ == "__main__":
    main()
