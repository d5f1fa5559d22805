"""Tests of the readers of gaiarvs_cnn.io on real Gaia DR3 products (tests/data/gaia_real/).

Bulk-download files do not exist among the fixtures: they are written here from the real
RVS/XP values with the DR3 bulk layout (ECSV '#' header, one star per row, arrays as
"[v1,v2,...]" strings with ``null`` for missing values).
"""
import gzip
import io
import json
import math
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy import log
from astropy.io import votable
from astropy.io.votable import from_table
from astropy.io.votable.tree import Param
from astropy.table import Table
from click.testing import CliRunner

from gaiarvs_cnn.cli import main
from gaiarvs_cnn.constants import RVS_NPIX
from gaiarvs_cnn.exceptions import (
    BadStarError,
    DuplicateSourceError,
    InputDataError,
    OutputExistsError,
)
from gaiarvs_cnn.io.batch import StarBatch
from gaiarvs_cnn.io.bulk_csv import iter_bulk_rvs, iter_bulk_xp
from gaiarvs_cnn.io.datalink import read_datalink_products, read_products
from gaiarvs_cnn.io.gaia_source import PHOT_COLUMNS, gaia_source_to_batch, merge_on_source_id
from gaiarvs_cnn.io.ingest import bulk_to_store, ingest_to_store
from gaiarvs_cnn.io.spectra import XP_COLUMNS, read_rvs_datalink, read_xp_continuous
from gaiarvs_cnn.io.store import Store

DATA = Path(__file__).parents[1] / "data" / "gaia_real"
CSV = DATA / "rvs_datalink_csv"
FITS = DATA / "rvs_datalink_fits"
XP = DATA / "xp_continuous"
AQ = DATA / "astroquery_gaia"
KOI, HD = 2131314401800665344, 4268620287278693120
FITS_IDS = {1496482535683660800: 4, 863983115982280448: 83}   # source_id: NaN flux pixels
XP_IDS = [5853498713190525696, 5762406957886626816]
BUNDLE_ID = 5937083312263887616
FITS_863 = FITS / "RVS-Gaia DR3 863983115982280448.fits"


# ---------------------------------------------------------------------------------------
# RVS DataLink products
# ---------------------------------------------------------------------------------------
def test_rvs_csv_long_format_real_star():
    batch = read_rvs_datalink(CSV / "KOI-001.csv")
    assert batch["source_id"].tolist() == [KOI]
    assert batch["flux"].shape == (1, RVS_NPIX)
    assert np.isnan(batch["flux"]).sum() == 4                 # README: 4 empty flux cells
    assert batch["flux"][0, 0] == pytest.approx(0.98698866)
    assert batch["flux_error"][0, 1] == pytest.approx(0.03540811)
    assert batch["ra"][0] == pytest.approx(286.8085269791958)
    assert batch["dec"][0] == pytest.approx(49.31642128806585)
    assert np.isnan(read_rvs_datalink(CSV / "HD176650.csv")["flux"]).sum() == 0


def test_rvs_csv_with_several_stars_in_one_file(tmp_path):
    koi = (CSV / "KOI-001.csv").read_text().splitlines()
    hd = (CSV / "HD176650.csv").read_text().splitlines()
    both = tmp_path / "two stars.csv"
    both.write_text("\n".join(hd + koi[1:]) + "\n")
    batch = read_rvs_datalink(both)
    assert batch["source_id"].tolist() == [HD, KOI]
    np.testing.assert_array_equal(batch["flux"][1], read_rvs_datalink(CSV / "KOI-001.csv")[
        "flux"][0])


@pytest.mark.parametrize("path", sorted(FITS.glob("*.fits")), ids=lambda p: p.name)
def test_rvs_fits_datalink_with_spaces_in_name(path):
    batch = read_rvs_datalink(path)
    sid = int(batch["source_id"][0])
    assert str(sid) in path.name
    assert np.isnan(batch["flux"]).sum() == FITS_IDS[sid]
    assert batch["flux"].shape == (1, RVS_NPIX)


def test_rvs_fits_header_position_and_file_objects():
    batch = read_rvs_datalink(FITS_863)
    assert batch["ra"][0] == pytest.approx(171.73868230239532)
    assert batch["dec"][0] == pytest.approx(63.94038039122314)
    raw = FITS_863.read_bytes()
    from_bytes = read_rvs_datalink(io.BytesIO(raw))           # format from the content
    np.testing.assert_array_equal(from_bytes["flux"], batch["flux"])
    with open(FITS_863, "rb") as fh:
        assert read_rvs_datalink(fh, format="fits")["source_id"][0] == 863983115982280448


def _koi_table():
    return Table.read(CSV / "KOI-001.csv", format="ascii.csv")


def test_rvs_ecsv_long_format_in_angstrom_is_converted(tmp_path):
    table = _koi_table()
    table["wavelength"] = table["wavelength"] * 10.0
    table["wavelength"].unit = "Angstrom"
    table.write(tmp_path / "koi.ecsv")
    batch = read_rvs_datalink(tmp_path / "koi.ecsv")
    expected = read_rvs_datalink(CSV / "KOI-001.csv")
    np.testing.assert_array_equal(batch["flux"], expected["flux"])
    assert np.isnan(batch["flux_error"]).sum() == 4


def test_rvs_votable_long_format_uses_names_over_ids(tmp_path):
    buf = io.BytesIO()
    from_table(_koi_table()).to_xml(buf)
    # archive VOTables carry FIELD IDs that differ from the column names
    text = re.sub(r'ID="(\w+)"', lambda m: f'ID="c_{m.group(1)}"', buf.getvalue().decode())
    path = tmp_path / "RVS koi.vot"
    path.write_text(text)
    batch = read_rvs_datalink(path)
    assert batch["source_id"].tolist() == [KOI]
    assert np.isnan(batch["flux"]).sum() == 4


def _param_votable(path, flux_table, sid, ra, dec):
    """An RVS VOTable as the archive's COMBINED/INDIVIDUAL DataLink: ids in PARAMs."""
    vot = from_table(flux_table)
    te = vot.get_first_table()
    te.params.append(Param(vot, name="source_id", datatype="long", value=sid))
    te.params.append(Param(vot, name="spatialLocation", datatype="double", arraysize="2",
                           value=[ra, dec]))
    vot.to_xml(str(path))


def test_rvs_votable_with_source_id_param(tmp_path):
    fits_table = Table.read(FITS_863, hdu=1)
    path = tmp_path / "RVS-Gaia DR3 863983115982280448.xml"
    _param_votable(path, fits_table, 863983115982280448, 171.5, 63.5)
    batch = read_rvs_datalink(path)
    assert batch["source_id"].tolist() == [863983115982280448]
    assert (batch["ra"][0], batch["dec"][0]) == (171.5, 63.5)
    assert np.isnan(batch["flux"]).sum() == 83


def test_rvs_ecsv_with_source_id_in_meta(tmp_path):
    # the archive's INDIVIDUAL ECSV products keep source_id/spatialLocation in the meta
    table = Table.read(FITS_863, hdu=1)
    table.meta = {"source_id": 863983115982280448, "spatialLocation": [171.25, 63.75]}
    table.write(tmp_path / "RVS-Gaia DR3 863983115982280448.ecsv")
    batch = read_rvs_datalink(tmp_path / "RVS-Gaia DR3 863983115982280448.ecsv")
    assert batch["source_id"].tolist() == [863983115982280448]
    assert (batch["ra"][0], batch["dec"][0]) == (171.25, 63.75)
    np.testing.assert_array_equal(batch["flux"], read_rvs_datalink(FITS_863)["flux"])


def _bad_csv(tmp_path, edit):
    """KOI-001 + HD176650 in one CSV, KOI's rows edited by ``edit(list_of_rows)``."""
    header, *koi = (CSV / "KOI-001.csv").read_text().splitlines()
    hd = (CSV / "HD176650.csv").read_text().splitlines()[1:]
    path = tmp_path / "bad.csv"
    path.write_text("\n".join([header, *edit(koi), *hd]) + "\n")
    return path


def _blank_flux(rows):
    return [",".join(r.split(",")[:5] + ["", ""] + r.split(",")[7:]) for r in rows]


def _shift_grid(rows):
    return [",".join(r.split(",")[:4] + [f"{float(r.split(',')[4]) + 0.005:.3f}"]
                     + r.split(",")[5:]) for r in rows]


@pytest.mark.parametrize("edit, problem", [
    (lambda rows: rows[:-1], "2400 pixels"),
    (_shift_grid, "wavelength grid differs"),
    (_blank_flux, "all-NaN RVS spectrum"),
], ids=["pixel-count", "grid", "all-nan"])
def test_bad_rvs_star_raises_or_is_skipped(tmp_path, edit, problem):
    path = _bad_csv(tmp_path, edit)
    with pytest.raises(BadStarError, match=f"Gaia DR3 {KOI}.*{problem}") as info:
        read_rvs_datalink(path)
    assert info.value.source_id == KOI
    assert "bad.csv" in str(info.value)
    with log.log_to_list() as messages:
        batch = read_rvs_datalink(path, on_error="skip")
    assert batch["source_id"].tolist() == [HD]                 # the good star survives
    assert any(str(KOI) in m.message for m in messages)


def test_unreadable_file_names_the_file(tmp_path):
    bad = tmp_path / "RVS-Gaia DR3 1.fits"
    bad.write_bytes(b"SIMPLE  = garbage")
    with pytest.raises(InputDataError, match="RVS-Gaia DR3 1.fits"):
        read_rvs_datalink(bad)
    with pytest.raises(InputDataError, match="nothere.csv"):
        read_rvs_datalink(tmp_path / "nothere.csv")
    with pytest.raises(InputDataError, match="SOURCEID"):
        read_rvs_datalink(io.BytesIO(b"wavelength,flux,flux_error\n846.0,1.0,0.1\n"))
    # with on_error='skip' a multi-file read logs the unreadable file and goes on
    batch = read_products([bad, CSV / "HD176650.csv"], "RVS", on_error="skip")
    assert batch["source_id"].tolist() == [HD]


def test_duplicated_source_id_across_files(tmp_path):
    copy = tmp_path / "copy.fits"
    shutil.copy(FITS_863, copy)
    with pytest.raises(DuplicateSourceError, match="863983115982280448"):
        read_products([FITS_863, copy], "RVS")
    batch = read_products([FITS_863, copy, CSV / "KOI-001.csv"], "RVS", on_error="skip")
    assert batch["source_id"].tolist() == [863983115982280448, KOI]


# ---------------------------------------------------------------------------------------
# XP continuous
# ---------------------------------------------------------------------------------------
def test_xp_continuous_all_formats_agree():
    batches = [read_xp_continuous(XP / f"XP_CONTINUOUS_RAW.{ext}")
               for ext in ("csv", "ecsv", "xml")]
    for batch in batches:
        assert batch["source_id"].tolist() == XP_IDS
        assert batch["bp_coefficients"].shape == (2, 55)
        assert batch["bp_coefficients"][0, 0] == pytest.approx(56947.03696840172)
        assert batch["bp_coefficients"][0, 1] == pytest.approx(13812.466168611605)
        assert batch["bp_coefficient_errors"][0, 0] == pytest.approx(55.701263)
        for col in XP_COLUMNS:
            np.testing.assert_allclose(batch[col], batches[0][col], rtol=1e-6)
        assert np.isfinite(batch["rp_coefficients"]).all()


def _xp_csv_with(tmp_path, new):
    text = (XP / "XP_CONTINUOUS_RAW.csv").read_text()
    first = text.index('"(')
    end = text.index(')"', first) + 2
    path = tmp_path / "xp.csv"
    path.write_text(text[:first] + new(text[first:end]) + text[end:])
    return path


def test_xp_missing_or_short_coefficients(tmp_path):
    missing = _xp_csv_with(tmp_path, lambda cell: '""')
    with pytest.raises(BadStarError, match=f"Gaia DR3 {XP_IDS[0]}.*missing.*bp_coefficients"):
        read_xp_continuous(missing)
    assert read_xp_continuous(missing, on_error="skip")["source_id"].tolist() == XP_IDS[1:]
    short = _xp_csv_with(tmp_path, lambda cell: cell[:cell.rindex(",")] + ')"')
    with pytest.raises(BadStarError, match="54 values.*expected 55"):
        read_xp_continuous(short)


# ---------------------------------------------------------------------------------------
# DataLink bundles
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["csv", "fits", "vot"])
def test_datalink_zip_bundles(kind):
    with log.log_to_list() as messages:
        products = read_datalink_products(
            AQ / f"gaia_dr3_source_id_{BUNDLE_ID}_dl_products_{kind}.zip")
    assert set(products) == {"RVS", "XP_CONTINUOUS"}
    assert len(products["RVS"]) == 0                          # no RVS product in the bundle
    xp = products["XP_CONTINUOUS"]
    assert xp["source_id"].tolist() == [BUNDLE_ID]
    assert xp["bp_coefficients"][0, 0] == pytest.approx(3325.743093963916)
    assert np.isfinite(xp["rp_coefficient_errors"]).all()
    ignored = " ".join(m.message for m in messages)
    assert "XP_SAMPLED" in ignored and "MCMC_MSC" in ignored


def test_datalink_directory_and_astroquery_dict(tmp_path):
    with zipfile.ZipFile(AQ / f"gaia_dr3_source_id_{BUNDLE_ID}_dl_products_vot.zip") as z:
        z.extractall(tmp_path)
    shutil.copy(FITS_863, tmp_path / FITS_863.name)
    products = read_datalink_products(tmp_path)
    assert products["RVS"]["source_id"].tolist() == [863983115982280448]
    assert products["XP_CONTINUOUS"]["source_id"].tolist() == [BUNDLE_ID]
    # astroquery's Gaia.load_data: file name -> list of VOTable TableElements / Tables
    loaded = {p.name: list(votable.parse(str(p), verify="ignore").iter_tables())
              for p in tmp_path.glob("*.xml")}
    loaded[FITS_863.name] = [Table.read(FITS_863, hdu=1)]
    products = read_datalink_products(loaded)
    assert products["RVS"]["source_id"].tolist() == [863983115982280448]
    np.testing.assert_allclose(products["XP_CONTINUOUS"]["bp_coefficients"][0, 0],
                               3325.743093963916)


# ---------------------------------------------------------------------------------------
# gaia_source and merging
# ---------------------------------------------------------------------------------------
def test_gaia_source_votable_upper_case_source_id():
    batch = gaia_source_to_batch(AQ / "1710099405832VAL-result.vot")
    assert batch["source_id"].tolist() == [4583627001381815936, 5348723816842275584]
    assert batch["phot_g_mean_mag"][0] == pytest.approx(7.01201868057251)
    assert batch["phot_g_mean_mag_error"][0] == pytest.approx(
        2.5 / math.log(10) / 584.2872314453125, rel=1e-6)
    assert batch["phot_bp_mean_mag_error"][1] == pytest.approx(
        2.5 / math.log(10) / 41.85427474975586, rel=1e-6)
    assert batch["parallax"][1] == pytest.approx(1.0704678100897584)
    assert batch["parallax_error"][0] == pytest.approx(0.033337630331516266)
    assert batch["ruwe"][0] == pytest.approx(1.0828559398651123)
    assert batch["rvs_snr"][0] == pytest.approx(852.7974243164062)
    assert batch["ra"][1] == pytest.approx(171.55081173633306)


def test_gaia_source_bad_parallax_and_missing_columns():
    path = AQ / "1712337806100O-result.ecsv"
    with pytest.raises(BadStarError, match="6636090339112400000.*parallax"):
        gaia_source_to_batch(path)
    batch = gaia_source_to_batch(path, on_error="skip")
    assert batch["source_id"].tolist() == [6636090334814214528, 6636090339113063296,
                                           6636090334814217600]
    table = Table.read(path)
    table["parallax"][0] = -0.3
    assert 6636090334814214528 not in gaia_source_to_batch(table, on_error="skip")["source_id"]
    table.remove_column("phot_bp_mean_mag")
    with pytest.raises(InputDataError, match="phot_bp_mean_mag"):
        gaia_source_to_batch(table)


def test_merge_on_source_id_fills_and_logs_absent_stars():
    base = read_xp_continuous(XP / "XP_CONTINUOUS_RAW.ecsv")
    other = StarBatch({"source_id": [XP_IDS[1], 77], "parallax": [2.5, 9.0],
                       "phot_g_mean_mag": [12.0, 13.0]})
    with log.log_to_list() as messages:
        merged = merge_on_source_id(base, other, ["parallax", "phot_g_mean_mag"])
    assert np.isnan(merged["parallax"][0]) and merged["parallax"][1] == 2.5
    assert merged["phot_g_mean_mag"][1] == 12.0
    np.testing.assert_array_equal(merged["bp_coefficients"], base["bp_coefficients"])
    assert np.isnan(base["parallax"]).all()                     # base itself unchanged
    assert any(str(XP_IDS[0]) in m.message for m in messages)
    dup = StarBatch({"source_id": [77, 77]})
    with pytest.raises(DuplicateSourceError, match="77"):
        merge_on_source_id(base, dup, ["parallax"])


# ---------------------------------------------------------------------------------------
# bulk-download files, written from real values
# ---------------------------------------------------------------------------------------
_ECSV_TYPES = {"i": "int64", "f": "float64", "b": "bool"}


def _bulk_cell(value):
    if isinstance(value, np.ndarray):
        return json.dumps([None if not np.isfinite(v) else float(v) for v in value],
                          separators=(",", ":"))
    return "null" if isinstance(value, float) and not np.isfinite(value) else str(value)


def write_bulk(path, rows, array_columns):
    """Gaia DR3 bulk layout: ECSV YAML header behind '#', arrays as JSON strings."""
    names = list(rows[0])
    head = ["# %ECSV 1.0", "# ---", "# delimiter: ','", "# datatype:"]
    for name in names:
        head += ["# -", f"#   name: {name}"]
        if name in array_columns:
            head += ["#   datatype: string", "#   subtype: 'float32[null]'"]
        else:
            head += [f"#   datatype: {_ECSV_TYPES[np.asarray(rows[0][name]).dtype.kind]}"]
    head.append("# schema: astropy-2.0")
    buf = io.StringIO()
    writer = __import__("csv").writer(buf, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_bulk_cell(row[n]) for n in names])
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(head) + "\n" + buf.getvalue())
    return path


def _real_rvs_rows():
    rows = []
    for batch, meta in ((read_rvs_datalink(CSV / "KOI-001.csv"), (3, 7, 1)),
                        (read_rvs_datalink(CSV / "HD176650.csv"), (9, 27, 0)),
                        (read_rvs_datalink(FITS_863), (35, 90, 7))):
        rows.append({"solution_id": 5950420259779346465, "source_id": int(batch["source_id"][0]),
                     "ra": float(batch["ra"][0]), "dec": float(batch["dec"][0]),
                     "flux": batch["flux"][0], "flux_error": batch["flux_error"][0],
                     "combined_transits": meta[0], "combined_ccds": meta[1],
                     "deblended_ccds": meta[2]})
    return rows


def _real_xp_rows(source_ids):
    """Real XP coefficient rows (GaiaXPy fixture values) re-labelled with ``source_ids``."""
    table = Table.read(XP / "XP_CONTINUOUS_RAW.ecsv")
    rows = []
    for sid, rec in zip(source_ids, table):
        row = {}
        for name in table.colnames:
            value = rec[name]
            row[name] = (np.ma.filled(np.asarray(value, dtype=float), np.nan)
                         if name.endswith(("coefficients", "errors", "correlations"))
                         else value.item() if hasattr(value, "item") else value)
        row["source_id"] = sid
        rows.append(row)
    return rows


XP_ARRAYS = ("bp_coefficients", "bp_coefficient_errors", "bp_coefficient_correlations",
             "rp_coefficients", "rp_coefficient_errors", "rp_coefficient_correlations")


@pytest.fixture
def bulk_files(tmp_path):
    rvs_rows = _real_rvs_rows()
    bad = dict(rvs_rows[0], source_id=42, flux=np.full(RVS_NPIX, np.nan))   # all-null flux
    rvs = write_bulk(tmp_path / "RvsMeanSpectrum_000000-003111.csv.gz", rvs_rows + [bad],
                     ("flux", "flux_error"))
    xp = write_bulk(tmp_path / "XpContinuousMeanSpectrum_000000-003111.csv.gz",
                    _real_xp_rows([KOI, HD]), XP_ARRAYS)     # no XP for 863983115982280448
    return rvs, xp


def test_bulk_file_is_valid_ecsv(bulk_files):
    rvs, _ = bulk_files
    table = Table.read(rvs, format="ascii.ecsv")
    assert table.colnames == ["solution_id", "source_id", "ra", "dec", "flux", "flux_error",
                              "combined_transits", "combined_ccds", "deblended_ccds"]
    assert len(table["flux"][0]) == RVS_NPIX


def test_iter_bulk_rvs_streams_chunks_and_skips_bad_stars(bulk_files):
    rvs, _ = bulk_files
    chunks = list(iter_bulk_rvs(rvs, chunk_size=2, on_error="skip"))
    assert [c["source_id"].tolist() for c in chunks] == [[KOI, HD], [863983115982280448]]
    koi = read_rvs_datalink(CSV / "KOI-001.csv")
    np.testing.assert_array_equal(chunks[0]["flux"][0], koi["flux"][0])   # nulls -> NaN
    assert np.isnan(chunks[1]["flux"]).sum() == 83
    assert chunks[0]["ra"][1] == pytest.approx(285.29768315, abs=1e-8)
    with pytest.raises(BadStarError, match="Gaia DR3 42.*all-NaN"):
        list(iter_bulk_rvs(rvs, chunk_size=2))


def test_iter_bulk_is_lazy_and_names_corrupt_file(tmp_path, bulk_files):
    rvs, _ = bulk_files
    with gzip.open(rvs, "rt") as fh:
        text = fh.read()
    broken = tmp_path / "RvsMeanSpectrum_broken.csv.gz"
    with gzip.open(broken, "wt") as fh:
        fh.write(text + "not-a-number,1,2\n")
    chunks = iter_bulk_rvs(broken, chunk_size=1, on_error="skip")
    assert next(chunks)["source_id"].tolist() == [KOI]       # first chunk before the error
    with pytest.raises(InputDataError, match="RvsMeanSpectrum_broken.csv.gz"):
        list(chunks)


def test_iter_bulk_xp_reads_only_requested_stars(bulk_files):
    _, xp = bulk_files
    (only,) = list(iter_bulk_xp(xp, source_ids=[HD]))
    assert only["source_id"].tolist() == [HD]
    real = read_xp_continuous(XP / "XP_CONTINUOUS_RAW.ecsv")
    for col in XP_COLUMNS:
        np.testing.assert_allclose(only[col][0], real[col][1], rtol=1e-6)
    with pytest.raises(InputDataError, match=r"XpContinuousMeanSpectrum.*\['flux', 'flux_error'\]"):
        next(iter_bulk_rvs(xp))                               # wrong table


def _gaia_rows_for(ids):
    """The real gaia_source VOTable rows, re-labelled with ``ids`` (2 rows -> 2 stars)."""
    table = Table.read(AQ / "1710099405832VAL-result.vot")
    table = table[[0, 1, 1][:len(ids)]]
    table["SOURCE_ID"] = ids
    return table


def test_bulk_to_store_merges_xp_and_gaia_source(tmp_path, bulk_files):
    rvs, xp = bulk_files
    out = tmp_path / "bulk.h5"
    gaia = _gaia_rows_for([KOI, HD, 863983115982280448])
    bulk_to_store([rvs], [xp], out, gaia_source=gaia, chunk_size=2)
    with Store.open(out) as store:
        batch = store.read()
        meta = store.meta
    # 42 (all-NaN spectrum) is a bad star; 8639... has no XP: kept, with NaN XP (issue 24)
    assert batch["source_id"].tolist() == [KOI, HD, 863983115982280448]
    assert np.isnan(batch["bp_coefficients"][2]).all()
    assert batch["phot_g_mean_mag"][0] == pytest.approx(7.01201868057251)
    assert batch["rvs_snr"][1] == pytest.approx(525.4957275390625)
    np.testing.assert_allclose(batch["rp_coefficients"][1],
                               read_xp_continuous(XP / "XP_CONTINUOUS_RAW.csv")[
                                   "rp_coefficients"][1], rtol=1e-6)
    assert meta["n_stars"] == 3 and meta["n_skipped"] == 1
    assert meta["network_coverage"] == {"rvs+phot+xp": 2, "rvs+phot": 3, "rvs+xp": 2, "rvs": 3}
    with pytest.raises(OutputExistsError):
        bulk_to_store([rvs], [xp], out)
    with pytest.raises(BadStarError, match="Gaia DR3 42"):
        bulk_to_store([rvs], [xp], tmp_path / "strict.h5", on_error="raise")
    assert not list(tmp_path.glob("strict.h5*"))              # atomic: nothing left behind


def test_ingest_routes_bulk_files_to_bulk_to_store(tmp_path, bulk_files):
    rvs, xp = bulk_files
    out = ingest_to_store([rvs], [xp], tmp_path / "routed.h5", on_error="skip")
    with Store.open(out) as store:
        assert store.source_ids().tolist() == [KOI, HD, 863983115982280448]
        assert np.isnan(store.read()["parallax"]).all()        # no gaia_source given
        assert store.meta["network_coverage"]["rvs+xp"] == 2
        assert store.meta["inputs"]["rvs"] == [str(rvs)]


# ---------------------------------------------------------------------------------------
# ingest (library and CLI)
# ---------------------------------------------------------------------------------------
@pytest.fixture
def datalink_inputs(tmp_path):
    """Real RVS CSV + FITS files, XP values re-labelled to their ids, gaia_source rows."""
    xp = Table.read(XP / "XP_CONTINUOUS_RAW.ecsv")
    xp["source_id"] = [KOI, 863983115982280448]
    xp.write(tmp_path / "XP_CONTINUOUS-combined.ecsv")
    _gaia_rows_for([KOI, 863983115982280448]).write(tmp_path / "gaia_source.vot",
                                                     format="votable")
    return {"rvs": [CSV / "KOI-001.csv", FITS_863, CSV / "HD176650.csv"],
            "xp": [tmp_path / "XP_CONTINUOUS-combined.ecsv"],
            "gaia": tmp_path / "gaia_source.vot"}


@pytest.mark.filterwarnings("ignore::astropy.io.votable.exceptions.W50")
def test_ingest_to_store_from_datalink_products(tmp_path, datalink_inputs):
    out = tmp_path / "stars.h5"
    # HD 176650 has neither XP nor a gaia_source row: kept (an RVS-only network can use it)
    ingest_to_store(datalink_inputs["rvs"], datalink_inputs["xp"], out,
                    gaia_source=datalink_inputs["gaia"], on_error="raise")
    with Store.open(out) as store:
        batch = store.read()
    assert batch["source_id"].tolist() == [KOI, 863983115982280448, HD]
    assert np.isnan(batch["flux"][1]).sum() == 83
    assert batch["parallax"][1] == pytest.approx(1.0704678100897584)
    for col in PHOT_COLUMNS:
        assert np.isfinite(batch[col][:2]).all(), col
    assert np.isnan(batch["parallax"][2]) and np.isnan(batch["bp_coefficients"][2]).all()


@pytest.mark.filterwarnings("ignore::astropy.io.votable.exceptions.W50")
def test_cli_store_ingest_and_info(tmp_path, datalink_inputs):
    out = tmp_path / "cli.h5"
    args = ["store", "ingest", "--on-error", "skip", "-o", str(out),
            "--gaia-source", str(datalink_inputs["gaia"])]
    for path in datalink_inputs["rvs"]:
        args += ["--rvs", str(path)]
    args += ["--xp", str(datalink_inputs["xp"][0])]
    runner = CliRunner()
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "3 stars (0 skipped)" in result.output
    assert "Usable by networks with inputs: rvs+phot+xp 2, rvs+phot 2, rvs+xp 2, rvs 3" in \
        result.output
    result = runner.invoke(main, ["store", "info", str(out)])
    assert result.exit_code == 0, result.output
    assert "Stars: 3" in result.output
    assert re.search(r"parallax\s+float32\s+scalar\s+\[mas\]", result.output)
    assert "teff     0.000" in result.output
    assert "50%=689.1" in result.output                       # median of 852.8 and 525.5
    result = runner.invoke(main, ["store", "info", "--json", str(out)])
    assert json.loads(result.output)["meta"]["n_skipped"] == 0
    result = runner.invoke(main, args)                       # output exists
    assert result.exit_code != 0 and "overwrite" in result.output


def test_zip_bomb_bundle_is_refused_before_any_member_is_read(tmp_path):
    """A local DataLink zip whose member declares 64 MiB (about 64 kB zipped) is refused
    by its size budget, naming the member and the setting, before it is inflated."""
    from gaiarvs_cnn import conf
    from gaiarvs_cnn.archives.loopback import zip_bomb
    from gaiarvs_cnn.io.datalink import read_datalink_products

    bundle = tmp_path / "bomb.zip"
    bundle.write_bytes(zip_bomb(64 * 2 ** 20))
    with conf.set_temp("zip_member_max_bytes", 2 ** 20), pytest.raises(
            InputDataError, match=r"bomb.zip: member 'RVS-Gaia DR3 1.csv' inflates to "
                                  r"67108864 bytes.*conf.zip_member_max_bytes"):
        read_datalink_products(bundle, on_error="skip")
    with conf.set_temp("zip_max_bytes", 2 ** 20), pytest.raises(
            InputDataError, match=r"inflate to 67108864 bytes.*conf.zip_max_bytes"):
        read_datalink_products(bundle, on_error="skip")
