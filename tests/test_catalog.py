"""Tests of gaiarvs_cnn.catalog.schema: data model, FITS/VOTable round trips, atomic writes."""
import errno
import os
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.table import Table

import gaiarvs_cnn
from gaiarvs_cnn.catalog.schema import (
    CatalogWriteError,
    build_catalog_table,
    catalog_columns,
    datamodel,
    read_catalog,
    select_good,
    write_catalog,
)
from gaiarvs_cnn.constants import LABELS
from gaiarvs_cnn.exceptions import InputDataError, OutputExistsError

TABLE2_ORDER = ["source_id", "teff", "eteff", "sigma_teff", "logg", "elogg", "sigma_logg",
                "mh", "emh", "sigma_mh", "feh", "efeh", "sigma_feh", "alpham", "ealpham",
                "sigma_alpham", "flag_boundary"]
FLAGS = np.array(["00000000", "00000001", "10000000", "00000000", "01000010", "00000110"])


def fake_predictions(n, seed=0):
    rng = np.random.default_rng(seed)
    pred = {"source_id": (np.arange(n) + 4_000_000_000_000_000_000).astype(np.int64)}
    centre = {"teff": 5000.0, "logg": 3.0, "mh": -0.2, "alpham": 0.1, "feh": -0.25}
    for lab in LABELS:
        pred[lab] = (centre[lab] + rng.normal(0, 1, n)).astype(np.float32)
        pred[f"e{lab}"] = rng.uniform(0.01, 0.1, n).astype(np.float32)
        pred[f"sigma_{lab}"] = (pred[f"e{lab}"] * 1.5).astype(np.float32)
    return pred


@pytest.fixture
def table():
    pred = fake_predictions(6)
    return build_catalog_table([{k: v[:4] for k, v in pred.items()},
                                {k: v[4:] for k, v in pred.items()}],
                               [FLAGS[:4], FLAGS[4:]], {"bundle_id": "0123abcd"})


def test_datamodel_has_the_17_table2_columns_in_order():
    cols = catalog_columns()
    assert [c["name"] for c in cols] == TABLE2_ORDER
    assert all(c["ucd"] and c["description"] for c in cols)
    assert {c["unit"] for c in cols if c["name"].endswith("teff")} == {"K"}
    assert {c["unit"] for c in cols if "logg" in c["name"]} == {"dex(cm/s2)"}
    assert datamodel()["version"] == 1


def test_build_catalog_table_concatenates_chunks_with_units_and_dtypes(table):
    assert table.colnames == TABLE2_ORDER
    assert table["source_id"].dtype == np.int64
    assert all(table[c].dtype == np.float32 for c in TABLE2_ORDER[1:-1])
    assert table["teff"].unit == u.K
    assert table["logg"].unit == u.dex(u.cm / u.s**2)
    assert table["mh"].unit == u.dex
    assert table["flag_boundary"].tolist() == FLAGS.tolist()
    assert table["teff"].meta["ucd"] == "phys.temperature.effective"


def test_build_catalog_table_rejects_missing_column_and_flag_count():
    pred = fake_predictions(3)
    del pred["sigma_feh"]
    with pytest.raises(InputDataError, match="sigma_feh"):
        build_catalog_table(pred, FLAGS[:3])
    with pytest.raises(InputDataError, match="2 flags for 3 stars"):
        build_catalog_table(fake_predictions(3), FLAGS[:2])


@pytest.mark.parametrize("suffix", [".fits", ".vot"])
def test_plain_astropy_read_gives_17_columns_units_and_values(table, tmp_path, suffix):
    path = write_catalog(table, tmp_path / f"cat{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = Table.read(path)
    assert back.colnames == TABLE2_ORDER
    assert str(back["teff"].unit) == "K"
    assert str(back["logg"].unit) == "dex(cm/s2)"
    assert str(back["feh"].unit) == "dex"
    np.testing.assert_array_equal(back["source_id"], table["source_id"])
    np.testing.assert_array_equal(back["teff"], table["teff"])
    # the flag stays text with its leading zeros
    assert [str(f) if not isinstance(f, bytes) else f.decode() for f in back["flag_boundary"]
            ] == FLAGS.tolist()


@pytest.mark.parametrize("suffix", [".fits", ".vot"])
def test_read_catalog_restores_function_units_and_text_flags(table, tmp_path, suffix):
    path = write_catalog(table, tmp_path / f"cat{suffix}")
    back = gaiarvs_cnn.read_catalog(path)
    assert back["logg"].unit == u.dex(u.cm / u.s**2)
    assert back["alpham"].unit == u.dex
    assert back["flag_boundary"].dtype.kind == "U"
    assert back["flag_boundary"][0] == "00000000"
    assert back["sigma_mh"].description == "Overall uncertainty of [M/H]"
    assert str(back.meta["BUNDLEID"]) == "0123abcd" and int(back.meta["NSTARS"]) == 6
    np.testing.assert_allclose(back["logg"], table["logg"])


def test_fits_header_carries_ucds_units_and_provenance(table, tmp_path):
    path = write_catalog(table, tmp_path / "cat.fits", provenance={"input_selection": "x<1"})
    with fits.open(path) as hdul:
        primary, head = hdul[0].header, hdul[1].header
    assert head["TTYPE17"] == "flag_boundary" and head["TFORM17"] == "8A"
    assert head["TUNIT5"] == "dex(cm/s2)"
    assert head["TUCD2"] == "phys.temperature.effective"
    assert primary["BUNDLEID"] == "0123abcd"
    assert primary["INPUTSEL"] == "x<1"
    assert primary["SWVERS"] == gaiarvs_cnn.__version__
    assert primary["NSTARS"] == 6 and primary["NGOOD"] == 2
    assert "DATE" in primary


def test_votable_is_binary2_with_ucds_and_info(table, tmp_path):
    path = write_catalog(table, tmp_path / "cat.vot")
    assert b"<BINARY2>" in path.read_bytes()
    vtab = parse_single_table(str(path))
    fields = {f.name: f for f in vtab.fields}
    assert fields["logg"].ucd == "phys.gravity"
    assert fields["flag_boundary"].datatype == "char"
    assert fields["flag_boundary"].arraysize == "8"
    assert "BUNDLEID" in path.read_text()


def test_existing_output_is_refused_then_replaced_with_overwrite(table, tmp_path):
    path = tmp_path / "cat.fits"
    path.write_text("earlier catalogue")
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_catalog(table, path)
    assert path.read_text() == "earlier catalogue"
    write_catalog(table, path, overwrite=True)
    assert len(read_catalog(path)) == 6
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask     # not mkstemp's 0600


def test_full_disk_leaves_earlier_catalogue_and_no_temporary(table, tmp_path, monkeypatch):
    path = tmp_path / "cat.vot"
    path.write_text("earlier catalogue")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("gaiarvs_cnn.catalog.schema._write_tmp", disk_full)
    with pytest.raises(CatalogWriteError, match="No space left"):
        write_catalog(table, path, overwrite=True)
    assert path.read_text() == "earlier catalogue"
    assert sorted(os.listdir(tmp_path)) == ["cat.vot"]


def test_select_good_keeps_all_zero_flags_and_can_ignore_positions(table):
    assert select_good(table)["flag_boundary"].tolist() == ["00000000", "00000000"]
    kept = select_good(table, ignore=("tsne", "parallax"))
    assert kept["flag_boundary"].tolist() == ["00000000", "00000001", "00000000"]
    with pytest.raises(InputDataError, match="Unknown flag position"):
        select_good(table, ignore=("colour",))


def test_read_catalog_refuses_a_table_that_is_not_a_catalogue(tmp_path):
    path = tmp_path / "other.fits"
    Table({"a": [1, 2]}).write(path)
    with pytest.raises(InputDataError, match="lacks catalogue column"):
        read_catalog(path)
