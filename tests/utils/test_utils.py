"""Tests of gaiarvs_cnn.utils: atomic writes, checksums, column lookup."""
import hashlib
import json
import os

import numpy as np
import pytest

from gaiarvs_cnn.exceptions import InputDataError, OutputExistsError
from gaiarvs_cnn.utils.atomic import (
    atomic_directory,
    atomic_path,
    is_temporary,
    refuse_existing,
    temporary_path,
    write_json_atomic,
    write_text_atomic,
)
from gaiarvs_cnn.utils.checksum import sha256_file
from gaiarvs_cnn.utils.columns import find_column, require_column


def test_temporary_names_are_unique_hidden_and_recognised(tmp_path):
    names = {temporary_path(tmp_path / "cat.fits") for _ in range(50)}
    assert len(names) == 50
    for name in names:
        assert name.parent == tmp_path and name.name.startswith(".cat.fits.")
        assert is_temporary(name)
    assert temporary_path(tmp_path / "m.keras", suffix=".keras").name.endswith(".tmp.keras")
    assert not is_temporary(tmp_path / "cat.fits")


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_written_file_has_the_umask_mode(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a" / "b.txt", "x")
    finally:
        os.umask(umask)
    assert (tmp_path / "a" / "b.txt").stat().st_mode & 0o777 == 0o644


def test_json_converts_numpy_and_keeps_key_order(tmp_path):
    path = write_json_atomic(tmp_path / "s.json", {"b": np.float32(1.5), "a": np.arange(3)})
    assert json.loads(path.read_text()) == {"b": 1.5, "a": [0, 1, 2]}
    assert path.read_text().index('"b"') < path.read_text().index('"a"')
    with pytest.raises(TypeError, match="set is not JSON"):
        write_json_atomic(tmp_path / "t.json", {"x": {1}})
    assert not (tmp_path / "t.json").exists()


def test_directory_is_replaced_whole(tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(ValueError), atomic_directory(out) as tmp:
        (tmp / "new.txt").write_text("new")
        raise ValueError
    assert sorted(os.listdir(out)) == ["old.txt"]
    with atomic_directory(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(os.listdir(out)) == ["new.txt"]
    assert sorted(os.listdir(tmp_path)) == ["bundle"]


def test_refuse_existing_names_the_file(tmp_path):
    path = tmp_path / "x.h5"
    refuse_existing(path, overwrite=False)
    path.write_text("")
    refuse_existing(path, overwrite=True)
    with pytest.raises(OutputExistsError, match="store .*x.h5 exists; pass overwrite=True") as e:
        refuse_existing(path, overwrite=False, what="store")
    assert e.value.path == str(path)


def test_sha256_file_matches_hashlib(tmp_path):
    data = os.urandom(3 << 20)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_column_lookup_is_case_insensitive_and_ordered():
    assert find_column(["SOURCE_ID", "Ra"], "ra", "source_id") == "Ra"
    assert find_column(["a"], "b") is None
    with pytest.raises(InputDataError, match="f.csv has no column 'ruwe'"):
        require_column(["ra"], "ruwe", where="f.csv", error=InputDataError)
