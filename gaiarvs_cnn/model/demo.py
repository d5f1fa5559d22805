"""Rebuild the demo model bundle shipped in ``gaiarvs_cnn/data/demo_bundle``.

The demo bundle is a small ensemble (2 splits x 2 models) trained on simulated training
stars (`gaiarvs_cnn.simulate.survey`) with `DEMO_CONFIG`: the paper's network with a
lighter RVS branch (16/8/8 filters, max-pooling by 4 after every convolution) so that
it trains in 7 min (idle) to 30 min (busy) on two CPU cores and weighs ~2.5 MB. It serves the
offline quick start (``gaiarvs-cnn produce-catalog``) and the tests; for science, train
the full ensemble (``gaiarvs-cnn train``, default `NetworkConfig`).

Rebuild (the only documented way; 7-30 min on 2 cores)::

    python -m gaiarvs_cnn.model.demo

The work directory (a resumable training, named after a digest of the simulator's source
and the settings) lives in the system temporary directory; the finished bundle replaces
the shipped one atomically.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from astropy import log

from ..utils.atomic import atomic_directory
from .bundle import ModelBundle, demo_bundle_path
from .config import NetworkConfig

__all__ = ["DEMO_CONFIG", "DEMO_SETTINGS", "build_demo_bundle"]

#: Network of the demo bundle (see the module documentation).
DEMO_CONFIG = NetworkConfig(conv_filters=(16, 8, 8), pool_after=(1, 2, 3), pool_size=4,
                            batch_size=64, learning_rate=3e-3, jit_compile=False,
                            patience=10, lr_patience=4)
#: Training sample and ensemble of the demo bundle.
DEMO_SETTINGS = {"n_stars": 6000, "seed": 20240101, "n_splits": 2, "n_models": 2,
                 "epochs": 14, "tsne_max_stars": 2000}


def _work_key(settings: dict) -> str:
    """Digest of the simulator source files and the settings (names the work directory)."""
    src = Path(__file__).resolve().parent.parent / "sources"
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    h.update(DEMO_CONFIG.to_json().encode())
    for f in sorted([src / "simulated.py", *src.glob("_sim_*.py")]):
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
    from .training import train_ensemble

    settings = {**DEMO_SETTINGS, **overrides}
    out = Path(out) if out is not None else demo_bundle_path()
    root = Path(work_dir) if work_dir else Path(tempfile.gettempdir()) / "gaiarvs_cnn_demo_work"
    work = root / _work_key(settings)  # a changed simulator or setting starts afresh
    work.mkdir(parents=True, exist_ok=True)
    store = work / "demo_training.h5"
    if not store.exists():
        simulate_store(store, settings["n_stars"], seed=settings["seed"], kind="training")
    bundle_work = work / "bundle"
    train_ensemble(store, bundle_work, DEMO_CONFIG, n_splits=settings["n_splits"],
                   n_models=settings["n_models"], epochs=settings["epochs"],
                   seed=settings["seed"], tsne_max_stars=settings["tsne_max_stars"],
                   description="demo bundle: simulated Gaia-RVS training stars "
                               "(gaiarvs_cnn.simulate.survey), built by "
                               "'python -m gaiarvs_cnn.model.demo'")
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
    args = parser.parse_args(argv)
    build_demo_bundle(args.out, args.work_dir, epochs=args.epochs, n_stars=args.n_stars)


if __name__ == "__main__":
    main()
