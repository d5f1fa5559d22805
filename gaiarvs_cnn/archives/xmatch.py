"""Positional cross-match with Gaia DR3 through the CDS XMatch service (astroquery).

For reference tables that carry positions but no Gaia id (a K2-GAP table keyed on EPIC,
say), `xmatch_gaia_dr3` uploads the positions to the CDS XMatch service
(``conf.xmatch_url``) with the field's own client, `astroquery.xmatch.XMatchClass`, matches
them with VizieR ``I/355/gaiadr3`` (`GAIA_DR3_TABLE`) and keeps, for each input row, the
nearest Gaia DR3 source within ``conf.xmatch_max_distance`` (2 arcsec by default). The
Gaia positions are those of epoch J2016.0 and no proper motion is applied: for a catalogue
at another epoch (EPIC positions are J2000), fast-moving stars may need a larger distance.

The answer of the service has one row per pair within the distance: ``angDist`` (arcsec),
then the uploaded columns, then the columns of ``I/355/gaiadr3`` -- the layout of
astroquery's own recorded answer (``astroquery/xmatch/tests/data/query_res.csv``). The
Gaia DR3 id is the VizieR label ``Source`` (seen in third-party code reading XMatch
answers for ``vizier:I/355/gaiadr3``; not verified from the VizieR ReadMe, see
``tests/data/reference_schemas/README.md``).

The request goes through `HTTPClient.with_retries` (timeouts, 429/5xx retried with
``Retry-After`` honoured, clear `ArchiveError` at the end), astroquery sends it on the
client's bounded session (request deadline, byte limit), and its answer is kept in the
download cache (`DiskCache`, namespace ``"xmatch"``); astroquery's own cache (the list of
XMatch tables) is placed in the same directory.
"""
from __future__ import annotations

import io

import astropy.units as u
import numpy as np
import requests
from astropy.table import Table

from ..exceptions import ArchiveError
from ..utils.arrays import masked_to_nan
from .cache import DiskCache, cache_dir
from .http import HTTPClient
from .retry import check_http_status, exception_chain
from .tables import ColumnMap

__all__ = ["GAIA_DR3_TABLE", "xmatch_gaia_dr3"]

#: The Gaia DR3 table the XMatch service matches with (VizieR identifier).
GAIA_DR3_TABLE = "vizier:I/355/gaiadr3"
#: Columns read from the service's answer.
_ANSWER = ColumnMap({"row": "gaiarvs_row", "source_id": ("Source", "source_id"),
                     "ang_dist": "angDist"}, service="CDS XMatch with Gaia DR3")


def _http_response(exc: BaseException) -> requests.Response | None:
    """The HTTP error answer behind an astroquery exception (its cause chain), if any."""
    for cur in exception_chain(exc):
        if isinstance(cur, requests.HTTPError) and cur.response is not None:
            return cur.response
    return None


def _xmatch_class():
    """`astroquery.xmatch.XMatchClass`, imported without its stdout note.

    astroquery prints "Could not import regions ..." on the first import when the optional
    ``regions`` package is missing; regions is only needed for cone-restricted matches,
    which are not used here, and the print would land in the output of a command line
    that writes to stdout.
    """
    import contextlib

    with contextlib.redirect_stdout(io.StringIO()):
        from astroquery.xmatch import XMatchClass
    return XMatchClass


def _query(client: HTTPClient, url: str, upload: Table, max_distance: float) -> bytes:
    """One XMatch request (retried by ``client``); the body of the service's answer."""
    from astroquery.exceptions import InvalidQueryError

    xmatch = _xmatch_class()()
    xmatch.URL, xmatch.TIMEOUT = url, client.timeout
    # astroquery sends through its BaseQuery._session: the client's bounded session
    # instead (request deadline, byte limit)
    xmatch._session = client.session
    xmatch.cache_location = cache_dir() / "xmatch"
    what = f"CDS XMatch {url} (with {GAIA_DR3_TABLE})"

    def once() -> bytes:
        try:
            response = xmatch.query_async(cat1=upload, cat2=GAIA_DR3_TABLE,
                                          max_distance=max_distance * u.arcsec,
                                          colRA1="ra", colDec1="dec", cache=False)
        except (requests.Timeout, requests.ConnectionError):
            raise  # retried by the client
        except InvalidQueryError as exc:
            raise ArchiveError(f"{what}: the service rejected the cross-match: {exc}") \
                from None
        except Exception as exc:  # astroquery's reading of an HTTP error answer
            response = _http_response(exc)
            if response is None:
                raise ArchiveError(f"{what}: {type(exc).__name__}: {exc}") from exc
        check_http_status(response)
        return response.content

    return client.with_retries(what, once)


def xmatch_gaia_dr3(ra, dec, *, max_distance: float | None = None, url: str | None = None,
                    client: HTTPClient | None = None, refresh: bool = False) -> Table:
    """The nearest Gaia DR3 source of each position (CDS XMatch, ``I/355/gaiadr3``).

    Parameters
    ----------
    ra, dec : array-like of float or `~astropy.units.Quantity`
        ICRS positions (deg unless given as angles), one per input row; rows with a
        non-finite position are not sent and get no match.
    max_distance : float, optional
        Largest separation accepted, in arcsec (default ``conf.xmatch_max_distance``;
        the service allows at most 180).
    url : str, optional
        XMatch service (default ``conf.xmatch_url``).
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Timeout and retry policy.
    refresh : bool
        If True, bypass the download cache.

    Returns
    -------
    astropy.table.Table
        One row per input position, in input order: ``source_id`` (Gaia DR3 id, 0 when
        nothing lies within ``max_distance``) and ``ang_dist`` (arcsec, NaN when
        unmatched). ``meta`` records the service, the table and the distance.

    Raises
    ------
    InputDataError
        If ``ra`` and ``dec`` differ in length.
    ArchiveError
        If the service fails after the retries, rejects the request, or answers without
        the expected columns.
    """
    from ..exceptions import InputDataError
    from ..settings import conf

    ra_deg = np.atleast_1d(u.Quantity(ra, u.deg).to_value(u.deg)).astype(float)
    dec_deg = np.atleast_1d(u.Quantity(dec, u.deg).to_value(u.deg)).astype(float)
    if ra_deg.shape != dec_deg.shape:
        raise InputDataError(f"xmatch_gaia_dr3: {ra_deg.size} RA but {dec_deg.size} Dec "
                             f"values.")
    url = url or conf.xmatch_url
    radius = float(conf.xmatch_max_distance if max_distance is None else max_distance)
    client = client or HTTPClient()
    ok = np.isfinite(ra_deg) & np.isfinite(dec_deg)
    source_id = np.zeros(ra_deg.size, dtype=np.int64)
    ang_dist = np.full(ra_deg.size, np.nan)
    if ok.any():
        rows = np.flatnonzero(ok)
        upload = Table({"gaiarvs_row": rows, "ra": ra_deg[ok], "dec": dec_deg[ok]})
        cache = DiskCache("xmatch", refresh=refresh)
        key = cache.key(url, GAIA_DR3_TABLE, radius, rows.tobytes(),
                        ra_deg[ok].tobytes(), dec_deg[ok].tobytes())
        body = cache.get(key)
        fetched = body is None
        if fetched:
            body = _query(client, url, upload, radius)
        try:
            answer = Table.read(io.BytesIO(body), format="votable",
                                use_names_over_ids=True)
        except Exception as exc:
            raise ArchiveError(f"CDS XMatch {url}: unreadable answer ({exc}).") from None
        if fetched:  # only a readable answer is kept
            cache.put(key, body)
        t = _ANSWER.apply(answer)
        if len(t):
            dist = masked_to_nan(t["ang_dist"])
            rows = np.asarray(t["row"], dtype=np.int64)
            order = np.lexsort((np.nan_to_num(dist, nan=np.inf), rows))
            order = order[(rows[order] >= 0) & (rows[order] < ra_deg.size)]
            # the nearest pair of each row: the first of its run in (row, distance) order
            _, first = np.unique(rows[order], return_index=True)
            best = order[first]
            source_id[rows[best]] = np.asarray(t["source_id"], dtype=np.int64)[best]
            ang_dist[rows[best]] = dist[best]
    out = Table({"source_id": source_id, "ang_dist": ang_dist * u.arcsec})
    out.meta.update({"xmatch_service": url, "xmatch_table": GAIA_DR3_TABLE,
                     "xmatch_max_distance_arcsec": radius,
                     "xmatch_unmatched": int((source_id == 0).sum())})
    return out
