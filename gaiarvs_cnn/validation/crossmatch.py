"""Joining a CNN catalogue with reference catalogues and with its parent HDF5 store.

The catalogue holds only the 17 columns of the paper's Table 2. The S/N, sky position,
parallax and G magnitude of each star come from the store the catalogue was made from
(`add_store_columns`); reference labels come from a reference Table in the canonical
schema (`match_reference`), prefixed so that ``teff`` (CNN) and ``ref_teff`` sit side by
side.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from astropy import log
from astropy.table import Table, join, vstack
from tqdm.auto import tqdm

from ..constants import LABELS
from ..exceptions import InputDataError, Param
from ..io.shards import open_source
from ..utils.arrays import masked_to_nan

__all__ = ["GOOD_FLAG", "STORE_COLUMNS", "match_reference", "add_store_columns",
           "require_stars",
           "good_mask", "snr_subsets", "SNR_BINS"]

#: ``flag_boundary`` of a star inside every training-sample limit (paper Sect. 5.2).
GOOD_FLAG = "00000000"
#: Store columns the validation needs beside the catalogue.
STORE_COLUMNS = ("rvs_snr", "ra", "dec", "parallax", "parallax_error", "phot_g_mean_mag")
#: Columns of a simulated store holding the truth (added when present).
TRUTH_COLUMNS = ("true_labels", "population", "cluster_id", "galactic_R", "galactic_Z")
#: RVS S/N bins of the GALAH comparison: 15-25, 25-50, >= 50 (``lo <= S/N < hi``).
SNR_BINS = {"snr 15-25": (15.0, 25.0), "snr 25-50": (25.0, 50.0), "snr >=50": (50.0, np.inf)}


def match_reference(catalog: Table, reference: Table, prefix: str = "ref_",
                    join_type: str = "inner") -> Table:
    """Join ``catalog`` and ``reference`` on ``source_id``.

    Every reference column except ``source_id`` is renamed ``prefix + name`` so that the
    catalogue's columns are left untouched. A reference with several rows per star (open
    cluster membership lists) gives several rows. ``join_type="left"`` keeps every
    catalogue row (reference columns masked where there is no match).

    Parameters
    ----------
    catalog : `~astropy.table.Table`
        CNN catalogue (or any table with ``source_id``).
    reference : `~astropy.table.Table`
        Reference catalogue in the canonical schema.
    prefix : str
        Prefix given to the reference columns.
    join_type : {"inner", "left"}
        Keep matched rows only, or every catalogue row.

    Returns
    -------
    `~astropy.table.Table`
        The joined table, sorted by ``source_id``.

    Raises
    ------
    InputDataError
        If either table lacks ``source_id``.
    """
    for name, tab in (("catalogue", catalog), ("reference", reference)):
        if "source_id" not in tab.colnames:
            raise InputDataError(f"The {name} has no 'source_id' column; cannot cross-match.")
    ref = reference.copy(copy_data=False)
    ref.rename_columns([c for c in ref.colnames if c != "source_id"],
                       [prefix + c for c in ref.colnames if c != "source_id"])
    cat = catalog.copy(copy_data=False)
    cat["source_id"] = np.asarray(cat["source_id"], dtype=np.int64)
    ref["source_id"] = np.asarray(ref["source_id"], dtype=np.int64)
    matched = join(cat, ref, keys="source_id", join_type=join_type,
                   metadata_conflicts="silent")
    log.info(f"Cross-match on source_id: {len(matched)} of {len(catalog)} catalogue stars "
             f"have a reference entry ({len(reference)} reference rows).")
    return matched


def _truth_columns(batch, keep: np.ndarray) -> dict[str, np.ndarray]:
    cols = {}
    if "true_labels" in batch:
        for i, label in enumerate(LABELS):
            cols[f"true_{label}"] = batch["true_labels"][keep, i]
    for name in TRUTH_COLUMNS[1:]:
        if name in batch:
            cols[name] = batch[name][keep]
    return cols


def add_store_columns(catalog: Table, store, columns: Sequence[str] = STORE_COLUMNS,
                      chunk_size: int | None = None) -> Table:
    """Return ``catalog`` with per-star columns read from its parent store.

    Reads the store chunk by chunk (only the needed columns) and keeps the stars of the
    catalogue. Truth columns of a simulated store (``true_labels`` split into
    ``true_teff`` ... ``true_feh``, ``population``, ``cluster_id``) are added when
    present.

    Parameters
    ----------
    catalog : `~astropy.table.Table`
        CNN catalogue with ``source_id``.
    store : path-like or open store
        The store (``.h5``) or shard manifest (``.json``) the catalogue was predicted
        from, or an open `~gaiarvs_cnn.io.store.Store` / `gaiarvs_cnn.io.shards` source.
    columns : sequence of str
        Store columns to add (default `STORE_COLUMNS`: rvs_snr, ra, dec, parallax,
        parallax_error, phot_g_mean_mag).
    chunk_size : int, optional
        Stars per chunk (default ``conf.chunk_size``).

    Returns
    -------
    `~astropy.table.Table`
        ``catalog`` joined with the store columns (sorted by ``source_id``).

    Raises
    ------
    InputDataError
        If the catalogue has no star (`require_stars`), or catalogue stars are missing
        from the store (it is not the parent store).
    """
    require_stars(catalog)
    own = isinstance(store, (str, os.PathLike))
    src = open_source(store) if own else store
    try:
        specs = {spec.name: spec for spec in src.specs}
        wanted = [c for c in (*columns, *TRUTH_COLUMNS) if c in specs]
        ids = np.asarray(catalog["source_id"], dtype=np.int64)
        parts: list[Table] = []
        for batch in tqdm(src.iter_chunks(chunk_size, columns=wanted), desc="store columns",
                          unit="chunk", disable=None, leave=False):
            keep = np.isin(batch["source_id"], ids)
            if not keep.any():
                continue
            part = Table({"source_id": batch["source_id"][keep]})
            for name in columns:
                if name in batch:
                    part[name] = batch[name][keep]
                    part[name].unit = specs[name].unit or None
            for name, arr in _truth_columns(batch, keep).items():
                part[name] = arr
            parts.append(part)
    finally:
        if own:
            src.close()
    extra = vstack(parts) if parts else Table({"source_id": np.zeros(0, np.int64)})
    missing = np.setdiff1d(ids, np.asarray(extra["source_id"]))
    if missing.size:
        raise InputDataError(
            f"{missing.size} catalogue star(s) (e.g. Gaia DR3 {missing[:3].tolist()}) are not "
            "in the store; pass the store the catalogue was produced from (",
            Param("store", placeholder="PATH"), ").")
    drop = [c for c in extra.colnames if c != "source_id" and c in catalog.colnames]
    extra.remove_columns(drop)
    out = join(Table(catalog, copy=False), extra, keys="source_id", join_type="left",
               metadata_conflicts="silent")
    return out


def require_stars(catalog: Table) -> None:
    """Refuse a catalogue without rows (its comparisons would all be empty).

    Raises
    ------
    InputDataError
        If ``catalog`` has no row.
    """
    if len(catalog) == 0:
        raise InputDataError("The catalogue has no star: there is nothing to validate. "
                             "Check the catalogue file (and the cuts that produced it).")


def good_mask(table: Table, good_only: bool = True) -> np.ndarray:
    """True where ``flag_boundary == "00000000"`` (all True if the column is absent).

    Parameters
    ----------
    table : `~astropy.table.Table`
        Catalogue.
    good_only : bool, optional
        If False, every row is True (the comparisons' ``good_only`` option).

    Returns
    -------
    numpy.ndarray of bool
    """
    if not good_only or "flag_boundary" not in table.colnames:
        return np.ones(len(table), dtype=bool)
    flags = np.char.strip(np.asarray(table["flag_boundary"]).astype(str))
    return flags == GOOD_FLAG


def snr_subsets(snr: np.ndarray, bins: dict = SNR_BINS) -> dict:
    """Boolean masks of the S/N bins, ``lo <= snr < hi`` (``hi`` may be ``inf``).

    Parameters
    ----------
    snr : array-like
        RVS S/N per star.
    bins : dict of str -> (lo, hi)
        Named bins (default `SNR_BINS`).

    Returns
    -------
    dict of str -> numpy.ndarray of bool
    """
    snr = masked_to_nan(snr)
    return {name: (snr >= lo) & (snr < hi) for name, (lo, hi) in bins.items()}
