"""Data at rest: the HDF5 star store, sharded stores, readers of real Gaia products, ingest.

Modules, one concept each:

* `~gaiarvs_cnn.io.batch` -- `StarBatch`, the in-memory stars, and the core columns;
* `~gaiarvs_cnn.io.store` -- `Store`, the chunked HDF5 store;
* `~gaiarvs_cnn.io.manifest` and `~gaiarvs_cnn.io.shards` -- sharded stores;
* `~gaiarvs_cnn.io.tables` -- reading every table of a file, whatever its format;
* `~gaiarvs_cnn.io.cells` -- parsing table cells (source_ids, numbers, vectors);
* `~gaiarvs_cnn.io.products` -- what Gaia product a table holds;
* `~gaiarvs_cnn.io.spectra` -- RVS and XP continuous product readers;
* `~gaiarvs_cnn.io.datalink` -- DataLink bundles;
* `~gaiarvs_cnn.io.gaia_source` -- gaia_source rows and merging by source_id;
* `~gaiarvs_cnn.io.availability` -- which network inputs (RVS, photometry, XP) each star has;
* `~gaiarvs_cnn.io.bulk_csv` -- reading Gaia DR3 bulk-download files;
* `~gaiarvs_cnn.io.ingest` -- products and bulk files into a store;
* `~gaiarvs_cnn.io.policy` -- what to do with a bad star.

The public names of these modules are importable from ``gaiarvs_cnn.io`` itself.
"""
from .availability import NETWORK_KINDS, input_availability, network_coverage
from .batch import CORE_COLUMNS, ColumnSpec, StarBatch, join_batches, match_ids, rows_to_batch
from .cells import parse_source_id, parse_vector
from .datalink import read_datalink_products, read_products
from .gaia_source import PHOT_COLUMNS, gaia_source_to_batch, merge_on_source_id
from .ingest import bulk_to_store, ingest_to_store
from .manifest import Manifest, create_manifest, read_manifest
from .policy import BadStarPolicy, as_policy
from .products import OTHER_PRODUCTS, classify_table, classify_tables
from .shards import open_source, shard_store
from .spectra import PRODUCTS, XP_COLUMNS, read_rvs_datalink, read_xp_continuous
from .store import StarReader, Store, atomic_store, open_store

__all__ = [
    "NETWORK_KINDS", "input_availability", "network_coverage",
    "CORE_COLUMNS", "ColumnSpec", "StarBatch", "join_batches", "match_ids", "rows_to_batch",
    "parse_source_id", "parse_vector", "bulk_source_ids", "iter_bulk_rvs", "iter_bulk_xp",
    "read_datalink_products", "read_products",
    "PHOT_COLUMNS", "gaia_source_to_batch", "merge_on_source_id",
    "BadStarPolicy", "as_policy", "OTHER_PRODUCTS", "classify_table", "classify_tables",
    "PRODUCTS", "XP_COLUMNS", "read_rvs_datalink", "read_xp_continuous",
    "StarReader", "Store", "atomic_store", "open_store", "open_source", "shard_store",
    "Manifest", "create_manifest", "read_manifest", "bulk_to_store", "ingest_to_store",
]

#: Names of `~gaiarvs_cnn.io.bulk_csv`, imported on first use (it imports pyarrow, about
#: 0.25 s of every command that never reads a bulk file).
_BULK_NAMES = ("bulk_source_ids", "iter_bulk_rvs", "iter_bulk_xp")


def __getattr__(name: str):
    if name in _BULK_NAMES:
        from . import bulk_csv

        return getattr(bulk_csv, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
