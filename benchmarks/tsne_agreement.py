"""Agreement of the scalable t-SNE classification with the paper's joint embedding; timing.

`gaiarvs_cnn.flags.tsne.TSNEReference.training_like` (training map built once, new spectra placed
with ``transform`` plus the PC-space guard) is compared star by star with
`gaiarvs_cnn.flags.tsne.joint_training_like` (one t-SNE of training + observed spectra, as in
the paper) on a simulated sample that includes hot (Paschen) stars and M giants; the
training-like fraction per population and the time per stage are reported.

Two parts: ``default_run`` times the flags stage of the default run (the shipped bundle's
reference, chunks of simulated stars, t-SNE classification + `flag_boundary`) with the
default placement and with the 100-step ``transform`` of version 0.1, and counts where the
two classifications agree; ``joint`` fits a reference and compares with the joint map.

Run (about 10 minutes on 2 shared cores; ``--skip-joint`` re-times the default run only and
keeps the ``joint`` part of the existing JSON)::

    python benchmarks/tsne_agreement.py --n-train 2000 --n-obs 1500 --n-odd 150 --seed 5

Results are printed and written to ``benchmarks/results/tsne_agreement.json``.

History and findings (moved here from the module docstring of `gaiarvs_cnn.flags.tsne`)
--------------------------------------------------------------------------------------

*Placement.* A new spectrum is placed at the median map position of its ``PLACEMENT_K``
(25, at most the perplexity) nearest training spectra in PC space: the point where
`openTSNE.TSNEEmbedding.transform` starts. Up to version 0.1 it was then optimised with 100
``transform`` steps in each of the four maps (``n_iter=100``, still available), which cost
~2 ms per star, 80 % of the flags stage and more than the CNN. Profile of the 0.1 flags
stage (a one-off profiling script, not a benchmark: 2200 stars, shipped bundle, one idle
core): PCA projection + noise 0.20 ms/star,
the one shared neighbour search 0.06 ms/star, ``transform`` 0.46 / 0.52 / 0.62 / 0.68
ms/star at perplexities 30 / 50 / 75 / 100 (Barnes-Hut repulsion and the ``3 p``-neighbour
attraction, 100 steps each). The median placement costs < 0.01 ms/star per map. What it
costs in agreement: the map criterion only rejects stars the PC-space guard passes for
~0.5 % of the sample, and which of those it rejects depends on the placement's details (a
few ``transform`` steps more or less change them too: 99.3-99.8 % agreement for 10-50
steps against 100). Measured in ``benchmarks/tsne_agreement.py``
(``benchmarks/results/tsne_agreement.json``): the default run's flags stage (21 000 stars
of the simulated survey incl. 1000 out-of-range, shipped bundle) agrees with the 100-step
classification for 99.3 % of the stars at 1/9 of the CPU time (0.32 against 2.8 CPU-ms
per star for the whole stage, t-SNE + ranges, measured on a loaded machine); the
agreement with the paper's joint embedding is unchanged (85.9 % both, 2000 training +
1650 observed spectra).

*Measured agreement with the joint embedding* (same benchmark; 139 of the observed
spectra are hot / M-giant stars, perplexities 30-100): the placement path agrees with the
joint embedding for 86 % of the stars. Nearly all disagreements are ordinary stars at
S/N 15-25, which the joint map sets apart for their noise (joint: 75 % training-like at
S/N 15-25, 99 % above S/N 40; placement: 99 %), and mild out-of-range stars (hot stars of
7000-7500 K, M giants with weak TiO bands), of which the placement path passes 14-22 %
against 0-9 % for the joint map; their Teff digit is set anyway when the CNN places them
outside the training range. Without the PC-space guard the map criterion alone passes
99 % of the hot stars: the maps are not enough by themselves. `joint_training_like` runs
the paper's joint embedding (training and observed spectra together; cost super-linear,
for up to ~10^4-10^5 spectra).

*Reproducibility.* The PCA of `TSNEReference.fit` and `joint_training_like` and the
projection of new spectra run on one BLAS thread: multi-threaded BLAS sums in an order
that depends on the thread count, and t-SNE turns last-bit differences into a different
map (the figure test's map differed between 1 and 2 OpenBLAS threads).

*Timing* (``benchmarks/results/tsne_agreement.json``, 2-core machine shared with other
jobs): fitting the reference on 2000 training spectra, ~90 s (BH gradients, 200 + 300
iterations, 4 maps).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from _header import recorded_arguments

from gaiarvs_cnn import __version__
from gaiarvs_cnn.flags import TSNEReference, joint_training_like
from gaiarvs_cnn.flags.tsne import DEFAULT_PLACEMENT_ITER
from gaiarvs_cnn.preprocess import fill_nan_pixels
from gaiarvs_cnn.simulate.survey import simulate_batch
from gaiarvs_cnn.utils.atomic import write_text_atomic

#: ``transform`` steps of the placement used up to 0.1 (the comparison baseline).
OPTIMISED_ITER = 100

#: Top-level keys of the joint comparison (`run`), kept by ``--skip-joint`` runs.
JOINT_KEYS = (
    "n_train", "n_observed", "seed", "transform_n_iter", "agreement_transform_vs_joint",
    f"agreement_transform_{OPTIMISED_ITER}_iter_vs_joint",
    f"agreement_vs_transform_{OPTIMISED_ITER}_iter", "agreement_map_only_vs_joint",
    "training_like_transform", f"training_like_transform_{OPTIMISED_ITER}_iter",
    "training_like_map_only", "training_like_joint", "disc_stars_training_like_by_snr",
    "seconds", "transform_ms_per_star", f"transform_{OPTIMISED_ITER}_iter_ms_per_star",
    "extrapolated_transform_minutes_1e5", "reference_size_bytes", "joint_date",
    "load_average_joint")

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
    optimised = ref.classify(flux_obs, n_iter=OPTIMISED_ITER)["training_like"]
    t_optimised = time.perf_counter() - t0
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
        f"agreement_transform_{OPTIMISED_ITER}_iter_vs_joint":
            round(float(np.mean(optimised == joint)), 4),
        f"agreement_vs_transform_{OPTIMISED_ITER}_iter":
            round(float(np.mean(like == optimised)), 4),
        "agreement_map_only_vs_joint": round(float(np.mean(map_only == joint)), 4),
        "training_like_transform": _fractions(like, population),
        f"training_like_transform_{OPTIMISED_ITER}_iter": _fractions(optimised, population),
        "training_like_map_only": _fractions(map_only, population),
        "training_like_joint": _fractions(joint, population),
        "disc_stars_training_like_by_snr": by_snr,
        "seconds": {"fit_reference": round(t_fit, 1), "transform": round(t_transform, 1),
                    f"transform_{OPTIMISED_ITER}_iter": round(t_optimised, 1),
                    "joint": round(t_joint, 1)},
        "transform_ms_per_star": round(1000 * t_transform / n_all, 3),
        f"transform_{OPTIMISED_ITER}_iter_ms_per_star": round(1000 * t_optimised / n_all, 3),
        "extrapolated_transform_minutes_1e5": round(1e5 * t_transform / n_all / 60, 2),
        "reference_size_bytes": _saved_size(ref),
    }


def run_default(n_stars: int, n_odd: int, seed: int, chunk: int) -> dict:
    """The flags stage of the default run: shipped bundle, its t-SNE reference, chunks.

    Times what `gaiarvs_cnn.model.predict_and_flag` spends after the CNN
    (t-SNE classification + `flag_boundary`) with the default placement and with the
    optimised ``transform`` placement of earlier versions, as wall time and as CPU time of
    the process (all its threads; less sensitive to other jobs on a shared machine); the
    agreement of the two classifications is counted on every star.
    """
    from gaiarvs_cnn.flags import flag_boundary
    from gaiarvs_cnn.model import ModelBundle, predict_batch

    bundle = ModelBundle.load()
    ref = TSNEReference.load(bundle.tsne_dir)
    obs = simulate_batch(n_stars, seed=seed, kind="observed")
    odd = simulate_batch(n_odd, seed=seed + 1, kind="out-of-range", id_offset=n_stars)
    result = {"n_stars": n_stars + n_odd, "n_out_of_range": n_odd, "seed": seed,
              "chunk": chunk, "bundle": str(bundle.path.name)}
    likes, seconds, cpu = {}, {}, {}
    for name, iters in (("default", DEFAULT_PLACEMENT_ITER), ("optimised", OPTIMISED_ITER)):
        like_all, t_flags, t_cnn, c_flags = [], 0.0, 0.0, 0.0
        for batch in (obs, odd):
            for lo in range(0, len(batch), chunk):
                part = batch[lo:lo + chunk]
                t0 = time.perf_counter()
                pred = predict_batch(bundle, part) if name == "default" else None
                t1, c1 = time.perf_counter(), time.process_time()
                like = ref.training_like(part["flux"], n_iter=iters)
                if pred is not None:
                    flag_boundary(pred, part, bundle.ranges, like)
                t2 = time.perf_counter()
                c_flags += time.process_time() - c1
                t_cnn += t1 - t0
                t_flags += t2 - t1
                like_all.append(like)
        likes[name] = np.concatenate(like_all)
        seconds[name] = t_flags
        cpu[name] = c_flags
        if name == "default":
            result["cnn_ms_per_star"] = round(1000 * t_cnn / result["n_stars"], 3)
    n = result["n_stars"]
    result.update({
        "flags_ms_per_star": round(1000 * seconds["default"] / n, 3),
        "flags_cpu_ms_per_star": round(1000 * cpu["default"] / n, 3),
        f"flags_cpu_ms_per_star_transform_{OPTIMISED_ITER}_iter":
            round(1000 * cpu["optimised"] / n, 3),
        f"flags_ms_per_star_transform_{OPTIMISED_ITER}_iter":
            round(1000 * seconds["optimised"] / n, 3),
        "agreement_with_optimised_transform": round(float(np.mean(likes["default"]
                                                                  == likes["optimised"])), 4),
        "n_disagree": int(np.sum(likes["default"] != likes["optimised"])),
        "training_like_fraction": round(float(likes["default"].mean()), 4),
        f"training_like_fraction_transform_{OPTIMISED_ITER}_iter":
            round(float(likes["optimised"].mean()), 4),
    })
    return result


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
    parser.add_argument("--n-iter", type=int, default=DEFAULT_PLACEMENT_ITER)
    parser.add_argument("--default-run-stars", type=int, default=20_000,
                        help="observed stars of the default-run (shipped bundle) timing")
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--skip-joint", action="store_true",
                        help="only the default-run timing (no reference fit, no joint map)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "tsne_agreement.json")
    args = parser.parse_args(argv)
    result = {"script": Path(__file__).name, "arguments": recorded_arguments(args),
              "gaiarvs_cnn": __version__, "machine": {
                  "cpu_count": os.cpu_count(), "platform": platform.platform(),
                  "processor": platform.processor() or platform.machine()},
              "load_average_start": list(os.getloadavg())}
    result["default_run"] = run_default(args.default_run_stars, args.default_run_stars // 20,
                                        args.seed + 10, args.chunk)
    if not args.skip_joint:
        result.update(run(args.n_train, args.n_obs, args.n_odd, args.seed, args.n_iter))
        result["joint_date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    elif args.out.exists():                  # keep the joint comparison of the last full run
        earlier = json.loads(args.out.read_text())
        result.update({k: v for k, v in earlier.items() if k in JOINT_KEYS})
    result["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["load_average_end"] = list(os.getloadavg())
    text = json.dumps(result, indent=1)
    print(text)
    write_text_atomic(args.out, text + "\n")


if __name__ == "__main__":
    main()
