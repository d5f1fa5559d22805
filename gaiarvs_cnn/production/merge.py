"""The merge: chunk results, in chunk order, into the catalogue file(s).

Every format is written to a hidden temporary sibling of its final name first; only when all of
them are complete are they renamed to their final names (all or nothing), so a failure
leaves earlier catalogues untouched and the run resumable.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..catalog.schema import build_catalog_table, format_of, write_catalog
from ..exceptions import InputDataError
from ..flags import GOOD_FLAG
from ..io.shards import Partition
from ..model.predict import FLAG_COLUMN
from ..utils.atomic import temporary_path
from .task import chunk_path, read_chunk

__all__ = ["merge_chunks", "target_format", "PARQUET"]

#: The Parquet format name (written with astropy's Parquet writer, needs pyarrow).
PARQUET = "parquet"


def target_format(path) -> str:
    """The catalogue format of an output path (``.parquet`` or a `format_of` suffix)."""
    if Path(path).suffix.lower() != ".parquet":
        return format_of(path)
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise InputDataError(f"Writing {path} (Parquet) needs pyarrow: `pip install pyarrow`, "
                             "or choose a .fits / .vot output.") from exc
    return PARQUET


def _table(work_dir, parts: Sequence[Partition], provenance: Mapping):
    cols, flags = [], []
    for part in parts:
        chunk, _ = read_chunk(chunk_path(work_dir, part))
        flags.append(chunk.pop(FLAG_COLUMN))
        cols.append(chunk)
    flag = np.concatenate(flags) if flags else np.zeros(0, dtype="U8")
    return build_catalog_table(cols, flag, dict(provenance))


def merge_chunks(work_dir, parts: Sequence[Partition], targets: Sequence, provenance: Mapping,
                 *, progress: bool = False) -> tuple[int, int]:
    """Write the chunks of ``parts`` (in order) to every target; return (rows, good rows).

    Parameters
    ----------
    work_dir : path-like
        Directory of the ``part-NNNNNN.npz`` chunk files.
    parts : sequence of `~gaiarvs_cnn.io.shards.Partition`
        All chunks of the run, in output order.
    targets : sequence of path-like
        Catalogue files; the format follows the suffix (`target_format`).
    provenance : mapping
        Written into every catalogue's header (`gaiarvs_cnn.catalog.write_catalog`).
    progress : bool
        Show a progress bar over the files.

    Returns
    -------
    (int, int)
        Stars written to each catalogue, and those with ``flag_boundary == "00000000"``.

    Raises
    ------
    CatalogWriteError
        If a file cannot be written; no final name has changed.
    """
    table = _table(work_dir, parts, provenance)
    staged: list[tuple[Path, Path]] = []
    try:
        for target in tqdm(targets, desc="write", unit="file", disable=not progress):
            target = Path(target)
            fmt = target_format(target)
            tmp = temporary_path(target)
            if fmt == PARQUET:
                out = table.copy(copy_data=False)
                out.meta["NSTARS"] = len(table)
                out.write(tmp, format="parquet")
            else:
                write_catalog(table, tmp, format=fmt, overwrite=True, provenance=provenance)
            staged.append((tmp, target))
        for tmp, target in staged:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    n_good = int(np.sum(np.asarray(table["flag_boundary"]) == GOOD_FLAG))
    return len(table), n_good
