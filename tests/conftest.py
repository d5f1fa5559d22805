"""Shared, session-scoped test fixtures: tiny simulated stores and a tiny trained bundle.

Everything is seeded and small (a few hundred stars, a 2-member network trained for one
epoch, a t-SNE reference at perplexities 5 and 10) so that any test module can reuse it
for a few seconds of set-up in total.
"""
import pytest

from gaiarvs_cnn import conf

#: Perplexities of the tiny t-SNE reference (the paper's 30-100 need >= 300 spectra).
TINY_PERPLEXITIES = (5, 10)
TINY_TRAIN_STARS = 300


@pytest.fixture(scope="session")
def tiny_training_store(tmp_path_factory):
    """HDF5 store of 300 simulated training stars (labels known, seed 11)."""
    from gaiarvs_cnn.simulate.survey import simulate_store

    root = tmp_path_factory.mktemp("tiny_training")
    return simulate_store(root / "train.h5", TINY_TRAIN_STARS, seed=11, kind="training",
                          progress=False)


@pytest.fixture(scope="session")
def tiny_observed_store(tmp_path_factory):
    """HDF5 store of 200 simulated observed stars (with out-of-range stars, seed 5)."""
    from gaiarvs_cnn.simulate.survey import simulate_store

    root = tmp_path_factory.mktemp("tiny_observed")
    return simulate_store(root / "obs.h5", 200, seed=5, kind="observed", chunk_size=100,
                          progress=False)


@pytest.fixture(scope="session")
def tiny_tsne_reference(tiny_training_store, tmp_path_factory):
    """`TSNEReference` of the tiny training spectra (perplexities 5, 10; 10 PCs)."""
    from gaiarvs_cnn.flags import TSNEReference
    from gaiarvs_cnn.io.store import Store

    with Store.open(tiny_training_store) as store, conf.set_temp("threads", 1):
        flux = store.read(columns=["flux"])["flux"]
        ref = TSNEReference.fit(flux, perplexities=TINY_PERPLEXITIES, n_pca=10, seed=0,
                                n_iter=(50, 100))
    path = ref.save(tmp_path_factory.mktemp("tiny_tsne") / "tsne")
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tiny_training_store, tiny_tsne_reference, tmp_path_factory):
    """Path of a 2-member bundle of a tiny network (1 epoch) with the tiny t-SNE reference."""
    import shutil

    from gaiarvs_cnn.model import NetworkConfig, train_ensemble

    config = NetworkConfig(conv_filters=(4, 4, 2), rvs_dense=8, phot_dense=4, xp_dense=4,
                           head_dense=(8, 4), jit_compile=False, batch_size=64)
    out = tmp_path_factory.mktemp("tiny_bundle") / "bundle"
    bundle = train_ensemble(tiny_training_store, out, config=config, n_splits=1, n_models=2,
                            epochs=1, tsne=False, progress=False)
    shutil.copytree(tiny_tsne_reference, bundle.tsne_dir)
    return bundle.path



@pytest.fixture(scope="session")
def tiny_rvs_only_bundle(tiny_training_store, tiny_tsne_reference, tmp_path_factory):
    """Path of a 2-member bundle of the tiny network with the RVS branch only (paper App. B),
    trained on the tiny training stars with photometry, parallax and XP removed (NaN): a
    network needs only its own inputs."""
    import shutil

    import numpy as np

    from gaiarvs_cnn.constants import PHOT_INPUTS
    from gaiarvs_cnn.io import Store, atomic_store
    from gaiarvs_cnn.model import NetworkConfig, train_ensemble

    root = tmp_path_factory.mktemp("tiny_rvs_only_bundle")
    with Store.open(tiny_training_store) as store:
        batch, extra = store.read(), store.extra_columns
    for col in (*PHOT_INPUTS, "bp_coefficients", "rp_coefficients"):
        batch[col] = np.full_like(batch[col], np.nan)
    with atomic_store(root / "train_rvs_only.h5", extra_columns=extra) as store:
        store.append(batch)
    config = NetworkConfig(inputs=("rvs",), conv_filters=(4, 4, 2), rvs_dense=8,
                           head_dense=(8, 4), jit_compile=False, batch_size=64)
    bundle = train_ensemble(root / "train_rvs_only.h5", root / "bundle", config=config,
                            n_splits=1, n_models=2, epochs=1, tsne=False, progress=False)
    shutil.copytree(tiny_tsne_reference, bundle.tsne_dir)
    return bundle.path
