"""``gaiarvs-cnn run CONFIG`` end to end against the loopback archive of format-faithful
synthetic stars (`gaiarvs_cnn.archives.loopback`, with its reference tables): the plan,
the probe's refusals, and the rehearsal -- a run SIGKILLed in a stage chosen at random
(seeded; the stage is in the test id) and started again ends with the same catalogue,
references and validation tables as an uninterrupted run."""
from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table

import gaiarvs_cnn
from gaiarvs_cnn import conf
from gaiarvs_cnn.archives.loopback import (
    RealProducts,
    build_synthetic_archive,
    conf_values,
    serve,
    write_config,
)
from gaiarvs_cnn.exceptions import ArchiveError
from gaiarvs_cnn.pipeline import (
    STAGES,
    RunConfigError,
    load_run_config,
    run_pipeline,
)

#: Synthetic stars: all labelled (training) and the first N_OBSERVED observed.
N_STARS = 400
N_OBSERVED = 200
#: The stage the rehearsal kills, drawn once with a fixed seed (shown in the test id).
KILL_STAGE = random.Random(28).choice(list(STAGES))
#: Where in the stage: this fraction of the stage's uninterrupted duration.
KILL_FRACTION = random.Random(2028).uniform(0.2, 0.7)
REAL = RealProducts(Path(__file__).resolve().parents[1] / "data" / "gaia_real")
#: The checkout whose code the test imported; the subprocesses run the same code.
CODE = str(Path(gaiarvs_cnn.__file__).resolve().parents[1])
NETWORK = ('{"conv_filters": [4, 4, 2], "rvs_dense": 8, "phot_dense": 4, "xp_dense": 4, '
           '"head_dense": [8, 4], "jit_compile": false, "batch_size": 64}')


def _config(root: Path, name: str, *, query: str | None = None, kinds=None,
            calibration_fraction: float = 0.4) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "net.json").write_text(NETWORK)
    query = query or f"SELECT TOP {N_OBSERVED} source_id FROM gaiadr3.gaia_source"
    kinds = kinds or ["apogee", "galah", "seismic", "clusters", "gsp-spec", "published"]
    path = root / f"{name}.toml"
    path.write_text(f"""
[run]
output = "{root / name}"
seed = 3
[archive]
max_ids = 100
[training]
calibration_fraction = {calibration_fraction}
[network]
config = "{root / 'net.json'}"
splits = 1
models = 2
epochs = 12
tsne = false
[observed]
query = "{query}"
[references]
kinds = {kinds!r}
figure_formats = ["png"]
[catalogue]
formats = ["fits"]
""".replace("'", '"'))
    return path


@pytest.fixture(scope="module")
def synthetic():
    with serve(build_synthetic_archive(N_STARS, REAL, references=True)) as arc:
        yield arc


@pytest.fixture
def loopback_conf(synthetic, tmp_path):
    with contextlib.ExitStack() as stack:
        for name, value in conf_values(synthetic, tmp_path / "cache", retries=1).items():
            stack.enter_context(conf.set_temp(name, value))
        yield synthetic


def _datalink(arc, since: int) -> int:
    return sum(p.endswith("/data") for p, _ in list(arc.log)[since:])


def test_plan_prints_every_stage_and_downloads_no_spectrum(loopback_conf, tmp_path):
    arc = loopback_conf
    config = load_run_config(_config(tmp_path, "planned"))
    since, lines = len(arc.log), []
    run_pipeline(config, plan_only=True, echo=lines.append)
    assert _datalink(arc, since) == 0
    assert not config.output.exists()
    rows = {line.split()[0]: line.split() for line in lines if line.split()
            and line.split()[0] in STAGES}
    assert list(rows) == list(STAGES)
    assert rows["fetch-training"][1] == str(N_STARS)        # stars
    assert rows["fetch-observed"][1] == str(N_OBSERVED)
    # one RVS and one XP DataLink request per 100 stars, plus the selection queries
    assert int(rows["fetch-observed"][2]) == 2 + 2 * N_OBSERVED // 100
    assert rows["train"][2] == "0" and float(rows["train"][5]) > 0   # core-hours
    assert "references apogee, galah" in lines[1]


def test_selection_without_stars_stops_before_any_download(loopback_conf, tmp_path):
    arc = loopback_conf
    path = _config(tmp_path, "empty", query="SELECT source_id FROM gaiadr3.gaia_source "
                                            "WHERE source_id IN (1, 2)")
    since = len(arc.log)
    with pytest.raises(RunConfigError, match="observed.query: selects no star"):
        run_pipeline(load_run_config(path), progress=False)
    assert _datalink(arc, since) == 0 and not (tmp_path / "empty").exists()


def test_too_few_held_out_stars_stop_before_any_download(loopback_conf, tmp_path):
    # 400 labelled stars, a fifth held out: about 80, fewer than the 120 the calibration
    # needs; the run used to download and train, then fail in the calibrate stage
    arc = loopback_conf
    path = _config(tmp_path, "few", calibration_fraction=0.2)
    since = len(arc.log)
    with pytest.raises(RunConfigError, match=r"training.calibration_fraction: 0.2 holds out "
                                             r"\d+ of the 400 labelled stars; the calibration "
                                             r"needs at least 120"):
        run_pipeline(load_run_config(path), progress=False)
    assert _datalink(arc, since) == 0 and not (tmp_path / "few").exists()


def test_unreachable_service_stops_before_any_download(loopback_conf, tmp_path):
    arc = loopback_conf
    config = load_run_config(_config(tmp_path, "down", kinds=["galah"]))
    since = len(arc.log)
    with socket_closed() as url, conf.set_temp("vizier_url", url), \
            conf.set_temp("timeout", 2.0), pytest.raises(ArchiveError) as err:
        run_pipeline(config, progress=False)
    assert url.split("//")[1] in str(err.value) or "VizieR" in str(err.value)
    assert "\n" not in str(err.value).strip()
    assert _datalink(arc, since) == 0 and not config.output.exists()


@contextlib.contextmanager
def socket_closed():
    """The URL of a TCP port on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    yield f"http://127.0.0.1:{port}/vizier/tap"


def _spawn(arc, root: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, **write_config(root / f"{name}-config", arc, root / f"{name}-cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [CODE, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "gaiarvs_cnn", "run",
                             str(root / f"{name}.toml"), "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(proc: subprocess.Popen) -> str:
    out = proc.communicate(timeout=400)[0]
    assert proc.returncode == 0, out[-4000:]
    return out


def _kill_in_stage(proc: subprocess.Popen, log: Path, stage: str, delay: float) -> None:
    """SIGKILL ``proc`` ``delay`` seconds after its log says ``stage`` started."""
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and f"stage {stage}: started" in log.read_text(errors="replace"):
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
            return
        time.sleep(0.05)
    raise AssertionError(f"stage {stage} never started: {proc.communicate()[0][-3000:]}")


def _tables_equal(a: Table, b: Table) -> list[str]:
    if a.colnames != b.colnames or len(a) != len(b):
        return [f"{a.colnames}/{len(a)} != {b.colnames}/{len(b)}"]
    out = []
    for name in a.colnames:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        same = x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
        if not same:
            out.append(name)
    return out


@pytest.mark.parametrize("stage", [KILL_STAGE])
def test_run_killed_in_a_stage_and_rerun_equals_uninterrupted(synthetic, tmp_path, stage):
    from gaiarvs_cnn.catalog import read_catalog

    for name in ("uninterrupted", "resumed"):
        _config(tmp_path, name)
    out = _finish(_spawn(synthetic, tmp_path, "uninterrupted"))
    full = tmp_path / "uninterrupted"
    assert all((full / "state" / f"{s}.json").exists() for s in STAGES), out[-3000:]
    duration = json.loads((full / "state" / f"{stage}.json").read_text())["seconds"]

    killed = _spawn(synthetic, tmp_path, "resumed")
    _kill_in_stage(killed, tmp_path / "resumed" / "run.log", stage, KILL_FRACTION * duration)
    assert killed.returncode == -signal.SIGKILL
    done = [s for s in STAGES if (tmp_path / "resumed" / "state" / f"{s}.json").exists()]
    assert done == list(STAGES)[:list(STAGES).index(stage)], (stage, done)

    out = _finish(_spawn(synthetic, tmp_path, "resumed"))
    for s in done:
        assert f"{s:17s} done before" in out
    resumed = tmp_path / "resumed"

    a = read_catalog(full / "catalogue" / "gaiarvs_cnn_catalog.fits")
    b = read_catalog(resumed / "catalogue" / "gaiarvs_cnn_catalog.fits")
    assert len(a) > 0 and _tables_equal(a, b) == []
    for folder in ("references", "validation"):
        names = sorted(p.name for p in (full / folder).glob("*.ecsv"))
        assert names == sorted(p.name for p in (resumed / folder).glob("*.ecsv"))
        assert names, folder
        for n in names:
            diffs = _tables_equal(Table.read(full / folder / n), Table.read(resumed / folder / n))
            assert diffs == [], (folder, n, diffs)
    # the run's folder: config copy, provenance, log, report with figures
    html = (resumed / "validation" / "summary.html").read_text()
    assert ".png" in html and "galah" in html
    prov = json.loads((resumed / "provenance.json").read_text())
    # (the bundle ids differ: a bundle's id covers its creation time and metadata)
    assert prov["bundle_id"] and prov["stages"]["predict"]["bundle_id"] == prov["bundle_id"]
    assert prov["queries"]["observed"].startswith("SELECT TOP")
    assert set(prov["stages"]) == set(STAGES) and prov["versions"]["gaiarvs_cnn"]
    assert "stage validate: done" in (resumed / "run.log").read_text()
    assert (resumed / "config.toml").read_text() == (tmp_path / "resumed.toml").read_text()
