"""Benchmark of the hybrid CNN ensemble: prediction, training, memory, accuracy vs S/N.

Writes ``benchmarks/results/model.json``. Not a test: timings depend on the machine
(its CPU flags, core count and load are recorded with the figures).

Measured in one run on the same data:

* prediction stars/s of (a) a plain loop of ``model.predict`` over the members,
  (b) the fused ensemble (`gaiarvs_cnn.model.FusedEnsemble`, one `tf.function` per
  sub-batch) without and (c) with XLA; the model FLOPs/star and the machine's float32
  GEMM rate (numpy ``sgemm``) so the fused rate is a fraction of the measured peak; (d)
  the opt-in bfloat16 fused ensemble (``bfloat16_*``, not a candidate of the float32 best);
* the effect of bfloat16 on the shipped bundle's labels (``bfloat16_labels``: differences
  to float32 per label, in units of ``sigma_<label>``, and changed flags);
* training samples/s of one member: a plain ``model.fit`` on numpy arrays (Keras
  defaults: batch 32, no XLA) against the `train_member` pipeline (tf.data, prefetch)
  at several batch sizes, with and without XLA;
* wall time of `train_ensemble` in one process against one process per core
  (``--workers``);
* peak RSS of ``predict_store`` streaming stores of different sizes (subprocesses);
* residual dispersion vs RVS S/N (15-25, 25-50, >50) of a bundle (default: the demo
  bundle) on freshly simulated stars, next to the paper's figures.

Usage::

    python benchmarks/bench_model.py                       # everything, default sizes
    python benchmarks/bench_model.py --only predict --members 28 --stars 1024
    python benchmarks/bench_model.py --only rss --rss-sizes 10000,1000000

The 28-member accuracy figure (``snr_28_members`` in the JSON) was made with the demo
network on 30 000 stars, 10 epochs per member (~1.5 h on 2 cores)::

    gaiarvs-cnn simulate --n 30000 --kind training --seed 2024 -o sim30k.h5
    python -c "from gaiarvs_cnn.model.demo import DEMO_CONFIG as c; print(c.to_json())" > demo.json
    gaiarvs-cnn train --store sim30k.h5 --out full28_demo/ --config demo.json --epochs 10 \
        --workers 2
    python benchmarks/bench_model.py --only snr --bundle full28_demo/ --snr-stars 20000 \
        --snr-key snr_28_members

With the paper network (default ``--config``) and ``--epochs 200`` the same commands take
~30-100 CPU-hours: run them on a GPU, or spread ``--members`` over machines.
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _header import provenance, recorded_path  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "model.json"
INTERESTING_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
                     "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def machine() -> dict:
    """CPU model, flags relevant to TensorFlow/oneDNN, cores, load and software versions."""
    import keras
    import tensorflow as tf

    flags, model = [], platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"cpu": model, "cpu_flags": [f for f in INTERESTING_FLAGS if f in flags],
            "cores": os.cpu_count(), "load_average_at_start": list(os.getloadavg()),
            "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def script_info(argv: list[str]) -> dict:
    """What made a section: this script's SHA-256 and git commit, its arguments, the package."""
    import hashlib

    import gaiarvs_cnn

    path = Path(__file__).resolve()
    return {"script": str(path.relative_to(ROOT)),
            "script_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            **provenance(), "gaiarvs_cnn_version": gaiarvs_cnn.__version__,
            "arguments": list(argv)}


def sgemm_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 matrix-multiply rate of numpy (GFLOP/s)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def random_inputs(config, n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    from gaiarvs_cnn.model.network import input_shapes

    return {k: rng.random((n, *s), dtype=np.float32) for k, s in input_shapes(config).items()}


def best_rate(fn, n: int, repeats: int) -> float:
    fn()  # warm-up (tracing / compilation)
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def dominant_conv_gflops(config, batch_size: int, repeats: int) -> dict:
    """GFLOP/s of the network's costliest layer alone (one `tf.nn.conv1d`, no bias/activation).

    For the paper network this is the 2nd convolution (32 -> 16 channels, kernel 8, on
    2394 pixels): ~88 % of a member's FLOPs, so its rate bounds the whole network's.
    """
    import tensorflow as tf

    k = config.kernel_size
    flops, n, c, f = max((2 * (n - k + 1) * k * c * f, n, c, f)
                         for n, c, f in config.conv_layers())
    x = tf.random.normal((batch_size, n, c))
    w = tf.random.normal((config.kernel_size, c, f))
    fn = tf.function(lambda a: tf.nn.conv1d(a, w, 1, "VALID"))
    rate = best_rate(lambda: fn(x).numpy(), batch_size, repeats)
    return {"shape_in": [batch_size, n, c], "filters": f, "kernel": config.kernel_size,
            "share_of_member_flops": flops / config.flops_per_star(),
            "gflops": rate * flops / 1e9}


def bench_predict(n_members: int, n_stars: int, repeats: int) -> dict:
    """Stars/s of the member loop and of the fused ensemble (paper network, random weights).

    The GEMM peak is measured right before and after the fused timings and the higher
    value is used, so a burst of load during the run does not inflate the fraction.
    Variants are timed in turns, ``repeats`` rounds, best of each.
    """
    from gaiarvs_cnn.model import FusedEnsemble, NetworkConfig

    config = NetworkConfig()
    members = paper_members(config, n_members)
    x = random_inputs(config, n_stars)
    out = {"n_members": n_members, "n_stars": n_stars, "config": "paper (NetworkConfig())",
           "flops_per_star_per_member": config.flops_per_star(),
           "flops_per_star_ensemble": config.flops_per_star() * n_members}
    variants = {"plain_predict_loop_stars_per_s":
                lambda: [m.predict(x, batch_size=256, verbose=0) for m in members]}
    for jit, bs in ((False, 16), (False, 32), (False, 64), (True, 32)):
        fe = FusedEnsemble(members, config, jit_compile=jit, batch_size=bs)
        variants[f"fused_jit{int(jit)}_bs{bs}_stars_per_s"] = lambda f=fe: f(x)
    for bs in (16, 32):  # opt-in reduced precision, not a candidate of the float32 best
        fe = FusedEnsemble(members, config, batch_size=bs, precision="bfloat16")
        variants[f"bfloat16_bs{bs}_stars_per_s"] = lambda f=fe: f(x)
    peaks = [sgemm_peak()]
    out.update(interleaved_rates(variants, n_stars, repeats))
    peaks.append(sgemm_peak())
    fused = {k: v for k, v in out.items() if k.startswith("fused_")}
    best_key = max(fused, key=fused.get)
    out["fused_best"] = best_key
    out["fused_best_stars_per_s"] = fused[best_key]
    out["fused_over_plain"] = fused[best_key] / out["plain_predict_loop_stars_per_s"]
    bf16 = max(out[f"bfloat16_bs{bs}_stars_per_s"] for bs in (16, 32))
    out["bfloat16_over_plain"] = bf16 / out["plain_predict_loop_stars_per_s"]
    out["bfloat16_over_fused_float32"] = bf16 / fused[best_key]
    out["fused_gflops"] = fused[best_key] * out["flops_per_star_ensemble"] / 1e9
    out["sgemm_peak_gflops_before_after"] = peaks
    out["fused_fraction_of_sgemm_peak"] = out["fused_gflops"] / max(peaks)
    conv = dominant_conv_gflops(config, 32, repeats=5)
    conv["fraction_of_sgemm_peak"] = conv["gflops"] / max(peaks)
    out["dominant_conv_alone_bs32"] = conv
    return out


def paper_members(config, n_members: int) -> list:
    """``n_members`` untrained members of ``config`` (seeded by their index)."""
    import keras

    from gaiarvs_cnn.model import build_model

    members = []
    for i in range(n_members):
        keras.utils.set_random_seed(i)
        members.append(build_model(config))
    return members


def interleaved_rates(variants: dict, n: int, repeats: int, clock=time.perf_counter) -> dict:
    """Best rate (``n`` / seconds of ``clock``) of each variant, timed in turns.

    Each variant runs once to warm up (tracing), then ``repeats`` rounds time every variant
    once, so a burst of load on the shared machine hits all variants alike.
    """
    for fn in variants.values():
        fn()
    best = dict.fromkeys(variants, np.inf)
    for _ in range(repeats):
        for key, fn in variants.items():
            t = clock()
            fn()
            best[key] = min(best[key], clock() - t)
    return {k: n / v for k, v in best.items()}


def sgemm_peak_cpu(n: int = 1024, repeats: int = 5) -> float:
    """Best float32 matrix-multiply rate of numpy per CPU second (GFLOP per CPU-s)."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    a @ a
    best = np.inf
    for _ in range(repeats):
        t = time.process_time()
        a @ a
        best = min(best, time.process_time() - t)
    return 2 * n**3 / best / 1e9


_ONE_CORE_CHILD = """
import sys
sys.path.insert(0, {bench!r})
import bench_model
print("RESULT", bench_model.json.dumps(bench_model.one_core_predict({members}, {stars},
                                                                    {repeats})))
"""


def one_core_predict(n_members: int, n_stars: int, repeats: int) -> dict:
    """Fused ensemble vs plain loop on ONE thread, in CPU seconds (run in a child process).

    TensorFlow and numpy are limited to one thread before they start, and every rate is
    per CPU second (`time.process_time`), so the other jobs of a shared machine change it
    little: the fraction of the one-core SGEMM peak measured in the same process is the
    network's efficiency without the threading of a two-core run.
    """
    import tensorflow as tf
    from threadpoolctl import threadpool_limits

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    threadpool_limits(1)
    from gaiarvs_cnn import conf
    from gaiarvs_cnn.model import FusedEnsemble, NetworkConfig

    conf.threads = 1
    config = NetworkConfig()
    members = paper_members(config, n_members)
    x = random_inputs(config, n_stars)
    fe = FusedEnsemble(members, config, batch_size=32)
    fb = FusedEnsemble(members, config, batch_size=32, precision="bfloat16")
    peaks = [sgemm_peak_cpu()]
    rates = interleaved_rates(
        {"plain_predict_loop": lambda: [m.predict(x, batch_size=256, verbose=0)
                                        for m in members],
         "fused_bs32": lambda: fe(x), "bfloat16_bs32": lambda: fb(x)}, n_stars, repeats,
        clock=time.process_time)
    peaks.append(sgemm_peak_cpu())
    flops = config.flops_per_star() * n_members
    return {"n_members": n_members, "n_stars": n_stars, "threads": 1,
            "plain_predict_loop_stars_per_cpu_s": rates["plain_predict_loop"],
            "fused_bs32_stars_per_cpu_s": rates["fused_bs32"],
            "fused_over_plain": rates["fused_bs32"] / rates["plain_predict_loop"],
            "bfloat16_bs32_stars_per_cpu_s": rates["bfloat16_bs32"],
            "bfloat16_over_plain": rates["bfloat16_bs32"] / rates["plain_predict_loop"],
            "fused_gflops_per_cpu_s": rates["fused_bs32"] * flops / 1e9,
            "sgemm_peak_gflops_per_cpu_s_before_after": peaks,
            "fused_fraction_of_sgemm_peak": rates["fused_bs32"] * flops / 1e9 / max(peaks),
            "load_average_end": list(os.getloadavg())}


def layer_profile(batch_size: int = 32, repeats: int = 5) -> dict:
    """Per-layer cost of the paper network on ONE thread, in CPU seconds (child process).

    The cost of calling a compiled function with no work (``call_overhead_ms_taken_off``)
    is taken off each layer's time.

    Each RVS convolution (with bias and leaky ReLU, as the fused ensemble runs it), each
    max-pooling and each dense layer is timed alone on ``batch_size`` stars: forward, and
    forward + backward (the gradients of inputs and weights, as training computes them),
    in float32 and bfloat16. With the one-core SGEMM peak measured in the same process,
    this says what fraction of the peak each layer reaches and so how far any rewrite of
    the network's evaluation can go: the bounds ``fused_over_plain_bound`` (the peak over
    the plain loop's rate) and ``train_over_plain_fit_bound`` (the peak over the plain
    ``fit``'s rate).
    """
    import keras
    import tensorflow as tf

    from gaiarvs_cnn.model import NetworkConfig, build_model
    from gaiarvs_cnn.model.network import compile_model

    config = NetworkConfig()
    k, b = config.kernel_size, batch_size
    layers = []
    _, n_rvs, c_last = config._conv_walk()
    for i, (n, c, f) in enumerate(config.conv_layers(), start=1):
        layers.append((f"conv{i} {c}->{f} on {n} px", "conv", (b, 1, n, c), (1, k, c, f),
                       2 * (n - k + 1) * k * c * f * b))
        if i in config.pool_after:
            layers.append((f"maxpool{i} /{config.pool_size}", "pool", (b, 1, n - k + 1, f),
                           None, 0))
    dense_in = [("rvs_dense", n_rvs * c_last, config.rvs_dense),
                ("phot_dense", config.n_phot, config.phot_dense),
                ("xp_dense", config.n_xp, config.xp_dense)]
    merged = config.rvs_dense + config.phot_dense + config.xp_dense
    for i, w in enumerate((*config.head_dense, len(config.labels)), start=1):
        dense_in.append((f"head{i}", merged, w))
        merged = w
    for name, m, w in dense_in:
        layers.append((f"{name} {m}->{w}", "dense", (b, m), (m, w), 2 * m * w * b))

    def op(kind, x, w, bias):
        if kind == "conv":
            return tf.nn.leaky_relu(tf.nn.bias_add(tf.nn.conv2d(x, w, 1, "VALID"), bias), 0.3)
        if kind == "pool":
            return tf.nn.max_pool2d(x, (1, config.pool_size), (1, config.pool_size), "VALID")
        return tf.nn.leaky_relu(tf.nn.bias_add(tf.matmul(x, w), bias), 0.3)

    def cpu_time(fn, *args) -> float:
        fn(*args)
        best = np.inf
        for _ in range(repeats):
            t = time.process_time()
            [o.numpy() for o in tf.nest.flatten(fn(*args))]
            best = min(best, time.process_time() - t)
        return best

    def tiny_step(a):
        with tf.GradientTape() as tape:
            tape.watch(a)
            y = tf.reduce_sum(a)
        return tape.gradient(y, [a])

    # the cost of calling a compiled function at all (no work), taken off every layer:
    # inside the ensemble's one function the layers run back to back without it
    tiny = tf.zeros((1,))
    call_f = cpu_time(tf.function(lambda a: a + 0.0), tiny)
    call_fb = cpu_time(tf.function(tiny_step), tiny)
    peaks = [sgemm_peak_cpu()]
    rows = []
    for name, kind, xs, ws, flops in layers:
        row = {"layer": name, "flops_per_batch": flops}
        for dt in (tf.float32, tf.bfloat16):
            x = tf.cast(tf.random.normal([int(v) for v in xs]), dt)
            w = None if ws is None else tf.Variable(
                tf.cast(tf.random.normal([int(v) for v in ws]) * 0.1, dt))
            bias = None if ws is None else tf.Variable(tf.zeros(int(ws[-1]), dt))
            fwd = tf.function(lambda a, kind=kind, w=w, bias=bias: op(kind, a, w, bias))

            def step(a, kind=kind, w=w, bias=bias):
                with tf.GradientTape() as tape:
                    tape.watch(a)
                    y = tf.reduce_sum(op(kind, a, w, bias))
                return tape.gradient(y, [a] + ([w, bias] if w is not None else []))

            t_f = max(cpu_time(fwd, x) - call_f, 1e-6)
            t_fb = max(cpu_time(tf.function(step), x) - call_fb, 1e-6)
            row[f"{dt.name}_forward_ms"] = 1e3 * t_f
            row[f"{dt.name}_forward_backward_ms"] = 1e3 * t_fb
            if flops:
                row[f"{dt.name}_forward_gflops_per_cpu_s"] = flops / t_f / 1e9
                row[f"{dt.name}_forward_backward_gflops_per_cpu_s"] = 3 * flops / t_fb / 1e9
        rows.append(row)
    peaks.append(sgemm_peak_cpu())
    peak = max(peaks)
    for row in rows:
        for key in [k for k in row if k.startswith("float32_") and k.endswith("_per_cpu_s")]:
            row[key.replace("gflops_per_cpu_s", "fraction_of_sgemm_peak")] = row[key] / peak
    flops = config.flops_per_star()
    members = [build_model(config)]
    x = random_inputs(config, 256)
    rate_plain = interleaved_rates({"p": lambda: members[0].predict(x, batch_size=256,
                                                                    verbose=0)},
                                   256, 3, clock=time.process_time)["p"]
    keras.utils.set_random_seed(0)
    model = compile_model(build_model(config), config, jit_compile=False)
    y = np.random.default_rng(2).random((256, 5), dtype=np.float32)
    fit_rate = interleaved_rates({"f": lambda: model.fit(x, y, epochs=1, verbose=0)}, 256, 3,
                                 clock=time.process_time)["f"]
    total_f = sum(r["float32_forward_ms"] for r in rows) / 1e3
    total_fb = sum(r["float32_forward_backward_ms"] for r in rows) / 1e3
    return {"batch_size": b, "threads": 1, "layers": rows,
            "call_overhead_ms_taken_off": {"forward": 1e3 * call_f,
                                           "forward_backward": 1e3 * call_fb},
            "sgemm_peak_gflops_per_cpu_s_before_after": peaks,
            "sum_of_layers_forward_stars_per_cpu_s": b / total_f,
            "sum_of_layers_forward_fraction_of_sgemm_peak": b / total_f * flops / 1e9 / peak,
            "plain_predict_stars_per_cpu_s": rate_plain,
            "plain_predict_fraction_of_sgemm_peak": rate_plain * flops / 1e9 / peak,
            "fused_over_plain_bound": peak / (rate_plain * flops / 1e9),
            "sum_of_layers_train_samples_per_cpu_s": b / total_fb,
            "plain_fit_samples_per_cpu_s": fit_rate,
            "plain_fit_fraction_of_sgemm_peak": fit_rate * 3 * flops / 1e9 / peak,
            "train_over_plain_fit_bound": peak / (fit_rate * 3 * flops / 1e9)}


_LAYER_CHILD = """
import sys
sys.path.insert(0, {bench!r})
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
from threadpoolctl import threadpool_limits
threadpool_limits(1)
import bench_model
print("RESULT", bench_model.json.dumps(bench_model.layer_profile()))
"""


def bench_layer_profile() -> dict:
    """`layer_profile` in a fresh one-thread process."""
    code = _LAYER_CHILD.format(bench=str(Path(__file__).resolve().parent))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def bench_predict_one_core(n_members: int, n_stars: int, repeats: int) -> dict:
    """`one_core_predict` in a fresh process (threads must be set before TensorFlow starts)."""
    code = _ONE_CORE_CHILD.format(bench=str(Path(__file__).resolve().parent),
                                  members=n_members, stars=n_stars, repeats=repeats)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    line = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


_PLAIN_PREDICT_CHILD = """
import sys
import numpy as np
from gaiarvs_cnn.io.shards import open_source
from gaiarvs_cnn.model import ModelBundle
from gaiarvs_cnn.model.predict import INPUT_COLUMNS, prepare_inputs
bundle = ModelBundle.load({bundle!r})
with open_source({store!r}) as store:
    for chunk in store.iter_chunks(columns=INPUT_COLUMNS):
        x = prepare_inputs(bundle, chunk)
        out = np.stack([m.predict(x, batch_size=256, verbose=0) for m in bundle.members])
"""


def bench_bfloat16_labels(bundle_path: Path, n_stars: int) -> dict:
    """Effect of ``precision='bfloat16'`` on the shipped bundle's catalogue columns.

    The same ``n_stars`` simulated observed stars (after the production cuts) are predicted
    and flagged in float32 and in bfloat16. Per label: the median, 99th percentile and
    largest ``|bfloat16 - float32|``, also in units of the float32 ``sigma_<label>`` (the
    catalogue's total uncertainty, whose floor is the bundle's residual dispersion), and
    how many stars' ``flag_boundary`` differs.
    """
    from gaiarvs_cnn.constants import LABELS
    from gaiarvs_cnn.model import ModelBundle
    from gaiarvs_cnn.model.predict import FLAG_COLUMN, predict_and_flag
    from gaiarvs_cnn.selection import usable_mask
    from gaiarvs_cnn.simulate.survey import simulate_batch

    bundle = ModelBundle.load(bundle_path)
    batch = simulate_batch(n_stars, seed=2027, kind="observed")
    batch = batch[usable_mask(batch, bundle.config.inputs)]
    f32 = predict_and_flag(bundle, batch)
    b16 = predict_and_flag(bundle, batch, precision="bfloat16")
    out = {"bundle": bundle_path.name, "bundle_id": bundle.bundle_id, "n_stars": len(batch),
           "flag_boundary_changed": int(np.sum(f32[FLAG_COLUMN] != b16[FLAG_COLUMN])),
           "labels": {}}
    for lab in LABELS:
        d = np.abs(b16[lab].astype(float) - f32[lab])
        ratio = d / f32[f"sigma_{lab}"]
        out["labels"][lab] = {
            "median_abs_diff": float(np.median(d)), "p99_abs_diff": float(np.quantile(d, 0.99)),
            "max_abs_diff": float(d.max()),
            "median_in_sigma": float(np.median(ratio)),
            "p99_in_sigma": float(np.quantile(ratio, 0.99)), "max_in_sigma": float(ratio.max())}
    return out


def bench_predict_end_to_end(bundle_path: Path, n_stars: int, repeats: int) -> dict:
    """``gaiarvs-cnn predict`` (process start included) vs a plain Keras loop in a process.

    Both processes load the bundle and read the same store of ``n_stars`` simulated
    observed stars; the plain one runs ``model.predict`` per member on each chunk and
    writes nothing, the CLI writes the catalogue (labels, uncertainties, flags); the CLI
    also runs with ``--precision bfloat16`` (opt-in). Best wall time of ``repeats`` turns
    each.
    """
    from gaiarvs_cnn.model import ModelBundle
    from gaiarvs_cnn.simulate.survey import simulate_store

    bundle = ModelBundle.load(bundle_path)
    out = {"bundle": bundle_path.name, "bundle_id": bundle.bundle_id,
           "n_members": bundle.n_members, "n_stars": n_stars}
    with tempfile.TemporaryDirectory() as tmp:
        store = simulate_store(Path(tmp) / "obs.h5", n_stars, seed=11, kind="observed")
        cli = [sys.executable, "-m", "gaiarvs_cnn", "predict", "--store", str(store),
               "--model", str(bundle_path), "--out", str(Path(tmp) / "cat"), "--overwrite",
               "--quiet"]
        plain = [sys.executable, "-c",
                 _PLAIN_PREDICT_CHILD.format(bundle=str(bundle_path), store=str(store))]
        cli_bf16 = [*cli, "--precision", "bfloat16"]
        best = {"cli": np.inf, "plain": np.inf, "cli_bfloat16": np.inf}
        for _ in range(repeats):
            for key, cmd in (("cli", cli), ("plain", plain), ("cli_bfloat16", cli_bf16)):
                t = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                best[key] = min(best[key], time.perf_counter() - t)
    out["predict_cli_seconds"] = best["cli"]
    out["plain_loop_seconds"] = best["plain"]
    out["predict_cli_stars_per_s"] = n_stars / best["cli"]
    out["plain_loop_stars_per_s"] = n_stars / best["plain"]
    out["cli_over_plain"] = best["plain"] / best["cli"]
    out["predict_cli_bfloat16_seconds"] = best["cli_bfloat16"]
    out["cli_bfloat16_over_plain"] = best["plain"] / best["cli_bfloat16"]
    return out


def bench_training(n_stars: int, epochs: int) -> dict:
    """Samples/s of one member: plain ``model.fit`` vs the `train_member` pipeline variants."""
    import keras

    from gaiarvs_cnn.model import NetworkConfig, build_model
    from gaiarvs_cnn.model.network import compile_model
    from gaiarvs_cnn.model.training import _dataset

    config = NetworkConfig()
    x = random_inputs(config, n_stars, seed=1)
    y = np.random.default_rng(2).random((n_stars, 5), dtype=np.float32)

    def rate(fit) -> float:
        fit(1)  # warm-up epoch: tracing / compilation
        t = time.perf_counter()
        fit(epochs)
        return epochs * n_stars / (time.perf_counter() - t)

    out = {"n_stars": n_stars, "epochs_timed": epochs, "config": "paper (NetworkConfig())",
           "flops_per_sample_train_approx": 3 * config.flops_per_star()}
    keras.utils.set_random_seed(0)
    plain = compile_model(build_model(config), config, jit_compile=False)
    out["plain_fit_bs32_samples_per_s"] = rate(
        lambda e: plain.fit(x, y, epochs=e, verbose=0))
    for jit, bs in ((False, 32), (False, 64), (False, 128), (True, 64)):
        keras.utils.set_random_seed(0)
        model = compile_model(build_model(config), config, jit_compile=jit)
        ds = _dataset(x, y, bs, 0)
        out[f"pipeline_jit{int(jit)}_bs{bs}_samples_per_s"] = rate(
            lambda e, m=model, d=ds: m.fit(d, epochs=e, verbose=0))
    variants = {k: v for k, v in out.items() if k.startswith("pipeline_")}
    best = max(variants, key=variants.get)
    out.update(best=best, best_over_plain=variants[best] / out["plain_fit_bs32_samples_per_s"])
    return out


def bench_train_workers(n_stars: int, n_members: int, epochs: int) -> dict:
    """Wall time of `train_ensemble` in one process vs a Dask cluster of one worker per core.

    For the paper network and the demo network, both runs train the same ``n_members``
    members (1 split) on the same simulated stars and write a bundle (no t-SNE
    reference), so the ratio is the end-to-end speed-up of ``gaiarvs-cnn train --workers``
    (process start-up and data loading included).
    """
    from gaiarvs_cnn.model import NetworkConfig, train_ensemble
    from gaiarvs_cnn.model.demo import DEMO_CONFIG
    from gaiarvs_cnn.production import DaskExecutor
    from gaiarvs_cnn.simulate.survey import simulate_store

    cores = os.cpu_count() or 1
    out = {"n_stars": n_stars, "n_members": n_members, "epochs": epochs, "cores": cores}
    with tempfile.TemporaryDirectory() as tmp:
        store = simulate_store(Path(tmp) / "train.h5", n_stars, seed=5, kind="training")
        for name, config in (("paper", NetworkConfig()), ("demo", DEMO_CONFIG)):
            res = {}
            for workers in (1, cores):
                executor = (DaskExecutor(workers=workers, threads_per_worker=max(
                    1, cores // workers)) if workers > 1 else None)
                t = time.perf_counter()
                try:
                    train_ensemble(store, Path(tmp) / f"{name}{workers}", config, n_splits=1,
                                   n_models=n_members, epochs=epochs, seed=0, tsne=False,
                                   progress=False, executor=executor)
                finally:
                    if executor is not None:
                        executor.close()
                res[f"workers{workers}_seconds"] = time.perf_counter() - t
            res["speedup"] = res["workers1_seconds"] / res[f"workers{cores}_seconds"]
            out[name] = res
    return out


_RSS_CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from gaiarvs_cnn.model import ModelBundle, predict_store
bundle = ModelBundle.load({bundle!r})
t = time.perf_counter(); n = 0
for chunk in predict_store(bundle, {store!r}, chunk_size={chunk}):
    n += len(chunk["source_id"])
print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t)
"""


def _replicated_store(path: Path, n: int, base) -> Path:
    """A store of ``n`` stars: copies of ``base`` with distinct source_ids."""
    from gaiarvs_cnn.io.store import Store
    from gaiarvs_cnn.simulate.survey import SIM_EXTRA_COLUMNS

    with Store.create(path, extra_columns=SIM_EXTRA_COLUMNS, overwrite=True,
                      expected_rows=n) as store:
        k = 0
        while k * len(base) < n:
            part = base[: min(len(base), n - k * len(base))]
            part["source_id"] = part["source_id"] + k * 10**9
            store.append(part)
            k += 1
    return path


def bench_rss(sizes: list[int], bundle_path: Path, chunk: int) -> dict:
    """Peak RSS (MiB) of streaming prediction over stores of each size (one subprocess each)."""
    from gaiarvs_cnn.simulate.survey import simulate_batch

    base = simulate_batch(min(10_000, min(sizes)), seed=3, kind="observed")
    out = {"bundle": recorded_path(bundle_path), "chunk_size": chunk, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            store = _replicated_store(Path(tmp) / f"s{n}.h5", n, base)
            code = _RSS_CHILD.format(root=str(ROOT), bundle=str(bundle_path), store=str(store),
                                     chunk=chunk)
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True)
            done, rss_kb, seconds = res.stdout.split()[-3:]
            out["runs"].append({"n_stars": int(done), "peak_rss_mib": int(rss_kb) / 1024,
                                "seconds": float(seconds)})
            store.unlink()
    rss = [r["peak_rss_mib"] for r in out["runs"]]
    out["rss_ratio_largest_over_smallest"] = rss[-1] / rss[0]
    return out


def bench_snr(bundle_path: Path, n_stars: int, seed: int) -> dict:
    """Robust residual dispersion (CNN - truth) in S/N bins on fresh simulated stars."""
    from gaiarvs_cnn.constants import LABELS, PAPER_TRAINING_SIGMA
    from gaiarvs_cnn.model import ModelBundle, predict_batch
    from gaiarvs_cnn.simulate.survey import simulate_batch

    bundle = ModelBundle.load(bundle_path)
    batch = simulate_batch(n_stars, seed=seed, kind="observed")
    keep = np.all((batch["true_labels"] >= [bundle.ranges[k][0] for k in LABELS])
                  & (batch["true_labels"] <= [bundle.ranges[k][1] for k in LABELS]), axis=1)
    batch = batch[keep]
    pred = predict_batch(bundle, batch)
    snr = batch["rvs_snr"]
    bins = {"15-25": (15, 25), "25-50": (25, 50), ">50": (50, np.inf)}
    ens = bundle.meta.get("ensemble", {})
    runs = list(bundle.meta.get("epochs_run", {}).values())
    out = {"bundle": recorded_path(bundle_path), "bundle_id": bundle.bundle_id,
           "n_members": bundle.n_members,
           "network": {k: bundle.config.to_dict()[k] for k in
                       ("conv_filters", "pool_after", "pool_size", "rvs_dense", "xp_dense",
                        "head_dense", "learning_rate", "batch_size")},
           "epochs_max": ens.get("epochs_max"),
           "epochs_run_min_max": [min(runs), max(runs)] if runs else None,
           "training_seconds": bundle.meta.get("training_seconds"),
           "training_stars": bundle.meta.get("training_sample", {}).get("n_stars"),
           "n_stars_within_training_ranges": int(len(batch)),
           "paper_training_sample_dispersion (Sect. 3.3, flat with S/N, Fig. 16)":
               PAPER_TRAINING_SIGMA, "bins": {}}
    for name, (lo, hi) in bins.items():
        sel = (snr >= lo) & (snr < hi)
        res = {"n": int(sel.sum())}
        for j, lab in enumerate(LABELS):
            r = pred[lab][sel] - batch["true_labels"][sel, j]
            res[lab] = float(1.4826 * np.median(np.abs(r - np.median(r)))) if sel.sum() else None
        out["bins"][name] = res
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=("predict", "predict_one_core", "layer_profile",
                                      "predict_end_to_end", "bfloat16_labels", "train",
                                      "train_workers", "rss", "snr"),
                   action="append")
    p.add_argument("--members", type=int, default=28)
    p.add_argument("--stars", type=int, default=1024, help="stars per prediction timing")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--e2e-stars", type=int, default=3000,
                   help="stars of the end-to-end predict timing")
    p.add_argument("--train-stars", type=int, default=1024)
    p.add_argument("--train-epochs", type=int, default=1)
    p.add_argument("--rss-sizes", default="10000,100000")
    p.add_argument("--rss-chunk", type=int, default=4096)
    p.add_argument("--bundle", type=Path, default=None, help="default: the demo bundle")
    p.add_argument("--snr-stars", type=int, default=3000)
    p.add_argument("--snr-key", default="snr", help="JSON key of the S/N section, e.g. "
                   "'snr_28_members' to keep the demo bundle's next to a full ensemble's")
    p.add_argument("--out", type=Path, default=RESULTS)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    from gaiarvs_cnn.model import demo_bundle_path

    bundle = args.bundle or demo_bundle_path()
    todo = args.only or ["predict", "predict_one_core", "layer_profile",
                         "predict_end_to_end", "bfloat16_labels", "train", "train_workers",
                         "rss", "snr"]
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results["machine"] = machine()
    results["sgemm_peak_gflops"] = sgemm_peak()
    if "predict" in todo:
        results["predict"] = bench_predict(args.members, args.stars, args.repeats)
    if "predict_one_core" in todo:
        results["predict_one_core"] = bench_predict_one_core(args.members, 256, 3)
    if "layer_profile" in todo:
        results["layer_profile"] = bench_layer_profile()
    if "predict_end_to_end" in todo:
        results["predict_end_to_end"] = bench_predict_end_to_end(bundle, args.e2e_stars,
                                                                 args.repeats)
    if "bfloat16_labels" in todo:
        results["bfloat16_labels"] = bench_bfloat16_labels(bundle, args.e2e_stars)
    if "train" in todo:
        results["train"] = bench_training(args.train_stars, args.train_epochs)
    if "train_workers" in todo:
        results["train_workers"] = bench_train_workers(3000, 2, 5)
    if "rss" in todo:
        results["rss"] = bench_rss([int(s) for s in args.rss_sizes.split(",")], bundle,
                                   args.rss_chunk)
    if "snr" in todo:
        results[args.snr_key] = bench_snr(bundle, args.snr_stars, seed=4242)
    # sections of earlier runs keep the machine state of their run
    for section in (args.snr_key if t == "snr" else t for t in todo):
        results[section]["machine"] = results["machine"]
        results[section]["sgemm_peak_gflops"] = results["sgemm_peak_gflops"]
        results[section]["made_by"] = script_info(argv)
    results["own_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, args.out)
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
