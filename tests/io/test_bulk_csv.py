"""The block reader of Gaia DR3 bulk files (gaiarvs_cnn.io.bulk_csv): pyarrow blocks give
the stars, order and errors of the row-level reader, which takes over for one block only.

Files are written from real RVS values by the helpers of ``tests/io/test_readers.py``; a
small ``BLOCK_BYTES`` makes a few-star file span several blocks.
"""
from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from gaiarvs_cnn.constants import RVS_NPIX
from gaiarvs_cnn.exceptions import InputDataError
from gaiarvs_cnn.io import bulk_csv
from gaiarvs_cnn.io.bulk_csv import bulk_source_ids, iter_bulk_rvs
from gaiarvs_cnn.io.policy import BadStarPolicy

_spec = importlib.util.spec_from_file_location(
    "_bulk_writers", Path(__file__).resolve().parent / "test_readers.py")
readers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readers)

#: About two RVS rows (the test writer's cells are ~40 kB each) per block.
SMALL_BLOCK = 100_000


def _edit(path, sid, edit):
    """Rewrite the line of star ``sid`` (second column) of a gzipped bulk file."""
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    k = next(i for i, line in enumerate(lines) if line.split(",")[1:2] == [str(sid)])
    lines[k:k + 1] = edit(lines[k])
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def _null_errors(line):
    cells = line.split('"')
    cells[3] = ""                                        # flux_error cell -> '' (missing)
    return ['"'.join(cells).replace(',"",', ",null,")]


@pytest.fixture
def rvs_file(tmp_path):
    """12 stars of real spectra; star 105 is all-null, star 108 has a null flux_error."""
    real = readers._real_rvs_rows()
    rows = [dict(real[i % len(real)], source_id=100 + i) for i in range(12)]
    rows[5]["flux"] = np.full(RVS_NPIX, np.nan)
    path = readers.write_bulk(tmp_path / "RvsMeanSpectrum_000-001.csv.gz", rows,
                              ("flux", "flux_error"))
    _edit(path, 108, _null_errors)
    return path


def _read(path, chunk_size=5, **kw):
    policy = BadStarPolicy("skip")
    batches = list(iter_bulk_rvs(path, chunk_size=chunk_size, on_error=policy, **kw))
    return batches, policy


def _no_arrow(*args, **kwargs):
    raise pa.ArrowInvalid("pyarrow disabled by the test")


def test_blocks_give_the_stars_and_errors_of_the_row_reader(rvs_file, monkeypatch):
    monkeypatch.setattr(bulk_csv, "BLOCK_BYTES", SMALL_BLOCK)
    blocks, policy = _read(rvs_file)
    monkeypatch.setattr(bulk_csv, "_arrow_reader", _no_arrow)   # every row through csv
    rows, row_policy = _read(rvs_file)
    assert [len(b) for b in blocks] == [len(b) for b in rows] == [5, 4, 2]
    assert policy.skipped == row_policy.skipped == [105]
    for a, b in zip(blocks, rows):
        for name in ("source_id", "ra", "dec", "flux", "flux_error"):
            np.testing.assert_array_equal(a[name], b[name])
    assert np.isnan(blocks[1]["flux_error"][2]).all()             # 108: missing errors
    assert np.isfinite(blocks[1]["flux"][2]).sum() > 2000


def test_malformed_cell_reads_its_block_only_row_by_row(rvs_file, monkeypatch):
    _edit(rvs_file, 110, lambda line: [line.replace("[", "[x,", 1)])
    built = []
    kind = bulk_csv._RVS
    monkeypatch.setattr(bulk_csv, "_RVS", bulk_csv._Kind(
        lambda sid, cells, where: built.append(sid) or kind.build(sid, cells, where),
        kind.arrays, kind.scalars, kind.check_flux))
    monkeypatch.setattr(bulk_csv, "BLOCK_BYTES", SMALL_BLOCK)
    batches, policy = _read(rvs_file)
    assert policy.skipped == [105, 110]
    assert "non-numeric value 'x' at position 1" in policy.reasons[1][1]
    assert np.concatenate([b["source_id"] for b in batches]).tolist() == [
        100, 101, 102, 103, 104, 106, 107, 108, 109, 111]
    assert 110 in built and 100 not in built and 111 not in built
    assert set(built) <= {105, 108, 109, 110, 111}                # odd rows + 110's block


def test_unparsable_block_goes_to_csv_and_pyarrow_resumes(rvs_file, monkeypatch):
    # a line break inside a quoted cell: csv reads it, pyarrow's parser refuses the block
    _edit(rvs_file, 103, lambda line: line.replace('","[', '","[\n', 1).split("\n"))
    monkeypatch.setattr(bulk_csv, "BLOCK_BYTES", SMALL_BLOCK)
    by_csv = []
    csv_rows = bulk_csv._csv_rows
    monkeypatch.setattr(bulk_csv, "_csv_rows", lambda *a: (
        by_csv.append(r.number) or r for r in csv_rows(*a)))
    batches, policy = _read(rvs_file)
    assert np.concatenate([b["source_id"] for b in batches]).tolist() == [
        100, 101, 102, 103, 104, 106, 107, 108, 109, 110, 111]
    assert 0 < len(by_csv) <= 4 and 13 not in by_csv               # one block, not the rest
    assert bulk_source_ids(rvs_file, block_bytes=SMALL_BLOCK).tolist() == list(range(100, 112))


def test_truncated_row_in_a_later_block_names_its_row_after_earlier_chunks(rvs_file,
                                                                          monkeypatch):
    with gzip.open(rvs_file, "at") as fh:
        fh.write("not-a-number,1,2\n")
    monkeypatch.setattr(bulk_csv, "BLOCK_BYTES", SMALL_BLOCK)
    chunks = iter_bulk_rvs(rvs_file, chunk_size=1, on_error="skip")
    first = [next(chunks)["source_id"][0] for _ in range(11)]
    assert first == [100, 101, 102, 103, 104, 106, 107, 108, 109, 110, 111]
    with pytest.raises(InputDataError, match=r"RvsMeanSpectrum_000-001.csv.gz: data row 13 "
                                             r"has 3 fields, expected 9"):
        next(chunks)


def test_source_ids_with_designations_and_bad_ids(tmp_path, monkeypatch):
    real = readers._real_rvs_rows()
    rows = [dict(real[0], source_id=sid) for sid in (7, 8, 9)]
    path = readers.write_bulk(tmp_path / "RvsMeanSpectrum_x", rows, ("flux", "flux_error"))
    _edit(path, 7, lambda line: [line.replace(",7,", ",Gaia DR3 7,", 1)])
    _edit(path, 8, lambda line: [line.replace(",8,", ",eleven,", 1)])
    assert bulk_source_ids(path).tolist() == [7, 9]
    batches, policy = _read(path)
    assert np.concatenate([b["source_id"] for b in batches]).tolist() == [7, 9]
    assert policy.skipped == [None]
    assert "data row 2: 'eleven' is not a Gaia source_id" in policy.reasons[0][1]
