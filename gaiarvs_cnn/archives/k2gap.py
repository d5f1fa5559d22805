"""K2 Galactic Archaeology Program DR3 asteroseismology (Zinn et al. 2022, ApJ 926, 191).

Table: VizieR ``J/ApJ/926/191`` (``K2GAP_TABLE``; the table name inside the catalogue and
all its columns are unverified -- nothing stored names them; override the table with the
``table`` argument if VizieR names it differently, and check it with
``gaiarvs-cnn fetch reference --kind seismic --probe``). Canonical columns (kind
``seismic``): ``numax``, ``e_numax``, ``dnu``, ``e_dnu`` (uHz) <-
``numax``/``e_numax``/``dnu``/``e_dnu`` (also ``nu_max``, ``delta_nu``), and ``source_id``,
found in this order:

1. a Gaia DR3/EDR3 id column (``GaiaDR3``, ``GaiaEDR3``, ``source_id``);
2. a Gaia DR2 id column (``GaiaDR2``, ``Gaia``) mapped to DR3 with
   `gaiarvs_cnn.archives.clusters.dr2_to_dr3`;
3. otherwise the positions (``RAJ2000``/``DEJ2000``, ``RA_ICRS``/``DE_ICRS``, ``_RA``/``_DE``,
   ``RAdeg``/``DEdeg``; deg) cross-matched with Gaia DR3 by the CDS XMatch service
   (`gaiarvs_cnn.archives.xmatch.xmatch_gaia_dr3`, astroquery; nearest source within
   ``conf.xmatch_max_distance``), as a table keyed on EPIC ids needs.

Rows without a finite numax, and rows without a Gaia DR3 id, are dropped. The seismic
log g (from numax and Teff, paper Sect. 6.2) is computed by the validation suite,
`gaiarvs_cnn.validation.seismic.seismic_logg`.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from astropy.table import Table

from ..exceptions import ArchiveError
from ..utils.arrays import masked_to_nan
from .clusters import dr2_to_dr3
from .http import HTTPClient
from .specs import ReferenceSpec
from .tables import ColumnMap

__all__ = ["K2GAP_TABLE", "K2GAP_SPEC", "query_k2gap", "k2gap_from_table"]

K2GAP_TABLE = "J/ApJ/926/191/table2"
K2GAP_COLUMNS = ColumnMap({
    "numax": ("numax", "nu_max"), "e_numax": ("e_numax", "e_nu_max"),
    "dnu": ("dnu", "delta_nu"), "e_dnu": ("e_dnu", "e_delta_nu"),
    "dr3_id": ("GaiaDR3", "GaiaEDR3", "source_id"), "dr2_id": ("GaiaDR2", "Gaia"),
    "epic": ("EPIC",), "ra": ("RAJ2000", "RA_ICRS", "_RA", "RAdeg"),
    "dec": ("DEJ2000", "DE_ICRS", "_DE", "DEdeg"),
}, required=("numax", "e_numax"), service="K2-GAP DR3")


def _finite_numax(t: Table) -> np.ndarray:
    return np.isfinite(masked_to_nan(t["numax"]))


#: The survey's specification (see `gaiarvs_cnn.archives.specs`); downloaded whole.
K2GAP_SPEC = ReferenceSpec(
    kind="seismic", title="K2-GAP DR3 (Zinn et al. 2022)", table=K2GAP_TABLE,
    columns=K2GAP_COLUMNS, cut=_finite_numax,
    verified="not verified from a stored source: the table name and its columns are "
             "assumptions (tests/data/reference_schemas/README.md); run the probe")

def k2gap_from_table(raw: Table, mapping: dict[int, int] | None = None, *,
                     source_ids=None) -> Table:
    """Canonical seismic table from K2-GAP rows (DR3 ids, DR2 ids with ``mapping``, or
    ``source_ids`` from a positional cross-match).

    Parameters
    ----------
    raw : astropy.table.Table
        K2-GAP rows (column names as in the module docstring, any case).
    mapping : dict of int to int, optional
        Gaia DR2 id -> DR3 id (see `~gaiarvs_cnn.archives.clusters.dr2_to_dr3`); used
        when ``raw`` has only a DR2 id column. Unmapped rows are dropped.
    source_ids : array-like of int, optional
        The Gaia DR3 id of each row of ``raw`` (0 = no counterpart, dropped), e.g. the
        ``source_id`` column of `~gaiarvs_cnn.archives.xmatch.xmatch_gaia_dr3`; used when
        ``raw`` has no DR3 id column.

    Returns
    -------
    astropy.table.Table
        ``source_id``, ``numax``, ``e_numax``, ``dnu``, ``e_dnu`` (uHz), for rows with
        a finite numax.

    Raises
    ------
    ArchiveError
        If ``raw`` lacks the numax columns or a usable Gaia id column.
    """
    def gaia_ids(t: Table) -> Table:
        if "dr3_id" in t.colnames:
            t["source_id"] = np.ma.filled(np.ma.asarray(t["dr3_id"]), 0).astype(np.int64)
        elif source_ids is not None:
            t["source_id"] = np.asarray(source_ids, dtype=np.int64)
        elif "dr2_id" in t.colnames and mapping is not None:
            dr2 = np.ma.filled(np.ma.asarray(t["dr2_id"]), 0).astype(np.int64)
            t["source_id"] = np.array([mapping.get(int(i), 0) for i in dr2], dtype=np.int64)
        else:
            raise ArchiveError("K2-GAP table has no Gaia id column (GaiaDR3/GaiaEDR3/"
                               "source_id, or GaiaDR2 with a DR2->DR3 mapping) and no "
                               "cross-matched source_ids; query_k2gap cross-matches it by "
                               "position (RAJ2000/DEJ2000) when it has positions.")
        return t

    if source_ids is not None and len(source_ids) != len(raw):
        raise ArchiveError(f"K2-GAP: {len(source_ids)} cross-matched source_ids for "
                           f"{len(raw)} rows.")
    return replace(K2GAP_SPEC, prepare=gaia_ids).finish(raw)


def query_k2gap(*, table: str = K2GAP_TABLE, url: str | None = None,
                tap_url: str | None = None, xmatch_url: str | None = None,
                client: HTTPClient | None = None, refresh: bool = False) -> Table:
    """Query K2-GAP DR3 from VizieR; canonical table (kind ``seismic``).

    The Gaia DR3 ids come from the table's own id column, else from its Gaia DR2 ids
    (``gaiadr3.dr2_neighbourhood``), else from its positions (CDS XMatch with Gaia DR3;
    ``meta`` then records the service and the number of rows without a counterpart).

    Parameters
    ----------
    table : str
        VizieR table name (default `K2GAP_TABLE`).
    url : str, optional
        VizieR TAP service (default ``conf.vizier_url``).
    tap_url : str, optional
        ESA TAP service for the DR2 -> DR3 mapping (default ``conf.gaia_tap_url``).
    xmatch_url : str, optional
        CDS XMatch service for the positional cross-match (default ``conf.xmatch_url``).
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Retry policy and timeout.
    refresh : bool
        If True, bypass the download cache.

    Returns
    -------
    astropy.table.Table
        The canonical seismic table (see `k2gap_from_table`).

    Raises
    ------
    ArchiveError
        If a query fails or the table has neither a usable Gaia id column nor
        positions.
    """
    spec = K2GAP_SPEC if table == K2GAP_SPEC.table else replace(K2GAP_SPEC, table=table)
    raw = spec.query(url=url, client=client, refresh=refresh)

    def find(name: str) -> str | None:
        return K2GAP_COLUMNS.find(raw, name)

    if find("dr3_id") is not None:
        return k2gap_from_table(raw)
    if find("dr2_id") is not None:
        dr2 = masked_to_nan(raw[find("dr2_id")])
        mapping = dr2_to_dr3(dr2[np.isfinite(dr2)].astype(np.int64), tap_url=tap_url,
                             client=client, refresh=refresh)
        return k2gap_from_table(raw, mapping)
    if find("ra") is not None and find("dec") is not None:
        from .xmatch import xmatch_gaia_dr3

        matched = xmatch_gaia_dr3(masked_to_nan(raw[find("ra")]),
                                  masked_to_nan(raw[find("dec")]), url=xmatch_url,
                                  client=client, refresh=refresh)
        out = k2gap_from_table(raw, source_ids=matched["source_id"])
        out.meta.update(matched.meta)
        return out
    return k2gap_from_table(raw)  # raises: no Gaia id and no positions
