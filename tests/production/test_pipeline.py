"""Tests of the production engine in this process and the produce-catalog / predict commands.

They use the tiny bundle and stores of tests/conftest.py; every run takes a few seconds.
"""
import errno
import shutil
import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner

from gaiarvs_cnn import conf
from gaiarvs_cnn.catalog import CatalogWriteError, read_catalog
from gaiarvs_cnn.cli import main
from gaiarvs_cnn.exceptions import InputDataError, ModelBundleError, OutputExistsError
from gaiarvs_cnn.io.store import Store
from gaiarvs_cnn.production import CatalogRun, produce_catalog
from gaiarvs_cnn.selection import usable_mask

LIMIT = 120
CHUNK = 40
NAMES = ("gaiarvs_cnn_catalog.fits", "gaiarvs_cnn_catalog.vot")


@pytest.fixture(autouse=True)
def one_thread():
    with conf.set_temp("threads", 1):
        yield


def files_run(store, bundle, out, **kw):
    opts = {"source": "files", "store": store, "model": bundle, "out": out,
            "chunk_size": CHUNK, "limit": LIMIT, "progress": False}
    opts.update(kw)
    return CatalogRun(**opts)


@pytest.fixture(scope="module")
def uninterrupted(tiny_observed_store, tiny_bundle, tmp_path_factory):
    """An uninterrupted run: (summary, catalogue read from the FITS file, output dir)."""
    out = tmp_path_factory.mktemp("uninterrupted")
    with conf.set_temp("threads", 1):
        summary = produce_catalog(files_run(tiny_observed_store, tiny_bundle, out))
    return summary, read_catalog(out / NAMES[0]), out


def assert_same_catalogue(a, b):
    assert a.colnames == b.colnames and len(a) == len(b)
    for name in a.colnames:
        np.testing.assert_array_equal(np.asarray(a[name]), np.asarray(b[name]), err_msg=name)


def test_run_writes_fits_and_votable_with_17_columns_and_units(uninterrupted,
                                                                tiny_observed_store):
    summary, table, out = uninterrupted
    assert summary.n_input == LIMIT and summary.n_written == LIMIT and summary.n_cut == 0
    assert list(summary.timings) == ["model", "read+cuts", "predict", "flags", "write"]
    assert sorted(p.name for p in out.iterdir()) == sorted(NAMES)  # no work dir or lock left
    for name in NAMES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain = Table.read(out / name)
        assert len(plain.colnames) == 17 and len(plain) == LIMIT
        assert plain["teff"].unit == u.K and plain["logg"].unit == u.dex(u.cm / u.s**2)
    assert_same_catalogue(table, read_catalog(out / NAMES[1]))
    assert summary.n_good == int(np.sum(table["flag_boundary"] == "00000000"))
    with Store.open(tiny_observed_store) as store:
        ids = store.read(0, LIMIT, columns=["source_id"])["source_id"]
    np.testing.assert_array_equal(table["source_id"], ids)
    assert table.meta["NINPUT"] == LIMIT


def test_interrupted_and_resumed_run_equals_uninterrupted(uninterrupted, tiny_observed_store,
                                                         tiny_bundle, tmp_path):
    def stop_after_second_chunk(i):
        if i == 1:
            raise KeyboardInterrupt

    run = files_run(tiny_observed_store, tiny_bundle, tmp_path)
    with pytest.raises(KeyboardInterrupt):
        produce_catalog(run, on_chunk=stop_after_second_chunk)
    assert not any((tmp_path / n).exists() for n in NAMES)
    assert sorted(p.name for p in run.partial_dir.glob("part-*.npz")) == [
        "part-000000.npz", "part-000001.npz"]
    computed = []
    summary = produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path,
                                        resume=True), on_chunk=computed.append)
    assert computed == [2] and summary.resumed_chunks == 2
    assert_same_catalogue(read_catalog(tmp_path / NAMES[0]), uninterrupted[1])


def test_resume_with_other_chunk_size_is_refused(tiny_observed_store, tiny_bundle, tmp_path):
    def stop(i):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path), on_chunk=stop)
    with pytest.raises(InputDataError, match="chunk_size"):
        produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path, resume=True,
                                  chunk_size=30))


def test_existing_catalogue_is_refused_before_any_work(tiny_observed_store, tiny_bundle,
                                                      tmp_path):
    (tmp_path / NAMES[1]).write_text("earlier")
    # library terms (overwrite=True); the CLI test below checks its translation to --overwrite
    with pytest.raises(OutputExistsError, match="overwrite=True"):
        produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path))
    assert (tmp_path / NAMES[1]).read_text() == "earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAMES[1]]  # no work dir, no lock


def test_full_disk_while_writing_keeps_earlier_catalogues(tiny_observed_store, tiny_bundle,
                                                         tmp_path, monkeypatch):
    for name in NAMES:
        (tmp_path / name).write_text(f"earlier {name}")
    from gaiarvs_cnn.catalog.votable import VOTableWriter

    def fail_on_votable(self, columns, n):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(VOTableWriter, "_append", fail_on_votable)
    with pytest.raises(CatalogWriteError, match="No space left"):
        produce_catalog(files_run(tiny_observed_store, tiny_bundle, tmp_path, overwrite=True,
                                  limit=40))
    for name in NAMES:     # neither file replaced: both formats are staged, then renamed
        assert (tmp_path / name).read_text() == f"earlier {name}"


def test_empty_store_is_refused(tiny_bundle, tmp_path):
    Store.create(tmp_path / "empty.h5").close()
    with pytest.raises(InputDataError, match="empty"):
        produce_catalog(files_run(tmp_path / "empty.h5", tiny_bundle, tmp_path / "out"))
    assert not (tmp_path / "out" / NAMES[0]).exists()


def test_store_without_rvs_spectra_is_refused(tiny_observed_store, tiny_bundle, tmp_path):
    with Store.open(tiny_observed_store) as src:
        batch = src.read(0, 30)
    batch["flux"] = np.nan
    with Store.create(tmp_path / "nospec.h5", extra_columns=batch_extra(batch)) as store:
        store.append(batch)
    with pytest.raises(InputDataError, match="no RVS spectra"):
        produce_catalog(files_run(tmp_path / "nospec.h5", tiny_bundle, tmp_path / "out"))


def batch_extra(batch):
    from gaiarvs_cnn.io.batch import CORE_COLUMNS

    core = {c.name for c in CORE_COLUMNS}
    return [s for s in batch.specs.values() if s.name not in core]


def test_tampered_bundle_is_refused_and_nothing_written(tiny_observed_store, tiny_bundle,
                                                       tmp_path):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    config = (bundle / "config.json").read_text()
    (bundle / "config.json").write_text(config.replace("2401", "2000"))
    with pytest.raises(ModelBundleError):
        produce_catalog(files_run(tiny_observed_store, bundle, tmp_path / "out"))
    assert not (tmp_path / "out" / NAMES[0]).exists()


def test_stars_without_spectrum_or_xp_are_cut_and_counted(tiny_observed_store, tiny_bundle,
                                                         tmp_path):
    with Store.open(tiny_observed_store) as src:
        batch = src.read(0, 60)
    batch["flux"][[3, 10]] = np.nan
    batch["bp_coefficients"][[20, 21, 22]] = 0.0
    batch["rp_coefficients"][30, 7] = np.nan
    assert (~usable_mask(batch)).sum() == 6
    with Store.create(tmp_path / "bad.h5", extra_columns=batch_extra(batch)) as store:
        store.append(batch)
    summary = produce_catalog(files_run(tmp_path / "bad.h5", tiny_bundle, tmp_path / "out",
                                        formats="fits"))
    assert (summary.n_input, summary.n_cut, summary.n_written) == (60, 6, 54)
    cat = read_catalog(tmp_path / "out" / NAMES[0])
    assert not set(batch["source_id"][[3, 10, 20, 21, 22, 30]]) & set(cat["source_id"])
    assert not (tmp_path / "out" / NAMES[1]).exists()


def test_simulated_source_runs_every_stage(tiny_bundle, tmp_path):
    run = CatalogRun(source="simulated", n_stars=80, seed=3, model=tiny_bundle,
                     out=tmp_path / "sim.fits", formats="fits", progress=False, chunk_size=50)
    summary = produce_catalog(run)
    assert list(summary.timings) == ["simulate", "model", "read+cuts", "predict", "flags",
                                     "write"]
    assert summary.n_written == 80 and summary.outputs == [str(tmp_path / "sim.fits")]


def test_cli_produce_catalog_summary_and_refusal(tiny_observed_store, tiny_bundle, tmp_path):
    args = ["produce-catalog", "--source", "files", "--store", str(tiny_observed_store),
            "--model", str(tiny_bundle), "--out", str(tmp_path), "--limit", "40", "--quiet"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "stars written: 40" in first.output and "time predict" in first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0 and "--overwrite" in again.output


def test_cli_gaia_source_needs_a_store(tmp_path):
    result = CliRunner().invoke(main, ["produce-catalog", "--source", "gaia", "--out",
                                       str(tmp_path)])
    assert result.exit_code != 0 and "gaiarvs-cnn fetch gaia" in result.output


def test_cli_predict_writes_a_votable(tiny_observed_store, tiny_bundle, tmp_path):
    result = CliRunner().invoke(main, [
        "predict", "--store", str(tiny_observed_store), "--model", str(tiny_bundle),
        "--out", str(tmp_path / "mine.vot"), "--format", "votable", "--limit", "40",
        "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(read_catalog(tmp_path / "mine.vot")) == 40
