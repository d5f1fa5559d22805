"""Reliability of the readers, ingest and stores (issue 18): one test per defect found by the
adversarial sweep, on inputs built from the real Gaia DR3 files in ``tests/data/gaia_real``.
"""
import json
import logging
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from astropy import log
from astropy.table import Table

from gaiarvs_cnn import conf
from gaiarvs_cnn.exceptions import (
    BadStarError,
    GaiaRVSCNNError,
    InputDataError,
    OutputExistsError,
    StoreError,
)
from gaiarvs_cnn.io.batch import StarBatch
from gaiarvs_cnn.io.bulk_csv import iter_bulk_xp
from gaiarvs_cnn.io.cells import parse_source_id
from gaiarvs_cnn.io.datalink import read_datalink_products, read_products
from gaiarvs_cnn.io.gaia_source import gaia_source_to_batch
from gaiarvs_cnn.io.ingest import ingest_to_store
from gaiarvs_cnn.io.policy import BadStarPolicy, as_policy
from gaiarvs_cnn.io.products import classify_table
from gaiarvs_cnn.io.spectra import read_rvs_datalink, read_xp_continuous
from gaiarvs_cnn.io.store import Store, atomic_store
from gaiarvs_cnn.utils.atomic import is_temporary

DATA = Path(__file__).parent / "data" / "gaia_real"
CSV = DATA / "rvs_datalink_csv"
CSV_EXTRA = DATA / "rvs_datalink_csv_extra"
FITS = DATA / "rvs_datalink_fits"
XP = DATA / "xp_continuous"
AQ = DATA / "astroquery_gaia"
#: The six real RVS DataLink CSVs (none named RVS-*) and their source_ids.
SIX = {"GaiaDR3-1535964555128078720.csv": 1535964555128078720,
       "GaiaDR3-3174658066485297152.csv": 3174658066485297152,
       "HD176650.csv": 4268620287278693120, "KOI-001.csv": 2131314401800665344,
       "Kepler-409.csv": 2128215909315876352, "Kepler-93.csv": 2052747119115620352}
KOI = SIX["KOI-001.csv"]
XP_IDS = [5853498713190525696, 5762406957886626816]


def _bulk_writers(*names):
    """Helpers of ``tests/io/test_readers.py`` that write bulk files (loaded by path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_bulk_writers", Path(__file__).resolve().parent / "io" / "test_readers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(getattr(module, name) for name in names)


@pytest.fixture
def logs():
    """Messages logged by astropy's logger during the test."""
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(level=logging.DEBUG)
    log.addHandler(handler)
    yield records
    log.removeHandler(handler)


def _six_folder(tmp_path) -> Path:
    folder = tmp_path / "spectra"
    folder.mkdir()
    for name in SIX:
        shutil.copy(_csv(name), folder / name)
    return folder


def _csv(name: str) -> Path:
    return CSV / name if (CSV / name).exists() else CSV_EXTRA / name


def _xp_for(ids, path: Path) -> Path:
    """The real XP_CONTINUOUS rows, repeated and re-labelled to ``ids``."""
    xp = Table.read(XP / "XP_CONTINUOUS_RAW.ecsv")
    rows = xp[[i % len(xp) for i in range(len(ids))]]
    rows["source_id"] = list(ids)
    rows.write(path, overwrite=True)
    return path


def _gaia_for(ids, path: Path, drop=()) -> Path:
    t = Table({"source_id": list(ids), "ra": np.linspace(10, 20, len(ids)),
               "dec": np.linspace(-5, 5, len(ids)),
               "phot_g_mean_mag": np.full(len(ids), 11.0),
               "phot_bp_mean_mag": np.full(len(ids), 11.5),
               "phot_rp_mean_mag": np.full(len(ids), 10.4),
               "phot_g_mean_flux_over_error": np.full(len(ids), 2000.0),
               "phot_bp_mean_flux_over_error": np.full(len(ids), 800.0),
               "phot_rp_mean_flux_over_error": np.full(len(ids), 900.0),
               "parallax": np.full(len(ids), 1.5), "parallax_error": np.full(len(ids), 0.02),
               "ruwe": np.full(len(ids), 1.0), "rvs_spec_sig_to_noise": np.full(len(ids), 80.0)})
    t.remove_columns(list(drop))
    t.write(path, format="ascii.ecsv", overwrite=True)
    return path


def _extract_sampled(folder: Path) -> Path:
    """The real XP_SAMPLED product of the astroquery DataLink bundle, written to ``folder``."""
    name = "XP_SAMPLED-Gaia DR3 5937083312263887616.csv"
    with zipfile.ZipFile(AQ / "gaia_dr3_source_id_5937083312263887616_dl_products_csv.zip") as z:
        (folder / name).write_bytes(z.read(name))
    return folder / name


def _edit_csv(src: Path, dst: Path, edit) -> Path:
    lines = src.read_text().splitlines()
    dst.write_text("\n".join(edit(lines)) + "\n")
    return dst


def _set_flux(lines, pixels, value):
    """Replace the flux cell (column 6) of the given pixel rows."""
    out = list(lines)
    for k in pixels:
        cells = out[1 + k].split(",")
        cells[5] = value
        out[1 + k] = ",".join(cells)
    return out


# ---------------------------------------------------------------------------------------
# policy (issue 19's bad-star policy home)
# ---------------------------------------------------------------------------------------
def test_policy_default_comes_from_conf_and_records_reasons():
    assert BadStarPolicy().on_error == "raise"
    with conf.set_temp("on_error", "skip"):
        policy = as_policy(None)
    assert policy.on_error == "skip"
    policy.handle(BadStarError(7, "all-NaN RVS spectrum in x.csv."))
    assert policy.skipped == [7] and policy.reasons == [(7, "all-NaN RVS spectrum in x.csv.")]
    assert as_policy(policy) is policy
    with pytest.raises(ValueError, match="'raise' or 'skip'"):
        BadStarPolicy("ignore")


def test_io_messages_do_not_name_cli_flags():
    import gaiarvs_cnn.io as io_pkg

    for path in Path(io_pkg.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert "--overwrite" not in text and "--on-error" not in text, path.name
        assert "gaiarvs-cnn ingest" not in text and "`gaiarvs-cnn " not in text, path.name


# ---------------------------------------------------------------------------------------
# item 2: classification by content
# ---------------------------------------------------------------------------------------
def test_folder_of_real_rvs_csvs_not_named_rvs_is_read(tmp_path):
    batch = read_products([_six_folder(tmp_path)], "RVS")
    assert sorted(batch["source_id"].tolist()) == sorted(SIX.values())
    assert batch["flux"].shape == (6, 2401)


def test_ingest_of_the_six_real_csvs_writes_six_stars(tmp_path):
    folder = _six_folder(tmp_path)
    out = ingest_to_store([folder], [_xp_for(SIX.values(), tmp_path / "xp.ecsv")],
                          tmp_path / "six.h5", gaia_source=_gaia_for(SIX.values(),
                                                                     tmp_path / "gs.ecsv"))
    with Store.open(out) as store:
        assert sorted(store.source_ids().tolist()) == sorted(SIX.values())
        assert store.meta["n_skipped"] == 0


def test_mixed_folder_keeps_every_csv_and_names_unknown_files(tmp_path, logs):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(CSV / "KOI-001.csv", folder / "KOI-001.csv")
    shutil.copy(FITS / "RVS-Gaia DR3 863983115982280448.fits", folder)
    _extract_sampled(folder)
    (folder / "notes.txt").write_text("my observing notes\n")
    (folder / ".DS_Store").write_bytes(b"\x00\x01")
    with pytest.raises(InputDataError, match="notes.txt"):
        read_products([folder], "RVS", on_error="raise")
    batch = read_products([folder], "RVS", on_error="skip")
    assert sorted(batch["source_id"].tolist()) == sorted([KOI, 863983115982280448])
    assert any("notes.txt" in m for m in logs)
    assert any("XP_SAMPLED" in m and "XP sampled" in m for m in logs)


def test_classify_table_by_content(tmp_path):
    assert classify_table(Table.read(_csv("Kepler-93.csv"))) == "RVS"
    assert classify_table(Table.read(XP / "XP_CONTINUOUS_RAW.ecsv")) == "XP_CONTINUOUS"
    assert classify_table(Table.read(_extract_sampled(tmp_path))) == "XP_SAMPLED"
    assert classify_table(Table.read(AQ / "1712337806100O-result.ecsv")) == "GAIA_SOURCE"
    assert classify_table(Table({"a": [1]})) is None


def test_file_of_another_product_is_named(tmp_path):
    with pytest.raises(InputDataError, match="XP_CONTINUOUS_RAW.ecsv holds XP continuous"):
        read_products([XP / "XP_CONTINUOUS_RAW.ecsv"], "RVS")
    with pytest.raises(InputDataError, match="Kepler-93.csv holds RVS spectra"):
        read_xp_continuous(_csv("Kepler-93.csv"))
    with pytest.raises(InputDataError, match="KOI-001.csv holds RVS spectra, not gaia_source"):
        gaia_source_to_batch(CSV / "KOI-001.csv")


def test_header_only_rvs_file_is_an_error(tmp_path):
    path = _edit_csv(CSV / "KOI-001.csv", tmp_path / "header.csv", lambda lines: lines[:1])
    with pytest.raises(InputDataError, match="header.csv has a header but no rows"):
        read_rvs_datalink(path)
    with pytest.raises(InputDataError, match="header but no rows"):
        ingest_to_store([path], [], tmp_path / "out.h5", on_error="skip")
    assert not (tmp_path / "out.h5").exists()


def test_ingest_ending_with_zero_stars_is_an_error(tmp_path):
    out = tmp_path / "none.h5"
    # both spectra are not normalised: bad stars, skipped, and nothing is left to write
    # (stars lacking only XP coefficients are kept since issue 24: not bad stars)
    bad = [_edit_csv(CSV / name, tmp_path / name, lambda lines: _set_flux(lines, range(2401),
                                                                           "2.9"))
           for name in ("KOI-001.csv", "HD176650.csv")]
    with pytest.raises(InputDataError, match=r"No star to write.*2 bad star\(s\) skipped"):
        ingest_to_store(bad, [_xp_for([1, 2], tmp_path / "xp.ecsv")], out, on_error="skip")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if is_temporary(p)]


# ---------------------------------------------------------------------------------------
# item 4: physical sanity
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, pixels, problem", [
    ("1e30", [1200], "infinite or absurd"),
    ("inf", [40], "infinite or absurd"),
    ("-0.5", range(100, 120), "20 negative"),
    ("2.9", range(0, 2401), "not normalised"),
])
def test_implausible_flux_is_a_bad_star(tmp_path, logs, value, pixels, problem):
    bad = _edit_csv(_csv("Kepler-93.csv"), tmp_path / "bad.csv",
                    lambda lines: _set_flux(lines, pixels, value))
    with pytest.raises(BadStarError, match=problem) as err:
        read_rvs_datalink(bad)
    assert err.value.source_id == SIX["Kepler-93.csv"]
    policy = BadStarPolicy("skip")
    batch = read_products([bad, CSV / "KOI-001.csv"], "RVS", policy)
    assert batch["source_id"].tolist() == [KOI]
    assert policy.skipped == [SIX["Kepler-93.csv"]]
    assert any(str(SIX["Kepler-93.csv"]) in m and problem in m for m in logs)


def test_a_few_negative_pixels_and_real_nan_pixels_are_kept(tmp_path):
    few = _edit_csv(_csv("Kepler-93.csv"), tmp_path / "few.csv",
                    lambda lines: _set_flux(lines, [10, 20, 30], "-0.01"))
    assert len(read_rvs_datalink(few)) == 1
    fits = read_rvs_datalink(FITS / "RVS-Gaia DR3 863983115982280448.fits")
    assert np.isnan(fits["flux"]).sum() == 83


# ---------------------------------------------------------------------------------------
# item 5: per-star handling of malformed cells and designations
# ---------------------------------------------------------------------------------------
def test_gaia_designation_is_parsed():
    assert parse_source_id("Gaia DR3 4268620287278693120") == 4268620287278693120
    assert parse_source_id(b" gaia dr2 12 ") == 12
    for bad in ("Gaia DR3", "12a", "-5", "99999999999999999999"):
        with pytest.raises(ValueError, match="not a Gaia source_id"):
            parse_source_id(bad)


def test_source_id_as_designation_in_rvs_xp_and_gaia_source(tmp_path):
    rvs = _edit_csv(CSV / "KOI-001.csv", tmp_path / "koi.csv", lambda lines: [lines[0]] + [
        f"Gaia DR3 {line}" for line in lines[1:]])
    assert read_rvs_datalink(rvs)["source_id"].tolist() == [KOI]
    text = (XP / "XP_CONTINUOUS_RAW.csv").read_text().splitlines()
    xp = tmp_path / "xp.csv"
    xp.write_text("\n".join([text[0]] + [f'"Gaia DR3 {line.split(",", 1)[0]}",'
                                         f'{line.split(",", 1)[1]}' for line in text[1:]]))
    assert read_xp_continuous(xp)["source_id"].tolist() == XP_IDS
    gs = Table.read(_gaia_for([KOI, 5], tmp_path / "gs.ecsv"))
    gs["source_id"] = [f"Gaia DR3 {KOI}", "Gaia DR3 5"]
    assert gaia_source_to_batch(gs)["source_id"].tolist() == [KOI, 5]


def test_unparsable_source_id_is_skipped_per_row(tmp_path, logs):
    two = tmp_path / "two.csv"
    koi = (CSV / "KOI-001.csv").read_text().splitlines()
    hd = (CSV / "HD176650.csv").read_text().splitlines()
    bad_hd = [line.replace(str(SIX["HD176650.csv"]), "HD 176650", 1) for line in hd[1:]]
    two.write_text("\n".join(koi + bad_hd) + "\n")
    with pytest.raises(InputDataError, match="'HD 176650'.*not a Gaia source_id"):
        read_rvs_datalink(two)
    assert read_rvs_datalink(two, on_error="skip")["source_id"].tolist() == [KOI]
    assert any("HD 176650" in m for m in logs)


def test_non_numeric_xp_token_skips_only_that_star(tmp_path):
    text = (XP / "XP_CONTINUOUS_RAW.csv").read_text().splitlines()
    lines = [text[0], text[1].replace("(", "(abc, ", 1)] + text[2:]
    xp = tmp_path / "xp.csv"
    xp.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadStarError, match="non-numeric value 'abc'") as err:
        read_xp_continuous(xp)
    assert err.value.source_id == XP_IDS[0]
    assert read_xp_continuous(xp, on_error="skip")["source_id"].tolist() == [XP_IDS[1]]


def test_non_numeric_flux_cell_skips_only_that_star(tmp_path):
    koi = (CSV / "KOI-001.csv").read_text().splitlines()
    hd = _set_flux((CSV / "HD176650.csv").read_text().splitlines(), [7], "n/a")
    two = tmp_path / "two.csv"
    two.write_text("\n".join(koi + hd[1:]) + "\n")
    with pytest.raises(BadStarError, match="non-numeric flux value 'n/a'"):
        read_rvs_datalink(two)
    assert read_rvs_datalink(two, on_error="skip")["source_id"].tolist() == [KOI]


def test_bulk_xp_with_bad_source_id_and_token_skips_per_star(tmp_path):
    import gzip

    XP_ARRAYS, _real_xp_rows, write_bulk = _bulk_writers("XP_ARRAYS", "_real_xp_rows",
                                                          "write_bulk")

    path = write_bulk(tmp_path / "XpContinuousMeanSpectrum_000-001.csv.gz",
                      _real_xp_rows([11, 12]) + _real_xp_rows([13]), XP_ARRAYS)
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    for k, line in enumerate(lines):
        if line.startswith("11,"):
            lines[k] = "eleven," + line[3:]
        if line.startswith("12,"):
            lines[k] = line.replace("[", "[x,", 1)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    policy = BadStarPolicy("skip")
    batches = list(iter_bulk_xp(path, on_error=policy))
    assert [b["source_id"].tolist() for b in batches] == [[13]]
    assert policy.skipped == [None, 12]


# ---------------------------------------------------------------------------------------
# item 6: messages
# ---------------------------------------------------------------------------------------
def test_empty_csv_says_empty(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputDataError, match=r"empty.csv is empty") as err:
        read_rvs_datalink(tmp_path / "empty.csv")
    assert "directory" not in str(err.value)


def test_truncated_datalink_zip_says_truncated(tmp_path):
    data = (AQ / "gaia_dr3_source_id_5937083312263887616_dl_products_csv.zip").read_bytes()
    cut = tmp_path / "dl.zip"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match="incomplete zip archive") as err:
        read_products([cut], "XP_CONTINUOUS")
    assert "utf-8" not in str(err.value) and "ascii.csv" not in str(err.value)


def test_damaged_zip_member_is_named(tmp_path):
    src = AQ / "gaia_dr3_source_id_5937083312263887616_dl_products_csv.zip"
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = z.getinfo("XP_CONTINUOUS-Gaia DR3 5937083312263887616.csv")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start:start + 50] = b"\x00" * 50           # corrupt the compressed stream
    (tmp_path / "dl.zip").write_bytes(bytes(data))
    with pytest.raises(InputDataError, match="XP_CONTINUOUS-Gaia DR3 5937083312263887616"):
        read_datalink_products(tmp_path / "dl.zip")


def test_missing_ruwe_and_snr_columns_warn_by_name(tmp_path, logs):
    path = _gaia_for([1, 2], tmp_path / "gs.ecsv", drop=("ruwe", "rvs_spec_sig_to_noise"))
    batch = gaia_source_to_batch(path)
    assert np.isnan(batch["ruwe"]).all() and np.isnan(batch["rvs_snr"]).all()
    warned = [m for m in logs if "ruwe" in m]
    assert warned and "rvs_spec_sig_to_noise" in warned[0] and "gs.ecsv" in warned[0]


# ---------------------------------------------------------------------------------------
# item 3: stores written atomically, incomplete stores refused
# ---------------------------------------------------------------------------------------
def test_atomic_store_leaves_nothing_under_the_final_name_on_failure(tmp_path):
    out = tmp_path / "s.h5"
    batch = StarBatch({"source_id": np.arange(1, 4)})
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_store(out) as store:
            store.append(batch)
            assert not out.exists()
            raise RuntimeError("killed")
    assert not out.exists() and not list(tmp_path.iterdir())
    with atomic_store(out) as store:
        store.append(batch)
    with Store.open(out) as store:
        assert store.complete and len(store) == 3
    with pytest.raises(OutputExistsError, match="pass overwrite=True"):
        with atomic_store(out):
            pass


def test_store_marked_incomplete_is_refused_but_inspectable(tmp_path):
    path = tmp_path / "partial.h5"
    store = Store.create(path, complete=False)   # what a killed writer leaves behind
    store.append(StarBatch({"source_id": np.arange(1, 4)}))
    store.close()
    with pytest.raises(StoreError, match="partial.h5 is an incomplete store"):
        Store.open(path)
    with Store.open(path, allow_incomplete=True) as store:
        assert store.summary()["complete"] is False and len(store) == 3


def test_killed_simulate_leaves_no_store(tmp_path):
    from gaiarvs_cnn.simulate import survey

    calls = []
    real = survey.simulate_batch

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    survey.simulate_batch = dying
    try:
        with pytest.raises(KeyboardInterrupt):
            survey.simulate_store(tmp_path / "sim.h5", 20, chunk_size=10, progress=False)
    finally:
        survey.simulate_batch = real
    assert not list(tmp_path.iterdir())


def test_truncated_store_message_has_no_hdf5_backtrace(tmp_path, logs):
    from gaiarvs_cnn.simulate.survey import simulate_store

    path = simulate_store(tmp_path / "full.h5", 30, progress=False)
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(StoreError) as err:
        with Store.open(cut) as store:
            store.read()
    message = str(err.value)
    assert "cut.h5 is not a readable HDF5 store (truncated?)" in message
    assert "HDF5-DIAG" not in message and "H5F" not in message and "\n" not in message


def test_every_reader_error_is_a_library_error(tmp_path):
    """The adversarial files of the sweep all end in a GaiaRVSCNNError."""
    cases = {"bin.csv": b"\xff\xfe\x00garbage", "h5.csv": b"\x89HDF\r\n\x1a\nrest",
             "gz.csv.gz": b"\x1f\x8b\x08\x00trunc", "ragged.csv": b"a,b\n1,2,3\n",
             "sid.csv": json.dumps({"x": 1}).encode()}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(GaiaRVSCNNError):
            read_rvs_datalink(tmp_path / name)


# ---------------------------------------------------------------------------------------
# item 4: predict never loses good stars for one bad one
# ---------------------------------------------------------------------------------------
def test_predict_gives_nan_to_bad_stars_and_keeps_the_others(tiny_bundle, tiny_observed_store):
    from gaiarvs_cnn.model import ModelBundle
    from gaiarvs_cnn.model.predict import INPUT_COLUMNS, predict_batch, usable_inputs

    bundle = ModelBundle.load(tiny_bundle)
    with Store.open(tiny_observed_store) as store:
        batch = store.read(0, 40, columns=INPUT_COLUMNS)
    keep = usable_inputs(batch)
    batch = batch[keep]
    clean = predict_batch(bundle, batch)
    flux = batch["flux"].copy()
    flux[3, 1000] = 1e30            # one absurd pixel
    flux[7] = -flux[7]              # a negative spectrum
    batch["flux"] = flux
    assert usable_inputs(batch).tolist() == [i not in (3, 7) for i in range(len(batch))]
    pred = predict_batch(bundle, batch)
    assert np.isnan(pred["teff"][[3, 7]]).all()
    others = np.ones(len(batch), dtype=bool)
    others[[3, 7]] = False
    np.testing.assert_allclose(pred["teff"][others], clean["teff"][others], rtol=1e-5)
    assert pred["source_id"].tolist() == batch["source_id"].tolist()


def test_bulk_ingest_ending_with_zero_stars_is_an_error(tmp_path):
    XP_ARRAYS, _real_rvs_rows, _real_xp_rows, write_bulk = _bulk_writers(
        "XP_ARRAYS", "_real_rvs_rows", "_real_xp_rows", "write_bulk")

    from gaiarvs_cnn.io.ingest import bulk_to_store

    # every spectrum all-null: 3 bad stars (stars lacking only XP are kept since issue 24)
    rows = [dict(row, flux=np.full(2401, np.nan)) for row in _real_rvs_rows()]
    rvs = write_bulk(tmp_path / "RvsMeanSpectrum_000000-003111.csv.gz", rows,
                     ("flux", "flux_error"))
    xp = write_bulk(tmp_path / "XpContinuousMeanSpectrum_000000-003111.csv.gz",
                    _real_xp_rows([1, 2]), XP_ARRAYS)
    out = tmp_path / "bulk.h5"
    with pytest.raises(InputDataError, match=r"No star to write.*3 bad star\(s\) skipped"):
        bulk_to_store([rvs], [xp], out, on_error="skip")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([rvs.name, xp.name])
