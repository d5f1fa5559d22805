"""Tests of gaiarvs_cnn.io.shards: manifests, checksums, uniform reading, sharding."""
import hashlib
import json

import numpy as np
import pytest
from click.testing import CliRunner

from gaiarvs_cnn.cli import main
from gaiarvs_cnn.exceptions import DuplicateSourceError, OutputExistsError, StoreError
from gaiarvs_cnn.io.batch import CORE_COLUMNS, ColumnSpec, StarBatch
from gaiarvs_cnn.io.manifest import create_manifest, is_manifest, read_manifest
from gaiarvs_cnn.io.shards import open_source, shard_store
from gaiarvs_cnn.io.store import Store

N_STARS = 130
TRUTH = ColumnSpec("truth", "float32", (3,), "", "test truth column")


def _batch(ids, seed):
    rng = np.random.default_rng(seed)
    n = len(ids)
    cols = {"source_id": np.asarray(ids, dtype=np.int64),
            "flux": rng.normal(1.0, 0.02, (n, 2401)),
            "phot_g_mean_mag": rng.uniform(9, 14, n),
            "parallax": rng.uniform(0.1, 5, n),
            "truth": rng.normal(size=(n, 3))}
    return StarBatch(cols, CORE_COLUMNS + (TRUTH,))


def _make_store(path, ids, seed=0):
    with Store.create(path, extra_columns=[TRUTH], meta={"survey": "test"},
                      overwrite=True) as store:
        store.append(_batch(ids, seed))
    return path


@pytest.fixture(scope="module")
def single_store(tmp_path_factory):
    ids = np.random.default_rng(7).choice(10**12, N_STARS, replace=False) + 1
    return _make_store(tmp_path_factory.mktemp("single") / "survey.h5", ids)


@pytest.fixture(scope="module")
def sharded(single_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards")
    return shard_store(single_store, out, stars_per_shard=50)


def _assert_batches_equal(a, b):
    assert a.colnames == b.colnames
    for name in a.colnames:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_shard_store_manifest_records_counts_ranges_and_checksums(single_store, sharded):
    doc = json.loads(sharded.read_text())
    assert doc["format"] == "gaiarvs-cnn-shards"
    assert [s["n_stars"] for s in doc["shards"]] == [50, 50, 30]
    assert doc["n_stars"] == N_STARS
    with Store.open(single_store) as store:
        ids = store.source_ids()
    for i, shard in enumerate(doc["shards"]):
        path = sharded.parent / shard["path"]
        assert shard["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert shard["bytes"] == path.stat().st_size
        part = ids[50 * i:50 * (i + 1)]
        assert (shard["source_id_min"], shard["source_id_max"]) == (part.min(), part.max())
    assert doc["meta"]["parent_meta"] == {"survey": "test"}


def test_manifest_iter_chunks_equal_single_store_across_shard_boundaries(single_store, sharded):
    with open_source(single_store) as one, open_source(sharded) as many, \
            Store.open(single_store) as store:
        assert isinstance(one, Store)                  # a single store's source is a Store
        assert len(one) == len(many) == N_STARS
        assert [c.name for c in many.extra_columns] == ["truth"]
        assert many.colnames == one.colnames == store.colnames
        chunks_one = list(one.iter_chunks(37))
        chunks_many = list(many.iter_chunks(37))
        assert [len(c) for c in chunks_many] == [37, 37, 37, 19]
        for a, b in zip(chunks_one, chunks_many):
            _assert_batches_equal(a, b)
        np.testing.assert_array_equal(one.source_ids(), many.source_ids())
        _assert_batches_equal(one.read(45, 105), many.read(45, 105))


def test_manifest_read_ids_keeps_requested_order(single_store, sharded):
    with open_source(single_store) as one, open_source(sharded) as many:
        ids = one.source_ids()[[120, 3, 77, 51, 0]]
        got = many.read_ids(ids)
        np.testing.assert_array_equal(got["source_id"], ids)
        _assert_batches_equal(got, one.read_ids(ids))
        with pytest.raises(StoreError, match="424242"):
            many.read_ids([ids[0], 424242])


def test_partitions_cover_every_row_once_without_spanning_shards(sharded):
    with open_source(sharded) as src:
        parts = src.partitions(chunk_size=20)
        files = [str(p.resolve()) for p in src.files]
        # 50 -> 20+20+10, 50 -> 20+20+10, 30 -> 20+10
        assert [len(p) for p in parts] == [20, 20, 10, 20, 20, 10, 20, 10]
        assert [p.index for p in parts] == list(range(len(parts)))
        assert all(p.path in files for p in parts)
        ids = np.concatenate([p.read(["source_id"])["source_id"] for p in parts])
        np.testing.assert_array_equal(ids, src.source_ids())
        assert [p.row0 for p in parts] == [0, 20, 40, 50, 70, 90, 100, 120]


def test_single_store_partitions_follow_chunk_size(single_store):
    with open_source(single_store) as src:
        parts = src.partitions(chunk_size=60)
    assert [(p.start, p.stop) for p in parts] == [(0, 60), (60, 120), (120, 130)]
    assert [p.key for p in parts] == ["part-000000", "part-000001", "part-000002"]


def test_validate_detects_a_corrupted_shard(single_store, tmp_path):
    manifest = shard_store(single_store, tmp_path, stars_per_shard=100)
    read_manifest(manifest).validate()
    victim = tmp_path / "shard-00001.h5"
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="shard-00001.h5.*checksum"):
        read_manifest(manifest).validate()
    result = CliRunner().invoke(main, ["manifest", "validate", str(manifest)])
    assert result.exit_code == 1
    assert "checksum" in result.output


def test_missing_shard_is_named(single_store, tmp_path):
    manifest = shard_store(single_store, tmp_path, stars_per_shard=100)
    (tmp_path / "shard-00000.h5").unlink()
    with pytest.raises(StoreError, match="shard-00000.h5 .*missing"):
        open_source(manifest)


def test_create_manifest_refuses_ids_in_two_shards(tmp_path):
    a = _make_store(tmp_path / "a.h5", [1, 2, 3, 10], seed=1)
    b = _make_store(tmp_path / "b.h5", [5, 10, 20], seed=2)
    with pytest.raises(DuplicateSourceError, match=r"\[10\]"):
        create_manifest([a, b], tmp_path / "m.json")
    assert not (tmp_path / "m.json").exists()


def test_create_manifest_of_separate_stores_via_cli(tmp_path):
    a = _make_store(tmp_path / "a.h5", [1, 2, 3], seed=1)
    b = _make_store(tmp_path / "b.h5", [7, 8], seed=2)
    manifest = tmp_path / "sub" / "m.json"
    result = CliRunner().invoke(main, ["manifest", "create", str(manifest), str(a), str(b)])
    assert result.exit_code == 0, result.output
    doc = json.loads(manifest.read_text())
    assert [s["path"] for s in doc["shards"]] == ["../a.h5", "../b.h5"]
    with open_source(manifest) as src:
        np.testing.assert_array_equal(src.source_ids(), [1, 2, 3, 7, 8])
        np.testing.assert_array_equal(src.read(2, 4)["truth"],
                                      np.concatenate([_batch([1, 2, 3], 1)["truth"][2:],
                                                      _batch([7, 8], 2)["truth"][:1]]))


def test_shard_cli_and_refusal_to_overwrite(single_store, tmp_path):
    runner = CliRunner()
    args = ["shard", str(single_store), str(tmp_path), "--stars-per-shard", "64"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "3 shard(s), 130 stars" in result.output
    with pytest.raises(OutputExistsError):
        shard_store(single_store, tmp_path, stars_per_shard=64)
    result = runner.invoke(main, [*args, "--overwrite", "--stars-per-shard", "200"])
    assert result.exit_code == 0, result.output
    assert len(read_manifest(tmp_path / "manifest.json").shards) == 1


def test_open_source_rejects_foreign_json_and_missing_paths(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    assert is_manifest(other)
    with pytest.raises(StoreError, match="not a gaiarvs-cnn shard manifest"):
        open_source(other)
    with pytest.raises(StoreError, match="nothing.h5"):
        open_source(tmp_path / "nothing.h5")


def test_model_predicts_a_manifest_like_the_single_store(tiny_bundle, tiny_observed_store,
                                                         tmp_path):
    from gaiarvs_cnn.model import ModelBundle, predict_store

    manifest = shard_store(tiny_observed_store, tmp_path / "shards", stars_per_shard=70)
    bundle = ModelBundle.load(tiny_bundle)
    single = list(predict_store(bundle, tiny_observed_store, chunk_size=50))
    sharded = list(predict_store(bundle, manifest, chunk_size=50))
    assert len(single) == len(sharded) == 4  # 200 stars in chunks of 50, across 3 shards
    for a, b in zip(single, sharded):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_overlapping_shards_are_refused_by_predict_too(single_store, tmp_path, tiny_bundle):
    """The same shard listed twice: refused by 'manifest validate', but predict wrote
    duplicated source_id rows, exit 0 (issue 27). One validation now serves both."""
    manifest = shard_store(single_store, tmp_path / "shards", stars_per_shard=100)
    doc = json.loads(manifest.read_text())
    doc["shards"].append(doc["shards"][0])
    doc["n_stars"] = sum(s["n_stars"] for s in doc["shards"])
    twice = tmp_path / "shards" / "twice.json"
    twice.write_text(json.dumps(doc))
    with pytest.raises(DuplicateSourceError, match="listed more than once"):
        open_source(twice)
    for args in (["manifest", "validate", str(twice)],
                 ["predict", "--store", str(twice), "--model", str(tiny_bundle), "--out",
                  str(tmp_path / "out"), "--quiet"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert "listed more than once" in result.output
    assert not (tmp_path / "out" / "gaiarvs_cnn_catalog.fits").exists()
