"""The paper's own RVS-CNN catalogue (Guiglion, Nepal et al. 2024, Table 2).

886 080 Gaia-RVS stars, published in the AIP Gaia archive (the paper cites
https://gaia.aip.de/metadata/gaiadr3_contrib/cnn_gaia_rvs_catalog/). The columns of the
paper's Table 2 are ``sourceid`` (Gaia DR3 id, "char"), ``teff``, ``eteff``,
``sigma_teff``, ``logg``, ``elogg``, ``sigma_logg``, ``mh``, ``emh``, ``sigma_mh``, ``feh``,
``efeh``, ``sigma_feh``, ``alpham``, ``ealpham``, ``sigma_alpham`` and ``flag_boundary``
(an **integer** there: leading zeros are lost, so it is zero-padded back to 8 digits).

Canonical table (kind ``published``): ``source_id``, the five labels, ``e_<label>`` = the
overall uncertainty ``sigma_<label>``, ``emodel_<label>`` = the model-to-model dispersion,
and ``flag_boundary`` (8-character string).

Sources: `read_published` for the released CSV (``--reference published=FILE``), or
`query_published` at the AIP TAP service (``conf.aip_tap_url``). The TAP table name
`PUBLISHED_TABLE` is inferred from the metadata URL above (schema ``gaiadr3_contrib``,
table ``cnn_gaia_rvs_catalog``) and was not verified against the service: check it with
``gaiarvs-cnn fetch reference --kind published --probe``.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from astropy.table import Table

from ..constants import LABELS
from ..exceptions import InputDataError
from .http import HTTPClient
from .specs import ReferenceSpec
from .tables import ColumnMap

__all__ = ["PUBLISHED_TABLE", "PUBLISHED_COLUMNS", "PUBLISHED_SPEC", "pad_flags",
           "published_from_table", "read_published", "query_published"]

PUBLISHED_TABLE = "gaiadr3_contrib.cnn_gaia_rvs_catalog"
PUBLISHED_COLUMNS = ColumnMap({
    "source_id": ("sourceid", "source_id"),
    **{k: (k,) for k in LABELS},
    **{f"e_{k}": (f"sigma_{k}",) for k in LABELS},
    **{f"emodel_{k}": (f"e{k}",) for k in LABELS},
    "flag_boundary": ("flag_boundary",),
}, required=("source_id", *LABELS, "flag_boundary"), service="published RVS-CNN catalogue")


def pad_flags(values) -> np.ndarray:
    """``flag_boundary`` as 8-character strings (integers zero-padded: 1000 -> "00001000").

    Parameters
    ----------
    values : array-like of int or str
        The flags as released (integers) or as strings.

    Returns
    -------
    numpy.ndarray
        ``<U8`` strings of '0'/'1'.

    Raises
    ------
    InputDataError
        If a value is negative, masked, longer than 8 digits or not made of 0/1.

    Examples
    --------
    >>> pad_flags([0, 1000, 10000001]).tolist()
    ['00000000', '00001000', '10000001']
    """
    arr = np.ma.asarray(values)
    if np.ma.count_masked(arr):
        raise InputDataError("flag_boundary has missing values; every star of the published "
                             "catalogue has one.")
    text = [str(int(v)) if arr.dtype.kind in "iuf" else str(v).strip()
            for v in np.asarray(arr).tolist()]
    out = np.array([t.zfill(8) for t in text], dtype="<U8")
    bad = [t for t in text if len(t) > 8 or set(t) - {"0", "1"}]
    if bad:
        raise InputDataError(f"flag_boundary value(s) {bad[:5]} are not 8 digits of 0/1.")
    return out


def _canonical(t: Table) -> Table:
    t["flag_boundary"] = pad_flags(t["flag_boundary"])
    t["source_id"] = np.asarray([int(str(s).strip()) for s in np.asarray(t["source_id"])],
                                dtype=np.int64)
    return t


#: The specification (see `gaiarvs_cnn.archives.specs`).
PUBLISHED_SPEC = ReferenceSpec(
    kind="published", title="RVS-CNN catalogue (Guiglion, Nepal et al. 2024)",
    table=PUBLISHED_TABLE, columns=PUBLISHED_COLUMNS, id_column="sourceid",
    url_setting="aip_tap_url", namespace="aip", prepare=_canonical,
    verified="columns: the paper's Table 2; TAP table name inferred from the paper's "
             "metadata URL, not verified against the service")


def published_from_table(raw: Table) -> Table:
    """Canonical ``published`` table from rows in the released layout (paper Table 2).

    Parameters
    ----------
    raw : astropy.table.Table
        Released CSV or TAP rows (any case of the column names).

    Returns
    -------
    astropy.table.Table
        Checked by `~gaiarvs_cnn.io.reference.check_reference` (kind ``published``).

    Raises
    ------
    ArchiveError
        If a required column is missing.
    InputDataError
        If ``flag_boundary`` is malformed or ``source_id`` is duplicated.
    """
    return PUBLISHED_SPEC.finish(raw, cuts=False)


def read_published(path) -> Table:
    """Read the released catalogue file (CSV, or any table format astropy reads).

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    astropy.table.Table
        The canonical table (see `published_from_table`).

    Raises
    ------
    InputDataError
        If the file is missing or not in the released layout.
    """
    from pathlib import Path

    from ..exceptions import ArchiveError

    path = Path(path)
    if not path.exists():
        raise InputDataError(f"No published catalogue file at {path}.")
    kwargs = {"format": "ascii.csv"} if path.suffix.lower() in (".csv", ".gz") else {}
    try:
        return published_from_table(Table.read(path, **kwargs))
    except ArchiveError as exc:
        raise InputDataError(f"{path} is not in the released layout of the RVS-CNN "
                             f"catalogue (paper Table 2): {exc}") from exc


def query_published(source_ids: Iterable[int] | None = None, *, url: str | None = None,
                    client: HTTPClient | None = None, refresh: bool = False) -> Table:
    """The published catalogue (or its rows for ``source_ids``) from the AIP TAP service.

    Parameters
    ----------
    source_ids : iterable of int, optional
        Gaia DR3 ids (default: all 886 080 stars, an asynchronous job).
    url : str, optional
        TAP service (default ``conf.aip_tap_url``).
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Retry policy and timeout.
    refresh : bool
        If True, bypass the download cache.

    Returns
    -------
    astropy.table.Table
        The canonical table (see `published_from_table`).

    Raises
    ------
    ArchiveError
        If the query fails (a wrong table name is reported by the service).
    """
    return published_from_table(PUBLISHED_SPEC.query(source_ids, url=url, client=client,
                                                     refresh=refresh))
