"""``gaiarvs-cnn fetch gaia`` killed with SIGKILL half-way and re-run: the final store equals
an uninterrupted run's (subprocesses against the loopback archive of synthetic stars)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import gaiarvs_cnn
from gaiarvs_cnn.archives.cache import DiskCache
from gaiarvs_cnn.archives.loopback import (
    build_synthetic_archive,
    kill_after,
    serve,
    store_differences,
    synthetic_ids,
    write_config,
)
from gaiarvs_cnn.archives.tap import chunked
from gaiarvs_cnn.io.store import Store

from .conftest import REAL

N_STARS = 240
CHUNK = 40          # --max-ids: 6 chunks
KILL_AT = 3         # SIGKILL once the 3rd chunk's XP products have been sent
#: The checkout whose code the test imported; the subprocesses run the same code.
CODE = str(Path(gaiarvs_cnn.__file__).resolve().parents[1])


@pytest.fixture
def synthetic():
    with serve(build_synthetic_archive(N_STARS, REAL)) as arc:
        yield arc


def _spawn(arc, root: Path, name: str) -> subprocess.Popen:
    """``fetch gaia --training apogee`` into ``root/<name>.h5`` with its own config and
    cache (a re-run with the same ``name`` is the same command, cache included)."""
    env = {**os.environ, **write_config(root / f"{name}-config", arc, root / f"{name}-cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [CODE, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-m", "gaiarvs_cnn", "fetch", "gaia", "--training", "apogee",
         "-o", str(root / f"{name}.h5"), "--max-ids", str(CHUNK)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> str:
    out = proc.communicate(timeout=180)[0]
    assert proc.returncode == 0, out[-3000:]
    return out


def test_fetch_gaia_killed_half_way_and_rerun_equals_uninterrupted(synthetic, tmp_path):
    ids = synthetic_ids(N_STARS).tolist()
    chunks = [c.tolist() for c in chunked(synthetic_ids(N_STARS), CHUNK)]
    _finish(_spawn(synthetic, tmp_path, "uninterrupted"))

    killed = _spawn(synthetic, tmp_path, "resumed")
    state = kill_after(synthetic, killed.pid, KILL_AT, RETRIEVAL_TYPE="XP_CONTINUOUS")
    killed.communicate(timeout=180)
    synthetic.after_response = None
    assert state["killed"] and killed.returncode == -signal.SIGKILL

    # some but not all chunks, whole chunks only, and only stored chunks recorded as done
    with Store.open(tmp_path / "resumed.h5") as store:
        stored = store.source_ids().tolist()
        done = set(store.meta.get("fetch_done_chunks", []))
    n_done = len(stored) // CHUNK
    assert len(stored) % CHUNK == 0 and n_done in (KILL_AT - 1, KILL_AT)
    assert stored == ids[:len(stored)]
    assert done <= {DiskCache.key(c) for c in chunks[:n_done]}

    before = len(synthetic.log)
    out = _finish(_spawn(synthetic, tmp_path, "resumed"))
    assert f"skipped {n_done} chunk(s)" in out
    assert store_differences(tmp_path / "uninterrupted.h5", tmp_path / "resumed.h5") == []
    with Store.open(tmp_path / "resumed.h5") as store:
        assert store.source_ids().tolist() == ids  # every star, once, in order
    # the chunks stored before the kill are not downloaded again
    rerun_rvs = sum(p.endswith("/data") and q["RETRIEVAL_TYPE"] == "RVS"
                    for p, q in synthetic.log[before:])
    assert rerun_rvs <= len(chunks) - n_done


def test_store_differences_sees_a_changed_value(tiny_observed_store, tmp_path):
    """The comparison used above can fail: one changed flux value is reported."""
    with Store.open(tiny_observed_store) as src:
        batch, meta, extra = src.read(), src.meta, src.extra_columns
    for name, change in (("same", False), ("changed", True)):
        if change:
            batch["flux"][5, 100] += 1.0
        with Store.create(tmp_path / f"{name}.h5", extra_columns=extra, meta=meta) as out:
            out.append(batch)
    assert store_differences(tiny_observed_store, tmp_path / "same.h5") == []
    assert store_differences(tiny_observed_store, tmp_path / "changed.h5") == [
        "column flux differs"]
