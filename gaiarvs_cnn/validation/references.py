"""Obtaining the reference catalogues of the validation: simulated, archive or file.

* ``simulated``: `gaiarvs_cnn.simulate.survey.reference_catalog` on the simulated store
  the catalogue was made from (offsets and scatters recorded in ``meta``);
* ``archive``: the real adapters through
  `gaiarvs_cnn.archives.catalogues.query_reference` (GALAH DR3 and APOGEE DR17 at VizieR,
  K2-GAP, the Cantat-Gaudin 2020 members, Gaia DR3 GSP-Spec/GSP-Phot at the ESA archive);
* ``file``: a Table already in the canonical schema (ECSV, FITS, VOTable), e.g. saved by
  ``gaiarvs-cnn fetch``; for kind ``published``, the released catalogue file (paper
  Table 2 layout, `gaiarvs_cnn.archives.published.read_published`).

Every path returns a Table checked with
`~gaiarvs_cnn.io.reference.check_reference`.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from astropy.table import Table

from ..exceptions import ArchiveError, GaiaRVSCNNError, InputDataError, Param
from ..io.reference import ALL_KINDS, check_reference

__all__ = ["REFERENCE_SOURCES", "get_reference"]

#: Where references can come from.
REFERENCE_SOURCES = ("simulated", "archive", "file")


def _simulated(kind: str, store, seed) -> Table:
    """The simulator's reference for a store path, shard manifest or open store."""
    from ..io.batch import StarBatch
    from ..io.shards import open_source
    from ..simulate.survey import reference_catalog

    if store is None:
        raise InputDataError(f"The simulated {kind} reference is derived from the simulated "
                             "store of the catalogue: pass ",
                             Param("store", placeholder="PATH"), " (e.g. sim.h5).")
    if not isinstance(store, (str, Path)) or Path(store).suffix.lower() != ".json":
        return reference_catalog(kind, store, seed)
    # a shard manifest: read the per-star columns (no spectra) in store order
    with open_source(store) as src:
        cols = [s.name for s in src.specs if len(s.shape) == 0 or s.name in (
            "true_labels", "labels", "label_errors")]
        batch = StarBatch.concatenate(list(src.iter_chunks(columns=cols)))
    return reference_catalog(kind, batch, seed)


def get_reference(kind: str, source: str = "simulated", *, store=None, seed=0,
                  source_ids: Sequence[int] | None = None, path=None) -> Table:
    """Return the ``kind`` reference catalogue from ``source``.

    Parameters
    ----------
    kind : str
        One of `~gaiarvs_cnn.io.reference.ALL_KINDS`.
    source : {"simulated", "archive", "file"}
    store : path-like or `~gaiarvs_cnn.io.store.Store`, optional
        Simulated store (``source="simulated"``).
    seed : int or sequence of int
        Seed of the simulated reference (noise draws).
    source_ids : sequence of int, optional
        Stars to look up (``source="archive"``; GALAH, APOGEE, GSP).
    path : path-like, optional
        Canonical-schema table (``source="file"``).

    Returns
    -------
    `~astropy.table.Table`
        Checked with `~gaiarvs_cnn.io.reference.check_reference`.

    Raises
    ------
    InputDataError
        Unknown kind/source, missing store/path, or a table not in the canonical schema.
    ArchiveError
        The archive could not be reached or answered badly (message names the service).
    """
    if kind not in ALL_KINDS:
        raise InputDataError(f"Unknown reference kind {kind!r}; known: {ALL_KINDS}.")
    if source == "simulated":
        table = _simulated(kind, store, seed)
    elif source == "archive":
        from ..archives.catalogues import query_reference

        try:
            table = query_reference(kind, source_ids)
        except GaiaRVSCNNError:
            raise
        except Exception as exc:  # network stacks raise many types
            raise ArchiveError(f"Could not obtain the {kind} reference from its archive: "
                               f"{exc}") from exc
    elif source == "file":
        if path is None or not Path(path).exists():
            raise InputDataError(f"No {kind} reference file at {path!r}; give an existing "
                                 f"ECSV/FITS/VOTable in the canonical schema.")
        if kind == "published":  # the released layout (paper Table 2, integer flags)
            from ..archives.published import read_published

            table = read_published(path)
        else:
            table = Table.read(path)
    else:
        raise InputDataError(f"Unknown reference source {source!r}; use one of "
                             f"{REFERENCE_SOURCES}.")
    return check_reference(table, kind)
