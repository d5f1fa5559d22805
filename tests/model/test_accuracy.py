"""Accuracy of a small ensemble trained on the simulated survey (held-out stars).

A 2-member ensemble with a light RVS branch is trained for 10 epochs on 1200 simulated
training stars (900 train / 300 validation) and predicts 400 freshly simulated ones
(another seed). The robust dispersion (1.4826 MAD) of CNN - true label must be below
``MAX_RATIO`` times the robust dispersion of the true labels themselves (the error of
predicting the sample median). Measured with this set-up (8-14 epochs): teff 0.44-0.51,
logg 0.17-0.20, mh 0.28-0.31, feh 0.28-0.35, alpham 0.84-0.86. The bounds sit ~1.3x
above, so they catch a broken pipeline (wrong scaling, shuffled labels, an input not
reaching the network: ratio ~1) while leaving room for run-to-run variation. [alpha/M]
is learnt from weak spectral features and needs far more training than a one-minute test
affords (the demo bundle reaches ~0.5, see test_demo.py), hence its loose bound.
"""
import numpy as np
import pytest

from gaiarvs_cnn.constants import LABELS
from gaiarvs_cnn.model import NetworkConfig, predict_batch, train_ensemble
from gaiarvs_cnn.simulate.survey import simulate_batch, simulate_store

CONFIG = NetworkConfig(conv_filters=(8, 8, 4), pool_after=(1, 2, 3), rvs_dense=32,
                       head_dense=(64, 32), learning_rate=3e-3, batch_size=32,
                       jit_compile=False)
MAX_RATIO = {"teff": 0.65, "logg": 0.28, "mh": 0.42, "alpham": 0.97, "feh": 0.45}


def robust_std(x):
    return 1.4826 * np.median(np.abs(x - np.median(x)))


@pytest.mark.slow
def test_small_ensemble_recovers_simulated_labels(tmp_path):
    store = simulate_store(tmp_path / "train.h5", 1200, seed=101, kind="training")
    bundle = train_ensemble(store, tmp_path / "bundle", CONFIG, n_splits=1, n_models=2,
                            epochs=10, seed=1, tsne=False, progress=False)
    test = simulate_batch(400, seed=202, kind="training")
    pred = predict_batch(bundle, test)
    truth = test["true_labels"]
    ratios = {lab: robust_std(pred[lab] - truth[:, j]) / robust_std(truth[:, j])
              for j, lab in enumerate(LABELS)}
    bad = {k: round(v, 3) for k, v in ratios.items() if v > MAX_RATIO[k]}
    assert not bad, f"residual/label dispersion ratios {ratios} exceed {MAX_RATIO}"
    # total uncertainties in physical units, of the size of the residuals
    resid_teff = robust_std(pred["teff"] - truth[:, 0])
    assert 0.3 < np.median(pred["sigma_teff"]) / resid_teff < 3
