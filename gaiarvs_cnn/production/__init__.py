"""Producing the catalogue from a store: ONE engine behind every command.

- `~gaiarvs_cnn.production.task` -- the chunk task (read -> input cuts -> ensemble -> flags)
  and its result files;
- `~gaiarvs_cnn.production.state` -- the resume state: one work directory per run, its
  identity from content;
- `~gaiarvs_cnn.utils.lock.RunLock` -- the run lock of an output or work directory;
- `~gaiarvs_cnn.production.executors` -- where chunks run: in this process or on Dask;
- `~gaiarvs_cnn.production.merge` -- the merge of chunk results into the catalogue files;
- `~gaiarvs_cnn.production.run` -- `produce_catalog`, the run itself.
"""
from ..utils.lock import RunLock, RunLockedError
from .executors import ChunkFailedError, DaskExecutor, LocalExecutor, make_client
from .run import (
    DEFAULT_N_STARS,
    DEFAULT_SEED,
    SOURCES,
    CatalogRun,
    RunSummary,
    produce_catalog,
    run_catalog,
)
from .task import compute_chunk, read_chunk  # noqa: F401  (documented in production.task)

__all__ = ["CatalogRun", "RunSummary", "SOURCES", "DEFAULT_N_STARS", "DEFAULT_SEED",
           "produce_catalog", "run_catalog", "LocalExecutor", "DaskExecutor", "make_client",
           "ChunkFailedError", "RunLock", "RunLockedError"]
