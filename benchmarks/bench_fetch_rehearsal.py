"""Fetch rehearsal at the paper's size on loopback: ``gaiarvs-cnn fetch gaia --training apogee``
for N stars, uninterrupted, and killed with SIGKILL half-way then re-run.

The archive is the loopback server of the tests (`gaiarvs_cnn.archives.loopback`) serving
``build_synthetic_archive(N)``: format-faithful products cloned from the real Gaia DR3 files
(RVS DataLink CSV, XP_CONTINUOUS rows, the recorded gaia_source VOTable schema) with
distinct source_ids, and an APOGEE table of the same ids, so that the training selection
takes every star. The client is the ``gaiarvs-cnn`` command in a subprocess, configured
through its configuration file (``write_config``), with the service's own defaults
(``conf.datalink_max_ids`` = 5000 stars per DataLink request unless ``--max-ids``).

Three runs, each into its own store and cache: (1) uninterrupted; (2) the same command
killed (SIGKILL) once the XP answer of chunk ``--kill-at`` (default: half the chunks) has
been sent, and (3) re-run unchanged. Measured per run: HTTP requests by endpoint (counted by
the server), bytes served, wall time, CPU time and peak RSS of the child (``os.wait4``),
CPU time of the server (this process), store and cache sizes on disk. The final store of
(2)+(3) is compared with that of (1), every column, row and metadata item
(``store_differences``). ``per_1000_stars`` and ``scaled`` extrapolate linearly to the
paper's samples (45 000 training, 886 080 observed stars): loopback numbers, not a
prediction of the real archive's speed.

Run from the repository root (at 45 000 stars on 2 shared cores: about 15 minutes per
full run, 35 minutes in all, 6 GB of temporary disk)::

    nice -n 10 python benchmarks/bench_fetch_rehearsal.py --n-stars 45000

Results are printed and written to ``benchmarks/results/fetch_rehearsal.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _header import result_header

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's gaiarvs_cnn

from gaiarvs_cnn.archives.loopback import (  # noqa: E402
    build_synthetic_archive,
    kill_after,
    serve,
    store_differences,
    write_config,
)
from gaiarvs_cnn.settings import conf  # noqa: E402
from gaiarvs_cnn.utils.atomic import write_text_atomic  # noqa: E402

#: The real Gaia DR3 products the synthetic stars are cloned from (tests/data/README.md).
REAL = ROOT / "tests" / "data" / "gaia_real"

SCRIPT_VERSION = 1
#: The paper's samples (Sects. 2.4-2.5 and 2.1-2.3).
PAPER_TRAINING_STARS = 45_000
PAPER_OBSERVED_STARS = 886_080


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _run(arc, work: Path, name: str, max_ids: int | None, kill_at: int | None = None) -> dict:
    """One ``fetch gaia --training apogee`` subprocess; its measurements."""
    env = {**os.environ, **write_config(work / f"{name}-config", arc, work / f"{name}-cache",
                                        timeout=600.0),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "gaiarvs_cnn", "fetch", "gaia", "--training", "apogee",
           "-o", str(work / f"{name}.h5")] + (["--max-ids", str(max_ids)] if max_ids else [])
    since, served = len(arc.log), dict(arc.served)
    with open(work / f"{name}.log", "a") as log:
        t0, c0 = time.perf_counter(), time.process_time()
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        state = (kill_after(arc, proc.pid, kill_at, RETRIEVAL_TYPE="XP_CONTINUOUS")
                 if kill_at else None)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds, server_cpu = time.perf_counter() - t0, time.process_time() - c0
    arc.after_response = None
    if kill_at:
        assert state["killed"] and proc.returncode == -signal.SIGKILL, (state, proc.returncode)
    else:
        assert proc.returncode == 0, (work / f"{name}.log").read_text()[-3000:]
    return {"exit_status": proc.returncode, "seconds": round(seconds, 2),
            "client_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "client_peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "server_cpu_seconds": round(server_cpu, 2),
            "requests": arc.requests_by_endpoint(since),
            "bytes_served": {k: v - served.get(k, 0) for k, v in arc.served.items()
                             if v - served.get(k, 0)},
            "store_bytes": _size(work / f"{name}.h5"),
            "cache_bytes": _size(work / f"{name}-cache")}


def _stored(path: Path) -> int:
    from gaiarvs_cnn.io.store import Store

    with Store.open(path) as store:
        return len(store)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-stars", type=int, default=PAPER_TRAINING_STARS)
    parser.add_argument("--max-ids", type=int, default=None,
                        help="stars per DataLink request (default conf.datalink_max_ids)")
    parser.add_argument("--kill-at", type=int, default=None,
                        help="SIGKILL after the XP answer of this chunk (default: half)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where stores and caches go (default: a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep the stores and caches")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "fetch_rehearsal.json")
    args = parser.parse_args(argv)
    chunk = args.max_ids or conf.datalink_max_ids
    n_chunks = -(-args.n_stars // chunk)
    kill_at = args.kill_at or max(1, n_chunks // 2)
    if n_chunks < 2:
        parser.error(f"{args.n_stars} stars make {n_chunks} chunk(s) of {chunk}; nothing to "
                     "kill half-way (lower --max-ids)")
    result = {**result_header(__file__, SCRIPT_VERSION, args),
              "n_stars": args.n_stars, "stars_per_chunk": chunk, "n_chunks": n_chunks,
              "kill_after_xp_answer_of_chunk": kill_at}
    work = Path(tempfile.mkdtemp(prefix="bench_fetch.", dir=args.dir))
    try:
        t0 = time.perf_counter()
        arc = build_synthetic_archive(args.n_stars, REAL)
        result["archive_build_seconds"] = round(time.perf_counter() - t0, 2)
        with serve(arc):
            print(f"uninterrupted run of {args.n_stars} stars ...", flush=True)
            result["uninterrupted"] = _run(arc, work, "uninterrupted", args.max_ids)
            print(json.dumps(result["uninterrupted"]), flush=True)
            print(f"run killed after chunk {kill_at} of {n_chunks} ...", flush=True)
            killed = _run(arc, work, "resumed", args.max_ids, kill_at=kill_at)
            killed["stars_stored_at_kill"] = _stored(work / "resumed.h5")
            print(json.dumps(killed), flush=True)
            print("re-run ...", flush=True)
            resumed = _run(arc, work, "resumed", args.max_ids)
            print(json.dumps(resumed), flush=True)
        diffs = store_differences(work / "uninterrupted.h5", work / "resumed.h5")
        result["killed_and_resumed"] = {"killed": killed, "resumed": resumed,
                                        "seconds": round(killed["seconds"]
                                                         + resumed["seconds"], 2),
                                        "store_equals_uninterrupted": not diffs,
                                        "differences": diffs}
        assert _stored(work / "uninterrupted.h5") == args.n_stars
        run = result["uninterrupted"]
        k = 1000 / args.n_stars
        per = {"seconds": round(run["seconds"] * k, 2),
               "client_cpu_seconds": round(run["client_cpu_seconds"] * k, 2),
               "server_cpu_seconds": round(run["server_cpu_seconds"] * k, 2),
               "bytes_served": round(sum(run["bytes_served"].values()) * k),
               "store_bytes": round(run["store_bytes"] * k),
               "cache_bytes": round(run["cache_bytes"] * k)}
        result["per_1000_stars"] = per
        result["scaled"] = {
            "note": "linear extrapolation of the uninterrupted loopback run; the real "
                    "archives' times depend on the services (queueing, throughput) and are "
                    "not measured here; DataLink requests at conf.datalink_max_ids = "
                    f"{conf.datalink_max_ids} stars per request",
            **{f"{name}_{n}": {"stars": n, "hours": round(per["seconds"] * n / 1000 / 3600, 2),
                               "datalink_requests": 2 * -(-n // conf.datalink_max_ids),
                               "gb_served": round(per["bytes_served"] * n / 1000 / 1e9, 2),
                               "store_gb": round(per["store_bytes"] * n / 1000 / 1e9, 2),
                               "cache_gb": round(per["cache_bytes"] * n / 1000 / 1e9, 2)}
               for name, n in (("training", PAPER_TRAINING_STARS),
                               ("observed", PAPER_OBSERVED_STARS))}}
        result["load_average_end"] = list(os.getloadavg())
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=1)
    print(text)
    write_text_atomic(args.out, text + "\n")


if __name__ == "__main__":
    main()
