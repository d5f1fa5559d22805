"""The bad-star policy: what a reader does with a star whose data cannot be used.

Every reader and ingest function of `gaiarvs_cnn.io` takes ``on_error``: ``'raise'`` (the
first bad star raises its `~gaiarvs_cnn.exceptions.BadStarError`, naming its source_id and
file) or ``'skip'`` (the star is left out, a warning naming its source_id and the reason is
logged, and the rest is kept). ``on_error=None`` means the ``on_error`` setting
(``gaiarvs_cnn.conf.on_error``, default ``'raise'``). Passing one `BadStarPolicy` object to
several readers collects every skipped star, with its reason, in one place.

Examples
--------
>>> from gaiarvs_cnn.exceptions import BadStarError
>>> from gaiarvs_cnn.io.policy import BadStarPolicy
>>> policy = BadStarPolicy("skip")
>>> policy.handle(BadStarError(42, "all-NaN RVS spectrum in a.csv."))
>>> policy.skipped
[42]
>>> policy.reasons
[(42, 'all-NaN RVS spectrum in a.csv.')]
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from astropy import log

from ..exceptions import BadStarError, DuplicateSourceError, InputDataError, Param, Part
from .batch import StarBatch

__all__ = ["ON_ERROR_CHOICES", "BadStarPolicy", "as_policy", "duplicate_error"]

#: Accepted values of ``on_error``.
ON_ERROR_CHOICES = ("raise", "skip")


class BadStarPolicy:
    """What to do with a bad star: raise, or skip it (logging its source_id and reason).

    Parameters
    ----------
    on_error : {'raise', 'skip'} or None, optional
        ``'raise'``: re-raise the error of the first bad star; ``'skip'``: log it, record
        it in `skipped` and `reasons` and go on. None (default): the ``on_error`` setting
        of ``gaiarvs_cnn.conf``.

    Attributes
    ----------
    on_error : str
        ``'raise'`` or ``'skip'``.
    skipped_files : list of str
        Messages of the files left out (unreadable, or not a product we read).
    skipped : list
        source_id of every skipped star, in the order met (None for a row whose source_id
        could not be read).
    reasons : list of (source_id, str)
        The same stars with the reason each was skipped.

    Raises
    ------
    ValueError
        If ``on_error`` is not one of `ON_ERROR_CHOICES`.
    """

    def __init__(self, on_error: str | None = None):
        if on_error is None:
            from ..settings import conf

            on_error = conf.on_error
        if on_error not in ON_ERROR_CHOICES:
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}.")
        self.on_error = on_error
        self.skipped: list = []
        self.reasons: list[tuple] = []
        self.skipped_files: list[str] = []

    def __repr__(self) -> str:
        return f"BadStarPolicy({self.on_error!r}, {len(self.skipped)} skipped)"

    @property
    def n_skipped(self) -> int:
        """Number of stars skipped so far."""
        return len(self.skipped)

    def handle(self, exc: InputDataError) -> None:
        """Re-raise ``exc`` or log it and remember the skipped star.

        Parameters
        ----------
        exc : `~gaiarvs_cnn.exceptions.InputDataError`
            The error of a bad star (usually a `~gaiarvs_cnn.exceptions.BadStarError`,
            whose ``source_id`` and ``problem`` are recorded).

        Raises
        ------
        InputDataError
            ``exc`` itself, when ``on_error == 'raise'``.
        """
        if self.on_error == "raise":
            raise exc
        sid = getattr(exc, "source_id", None)
        self.skipped.append(sid)
        self.reasons.append((sid, getattr(exc, "problem", str(exc))))
        log.warning(f"Skipped: {exc}")

    def skip_file(self, exc: InputDataError) -> None:
        """Re-raise ``exc`` (a whole file is unusable) or log it as a skipped file.

        Parameters
        ----------
        exc : `~gaiarvs_cnn.exceptions.InputDataError`
            Why the file cannot be used; its message names the file.

        Raises
        ------
        InputDataError
            ``exc`` itself, when ``on_error == 'raise'``.
        """
        if self.on_error == "raise":
            raise exc
        self.skipped_files.append(str(exc))
        log.warning(f"Skipped file: {exc}")

    def collect(self, items: Iterable, build: Callable) -> list:
        """Apply ``build`` to every item, keeping the results of the good stars.

        Parameters
        ----------
        items : iterable
            One item per star.
        build : callable
            ``build(item)`` returns the star's row or raises
            `~gaiarvs_cnn.exceptions.BadStarError`, which goes to `handle`.

        Returns
        -------
        list
            The rows of the stars that were not bad.
        """
        rows = []
        for item in items:
            try:
                rows.append(build(item))
            except BadStarError as exc:
                self.handle(exc)
        return rows

    def drop_duplicates(self, batch: StarBatch, where: str) -> StarBatch:
        """Keep the first occurrence of each source_id; every repeat is a bad star.

        Parameters
        ----------
        batch : `~gaiarvs_cnn.io.batch.StarBatch`
            Stars, possibly with repeated source_ids.
        where : str
            What the stars were read from (a file name), for the message.

        Returns
        -------
        StarBatch
            ``batch`` without the repeats (``on_error='skip'``).

        Raises
        ------
        DuplicateSourceError
            At the first repeat, with ``on_error='raise'``.
        """
        ids = batch["source_id"]
        _, first = np.unique(ids, return_index=True)
        keep = np.zeros(len(ids), dtype=bool)
        keep[first] = True
        for sid in ids[~keep].tolist():
            self.handle(duplicate_error(sid, f"source_id occurs more than once in {where}; "
                                             "remove the repeated rows (",
                                        Param("on_error", "skip"), " keeps the first)."))
        return batch if keep.all() else batch[keep]


def as_policy(on_error: str | BadStarPolicy | None) -> BadStarPolicy:
    """``on_error`` as a `BadStarPolicy` (a policy object is returned unchanged).

    Parameters
    ----------
    on_error : {'raise', 'skip'}, `BadStarPolicy` or None
        None means the ``on_error`` setting of ``gaiarvs_cnn.conf``.

    Returns
    -------
    BadStarPolicy
    """
    return on_error if isinstance(on_error, BadStarPolicy) else BadStarPolicy(on_error)


def duplicate_error(source_id: int, *problem: Part) -> DuplicateSourceError:
    """The `~gaiarvs_cnn.exceptions.DuplicateSourceError` of one repeated star.

    Parameters
    ----------
    source_id : int
        The repeated Gaia DR3 source_id (set as the error's ``source_id``).
    *problem : str or Param
        Where it repeats and what to do (parts of the message).

    Returns
    -------
    DuplicateSourceError
    """
    exc = DuplicateSourceError(f"Gaia DR3 {source_id}: ", *problem, source_id=source_id)
    exc.problem = exc.render()[len(f"Gaia DR3 {source_id}: "):]
    return exc
