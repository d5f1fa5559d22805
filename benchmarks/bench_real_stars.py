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
   ``gaiarvs-cnn fit-spectra --catalog`` adds the physics fit (best-fit labels, their Delta,
   and chi2 at the CNN labels minus chi2 of the best fit) per star;
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


def information_limit(row, corr_px: float = 1.1) -> dict:
    """Cramér-Rao bounds (Teff, log g, [Fe/H]) of the RVS spectrum at the reference labels.

    ``white``: `gaiarvs_cnn.simulate.survey.cramer_rao_bound` (the simulator's white
    noise); ``real_noise``: the same Jacobian with the noise correlated like the real
    spectra (Gaussian kernel of ``corr_px`` pixels, `gaiarvs_cnn.simulate.domain`) and a
    free quadratic continuum (the normalisation error) as nuisance parameters.
    """
    from gaiarvs_cnn.constants import LABELS, rvs_wavelength_nm
    from gaiarvs_cnn.simulate.population import FEH_ALPHA_COEFF
    from gaiarvs_cnn.simulate.survey import cramer_rao_bound, forward, jacobian

    feh = float(row["feh"])
    labels = np.array([row["teff"], row["logg"], feh, 0.0, feh])   # [alpha/M] = 0, [M/H] = [Fe/H]
    snr = float(row["rvs_snr_median"])
    white = cramer_rao_bound(labels, snr)
    flux = forward(labels).astype(float)
    x = (rvs_wavelength_nm() - 858.0) / 12.0
    chain = np.vstack([np.eye(4), [0, 0, 1.0, -FEH_ALPHA_COEFF]])
    jac = np.hstack([jacobian(labels) @ chain, flux[:, None] * np.stack([x**0, x, x**2], 1)])
    sigma = np.sqrt(np.clip(flux, 0.05, None)) / snr
    lag = np.arange(len(flux))
    corr = np.exp(-(lag[:, None] - lag[None, :]) ** 2 / (4.0 * corr_px**2))
    cov = corr * sigma[:, None] * sigma[None, :]
    fisher = jac.T @ np.linalg.solve(cov + 1e-12 * np.eye(len(flux)), jac)
    full = np.linalg.inv(fisher)
    lab_cov = chain @ full[:4, :4] @ chain.T
    real = np.sqrt(np.diag(lab_cov))
    pick = [LABELS.index(k) for k in TOLERANCE]
    return {"white": {k: round(float(white[i]), 4) for k, i in zip(TOLERANCE, pick)},
            "real_noise": {k: round(float(real[i]), 4) for k, i in zip(TOLERANCE, pick)},
            "noise_correlation_px": corr_px}


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


def _delta_text(delta: dict) -> str:
    """``'-78 K / -0.10 / -0.01'`` (Teff / log g / [Fe/H]) for the docs table."""
    return (f"{delta['teff']:+.0f} K / {delta['logg']:+.2f} / {delta['feh']:+.2f}"
            .replace("-", "\u2212"))


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
        entry["delta_text"] = _delta_text(entry["delta"])
        entry["within_tolerance"] = {k: bool(abs(entry["delta"][k]) <= TOLERANCE[k])
                                     for k in TOLERANCE}
        out[str(row["star"])] = entry
    return out


def _physics_fit(real_store: Path, catalogue: Path, out: Path, table, stars: dict,
                 log_file: Path) -> None:
    """Add the physics fit (``gaiarvs-cnn fit-spectra --catalog``) to each star's entry."""
    from astropy.table import Table

    from gaiarvs_cnn.constants import LABELS

    if not out.exists():
        _cli("fit-spectra", str(real_store), "--catalog", str(catalogue), "-o", str(out),
             "--quiet", log_file=log_file)
    fit = Table.read(out)
    by_id = {int(s): i for i, s in enumerate(np.asarray(fit["source_id"]))}
    for row in table:
        entry, i = stars[str(row["star"])], by_id.get(int(row["source_id"]))
        if i is None:
            continue
        labels = {k: float(fit["fit_labels"][i][LABELS.index(k)]) for k in TOLERANCE}
        entry["physics_fit"] = {
            "labels": labels,
            "delta": {k: round(labels[k] - float(row[k]), 4) for k in TOLERANCE},
            "delta_text": _delta_text({k: labels[k] - float(row[k]) for k in TOLERANCE}),
            "rv_kms": float(fit["fit_rv"][i]),
            "reduced_chi2": float(fit["fit_reduced_chi2"][i]),
            "success": bool(fit["fit_success"][i]),
            "chi2_at_cnn_labels_minus_best": (float(fit["delta_chi2"][i])
                                              if "delta_chi2" in fit.colnames else None)}


def _summary(stars: dict) -> dict:
    """Over the predicted stars with S/N >= `MIN_SNR`: max and mean |Delta| per label,
    the number of stars within every tolerance, and the same text for the docs."""
    used = [s for s in stars.values() if s.get("predicted") and s["rvs_snr"] >= MIN_SNR]
    out: dict = {"n_stars": len(used),
                 "n_within_all": sum(all(s["within_tolerance"].values()) for s in used)}
    for k in TOLERANCE:
        d = np.abs([s["delta"][k] for s in used]) if used else np.array([np.nan])
        out[f"max_abs_{k}"], out[f"mean_abs_{k}"] = float(d.max()), float(d.mean())
    out["mean_abs_text"] = (f"{out['mean_abs_teff']:.0f} K / {out['mean_abs_logg']:.2f} / "
                            f"{out['mean_abs_feh']:.2f}")
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


def _work(args, spec: str) -> tuple[str, Path]:
    from gaiarvs_cnn.simulate.domain import DomainRandomisation

    canon = DomainRandomisation.parse(spec).spec
    return canon, args.work_dir / canon.replace(",", "+")


def train_realism(spec: str, args, log_file: Path) -> dict:
    """Simulate the training survey with ``spec`` and train both variants (resumable)."""
    canon, work = _work(args, spec)
    work.mkdir(parents=True, exist_ok=True)
    train = work / "train.h5"
    timings = {}
    if not train.exists():
        timings["simulate"] = round(_cli(
            "simulate", "--kind", "training", "--n", str(args.n_stars), "--seed",
            str(args.seed), "--realism", canon, "-o", str(train), "--quiet",
            log_file=log_file), 1)
    cfg = _config_json(args.work_dir)
    for variant in VARIANTS:
        bundle_dir = work / variant
        if not (bundle_dir / "metadata.json").exists():
            extra = ["--rvs-only"] if variant == "rvs_only" else []
            timings[f"train_{variant}"] = round(_cli(
                "train", "--store", str(train), "--out", str(bundle_dir), "--config", str(cfg),
                *extra, "--splits", str(args.splits), "--models", str(args.models), "--epochs",
                str(args.epochs), "--seed", str(args.seed), "--no-tsne", log_file=log_file), 1)
    return timings


def evaluate_realism(spec: str, args, table, real_store: Path, log_file: Path) -> dict:
    """Predict the real and the simulated stars with both variants trained on ``spec``."""
    from gaiarvs_cnn.model import ModelBundle

    canon, work = _work(args, spec)
    entry: dict = {"realism": canon, "variants": {}}
    for variant in VARIANTS:
        bundle_dir = work / variant
        bundle = ModelBundle.load(bundle_dir)
        cat = _predict(real_store, bundle_dir, work / f"real_{variant}.ecsv", log_file)
        stars = _real_deltas(cat, table)
        if not args.no_physics_fit:
            _physics_fit(real_store, work / f"real_{variant}.ecsv",
                         work / f"physics_fit_{variant}.ecsv", table, stars, log_file)
        sim = {}
        for obs_spec, obs_store in args.observed.items():
            obs_cat = _predict(obs_store, bundle_dir, work / f"obs_{obs_spec}_{variant}.ecsv",
                               log_file)
            sim[obs_spec] = _precision(obs_cat, obs_store)
        entry["variants"][variant] = {
            "trained_bundle_id": bundle.bundle_id, "n_members": bundle.n_members,
            "inputs": list(bundle.config.inputs),
            "training_seconds": bundle.meta.get("training_seconds"),
            "stars": stars, "meets_targets": _meets(stars),
            "summary": _summary(stars),
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
    parser.add_argument("--n-stars", type=int, default=6000)
    parser.add_argument("--splits", type=int, default=2)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=24)
    parser.add_argument("--n-observed", type=int, default=3000,
                        help="simulated observed stars for the simulated precision (0: skip)")
    parser.add_argument("--work-dir", type=Path, default=Path("bench_real_stars_work"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-physics-fit", action="store_true",
                        help="skip 'gaiarvs-cnn fit-spectra' of the real stars")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="train nothing: evaluate the specs whose bundles are complete")
    parser.add_argument("--train-only", action="store_true",
                        help="only simulate and train (e.g. ahead of the evaluation)")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    log_file = args.work_dir / "commands.log"
    table = acceptance_set()
    if args.evaluate_only:   # only the specs whose bundles are complete
        args.realism = [spec for spec in args.realism
                        if all((_work(args, spec)[1] / v / "metadata.json").exists()
                               for v in VARIANTS)]
    timings = {spec: ({} if args.evaluate_only else train_realism(spec, args, log_file))
               for spec in args.realism}
    if args.train_only:
        return {}

    real_store = args.work_dir / "real_stars.h5"
    if not real_store.exists():
        gs = _gaia_source(table, args.work_dir / "gaia_source.ecsv")
        rvs = [a for f in table["rvs_file"] for a in ("--rvs", str(TEST_DATA / f))]
        _cli("store", "ingest", *rvs, "--gaia-source", str(gs), "-o", str(real_store),
             log_file=log_file)
    args.observed = {}
    for obs_spec in ("none", "dr3") if args.n_observed > 0 else ():
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
                                   "rvs_snr": float(r["rvs_snr_median"]),
                                   "cramer_rao": information_limit(r)} for r in table},
        "label_source": "SWEET-Cat (Sousa et al. 2021)"}
    info["targets"] = {"min_snr": MIN_SNR, "abs_delta_max": TOLERANCE}
    for spec in args.realism:
        t0 = time.perf_counter()
        entry = evaluate_realism(spec, args, table, real_store, log_file)
        entry["evaluate_wall_seconds"] = round(time.perf_counter() - t0, 1)
        entry["train_wall_seconds_this_run"] = timings[spec]
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
