"""Open-cluster members (Cantat-Gaudin et al. 2020) with Gaia DR3 ids.

Table: VizieR ``J/A+A/640/A1/nodup`` (members, ``conf.vizier_url``). Columns used
(case-insensitive): ``GaiaDR2`` (or ``Source``; Gaia **DR2** source id), ``Cluster``
(name), ``proba`` (membership probability). The canonical table (kind ``clusters``) has
``source_id`` (DR3), ``cluster``, ``proba`` and ``dr2_source_id``.

DR2 ids are mapped to DR3 through ``gaiadr3.dr2_neighbourhood`` at the ESA archive
(`dr2_to_dr3`). When one DR2 id has several DR3 neighbours we keep the one with the
smallest ``angular_distance`` (ties: smallest absolute ``magnitude_difference``) — the
documented choice of this package; members without any neighbour are dropped and listed
in ``table.meta["unmatched_dr2"]``.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np
from astropy.table import Table

from ..utils.arrays import masked_to_nan
from .cache import DiskCache
from .http import HTTPClient
from .specs import ReferenceSpec
from .tables import ColumnMap
from .tap import id_query_requests, query_by_ids

__all__ = ["CLUSTERS_TABLE", "CLUSTERS_SPEC", "query_clusters", "clusters_from_table",
           "dr2_to_dr3", "dr2_to_dr3_requests"]

CLUSTERS_TABLE = "J/A+A/640/A1/nodup"
CLUSTER_COLUMNS = ColumnMap({"dr2_source_id": ("GaiaDR2", "Source", "source_id"),
                             "cluster": ("Cluster",), "proba": ("proba",)},
                            service="Cantat-Gaudin+2020 members")
#: The survey's specification (see `gaiarvs_cnn.archives.specs`); downloaded whole, DR2 ids.
CLUSTERS_SPEC = ReferenceSpec(
    kind="clusters", title="Cantat-Gaudin et al. 2020 members", table=CLUSTERS_TABLE,
    columns=CLUSTER_COLUMNS, score="proba", unique=False,
    verified="labels Cluster, GaiaDR2, proba: the nodup.dat ReadMe byte-by-byte as "
             "transcribed in sdss/sdssdb; VizieR TAP table J/A+A/640/A1/nodup: seen in "
             "third-party code; gaiadr3.dr2_neighbourhood columns: "
             "gaia.aip.de/metadata/gaiadr3/dr2_neighbourhood and the ESA (E)DR3 data model")
_NEIGHBOURS = ColumnMap({"dr2_source_id": "dr2_source_id", "dr3_source_id": "dr3_source_id",
                         "angular_distance": "angular_distance",
                         "magnitude_difference": "magnitude_difference"},
                        required=("dr2_source_id", "dr3_source_id", "angular_distance"),
                        service="gaiadr3.dr2_neighbourhood")
#: Synchronous row cap of the ESA TAP service that `dr2_to_dr3` asks.
_NEIGHBOURS_SYNC_MAX_ROWS = 2000


def dr2_to_dr3(dr2_ids: Iterable[int], *, tap_url: str | None = None,
               client: HTTPClient | None = None, refresh: bool = False) -> dict[int, int]:
    """Map Gaia DR2 ids to DR3 ids with ``gaiadr3.dr2_neighbourhood`` (ESA TAP).

    Parameters
    ----------
    dr2_ids : iterable of int
        Gaia DR2 source ids (duplicates are ignored).
    tap_url : str, optional
        ESA TAP service (default ``conf.gaia_tap_url``).
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Retry policy and timeout.
    refresh : bool
        If True, bypass the download cache.

    Returns
    -------
    dict
        DR2 id -> DR3 id (best neighbour: smallest angular distance, then smallest
        absolute magnitude difference); DR2 ids without a neighbour are absent.

    Raises
    ------
    ArchiveError
        If a query fails after the retries.
    """
    from ..settings import conf

    client = client or HTTPClient()
    cache = DiskCache("esa", refresh=refresh)
    ids = np.unique(np.asarray(list(dr2_ids), dtype=np.int64))
    out: dict[int, int] = {}
    if ids.size:
        raw = query_by_ids(client, tap_url or conf.gaia_tap_url, ids,
                           select="n.dr2_source_id, n.dr3_source_id, n.angular_distance, "
                                  "n.magnitude_difference",
                           table="gaiadr3.dr2_neighbourhood AS n",
                           id_column="n.dr2_source_id", cache=cache,
                           sync_max_rows=_NEIGHBOURS_SYNC_MAX_ROWS)
        t = _NEIGHBOURS.apply(raw)
        dist = masked_to_nan(t["angular_distance"])
        dmag = np.abs(masked_to_nan(t["magnitude_difference"])) if \
            "magnitude_difference" in t.colnames else np.zeros(len(t))
        order = np.lexsort((np.nan_to_num(dmag, nan=np.inf), np.nan_to_num(dist, nan=np.inf)))
        for i in order:
            out.setdefault(int(t["dr2_source_id"][i]), int(t["dr3_source_id"][i]))
    return out


def dr2_to_dr3_requests(n_ids: int, *, tap_url: str | None = None,
                        client: HTTPClient | None = None) -> int:
    """The HTTP requests that `dr2_to_dr3` sends for ``n_ids`` distinct DR2 ids
    (`~gaiarvs_cnn.archives.tap.id_query_requests`; the re-run of a chunk whose answer
    reaches the row cap is not counted: a DR2 id has any number of neighbours).

    Parameters
    ----------
    n_ids : int
    tap_url : str, optional
        ESA TAP service (default ``conf.gaia_tap_url``).
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Reads the service's capabilities.

    Returns
    -------
    int
    """
    from ..settings import conf

    return id_query_requests(client or HTTPClient(), tap_url or conf.gaia_tap_url, n_ids,
                             sync_max_rows=_NEIGHBOURS_SYNC_MAX_ROWS)


def clusters_from_table(raw: Table, mapping: dict[int, int], min_proba: float = 0.0) -> Table:
    """Canonical cluster table from members with DR2 ids and a DR2 -> DR3 ``mapping``.

    Parameters
    ----------
    raw : astropy.table.Table
        Cluster members (columns as in the module docstring, any case).
    mapping : dict of int to int
        Gaia DR2 id -> DR3 id, e.g. from `dr2_to_dr3`; unmapped members are dropped
        and listed in ``meta["unmatched_dr2"]``.
    min_proba : float
        Minimum membership probability (0 to 1).

    Returns
    -------
    astropy.table.Table
        ``source_id`` (DR3), ``cluster``, ``proba`` and ``dr2_source_id``.

    Raises
    ------
    ArchiveError
        If a required column is missing.
    """
    unmatched = []

    def gaia_ids(t: Table) -> Table:
        dr2 = np.asarray(t["dr2_source_id"], dtype=np.int64)
        t["dr2_source_id"] = dr2
        t["source_id"] = np.array([mapping.get(int(i), 0) for i in dr2], dtype=np.int64)
        t["cluster"] = np.char.strip(np.asarray(t["cluster"]).astype(str))
        t["proba"] = masked_to_nan(t["proba"])
        unmatched.extend(sorted(set(dr2.tolist()) - set(mapping)))
        t.meta["unmatched_dr2"] = unmatched[:1000]
        return t

    spec = replace(CLUSTERS_SPEC, prepare=gaia_ids, cut=lambda x: x["proba"] >= min_proba,
                   extra_meta={"min_proba": min_proba})
    return spec.finish(raw)


def query_clusters(*, clusters: Iterable[str] | None = None, min_proba: float = 0.0,
                   url: str | None = None, tap_url: str | None = None,
                   client: HTTPClient | None = None, refresh: bool = False) -> Table:
    """Members of Cantat-Gaudin et al. (2020) open clusters with Gaia DR3 ids.

    Parameters
    ----------
    clusters : iterable of str, optional
        Keep only these cluster names (e.g. ``["NGC_2539"]``).
    min_proba : float
        Minimum membership probability (default 0: all listed members).
    url, tap_url : str, optional
        VizieR TAP (``conf.vizier_url``) and ESA TAP (``conf.gaia_tap_url``).
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Retry policy and timeout.
    refresh : bool
        If True, bypass the download cache.

    Returns
    -------
    astropy.table.Table
        The canonical cluster table (see `clusters_from_table`).

    Raises
    ------
    ArchiveError
        If a query fails after the retries or lacks required columns.
    """
    raw = CLUSTERS_SPEC.query(url=url, client=client, refresh=refresh)
    if clusters is not None:
        name = CLUSTER_COLUMNS.find(raw, "cluster")
        keep = set(clusters)
        raw = raw[[str(c).strip() in keep for c in raw[name]]]
    dr2 = ColumnMap({"d": CLUSTER_COLUMNS.mapping["dr2_source_id"]}).apply(raw)["d"]
    mapping = dr2_to_dr3(np.asarray(dr2, dtype=np.int64), tap_url=tap_url, client=client,
                         refresh=refresh)
    return clusters_from_table(raw, mapping, min_proba=min_proba)
