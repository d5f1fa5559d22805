"""The loopback archive's state and its services: TAP (sync and async/UWS), VOSI
capabilities, ESA DataLink and the CDS XMatch API, answered from astropy Tables.

`Archive` holds the "database" (a dict of astropy Tables; the DataLink products are
mappings source_id -> product CSV text, ``Archive.rvs`` and ``Archive.xp``) and answers
each service. ADQL is interpreted only as far as the adapters need: the table after
``FROM``, ``<column> IN (...)`` integer lists, ``TOP n``, the select list, and TAP table
uploads: ``FROM TAP_UPLOAD.<t> AS u JOIN <table> AS x ON x.<col> = u.<col>`` is evaluated
as a real inner join (`astropy.table.join`). Each service publishes a VOSI
``/capabilities`` document (TAPRegExt ``uploadMethod``, ``uploadLimit``, ``outputLimit``)
from ``Archive.services`` and refuses uploads beyond its published limit (HTTP 400), as a
real service would.

The CDS XMatch service (``/xmatch/api/v1/sync``, what `astroquery.xmatch.XMatchClass`
talks to): ``GET .../sync/tables?action=getVizieRTableNames`` answers one VizieR table
name per line (the layout of astroquery's recorded
``astroquery/xmatch/tests/data/tables.csv``, astropy/astroquery@2e8c636), and ``POST
.../sync`` (``request=xmatch``, an uploaded ``cat1`` CSV, ``cat2=vizier:<table>``,
``distMaxArcsec``) answers every pair within the distance, ``angDist`` (arcsec) first, then
the uploaded columns, then the columns of the VizieR table -- the layout of astroquery's
recorded answer ``astroquery/xmatch/tests/data/query_res.csv`` -- as a VOTable (or CSV for
``RESPONSEFORMAT=csv``), computed as a real positional match
(`astropy.coordinates.SkyCoord.search_around_sky`).

Every request is logged (``Archive.log``: path and parameters) and the bytes of every
answer counted per path (``Archive.served``); ``Archive.after_response``, when set, is
called with the path and parameters once an answer has been sent. Failures are injected
with `Archive.fail` (the modes: `gaiarvs_cnn.archives.loopback.faults`).
"""
from __future__ import annotations

import io
import re
import threading
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from astropy.io.votable import from_table
from astropy.table import Table, vstack

__all__ = ["Archive", "uws_job", "tabledata_bytes"]


def tabledata_bytes(table: Table) -> bytes:
    """``table`` as a TABLEDATA VOTable (what the ESA and VizieR TAP services answer),
    written by astropy's Python row writer.

    astropy's C TABLEDATA writer (``astropy.io.votable.tablewriter``, astropy 8.0.2) writes
    its string terminator one byte past its row buffer whenever a row's XML fills the
    buffer exactly (a row of 256, 512, ... bytes): astropy/astropy#20419, fix proposed in
    astropy/astropy#20428. The server writes wide masked reference rows in many threads,
    and the corruption crashed the 100 000-star run rehearsal in the allocator (SIGSEGV).
    The Python writer writes the same bytes (checked in the tests) at about the same speed.
    Only the ids our TAP uploads send still go through the C writer (pyvo writes them):
    their rows are under the writer's first 256-byte buffer, which is never grown.
    """
    buf = io.BytesIO()
    with warnings.catch_warnings():  # VizieR labels such as "[M/H]" are not XML IDs
        warnings.simplefilter("ignore")
        from_table(table).to_xml(buf, _debug_python_based_parser=True)
    return buf.getvalue()


@dataclass
class Archive:
    """State of the loopback archive; ``url`` is the server root."""

    url: str = ""
    tables: dict = field(default_factory=dict)
    #: source_id -> RVS DataLink CSV text (a dict, or a lazy mapping for N stars)
    rvs: Mapping = field(default_factory=dict)
    #: source_id -> XP_CONTINUOUS DataLink CSV text
    xp: Mapping = field(default_factory=dict)
    sync_max_rows: int | None = None
    uppercase: bool = False
    slow_s: float = 1.0
    retry_after: str = "2"
    #: bytes of the "endless" answer (the client is meant to stop long before)
    endless_bytes: int = 3 * 2 ** 30
    #: inflated bytes of the "gzipbomb" and "zipbomb" answers
    bomb_bytes: int = 2 ** 30
    #: seconds between the bytes of a "trickle" answer
    trickle_s: float = 0.05
    #: zlib level of the DataLink zips (deflate either way; 1 keeps N-star runs cheap)
    zip_level: int | None = None
    #: DataLink DATA_STRUCTURE values the loopback server accepts.
    data_structures: tuple = ("INDIVIDUAL", "RAW")
    failures: list = field(default_factory=list)
    log: list = field(default_factory=list)
    jobs: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: per service (first path element): TAP uploads declared, hard upload limit
    #: (value, unit), hard output limit in rows, and whether /capabilities is served.
    services: dict = field(default_factory=lambda: {
        "esa": {"uploads": True, "upload_limit": (5, "row"), "output_limit": 3000000,
                "capabilities": True},
        "vizier": {"uploads": True, "upload_limit": (100000, "byte"), "output_limit": None,
                   "capabilities": True},
        "aip": {"uploads": False, "upload_limit": None, "output_limit": None,
                "capabilities": True}})
    uploads_received: list = field(default_factory=list)
    #: bytes of the answers sent, per request path
    served: Counter = field(default_factory=Counter)
    #: called as ``after_response(path, params)`` once an answer has been sent
    after_response: Callable | None = None

    def fail(self, path: str, mode: str, times: int = 1, when: str = "") -> None:
        """Make the next ``times`` requests whose path contains ``path`` (and whose
        parameters contain ``when``) fail with ``mode``."""
        self.failures.append({"path": path, "mode": mode, "times": times, "when": when})

    def take_failure(self, path: str, params: dict) -> str | None:
        with self.lock:
            for f in self.failures:
                if f["times"] > 0 and f["path"] in path and f["when"] in repr(params):
                    f["times"] -= 1
                    return f["mode"]
        return None

    def count(self, path: str, **params: str) -> int:
        """Number of requests logged whose path contains ``path`` (and whose parameters
        have the given values, e.g. ``RETRIEVAL_TYPE="RVS"``)."""
        return sum(path in p and all(q.get(k) == v for k, v in params.items())
                   for p, q in list(self.log))

    def requests_by_endpoint(self, since: int = 0) -> dict[str, int]:
        """Requests per endpoint (from the ``since``-th logged one on): the path with UWS
        job ids replaced by ``{job}``, and DataLink requests split by ``RETRIEVAL_TYPE``."""
        out = Counter()
        for path, params in list(self.log)[since:]:
            key = re.sub(r"/async/\w+", "/async/{job}", path)
            if path.endswith("/data"):
                key += f" {params.get('RETRIEVAL_TYPE', '?')}"
            out[key] += 1
        return dict(sorted(out.items()))

    # -- services ----------------------------------------------------------------------
    def capabilities(self, service: str, base: str) -> tuple[int, bytes]:
        spec = self.services.get(service)
        if spec is None or not spec["capabilities"]:
            return 404, b"Not found"
        upload = ('<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>'
                  if spec["uploads"] else "")
        if spec["uploads"] and spec["upload_limit"]:
            value, unit = spec["upload_limit"]
            upload += f'<uploadLimit><hard unit="{unit}">{value}</hard></uploadLimit>'
        output = (f'<outputLimit><default unit="row">2000</default><hard unit="row">'
                  f'{spec["output_limit"]}</hard></outputLimit>' if spec["output_limit"]
                  else "")
        return 200, f"""<?xml version="1.0" encoding="UTF-8"?>
<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
 xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"
 xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0">
<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">
<interface xsi:type="vs:ParamHTTP" role="std"><accessURL use="base">{base}</accessURL>
</interface>
<language><name>ADQL</name><version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>
</language>
<outputFormat><mime>application/x-votable+xml</mime></outputFormat>
{upload}{output}
</capability>
</vosi:capabilities>""".encode()

    def check_uploads(self, service: str, uploads: dict, raw_sizes: dict) -> None:
        """Refuse uploads the service does not declare, or beyond its published limit."""
        spec = self.services[service]
        if uploads and not spec["uploads"]:
            raise KeyError("this service does not accept TAP uploads")
        limit = spec["upload_limit"]
        for name, table in uploads.items():
            self.uploads_received.append((service, name, len(table)))
            if limit and limit[1] == "row" and len(table) > limit[0]:
                raise KeyError(f"upload {name} has {len(table)} rows; limit {limit[0]}")
            if limit and limit[1] == "byte" and raw_sizes[name] > limit[0]:
                raise KeyError(f"upload {name} is {raw_sizes[name]} bytes; limit {limit[0]}")

    def run_adql(self, adql: str, uploads: dict | None = None) -> tuple[Table, bool]:
        from astropy.table import join

        uploads = uploads or {}
        up = re.search(r'\bFROM\s+TAP_UPLOAD\.(\w+)\s+AS\s+(\w+)\s+JOIN\s+("[^"]+"|[\w.]+)'
                       r'\s+AS\s+(\w+)\s+ON\s+(\w+)\.("[^"]+"|\w+)\s*=\s*(\w+)\.(\w+)',
                       adql, re.I)
        m = re.search(r'\bFROM\s+("[^"]+"|[\w.]+)', adql, re.I)
        if not m:
            raise KeyError(f"no FROM in {adql!r}")
        name = (up.group(3) if up else m.group(1)).strip('"').lower()
        table = self.tables[name]
        if up:  # a real inner join of the uploaded VOTable with the table
            uploaded = uploads[up.group(1).lower()]
            col = up.group(6).strip('"')
            real = next(c for c in table.colnames if c.lower() == col.lower())
            ucol = next(c for c in uploaded.colnames if c.lower() == up.group(8).lower())
            keys = Table({real: np.asarray(uploaded[ucol], dtype=np.int64)})
            base = table.copy(copy_data=False)
            base[real] = np.asarray(base[real], dtype=np.int64)
            order = "_row_order_"
            base[order] = np.arange(len(base))
            table = join(keys, base, keys=real, join_type="inner")
            table.sort(order)
            table.remove_column(order)
        for col, values in re.findall(r'([\w."]+)\s+IN\s*\(([^)]*)\)', adql, re.I):
            col = col.split(".")[-1].strip('"')
            wanted = {int(v) for v in values.split(",") if v.strip()}
            real = next(c for c in table.colnames if c.lower() == col.lower())
            table = table[np.isin(np.asarray(table[real], dtype=np.int64), list(wanted))]
        table = _project(table, adql)
        top = re.search(r"\bTOP\s+(\d+)", adql, re.I)
        if top:
            table = table[:int(top.group(1))]
        overflow = self.sync_max_rows is not None and len(table) > self.sync_max_rows
        return table, overflow

    def with_extra_rows(self, table: Table) -> Table:
        """``table`` plus the gaia_source rows of the ids it lacks (same columns)."""
        source = self.tables["gaiadr3.gaia_source"]
        sid = next(c for c in table.colnames if c.lower() == "source_id")
        extra = source[~np.isin(source["source_id"], np.asarray(table[sid]))]
        extra = extra[[next(c for c in extra.colnames if c.lower() == n.lower())
                       for n in table.colnames]]
        extra.rename_columns(extra.colnames, table.colnames)
        return vstack([table, extra], metadata_conflicts="silent")

    def votable(self, table: Table, overflow: bool = False) -> bytes:
        table = table.copy(copy_data=False)
        if self.uppercase:
            table.rename_columns(table.colnames, [c.upper() for c in table.colnames])
        status = "OVERFLOW" if overflow else "OK"
        return tabledata_bytes(table).replace(
            b"<RESOURCE type=\"results\">",
            f'<RESOURCE type="results">\n<INFO name="QUERY_STATUS" value="{status}"/>'.encode(),
            1)

    def xmatch(self, path: str, params: dict, files: dict) -> tuple[int, bytes, str]:
        """The CDS XMatch API: the table list, or one positional cross-match."""
        import astropy.units as u
        from astropy.coordinates import SkyCoord

        if path.endswith("/tables"):
            names = ["simbad", "II/246/out", "II/311/wise", "I/355/gaiadr3"]
            return 200, ("\n".join(names) + "\n").encode(), "text/plain"
        if params.get("REQUEST") != "xmatch":
            raise KeyError(f"request={params.get('REQUEST')!r}; only 'xmatch' is served")
        cat2_name = params["CAT2"].removeprefix("vizier:").lower()
        if cat2_name not in self.tables or "cat1" not in files:
            raise KeyError(f"cat2 {params['CAT2']!r} is not available (or no cat1 upload)")
        cat1 = Table.read(files["cat1"].decode(), format="ascii.csv")
        cat2 = self.tables[cat2_name]
        c1 = SkyCoord(np.asarray(cat1[params["COLRA1"]], float),
                      np.asarray(cat1[params["COLDEC1"]], float), unit="deg")
        c2 = SkyCoord(np.asarray(cat2["RA_ICRS"], float), np.asarray(cat2["DE_ICRS"], float),
                      unit="deg")
        i2, i1, sep, _ = c1.search_around_sky(c2, float(params["DISTMAXARCSEC"]) * u.arcsec)
        order = np.lexsort((sep.arcsec, i1))
        i1, i2, sep = i1[order], i2[order], sep[order]
        out = Table({"angDist": np.round(sep.arcsec, 6)})
        for c in cat1.colnames:
            out[c] = cat1[c][i1]
        for c in cat2.colnames:
            out[c] = cat2[c][i2]
        if params.get("RESPONSEFORMAT", "votable").lower() == "csv":
            buf = io.StringIO()
            out.write(buf, format="ascii.csv")
            return 200, buf.getvalue().encode(), "text/csv"
        return 200, tabledata_bytes(out), "application/x-votable+xml"

    def datalink_zip(self, params: dict) -> tuple[int, bytes]:
        if params.get("FORMAT", "").lower() != "csv":
            return 400, b"Only FORMAT=csv is served by the test archive."
        if params.get("DATA_STRUCTURE") not in self.data_structures:
            # the wording is ours (no recorded ESA answer); like a real 400 it names the
            # parameter
            return 400, (f"Invalid value {params.get('DATA_STRUCTURE')!r} for parameter "
                         f"DATA_STRUCTURE; valid: {', '.join(self.data_structures)}").encode()
        ids = [int(i) for i in params["ID"].split(",")]
        kind = params["RETRIEVAL_TYPE"]
        products = {"RVS": self.rvs, "XP_CONTINUOUS": self.xp}.get(kind, {})
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED,
                             compresslevel=self.zip_level) as zf:
            for sid in ids:
                text = products.get(sid)
                if text is not None:
                    zf.writestr(f"{kind}-Gaia DR3 {sid}.csv", text)
        return 200, buf.getvalue()


def _project(table: Table, adql: str) -> Table:
    """Keep the selected columns (``SELECT a, g.b, "c" ...``; ``*`` keeps all)."""
    m = re.search(r"SELECT\s+(?:TOP\s+\d+\s+)?(.*?)\s+FROM\s", adql, re.I | re.S)
    names = [c.strip().split(".")[-1].strip('"') for c in m.group(1).split(",")]
    if "*" in names:
        return table
    lower = {c.lower(): c for c in table.colnames}
    return table[[lower[n.lower()] for n in names]]


def uws_job(job_id: str, job: dict, base: str) -> bytes:
    """The UWS job document of an async TAP job (phase, and the result link once done)."""
    result = (f'<uws:results><uws:result id="result" xlink:href="{base}/{job_id}/results/'
              f'result"/></uws:results>' if job["phase"] == "COMPLETED" else "<uws:results/>")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.1">
<uws:jobId>{job_id}</uws:jobId><uws:ownerId xsi:nil="true"/>
<uws:phase>{job["phase"]}</uws:phase><uws:quote xsi:nil="true"/>
<uws:creationTime>2024-01-01T00:00:00Z</uws:creationTime>
<uws:startTime xsi:nil="true"/><uws:endTime xsi:nil="true"/>
<uws:executionDuration>0</uws:executionDuration>
<uws:destruction>2024-01-02T00:00:00Z</uws:destruction>
<uws:parameters/>{result}</uws:job>""".encode()

