"""Table column helpers: the one case-insensitive column lookup of the package.

Archive answers, VizieR tables and user files spell column names in every case
(``SOURCE_ID``, ``Source_ID``, ``source_id``); every reader finds them through
`find_column`.
"""
from __future__ import annotations

from collections.abc import Iterable

__all__ = ["find_column", "require_column"]


def find_column(names: Iterable[str], *wanted: str) -> str | None:
    """The first of ``wanted`` present in ``names``, compared case-insensitively.

    Parameters
    ----------
    names : iterable of str
        Available column names (e.g. ``table.colnames``).
    *wanted : str
        Candidate names, in order of preference.

    Returns
    -------
    str or None
        The name as spelled in ``names``, or None if no candidate is present.

    Examples
    --------
    >>> find_column(["SOURCE_ID", "ra"], "source_id")
    'SOURCE_ID'
    >>> find_column(["ra"], "source_id", "gaia_id") is None
    True
    """
    lower: dict[str, str] = {}
    for name in names:
        lower.setdefault(name.lower(), name)
    for w in wanted:
        if w.lower() in lower:
            return lower[w.lower()]
    return None


def require_column(names: Iterable[str], *wanted: str, where: str = "the table",
                   error: type[Exception] = KeyError) -> str:
    """Like `find_column`, but raise ``error`` naming ``where`` if no candidate is present.

    Parameters
    ----------
    names : iterable of str
        Available column names.
    *wanted : str
        Candidate names, in order of preference.
    where : str, optional
        What holds the columns (a file name, a service), for the message.
    error : type, optional
        Exception class raised (e.g. `~gaiarvs_cnn.exceptions.InputDataError`).

    Returns
    -------
    str
        The name as spelled in ``names``.
    """
    names = list(names)
    found = find_column(names, *wanted)
    if found is None:
        alt = f" (or {', '.join(repr(w) for w in wanted[1:])})" if len(wanted) > 1 else ""
        raise error(f"{where} has no column '{wanted[0]}'{alt}; it has {names[:20]}.")
    return found
