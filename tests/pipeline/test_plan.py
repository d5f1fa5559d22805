"""The plan of ``gaiarvs-cnn run CONFIG --plan`` against what the stages then do on the
loopback archive (`gaiarvs_cnn.archives.loopback`, with its reference tables)."""
from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import pytest
from astropy.utils.exceptions import AstropyUserWarning

from gaiarvs_cnn import conf
from gaiarvs_cnn.archives.loopback import (
    RealProducts,
    build_synthetic_archive,
    conf_values,
    serve,
    synthetic_ids,
)
from gaiarvs_cnn.pipeline import load_run_config
from gaiarvs_cnn.pipeline.plan import plan_run, probe_run
from gaiarvs_cnn.pipeline.stages import STAGES, RunFolder
from gaiarvs_cnn.validation.synthetic import synthetic_catalog, synthetic_truth

REAL = RealProducts(Path(__file__).resolve().parents[1] / "data" / "gaia_real")
#: More catalogue stars than one VizieR upload holds (100 kB: 1 597 ids) or one AIP
#: IN list (1 000 ids), no more than one synchronous ESA query (2 000 rows).
N_STARS = 2000


@pytest.fixture
def loopback(tmp_path):
    with serve(build_synthetic_archive(N_STARS, REAL, references=True)) as arc, \
            contextlib.ExitStack() as stack:
        for name, value in conf_values(arc, tmp_path / "cache", retries=1).items():
            stack.enter_context(conf.set_temp(name, value))
        yield arc


def test_plan_counts_the_reference_requests_and_bytes_of_the_stage(loopback, tmp_path):
    arc = loopback
    path = tmp_path / "run.toml"
    path.write_text(f"""
[run]
output = "{tmp_path / 'run'}"
[observed]
query = "SELECT TOP {N_STARS} source_id FROM gaiadr3.gaia_source"
[references]
kinds = ["apogee", "galah", "gsp-spec", "published"]
""")
    config = load_run_config(path)
    planned = {p.stage: p for p in plan_run(config, probe_run(config))}["fetch-references"]
    # the catalogue of every observed star, as the predict stage leaves it
    folder = RunFolder(config.output)
    truth = synthetic_truth(N_STARS, seed=1)
    truth["source_id"] = synthetic_ids(N_STARS)
    folder.catalogue.mkdir(parents=True)
    with warnings.catch_warnings():   # FITS has no dex units
        warnings.simplefilter("ignore", AstropyUserWarning)
        synthetic_catalog(truth, seed=2).write(folder.catalogue_files(config)[0])

    since, served = len(arc.log), sum(arc.served.values())
    record = STAGES["fetch-references"](config, folder, False)
    sent = sum(arc.served.values()) - served
    assert {k: r["rows"] for k, r in record.items()} == {
        "apogee": N_STARS, "galah": -(-N_STARS // 3), "gsp-spec": N_STARS // 2,
        "published": N_STARS}
    # two uploads per VizieR kind, two IN lists at AIP, one ESA upload; a capabilities
    # document per kind
    assert arc.requests_by_endpoint(since) == {
        "/aip/tap/capabilities": 1, "/aip/tap/sync": 2, "/esa/tap/capabilities": 1,
        "/esa/tap/sync": 1, "/vizier/tap/capabilities": 2, "/vizier/tap/sync": 4}
    assert planned.requests == len(arc.log) - since == 11
    # at most one row per id is expected: an upper bound (GALAH holds every 3rd star here)
    assert sent <= planned.download_bytes <= 1.5 * sent
