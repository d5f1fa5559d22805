"""Reading lists of Gaia DR3 source ids (the ``--source-ids`` files and run configurations)."""
from __future__ import annotations

from pathlib import Path

__all__ = ["read_source_ids"]


def read_source_ids(path) -> list[int]:
    """Read source ids from a text file or a table file.

    Parameters
    ----------
    path : str or path-like
        A text file (suffix none, ``.txt``, ``.dat`` or ``.lst``; one id per line,
        ``#`` comments), or a table file with a ``source_id`` column (any case; ECSV,
        CSV, FITS, VOTable).

    Returns
    -------
    list of int
        The Gaia DR3 source ids, in file order.

    Raises
    ------
    InputDataError
        If the table has no ``source_id`` column or the file lists no ids.
    """
    import numpy as np
    from astropy.table import Table

    from ..exceptions import InputDataError
    from ..utils.columns import require_column

    path = Path(path)
    if path.suffix.lower() in ("", ".txt", ".dat", ".lst"):
        ids = np.array(_text_ids(path), dtype=np.int64)
    else:
        try:
            table = Table.read(path)
        except (OSError, ValueError, TypeError) as exc:
            raise InputDataError(f"Cannot read {path} as a table of source ids ({exc}); "
                                 "give a text file with one id per line or a table with a "
                                 "source_id column.", file=path) from exc
        col = require_column(table.colnames, "source_id", where=str(path), error=InputDataError)
        values = np.asarray(table[col])
        if values.dtype.kind not in "iu":
            raise InputDataError(f"{path}: column {col} holds {values.dtype} values, not "
                                 "integer Gaia DR3 source ids.", file=path, column=col)
        ids = values.astype(np.int64)
    if ids.size == 0:
        raise InputDataError(f"{path} lists no source ids.", file=path)
    return ids.tolist()


#: Largest Gaia DR3 source_id (a positive signed 64-bit integer).
_MAX_SOURCE_ID = 2**63 - 1


def _text_ids(path: Path) -> list[int]:
    """The ids of a text file (one per line, ``#`` comments); a bad line is an error
    naming its number and content (nothing of it reaches a query)."""
    from ..exceptions import InputDataError

    ids = []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                if not text.isascii() or not text.isdigit() or not (
                        0 < int(text) <= _MAX_SOURCE_ID):
                    shown = text if len(text) <= 40 else text[:40] + "..."
                    raise InputDataError(
                        f"{path}, line {number}: {shown!r} is not a Gaia DR3 source_id (a "
                        "positive integer of at most 19 digits); write one id per line.")
                ids.append(int(text))
    except UnicodeError as exc:  # pragma: no cover - errors='replace' avoids it
        raise InputDataError(f"{path} is not a text file of source ids ({exc}).") from exc
    return ids
