"""The hybrid CNN ensemble: network, training, saved bundle, prediction and gradients.

Public API (see the module of each name):

- `NetworkConfig` (config), `build_model` (network)
- `train_member`, `train_members`, `train_ensemble`, `make_splits` (training)
- `ModelBundle`, `demo_bundle_path`, `read_bundle_id` (bundle)
- `predict_batch`, `predict_and_flag`, `predict_store`, `FusedEnsemble` (predict)
- `label_gradients`, `plot_rvs_gradients`, `xp_label_correlation`, `plot_xp_gradients`
  (gradients)
- `ResidualFit`, `fit_residual_dispersion` (residuals)

TensorFlow is imported lazily: importing this package only loads numpy and astropy.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "NetworkConfig": "config",
    "INPUT_NAMES": "config",
    "PAPER_CONFIG": "config",
    "build_model": "network",
    "compile_model": "network",
    "input_shapes": "network",
    "train_member": "training",
    "train_ensemble": "training",
    "train_members": "training",
    "make_splits": "training",
    "load_training_sample": "training",
    "ModelBundle": "bundle",
    "demo_bundle_path": "bundle",
    "predict_batch": "predict",
    "predict_and_flag": "predict",
    "read_bundle_id": "bundle",
    "predict_store": "predict",
    "FusedEnsemble": "predict",
    "output_keys": "predict",
    "label_gradients": "gradients",
    "plot_rvs_gradients": "gradients",
    "plot_xp_gradients": "gradients",
    "xp_label_correlation": "gradients",
    "ResidualFit": "residuals",
    "fit_residual_dispersion": "residuals",
    "running_dispersion": "residuals",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
