"""The production engine on Dask: a LocalCluster (2 worker processes on loopback).

The tiny bundle and the 200-star observed store are the shared fixtures of conftest.py;
the catalogue computed on the cluster (`gaiarvs_cnn.production.DaskExecutor`) is compared with
the in-process run of the same engine (`gaiarvs_cnn.production.run_catalog`, the code behind
``produce-catalog``/``predict``).
"""
import os

import numpy as np
import pytest

from gaiarvs_cnn.catalog import read_catalog
from gaiarvs_cnn.exceptions import InputDataError, OutputExistsError
from gaiarvs_cnn.io.shards import open_source, shard_store
from gaiarvs_cnn.production import (
    CatalogRun,
    ChunkFailedError,
    DaskExecutor,
    produce_catalog,
    read_chunk,
)

distributed = pytest.importorskip("distributed")

N_OBS = 200  # stars of conftest's tiny_observed_store
CHUNK = 50
LABEL_COLUMNS = ["teff", "eteff", "sigma_teff", "logg", "elogg", "sigma_logg", "mh", "emh",
                 "sigma_mh", "feh", "efeh", "sigma_feh", "alpham", "ealpham", "sigma_alpham"]


@pytest.fixture(scope="module")
def obs_store(tiny_observed_store):
    return tiny_observed_store


@pytest.fixture(scope="module")
def single_process_table(tiny_bundle, obs_store, tmp_path_factory):
    """The catalogue of the single-process pipeline with the same chunk size."""
    from gaiarvs_cnn.production import run_catalog

    out = tmp_path_factory.mktemp("single_process") / "cat.fits"
    run_catalog(source="files", store=obs_store, model=tiny_bundle, out=out, formats="fits",
                chunk_size=CHUNK, progress=False)
    return read_catalog(out)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def dask_run(store, bundle, out, *, client=None, retries=2, **options):
    """The engine with the Dask executor (``out``: a file name; ``formats`` as CatalogRun)."""
    options = {"chunk_size": CHUNK, "formats": "fits", "progress": False, **options}
    run = CatalogRun(source="files", store=store, model=bundle, out=out, **options)
    return produce_catalog(run, executor=DaskExecutor(client=client, retries=retries))


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
    run = dask_run(obs_store, tiny_bundle, outputs[0], formats="both", client=client)
    assert (run.n_chunks, run.n_computed, run.resumed_chunks) == (4, 4, 0)
    assert run.executor == "dask"
    assert run.n_written == len(single_process_table) > 0.9 * N_OBS
    for path in outputs:
        _assert_same_catalogue(read_catalog(path), single_process_table)
    # the t-SNE digit is not trivially constant on this sample
    digits = {f[-1] for f in np.asarray(single_process_table["flag_boundary"])}
    assert digits == {"0", "1"}


def test_sharded_input_with_other_chunking_agrees_within_float32_rounding(
        tiny_bundle, obs_store, client, single_process_table, tmp_path):
    # shards of 70 stars -> partitions of 50, 20, 50, 20, 50, 10 (single process: 4 x 50)
    manifest = shard_store(obs_store, tmp_path / "shards", stars_per_shard=70)
    run = dask_run(manifest, tiny_bundle, tmp_path / "cat.fits", client=client)
    assert run.n_chunks == 6
    table = read_catalog(tmp_path / "cat.fits")
    np.testing.assert_array_equal(table["source_id"], single_process_table["source_id"])
    for name in LABEL_COLUMNS:
        np.testing.assert_allclose(np.asarray(table[name]),
                                   np.asarray(single_process_table[name]), rtol=2e-7,
                                   atol=0, err_msg=name)
    np.testing.assert_array_equal(np.asarray(table["flag_boundary"]),
                                  np.asarray(single_process_table["flag_boundary"]))


def test_resumed_run_recomputes_nothing_already_written(tiny_bundle, obs_store, client,
                                                        single_process_table, tmp_path):
    out = tmp_path / "cat.fits"
    work = tmp_path / "work"
    dask_run(obs_store, tiny_bundle, out, work_dir=work, client=client)
    parts = sorted(work.glob("part-*.npz"))
    assert len(parts) == 4
    before = {p.name: p.stat().st_mtime_ns for p in parts}
    parts[2].unlink()  # as if the run had been interrupted before this partition
    run = dask_run(obs_store, tiny_bundle, out, work_dir=work, client=client,
                              overwrite=True)
    assert (run.n_computed, run.resumed_chunks) == (1, 3)
    assert [r["key"] for r in run.tasks] == ["part-000002"]
    after = {p.name: p.stat().st_mtime_ns for p in work.glob("part-*.npz")}
    assert {k: v for k, v in after.items() if k != parts[2].name} == {
        k: v for k, v in before.items() if k != parts[2].name}
    _assert_same_catalogue(read_catalog(out), single_process_table)
    # everything done: no task at all, not even a cluster (client=None, workers unset)
    run = dask_run(obs_store, tiny_bundle, out, work_dir=work, overwrite=True)
    assert (run.n_computed, run.resumed_chunks, run.tasks) == (0, 4, [])


def test_work_dir_of_another_run_is_refused(tiny_bundle, obs_store, client, tmp_path):
    work = tmp_path / "work"
    dask_run(obs_store, tiny_bundle, tmp_path / "a.fits", work_dir=work,
                        chunk_size=2 * CHUNK, client=client)
    with pytest.raises(OutputExistsError, match="another run"):
        dask_run(obs_store, tiny_bundle, tmp_path / "b.fits", work_dir=work,
                            chunk_size=CHUNK, client=client)


class FailOnSource(distributed.WorkerPlugin):
    """Make the per-chunk prediction raise, in the workers, for chunks holding one star."""

    name = "fail-on-source"

    def __init__(self, source_id):
        self.source_id = int(source_id)

    def setup(self, worker):
        from gaiarvs_cnn.exceptions import BadStarError
        from gaiarvs_cnn.model import predict

        self._original = original = predict.predict_and_flag
        bad = self.source_id

        def failing(bundle, batch, *args, **kwargs):
            if bad in np.asarray(batch["source_id"]).tolist():
                raise BadStarError(bad, "injected failure")
            return original(bundle, batch, *args, **kwargs)

        predict.predict_and_flag = failing

    def teardown(self, worker):
        from gaiarvs_cnn.model import predict

        predict.predict_and_flag = self._original


def test_failing_partition_is_retried_reported_and_others_kept(tiny_bundle, obs_store, client,
                                                               tmp_path):
    with open_source(obs_store) as src:
        bad_id = int(src.read(CHUNK + 3, CHUNK + 4)["source_id"][0])
    client.register_plugin(FailOnSource(bad_id))
    try:
        with pytest.raises(ChunkFailedError, match=f"part-000001.*{bad_id}") as err:
            dask_run(obs_store, tiny_bundle, tmp_path / "bad.fits",
                                work_dir=tmp_path / "w", client=client, retries=1)
    finally:
        client.unregister_worker_plugin(FailOnSource.name)
    assert list(err.value.failures) == ["part-000001"]
    cols, meta = read_chunk(tmp_path / "w" / "part-000000.npz")
    with open_source(obs_store) as src:
        np.testing.assert_array_equal(cols["source_id"], src.read(0, CHUNK)["source_id"])
    assert not (tmp_path / "bad.fits").exists()


class KillFirstTask(distributed.WorkerPlugin):
    """Kill the worker process when the first prediction task starts (once per test)."""

    name = "kill-first-task"

    def __init__(self, marker):
        self.marker = str(marker)

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or "compute_chunk" not in str(key):
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
        run = dask_run(obs_store, tiny_bundle, tmp_path / "cat.fits", client=client)
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
            dask_run(obs_store, tiny_bundle, out[0], formats="fits,parquet",
                                chunk_size=4 * CHUNK, client=client)
        return
    from astropy.table import Table

    dask_run(obs_store, tiny_bundle, out[0], formats="fits,parquet",
                        chunk_size=4 * CHUNK, client=client)
    pq = Table.read(out[1], format="parquet")
    np.testing.assert_array_equal(pq["teff"], read_catalog(out[0])["teff"])


def test_predict_cli_runs_on_a_scheduler_address(tiny_bundle, obs_store, client,
                                                 single_process_table, tmp_path):
    from click.testing import CliRunner

    from gaiarvs_cnn.cli import main

    out = tmp_path / "cat.fits"
    args = ["predict", "--store", str(obs_store), "--model", str(tiny_bundle), "--out",
            str(out), "--format", "fits", "--chunk-size", str(CHUNK), "--scheduler",
            client.scheduler.address, "--work-dir", str(tmp_path / "parts")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"{len(single_process_table)} stars in 4 chunk(s) (4 computed" in result.output
    _assert_same_catalogue(read_catalog(out), single_process_table)
    assert len(list((tmp_path / "parts").glob("part-*.npz"))) == 4


def test_predict_cli_refuses_existing_catalogue_before_starting_a_cluster(tiny_bundle, obs_store,
                                                                         tmp_path):
    from click.testing import CliRunner

    from gaiarvs_cnn.cli import main

    out = tmp_path / "cat.fits"
    out.write_text("an earlier catalogue")
    args = ["predict", "--store", str(obs_store), "--model", str(tiny_bundle), "--out",
            str(out), "--format", "fits", "--workers", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "cat.fits exists" in result.output and "--overwrite" in result.output
    assert out.read_text() == "an earlier catalogue"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.fits"]  # no work dir, no lock


def test_hats_catalogue_is_written_on_the_cluster_with_the_store_positions(
        tiny_bundle, obs_store, client, single_process_table, tmp_path):
    pytest.importorskip("hats_import")
    from gaiarvs_cnn.catalog import read_hats

    run = dask_run(obs_store, tiny_bundle, tmp_path / "cat.fits", formats="fits,hats",
                   client=client)
    assert run.outputs == [str(tmp_path / "cat.fits"), str(tmp_path / "cat")]
    hats = read_hats(tmp_path / "cat")
    order = np.argsort(np.asarray(single_process_table["source_id"]))
    expected = single_process_table[order]
    _assert_same_catalogue(hats, expected)
    with open_source(obs_store) as src:
        batch = src.read_ids(np.asarray(expected["source_id"]), columns=["ra", "dec"])
    np.testing.assert_array_equal(np.asarray(hats["ra"]), batch["ra"])
    np.testing.assert_array_equal(np.asarray(hats["dec"]), batch["dec"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat", "cat.fits"]
