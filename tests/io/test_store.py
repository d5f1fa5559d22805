"""Tests of gaiarvs_cnn.io.store: StarBatch and the chunked HDF5 Store."""
import astropy.units as u
import numpy as np
import pytest
import tables

from gaiarvs_cnn.constants import LABELS, RVS_NPIX, XP_NCOEFF
from gaiarvs_cnn.exceptions import DuplicateSourceError, InputDataError, StoreError
from gaiarvs_cnn.io import store as store_module
from gaiarvs_cnn.io.batch import CORE_COLUMNS, ColumnSpec, StarBatch, match_ids
from gaiarvs_cnn.io.store import Store, open_store

EXTRA = (ColumnSpec("true_labels", "float32", (5,), "", "truth"),
         ColumnSpec("population", "int8", (), "", "population code"))


def make_batch(n, first_id=1000, seed=0, extra=()):
    """A batch of ``n`` stars with every core column filled with seeded random values."""
    rng = np.random.default_rng(seed)
    specs = tuple(CORE_COLUMNS) + tuple(extra)
    cols = {"source_id": np.arange(first_id, first_id + n, dtype=np.int64)}
    for spec in specs[1:]:
        shape = (n, *spec.shape)
        if np.dtype(spec.dtype).kind == "f":
            cols[spec.name] = rng.normal(size=shape).astype(spec.dtype)
        else:
            cols[spec.name] = rng.integers(0, 6, size=shape).astype(spec.dtype)
    return StarBatch(cols, specs)


def test_starbatch_fills_absent_columns_with_nan_and_checks_shapes():
    batch = StarBatch({"source_id": [5, 6]})
    assert batch["flux"].shape == (2, RVS_NPIX)
    assert batch["bp_coefficients"].shape == (2, XP_NCOEFF)
    assert np.isnan(batch["parallax"]).all()
    assert batch["source_id"].dtype == np.int64
    with pytest.raises(InputDataError, match="flux"):
        StarBatch({"source_id": [5], "flux": np.zeros((1, 100))})
    with pytest.raises(InputDataError, match="bogus"):
        StarBatch({"source_id": [5], "bogus": [1.0]})


def test_starbatch_indexing_slicing_and_labels():
    batch = make_batch(5)
    one = batch[2]
    assert len(one) == 1 and one["source_id"][0] == 1002
    assert one["flux"].shape == (1, RVS_NPIX)
    sub = batch[np.array([True, False, True, False, False])]
    np.testing.assert_array_equal(sub["source_id"], [1000, 1002])
    np.testing.assert_array_equal(batch.labels["alpham"], batch["labels"][:, 3])
    joined = StarBatch.concatenate([batch[:2], batch[2:]])
    np.testing.assert_array_equal(joined["flux"], batch["flux"])


def test_starbatch_table_round_trip_keeps_units_and_masks():
    batch = make_batch(3)
    table = batch.to_table()
    assert table["parallax"].unit == u.mas
    assert table["ra"].unit == u.deg
    assert table.meta["label_order"] == list(LABELS)
    # units are converted, masked entries become NaN
    table["parallax"] = (table["parallax"].data * u.mas).to(u.arcsec)
    masked = table["phot_g_mean_mag"].copy()
    table["phot_g_mean_mag"] = np.ma.MaskedArray(masked.data, mask=[False, True, False])
    table["phot_g_mean_mag"].unit = u.mag
    back = StarBatch.from_table(table)
    np.testing.assert_allclose(back["parallax"], batch["parallax"], rtol=1e-6)
    assert np.isnan(back["phot_g_mean_mag"][1])
    assert back["phot_g_mean_mag"][0] == batch["phot_g_mean_mag"][0]


def test_store_round_trip_values_dtypes_units_extras_meta(tmp_path):
    path = tmp_path / "s.h5"
    batch = make_batch(7, extra=EXTRA)
    with Store.create(path, extra_columns=EXTRA, meta={"survey": "test", "n": 7}) as store:
        store.append(batch)
    with open_store(path) as store:
        assert len(store) == 7
        assert store.meta == {"survey": "test", "n": 7}
        assert [s.name for s in store.extra_columns] == ["true_labels", "population"]
        assert store.units()["parallax"] == u.mas
        assert store.units()["flux"] is None
        back = store.read()
    for spec in (*CORE_COLUMNS, *EXTRA):
        assert back[spec.name].dtype == np.dtype(spec.dtype), spec.name
        np.testing.assert_array_equal(back[spec.name], batch[spec.name])


def test_store_iter_chunks_and_column_subsets(tmp_path):
    path = tmp_path / "s.h5"
    with Store.create(path) as store:
        store.append(make_batch(10))
    with Store.open(path) as store:
        chunks = list(store.iter_chunks(4, columns=["parallax"]))
        assert [len(c) for c in chunks] == [4, 4, 2]
        assert chunks[0].colnames == ["source_id", "parallax"]
        np.testing.assert_array_equal(np.concatenate([c["source_id"] for c in chunks]),
                                      np.arange(1000, 1010))
        middle = list(store.iter_chunks(3, start=2, stop=7))
        np.testing.assert_array_equal(np.concatenate([c["source_id"] for c in middle]),
                                      np.arange(1002, 1007))
        with pytest.raises(StoreError, match="nope"):
            store.read(columns=["nope"])


def test_store_read_ids_uses_index_and_keeps_order(tmp_path):
    path = tmp_path / "s.h5"
    batch = make_batch(20)
    with Store.create(path) as store:
        store.append(batch[:10])
        store.append(batch[10:])
    with Store.open(path) as store:
        assert store._table.cols.source_id.is_indexed
        got = store.read_ids([1015, 1003, 1019])
        np.testing.assert_array_equal(got["source_id"], [1015, 1003, 1019])
        np.testing.assert_array_equal(got["flux"], batch["flux"][[15, 3, 19]])
        with pytest.raises(StoreError, match="5"):
            store.read_ids([1001, 5])


def test_store_read_ids_many_stars_scans_the_column(tmp_path, monkeypatch):
    path = tmp_path / "s.h5"
    batch = make_batch(12)
    with Store.create(path) as store:
        store.append(batch)
    monkeypatch.setattr(store_module, "_INDEX_LOOKUP_MAX", 2)
    with Store.open(path) as store:
        got = store.read_ids([1011, 1000, 1005])
        np.testing.assert_array_equal(got["ruwe"], batch["ruwe"][[11, 0, 5]])
        with pytest.raises(StoreError, match="99"):
            store.read_ids([1011, 1000, 99])


def test_match_ids_and_concatenate_mismatch():
    found, rows = match_ids(np.array([5, 7, 1, 9]), np.array([9, 1, 5]))
    assert found.tolist() == [True, False, True, True]
    assert rows.tolist() == [2, 1, 0]
    assert match_ids(np.array([1]), np.array([], dtype=np.int64))[0].tolist() == [False]
    with pytest.raises(InputDataError, match="concatenate"):
        StarBatch.concatenate([make_batch(1), make_batch(1, extra=EXTRA)])


def test_store_refuses_duplicates_and_writes_nothing(tmp_path):
    path = tmp_path / "s.h5"
    with Store.create(path) as store:
        store.append(make_batch(3))
        dup_in_batch = make_batch(2, first_id=2000)
        dup_in_batch["source_id"] = [2000, 2000]
        with pytest.raises(DuplicateSourceError, match="2000"):
            store.append(dup_in_batch)
        with pytest.raises(DuplicateSourceError, match="1001"):
            store.append(make_batch(3, first_id=1001))   # 1001, 1002 already stored
        assert len(store) == 3


def test_store_append_after_reopen_and_meta_update(tmp_path):
    path = tmp_path / "s.h5"
    with Store.create(path) as store:
        store.append(make_batch(3))
    with Store.open(path, "a") as store:
        store.append(make_batch(2, first_id=5000))
        store.update_meta(stage="appended")
        with pytest.raises(DuplicateSourceError):
            store.append(make_batch(1, first_id=1000))
    with Store.open(path) as store:
        np.testing.assert_array_equal(store.source_ids(), [1000, 1001, 1002, 5000, 5001])
        assert store.meta["stage"] == "appended"
        with pytest.raises(StoreError, match="read-only"):
            store.append(make_batch(1, first_id=7000))


def test_require_columns_names_the_missing_columns_the_file_and_the_consumer(tmp_path):
    path = tmp_path / "s.h5"
    with Store.create(path, extra_columns=EXTRA) as store:
        store.append(make_batch(2, extra=EXTRA))
    with Store.open(path) as store:
        store.require_columns(["flux", "true_labels"], "by the model")
        with pytest.raises(InputDataError) as info:
            store.require_columns(["flux", "labels_x", "mask_y"], "for training")
    assert str(info.value) == (f"Store {path} lacks column(s) ['labels_x', 'mask_y'] "
                               "needed for training.")


def test_store_create_is_atomic_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "s.h5"
    path.write_text("precious")
    with pytest.raises(StoreError, match="exists"):
        Store.create(path)
    assert path.read_text() == "precious"
    # a failure during creation leaves neither the file nor its temporary
    with pytest.raises(TypeError):
        Store.create(tmp_path / "bad.h5", meta={"x": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]
    with Store.create(path, overwrite=True) as store:
        assert len(store) == 0
    with pytest.raises(StoreError, match="clash"):
        Store.create(tmp_path / "c.h5", extra_columns=[ColumnSpec("flux", "float32")])


def test_bad_files_raise_store_error_naming_the_file(tmp_path):
    missing = tmp_path / "missing.h5"
    with pytest.raises(StoreError, match="missing.h5"):
        Store.open(missing)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"this is not HDF5")
    with pytest.raises(StoreError, match="garbage.h5"):
        Store.open(garbage)
    other = tmp_path / "other.h5"
    with tables.open_file(str(other), "w") as h5:
        h5.create_array("/", "x", np.arange(3))
    with pytest.raises(StoreError, match="other.h5.*not a gaiarvs-cnn store"):
        Store.open(other)


def test_store_summary_reports_coverage_and_snr(tmp_path):
    path = tmp_path / "s.h5"
    batch = make_batch(4)
    batch["rvs_snr"] = [10.0, 20.0, 30.0, np.nan]
    labels = batch["labels"].copy()
    labels[:2, 0] = np.nan
    batch["labels"] = labels
    with Store.create(path, meta={"a": 1}) as store:
        store.append(batch)
        info = store.summary(quantiles=(50,))
    assert info["n_stars"] == 4
    assert info["label_coverage"]["teff"] == 0.5
    assert info["label_coverage"]["logg"] == 1.0
    assert info["snr_quantiles"] == {"50": 20.0}
    assert info["columns"]["parallax"]["unit"] == "mas"
    assert info["meta"] == {"a": 1}


# -- the one layout: column-wise (format 2) -------------------------------------------
CUT_COLUMNS = ["rvs_snr", "phot_g_mean_mag", "phot_bp_mean_mag", "phot_rp_mean_mag",
               "parallax", "parallax_error", "ruwe"]


class _Untouchable:
    """Stands in for a wide column's HDF5 array: any read fails the test."""

    nrows = 10 ** 9

    def __getitem__(self, key):
        raise AssertionError("a spectrum array was read")


def test_column_store_keeps_wide_columns_apart_and_reads_scalars_without_them(tmp_path):
    path = tmp_path / "s.h5"
    batch = make_batch(150, extra=EXTRA)
    with Store.create(path, extra_columns=EXTRA) as store:
        store.append(batch[:70])
        store.append(batch[70:])
    with tables.open_file(str(path)) as h5:
        assert sorted(h5.get_node("/arrays")._v_children) == sorted(
            ["flux", "flux_error", "bp_coefficients", "bp_coefficient_errors",
             "rp_coefficients", "rp_coefficient_errors"])
        assert "flux" not in h5.get_node("/stars").colnames
        assert "labels" in h5.get_node("/stars").colnames       # 5 values: in the table
        assert h5.get_node("/arrays/flux").chunkshape == (store_module.ARRAY_CHUNK_ROWS,
                                                         RVS_NPIX)
    with Store.open(path) as store:
        assert store.format_version == 2
        for name in list(store._arrays):
            store._arrays[name] = _Untouchable()
        cuts = store.read(columns=CUT_COLUMNS)
        ids = store.read_ids([1149, 1003], columns=["ruwe", "labels"])
        chunks = list(store.iter_chunks(40, columns=["parallax"]))
    for name in CUT_COLUMNS:
        np.testing.assert_array_equal(cuts[name], batch[name])
    np.testing.assert_array_equal(ids["labels"], batch["labels"][[149, 3]])
    assert [len(c) for c in chunks] == [40, 40, 40, 30]
    with Store.open(path) as store:
        back = store.read()
        got = store.read_ids([1149, 1003, 1149, 1071, 1000])
        part = store.read(65, 130, columns=["flux", "rp_coefficients"])
    for spec in (*CORE_COLUMNS, *EXTRA):
        np.testing.assert_array_equal(back[spec.name], batch[spec.name], err_msg=spec.name)
    np.testing.assert_array_equal(got["flux"], batch["flux"][[149, 3, 149, 71, 0]])
    np.testing.assert_array_equal(got["bp_coefficients"],
                                  batch["bp_coefficients"][[149, 3, 149, 71, 0]])
    np.testing.assert_array_equal(part["rp_coefficients"], batch["rp_coefficients"][65:130])


def test_row_store_of_pre_release_format_1_is_refused_with_what_to_do(tmp_path):
    """Pre-release stores (one compound row per star, format 1) are not read."""
    path = tmp_path / "old.h5"
    with Store.create(path) as store:
        store.append(make_batch(3))
    with tables.open_file(str(path), "a") as h5:
        h5.get_node("/stars").attrs.format_version = 1
    with pytest.raises(StoreError, match="old.h5 has store format version 1 .*pre-release.*"
                                         "Write the store again"):
        Store.open(path)
    with tables.open_file(str(path), "a") as h5:   # no format_version at all: also format 1
        del h5.get_node("/stars").attrs.format_version
    with pytest.raises(StoreError, match="format version 1"):
        Store.open(path)


def test_store_without_completeness_marker_is_refused(tmp_path):
    path = tmp_path / "s.h5"
    with Store.create(path) as store:
        store.append(make_batch(3))
    with tables.open_file(str(path), "a") as h5:
        del h5.get_node("/stars").attrs.complete
    with pytest.raises(StoreError, match="s.h5 has no completeness marker"):
        Store.open(path)


def test_store_of_unknown_version_or_missing_array_is_a_clear_error(tmp_path):
    path = tmp_path / "s.h5"
    with Store.create(path) as store:
        store.append(make_batch(3))
    with tables.open_file(str(path), "a") as h5:
        h5.get_node("/stars").attrs.format_version = 7
    with pytest.raises(StoreError, match="s.h5 has store format version 7.*Upgrade"):
        Store.open(path)
    with tables.open_file(str(path), "a") as h5:
        h5.get_node("/stars").attrs.format_version = 2
        h5.remove_node("/arrays/flux_error")
    with pytest.raises(StoreError, match="lacks the array /arrays/flux_error"):
        Store.open(path)


def test_interrupted_append_keeps_only_complete_stars(tmp_path):
    """A crash between the array appends and the table append leaves longer arrays."""
    path = tmp_path / "s.h5"
    batch = make_batch(12)
    with Store.create(path) as store:
        store.append(batch[:8])
    with tables.open_file(str(path), "a") as h5:   # what a killed append leaves behind
        h5.get_node("/arrays/flux").append(batch["flux"][8:])
    with Store.open(path) as store:
        assert len(store) == 8
        np.testing.assert_array_equal(store.read()["flux"], batch["flux"][:8])
    with Store.open(path, "a") as store:
        store.append(batch[8:])
    with Store.open(path) as store:
        assert len(store) == 12
        np.testing.assert_array_equal(store.read()["flux"], batch["flux"])


def test_store_convert_command_says_there_is_one_layout(tmp_path):
    """The command (and its flags) stay for old scripts; it explains, converts nothing."""
    from click.testing import CliRunner

    from gaiarvs_cnn.cli import main

    path = tmp_path / "s.h5"
    with Store.create(path) as store:
        store.append(make_batch(9))
    result = CliRunner().invoke(main, ["store", "convert", str(path), "-o",
                                       str(tmp_path / "n.h5"), "--layout", "rows",
                                       "--overwrite", "--chunk-size", "7"])
    assert result.exit_code == 1
    assert "one layout" in result.output and "write them again" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "n.h5").exists()
    assert "convert" not in CliRunner().invoke(main, ["store", "--help"]).output
