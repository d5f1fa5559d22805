"""Tests of gaiarvs_cnn.catalog: data model, format registry, streaming writers, readers."""
import errno
import os
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.table import Table

import gaiarvs_cnn
from gaiarvs_cnn.catalog import (
    CATALOG_FORMATS,
    CatalogWriteError,
    build_catalog_table,
    catalog_columns,
    datamodel,
    format_of,
    open_writer,
    output_paths,
    parse_formats,
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


_IN_PLACE_SCRIPT = """
import importlib.abc, sys

class _NoInstalledDataModel(importlib.abc.MetaPathFinder):
    # What a source checkout imported in place looks like: the checkout's gaiarvs_cnn
    # package comes first on sys.path and has no catalog_model subpackage (that name
    # exists only in an installed copy, mapped from <repository>/catalog/).
    def find_spec(self, name, path=None, target=None):
        if name == "gaiarvs_cnn.catalog_model":
            raise ModuleNotFoundError(name)
        return None

sys.meta_path.insert(0, _NoInstalledDataModel())
import importlib
dm = importlib.import_module("gaiarvs_cnn.catalog.datamodel")
assert dm.__file__.startswith(sys.argv[1]), dm.__file__
print(len(dm.catalog_columns()))
"""


def test_datamodel_is_found_from_a_source_checkout_imported_in_place():
    # CI runs ``python -m pytest`` in the clone after ``pip install .``: the clone's
    # package shadows the installed one, and gaiarvs_cnn.catalog_model cannot be imported.
    import subprocess
    import sys

    root = Path(gaiarvs_cnn.__file__).resolve().parent.parent
    if not (root / "catalog" / "datamodel.json").is_file():
        pytest.skip("gaiarvs_cnn is imported from an installed copy, not a source checkout")
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", _IN_PLACE_SCRIPT, str(root)],
                         capture_output=True, text=True, env=env, cwd=root, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["17"]


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
    assert back["teff"].unit == u.K
    assert back["logg"].unit == u.dex(u.cm / u.s**2)
    assert back["feh"].unit == u.dex
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
    # dex is not a FITS unit (a TUNITn 'dex' makes astropy warn): K in TUNITn, dex in the
    # description for other readers and in astropy's serialized-column header
    assert head["TUNIT2"] == "K" and "TUNIT5" not in head
    assert head["TCOMM5"].endswith("[dex(cm/s2)]")
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

    monkeypatch.setattr("gaiarvs_cnn.catalog.votable.VOTableWriter._append", disk_full)
    with pytest.raises(CatalogWriteError, match="No space left"):
        write_catalog(table, path, overwrite=True)
    assert path.read_text() == "earlier catalogue"
    assert sorted(os.listdir(tmp_path)) == ["cat.vot"]


@pytest.mark.parametrize("step", ["_open", "_close"])
def test_full_disk_on_opening_or_closing_leaves_earlier_catalogue_and_no_temporary(
        table, tmp_path, monkeypatch, step):
    path = tmp_path / "cat.vot"
    path.write_text("earlier catalogue")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(f"gaiarvs_cnn.catalog.votable.VOTableWriter.{step}", disk_full)
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


# ---------------------------------------------------------------------------------------
# every format, streamed, read back by plain astropy (issue 14) and atomic (issue 19)
# ---------------------------------------------------------------------------------------
ALL_SUFFIXES = [".fits", ".vot", ".ecsv", ".parquet"]


def _streamed(table, path, **meta):
    with open_writer(path, meta={**table.meta, **meta}) as writer:
        for start in range(0, len(table), 4):          # chunks of 4 rows, the last of 2
            writer.write(table[start:start + 4])
    return path


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_plain_table_read_of_every_format_has_the_data_model_and_no_warning(
        table, tmp_path, suffix):
    path = _streamed(table, tmp_path / f"cat{suffix}", input_selection="gaia_dr3 G<13")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = Table.read(path)
    assert back.colnames == TABLE2_ORDER
    for spec in catalog_columns():
        col = back[spec["name"]]
        assert col.unit == (u.Unit(spec["unit"]) if spec["unit"] else None), spec["name"]
        assert col.description == spec["description"], spec["name"]
        assert col.meta["ucd"] == spec["ucd"], spec["name"]
    assert back["logg"].unit == u.dex(u.cm / u.s**2) and back["mh"].unit == u.dex
    assert back["flag_boundary"].dtype == np.dtype("U8")
    # round trip: every value equal
    for name in TABLE2_ORDER:
        np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(table[name]))
        assert back[name].dtype.str[1:] == table[name].dtype.str[1:]     # any byte order
    # provenance: version, bundle, selection, date, counts
    meta = back.meta if suffix != ".vot" else {"all": back.meta["description"]}
    text = " ".join(f"{k} = {v}" for k, v in meta.items())
    for expected in (f"SWVERS = {gaiarvs_cnn.__version__}", "BUNDLEID = 0123abcd",
                     "INPUTSEL = gaia_dr3 G<13", "NSTARS = 6", "NGOOD = 2", "DATE = 20"):
        assert " ".join(expected.split()) in " ".join(text.split()), expected
    full = read_catalog(path)
    assert int(full.meta["NSTARS"]) == 6 and int(full.meta["NGOOD"]) == 2
    assert full.meta["BUNDLEID"] == "0123abcd"


def test_fits_file_passes_the_fits_verifier_and_its_checksums(table, tmp_path):
    entry = {"input_selection": {"source": "store", "cuts": "x" * 150}}   # CONTINUE cards
    path = _streamed(table, tmp_path / "cat.fits", **entry)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(path, checksum=True) as hdul:
            hdul.verify("exception")
            head = hdul[1].header
            assert hdul[0].header["LONGSTRN"] == "OGIP 1.0" == head["LONGSTRN"]
            assert head["NAXIS2"] == 6 and len(hdul[1].data) == 6
            assert head["TCOMM17"] == catalog_columns()[-1]["description"]      # not cut
            assert "x" * 150 in head["INPUTSEL"]
    assert path.stat().st_size % 2880 == 0


def test_votable_passes_the_votable_validator(table, tmp_path):
    import io

    from astropy.io.votable import validate

    path = _streamed(table, tmp_path / "cat.vot")
    report = io.StringIO()
    assert validate(str(path), output=report), report.getvalue()
    vtab = parse_single_table(str(path))
    assert {f.name: f.unit for f in vtab.fields}["logg"] == u.dex(u.cm / u.s**2)


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_streamed_and_one_shot_files_hold_the_same_rows(table, tmp_path, suffix):
    one = write_catalog(table, tmp_path / f"one{suffix}")
    many = _streamed(table, tmp_path / f"many{suffix}")
    a, b = read_catalog(one), read_catalog(many)
    for name in TABLE2_ORDER:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]))


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_an_error_inside_the_block_leaves_the_earlier_file_and_no_temporary(
        table, tmp_path, suffix):
    path = tmp_path / f"cat{suffix}"
    path.write_text("earlier catalogue")
    with pytest.raises(RuntimeError, match="crash"):
        with open_writer(path, overwrite=True) as writer:
            writer.write(table)
            raise RuntimeError("crash in the middle of a merge")
    assert path.read_text() == "earlier catalogue"
    assert sorted(os.listdir(tmp_path)) == [path.name]
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        with open_writer(path):
            pass


def test_writer_refuses_a_bad_flag_naming_the_star(table, tmp_path):
    bad = table.copy()
    bad["flag_boundary"] = bad["flag_boundary"].astype("U9")
    bad["flag_boundary"][3] = "0000001"
    with pytest.raises(InputDataError, match=f"source_id {bad['source_id'][3]}"):
        with open_writer(tmp_path / "cat.fits") as writer:
            writer.write(bad)
    assert not os.listdir(tmp_path)
    with pytest.raises(InputDataError, match="columns"):
        with open_writer(tmp_path / "cat.ecsv") as writer:
            writer.write(table["source_id", "teff"])


def test_format_registry_parses_lists_and_suffixes(tmp_path):
    assert CATALOG_FORMATS["parquet"] == ".parquet" and CATALOG_FORMATS["ecsv"] == ".ecsv"
    assert parse_formats("both") == ["fits", "votable"]
    assert parse_formats("fits,votable, parquet") == ["fits", "votable", "parquet"]
    assert parse_formats(["ecsv", "ecsv"]) == ["ecsv"]
    with pytest.raises(InputDataError, match="Unknown catalogue format 'hdf5'"):
        parse_formats("fits,hdf5")
    assert [p.name for p in output_paths(tmp_path, "ecsv,parquet")] == [
        "gaiarvs_cnn_catalog.ecsv", "gaiarvs_cnn_catalog.parquet"]
    assert format_of("x/CAT.FITS.GZ") == "fits" and format_of("c.xml") == "votable"
    with pytest.raises(InputDataError, match="Cannot tell the catalogue format"):
        format_of("cat.txt")


@pytest.mark.parametrize("suffix", [".fits", ".ecsv"])
def test_read_catalog_zero_pads_integer_flags_of_the_paper(table, tmp_path, suffix):
    paper = Table(table, copy=True)
    paper["flag_boundary"] = np.array([int(f) for f in FLAGS], dtype=np.int64)
    path = tmp_path / f"paper{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # astropy: 'dex' is not a FITS unit
        paper.write(path)
    back = read_catalog(path)
    assert back["flag_boundary"].tolist() == FLAGS.tolist()
    assert back["logg"].unit == u.dex(u.cm / u.s**2)


def test_read_catalog_names_the_file_and_column_of_a_foreign_catalogue(table, tmp_path):
    wide = Table(table, copy=True)
    wide["flag_boundary"] = np.array([f + "0" for f in FLAGS])
    path = tmp_path / "foreign.ecsv"
    wide.write(path)
    with pytest.raises(InputDataError, match=r"foreign\.ecsv: column flag_boundary"):
        read_catalog(path)
    text = Table(table, copy=True)
    text["teff"] = np.array(["hot"] * len(text))
    text.write(tmp_path / "text.parquet")
    with pytest.raises(InputDataError, match=r"text\.parquet: column teff"):
        read_catalog(tmp_path / "text.parquet")
    (tmp_path / "junk.fits").write_bytes(b"not a FITS file")
    with pytest.raises(InputDataError, match=r"junk\.fits"):
        read_catalog(tmp_path / "junk.fits")


@pytest.mark.parametrize("suffix", ALL_SUFFIXES)
def test_nan_and_infinite_labels_round_trip(table, tmp_path, suffix):
    odd = Table(table, copy=True)
    odd["teff"][0], odd["sigma_logg"][1], odd["feh"][2] = np.nan, np.inf, -1e-30
    back = read_catalog(_streamed(odd, tmp_path / f"cat{suffix}"))
    for name in TABLE2_ORDER:
        np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(odd[name]))


def test_cli_writes_a_list_of_formats_that_read_back_equal(tiny_observed_store, tiny_bundle,
                                                           tmp_path):
    from click.testing import CliRunner

    from gaiarvs_cnn.cli import main

    result = CliRunner().invoke(main, [
        "predict", "--store", str(tiny_observed_store), "--model", str(tiny_bundle),
        "--out", str(tmp_path), "--format", "fits,ecsv,parquet", "--limit", "30", "--quiet"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert names == ["gaiarvs_cnn_catalog.ecsv", "gaiarvs_cnn_catalog.fits",
                     "gaiarvs_cnn_catalog.parquet"]
    first, *others = [read_catalog(tmp_path / n) for n in names]
    for other in others:
        for name in TABLE2_ORDER:
            np.testing.assert_array_equal(np.asarray(other[name]), np.asarray(first[name]))
    bad = CliRunner().invoke(main, ["predict", "--store", str(tiny_observed_store), "--out",
                                    str(tmp_path / "x"), "--format", "fits,hdf5"])
    assert bad.exit_code == 2 and "Unknown catalogue format 'hdf5'" in bad.output


def test_pandas_reads_ecsv_and_parquet_with_text_flags(table, tmp_path):
    pd = pytest.importorskip("pandas")
    write_catalog(table, tmp_path / "cat.ecsv")
    write_catalog(table, tmp_path / "cat.parquet")
    ecsv = pd.read_csv(tmp_path / "cat.ecsv", comment="#", sep=" ",
                       dtype={"flag_boundary": str})               # as docs/datamodel.rst
    parquet = pd.read_parquet(tmp_path / "cat.parquet")
    for frame in (ecsv, parquet):
        assert list(frame.columns) == TABLE2_ORDER
        assert frame["flag_boundary"].tolist() == FLAGS.tolist()
        np.testing.assert_array_equal(frame["source_id"], table["source_id"])
        np.testing.assert_array_equal(frame["logg"].astype(np.float32), table["logg"])


@pytest.mark.parametrize("suffix", [".fits", ".vot"])
def test_read_catalog_reads_files_of_the_earlier_writer(table, suffix):
    old = read_catalog(Path(__file__).parents[1] / "data" / f"catalog_4a1b5a8{suffix}")
    assert old.colnames == TABLE2_ORDER
    assert old["logg"].unit == u.dex(u.cm / u.s**2) and old["mh"].unit == u.dex
    assert old["flag_boundary"].dtype == np.dtype("U8")
    assert old["flag_boundary"].tolist() == FLAGS.tolist()
    assert old["teff"].meta["ucd"] == "phys.temperature.effective"
    assert old.meta["BUNDLEID"] == "0123abcd" and str(old.meta["INPUTSEL"]) == "x<1"
    for name in TABLE2_ORDER[:-1]:
        np.testing.assert_array_equal(np.asarray(old[name]), np.asarray(table[name]))


def test_validate_names_the_file_and_columns_of_a_foreign_catalogue(tmp_path):
    from click.testing import CliRunner

    from gaiarvs_cnn.cli import main

    Table({"source_id": [1, 2], "teff": [1.0, 2.0]}).write(tmp_path / "foreign.fits")
    result = CliRunner().invoke(main, ["validate", "--catalog", str(tmp_path / "foreign.fits"),
                                       "--out", str(tmp_path / "report")])
    assert result.exit_code != 0
    assert "foreign.fits lacks catalogue column(s)" in result.output and "logg" in result.output
    assert "Traceback" not in result.output


def test_cfitsio_reads_units_descriptions_data_and_verifies_the_checksums(table, tmp_path):
    fitsio = pytest.importorskip("fitsio")          # cfitsio: a reader that is not astropy
    path = _streamed(table, tmp_path / "cat.fits", input_selection="x" * 150)
    with fitsio.FITS(str(path)) as fits_file:
        for hdu in fits_file:
            hdu.verify_checksum()                      # raises ValueError on a bad sum
        head = fits_file[1].read_header()
        data = fits_file[1].read()
    assert head["TUNIT2"] == "K" and head["TUCD5"] == "phys.gravity"
    assert head["TCOMM5"] == "Surface gravity log10(g / (cm s-2)) [dex(cm/s2)]"
    assert head["INPUTSEL"] == "x" * 150 and head["NSTARS"] == 6
    assert data["flag_boundary"].tolist() == FLAGS.tolist()
    for name in TABLE2_ORDER[:-1]:
        np.testing.assert_array_equal(data[name], np.asarray(table[name]))


def test_a_writer_with_a_row_limit_refuses_beyond_it_and_names_parquet(table, tmp_path):
    from gaiarvs_cnn.catalog.fits import FITSWriter

    class SmallWriter(FITSWriter):
        max_rows = 4

    with pytest.raises(InputDataError, match="at most 4 rows.*Parquet"):
        with SmallWriter(tmp_path / "cat.fits") as writer:
            writer.write(table[:4])
            writer.write(table[4:])
    assert not os.listdir(tmp_path)


def test_flag_text_is_the_one_flag_check_of_writers_and_readers():
    from gaiarvs_cnn.catalog import flag_text

    flags, bad = flag_text(np.array([0, 10000, 11111111]))
    assert flags.tolist() == ["00000000", "00010000", "11111111"] and bad is None
    assert flag_text(np.array([b"00000001"]))[0].tolist() == ["00000001"]
    for odd in (["000000000"], ["0000002x"], [12], [-1]):
        assert flag_text(np.array(odd))[1] == 0, odd


def test_votable_is_valid_against_the_ivoa_votable_1_3_schema(table, tmp_path):
    etree = pytest.importorskip("lxml.etree")
    import astropy.io.votable

    xsd = Path(astropy.io.votable.__file__).parent / "data" / "VOTable.v1.3.xsd"
    schema = etree.XMLSchema(etree.parse(str(xsd)))     # astropy's copy of the IVOA XSD
    path = _streamed(table, tmp_path / "cat.vot", input_selection="a & b < c")
    assert schema.validate(etree.parse(str(path))), list(schema.error_log)


def test_fits_provenance_with_a_non_ascii_bundle_path_is_written(table, tmp_path):
    """A bundle folder 'modèle' crashed the FITS header after all the work (issue 27)."""
    path = write_catalog(table, tmp_path / "cat.fits", provenance={"bundle": "/data/modèle"})
    with fits.open(path) as hdul:
        assert hdul[0].header["BUNDLE"] == "/data/mod\\xe8le"
    assert len(read_catalog(path)) == 6
