"""``gaiarvs-cnn fetch`` against the loopback archive."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from click.testing import CliRunner

from gaiarvs_cnn.archives.loopback.reference_tables import reference_ids
from gaiarvs_cnn.cli import main
from gaiarvs_cnn.io.store import Store


def _run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_fetch_gaia_source_ids(archive, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("# Gaia DR3 ids\n" + "\n".join(map(str, sorted(archive.rvs))) + "\n")
    result = _run("fetch", "gaia", "--source-ids", str(ids), "-o", str(tmp_path / "s.h5"))
    assert result.exit_code == 0, result.output
    assert "stored 4 star(s)" in result.output
    with Store.open(tmp_path / "s.h5") as store:
        assert len(store) == 4
    again = _run("fetch", "gaia", "--source-ids", str(ids), "-o", str(tmp_path / "s.h5"))
    assert "stored 0 star(s); skipped 1 chunk(s)" in again.output


def test_fetch_gaia_training_apogee_stores_labels(archive, tmp_path):
    sky = reference_ids(sorted(archive.rvs))
    result = _run("fetch", "gaia", "--training", "apogee", "--service", "aip",
                  "-o", str(tmp_path / "t.h5"))
    assert result.exit_code == 0, result.output
    with Store.open(tmp_path / "t.h5") as store:
        batch = store.read_ids([sky[0], sky[2]])
    # APOGEE Teff, logg, [M/H], [a/M], [Fe/H] of the kept (SNR 200) entry of sky[0]
    np.testing.assert_allclose(batch["labels"][0], [4800, 2.5, -0.2, 0.1, -0.25], rtol=1e-6)
    np.testing.assert_allclose(batch["label_errors"][1], [40, 0.05, 0.15, 0.03, 0.15],
                               rtol=1e-6)


def test_fetch_gaia_failed_chunk_exit_status(archive, tmp_path):
    from gaiarvs_cnn import conf

    archive.fail("/data", "500", times=20)
    ids = tmp_path / "ids.txt"
    ids.write_text(str(sorted(archive.rvs)[0]))
    with conf.set_temp("retries", 0):
        result = CliRunner().invoke(main, ["fetch", "gaia", "--source-ids", str(ids),
                                           "-o", str(tmp_path / "s.h5")])
    assert result.exit_code == 3  # partial: re-running resumes (docs/fetching.rst)
    assert "FAILED chunk of 1 id(s)" in result.output
    assert "re-run the same command to resume" in result.output


def test_fetch_gaia_needs_one_selection(tmp_path):
    result = CliRunner().invoke(main, ["fetch", "gaia", "-o", str(tmp_path / "s.h5")])
    assert result.exit_code == 2 and "exactly one of" in result.output


@pytest.mark.parametrize("kind, n", [("galah", 2), ("clusters", 3), ("seismic", 2),
                                     ("apogee", 4)])
def test_fetch_reference_writes_fits(archive, tmp_path, kind, n):
    out = tmp_path / f"{kind}.fits"
    result = _run("fetch", "reference", "--kind", kind, "-o", str(out))
    assert result.exit_code == 0, result.output
    table = Table.read(out)
    assert len(table) == n and table["source_id"].dtype.kind == "i"
    assert table["source_id"].dtype.itemsize == 8


def test_fetch_reference_gsp_from_store_ids(archive, tmp_path):
    ids = tmp_path / "ids.ecsv"
    Table({"source_id": sorted(archive.rvs)}).write(ids)
    out = tmp_path / "gsp.ecsv"
    result = _run("fetch", "reference", "--kind", "gsp-spec", "--source-ids", str(ids),
                  "--good-flags", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert Table.read(out)["teff"].unit == "K"
    refused = CliRunner().invoke(main, ["fetch", "reference", "--kind", "gsp-phot", "-o",
                                        str(tmp_path / "p.fits")])
    assert refused.exit_code == 1 and "give source ids (--source-ids or --store)" in refused.output
    exists = CliRunner().invoke(main, ["fetch", "reference", "--kind", "galah", "-o", str(out)])
    assert exists.exit_code == 1 and "--overwrite" in exists.output


@pytest.mark.slow  # uses the session's tiny trained bundle (tests/conftest.py)
def test_fetched_store_feeds_produce_catalog(archive, tiny_bundle, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(map(str, sorted(archive.rvs))))
    store = tmp_path / "gaia.h5"
    assert _run("fetch", "gaia", "--source-ids", str(ids), "-o", str(store)).exit_code == 0
    result = _run("produce-catalog", "--source", "files", "--store", str(store), "--model",
                  str(tiny_bundle), "--out", str(tmp_path / "cat"), "--format", "fits",
                  "--quiet")
    assert result.exit_code == 0, result.output
    from gaiarvs_cnn import read_catalog

    catalog = read_catalog(next((tmp_path / "cat").glob("*.fits")))
    assert sorted(catalog["source_id"].tolist()) == sorted(archive.rvs)
    assert np.all(np.isfinite(catalog["teff"]))
