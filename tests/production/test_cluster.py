"""A real Dask cluster (issue 17): ``dask scheduler`` + two ``dask worker`` processes on loopback.

`benchmarks/bench_cluster.py` starts them as separate processes (not a LocalCluster), runs
``gaiarvs-cnn predict --scheduler tcp://127.0.0.1:PORT`` on the tiny observed store, kills one
worker (SIGKILL) once the first chunks are written, and compares the catalogue with the
in-process run of the engine. Every process is stopped at the end, also on failure.
"""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from gaiarvs_cnn.catalog import read_catalog

pytest.importorskip("distributed")
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_cluster.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_cluster", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_killed_worker_of_a_real_cluster_gives_the_local_catalogue(tiny_observed_store,
                                                                   tiny_bundle, tmp_path):
    result = _bench().cluster_run(tiny_observed_store, tiny_bundle, tmp_path, chunk_size=10,
                                  n_workers=2, kill_after=1, timeout=400)
    assert result["predict_exit_code"] == 0, result["predict_error"]
    summary = " ".join(result["predict_summary"])
    assert "stars in 20 chunk(s)" in summary and " 0 already done" in summary
    killed = result["killed_worker"]
    assert killed["chunks_done_before_kill"] < result["n_chunks"] == 20  # mid-run
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    assert result["comparison"] == {"rows": [len(read_catalog(tmp_path / "local.fits"))] * 2,
                                    "columns": 17, "columns_differing": [], "identical": True}
    a, b = read_catalog(tmp_path / "cluster.fits"), read_catalog(tmp_path / "local.fits")
    for name in a.colnames:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)
    assert sorted(p.name for p in (tmp_path / "chunks").glob("part-*.npz")) == [
        f"part-{i:06d}.npz" for i in range(20)]


@pytest.mark.slow
def test_killed_worker_of_a_real_cluster_trains_the_local_members(tiny_training_store,
                                                                  tmp_path):
    from gaiarvs_cnn.model import NetworkConfig

    config = NetworkConfig(conv_filters=(4, 4, 2), rvs_dense=8, phot_dense=4, xp_dense=4,
                           head_dense=(8, 4), jit_compile=False, batch_size=64)
    result = _bench().cluster_train_run(tiny_training_store, config, tmp_path, n_splits=3,
                                        n_models=2, epochs=2, n_workers=2, kill_after=1,
                                        timeout=600)
    assert result["train_exit_code"] == 0, result["train_error"]
    killed = result["killed_worker"]
    assert 1 <= killed["members_done_before_kill"] < result["n_members"] == 6  # mid-run
    with pytest.raises(ProcessLookupError):
        os.kill(killed["pid"], 0)
    comparison = result["comparison"]
    assert comparison["members"] == [6, 6] and comparison["member_names_equal"]
    assert comparison["ensemble_settings_equal"]  # same seeds, splits, epochs per member
    # The same members as the local run: bit-identical between local processes and threads
    # with one TensorFlow thread; on the cluster within float summation-order drift.
    assert comparison["max_weight_difference"] < 1e-2 * comparison["max_weight"]
    assert sorted(p.name for p in (tmp_path / "cluster" / "members").iterdir()) == [
        f"split{s}_model{m}.keras" for s in range(3) for m in range(2)]
