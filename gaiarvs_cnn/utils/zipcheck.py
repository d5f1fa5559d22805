"""Size budget of a zip archive, checked before any member is read (zip bombs).

A zip's central directory declares every member's uncompressed size, and `zipfile`
never returns more than that size from a member (a member that would inflate further
fails its CRC check instead). Checking the declared sizes against a budget before
reading therefore bounds what reading the archive can cost: a 1 MB download cannot
inflate to gigabytes in memory or in time.
"""
from __future__ import annotations

import zipfile

from ..exceptions import InputDataError

__all__ = ["check_zip_budget"]


def check_zip_budget(archive: zipfile.ZipFile, *, member_max: int | None = None,
                     total_max: int | None = None, label: str = "zip archive") -> int:
    """Refuse a zip whose members would inflate beyond a budget, before reading any.

    Parameters
    ----------
    archive : zipfile.ZipFile
        The open archive.
    member_max : int, optional
        Largest uncompressed size of one member (bytes); default
        ``conf.zip_member_max_bytes``.
    total_max : int, optional
        Largest uncompressed size of all members together; default ``conf.zip_max_bytes``.
    label : str
        Names the archive in the message.

    Returns
    -------
    int
        The total uncompressed size declared.

    Raises
    ------
    InputDataError
        Naming the first member over ``member_max``, or the total over ``total_max``.

    Examples
    --------
    >>> import io, zipfile
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
    ...     zf.writestr("zeros.csv", b"0" * 10_000)
    >>> check_zip_budget(zipfile.ZipFile(buf), member_max=20_000, total_max=20_000)
    10000
    >>> check_zip_budget(zipfile.ZipFile(buf), member_max=1000)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    gaiarvs_cnn.exceptions.InputDataError: zip archive: member 'zeros.csv' inflates to ...
    """
    from ..settings import conf

    member_max = int(conf.zip_member_max_bytes if member_max is None else member_max)
    total_max = int(conf.zip_max_bytes if total_max is None else total_max)
    total = 0
    for info in archive.infolist():
        if info.file_size > member_max:
            raise InputDataError(
                f"{label}: member {info.filename!r} inflates to {info.file_size} bytes "
                f"({info.compress_size} compressed), over the limit of {member_max} "
                f"(conf.zip_member_max_bytes); not read. Raise the limit if the file is "
                f"genuine.")
        total += info.file_size
    if total > total_max:
        raise InputDataError(f"{label}: its {len(archive.infolist())} members inflate to "
                             f"{total} bytes, over the limit of {total_max} "
                             f"(conf.zip_max_bytes); not read. Ask for fewer stars per "
                             f"request or raise the limit.")
    return total
