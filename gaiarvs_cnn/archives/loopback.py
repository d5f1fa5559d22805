"""A loopback archive: a threaded HTTP server on 127.0.0.1 speaking enough TAP (sync and
async/UWS), ESA DataLink and VizieR-TAP to replay real-format responses.

A test double of the archives, in the package so that the tests (fixtures in
``tests/archives/conftest.py``) and the benchmarks (``benchmarks/bench_fetch_rehearsal.py``)
import the same one: `build_archive` is the small real-data archive of the tests,
`build_synthetic_archive` one of N format-faithful stars cloned from the same real
products, `serve` runs either on a free port, and `write_config` points a
``gaiarvs-cnn`` subprocess at it.

Its "database" is a dict of astropy Tables built from a folder of real Gaia DR3 files
(`RealProducts`: gaia_source rows, RVS and XP products; the repository's is
``tests/data/gaia_real/``) and from the reference catalogue tables of
`gaiarvs_cnn.archives.loopback_tables`; the DataLink products are
mappings source_id -> product CSV text (``Archive.rvs``, ``Archive.xp``). ADQL is
interpreted only as far as the adapters need: the table after ``FROM``, ``<column> IN
(...)`` integer lists, ``TOP n``, the select list, and TAP table uploads: the
``multipart/form-data`` request is parsed, the uploaded VOTable read with
`astropy.io.votable`, and
``FROM TAP_UPLOAD.<t> AS u JOIN <table> AS x ON x.<col> = u.<col>`` evaluated as a real
inner join (`astropy.table.join`). Each service publishes a VOSI ``/capabilities``
document (TAPRegExt ``uploadMethod``, ``uploadLimit``, ``outputLimit``) from
``Archive.services`` and refuses uploads beyond its published limit (HTTP 400), as a real
service would.

The CDS XMatch service (``/xmatch/api/v1/sync``, what `astroquery.xmatch.XMatchClass`
talks to) is served too: ``GET .../sync/tables?action=getVizieRTableNames`` answers one
VizieR table name per line (the layout of astroquery's recorded
``astroquery/xmatch/tests/data/tables.csv``, astropy/astroquery@2e8c636), and ``POST
.../sync`` (``request=xmatch``, an uploaded ``cat1`` CSV, ``cat2=vizier:<table>``,
``distMaxArcsec``) answers every pair within the distance, ``angDist`` (arcsec) first, then
the uploaded columns, then the columns of the VizieR table -- the layout of astroquery's
recorded answer ``astroquery/xmatch/tests/data/query_res.csv`` -- as a VOTable (or CSV for
``RESPONSEFORMAT=csv``), computed as a real positional match
(`astropy.coordinates.SkyCoord.search_around_sky`). The VizieR Gaia DR3 table it matches
with, ``I/355/gaiadr3``, is the loopback ``gaia_source`` under VizieR labels (``Source``,
``RA_ICRS``, ``DE_ICRS``, ``Gmag``).

Failures are injected per test with ``archive.fail(path, mode, times)``: ``"500"`` (HTTP
500), ``"slow"`` (sleep ``archive.slow_s`` before answering), ``"truncate"`` (half of the
payload), ``"malformed"`` (a broken VOTable), ``"429"`` (HTTP 429 with
``Retry-After: archive.retry_after``) and ``"nostatus"`` (a VOTable without the
``QUERY_STATUS`` INFO). The modes of a hostile or broken archive: ``"empty"`` (a valid
zip without any file, HTTP 200), ``"fewcolumns"`` (a valid TAP answer, QUERY_STATUS=OK,
holding only its first column), ``"extrarows"`` (a TAP answer plus the gaia_source rows
of ids that were not asked for), ``"endless"`` (an answer that never ends: its start,
then spaces without a Content-Length, up to ``archive.endless_bytes``),
``"gzipbomb"`` (``Content-Encoding: gzip`` inflating to ``archive.bomb_bytes``, about a
thousandth of that on the wire),
``"zipbomb"`` (a DataLink zip whose one member inflates to ``archive.bomb_bytes``),
``"trickle"`` (the answer at one byte every ``archive.trickle_s``) and ``"reset"`` (half
of the answer in chunked encoding, then a TCP reset).

Every request is logged (``Archive.log``: path and parameters) and the bytes of every
answer counted per path (``Archive.served``); ``Archive.after_response``, when set, is
called with the path and parameters once an answer has been sent (the kill-and-resume
test and benchmark use it to SIGKILL a client at a chosen request).
"""
from __future__ import annotations

import contextlib
import csv
import functools
import io
import re
import threading
import time
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
from astropy.io.votable import from_table
from astropy.table import Table, vstack

from ..utils.arrays import masked_to_nan
from .loopback_tables import reference_tables, synthetic_apogee, synthetic_references


@dataclass(frozen=True)
class RealProducts:
    """The real Gaia DR3 files the loopback archive serves, in the layout of the
    repository's ``tests/data/gaia_real/`` (see the README there for their provenance).

    Parameters
    ----------
    root : path-like
        The folder.
    """

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def rvs_csv(self) -> list[Path]:
        """RVS DataLink CSV products."""
        return sorted((self.root / "rvs_datalink_csv").glob("*.csv"))

    @property
    def rvs_fits(self) -> list[Path]:
        """RVS DataLink FITS products."""
        return sorted((self.root / "rvs_datalink_fits").glob("*.fits"))

    @property
    def xp_csv(self) -> Path:
        """GaiaXPy's XP_CONTINUOUS CSV."""
        return self.root / "xp_continuous" / "XP_CONTINUOUS_RAW.csv"

    @property
    def xp_bundle(self) -> Path:
        """astroquery's DataLink CSV bundle (XP_CONTINUOUS inside)."""
        return (self.root / "astroquery_gaia"
                / "gaia_dr3_source_id_5937083312263887616_dl_products_csv.zip")

    @property
    def gaia_source_vot(self) -> Path:
        """astroquery's recorded gaia_source rows (VOTable)."""
        return self.root / "astroquery_gaia" / "1710099405832VAL-result.vot"


RVS_CSV_HEADER = ("source_id,solution_id,ra,dec,wavelength,flux,flux_error,combined_transits,"
                  "combined_ccds,deblended_ccds")


def _fits_as_datalink_csv(path: Path) -> tuple[int, str]:
    """An RVS DataLink FITS product rewritten in the DataLink CSV layout (same numbers;
    NaN -> empty cell), so that the loopback DataLink serves one format."""
    from astropy.io import fits

    with fits.open(path) as hdul:
        head, data = hdul[1].header, hdul[1].data
        ra, dec = (float(v) for v in head["POS"].strip("()").split(","))
        fixed = [head["SOURCEID"], head["SOLUTION"], repr(ra), repr(dec)]
        tail = [head["NTRANSIT"].strip(), head["NCCDS"].strip(), head["NDEBLEND"].strip()]
        lines = [RVS_CSV_HEADER]
        for wl, fl, fe in zip(data["wavelength"], data["flux"], data["flux_error"]):
            cells = [repr(float(wl)), "" if np.isnan(fl) else repr(float(fl)),
                     "" if np.isnan(fe) else repr(float(fe))]
            lines.append(",".join(fixed + cells + tail))
    return int(head["SOURCEID"]), "\n".join(lines) + "\n"


def _rvs_products(real: RealProducts) -> dict[int, str]:
    """source_id -> RVS DataLink CSV text: two real CSV products unchanged, two real FITS
    products converted."""
    out = {}
    for path in real.rvs_csv:
        text = path.read_text()
        out[int(text.splitlines()[1].split(",", 1)[0])] = text
    out.update(_fits_as_datalink_csv(p) for p in real.rvs_fits)
    return out


def _xp_rows(real: RealProducts) -> list[tuple[str, str]]:
    """(header, data line) of each real XP_CONTINUOUS CSV row (3 sources)."""
    texts = [real.xp_csv.read_text()]
    with zipfile.ZipFile(real.xp_bundle) as zf:
        texts += [zf.read(n).decode() for n in zf.namelist() if n.startswith("XP_CONTINUOUS")]
    rows = []
    for text in texts:
        header, *lines = text.splitlines()
        rows += [(header, line) for line in lines if line.strip()]
    return rows


def _gaia_source(products: RealProducts, ids: list[int],
                 ra_dec: dict[int, tuple[float, float]]) -> Table:
    """gaia_source rows for ``ids``: the two real rows of the astroquery recording,
    repeated, with source_id / ra / dec rewritten (all 152 real columns and units)."""
    real = Table.read(products.gaia_source_vot, format="votable", use_names_over_ids=True)
    rows = vstack([real[i % len(real):i % len(real) + 1] for i in range(len(ids))])
    rows["source_id"] = np.asarray(ids, dtype=np.int64)
    for i, sid in enumerate(ids):
        rows["ra"][i], rows["dec"][i] = ra_dec.get(sid, (rows["ra"][i], rows["dec"][i]))
    return rows


def _rvs_table(products: dict[int, str]) -> Table:
    """AIP-style ``gaiadr3.rvs_mean_spectrum``: one row per source, array columns."""
    sids, flux, err = [], [], []
    for sid, text in products.items():
        t = Table.read(text, format="ascii.csv")
        sids.append(sid)
        flux.append(masked_to_nan(t["flux"]))
        err.append(masked_to_nan(t["flux_error"]))
    return Table({"source_id": np.array(sids, dtype=np.int64),
                  "flux": np.array(flux, dtype=np.float32),
                  "flux_error": np.array(err, dtype=np.float32)})


def _xp_table(ids: list[int], rows: list[tuple[str, str]]) -> Table:
    """AIP-style ``gaiadr3.xp_continuous_mean_spectrum`` with array columns."""
    from ..io.spectra import XP_COLUMNS, read_xp_continuous

    batches = [read_xp_continuous("\n".join(rows[i % len(rows)]).encode(), format="csv")
               for i in range(len(ids))]
    cols = {"source_id": np.asarray(ids, dtype=np.int64)}
    for k in XP_COLUMNS:
        cols[k] = np.concatenate([b[k] for b in batches])
    return Table(cols)


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
        buf = io.BytesIO()
        with warnings.catch_warnings():  # VizieR labels such as "[M/H]" are not XML IDs
            warnings.simplefilter("ignore")
            from_table(table).to_xml(buf)
        status = "OVERFLOW" if overflow else "OK"
        return buf.getvalue().replace(
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
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from_table(out).to_xml(buf)
        return 200, buf.getvalue(), "application/x-votable+xml"

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


def _uws(job_id: str, job: dict, base: str) -> bytes:
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


class _Handler(BaseHTTPRequestHandler):
    archive: Archive
    #: the fault mode of the request being answered (None: a normal answer)
    mode: str | None = None

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _params(self) -> dict:
        """Request parameters; uploaded files (multipart) go to ``self.files``."""
        query = {k.upper(): v[-1] for k, v in parse_qs(urlparse(self.path).query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.files = {}
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            from email.parser import BytesParser
            from email.policy import HTTP

            msg = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body)
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if part.get_filename() is not None:
                    self.files[name] = payload
                else:
                    query[name.upper()] = payload.decode()
        else:
            query.update({k.upper(): v[-1] for k, v in parse_qs(body.decode()).items()})
        return query

    def _uploads(self, params: dict) -> tuple[dict, dict]:
        """The TAP ``UPLOAD`` tables (``name,param:part``), read as VOTables."""
        from astropy.io.votable import parse

        tables, sizes = {}, {}
        for item in filter(None, params.get("UPLOAD", "").split(";")):
            name, ref = item.split(",", 1)
            if not ref.startswith("param:"):
                raise KeyError(f"only inline uploads are served, not {ref!r}")
            raw = self.files[ref[len("param:"):]]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tables[name.lower()] = parse(io.BytesIO(raw)).get_first_table().to_table()
            sizes[name.lower()] = len(raw)
        return tables, sizes

    def _send(self, code: int, body: bytes = b"", ctype: str = "text/xml",
              headers: dict | None = None) -> None:
        with self.archive.lock:
            self.archive.served[urlparse(self.path).path] += len(body)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")

    def _route(self, method: str) -> None:
        arc = self.archive
        path = urlparse(self.path).path
        params = self._params()
        arc.log.append((path, params))
        mode = self.mode = arc.take_failure(path, params)
        if mode == "500":
            return self._send(500, b"Internal error (injected)", "text/plain")
        if mode == "429":
            return self._send(429, b"Too many requests (injected)", "text/plain",
                              {"Retry-After": arc.retry_after})
        if mode == "slow":
            time.sleep(arc.slow_s)
        try:
            code, body, ctype, headers = self._dispatch(method, path, params)
        except KeyError as exc:
            return self._send(400, f"Bad request: {exc}".encode(), "text/plain")
        if mode == "truncate":
            body = body[: len(body) // 2]
        if mode == "malformed":
            body = body[: len(body) // 3] + b"<<<"
        if mode == "nostatus":  # a valid VOTable without the standard QUERY_STATUS INFO
            body = re.sub(rb'<INFO name="QUERY_STATUS"[^>]*/>', b"", body)
        if mode == "empty":
            body = _empty_zip()
        if mode == "zipbomb":
            body = zip_bomb(arc.bomb_bytes)
        try:
            if mode in _STREAM_FAULTS:
                _STREAM_FAULTS[mode](self, body)
            else:
                self._send(code, body, ctype, headers)
        except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout test)
            pass
        if arc.after_response is not None:
            arc.after_response(path, params)

    def _dispatch(self, method: str, path: str, params: dict):
        arc = self.archive
        if path.endswith("/data"):
            code, body = arc.datalink_zip(params)
            return code, body, "application/zip", {}
        service = path.strip("/").split("/")[0]
        if service == "xmatch":
            code, body, ctype = arc.xmatch(path, params, self.files)
            return code, body, ctype, {}
        if path.endswith("/capabilities"):
            code, body = arc.capabilities(service, arc.url + path.rsplit("/", 1)[0])
            return code, body, "text/xml", {}
        if path.endswith("/sync"):
            uploads, sizes = self._uploads(params)
            arc.check_uploads(service, uploads, sizes)
            table, overflow = arc.run_adql(params["QUERY"], uploads)
            if self.mode == "fewcolumns":
                table = table[table.colnames[:1]]
            if self.mode == "extrarows":
                table = arc.with_extra_rows(table)
            return 200, arc.votable(table, overflow), "text/xml", {}
        m = re.search(r"^(.*/async)(?:/(\w+))?(/phase|/results/result)?$", path)
        if not m:
            return 404, b"Not found", "text/plain", {}
        base, job_id, tail = arc.url + m.group(1), m.group(2), m.group(3)
        if job_id is None:  # job creation
            job_id = f"job{len(arc.jobs) + 1}"
            uploads, sizes = self._uploads(params)
            arc.check_uploads(service, uploads, sizes)
            arc.jobs[job_id] = {"phase": "PENDING", "query": params["QUERY"],
                                "uploads": uploads}
            return 303, b"", "text/plain", {"Location": f"{base}/{job_id}"}
        job = arc.jobs[job_id]
        if tail == "/phase" and method == "POST":
            if params.get("PHASE") == "RUN":
                table, _ = arc.run_adql(job["query"], job["uploads"])
                job["result"], job["phase"] = arc.votable(table), "COMPLETED"
            return 303, b"", "text/plain", {"Location": f"{base}/{job_id}"}
        if tail == "/phase":
            return 200, job["phase"].encode(), "text/plain", {}
        if tail == "/results/result":
            return 200, job["result"], "text/xml", {}
        if method == "DELETE" or params.get("ACTION") == "DELETE":
            arc.jobs.pop(job_id)
            return 303, b"", "text/plain", {"Location": base}
        return 200, _uws(job_id, job, base), "text/xml", {}


# -- answers of a broken or hostile archive ----------------------------------------------
def _empty_zip() -> bytes:
    """A valid zip archive without any file."""
    buf = io.BytesIO()
    zipfile.ZipFile(buf, "w").close()
    return buf.getvalue()


@functools.lru_cache(maxsize=2)
def zip_bomb(size: int) -> bytes:
    """A valid DataLink-named zip (CRC right) whose one member inflates to ``size`` zero
    bytes (whole MiB, < 4 GiB), about ``size / 1000`` zipped.

    Written by hand (PKWARE APPNOTE 4.3: local header, data, central directory, end
    record) from one deflated MiB of zeros repeated: after a full flush the deflate
    state restarts, so each MiB deflates to the same bytes and nothing is compressed
    ``size`` times.
    """
    import struct

    block, n = bytes(2 ** 20), max(1, size // 2 ** 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    one = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    data = one * n + deflate.flush()
    crc = 0
    for _ in range(n):
        crc = zlib.crc32(block, crc)
    name = b"RVS-Gaia DR3 1.csv"
    fields = struct.pack("<HHHHHIII", 20, 0, 8, 0, 0x21, crc, len(data), n * len(block))
    local = b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name
    central = (b"PK\x01\x02" + struct.pack("<H", 20) + fields
               + struct.pack("<HHHHHII", len(name), 0, 0, 0, 0, 0, 0) + name)
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, len(central),
                                          len(local) + len(data), 0)
    return local + data + central + end


@functools.lru_cache(maxsize=2)
def _gzip_bomb(size: int) -> bytes:
    """A gzip stream (concatenated members, as RFC 1952 allows) of ``size`` zero bytes."""
    import gzip

    member = gzip.compress(bytes(2 ** 20), compresslevel=9, mtime=0)
    return member * max(1, size // 2 ** 20)


def _endless(handler, body: bytes) -> None:
    """The first half of the answer (of a VOTable: up to its ``<TABLEDATA>``), then spaces
    without end (no Content-Length) until the client leaves or ``endless_bytes`` are
    sent."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.close_connection = True
    cut = body.find(b"<TABLEDATA>")  # a VOTable goes on with rows of blanks
    handler.wfile.write(body[: cut + len(b"<TABLEDATA>") if cut >= 0 else len(body) // 2])
    block = b" " * 2 ** 16
    for _ in range(handler.archive.endless_bytes // len(block)):
        handler.wfile.write(block)


def _gzipped_bomb(handler, body: bytes) -> None:
    """A gzip-encoded answer that inflates to ``bomb_bytes``."""
    wire = _gzip_bomb(handler.archive.bomb_bytes)
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Encoding", "gzip")
    handler.send_header("Content-Length", str(len(wire)))
    handler.end_headers()
    handler.wfile.write(wire)


def _trickle(handler, body: bytes) -> None:
    """The answer, one byte every ``trickle_s`` seconds."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    for i in range(len(body)):
        handler.wfile.write(body[i:i + 1])
        handler.wfile.flush()
        time.sleep(handler.archive.trickle_s)


def _reset(handler, body: bytes) -> None:
    """Half of the answer in chunked transfer encoding, then a TCP reset (RST)."""
    import socket
    import struct

    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    half = body[: len(body) // 2] or b"x"
    handler.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
    handler.wfile.flush()
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()


#: Fault modes that write the answer themselves (see `Archive.fail`).
_STREAM_FAULTS = {"endless": _endless, "gzipbomb": _gzipped_bomb, "trickle": _trickle,
                  "reset": _reset}


@functools.lru_cache(maxsize=2)
def _content(real: RealProducts) -> tuple:
    """Static content, built once per session (the tables are never modified)."""
    rvs = _rvs_products(real)
    xp_rows = _xp_rows(real)
    ra_dec = {}
    for sid, text in rvs.items():
        fields = text.splitlines()[1].split(",")
        ra_dec[sid] = (float(fields[2]), float(fields[3]))
    sky = sorted(rvs)
    no_spectrum = [1000000000000000001]
    tables = {"gaiadr3.gaia_source": _gaia_source(real, sky + no_spectrum, ra_dec),
              "gaiadr3.rvs_mean_spectrum": _rvs_table(rvs),
              "gaiadr3.xp_continuous_mean_spectrum": _xp_table(sky, xp_rows)}
    tables.update(reference_tables(sky, ra_dec))
    gaia = tables["gaiadr3.gaia_source"]  # VizieR I/355/gaiadr3, for the XMatch service
    tables["i/355/gaiadr3"] = Table({"Source": gaia["source_id"], "RA_ICRS": gaia["ra"],
                                     "DE_ICRS": gaia["dec"], "Gmag": gaia["phot_g_mean_mag"]})
    return rvs, xp_rows, sky, tables


def _xp_product(sid: int, header: str, line: str) -> str:
    """The XP_CONTINUOUS DataLink CSV of ``sid``: a real row with its source_id replaced."""
    return header + "\n" + str(sid) + line[line.index(","):] + "\n"


def build_archive(real) -> Archive:
    """The loopback archive's content: six real RVS stars (all with XP) plus one star
    present in gaia_source but without any spectrum (to exercise missing ids).

    Parameters
    ----------
    real : RealProducts or path-like
        The real products it serves.

    Returns
    -------
    Archive
        Not yet served (see `serve`).
    """
    rvs, xp_rows, sky, tables = _content(RealProducts(getattr(real, "root", real)))
    xp = {sid: _xp_product(sid, *xp_rows[i % len(xp_rows)]) for i, sid in enumerate(sky)}
    return Archive(tables=dict(tables), rvs=dict(rvs), xp=xp)




# -- N format-faithful stars -------------------------------------------------------------
#: source_id of the first synthetic star; the others follow every `SYNTHETIC_ID_STEP`
#: (valid int64 ids, none equal to a real star of `build_archive`).
SYNTHETIC_ID_START = 6_000_000_000_000_000_001
SYNTHETIC_ID_STEP = 1_000_003
#: Largest relative change of the RVS flux and of the XP coefficients between variants.
SYNTHETIC_SCALE = 0.02


def synthetic_ids(n: int) -> np.ndarray:
    """The source_ids (sorted int64) of `build_synthetic_archive` with ``n`` stars."""
    return SYNTHETIC_ID_START + SYNTHETIC_ID_STEP * np.arange(n, dtype=np.int64)


class ClonedProducts(Mapping):
    """source_id -> product text of the synthetic stars, made on demand.

    Parameters
    ----------
    ids : array of int
        The stars, in their order (``make`` receives the position).
    make : callable
        ``make(i, source_id) -> str``.
    """

    def __init__(self, ids, make: Callable[[int, int], str]):
        self._index = {int(s): i for i, s in enumerate(ids)}
        self._make = make

    def __getitem__(self, sid) -> str:
        return self._make(self._index[int(sid)], int(sid))

    def __contains__(self, sid) -> bool:
        return int(sid) in self._index

    def __iter__(self):
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def _factors(n_variants: int) -> list[float]:
    """Multiplicative perturbations of the variants, evenly within +-`SYNTHETIC_SCALE`."""
    return [float(f) for f in 1 + SYNTHETIC_SCALE * np.linspace(-1, 1, n_variants)]


def _rvs_variants(real: RealProducts,
                  n_variants: int) -> list[tuple[str, str, list[list[str]]]]:
    """For each real RVS DataLink CSV product: its header line, solution_id and, per
    variant, the line tails after ``dec`` (wavelength, flux, flux_error, the transit and
    CCD counts) with the flux scaled (float32 text, as the archive writes it; empty cells,
    i.e. NaN, stay empty)."""
    out = []
    for _, text in sorted(_rvs_products(real).items()):
        header, *lines = text.rstrip("\n").split("\n")
        rows = [line.split(",") for line in lines]
        variants = []
        for f in _factors(n_variants):
            variants.append([",".join([r[4], str(np.float32(float(r[5]) * f)) if r[5] else "",
                                       *r[6:]]) for r in rows])
        out.append((header, rows[0][1], variants))
    return out


def _xp_variants(real: RealProducts, n_variants: int) -> list[list[tuple[str, str]]]:
    """For each real XP_CONTINUOUS row: per variant, (header, line) with the BP and RP
    coefficients scaled (their errors and correlations, and every other cell, unchanged)."""
    out = []
    for header, line in _xp_rows(real):
        names = header.split(",")
        cells = next(csv.reader([line]))
        variants = []
        for f in _factors(n_variants):
            new = line
            for band in ("bp", "rp"):
                old = cells[names.index(f"{band}_coefficients")]
                values = [float(v) for v in old.strip("()").split(",")]
                new = new.replace(old, "(" + ", ".join(repr(v * f) for v in values) + ")", 1)
            variants.append((header, new))
        out.append(variants)
    return out


def build_synthetic_archive(n: int, real, *, seed: int = 0, n_variants: int = 8,
                            zip_level: int | None = 1, references: bool = False) -> Archive:
    """A loopback archive of ``n`` stars with format-faithful products.

    Every star (source_id from `synthetic_ids`) is a clone of the real data of
    `build_archive`: its gaia_source row is one of the recorded rows (all 152 columns,
    units and types of the archive's VOTable) with source_id, ra and dec replaced and the
    G, BP and RP magnitudes shifted (normal, sigma 0.02 mag); its RVS DataLink CSV is one
    of the real products (same header, 2401 lines, solution_id, transit counts) with its
    own source_id/ra/dec and the flux scaled by one of ``n_variants`` factors within
    +-`SYNTHETIC_SCALE`; its XP_CONTINUOUS CSV row is one of the real rows with its
    source_id and the BP/RP coefficients scaled likewise. Template and variant follow from
    the star's position, so the content is deterministic for given ``n`` and ``seed``.
    The products are made when requested (`ClonedProducts`), so memory does not grow with
    ``n`` beyond the tables. ``iii/286/catalog`` holds one APOGEE row per star, all
    passing the quality cuts (`synthetic_apogee`), so that ``fetch gaia --training
    apogee`` selects every star.

    The ESA service declares TAP uploads without an upload limit (the real service's
    limits are not recorded here), so a selection goes in uploads of
    ``conf.tap_upload_max_ids``.

    Parameters
    ----------
    n : int
        Number of stars.
    real : RealProducts or path-like
        The real products it clones.
    seed : int
        Seed of the positions, magnitude shifts and labels.
    n_variants : int
        Perturbed variants of each real product.
    zip_level : int or None
        zlib level of the DataLink zips (None: zlib's default, 6).
    references : bool
        Also serve the reference tables of the validation for these stars
        (`loopback_tables.synthetic_references`: GALAH, K2-GAP, clusters, GSP-Spec/Phot,
        the published catalogue) and the VizieR Gaia DR3 table of the XMatch service.

    Returns
    -------
    Archive
        Not yet served (see `serve`).
    """
    ids = synthetic_ids(n)
    rng = np.random.default_rng(seed)
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    products = RealProducts(getattr(real, "root", real))
    recorded = Table.read(products.gaia_source_vot, format="votable", use_names_over_ids=True)
    source = recorded[np.arange(n) % len(recorded)]
    source["source_id"][:] = ids
    source["ra"][:] = ra
    source["dec"][:] = dec
    shift = rng.normal(0.0, 0.02, n)
    for band in ("g", "bp", "rp"):
        source[f"phot_{band}_mean_mag"][:] = source[f"phot_{band}_mean_mag"] + shift

    rvs_templates = _rvs_variants(products, n_variants)
    xp_templates = _xp_variants(products, n_variants)

    def rvs(i: int, sid: int) -> str:
        header, solution, variants = rvs_templates[i % len(rvs_templates)]
        tails = variants[(i // len(rvs_templates)) % n_variants]
        prefix = f"{sid},{solution},{float(ra[i])!r},{float(dec[i])!r},"
        return header + "\n" + prefix + ("\n" + prefix).join(tails) + "\n"

    def xp(i: int, sid: int) -> str:
        variants = xp_templates[i % len(xp_templates)]
        return _xp_product(sid, *variants[(i // len(xp_templates)) % n_variants])

    arc = Archive(tables={"gaiadr3.gaia_source": source,
                          "iii/286/catalog": synthetic_apogee(ids, seed=seed)},
                  rvs=ClonedProducts(ids, rvs), xp=ClonedProducts(ids, xp),
                  zip_level=zip_level)
    if references:
        arc.tables.update(synthetic_references(ids, ra, dec, seed=seed))
        arc.tables["i/355/gaiadr3"] = Table({"Source": ids, "RA_ICRS": ra, "DE_ICRS": dec,
                                             "Gmag": source["phot_g_mean_mag"]})
    arc.services["esa"]["upload_limit"] = None
    return arc


# -- serving -----------------------------------------------------------------------------
@contextlib.contextmanager
def serve(arc: Archive) -> Iterator[Archive]:
    """Serve ``arc`` on a free port of 127.0.0.1 (threaded) while the context is open;
    ``arc.url`` is set to the server root."""
    handler = type("Handler", (_Handler,), {"archive": arc})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    arc.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield arc
    finally:
        server.shutdown()
        server.server_close()


def conf_values(arc: Archive, cache_dir, *, timeout: float = 5.0, retries: int = 2) -> dict:
    """`gaiarvs_cnn.conf` items that point a client at the served ``arc``."""
    return {"gaia_tap_url": arc.url + "/esa/tap", "gaia_datalink_url": arc.url + "/esa/data",
            "aip_tap_url": arc.url + "/aip/tap", "vizier_url": arc.url + "/vizier/tap",
            "xmatch_url": arc.url + "/xmatch/api/v1/sync",
            "cache_dir": str(cache_dir), "timeout": timeout, "retries": retries}


def write_config(config_home, arc: Archive, cache_dir, **items) -> dict[str, str]:
    """Write ``<config_home>/astropy/gaiarvs_cnn.cfg`` with `conf_values` (``items`` update
    them) and return the environment variables that make a subprocess read it
    (``XDG_CONFIG_HOME``: astropy's configuration directory becomes
    ``<config_home>/astropy``)."""
    from ..utils.atomic import write_text_atomic

    values = {**conf_values(arc, cache_dir), **items}
    folder = Path(config_home) / "astropy"
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "gaiarvs_cnn.cfg",
                      "".join(f"{k} = {v}\n" for k, v in values.items()))
    return {"XDG_CONFIG_HOME": str(config_home)}


def kill_after(arc: Archive, pid: int, nth: int, path: str = "/data", **params: str) -> dict:
    """SIGKILL process ``pid`` once the ``nth`` answer to a request whose path contains
    ``path`` (and whose parameters have the given values) has been sent.

    Returns
    -------
    dict
        ``{"killed": bool, "seen": int}``, updated as requests arrive.
    """
    import os
    import signal

    state = {"killed": False, "seen": 0}

    def hook(req_path: str, req_params: dict) -> None:
        if path in req_path and all(req_params.get(k) == v for k, v in params.items()):
            with arc.lock:
                state["seen"] += 1
                fire = state["seen"] == nth
            if fire:
                os.kill(pid, signal.SIGKILL)
                state["killed"] = True

    arc.after_response = hook
    return state


def store_differences(a, b) -> list[str]:
    """How two stores differ: column names, row count, then every column compared
    element by element in store order (NaN equal to NaN), and the metadata.

    Returns
    -------
    list of str
        Empty when the stores hold the same stars, columns and values in the same order.
    """
    from ..io.store import Store

    with Store.open(a) as sa, Store.open(b) as sb:
        if sa.colnames != sb.colnames:
            return [f"columns {sa.colnames} != {sb.colnames}"]
        if len(sa) != len(sb):
            return [f"{len(sa)} != {len(sb)} stars"]
        out = []
        for ca, cb in zip(sa.iter_chunks(), sb.iter_chunks()):
            for name in sa.colnames:
                x, y = np.asarray(ca[name]), np.asarray(cb[name])
                same = (x.shape == y.shape and x.dtype == y.dtype
                        and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"))
                if not same and name not in out:
                    out.append(name)
        diffs = [f"column {name} differs" for name in out]
        if sa.meta != sb.meta:
            diffs.append(f"meta {sa.meta} != {sb.meta}")
        return diffs
