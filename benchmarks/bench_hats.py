"""HATS catalogue write rate: `gaiarvs_cnn.catalog.hats.HATSWriter` on streamed chunks.

Builds ``--n-stars`` catalogue rows (the 17 data-model columns with random labels, Gaia-like
source_ids, positions drawn like the RVS sky: half within 15 deg of the Galactic plane) in
chunks of ``--chunk``, writes them as a HATS catalogue (staging + hats-import on an
in-process dask client with ``--threads`` threads), and reports the time per stage, the
write rate, the number of HEALPix partitions and the size on disk. A plain single-file
Parquet write of the same rows (pyarrow) is timed as the reference.

Run (about 2 minutes at 10^6 stars on 2 shared cores)::

    nice -n 10 python benchmarks/bench_hats.py --n-stars 1000000

Results are printed and written to ``benchmarks/results/hats.json``.
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
from _header import result_header

from gaiarvs_cnn import conf
from gaiarvs_cnn.catalog import build_catalog_table, catalog_columns
from gaiarvs_cnn.catalog.hats import GAIA_HEALPIX12_DIVISOR, HATSWriter
from gaiarvs_cnn.utils.atomic import write_text_atomic

SCRIPT_VERSION = 1


def _chunks(n_stars: int, chunk: int, seed: int):
    import cdshealpix
    from astropy.coordinates import Galactic, Latitude, Longitude, SkyCoord

    rng = np.random.default_rng(seed)
    labels = [c["name"] for c in catalog_columns()][1:-1]
    for lo in range(0, n_stars, chunk):
        n = min(chunk, n_stars - lo)
        b = np.where(rng.random(n) < 0.5, rng.uniform(-15, 15, n),
                     np.degrees(np.arcsin(rng.uniform(-1, 1, n))))
        gal = SkyCoord(l=rng.uniform(0, 360, n), b=b, unit="deg", frame=Galactic)
        icrs = gal.icrs
        ra, dec = icrs.ra.deg, icrs.dec.deg
        pix = cdshealpix.nested.lonlat_to_healpix(Longitude(ra, "deg"), Latitude(dec, "deg"),
                                                  12).astype(np.int64)
        pred = {"source_id": pix * GAIA_HEALPIX12_DIVISOR + lo + np.arange(n)}
        pred.update({k: rng.normal(size=n).astype(np.float32) for k in labels})
        table = build_catalog_table(pred, rng.choice(["00000000", "10000001"], n))
        table["ra"], table["dec"] = ra, dec
        yield table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-stars", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000)
    parser.add_argument("--threads", type=int, default=2, help="dask threads (conf.threads)")
    parser.add_argument("--pixel-threshold", type=int, default=HATSWriter.pixel_threshold)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "hats.json")
    args = parser.parse_args(argv)
    import pyarrow as pa
    import pyarrow.parquet as pq

    work = Path(tempfile.mkdtemp(prefix="bench_hats."))
    result = result_header(__file__, SCRIPT_VERSION, args)
    try:
        tables = list(_chunks(args.n_stars, args.chunk, args.seed))   # built before timing
        t0, c0 = time.perf_counter(), time.process_time()
        with conf.set_temp("threads", args.threads), HATSWriter(
                work / "cat", pixel_threshold=args.pixel_threshold) as writer:
            for table in tables:
                writer.write(table)
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        files = list((work / "cat" / "dataset").rglob("Npix=*.parquet"))
        result["hats"] = {
            "seconds_total": round(total, 2),
            "cpu_seconds_total": round(cpu, 2),
            "cpu_ms_per_star": round(1000 * cpu / args.n_stars, 4),
            "seconds_stage_chunks": round(writer.seconds["stage"], 2),
            "seconds_hats_import": round(writer.seconds["import"], 2),
            "stars_per_s": round(args.n_stars / total, 1),
            "n_partitions": len(files),
            "orders": sorted({int(f.parent.parent.name.split("=")[1]) for f in files}),
            "bytes": sum(f.stat().st_size for f in (work / "cat").rglob("*") if f.is_file()),
        }
        t0, c0 = time.perf_counter(), time.process_time()
        with pq.ParquetWriter(work / "plain.parquet", pa.Table.from_pandas(
                tables[0].to_pandas(), preserve_index=False).schema) as plain:
            for table in tables:
                plain.write_table(pa.Table.from_pandas(table.to_pandas(), preserve_index=False))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        result["plain_parquet"] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
                                   "stars_per_s": round(args.n_stars / seconds, 1),
                                   "bytes": (work / "plain.parquet").stat().st_size}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["hats_over_plain_parquet_time"] = round(
        result["hats"]["seconds_total"] / result["plain_parquet"]["seconds"], 1)
    result["load_average_end"] = list(os.getloadavg())
    text = json.dumps(result, indent=1)
    print(text)
    write_text_atomic(args.out, text + "\n")


if __name__ == "__main__":
    main()
