"""Agreement of the scalable t-SNE classification with the paper's joint embedding; timing.

`gaiarvs_cnn.flags.tsne.TSNEReference.training_like` (training map built once, new spectra placed
with ``transform`` plus the PC-space guard) is compared star by star with
`gaiarvs_cnn.flags.tsne.joint_training_like` (one t-SNE of training + observed spectra, as in
the paper) on a simulated sample that includes hot (Paschen) stars and M giants; the
training-like fraction per population and the time per stage are reported.

Run (about 10 minutes on 2 shared cores)::

    python benchmarks/tsne_agreement.py --n-train 2000 --n-obs 1500 --n-odd 150 --seed 5

Results are printed and written to ``benchmarks/results/tsne_agreement.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from gaiarvs_cnn.flags import TSNEReference, joint_training_like
from gaiarvs_cnn.preprocess import fill_nan_pixels
from gaiarvs_cnn.simulate.survey import simulate_batch

POPULATIONS = {0: "thin", 1: "thick", 2: "halo/metal-poor", 3: "hot (Paschen)",
               4: "M giant (TiO)", 5: "cluster"}


def _fractions(like: np.ndarray, population: np.ndarray) -> dict[str, float]:
    return {POPULATIONS[int(p)]: round(float(like[population == p].mean()), 3)
            for p in np.unique(population)}


def run(n_train: int, n_obs: int, n_odd: int, seed: int, n_iter: int) -> dict:
    """Simulate, classify both ways, return the agreement and the timings."""
    train = simulate_batch(n_train, seed=seed, kind="training")
    obs = simulate_batch(n_obs, seed=seed + 1, kind="observed")
    odd = simulate_batch(n_odd, seed=seed + 2, kind="out-of-range")
    flux_obs = fill_nan_pixels(np.concatenate([obs["flux"], odd["flux"]]))
    population = np.concatenate([obs["population"], odd["population"]])
    flux_train = fill_nan_pixels(train["flux"])

    t0 = time.perf_counter()
    ref = TSNEReference.fit(flux_train, seed=seed)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    details = ref.classify(flux_obs, n_iter=n_iter)
    t_transform = time.perf_counter() - t0
    t0 = time.perf_counter()
    joint = joint_training_like(flux_train, flux_obs, seed=seed)
    t_joint = time.perf_counter() - t0
    like = details["training_like"]
    map_only = np.logical_and.reduce([details[f"like_{p:g}"] for p in ref.perplexities])
    n_all = len(flux_obs)
    snr = np.concatenate([obs["rvs_snr"], odd["rvs_snr"]])
    by_snr = {}
    for lo, hi in ((15, 25), (25, 40), (40, 80), (80, np.inf)):
        sel = (snr >= lo) & (snr < hi) & (population <= 1)
        by_snr[f"{lo}-{hi}"] = {"n": int(sel.sum()),
                                "transform": round(float(like[sel].mean()), 3),
                                "joint": round(float(joint[sel].mean()), 3)}
    return {
        "n_train": n_train, "n_observed": n_all, "seed": seed, "transform_n_iter": n_iter,
        "agreement_transform_vs_joint": round(float(np.mean(like == joint)), 4),
        "agreement_map_only_vs_joint": round(float(np.mean(map_only == joint)), 4),
        "training_like_transform": _fractions(like, population),
        "training_like_map_only": _fractions(map_only, population),
        "training_like_joint": _fractions(joint, population),
        "disc_stars_training_like_by_snr": by_snr,
        "seconds": {"fit_reference": round(t_fit, 1), "transform": round(t_transform, 1),
                    "joint": round(t_joint, 1)},
        "transform_ms_per_star": round(1000 * t_transform / n_all, 2),
        "extrapolated_transform_minutes_1e5": round(1e5 * t_transform / n_all / 60, 1),
        "load_average": list(os.getloadavg()), "cpu_count": os.cpu_count(),
        "reference_size_bytes": _saved_size(ref),
    }


def _saved_size(ref: TSNEReference) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = ref.save(Path(tmp) / "tsne")
        return sum(f.stat().st_size for f in path.iterdir())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-obs", type=int, default=1500)
    parser.add_argument("--n-odd", type=int, default=150)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--n-iter", type=int, default=100)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "tsne_agreement.json")
    args = parser.parse_args(argv)
    result = run(args.n_train, args.n_obs, args.n_odd, args.seed, args.n_iter)
    text = json.dumps(result, indent=1)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
