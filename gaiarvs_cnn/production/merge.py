"""The streaming merge: chunk results, in chunk order, into the catalogue writers.

One chunk file at a time is read, turned into the 17-column table
(`gaiarvs_cnn.catalog.build_catalog_table`) and appended to one streaming writer per format
(`gaiarvs_cnn.catalog.open_writer`): memory is bounded by one chunk, whatever the number of
stars and the format. Every format is written under a hidden temporary sibling of its final
name; only when all of them are complete are they renamed into place (all or nothing), so a
failure leaves earlier catalogues untouched and the run resumable.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from ..catalog import CatalogWriteError, build_catalog_table, format_of, open_writer
from ..io.shards import Partition
from ..utils.atomic import remove_path, replace_directory, temporary_path
from .task import POSITION_COLUMNS, chunk_path, read_chunk

__all__ = ["merge_chunks"]

#: Formats whose writers also take the stars' positions (HEALPix-partitioned catalogues).
_NEEDS_POSITIONS = ("hats",)


def merge_chunks(work_dir, parts: Sequence[Partition], targets: Sequence, provenance: Mapping,
                 *, formats: Sequence[str] | None = None, progress: bool = False,
                 client=None) -> tuple[int, int]:
    """Stream the chunks of ``parts`` (in order) into every target; return (rows, good rows).

    Parameters
    ----------
    work_dir : path-like
        Directory of the ``part-NNNNNN.npz`` chunk files.
    parts : sequence of `~gaiarvs_cnn.io.shards.Partition`
        All chunks of the run, in output order.
    targets : sequence of path-like
        Catalogue files (or directories, for partitioned formats).
    formats : sequence of str, optional
        The format of each target (default: from its suffix, `gaiarvs_cnn.catalog.format_of`).
    provenance : mapping
        Written into every catalogue (``Table.meta`` when read back).
    progress : bool
        Show a progress bar over the chunks.
    client : `distributed.Client`, optional
        Passed to the writers (used by partitioned formats only).

    Returns
    -------
    (int, int)
        Stars written to each catalogue, and those with ``flag_boundary == "00000000"``.

    Raises
    ------
    CatalogWriteError
        If a file cannot be written; no final name has changed.
    """
    from ..model.predict import FLAG_COLUMN  # lazily: the model layer loads TensorFlow

    targets = [Path(t) for t in targets]
    formats = [format_of(t) for t in targets] if formats is None else list(formats)
    staged = [(temporary_path(t), t, f) for t, f in zip(targets, formats, strict=True)]
    try:
        with contextlib.ExitStack() as stack:
            writers = []
            for tmp, target, fmt in staged:
                try:
                    writers.append(stack.enter_context(open_writer(
                        tmp, fmt, meta=provenance, overwrite=True, client=client)))
                except CatalogWriteError as exc:
                    raise _named(exc, target) from exc
            for part in tqdm(parts, desc="write", unit="chunk", disable=not progress):
                cols, _ = read_chunk(chunk_path(work_dir, part))
                flags = cols.pop(FLAG_COLUMN)
                table = build_catalog_table(cols, flags)
                with_positions = None
                for writer, (_, target, fmt) in zip(writers, staged):
                    out = table
                    if fmt in _NEEDS_POSITIONS:
                        if with_positions is None:
                            with_positions = table.copy(copy_data=False)
                            for name in POSITION_COLUMNS:
                                with_positions[name] = cols[name]
                        out = with_positions
                    try:
                        writer.write(out)
                    except CatalogWriteError as exc:
                        raise _named(exc, target) from exc
        counts = (writers[0].n_rows, writers[0].n_good)
        for tmp, target, _ in staged:
            target.parent.mkdir(parents=True, exist_ok=True)
            if tmp.is_dir():
                replace_directory(tmp, target)
            else:
                os.replace(tmp, target)
    finally:
        for tmp, _, _ in staged:
            remove_path(tmp)
    return counts


def _named(exc: CatalogWriteError, target: Path) -> CatalogWriteError:
    """The writer's error, naming the final file rather than its temporary name."""
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return CatalogWriteError(f"Could not write {target} ({cause}); nothing was written under "
                             "that name. Free disk space or choose another output.")
