"""Reference specifications against the recorded schemas (tests/data/reference_schemas)."""
from __future__ import annotations

from pathlib import Path

import pytest
from astropy.table import Table
from click.testing import CliRunner

from gaiarvs_cnn.archives.catalogues import probe_reference, reference_specs
from gaiarvs_cnn.cli import main

SCHEMAS = Path(__file__).resolve().parents[1] / "data" / "reference_schemas"


@pytest.fixture(scope="module")
def recorded():
    t = Table.read(SCHEMAS / "reference_columns.ecsv")
    out = {}
    for row in t:
        out.setdefault(str(row["table"]), []).append(str(row["column"]))
    return out


def test_loopback_serves_the_recorded_schemas(archive, recorded):
    for table, columns in recorded.items():
        assert archive.tables[table].colnames == columns, table


def test_every_required_column_is_recorded(recorded):
    for kind, spec in reference_specs().items():
        names = {c.lower() for c in recorded[spec.table.lower()]}
        for canonical in spec.columns.required:
            candidates = spec.columns.mapping[canonical]
            assert any(c.lower() in names for c in candidates), (kind, canonical)
        assert spec.verified, kind  # every spec says where its names come from


def test_every_reference_table_has_a_recorded_provenance():
    t = Table.read(SCHEMAS / "reference_columns.ecsv")
    assert all(str(v) for v in t["verified"])
    readme = (SCHEMAS / "README.md").read_text()
    assert "NOT verified" in readme and "UNVERIFIED" in readme


@pytest.mark.parametrize("kind", ["apogee", "galah", "seismic", "clusters", "gsp-spec",
                                  "gsp-phot", "published"])
def test_probe_maps_every_column_of_the_loopback(archive, fast_client, kind):
    report = probe_reference(kind, client=fast_client)
    assert report.ok and not report.missing_required, report.summary()
    assert "source_id" in report.mapped or "dr2_source_id" in report.mapped or \
        "dr2_id" in report.mapped
    assert "TOP 1 *" in archive.log[-1][1]["QUERY"]


def test_probe_reports_a_renamed_column(archive, fast_client):
    table = archive.tables["j/mnras/506/150/stars"] = \
        archive.tables["j/mnras/506/150/stars"].copy()  # the loopback content is shared
    table.rename_column("snrc3iraf", "snr_c3")  # a rename on the service
    report = probe_reference("galah", client=fast_client)
    assert not report.ok
    assert report.missing_required == ("snr_c3_iraf (as snr_c3_iraf/snrc3iraf)",)
    assert "MISSING  snr_c3_iraf" in report.summary()


def test_probe_command(archive):
    ok = CliRunner().invoke(main, ["fetch", "reference", "--kind", "apogee", "--probe"])
    assert ok.exit_code == 0, ok.output
    assert "mapped   teff" in ok.output and "<- Teff" in ok.output
    archive.tables["iii/286/catalog"] = archive.tables["iii/286/catalog"].copy()
    archive.tables["iii/286/catalog"].rename_column("Teff", "TEFF_SPEC")
    bad = CliRunner().invoke(main, ["fetch", "reference", "--kind", "apogee", "--probe"])
    assert bad.exit_code == 1 and "MISSING  teff" in bad.output
    usage = CliRunner().invoke(main, ["fetch", "reference", "--kind", "apogee"])
    assert usage.exit_code == 2 and "--probe" in usage.output


def test_fetch_reference_published_from_aip(archive, tmp_path, fast_client):
    from gaiarvs_cnn.archives.loopback.reference_tables import reference_ids
    from gaiarvs_cnn.archives.published import query_published

    sky = reference_ids(sorted(archive.rvs))
    t = query_published([sky[1], sky[4]], client=fast_client)
    assert t["source_id"].tolist() == [sky[1], sky[4]]
    assert t["flag_boundary"].tolist() == ["00000010", "11000000"]  # integers zero-padded
    out = tmp_path / "published.ecsv"
    result = CliRunner().invoke(main, ["fetch", "reference", "--kind", "published", "-o",
                                       str(out)])
    assert result.exit_code == 0, result.output
    assert len(Table.read(out)) == 6
