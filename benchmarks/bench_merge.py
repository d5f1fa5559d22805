"""Benchmark of the streaming catalogue merge (issue 19): memory and time per format.

Merges synthetic chunk results (the 17 catalogue columns; chunk ``k`` drawn from
``numpy.random.default_rng(seed + k)``, written as a ``chunk_<k>.npz`` file like the chunk
results of a run, then read back one at a time) into one catalogue file per single-file
format through `gaiarvs_cnn.catalog.open_writer`, and records, per format and number of
rows:

* ``peak_rss_mb``: the peak resident set size of the merging process (``ru_maxrss``; each
  merge runs in a fresh subprocess, so the peaks do not mix);
* ``seconds`` and ``rows_per_s``: wall time of the merge (writer open to rename);
* ``file_mb``: size of the catalogue written;
* ``writers_sha256``: the sha256 of the writer code measured (``gaiarvs_cnn/catalog/
  writers.py`` and the format's own module, e.g. ``catalog/fits.py``, one after the other);

and ``rss_growth_mb`` = peak RSS of the largest merge minus that of the 10^5-row merge
(target <= 300 MB: memory must not grow with the number of stars).

Run (``nice``; 10^7 rows x 4 formats takes a while on 2 shared cores)::

    nice -n 10 python benchmarks/bench_merge.py [--rows 10000000] [--formats fits,ecsv]

A single (format, rows) merge: ``python benchmarks/bench_merge.py --one FORMAT ROWS DIR``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "merge.json"
#: The catalogue package measured (the sha256 of its writer modules is recorded with each run).
CATALOG_DIR = Path(__file__).resolve().parents[1] / "gaiarvs_cnn" / "catalog"
SCRIPT_VERSION = 2
BASE_ROWS = 100_000
CHUNK_ROWS = 100_000
SEED = 19
TARGET_MB = 300.0


def writers_sha256(fmt: str) -> str:
    """sha256 of ``catalog/writers.py`` followed by the module of format ``fmt``."""
    import hashlib

    digest = hashlib.sha256()
    for name in ("writers.py", f"{fmt}.py"):
        digest.update((CATALOG_DIR / name).read_bytes())
    return digest.hexdigest()


def synthetic_chunk(k: int, n: int) -> dict:
    """Chunk result ``k``: ``n`` rows of the 17 catalogue columns (source_id, labels, flags)."""
    from gaiarvs_cnn.catalog import catalog_columns

    rng = np.random.default_rng(SEED + k)
    out = {"source_id": np.arange(k * CHUNK_ROWS, k * CHUNK_ROWS + n, dtype=np.int64)
           + 4_000_000_000_000_000_000}
    for spec in catalog_columns()[1:-1]:
        out[spec["name"]] = rng.normal(1.0, 0.5, n).astype(np.float32)
    digits = rng.random((n, 8)) < 0.1
    out["flag_boundary"] = np.array(["".join("1" if d else "0" for d in row)
                                     for row in digits[:min(n, 4096)]], dtype="U8")
    out["flag_boundary"] = np.resize(out["flag_boundary"], n)
    return out


def write_chunks(work: Path, rows: int) -> list[Path]:
    """The synthetic chunk result files of a run of ``rows`` stars."""
    paths = []
    for k, start in enumerate(range(0, rows, CHUNK_ROWS)):
        path = work / f"chunk_{k:06d}.npz"
        if not path.exists():
            np.savez(path, **synthetic_chunk(k, min(CHUNK_ROWS, rows - start)))
        paths.append(path)
    return paths


def merge_once(fmt: str, rows: int, work: Path) -> dict:
    """Merge the chunk files of ``rows`` stars into one ``fmt`` catalogue; in this process."""
    from astropy import log

    from gaiarvs_cnn.catalog import CATALOG_FORMATS, build_catalog_table, open_writer

    log.setLevel("WARNING")
    chunks = write_chunks(work, rows)
    out = work / f"merged{CATALOG_FORMATS[fmt]}"
    start = time.perf_counter()
    with open_writer(out, fmt, meta={"bundle_id": "bench"}, overwrite=True) as writer:
        for path in chunks:
            with np.load(path) as data:
                pred = {k: data[k] for k in data.files if k != "flag_boundary"}
                writer.write(build_catalog_table(pred, data["flag_boundary"]))
    seconds = time.perf_counter() - start
    size = out.stat().st_size
    out.unlink()
    return {"format": fmt, "rows": rows, "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds), "file_mb": round(size / 2**20, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def run_subprocess(fmt: str, rows: int, work: Path) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--one", fmt, str(rows), str(work)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"merge {fmt} {rows} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--formats", default="fits,votable,ecsv,parquet")
    parser.add_argument("--work", default=None, help="folder for the chunk files")
    parser.add_argument("--one", nargs=3, metavar=("FORMAT", "ROWS", "DIR"))
    args = parser.parse_args(argv)
    if args.one:
        fmt, rows, work = args.one
        print(json.dumps(merge_once(fmt, int(rows), Path(work))))
        return
    from gaiarvs_cnn.version import __version__

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        work = Path(tmp)
        for fmt in args.formats.split(","):
            base = run_subprocess(fmt, BASE_ROWS, work)
            big = run_subprocess(fmt, args.rows, work)
            results["runs"][fmt] = {
                "base": base, "large": big, "writers_sha256": writers_sha256(fmt),
                "rss_growth_mb": round(big["peak_rss_mb"] - base["peak_rss_mb"], 1),
                "target_mb": TARGET_MB, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "within_target": big["peak_rss_mb"] - base["peak_rss_mb"] <= TARGET_MB}
            print(json.dumps(results["runs"][fmt]), flush=True)
            results.update({
                "script": "benchmarks/bench_merge.py", "script_version": SCRIPT_VERSION,
                "arguments": {"rows": args.rows, "base_rows": BASE_ROWS,
                              "chunk_rows": CHUNK_ROWS, "seed": SEED},
                "gaiarvs_cnn_version": __version__,
                "machine": {"platform": platform.platform(), "python": platform.python_version(),
                            "cpus": os.cpu_count(), "processor": platform.processor()},
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            from gaiarvs_cnn.utils.atomic import write_json_atomic

            write_json_atomic(RESULTS, results)


if __name__ == "__main__":
    main()
