"""One entry point for the real reference catalogues, by kind.

========== ============================================== ==========================
kind       catalogue                                      adapter
========== ============================================== ==========================
apogee     APOGEE DR17 allStar (VizieR III/286)           `.apogee.query_apogee`
galah      GALAH DR3 (VizieR J/MNRAS/506/150)             `.galah.query_galah`
seismic    K2-GAP DR3, Zinn+2022 (VizieR J/ApJ/926/191)   `.k2gap.query_k2gap`
clusters   Cantat-Gaudin+2020 members (J/A+A/640/A1)      `.clusters.query_clusters`
gsp-spec   Gaia DR3 astrophysical_parameters (ESA)        `.gaia_ap.query_gsp`
gsp-phot   Gaia DR3 astrophysical_parameters (ESA)        `.gaia_ap.query_gsp`
published  the paper's RVS-CNN catalogue (AIP TAP)        `.published.query_published`
========== ============================================== ==========================
"""
from __future__ import annotations

from collections.abc import Iterable

from astropy.table import Table

from ..exceptions import InputDataError, Param
from ..io.reference import ALL_KINDS
from .http import HTTPClient
from .specs import ProbeReport, ReferenceSpec

__all__ = ["query_reference", "reference_requests", "reference_specs", "probe_reference"]

#: Kinds downloaded whole (`query_reference` ignores their ids); their Gaia DR2 ids are
#: mapped to DR3 by ``gaiadr3.dr2_neighbourhood`` (`.clusters.dr2_to_dr3`).
WHOLE_KINDS = ("seismic", "clusters")


def query_reference(kind: str, source_ids: Iterable[int] | None = None, *,
                    refresh: bool = False, good_flags: bool = False,
                    client: HTTPClient | None = None) -> Table:
    """Return the ``kind`` reference catalogue in the canonical schema.

    Parameters
    ----------
    kind : str
        One of `~gaiarvs_cnn.io.reference.ALL_KINDS`.
    source_ids : iterable of int, optional
        Restrict to these Gaia DR3 ids (required for ``gsp-spec``/``gsp-phot``; ignored
        by ``seismic`` and ``clusters``, which are small and downloaded whole).
    refresh : bool
        Bypass the download cache.
    good_flags : bool
        ``gsp-spec`` only: keep stars whose first 13 ``flags_gspspec`` digits are 0.
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Timeout and retry policy.

    Returns
    -------
    astropy.table.Table
        The reference table, checked by `~gaiarvs_cnn.io.reference.check_reference`
        for ``kind``.

    Raises
    ------
    InputDataError
        Unknown kind, or a GSP kind without ``source_ids``.
    ArchiveError
        The service failed after retries.
    """
    from . import apogee, clusters, gaia_ap, galah, k2gap, published

    ids = None if source_ids is None else [int(i) for i in source_ids]
    common = {"refresh": refresh, "client": client}
    if kind in ("gsp-spec", "gsp-phot"):
        if ids is None:
            raise InputDataError(f"{kind} is queried per star: give source ids (",
                                 Param("source_ids"), " or ", Param("store"), "); the archive "
                                 "table is too large to download.", parameter="source_ids")
        return gaia_ap.query_gsp(kind, ids, good_flags=good_flags, **common)
    queries = {"apogee": lambda: apogee.query_apogee(ids, **common),
               "galah": lambda: galah.query_galah(ids, **common),
               "seismic": lambda: k2gap.query_k2gap(**common),
               "clusters": lambda: clusters.query_clusters(**common),
               "published": lambda: published.query_published(ids, **common)}
    if kind not in queries:
        raise InputDataError(f"Unknown reference kind {kind!r}; use one of {ALL_KINDS}.")
    return queries[kind]()


def reference_requests(kind: str, n_ids: int, *, table_rows: int = 0,
                       client: HTTPClient | None = None) -> int:
    """The HTTP requests that `query_reference` sends for ``kind`` and ``n_ids`` distinct
    ids, from the services' published limits and the adapters' own rules
    (`~gaiarvs_cnn.archives.specs.ReferenceSpec.requests`).

    A kind selected by id costs its service's capabilities document and one query per
    chunk of ids (an asynchronous job for a chunk of more ids than the service's
    synchronous row cap); a kind downloaded whole (``seismic``, ``clusters``) one query
    for the table, then the DR2 -> DR3 mapping of its ``table_rows`` Gaia DR2 ids
    (`~gaiarvs_cnn.archives.clusters.dr2_to_dr3_requests`).

    Parameters
    ----------
    kind : str
        One of `~gaiarvs_cnn.io.reference.ALL_KINDS`.
    n_ids : int
        Distinct Gaia DR3 ids looked up.
    table_rows : int
        Rows of a table downloaded whole (its DR2 ids to map).
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Reads each service's capabilities once.

    Returns
    -------
    int
        What is sent when each asynchronous job is done at its first phase check. Not
        counted: the one-row probe of the columns (cached by ``gaiarvs-cnn run``'s
        probe), further phase checks, the re-run as a job of an answer that reaches a
        synchronous row cap, retries.

    Raises
    ------
    InputDataError
        Unknown kind.
    ArchiveError
        A service's capabilities cannot be read after retries.
    """
    from .clusters import dr2_to_dr3_requests

    specs = reference_specs()
    if kind not in specs:
        raise InputDataError(f"Unknown reference kind {kind!r}; use one of {ALL_KINDS}.")
    client = client or HTTPClient()
    if kind in WHOLE_KINDS:
        return specs[kind].requests(client=client) + (
            dr2_to_dr3_requests(table_rows, client=client) if table_rows else 0)
    return specs[kind].requests(n_ids, client=client) if n_ids > 0 else 0


def reference_specs() -> dict[str, ReferenceSpec]:
    """Every reference survey's specification, by kind (``gsp-spec`` and ``gsp-phot``
    included).

    Returns
    -------
    dict of str to ReferenceSpec
        In the order of `~gaiarvs_cnn.archives.catalogues`.
    """
    from .apogee import APOGEE_SPEC
    from .clusters import CLUSTERS_SPEC
    from .gaia_ap import GSPPHOT_SPEC, GSPSPEC_SPEC
    from .galah import GALAH_SPEC
    from .k2gap import K2GAP_SPEC
    from .published import PUBLISHED_SPEC

    specs = (APOGEE_SPEC, GALAH_SPEC, K2GAP_SPEC, CLUSTERS_SPEC, GSPSPEC_SPEC, GSPPHOT_SPEC,
             PUBLISHED_SPEC)
    return {s.kind: s for s in specs}


def probe_reference(kind: str, *, url: str | None = None,
                    client: HTTPClient | None = None) -> ProbeReport:
    """`~gaiarvs_cnn.archives.specs.ReferenceSpec.probe` of the survey of ``kind``.

    Parameters
    ----------
    kind : str
        A key of `reference_specs`.
    url : str, optional
        TAP URL (default from ``conf``).
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Retry policy and timeout.

    Returns
    -------
    ProbeReport
        Mapped and missing columns.

    Raises
    ------
    InputDataError
        If ``kind`` is unknown.
    ArchiveError
        If the query fails.
    """
    specs = reference_specs()
    if kind not in specs:
        raise InputDataError(f"Unknown reference kind {kind!r}; use one of {sorted(specs)}.")
    return specs[kind].probe(url=url, client=client)
