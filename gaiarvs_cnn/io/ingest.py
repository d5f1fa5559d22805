"""Streaming ingestion of real Gaia DR3 files into a `~gaiarvs_cnn.io.store.Store`.

* Gaia DR3 bulk-download files ``RvsMeanSpectrum_*.csv.gz`` and
  ``XpContinuousMeanSpectrum_*.csv.gz`` are streamed block by block by the readers of
  `gaiarvs_cnn.io.bulk_csv` and merged into a store (`bulk_to_store`); XP arrays are
  parsed only for the stars that have an RVS spectrum.
* `ingest_to_store` routes bulk files or DataLink products (via
  `gaiarvs_cnn.io.datalink`) plus a ``gaia_source`` table into a new store, atomically.

Bad stars follow the readers' ``on_error`` policy (see `gaiarvs_cnn.io.policy`). A star
without XP coefficients or without a ``gaia_source`` row is not a bad star: it is written
with those columns NaN, since a network that does not use them (the RVS-only network of the
paper's App. B) can still parameterise it. The store's ``network_coverage`` meta item (and
the log) say how many stars each kind of network can use
(`gaiarvs_cnn.io.availability.network_coverage`).

Examples
--------
>>> from gaiarvs_cnn.io.ingest import bulk_to_store
>>> bulk_to_store(["RvsMeanSpectrum_000000-003111.csv.gz"],
...               ["XpContinuousMeanSpectrum_000000-003111.csv.gz"],
...               "stars.h5", gaia_source="gaia_source.vot")  # doctest: +SKIP
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy import log
from astropy.table import Table
from tqdm.auto import tqdm

from ..exceptions import InputDataError
from ..utils.atomic import refuse_existing
from .availability import NETWORK_KINDS, network_coverage
from .batch import StarBatch, join_batches
from .datalink import read_products
from .gaia_source import PHOT_COLUMNS, gaia_source_to_batch, merge_on_source_id
from .policy import BadStarPolicy, as_policy, duplicate_error
from .spectra import XP_COLUMNS
from .store import Store, atomic_store

__all__ = ["bulk_to_store", "ingest_to_store"]


def _partition(path) -> str | None:
    match = re.search(r"_(\d+-\d+)\.csv(\.gz)?$", Path(path).name)
    return match.group(1) if match else None


def _paired_xp(rvs_file, xp_files: Sequence) -> list:
    """XP files covering the same source_id range as ``rvs_file`` (all if unknown)."""
    part = _partition(rvs_file)
    same = [x for x in xp_files if part is not None and _partition(x) == part]
    return same or list(xp_files)


def _bulk_xp_lookup(xp_files: Sequence, ids: set, policy: BadStarPolicy) -> StarBatch:
    from .bulk_csv import iter_bulk_xp  # pyarrow: imported when bulk files are read

    batches = [b for f in xp_files for b in iter_bulk_xp(f, on_error=policy, source_ids=ids)]
    return policy.drop_duplicates(join_batches(batches), "the XP bulk files")


def _append_new(store: Store, batch: StarBatch, seen: set, policy: BadStarPolicy,
                coverage: dict) -> None:
    """Append the stars not ``seen`` before (repeated source_ids are bad stars); add them to
    the per-network ``coverage`` counts."""
    known = np.array([sid in seen for sid in batch["source_id"].tolist()], dtype=bool)
    for sid in batch["source_id"][known].tolist():
        policy.handle(duplicate_error(sid, "already read from an earlier file; repeated "
                                      "source_id not written again."))
    new = batch[~known]
    store.append(new)
    seen.update(new["source_id"].tolist())
    for name, n in network_coverage(new).items():
        coverage[name] = coverage.get(name, 0) + n


def _merge_available(batch: StarBatch, other: StarBatch | None,
                     columns: Sequence[str]) -> StarBatch:
    """Fill ``columns`` from ``other`` for the stars it has; the others keep NaN (kept)."""
    if other is None or len(other) == 0 or len(batch) == 0:
        return batch
    return merge_on_source_id(batch, other, columns)


def _report_coverage(coverage: dict, n: int) -> None:
    """Log how many of the ``n`` stars written each kind of network can use."""
    parts = ", ".join(f"{name} {coverage.get(name, 0)}" for name in NETWORK_KINDS)
    log.info(f"Stars usable by networks with inputs {parts} (of {n} written; a network "
             "needs only its own inputs).")


def _refuse_empty(store: Store, store_path, policy: BadStarPolicy) -> None:
    """An ingest that ends with 0 stars is an error (nothing is written)."""
    if len(store):
        return
    reasons = "; ".join(f"{r}" for _, r in policy.reasons[:3])
    detail = (f"{policy.n_skipped} bad star(s) skipped (first: {reasons})" if policy.skipped
              else "the inputs hold no star with an RVS spectrum")
    if policy.skipped_files:
        detail += (f"; {len(policy.skipped_files)} file(s) skipped (first: "
                   f"{policy.skipped_files[0]})")
    raise InputDataError(f"No star to write to {store_path}: {detail}. Nothing was written; "
                         "check the inputs (see the log for each skipped star and file).")


def _describe(source) -> str | None:
    if source is None:
        return None
    return "<astropy Table>" if isinstance(source, Table) else str(source)


def _provenance(rvs, xp, gaia_source, policy: BadStarPolicy, n: int, coverage: dict) -> dict:
    _report_coverage(coverage, n)
    return {"inputs": {"rvs": [str(p) for p in rvs], "xp": [str(p) for p in xp],
                       "gaia_source": _describe(gaia_source)},
            "reader": "gaiarvs_cnn.io.ingest", "on_error": policy.on_error, "n_stars": n,
            "n_skipped": len(policy.skipped), "n_skipped_files": len(policy.skipped_files),
            "network_coverage": {name: int(coverage.get(name, 0)) for name in NETWORK_KINDS}}


def _gaia_batch(gaia_source, policy: BadStarPolicy) -> StarBatch | None:
    if gaia_source is None:
        log.warning("No gaia_source table given: photometry, parallax and S/N stay NaN.")
        return None
    return gaia_source_to_batch(gaia_source, on_error=policy)


def bulk_to_store(rvs_files: Sequence, xp_files: Sequence, store_path, gaia_source=None,
                  chunk_size: int | None = None, on_error: str | BadStarPolicy | None = "skip",
                  overwrite: bool = False) -> Path:
    """Build a store from Gaia DR3 bulk RVS and XP files (streamed, with progress bar).

    Each ``RvsMeanSpectrum_<range>.csv.gz`` is paired with the
    ``XpContinuousMeanSpectrum_<range>.csv.gz`` of the same source_id range (all XP files
    are searched when the names do not pair); only the XP rows of RVS stars are parsed.

    Parameters
    ----------
    rvs_files, xp_files : sequence of path-like
        Bulk ``RvsMeanSpectrum_*.csv.gz`` and ``XpContinuousMeanSpectrum_*.csv.gz``
        files (or plain ``.csv``).
    store_path : path-like
        Output HDF5 store, written atomically.
    gaia_source : `~astropy.table.Table` or path-like, optional
        ``gaia_source`` rows of the stars (photometry, parallax, S/N); without it those
        columns stay NaN.
    chunk_size : int, optional
        Stars per chunk (default ``conf.chunk_size``).
    on_error : {'skip', 'raise'}
        Default 'skip': bad stars are logged and left out. Stars without XP or
        gaia_source rows are kept, with those columns NaN.
    overwrite : bool
        Replace an existing ``store_path``.

    Returns
    -------
    Path
        The store.

    Raises
    ------
    OutputExistsError
        If ``store_path`` exists and ``overwrite`` is False.
    BadStarError
        A bad star, with ``on_error='raise'``.
    """
    from .bulk_csv import bulk_source_ids, iter_bulk_rvs  # pyarrow: only for bulk files

    policy = as_policy(on_error)
    store_path = Path(store_path)
    refuse_existing(store_path, overwrite=overwrite, what="store")
    gaia = _gaia_batch(gaia_source, policy)
    seen: set = set()
    coverage: dict = {}
    with atomic_store(store_path, overwrite=overwrite) as store, tqdm(
            desc="Bulk RVS spectra", unit="star") as bar:
        for rvs_file in rvs_files:
            bar.set_postfix_str(Path(rvs_file).name)
            ids = set(bulk_source_ids(rvs_file).tolist())
            xp = _bulk_xp_lookup(_paired_xp(rvs_file, xp_files), ids, policy)
            for chunk in iter_bulk_rvs(rvs_file, chunk_size, policy):
                bar.update(len(chunk))
                chunk = _merge_available(chunk, xp, XP_COLUMNS)
                _append_new(store, _merge_available(chunk, gaia, PHOT_COLUMNS), seen, policy,
                            coverage)
        _refuse_empty(store, store_path, policy)
        store.update_meta(**_provenance(rvs_files, xp_files, gaia_source, policy,
                                        len(store), coverage))
    log.info(f"Wrote {store_path} ({len(policy.skipped)} star(s) skipped).")
    return store_path


def _is_bulk(path) -> bool:
    name = Path(path).name
    return name.startswith(("RvsMeanSpectrum_", "XpContinuousMeanSpectrum_"))


def ingest_to_store(rvs_files: Sequence, xp_files: Sequence, store_path, gaia_source=None,
                    on_error: str | BadStarPolicy | None = None, overwrite: bool = False,
                    chunk_size: int | None = None) -> Path:
    """Read real-format RVS + XP (+ gaia_source) files into a new store.

    Bulk files (``RvsMeanSpectrum_*``) go through `bulk_to_store`; DataLink products and
    bundles through `read_products`, then XP and gaia_source values are merged by
    source_id. Stars without XP coefficients (or without a gaia_source row) are kept with
    those columns NaN: an RVS-only network can use them (``meta['network_coverage']`` of
    the store counts the stars each kind of network can use).

    Parameters
    ----------
    rvs_files, xp_files : sequence of path-like
        RVS and XP continuous files: bulk files, DataLink products (FITS, CSV, ECSV,
        VOTable) or DataLink bundles (zip or directory).
    store_path : path-like
        Output HDF5 store, written atomically.
    gaia_source : `~astropy.table.Table` or path-like, optional
        ``gaia_source`` rows of the stars (photometry, parallax, S/N); without it those
        columns stay NaN.
    on_error : {'raise', 'skip'}
        What to do with a bad star (see `gaiarvs_cnn.io.policy`).
    overwrite : bool
        Replace an existing ``store_path``.
    chunk_size : int, optional
        Stars per append (default ``conf.chunk_size``).

    Returns
    -------
    Path
        The store written.

    Raises
    ------
    OutputExistsError
        If ``store_path`` exists and ``overwrite`` is False.
    BadStarError
        A bad star, with ``on_error='raise'``.
    InputDataError
        A file cannot be read (with ``on_error='raise'``).
    """
    from ..settings import conf

    rvs_files, xp_files = list(rvs_files), list(xp_files)
    if rvs_files and all(_is_bulk(p) for p in rvs_files):
        return bulk_to_store(rvs_files, xp_files, store_path, gaia_source, chunk_size,
                             on_error, overwrite)
    policy = as_policy(on_error)
    refuse_existing(store_path, overwrite=overwrite, what="store")
    rvs = read_products(rvs_files, "RVS", policy)
    xp = read_products(xp_files, "XP_CONTINUOUS", policy)
    batch = _merge_available(rvs, xp, XP_COLUMNS)
    batch = _merge_available(batch, _gaia_batch(gaia_source, policy), PHOT_COLUMNS)
    coverage = network_coverage(batch) if len(batch) else {}
    step = int(chunk_size or conf.chunk_size)
    with atomic_store(store_path, overwrite=overwrite) as store:
        for lo in tqdm(range(0, len(batch), step), desc="Writing store", unit="chunk"):
            store.append(batch[lo:lo + step])
        _refuse_empty(store, store_path, policy)
        store.update_meta(**_provenance(rvs_files, xp_files, gaia_source, policy,
                                        len(store), coverage))
    return Path(store_path)
