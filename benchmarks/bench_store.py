"""Store layouts: reading the cut columns of 10^6 stars, compound rows (format 1) vs columns.

Writes the same stars twice, as a format-1 store (``layout='rows'``: one compound row per
star, spectra inside) and as a format-2 store (``layout='columns'``: spectra and XP in their
own chunked arrays), then times `gaiarvs_cnn.io.store.Store.iter_chunks` over the whole
store for the per-star columns of the cuts (``CUT_COLUMNS``), and, for reference, a full
read (every column) of the first ``--full-read`` stars of each.

The spectra are cheap stand-ins with the compressibility of real ones: one of 256 simulated
RVS spectra plus Gaussian noise (sigma 0.02), a smooth error spectrum, Gaussian XP
coefficients. The page cache is not dropped (a shared machine): the format-1 read is bound
by decompressing every spectrum, which the cache does not avoid.

Run (about 15 minutes and 2 x ~17 GB of temporary disk at 10^6 stars)::

    nice -n 10 python benchmarks/bench_store.py --n-stars 1000000

Results are printed and written to ``benchmarks/results/store.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _header import recorded_path, result_header

from gaiarvs_cnn.io.batch import CORE_COLUMNS, StarBatch
from gaiarvs_cnn.io.store import Store
from gaiarvs_cnn.preprocess import fill_nan_pixels
from gaiarvs_cnn.simulate.survey import simulate_batch
from gaiarvs_cnn.utils.atomic import write_text_atomic

SCRIPT_VERSION = 1
#: Per-star columns of the input cuts (`gaiarvs_cnn.selection.training_cut`, the
#: photometric part of `gaiarvs_cnn.selection.usable_mask`); source_id is added.
CUT_COLUMNS = ["rvs_snr", "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag",
               "parallax", "parallax_error", "ruwe"]


def _chunks(n_stars: int, chunk: int, seed: int):
    """Yield batches of stand-in stars (see the module documentation)."""
    rng = np.random.default_rng(seed)
    templates = fill_nan_pixels(simulate_batch(256, seed=seed, kind="observed")["flux"])
    error = np.linspace(0.015, 0.025, templates.shape[1], dtype=np.float32)
    for lo in range(0, n_stars, chunk):
        n = min(chunk, n_stars - lo)
        cols = {"source_id": np.arange(lo, lo + n, dtype=np.int64) * 34359738368 + 7}
        flux = templates[rng.integers(0, len(templates), n)]
        flux += rng.standard_normal(flux.shape, dtype=np.float32) * np.float32(0.02)
        cols["flux"] = flux
        cols["flux_error"] = np.broadcast_to(error, flux.shape) * (
            1 + 0.1 * rng.random((n, 1), dtype=np.float32))
        for spec in CORE_COLUMNS:
            if spec.name in cols:
                continue
            shape = (n, *spec.shape)
            cols[spec.name] = rng.standard_normal(shape, dtype=np.float32).astype(spec.dtype)
        yield StarBatch(cols)


def _write(path: Path, layout: str, n_stars: int, chunk: int, seed: int) -> dict:
    seconds = cpu = 0.0
    with Store.create(path, overwrite=True, expected_rows=n_stars, layout=layout) as store:
        for batch in _chunks(n_stars, chunk, seed):        # making the stars is not timed
            t0, c0 = time.perf_counter(), time.process_time()
            store.append(batch)
            seconds += time.perf_counter() - t0
            cpu += time.process_time() - c0
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "stars_per_s": round(n_stars / seconds, 1), "bytes": path.stat().st_size}


def _read(path: Path, columns, chunk: int, stop: int | None = None) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    checksum = 0.0
    with Store.open(path) as store:
        for batch in store.iter_chunks(chunk, columns=columns, stop=stop):
            n += len(batch)
            checksum += float(np.nansum(batch["parallax"])) if "parallax" in batch else 0.0
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"n_stars": n, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
            "stars_per_s": round(n / seconds, 1), "checksum_parallax": checksum}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-stars", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=20_000, help="stars per write/read")
    parser.add_argument("--full-read", type=int, default=100_000,
                        help="stars of the every-column read")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--layouts", default="rows,columns",
                        help="layouts to measure (comma-separated; the speedups need both)")
    parser.add_argument("--existing", type=Path, default=None,
                        help="time the reads of this finished store of the (one) layout "
                             "given, written by an earlier run with the same --n-stars and "
                             "--seed (its write is not timed again)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the two stores are written (default: a temporary dir)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "store.json")
    parser.add_argument("--combine", type=Path, nargs=2, default=None,
                        metavar=("ROWS_JSON", "COLUMNS_JSON"),
                        help="write --out from two single-layout runs of the same stars")
    args = parser.parse_args(argv)
    if args.combine is not None:
        parts = [json.loads(p.read_text()) for p in args.combine]
        assert [p["arguments"]["n_stars"] for p in parts][0] == parts[1]["arguments"]["n_stars"]
        result = {**parts[1], "rows": parts[0]["rows"], "columns": parts[1]["columns"],
                  "combined_from": [p["arguments"] for p in parts],
                  "load_average_start": [p["load_average_start"] for p in parts],
                  "load_average_end": [p["load_average_end"] for p in parts]}
        result["arguments"] = {"n_stars": parts[1]["arguments"]["n_stars"],
                               "combine": [recorded_path(p) for p in args.combine],
                               "out": recorded_path(args.out)}
        _speedups(result)
        text = json.dumps(result, indent=1)
        print(text)
        write_text_atomic(args.out, text + "\n")
        return
    work = Path(tempfile.mkdtemp(prefix="bench_store.", dir=args.dir))
    result = {**result_header(__file__, SCRIPT_VERSION, args),
              "cut_columns": CUT_COLUMNS}
    try:
        for layout in args.layouts.split(","):
            entry = {"format_version": {"rows": 1, "columns": 2}[layout]}
            if args.existing is not None:
                path = args.existing
                with Store.open(path) as store:
                    assert len(store) == args.n_stars and store.layout == layout
                entry["write"] = {"not_timed": f"existing store {path}",
                                  "bytes": path.stat().st_size}
            else:
                path = work / f"{layout}.h5"
                entry["write"] = _write(path, layout, args.n_stars, args.chunk, args.seed)
            entry["read_cut_columns"] = _read(path, CUT_COLUMNS, args.chunk)
            entry["read_all_columns"] = _read(path, None, args.chunk, stop=args.full_read)
            result[layout] = entry
            print(layout, json.dumps(entry), flush=True)
            if args.existing is None:
                path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if "rows" in result and "columns" in result:
        _speedups(result)
    result["load_average_end"] = list(os.getloadavg())
    text = json.dumps(result, indent=1)
    print(text)
    write_text_atomic(args.out, text + "\n")


def _speedups(result: dict) -> None:
    """Column-wise over compound-row ratios (same stars: same seed and star count)."""
    old, new = result["rows"], result["columns"]
    assert old["read_cut_columns"]["checksum_parallax"] == \
        new["read_cut_columns"]["checksum_parallax"]
    result["cut_column_read_speedup"] = round(
        old["read_cut_columns"]["seconds"] / new["read_cut_columns"]["seconds"], 1)
    result["cut_column_read_cpu_speedup"] = round(
        old["read_cut_columns"]["cpu_seconds"] / new["read_cut_columns"]["cpu_seconds"], 1)
    result["all_column_read_ratio_columns_over_rows"] = round(
        new["read_all_columns"]["stars_per_s"] / old["read_all_columns"]["stars_per_s"], 2)


if __name__ == "__main__":
    main()
