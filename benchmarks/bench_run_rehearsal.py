"""Run rehearsal at scale on loopback: ``gaiarvs-cnn run CONFIG`` from the archives to the
validation report for N_TRAINING labelled and N_OBSERVED observed stars, stage by stage.

The archive is `gaiarvs_cnn.archives.loopback` serving
``build_synthetic_archive(max(N_TRAINING, N_OBSERVED), references=True)``: format-faithful
Gaia DR3 products cloned from the real files of ``tests/data/gaia_real/``, with APOGEE
labels for the first N_TRAINING stars and the reference tables of the validation (GALAH,
K2-GAP, clusters, GSP-Spec/Phot, the published catalogue). The observed selection is
``SELECT TOP N_OBSERVED source_id FROM gaiadr3.gaia_source`` (it includes the training
stars, as the paper's catalogue does). The network is the demo network
(``network.config = "demo"``) with a small ensemble (``--splits`` x ``--models``,
``--epochs``): this measures the pipeline, not the paper's 28-member training (whose cost
the plan gives from `gaiarvs_cnn.pipeline.costs`).

The command runs once per stage (``--until STAGE``; the stages before are skipped as
done), each time in its own process, so that per stage this records: wall time, CPU time
and peak RSS of the process (``os.wait4``; the process also imports the package and, from
``train`` on, TensorFlow), HTTP requests by endpoint and bytes served (counted by the
server), and the size of the run's folder. The plan's estimates (``--plan``) are recorded
beside the measurements.

Run from the repository root (about an hour at the default size on 2 shared cores)::

    nice -n 10 python benchmarks/bench_run_rehearsal.py --n-training 20000 --n-observed 100000

Results are printed and written to ``benchmarks/results/run_rehearsal.json``.

``--replan`` only redoes the plan of the run recorded in ``--out`` (same sizes, same
archive) with this checkout and records it as ``replan`` beside the measurements (the
plan's request counts per stage parsed from its table), so that a change of the plan is
compared with the stages measured without running them again::

    python benchmarks/bench_run_rehearsal.py --replan
"""
from __future__ import annotations

import argparse
import faulthandler
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _header import result_header

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's gaiarvs_cnn

from gaiarvs_cnn.archives.loopback import (  # noqa: E402
    RealProducts,
    build_synthetic_archive,
    serve,
    write_config,
)
from gaiarvs_cnn.pipeline import STAGES  # noqa: E402
from gaiarvs_cnn.utils.atomic import write_text_atomic  # noqa: E402

#: The real Gaia DR3 products the synthetic stars are cloned from (tests/data/README.md).
REAL = RealProducts(ROOT / "tests" / "data" / "gaia_real")
SCRIPT_VERSION = 1


def _size(path: Path) -> int:
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _config(work: Path, args) -> Path:
    path = work / "run.toml"
    path.write_text(f"""[run]
name = "bench_run_rehearsal"
output = "{work / 'run'}"
[training]
calibration_fraction = {args.calibration_fraction}
[network]
config = "demo"
splits = {args.splits}
models = {args.models}
epochs = {args.epochs}
tsne = {"true" if args.tsne else "false"}
[observed]
query = "SELECT TOP {args.n_observed} source_id FROM gaiadr3.gaia_source"
[references]
kinds = ["apogee", "galah", "seismic", "clusters", "gsp-spec", "gsp-phot", "published"]
figure_formats = ["png"]
[catalogue]
formats = ["fits", "parquet"]
""")
    return path


def _command(arc, work: Path, config: Path, *extra: str) -> tuple[dict, str]:
    env = {**os.environ, **write_config(work / "config-home", arc, work / "cache",
                                        timeout=600.0),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    since, served = len(arc.log), dict(arc.served)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gaiarvs_cnn", "run", str(config),
                             "--quiet", *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"gaiarvs-cnn run {' '.join(extra)} failed ({code}):\n{out[-4000:]}")
    return {"seconds": round(time.perf_counter() - t0, 2),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "requests": arc.requests_by_endpoint(since),
            "bytes_served": sum(v - served.get(k, 0) for k, v in arc.served.items())}, out


def plan_requests(lines: list[str]) -> dict[str, int]:
    """Requests per stage from the table of ``run --plan`` (its ``requests`` column)."""
    out = {}
    for line in lines:
        parts = line.split()
        if parts and parts[0] in STAGES and len(parts) > 2 and parts[2].isdigit():
            out[parts[0]] = int(parts[2])
    return out


def replan(args) -> None:
    """Redo only the plan of the run recorded in ``args.out`` with this checkout."""
    result = json.loads(args.out.read_text())
    sizes = argparse.Namespace(**{**vars(args), **result["arguments"]})
    work = Path(tempfile.mkdtemp(prefix="bench_replan.", dir=args.dir))
    try:
        arc = build_synthetic_archive(max(sizes.n_training, sizes.n_observed), REAL,
                                      references=True)
        arc.tables["iii/286/catalog"] = arc.tables["iii/286/catalog"][:sizes.n_training]
        config = _config(work, sizes)
        with serve(arc):
            measured, text = _command(arc, work, config, "--plan")
        text = text.replace(str(work), f"<temporary folder>/{work.name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = text.rstrip("\n").splitlines()
    result["replan"] = {**result_header(__file__, SCRIPT_VERSION, args), "measured": measured,
                        "requests_by_stage": plan_requests(lines), "text": lines}
    print(text)
    write_text_atomic(args.out, json.dumps(result, indent=1) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-training", type=int, default=20_000)
    parser.add_argument("--n-observed", type=int, default=100_000)
    parser.add_argument("--calibration-fraction", type=float, default=0.1)
    parser.add_argument("--splits", type=int, default=1)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--tsne", action="store_true",
                        help="fit the t-SNE reference and compute its flag digit")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the run goes (default: a temporary dir)")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    parser.add_argument("--label", default="",
                        help="a note recorded with the result (e.g. why a smaller size)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "run_rehearsal.json")
    parser.add_argument("--replan", action="store_true",
                        help="only redo the plan of the run recorded in --out (module docs)")
    args = parser.parse_args(argv)
    faulthandler.enable(all_threads=True)
    if args.replan:
        replan(args)
        return  # a crash of the server threads names its stack
    result = {**result_header(__file__, SCRIPT_VERSION, args),
              "n_training": args.n_training, "n_observed": args.n_observed,
              "ensemble": f"demo network, {args.splits} x {args.models} members, at most "
                          f"{args.epochs} epochs, t-SNE {'on' if args.tsne else 'off'}",
              "label": args.label}
    work = Path(tempfile.mkdtemp(prefix="bench_run.", dir=args.dir))
    try:
        t0 = time.perf_counter()
        arc = build_synthetic_archive(max(args.n_training, args.n_observed), REAL,
                                      references=True)
        arc.tables["iii/286/catalog"] = arc.tables["iii/286/catalog"][:args.n_training]
        result["archive_build_seconds"] = round(time.perf_counter() - t0, 2)
        config = _config(work, args)
        with serve(arc):
            plan, text = _command(arc, work, config, "--plan")
            # the run's folder is named in the plan's first line: not a path of this machine
            text = text.replace(str(work), f"<temporary folder>/{work.name}")
            lines = text.rstrip("\n").splitlines()
            result["plan"] = {"measured": plan, "requests_by_stage": plan_requests(lines),
                              "text": lines}
            print(text, flush=True)
            stages = {}
            for stage in STAGES:
                print(f"stage {stage} ...", flush=True)
                measured, _ = _command(arc, work, config, "--until", stage)
                record = json.loads((work / "run" / "state" / f"{stage}.json").read_text())
                measured["stage_seconds"] = record["seconds"]
                measured["run_folder_bytes"] = _size(work / "run")
                measured["record"] = {k: v for k, v in record.items()
                                      if k not in ("summary", "finished")}
                stages[stage] = measured
                print(json.dumps(measured), flush=True)
        result["stages"] = stages
        result["total_seconds"] = round(sum(s["seconds"] for s in stages.values()), 1)
        result["total_bytes_served"] = sum(s["bytes_served"] for s in stages.values())
        result["peak_rss_mib"] = max(s["peak_rss_mib"] for s in stages.values())
        result["cache_bytes"] = _size(work / "cache")
        result["load_average_end"] = list(os.getloadavg())
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(result, indent=1)
    print(text)
    write_text_atomic(args.out, text + "\n")


if __name__ == "__main__":
    main()
