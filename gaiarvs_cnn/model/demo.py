"""Rebuild the demo model bundle shipped in ``gaiarvs_cnn/data/demo_bundle``.

The demo bundle is the paper's ensemble structure, 28 members (7 random 75/25 splits x 4
models), trained on simulated training stars (`gaiarvs_cnn.simulate.survey`, XP in the real
Gaia DR3 basis; 15 % of them flat in [M/H] below -0.9 so that the metal-poor end of the
training range is populated; with the domain randomisation of
`gaiarvs_cnn.simulate.domain` that makes them look like real DR3 spectra, ``realism='dr3'``,
the recipe that meets the real-star tolerances of ``benchmarks/bench_real_stars.py``) and
calibrated on held-out
simulated stars (`DEMO_CALIBRATION`, `gaiarvs_cnn.model.calibration`), with `DEMO_CONFIG`:
the paper's network with a lighter RVS branch (16/8/8 filters, max-pooling by 4 after every
convolution, dense layers of 64 and a 64/32 head) so that the 28 members train in about
15 minutes on two idle CPU cores (an hour when they are busy) and weigh ~7 MB. It serves
the offline quick start (``gaiarvs-cnn produce-catalog``) and the tests; for science,
train the full ensemble (``gaiarvs-cnn train``, default `NetworkConfig`). The recipe,
time and accuracy are recorded in ``benchmarks/results/demo_bundle.json``.

Rebuild (the only documented way; resumable, 15-60 minutes on 2 cores)::

    python -m gaiarvs_cnn.model.demo

The work directory (a resumable training, named after a digest of the simulator's files
(`SIMULATOR_FILES`, by content), the installed GaiaXPy version and the settings) lives in
the system temporary directory; the finished bundle replaces the shipped one atomically.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from astropy import log

from ..utils.atomic import atomic_directory
from .bundle import ModelBundle, demo_bundle_path
from .config import NetworkConfig

__all__ = ["DEMO_CONFIG", "DEMO_SETTINGS", "DEMO_CALIBRATION", "build_demo_bundle"]

#: Network of the demo bundle (see the module documentation).
DEMO_CONFIG = NetworkConfig(conv_filters=(16, 8, 8), pool_after=(1, 2, 3), pool_size=4,
                            rvs_dense=64, head_dense=(64, 32), batch_size=64,
                            learning_rate=3e-3, jit_compile=False, patience=10, lr_patience=4)
#: Training sample and ensemble of the demo bundle.
DEMO_SETTINGS: dict[str, Any] = {"n_stars": 6000, "seed": 20240101, "n_splits": 7,
                                 "n_models": 4, "epochs": 20, "tsne_max_stars": 2000,
                                 "realism": "dr3"}
#: Held-out calibration stars of the demo bundle (simulator kind ``'calibration'``: labelled
#: like the training stars, down to S/N 15; `gaiarvs_cnn.model.calibration`). Not part of
#: the work key: recalibrating a finished training is cheap.
DEMO_CALIBRATION = {"n_stars": 8000, "seed": 20240102}

#: Files (relative to the package) whose content defines the simulated training sample: the
#: modules that generate it and the data they read (not the figures or diagnostics).
SIMULATOR_FILES = ("simulate/survey.py", "simulate/population.py", "simulate/photometry.py",
                   "simulate/spectra.py", "simulate/reference.py", "simulate/xp.py",
                   "simulate/domain.py", "data/rvs_linelist.ecsv",
                   "data/xp_dr3_reference.ecsv", "data/rvs_dr3_noise_templates.ecsv")


def simulator_files() -> list[Path]:
    """Absolute paths of `SIMULATOR_FILES` (all must exist)."""
    pkg = Path(__file__).resolve().parent.parent
    return [pkg / p for p in SIMULATOR_FILES]


def _work_key(settings: dict) -> str:
    """Digest of the simulator's content and the settings (names the work directory).

    Each file enters by its name relative to the package and its bytes, so the key does
    not depend on where the package is installed and changes with any edit. The
    installed GaiaXPy version (its shipped DR3 XP basis and instrument model) enters too.
    """
    from importlib.metadata import PackageNotFoundError, version

    pkg = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    h.update(DEMO_CONFIG.to_json().encode())
    try:
        h.update(f"gaiaxpy=={version('gaiaxpy')}".encode())
    except PackageNotFoundError:  # pragma: no cover - a required dependency
        h.update(b"gaiaxpy missing")
    for f in simulator_files():
        h.update(f.relative_to(pkg).as_posix().encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def build_demo_bundle(out: Path | None = None, work_dir: Path | None = None,
                      **overrides) -> ModelBundle:
    """Simulate the training stars, train the demo ensemble and install it at ``out``.

    Parameters
    ----------
    out : path-like, optional
        Destination (default `demo_bundle_path`); replaced atomically when finished.
    work_dir : path-like, optional
        Resumable work directory (default ``<tmp>/gaiarvs_cnn_demo_work``).
    **overrides
        Keys of `DEMO_SETTINGS` to change (e.g. ``epochs=2`` for a quick check).

    Returns
    -------
    ModelBundle
        The installed bundle.
    """
    from ..simulate.survey import simulate_store
    from .calibration import calibrate_bundle
    from .training import train_ensemble

    settings = {**DEMO_SETTINGS, **overrides}
    out = Path(out) if out is not None else demo_bundle_path()
    root = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "gaiarvs_cnn_demo_work"
    work = root / _work_key(settings)  # a changed simulator or setting starts afresh
    work.mkdir(parents=True, exist_ok=True)
    store = work / "demo_training.h5"
    if not store.exists():
        simulate_store(store, settings["n_stars"], seed=settings["seed"], kind="training",
                       realism=settings["realism"])
    bundle_work = work / "bundle"
    train_ensemble(store, bundle_work, DEMO_CONFIG, n_splits=settings["n_splits"],
                   n_models=settings["n_models"], epochs=settings["epochs"],
                   seed=settings["seed"], tsne_max_stars=settings["tsne_max_stars"],
                   description="demo bundle: simulated Gaia-RVS training stars "
                               "(gaiarvs_cnn.simulate.survey), built by "
                               "'python -m gaiarvs_cnn.model.demo'")
    cal = DEMO_CALIBRATION
    cal_store = work / f"demo_calibration_{cal['seed']}_{cal['n_stars']}.h5"
    if not cal_store.exists():
        simulate_store(cal_store, cal["n_stars"], seed=cal["seed"], kind="calibration")
    calibrate_bundle(bundle_work, cal_store)
    with atomic_directory(out) as target:
        shutil.copytree(bundle_work, target, ignore=shutil.ignore_patterns("*.tmp*"),
                        dirs_exist_ok=True)
    log.info(f"Demo bundle installed in {out}")
    return ModelBundle.load(out)


def main(argv=None) -> None:
    """Command-line entry point: ``python -m gaiarvs_cnn.model.demo [--epochs N]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="destination directory")
    parser.add_argument("--work-dir", type=Path, default=None, help="resumable work dir")
    parser.add_argument("--epochs", type=int, default=DEMO_SETTINGS["epochs"])
    parser.add_argument("--n-stars", type=int, default=DEMO_SETTINGS["n_stars"])
    parser.add_argument("--realism", default=DEMO_SETTINGS["realism"],
                        help="domain randomisation of the training stars (e.g. 'dr3')")
    args = parser.parse_args(argv)
    build_demo_bundle(args.out, args.work_dir, epochs=args.epochs, n_stars=args.n_stars,
                      realism=args.realism)


if __name__ == "__main__":
    main()
