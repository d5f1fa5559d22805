"""Store reads and writes: the cut columns of 10^6 stars, and every column of 10^5.

Writes the stars once (`gaiarvs_cnn.io.store.Store`: per-star scalars in one table, spectra
and XP in their own chunked arrays), then times `gaiarvs_cnn.io.store.Store.iter_chunks`
over the whole store for the per-star columns of the cuts (``CUT_COLUMNS``), and, for
reference, a full read (every column) of the first ``--full-read`` stars.

The spectra are cheap stand-ins with the compressibility of real ones: one of 256 simulated
RVS spectra plus Gaussian noise (sigma 0.02), a smooth error spectrum, Gaussian XP
coefficients. The page cache is not dropped (a shared machine).

Script version 1 also wrote the compound-row layout of pre-release versions (format 1) and
recorded the speedups of the column-wise layout over it (``cut_column_read_speedup``, ...
in ``benchmarks/results/store.json``, quoted by ``docs/costmodel.rst``); that layout is not
written any more, so version 2 measures the one layout.

Run (about 5 minutes and ~11 GB of temporary disk at 10^6 stars)::

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
from gaiarvs_cnn.io.store import STORE_FORMAT_VERSION, Store
from gaiarvs_cnn.preprocess import fill_nan_pixels
from gaiarvs_cnn.simulate.survey import simulate_batch
from gaiarvs_cnn.utils.atomic import write_text_atomic

SCRIPT_VERSION = 2
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


def _write(path: Path, n_stars: int, chunk: int, seed: int) -> dict:
    seconds = cpu = 0.0
    with Store.create(path, overwrite=True, expected_rows=n_stars) as store:
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
    parser.add_argument("--existing", type=Path, default=None,
                        help="time the reads of this finished store, written by an earlier "
                             "run with the same --n-stars and --seed (its write is not timed "
                             "again)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the store is written (default: a temporary dir)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "store.json")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_store.", dir=args.dir))
    result = {**result_header(__file__, SCRIPT_VERSION, args),
              "cut_columns": CUT_COLUMNS}
    try:
        entry = {"format_version": STORE_FORMAT_VERSION}
        if args.existing is not None:
            path = args.existing
            with Store.open(path) as store:
                assert len(store) == args.n_stars
            entry["write"] = {"not_timed": f"existing store {recorded_path(path)}",
                              "bytes": path.stat().st_size}
        else:
            path = work / "stars.h5"
            entry["write"] = _write(path, args.n_stars, args.chunk, args.seed)
        entry["read_cut_columns"] = _read(path, CUT_COLUMNS, args.chunk)
        entry["read_all_columns"] = _read(path, None, args.chunk, stop=args.full_read)
        result["columns"] = entry
        print(json.dumps(entry), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["load_average_end"] = list(os.getloadavg())
    text = json.dumps(result, indent=1)
    print(text)
    write_text_atomic(args.out, text + "\n")


if __name__ == "__main__":
    main()
