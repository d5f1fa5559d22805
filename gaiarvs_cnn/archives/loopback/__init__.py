"""A loopback archive: a threaded HTTP server on 127.0.0.1 speaking enough TAP (sync and
async/UWS), ESA DataLink, VizieR-TAP and CDS XMatch to replay real-format responses.

A test double of the archives, in the package so that the tests (fixtures in
``tests/archives/conftest.py``) and the benchmarks (``benchmarks/bench_fetch_rehearsal.py``)
import the same one. Modules, one concept each:

* `~gaiarvs_cnn.archives.loopback.services` -- `Archive`, the archive's state (tables,
  DataLink products, request log, injected failures) and its services (ADQL, uploads,
  capabilities, DataLink zips, XMatch);
* `~gaiarvs_cnn.archives.loopback.server` -- `serve`: the HTTP server and request routing;
* `~gaiarvs_cnn.archives.loopback.faults` -- the answers of a broken or hostile archive;
* `~gaiarvs_cnn.archives.loopback.content` -- `RealProducts` and `build_archive`, the small
  real-data archive of the tests (the repository's real files are ``tests/data/gaia_real/``);
* `~gaiarvs_cnn.archives.loopback.synthetic` -- `build_synthetic_archive`, N
  format-faithful stars cloned from the same real products;
* `~gaiarvs_cnn.archives.loopback.reference_tables` -- the reference-catalogue tables
  (APOGEE, GALAH, K2-GAP, clusters, GSP-Spec/Phot, the published catalogue);
* `~gaiarvs_cnn.archives.loopback.harness` -- pointing a client or a ``gaiarvs-cnn``
  subprocess at a served archive (`conf_values`, `write_config`), killing it at a chosen
  request (`kill_after`) and comparing the stores of two runs (`store_differences`).

Examples
--------
>>> from gaiarvs_cnn.archives.loopback import build_archive, serve
>>> with serve(build_archive("tests/data/gaia_real")) as archive:  # doctest: +SKIP
...     print(archive.url)
"""
from .content import RVS_CSV_HEADER, RealProducts, build_archive
from .faults import zip_bomb
from .harness import conf_values, kill_after, store_differences, write_config
from .server import serve
from .services import Archive
from .synthetic import (
    SYNTHETIC_ID_START,
    SYNTHETIC_ID_STEP,
    SYNTHETIC_SCALE,
    ClonedProducts,
    build_synthetic_archive,
    synthetic_ids,
)

__all__ = ["Archive", "RealProducts", "RVS_CSV_HEADER", "build_archive", "serve",
           "zip_bomb", "SYNTHETIC_ID_START", "SYNTHETIC_ID_STEP", "SYNTHETIC_SCALE",
           "ClonedProducts", "build_synthetic_archive", "synthetic_ids", "conf_values",
           "write_config", "kill_after", "store_differences"]
