"""Paper-ensemble inference and training rates on a GPU, whenever TensorFlow sees one.

The same code as on a CPU: TensorFlow places the operations on the first GPU by itself.
Measured with the paper's network (``NetworkConfig()``, untrained weights: the rates do not
depend on them):

* inference: stars/s of the fused 28-member ensemble
  (`gaiarvs_cnn.model.predict.FusedEnsemble`) at several batch sizes, with and without XLA,
  against a plain loop of ``model.predict`` over the members;
* training: samples/s of one member with the `gaiarvs_cnn.model.training` pipeline
  (``tf.data``, batches of 64 = the paper's, and larger), against a plain ``model.fit``
  on numpy arrays.

Without a GPU it prints a message and exits with status 0 without writing anything (it is
never needed by the tests). Writes ``benchmarks/results/gpu.json`` with the device name,
the commit and the software versions.

Run::

    python benchmarks/bench_gpu.py [--members 28] [--stars 8192] [--train-stars 8192]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _header import provenance, result_header  # noqa: E402

SCRIPT_VERSION = 1
RESULTS = ROOT / "benchmarks" / "results" / "gpu.json"


def gpu_devices() -> list[str]:
    """Names of the GPUs TensorFlow sees (empty without one)."""
    import tensorflow as tf

    out = []
    for dev in tf.config.list_physical_devices("GPU"):
        try:
            out.append(tf.config.experimental.get_device_details(dev).get("device_name",
                                                                          dev.name))
        except (RuntimeError, ValueError):
            out.append(dev.name)
    return out


def _best_rate(fn, n: int, repeats: int) -> float:
    fn()
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def bench_inference(n_members: int, n_stars: int, repeats: int) -> dict:
    """Stars/s of the fused ensemble (batch sizes, XLA) and of the plain member loop."""
    import keras

    from gaiarvs_cnn.model import FusedEnsemble, NetworkConfig, build_model
    from gaiarvs_cnn.model.network import input_shapes

    config = NetworkConfig()
    members = []
    for i in range(n_members):
        keras.utils.set_random_seed(i)
        members.append(build_model(config))
    rng = np.random.default_rng(0)
    x = {k: rng.random((n_stars, *s), dtype=np.float32) for k, s in input_shapes(config).items()}
    out = {"n_members": n_members, "n_stars": n_stars,
           "flops_per_star_ensemble": config.flops_per_star() * n_members}
    out["plain_predict_loop_stars_per_s"] = _best_rate(
        lambda: [m.predict(x, batch_size=1024, verbose=0) for m in members], n_stars, repeats)
    for jit in (False, True):
        for bs in (256, 1024, 4096):
            fe = FusedEnsemble(members, config, jit_compile=jit, batch_size=bs)
            out[f"fused_jit{int(jit)}_bs{bs}_stars_per_s"] = _best_rate(lambda f=fe: f(x),
                                                                        n_stars, repeats)
    fused = {k: v for k, v in out.items() if k.startswith("fused_")}
    best = max(fused, key=fused.get)
    out.update(fused_best=best, fused_best_stars_per_s=fused[best],
               fused_over_plain=fused[best] / out["plain_predict_loop_stars_per_s"],
               fused_tflops=fused[best] * out["flops_per_star_ensemble"] / 1e12)
    return out


def bench_training(n_stars: int, epochs: int) -> dict:
    """Samples/s of one paper member: plain ``fit`` vs the training pipeline."""
    import keras

    from gaiarvs_cnn.model import NetworkConfig, build_model
    from gaiarvs_cnn.model.network import compile_model, input_shapes
    from gaiarvs_cnn.model.training import _dataset

    config = NetworkConfig()
    rng = np.random.default_rng(1)
    x = {k: rng.random((n_stars, *s), dtype=np.float32) for k, s in input_shapes(config).items()}
    y = rng.random((n_stars, len(config.labels)), dtype=np.float32)

    def rate(fit) -> float:
        fit(1)
        t = time.perf_counter()
        fit(epochs)
        return epochs * n_stars / (time.perf_counter() - t)

    out = {"n_stars": n_stars, "epochs_timed": epochs}
    keras.utils.set_random_seed(0)
    plain = compile_model(build_model(config), config, jit_compile=False)
    out["plain_fit_bs32_samples_per_s"] = rate(lambda e: plain.fit(x, y, epochs=e, verbose=0))
    for jit, bs in ((False, 64), (True, 64), (True, 256)):
        keras.utils.set_random_seed(0)
        model = compile_model(build_model(config), config, jit_compile=jit)
        ds = _dataset(x, y, bs, 0)
        out[f"pipeline_jit{int(jit)}_bs{bs}_samples_per_s"] = rate(
            lambda e, m=model, d=ds: m.fit(d, epochs=e, verbose=0))
    variants = {k: v for k, v in out.items() if k.startswith("pipeline_")}
    best = max(variants, key=variants.get)
    out.update(best=best, best_over_plain=variants[best] / out["plain_fit_bs32_samples_per_s"])
    return out


def main(argv=None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=28)
    parser.add_argument("--stars", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-stars", type=int, default=8192)
    parser.add_argument("--train-epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    gpus = gpu_devices()
    if not gpus:
        print("bench_gpu: TensorFlow sees no GPU on this machine; nothing measured, "
              f"{args.out.name} left as it is.")
        return None
    import keras
    import tensorflow as tf

    from gaiarvs_cnn.utils.atomic import write_text_atomic

    result = {**result_header(__file__, SCRIPT_VERSION, args), **provenance(),
              "gpus": gpus, "tensorflow": tf.__version__, "keras": keras.__version__,
              "inference": bench_inference(args.members, args.stars, args.repeats),
              "training": bench_training(args.train_stars, args.train_epochs),
              "load_average_end": list(os.getloadavg())}
    text = json.dumps(result, indent=1)
    print(text)
    write_text_atomic(args.out, text + "\n")
    return result


if __name__ == "__main__":
    main()
