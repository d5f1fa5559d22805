"""A loopback archive: a threaded HTTP server on 127.0.0.1 speaking enough TAP (sync and
async/UWS), ESA DataLink and VizieR-TAP to replay real-format responses.

Its "database" is a dict of astropy Tables built from the real Gaia DR3 files in
``../shared/data/real/`` (gaia_source rows, RVS and XP products) and from the reference
catalogue tables of ``tests/sources/_reference_tables.py``. ADQL is interpreted only as
far as the adapters need: the table after ``FROM``, ``<column> IN (...)`` integer lists,
``TOP n``, the select list, and TAP table uploads: the ``multipart/form-data`` request is
parsed, the uploaded VOTable read with `astropy.io.votable`, and
``FROM TAP_UPLOAD.<t> AS u JOIN <table> AS x ON x.<col> = u.<col>`` evaluated as a real
inner join (`astropy.table.join`). Each service publishes a VOSI ``/capabilities``
document (TAPRegExt ``uploadMethod``, ``uploadLimit``, ``outputLimit``) from
``Archive.services`` and refuses uploads beyond its published limit (HTTP 400), as a real
service would.

Failures are injected per test with ``archive.fail(path, mode, times)``: ``"500"`` (HTTP
500), ``"slow"`` (sleep ``archive.slow_s`` before answering), ``"truncate"`` (half of the
payload), ``"malformed"`` (a broken VOTable), ``"429"`` (HTTP 429 with
``Retry-After: archive.retry_after``) and ``"nostatus"`` (a VOTable without the
``QUERY_STATUS`` INFO).
"""
from __future__ import annotations

import functools
import io
import re
import threading
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from astropy.io.votable import from_table
from astropy.table import Table, vstack

from gaiarvs_cnn import conf

from ._reference_tables import reference_tables

REAL = Path(__file__).resolve().parents[1] / "data" / "gaia_real"
RVS_CSV = sorted((REAL / "rvs_datalink_csv").glob("*.csv"))
RVS_FITS = sorted((REAL / "rvs_datalink_fits").glob("*.fits"))
XP_CSV = REAL / "xp_continuous" / "XP_CONTINUOUS_RAW.csv"
XP_BUNDLE = REAL / "astroquery_gaia" / "gaia_dr3_source_id_5937083312263887616_dl_products_csv.zip"
GAIA_SOURCE_VOT = REAL / "astroquery_gaia" / "1710099405832VAL-result.vot"
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


def _rvs_products() -> dict[int, str]:
    """source_id -> RVS DataLink CSV text: two real CSV products unchanged, two real FITS
    products converted."""
    out = {}
    for path in RVS_CSV:
        text = path.read_text()
        out[int(text.splitlines()[1].split(",", 1)[0])] = text
    out.update(_fits_as_datalink_csv(p) for p in RVS_FITS)
    return out


def _xp_rows() -> list[tuple[str, str]]:
    """(header, data line) of each real XP_CONTINUOUS CSV row (3 sources)."""
    texts = [XP_CSV.read_text()]
    with zipfile.ZipFile(XP_BUNDLE) as zf:
        texts += [zf.read(n).decode() for n in zf.namelist() if n.startswith("XP_CONTINUOUS")]
    rows = []
    for text in texts:
        header, *lines = text.splitlines()
        rows += [(header, line) for line in lines if line.strip()]
    return rows


def _gaia_source(ids: list[int], ra_dec: dict[int, tuple[float, float]]) -> Table:
    """gaia_source rows for ``ids``: the two real rows of the astroquery recording,
    repeated, with source_id / ra / dec rewritten (all 152 real columns and units)."""
    real = Table.read(GAIA_SOURCE_VOT, format="votable", use_names_over_ids=True)
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
        flux.append(np.ma.filled(np.ma.asarray(t["flux"], dtype=float), np.nan))
        err.append(np.ma.filled(np.ma.asarray(t["flux_error"], dtype=float), np.nan))
    return Table({"source_id": np.array(sids, dtype=np.int64),
                  "flux": np.array(flux, dtype=np.float32),
                  "flux_error": np.array(err, dtype=np.float32)})


def _xp_table(ids: list[int], rows: list[tuple[str, str]]) -> Table:
    """AIP-style ``gaiadr3.xp_continuous_mean_spectrum`` with array columns."""
    from gaiarvs_cnn.io.readers import XP_COLUMNS, read_xp_continuous

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
    rvs: dict = field(default_factory=dict)
    xp_rows: list = field(default_factory=list)
    xp_ids: list = field(default_factory=list)
    sync_max_rows: int | None = None
    uppercase: bool = False
    slow_s: float = 1.0
    retry_after: str = "2"
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

    def count(self, path: str) -> int:
        """Number of requests logged whose path contains ``path``."""
        return sum(path in p for p, _ in self.log)

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
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for sid in ids:
                text = None
                if kind == "RVS" and sid in self.rvs:
                    text = self.rvs[sid]
                elif kind == "XP_CONTINUOUS" and sid in self.xp_ids:
                    header, line = self.xp_rows[self.xp_ids.index(sid) % len(self.xp_rows)]
                    text = header + "\n" + str(sid) + line[line.index(","):] + "\n"
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
        mode = arc.take_failure(path, params)
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
        try:
            self._send(code, body, ctype, headers)
        except (BrokenPipeError, ConnectionResetError):  # client gave up (timeout test)
            pass

    def _dispatch(self, method: str, path: str, params: dict):
        arc = self.archive
        if path.endswith("/data"):
            code, body = arc.datalink_zip(params)
            return code, body, "application/zip", {}
        service = path.strip("/").split("/")[0]
        if path.endswith("/capabilities"):
            code, body = arc.capabilities(service, arc.url + path.rsplit("/", 1)[0])
            return code, body, "text/xml", {}
        if path.endswith("/sync"):
            uploads, sizes = self._uploads(params)
            arc.check_uploads(service, uploads, sizes)
            table, overflow = arc.run_adql(params["QUERY"], uploads)
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


@functools.lru_cache(maxsize=1)
def _content() -> tuple:
    """Static content, built once per session (the tables are never modified)."""
    rvs = _rvs_products()
    xp_rows = _xp_rows()
    ra_dec = {}
    for sid, text in rvs.items():
        fields = text.splitlines()[1].split(",")
        ra_dec[sid] = (float(fields[2]), float(fields[3]))
    sky = sorted(rvs)
    no_spectrum = [1000000000000000001]
    tables = {"gaiadr3.gaia_source": _gaia_source(sky + no_spectrum, ra_dec),
              "gaiadr3.rvs_mean_spectrum": _rvs_table(rvs),
              "gaiadr3.xp_continuous_mean_spectrum": _xp_table(sky, xp_rows)}
    tables.update(reference_tables(sky))
    return rvs, xp_rows, sky, tables


def build_archive() -> Archive:
    """The loopback archive's content: six real RVS stars (all with XP) plus one star
    present in gaia_source but without any spectrum (to exercise missing ids)."""
    rvs, xp_rows, sky, tables = _content()
    return Archive(tables=dict(tables), rvs=dict(rvs), xp_rows=list(xp_rows),
                   xp_ids=list(sky))


@pytest.fixture
def archive(tmp_path):
    """A running loopback archive; ``gaiarvs_cnn.conf`` URLs point at it and the cache
    directory is a fresh temporary directory."""
    arc = build_archive()
    handler = type("Handler", (_Handler,), {"archive": arc})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    arc.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with conf.set_temp("gaia_tap_url", arc.url + "/esa/tap"), \
            conf.set_temp("gaia_datalink_url", arc.url + "/esa/data"), \
            conf.set_temp("aip_tap_url", arc.url + "/aip/tap"), \
            conf.set_temp("vizier_url", arc.url + "/vizier/tap"), \
            conf.set_temp("cache_dir", str(tmp_path / "cache")), \
            conf.set_temp("timeout", 5.0), conf.set_temp("retries", 2):
        yield arc
    server.shutdown()
    server.server_close()


@pytest.fixture
def fast_client():
    """An HTTPClient with a short timeout and near-zero backoff."""
    from gaiarvs_cnn.archives.base import HTTPClient

    return HTTPClient(timeout=5.0, retries=2, backoff=0.01)
