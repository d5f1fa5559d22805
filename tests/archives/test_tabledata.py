"""The loopback archive writes TABLEDATA VOTables without astropy's C row writer, whose
string terminator lands one byte past a row buffer the row fills exactly
(astropy/astropy#20419): under Python's debug allocator that write aborts the process."""
import io
import subprocess
import sys
import warnings

import numpy as np
from astropy.io.votable import from_table
from astropy.table import MaskedColumn, Table

from gaiarvs_cnn.archives.loopback.services import tabledata_bytes
from gaiarvs_cnn.archives.tap import _WIDEST_ID, ids_votable

#: rows whose XML is 200 ... 1100 bytes long: some fill the writer's 256/512/1024-byte
#: buffer exactly
_ROWS = """
import sys
from astropy.table import Table
from gaiarvs_cnn.archives.loopback.services import tabledata_bytes
for width in range(200, 1100):
    tabledata_bytes(Table({"s": ["x" * width]}))
print("written")
"""


def test_rows_that_fill_the_row_buffer_exactly_are_written_without_overflow():
    env_run = subprocess.run([sys.executable, "-c", _ROWS], capture_output=True, text=True,
                             env={**_env(), "PYTHONMALLOC": "debug"}, timeout=300)
    assert env_run.returncode == 0, env_run.stderr[-2000:]
    assert "written" in env_run.stdout


def test_python_row_writer_writes_what_the_c_writer_writes():
    rng = np.random.default_rng(3)
    n = 300
    table = Table({"source_id": rng.integers(0, 2**62, n)})
    table["v"] = MaskedColumn(rng.normal(size=n), mask=rng.random(n) < 0.3)
    table["a"] = MaskedColumn(rng.normal(size=(n, 5)).astype("f4"),
                              mask=rng.random((n, 5)) < 0.1)
    table["name"] = MaskedColumn(["Sté & <ü>" * (1 + i % 9) for i in range(n)],
                                 mask=rng.random(n) < 0.2)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_table(table).to_xml(buf)
    assert tabledata_bytes(table) == buf.getvalue()


def test_id_upload_rows_stay_inside_the_c_writers_first_buffer():
    # pyvo writes our id uploads with astropy's C writer; its first row buffer (256 bytes)
    # is never grown -- so never overrun -- while a row's XML is shorter than that
    text = tabledata_bytes(ids_votable([-_WIDEST_ID - 1, _WIDEST_ID])).decode()
    body = text[text.index("<TABLEDATA>\n") + len("<TABLEDATA>\n"):text.index("</TABLEDATA>")]
    rows = [r + "</TR>\n" for r in body.split("</TR>\n") if r.strip()]
    body_rows = body.rstrip(" ")  # the indent before </TABLEDATA>
    assert "".join(rows) == body_rows and len(rows) == 2
    assert max(len(r) for r in rows) < 256


def _env():
    import os
    return {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
