"""Reading Gaia DR3 bulk-download files: ``iter_bulk_rvs``, ``iter_bulk_xp`` and ``bulk_to_store``.

Writes one ``RvsMeanSpectrum_*.csv.gz`` and one ``XpContinuousMeanSpectrum_*.csv.gz`` file
in the DR3 bulk layout (ECSV ``#`` header, one star per row, arrays as ``"[v1,v2,...]"``
cells with ``null`` for missing values, values with float32 precision) from the real stars
of ``tests/data/gaia_real`` (8 RVS spectra, 2 XP continuous rows) repeated under new
source_ids, then times:

* ``rvs``: streaming every star of the RVS file (`gaiarvs_cnn.io.bulk_csv.iter_bulk_rvs`);
* ``xp_lookup``: the XP rows of every other star (`gaiarvs_cnn.io.bulk_csv.iter_bulk_xp`
  with ``source_ids``);
* ``bulk_to_store``: the whole ingest of the pair into a store
  (`gaiarvs_cnn.io.ingest.bulk_to_store`: the source_id pass, the XP lookup, the RVS
  stream and the store writes).

Writing the files is not timed. Each run is recorded under its ``--label`` (e.g. ``before``
and ``after`` a change), so that one result file compares implementations measured on the
same machine.

Run (about a minute at 3000 stars)::

    nice -n 10 python benchmarks/bench_bulk_ingest.py --n-stars 3000 --label after

Results are printed and merged into ``benchmarks/results/bulk_ingest.json``.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _header import ROOT, provenance, result_header
from astropy.table import Table

from gaiarvs_cnn.io.bulk_csv import iter_bulk_rvs, iter_bulk_xp
from gaiarvs_cnn.io.ingest import bulk_to_store
from gaiarvs_cnn.io.spectra import read_rvs_datalink
from gaiarvs_cnn.io.store import Store
from gaiarvs_cnn.utils.atomic import write_text_atomic

SCRIPT_VERSION = 1
REAL = ROOT / "tests" / "data" / "gaia_real"
XP_ARRAYS = ("bp_coefficients", "bp_coefficient_errors", "bp_coefficient_correlations",
             "rp_coefficients", "rp_coefficient_errors", "rp_coefficient_correlations")


def _array_cell(values) -> str:
    """A bulk-file array cell: float32 precision, ``null`` for missing values."""
    return '"[' + ",".join("null" if not np.isfinite(v) else f"{v:.8g}"
                           for v in np.asarray(values, dtype=np.float32).tolist()) + ']"'


def _write(path: Path, names: list[str], array_columns, rows) -> None:
    """Write ``rows`` (lists of cells, arrays already as cell text) in the bulk layout."""
    head = ["# %ECSV 1.0", "# ---", "# delimiter: ','", "# datatype:"]
    for name in names:
        head += ["# -", f"#   name: {name}"]
        head += (["#   datatype: string", "#   subtype: 'float32[null]'"]
                 if name in array_columns else ["#   datatype: float64"])
    head.append("# schema: astropy-2.0")
    with gzip.open(path, "wt", compresslevel=1) as fh:
        fh.write("\n".join(head) + "\n" + ",".join(names) + "\n")
        for row in rows:
            fh.write(",".join(row) + "\n")


def _real_rvs() -> list[dict]:
    files = sorted((REAL / "rvs_datalink_csv").glob("*.csv")) + sorted(
        (REAL / "rvs_datalink_csv_extra").glob("*.csv")) + sorted(
        (REAL / "rvs_datalink_fits").glob("*.fits"))
    out = []
    for f in files:
        b = read_rvs_datalink(f)
        out.append({"ra": repr(float(b["ra"][0])), "dec": repr(float(b["dec"][0])),
                    "flux": _array_cell(b["flux"][0]),
                    "flux_error": _array_cell(b["flux_error"][0])})
    return out


def _real_xp() -> list[dict]:
    table = Table.read(REAL / "xp_continuous" / "XP_CONTINUOUS_RAW.ecsv")
    return [{name: _array_cell(np.ma.filled(np.asarray(rec[name], dtype=float), np.nan))
             for name in XP_ARRAYS} for rec in table]


def write_files(work: Path, n: int) -> tuple[Path, Path, np.ndarray]:
    """One RVS and one XP bulk file of ``n`` stars each (real values, new source_ids)."""
    ids = np.arange(1, n + 1, dtype=np.int64) * 34359738368 + 7
    rvs, xp = _real_rvs(), _real_xp()
    rvs_path = work / "RvsMeanSpectrum_000001-000002.csv.gz"
    xp_path = work / "XpContinuousMeanSpectrum_000001-000002.csv.gz"
    rvs_names = ["solution_id", "source_id", "ra", "dec", "flux", "flux_error",
                 "combined_transits", "combined_ccds", "deblended_ccds"]
    _write(rvs_path, rvs_names, ("flux", "flux_error"),
           ([ "375316653866487564", str(sid), r["ra"], r["dec"], r["flux"], r["flux_error"],
              "9", "27", "0"] for sid, r in zip(ids.tolist(), (rvs[i % len(rvs)]
                                                                 for i in range(n)))))
    xp_names = ["source_id", "solution_id", *XP_ARRAYS, "bp_n_parameters",
                "rp_n_parameters"]
    _write(xp_path, xp_names, XP_ARRAYS,
           ([str(sid), "375316653866487564", *(r[a] for a in XP_ARRAYS), "55", "55"]
            for sid, r in zip(ids.tolist(), (xp[i % len(xp)] for i in range(n)))))
    return rvs_path, xp_path, ids


def _timed(fn) -> tuple[dict, object]:
    t0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3)}, value


def run(work: Path, n: int, chunk: int) -> dict:
    rvs_path, xp_path, ids = write_files(work, n)
    out: dict = {"n_stars": n, "bytes": {"rvs": rvs_path.stat().st_size,
                                         "xp": xp_path.stat().st_size}}
    entry, flux_sum = _timed(lambda: sum(float(np.nansum(b["flux"]))
                                         for b in iter_bulk_rvs(rvs_path, chunk)))
    out["rvs"] = {**entry, "stars_per_s": round(n / entry["seconds"], 1),
                  "checksum_flux": flux_sum}
    wanted = ids[::2]
    entry, got = _timed(lambda: sum(len(b) for b in iter_bulk_xp(xp_path, chunk,
                                                                 source_ids=wanted)))
    assert got == len(wanted), got
    out["xp_lookup"] = {**entry, "n_wanted": len(wanted)}
    store = work / "bulk.h5"
    entry, _ = _timed(lambda: bulk_to_store([rvs_path], [xp_path], store, chunk_size=chunk))
    with Store.open(store) as s:
        assert len(s) == n
    out["bulk_to_store"] = {**entry, "stars_per_s": round(n / entry["seconds"], 1)}
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-stars", type=int, default=3000)
    parser.add_argument("--chunk", type=int, default=1000, help="stars per yielded batch")
    parser.add_argument("--label", default="current",
                        help="the key this run is recorded under (e.g. before, after)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the files are written (default: a temporary dir)")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).parent / "results" / "bulk_ingest.json")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench_bulk_ingest.", dir=args.dir))
    try:
        entry = {**result_header(__file__, SCRIPT_VERSION, args), **provenance(),
                 **run(work, args.n_stars, args.chunk),
                 "load_average_end": list(os.getloadavg())}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = json.loads(args.out.read_text()) if args.out.exists() else {"runs": {}}
    result["runs"][args.label] = entry
    text = json.dumps(result, indent=1)
    print(json.dumps(entry, indent=1))
    write_text_atomic(args.out, text + "\n")


if __name__ == "__main__":
    main()
