"""The demo network on real Gaia DR3 RVS spectra with independent labels (issue 24).

Tried as a new user would, with the project's own commands only:

1. ``gaiarvs-cnn simulate --kind training --realism SPEC`` (the simulated survey, with the
   domain-randomisation ingredients ``SPEC`` of `gaiarvs_cnn.simulate.domain`);
2. ``gaiarvs-cnn train`` of the demo network (`gaiarvs_cnn.model.demo.DEMO_CONFIG`)
   restricted to RVS + G/BP/RP/parallax (no XP; ``rvs_phot``) and to RVS only
   (``--rvs-only``), ``--splits`` x ``--models`` members, seeded;
3. ``gaiarvs-cnn store ingest`` of the real DataLink RVS files of the acceptance set
   (``tests/data/real_stars/labels.ecsv``: SWEET-Cat labels, Gaia DR3 photometry and
   parallax) with a gaia_source table written from it, no XP;
4. ``gaiarvs-cnn predict`` and Delta = CNN - reference per star and label;
5. the simulated precision of the same bundles (``gaiarvs-cnn predict`` of a simulated
   observed survey with and without the ``dr3`` ingredients, robust sigma and median of
   CNN - truth for stars inside the training ranges).

Targets (issue 24): on every labelled star with S/N >= 15, |Delta Teff| <= 150 K,
|Delta log g| <= 0.25 dex, |Delta [Fe/H]| <= 0.15 dex, for both variants.

Run (resumable: the work directory keeps stores, bundles and catalogues; a rerun only does
what is missing)::

    python benchmarks/bench_real_stars.py --realism none dr3 [--work-dir DIR]

Results are merged into ``benchmarks/results/real_stars.json`` (one entry per realism
spec, so ablations such as ``'dr3,-continuum'`` can be added run by run).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

RESULTS = ROOT / "benchmarks" / "results" / "real_stars.json"
ACCEPTANCE = ROOT / "tests" / "data" / "real_stars" / "labels.ecsv"
TEST_DATA = ROOT / "tests" / "data"
SCRIPT_VERSION = 1
#: Issue-24 tolerances on stars with S/N >= `MIN_SNR`.
TOLERANCE = {"teff": 150.0, "logg": 0.25, "feh": 0.15}
MIN_SNR = 15.0
VARIANTS = ("rvs_phot", "rvs_only")


def _cli(*args: str, log_file: Path) -> float:
    """Run ``python -m gaiarvs_cnn ARGS``; return its wall time (raise with its log on failure)."""
    t0 = time.perf_counter()
    with open(log_file, "a") as fh:
        fh.write(f"\n$ gaiarvs-cnn {' '.join(args)}\n")
        fh.flush()
        proc = subprocess.run([sys.executable, "-m", "gaiarvs_cnn", *args], stdout=fh,
                              stderr=subprocess.STDOUT)
    if proc.returncode:
        raise SystemExit(f"'gaiarvs-cnn {' '.join(args)}' failed; see {log_file}")
    return time.perf_counter() - t0


def _commit() -> dict:
    def git(*a):
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True,
                              text=True).stdout.strip()
    return {"commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--", "gaiarvs_cnn", "benchmarks"))}


def acceptance_set():
    """The acceptance-set table (labels, photometry, RVS file per star)."""
    from astropy.table import Table

    return Table.read(ACCEPTANCE, format="ascii.ecsv")


def _gaia_source(table, path: Path) -> Path:
    """gaia_source-like ECSV of the acceptance set (what a user's archive query returns)."""
    from astropy.table import Table

    cols = ("source_id", "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag", "parallax",
            "parallax_error")
    gs = Table({c: table[c] for c in cols})
    gs["rvs_spec_sig_to_noise"] = table["rvs_snr_median"]
    gs.write(path, format="ascii.ecsv", overwrite=True)
    return path


def _config_json(work: Path) -> Path:
    """The demo network without the XP branch, as a config file for ``train --config``."""
    from gaiarvs_cnn.model.demo import DEMO_CONFIG

    path = work / "demo_rvs_phot_config.json"
    path.write_text(DEMO_CONFIG.replace(inputs=("rvs", "phot")).to_json())
    return path


def _predict(store: Path, bundle: Path, out: Path, log_file: Path):
    from gaiarvs_cnn.catalog import read_catalog

    if not out.exists():
        _cli("predict", "--store", str(store), "--model", str(bundle), "--out", str(out),
             "--format", "ecsv", "--quiet", log_file=log_file)
    return read_catalog(out)


def _real_deltas(cat, table) -> dict:
    """Per star: reference, CNN, sigma, Delta and whether it meets `TOLERANCE`."""
    out = {}
    by_id = {int(s): i for i, s in enumerate(np.asarray(cat["source_id"]))}
    for row in table:
        i = by_id.get(int(row["source_id"]))
        entry = {"source_id": int(row["source_id"]), "rvs_snr": float(row["rvs_snr_median"])}
        if i is None:
            entry["predicted"] = False
            out[str(row["star"])] = entry
            continue
        entry["predicted"] = True
        entry["reference"] = {k: float(row[k]) for k in TOLERANCE}
        entry["cnn"] = {k: float(cat[k][i]) for k in TOLERANCE}
        entry["sigma"] = {k: float(cat[f"sigma_{k}"][i]) for k in TOLERANCE
                          if f"sigma_{k}" in cat.colnames}
        entry["delta"] = {k: round(entry["cnn"][k] - entry["reference"][k], 4) for k in TOLERANCE}
        entry["within_tolerance"] = {k: bool(abs(entry["delta"][k]) <= TOLERANCE[k])
                                     for k in TOLERANCE}
        out[str(row["star"])] = entry
    return out


def _meets(stars: dict) -> bool:
    return all(s.get("predicted") and all(s["within_tolerance"].values())
               for s in stars.values() if s["rvs_snr"] >= MIN_SNR)


def _precision(cat, store) -> dict:
    """Robust sigma and median of CNN - truth per label (true labels in the training ranges)."""
    from gaiarvs_cnn.constants import LABELS, PAPER_TRAINING_RANGES
    from gaiarvs_cnn.validation.crossmatch import add_store_columns
    from gaiarvs_cnn.validation.stats import robust_sigma

    data = add_store_columns(cat, store)
    inside = np.ones(len(data), bool)
    for lab in LABELS:
        lo, hi = PAPER_TRAINING_RANGES[lab]
        true = np.asarray(data[f"true_{lab}"], float)
        inside &= (true >= lo) & (true <= hi)
    snr = np.asarray(data["rvs_snr"], float)
    out = {}
    for name, sel in (("all", inside), ("snr_15_25", inside & (snr >= 15) & (snr < 25))):
        res = {lab: np.asarray(data[lab], float)[sel] - np.asarray(data[f"true_{lab}"],
                                                                   float)[sel]
               for lab in LABELS}
        out[name] = {"n": int(sel.sum()),
                     "robust_sigma": {k: round(robust_sigma(v), 4) for k, v in res.items()},
                     "median": {k: round(float(np.nanmedian(v)), 4) for k, v in res.items()}}
    return out


def run_realism(spec: str, args, table, real_store: Path, log_file: Path) -> dict:
    """Simulate, train both variants, predict the real and the simulated stars for ``spec``."""
    from gaiarvs_cnn.model import ModelBundle
    from gaiarvs_cnn.simulate.domain import DomainRandomisation

    canon = DomainRandomisation.parse(spec).spec
    work = args.work_dir / canon.replace(",", "+")
    work.mkdir(parents=True, exist_ok=True)
    train = work / "train.h5"
    entry: dict = {"realism": canon, "timings_seconds": {}}
    if not train.exists():
        entry["timings_seconds"]["simulate"] = round(_cli(
            "simulate", "--kind", "training", "--n", str(args.n_stars), "--seed",
            str(args.seed), "--realism", canon, "-o", str(train), "--quiet",
            log_file=log_file), 1)
    cfg = _config_json(args.work_dir)
    entry["variants"] = {}
    for variant in VARIANTS:
        bundle_dir = work / variant
        if not (bundle_dir / "metadata.json").exists():
            extra = ["--rvs-only"] if variant == "rvs_only" else []
            entry["timings_seconds"][f"train_{variant}"] = round(_cli(
                "train", "--store", str(train), "--out", str(bundle_dir), "--config", str(cfg),
                *extra, "--splits", str(args.splits), "--models", str(args.models), "--epochs",
                str(args.epochs), "--seed", str(args.seed), "--no-tsne", log_file=log_file), 1)
        bundle = ModelBundle.load(bundle_dir)
        cat = _predict(real_store, bundle_dir, work / f"real_{variant}.ecsv", log_file)
        stars = _real_deltas(cat, table)
        sim = {}
        for obs_spec, obs_store in args.observed.items():
            obs_cat = _predict(obs_store, bundle_dir, work / f"obs_{obs_spec}_{variant}.ecsv",
                               log_file)
            sim[obs_spec] = _precision(obs_cat, obs_store)
        entry["variants"][variant] = {
            "bundle_id": bundle.bundle_id, "n_members": bundle.n_members,
            "inputs": list(bundle.config.inputs),
            "training_seconds": bundle.meta.get("training_seconds"),
            "stars": stars, "meets_targets": _meets(stars),
            "simulated_precision": sim}
    return entry


def _table_text(results: dict) -> str:
    """A plain-text Delta table of every realism spec and variant (for the log)."""
    lines = []
    for spec, entry in results.items():
        for variant, v in entry["variants"].items():
            cells = []
            for star, s in v["stars"].items():
                d = s.get("delta")
                cells.append(f"{star}: " + ("not predicted" if d is None else
                             f"{d['teff']:+.0f} K / {d['logg']:+.2f} / {d['feh']:+.2f}"))
            lines.append(f"{spec:>24s} {variant:9s} {'PASS' if v['meets_targets'] else 'miss'}"
                         f"  " + "; ".join(cells))
    return "\n".join(lines)


def main(argv=None) -> dict:
    from _header import result_header

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--realism", nargs="+", default=["none", "dr3"],
                        help="domain-randomisation specs to train on (one run each)")
    parser.add_argument("--n-stars", type=int, default=3000)
    parser.add_argument("--splits", type=int, default=2)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--n-observed", type=int, default=3000,
                        help="simulated observed stars for the simulated precision")
    parser.add_argument("--work-dir", type=Path, default=Path("bench_real_stars_work"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    log_file = args.work_dir / "commands.log"
    table = acceptance_set()

    real_store = args.work_dir / "real_stars.h5"
    if not real_store.exists():
        gs = _gaia_source(table, args.work_dir / "gaia_source.ecsv")
        rvs = [a for f in table["rvs_file"] for a in ("--rvs", str(TEST_DATA / f))]
        _cli("store", "ingest", *rvs, "--gaia-source", str(gs), "-o", str(real_store),
             log_file=log_file)
    args.observed = {}
    for obs_spec in ("none", "dr3"):
        path = args.work_dir / f"observed_{obs_spec}.h5"
        if not path.exists():
            _cli("simulate", "--kind", "observed", "--n", str(args.n_observed), "--seed", "11",
                 "--realism", obs_spec, "-o", str(path), "--quiet", log_file=log_file)
        args.observed[obs_spec] = path

    info = json.loads(args.out.read_text()) if args.out.exists() else {}
    if info.get("script_version") != SCRIPT_VERSION:
        info = {}
    runs = info.get("runs", {})
    info.update(result_header(__file__, SCRIPT_VERSION, args))
    info["arguments"]["observed"] = {k: Path(v).name for k, v in args.observed.items()}
    info["acceptance_set"] = {
        "file": str(ACCEPTANCE.relative_to(ROOT)),
        "stars": {str(r["star"]): {"source_id": int(r["source_id"]),
                                   "rvs_file": str(r["rvs_file"]),
                                   "reference": {k: float(r[k]) for k in TOLERANCE},
                                   "rvs_snr": float(r["rvs_snr_median"])} for r in table},
        "label_source": "SWEET-Cat (Sousa et al. 2021)"}
    info["targets"] = {"min_snr": MIN_SNR, "abs_delta_max": TOLERANCE}
    for spec in args.realism:
        t0 = time.perf_counter()
        entry = run_realism(spec, args, table, real_store, log_file)
        entry["wall_seconds"] = round(time.perf_counter() - t0, 1)
        entry.update(_commit())
        runs[entry["realism"]] = entry
        info["runs"] = runs
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(info, indent=1) + "\n")
        tmp.replace(args.out)
        print(_table_text({entry["realism"]: entry}), flush=True)
    return info


if __name__ == "__main__":
    main()
