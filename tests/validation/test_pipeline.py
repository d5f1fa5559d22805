"""``gaiarvs-cnn validate`` end to end on a synthetic store, and the report writer."""
import warnings

import numpy as np
import pytest
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from click.testing import CliRunner

from gaiarvs_cnn.cli import main
from gaiarvs_cnn.exceptions import OutputExistsError
from gaiarvs_cnn.validation.crossmatch import add_store_columns
from gaiarvs_cnn.validation.report import ValidationResult, write_report
from gaiarvs_cnn.validation.runner import run_validation
from gaiarvs_cnn.validation.stats import comparison_table
from gaiarvs_cnn.validation.synthetic import (
    synthetic_catalog,
    synthetic_reference,
    synthetic_store,
    synthetic_truth,
)


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """A synthetic store, its catalogue (FITS) and GALAH/seismic reference files."""
    root = tmp_path_factory.mktemp("validate")
    truth = synthetic_truth(800, seed=31)
    store = synthetic_store(root / "sim.h5", truth)
    cat = synthetic_catalog(truth, seed=32, bias={"teff": 30.0})
    with warnings.catch_warnings():   # FITS has no dex units; the values are what matters
        warnings.simplefilter("ignore", AstropyUserWarning)
        cat.write(root / "cat.fits")
    galah = synthetic_reference(truth, "galah", seed=33, offset={"teff": -20.0})
    galah.write(root / "galah.ecsv")
    seis = synthetic_reference(truth, "seismic", seed=34, offset={"logg": 0.05})
    seis.write(root / "seismic.ecsv")
    return {"root": root, "store": store, "truth": truth, "cat": cat, "galah": galah,
            "seismic": seis}


def test_add_store_columns_brings_snr_position_and_truth(survey):
    data = add_store_columns(survey["cat"], survey["store"])
    assert len(data) == len(survey["cat"])
    for name in ("rvs_snr", "ra", "dec", "parallax", "true_teff", "population"):
        assert name in data.colnames
    truth = survey["truth"]
    order = np.argsort(np.asarray(truth["source_id"]))
    np.testing.assert_allclose(data["true_teff"], np.asarray(truth["true_teff"])[order],
                               rtol=1e-6)
    np.testing.assert_allclose(data["rvs_snr"], np.asarray(truth["rvs_snr"])[order])


def test_add_store_columns_refuses_a_foreign_store(survey, tmp_path):
    other = synthetic_store(tmp_path / "other.h5", synthetic_truth(10, seed=1)[:5])
    with pytest.raises(Exception, match="not in the store"):
        add_store_columns(survey["cat"], other)


def test_cli_validate_writes_report_with_recovered_offsets(survey):
    root = survey["root"]
    out = root / "report"
    result = CliRunner().invoke(main, [
        "validate", "--catalog", str(root / "cat.fits"), "--store", str(survey["store"]),
        "--against", "galah", "--against", "seismic", "--reference",
        f"galah={root / 'galah.ecsv'}", "--reference", f"seismic={root / 'seismic.ecsv'}",
        "--out", str(out), "--formats", "png"])
    assert result.exit_code == 0, result.output
    for name in ("galah_stats.ecsv", "galah_comparison.png", "galah_snr.png",
                 "seismic_stats.ecsv", "seismic_logg.png", "truth_stats.ecsv",
                 "summary.md", "summary.html"):
        assert (out / name).exists(), name
    stats = Table.read(out / "galah_stats.ecsv")
    row = stats[(stats["label"] == "teff") & (stats["subset"] == "all")][0]
    assert abs(row["bias"] - 50.0) < 3.5 * row["e_bias"]     # CNN +30, GALAH -20
    rec = Table.read(out / "galah_recovery.ecsv")
    assert bool(np.all(rec["recovered"]))
    summary = (out / "summary.md").read_text()
    assert "Sect. 6.2" in summary and "| seismic | logg | all |" in summary
    assert "<table>" in (out / "summary.html").read_text()


def test_cli_validate_fails_clearly_without_reference(survey):
    root = survey["root"]
    result = CliRunner().invoke(main, [
        "validate", "--catalog", str(root / "cat.fits"), "--store", str(survey["store"]),
        "--against", "galah", "--reference", f"galah={root / 'missing.ecsv'}",
        "--out", str(root / "nothing")])
    assert result.exit_code != 0
    assert "Cannot obtain the galah reference" in result.output
    assert not (root / "nothing" / "summary.md").exists()


def test_cli_validate_needs_a_store(survey):
    result = CliRunner().invoke(main, [
        "validate", "--catalog", str(survey["root"] / "cat.fits"), "--against", "bimodality",
        "--out", str(survey["root"] / "nostore")])
    assert result.exit_code != 0
    assert "--store" in result.output


def test_run_validation_reports_missing_reference(survey):
    data = add_store_columns(survey["cat"], survey["store"])
    with pytest.raises(Exception, match="clusters"):
        run_validation(data, ["clusters"], {})


def test_write_report_refuses_to_overwrite(tmp_path):
    t = Table({"a": [1.0, 2.0], "b": [0.5, 1.0]})
    stats = comparison_table(t, {"logg": ("a", "b")}, comparison="seismic")
    res = ValidationResult("seismic", tables={"stats": stats}, summary=stats,
                           notes=["a note"])
    path = write_report([res], tmp_path / "rep", formats=())
    text = path.read_text()
    assert "| seismic | logg | all | 2 | 0.750 ± " in text
    assert "0.04-0.09" in text and "a note" in text
    assert (tmp_path / "rep" / "seismic_stats.ecsv").exists()
    with pytest.raises(OutputExistsError):
        write_report([res], tmp_path / "rep")
    (tmp_path / "rep" / "mine.txt").write_text("user file")
    other = ValidationResult("galah", tables={"stats": stats})
    write_report([other], tmp_path / "rep", formats=(), overwrite=True)
    # the previous report's files are gone, files it did not write are kept
    assert not (tmp_path / "rep" / "seismic_stats.ecsv").exists()
    assert (tmp_path / "rep" / "galah_stats.ecsv").exists()
    assert (tmp_path / "rep" / "mine.txt").exists()
    assert (tmp_path / "rep" / "report_files.txt").read_text().split() == ["galah_stats.ecsv"]


def test_cli_validate_archive_unreachable_exits_nonzero(survey):
    """A real (loopback, closed port) archive failure gives a clear message and status 1."""
    from gaiarvs_cnn import conf

    root = survey["root"]
    with conf.set_temp("vizier_url", "http://127.0.0.1:9/tap"), conf.set_temp("retries", 0), \
            conf.set_temp("timeout", 2.0):
        result = CliRunner().invoke(main, [
            "validate", "--catalog", str(root / "cat.fits"), "--store", str(survey["store"]),
            "--against", "galah", "--source", "archive", "--out", str(root / "archive")])
    assert result.exit_code == 1
    assert "Cannot obtain the galah reference (archive)" in result.output
    assert not (root / "archive" / "summary.md").exists()


def test_precision_result_has_metal_poor_and_calibration(survey):
    data = add_store_columns(survey["cat"], survey["store"])
    results = run_validation(data, ["precision"], {})
    assert [r.name for r in results] == ["precision", "truth"]
    prec = results[0]
    assert set(prec.tables) == {"vs_snr", "calibration", "metal_poor"}
    assert {"vs_snr", "kiel", "calibration"} <= set(prec.figures)
    mp = prec.tables["metal_poor"]
    snr, mh = np.asarray(data["rvs_snr"]), np.asarray(data["true_mh"])
    good = np.asarray(data["flag_boundary"]) == "00000000"
    expected = np.sum(good & (mh < -1) & (snr >= 15) & (snr < 25))
    assert expected > 0 and np.all(mp["n"] == expected)
    cal = prec.tables["calibration"]
    np.testing.assert_allclose(cal["frac_within_1sigma"], 0.683, atol=0.06)


def _validate(survey, catalog, *extra):
    root = survey["root"]
    return CliRunner().invoke(main, [
        "validate", "--catalog", str(catalog), "--store", str(survey["store"]),
        "--against", "galah", "--reference", f"galah={root / 'galah.ecsv'}",
        "--formats", "none", *extra])


def test_validate_converts_the_catalogue_units(survey, tmp_path):
    """A teff column in kK gave a -4900 K bias, exit 0 (issue 27): now converted to K."""
    import astropy.units as u

    cat = survey["cat"].copy()
    for name in ("teff", "eteff", "sigma_teff"):
        cat[name] = np.asarray(cat[name], dtype=np.float32) / 1000
        cat[name].unit = u.kK
    cat.write(tmp_path / "kk.ecsv")
    res = _validate(survey, tmp_path / "kk.ecsv", "--out", str(tmp_path / "kk"))
    assert res.exit_code == 0, res.output
    res = _validate(survey, survey["root"] / "cat.fits", "--out", str(tmp_path / "k"))
    assert res.exit_code == 0, res.output
    rows = [Table.read(tmp_path / d / "galah_stats.ecsv") for d in ("kk", "k")]
    bias = [r[(r["label"] == "teff") & (r["subset"] == "all")][0]["bias"] for r in rows]
    assert abs(bias[0] - bias[1]) < 0.05 and 30 < bias[0] < 70
    cat["mh"].unit = u.K
    cat.write(tmp_path / "bad.ecsv")
    res = _validate(survey, tmp_path / "bad.ecsv", "--out", str(tmp_path / "bad"))
    assert res.exit_code == 1 and "column mh is in K" in res.output
    assert "Traceback" not in res.output


def test_validate_refuses_a_reference_without_overlap(survey, tmp_path):
    galah = survey["galah"].copy()
    galah["source_id"] = np.asarray(galah["source_id"]) + 10**15
    galah.write(tmp_path / "foreign.ecsv")
    res = CliRunner().invoke(main, [
        "validate", "--catalog", str(survey["root"] / "cat.fits"), "--store",
        str(survey["store"]), "--against", "galah", "--reference",
        f"galah={tmp_path / 'foreign.ecsv'}", "--formats", "none", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1, res.output
    assert "is in the galah reference" in res.output and "--reference galah=PATH" in res.output
    assert not (tmp_path / "r").exists()


def test_validate_of_an_untested_tsne_catalogue_warns_and_compares(survey, tmp_path, caplog):
    """All t-SNE digits '1' (a --no-tsne bundle) made every comparison empty, exit 0."""
    cat = survey["cat"].copy()
    cat["flag_boundary"] = np.array([f[:-1] + "1" for f in np.asarray(cat["flag_boundary"],
                                                                      dtype=str)])
    cat.write(tmp_path / "notsne.ecsv")
    res = _validate(survey, tmp_path / "notsne.ecsv", "--out", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    assert "seven other flag digits" in caplog.text
    stats = Table.read(tmp_path / "r" / "galah_stats.ecsv")
    assert stats[(stats["label"] == "teff") & (stats["subset"] == "all")][0]["n"] > 100


def test_validate_of_an_empty_catalogue_is_a_clear_error(survey, tmp_path):
    survey["cat"][:0].write(tmp_path / "empty.ecsv")
    res = _validate(survey, tmp_path / "empty.ecsv", "--out", str(tmp_path / "r"))
    assert res.exit_code == 1, res.output
    assert "The catalogue has no star" in res.output and "Traceback" not in res.output


def test_validate_quiet_prints_only_the_result(survey, tmp_path, capsys):
    res = _validate(survey, survey["root"] / "cat.fits", "--out", str(tmp_path / "r"),
                    "--quiet")
    assert res.exit_code == 0, res.output
    assert "INFO" not in res.output + capsys.readouterr().out
    assert res.output.strip().startswith("Validation report:")


def test_two_reports_into_one_folder_are_not_written_at_once(tmp_path):
    from gaiarvs_cnn.utils.lock import RunLock, RunLockedError

    t = Table({"a": [1.0, 2.0], "b": [0.5, 1.0]})
    stats = comparison_table(t, {"logg": ("a", "b")}, comparison="seismic")
    res = ValidationResult("seismic", tables={"stats": stats}, summary=stats)
    with RunLock.beside(tmp_path / "rep", "validation report"), pytest.raises(
            RunLockedError, match="Another gaiarvs-cnn run"):
        write_report([res], tmp_path / "rep", formats=())
    assert not (tmp_path / "rep").exists()
    assert write_report([res], tmp_path / "rep", formats=()).exists()


def test_catalogue_without_store_or_provenance_names_the_store_option(survey, tmp_path):
    """The library asks for its ``store`` parameter; the command names ``--store``."""
    from gaiarvs_cnn.exceptions import InputDataError
    from gaiarvs_cnn.validation.pipeline import validate_catalog

    with pytest.raises(InputDataError, match=r"\(store=sim.h5\)") as err:
        validate_catalog(survey["root"] / "cat.fits", against=["galah"], out=tmp_path / "r")
    assert err.value.parameter == "store" and err.value.file.endswith("cat.fits")
    result = CliRunner().invoke(main, ["validate", "--catalog", str(survey["root"] / "cat.fits"),
                                       "--against", "galah", "--out", str(tmp_path / "r")])
    assert result.exit_code == 1 and "(--store sim.h5)" in result.output, result.output
    assert not (tmp_path / "r").exists()


def test_validate_catalog_runs_what_the_command_runs(survey, tmp_path):
    from gaiarvs_cnn.validation.pipeline import validate_catalog

    run = validate_catalog(survey["root"] / "cat.fits", against=["galah"],
                           store=survey["store"], out=tmp_path / "r", formats=(),
                           reference_files={"galah": survey["root"] / "galah.ecsv"})
    assert run.summary == tmp_path / "r" / "summary.md" and run.summary.exists()
    assert run.comparisons == ["galah"] and run.skipped == []
    assert run.references["galah"].startswith("file ")


def test_validate_catalog_with_given_references_and_no_source(survey, tmp_path):
    from gaiarvs_cnn.exceptions import InputDataError
    from gaiarvs_cnn.validation.pipeline import validate_catalog

    given = {"galah": Table.read(survey["root"] / "galah.ecsv")}
    run = validate_catalog(survey["root"] / "cat.fits", against=["all"], source=None,
                           references=given, store=survey["store"], out=tmp_path / "r",
                           formats=(), meta={"run": "paper.toml"})
    assert run.comparisons == ["galah", "precision", "bimodality"]
    assert run.references == {"galah": "given"}
    assert "seismic" in run.skipped   # not given, and no source to ask
    summary = run.summary.read_text()
    assert "paper.toml" in summary and "galah: given" in summary
    with pytest.raises(InputDataError, match="seismic reference: none was given"):
        validate_catalog(survey["root"] / "cat.fits", against=["seismic"], source=None,
                         references=given, store=survey["store"], out=tmp_path / "s",
                         formats=())
