"""Tests of gaiarvs_cnn.distributed: Dask LocalCluster (2 worker processes on loopback).

A tiny bundle is trained once (train_ensemble, 1 epoch) with a small t-SNE reference; the
catalogue computed on the cluster is compared with the single-process computation.
"""
import os

import numpy as np
import pytest

from gaiarvs_cnn import conf
from gaiarvs_cnn.catalog import build_catalog_table, read_catalog
from gaiarvs_cnn.distributed import PartitionFailedError, predict_distributed, read_partition
from gaiarvs_cnn.exceptions import InputDataError, OutputExistsError
from gaiarvs_cnn.shards import open_source, shard_store
from gaiarvs_cnn.store import Store

distributed = pytest.importorskip("distributed")

N_OBS = 240
CHUNK = 60
LABEL_COLUMNS = ["teff", "eteff", "sigma_teff", "logg", "elogg", "sigma_logg", "mh", "emh",
                 "sigma_mh", "feh", "efeh", "sigma_feh", "alpham", "ealpham", "sigma_alpham"]


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    """A 2-member bundle of a tiny network, 1 epoch, with a small t-SNE reference."""
    from gaiarvs_cnn.flags import TSNEReference
    from gaiarvs_cnn.model import NetworkConfig, train_ensemble
    from gaiarvs_cnn.sources.simulated import simulate_store

    root = tmp_path_factory.mktemp("dask_bundle")
    train = simulate_store(root / "train.h5", 200, seed=11, kind="training", progress=False)
    config = NetworkConfig(conv_filters=(4, 4, 2), rvs_dense=8, phot_dense=4, xp_dense=4,
                           head_dense=(8, 4), jit_compile=False, batch_size=64)
    bundle = train_ensemble(train, root / "bundle", config=config, n_splits=1, n_models=2,
                            epochs=1, tsne=False, progress=False)
    with Store.open(train) as store, conf.set_temp("threads", 1):
        flux = store.read(columns=["flux"])["flux"]
        TSNEReference.fit(flux, perplexities=(5, 10), n_pca=10, seed=0,
                          n_iter=(50, 100)).save(bundle.tsne_dir)
    return bundle.path


@pytest.fixture(scope="module")
def obs_store(tmp_path_factory):
    from gaiarvs_cnn.sources.simulated import simulate_store

    root = tmp_path_factory.mktemp("dask_obs")
    return simulate_store(root / "obs.h5", N_OBS, seed=5, kind="observed", progress=False)


@pytest.fixture(scope="module")
def single_process_table(tiny_bundle, obs_store):
    """The catalogue computed chunk by chunk in this process, without Dask."""
    from gaiarvs_cnn.flags import TSNEReference, flag_boundary
    from gaiarvs_cnn.model import ModelBundle, predict_batch

    bundle = ModelBundle.load(tiny_bundle)
    preds, flags = [], []
    with conf.set_temp("threads", 1), open_source(obs_store) as src:
        ref = TSNEReference.load(bundle.tsne_dir)
        for batch in src.iter_chunks(CHUNK):
            pred = predict_batch(bundle, batch)
            preds.append(pred)
            flags.append(flag_boundary(pred, batch, bundle.ranges,
                                       ref.training_like(batch["flux"])))
    return build_catalog_table(preds, flags)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def _assert_same_catalogue(table, reference):
    np.testing.assert_array_equal(table["source_id"], reference["source_id"])
    for name in LABEL_COLUMNS:  # bitwise: same chunks, same compiled function
        np.testing.assert_array_equal(np.asarray(table[name]), np.asarray(reference[name]),
                                      err_msg=name)
    np.testing.assert_array_equal(np.asarray(table["flag_boundary"]),
                                  np.asarray(reference["flag_boundary"]))


def test_cluster_catalogue_identical_to_single_process(tiny_bundle, obs_store, client,
                                                       single_process_table, tmp_path):
    outputs = [tmp_path / "cat.fits", tmp_path / "cat.vot"]
    run = predict_distributed(obs_store, tiny_bundle, outputs, chunk_size=CHUNK,
                              client=client, progress=False)
    assert (run.n_stars, run.n_partitions, run.n_computed, run.n_skipped) == (N_OBS, 4, 4, 0)
    assert len({r["worker"] for r in run.tasks}) >= 1
    for path in outputs:
        _assert_same_catalogue(read_catalog(path), single_process_table)
    # the t-SNE digit is not trivially constant on this sample
    digits = {f[-1] for f in np.asarray(single_process_table["flag_boundary"])}
    assert digits == {"0", "1"}


def test_sharded_input_gives_the_same_catalogue(tiny_bundle, obs_store, client,
                                                single_process_table, tmp_path):
    manifest = shard_store(obs_store, tmp_path / "shards", stars_per_shard=2 * CHUNK)
    run = predict_distributed(manifest, tiny_bundle, tmp_path / "cat.fits", chunk_size=CHUNK,
                              client=client, progress=False)
    assert run.n_partitions == 4
    _assert_same_catalogue(read_catalog(tmp_path / "cat.fits"), single_process_table)


def test_resumed_run_recomputes_nothing_already_written(tiny_bundle, obs_store, client,
                                                        single_process_table, tmp_path):
    out = tmp_path / "cat.fits"
    work = tmp_path / "work"
    predict_distributed(obs_store, tiny_bundle, out, work_dir=work, chunk_size=CHUNK,
                        client=client, progress=False)
    parts = sorted(work.glob("part-*.npz"))
    assert len(parts) == 4
    before = {p.name: p.stat().st_mtime_ns for p in parts}
    parts[2].unlink()  # as if the run had been interrupted before this partition
    run = predict_distributed(obs_store, tiny_bundle, out, work_dir=work, chunk_size=CHUNK,
                              client=client, progress=False, overwrite=True)
    assert (run.n_computed, run.n_skipped) == (1, 3)
    assert [r["key"] for r in run.tasks] == ["part-000002"]
    after = {p.name: p.stat().st_mtime_ns for p in work.glob("part-*.npz")}
    assert {k: v for k, v in after.items() if k != parts[2].name} == {
        k: v for k, v in before.items() if k != parts[2].name}
    _assert_same_catalogue(read_catalog(out), single_process_table)
    # everything done: no task at all, not even a cluster (client=None, workers unset)
    run = predict_distributed(obs_store, tiny_bundle, out, work_dir=work, chunk_size=CHUNK,
                              progress=False, overwrite=True)
    assert (run.n_computed, run.n_skipped, run.tasks) == (0, 4, [])


def test_work_dir_of_another_run_is_refused(tiny_bundle, obs_store, client, tmp_path):
    work = tmp_path / "work"
    predict_distributed(obs_store, tiny_bundle, tmp_path / "a.fits", work_dir=work,
                        chunk_size=2 * CHUNK, client=client, progress=False)
    with pytest.raises(OutputExistsError, match="another run"):
        predict_distributed(obs_store, tiny_bundle, tmp_path / "b.fits", work_dir=work,
                            chunk_size=CHUNK, client=client, progress=False)


def test_failing_partition_is_retried_reported_and_others_kept(tiny_bundle, obs_store, client,
                                                               tmp_path):
    bad = tmp_path / "bad.h5"
    with open_source(obs_store) as src, Store.create(bad, extra_columns=src.extra_columns) as st:
        batch = src.read(0, 2 * CHUNK)
        batch["flux"][CHUNK + 3] = np.nan  # an all-NaN spectrum in the 2nd partition
        st.append(batch)
    bad_id = int(batch["source_id"][CHUNK + 3])
    with pytest.raises(PartitionFailedError, match=f"part-000001.*{bad_id}") as err:
        predict_distributed(bad, tiny_bundle, tmp_path / "bad.fits", work_dir=tmp_path / "w",
                            chunk_size=CHUNK, client=client, retries=1, progress=False)
    assert list(err.value.failures) == ["part-000001"]
    cols, meta = read_partition(tmp_path / "w" / "part-000000.npz")
    np.testing.assert_array_equal(cols["source_id"], batch["source_id"][:CHUNK])
    assert not (tmp_path / "bad.fits").exists()


class KillFirstTask(distributed.WorkerPlugin):
    """Kill the worker process when the first prediction task starts (once per test)."""

    name = "kill-first-task"

    def __init__(self, marker):
        self.marker = str(marker)

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or "predict_partition" not in str(key):
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(1)


def test_killed_worker_still_yields_the_full_catalogue(tiny_bundle, obs_store, client,
                                                       single_process_table, tmp_path):
    marker = tmp_path / "killed"
    client.register_plugin(KillFirstTask(marker))
    try:
        run = predict_distributed(obs_store, tiny_bundle, tmp_path / "cat.fits",
                                  chunk_size=CHUNK, client=client, progress=False)
    finally:
        client.unregister_worker_plugin(KillFirstTask.name)
    assert marker.exists()  # a worker really died mid-run
    assert run.n_computed == 4
    _assert_same_catalogue(read_catalog(tmp_path / "cat.fits"), single_process_table)


def test_parquet_output_needs_pyarrow_or_matches_fits(tiny_bundle, obs_store, client, tmp_path):
    out = [tmp_path / "cat.fits", tmp_path / "cat.parquet"]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(InputDataError, match="pyarrow"):
            predict_distributed(obs_store, tiny_bundle, out, chunk_size=4 * CHUNK,
                                client=client, progress=False)
        return
    from astropy.table import Table

    predict_distributed(obs_store, tiny_bundle, out, chunk_size=4 * CHUNK, client=client,
                        progress=False)
    pq = Table.read(out[1], format="parquet")
    np.testing.assert_array_equal(pq["teff"], read_catalog(out[0])["teff"])
