"""The AIP Gaia DR3 mirror (``https://gaia.aip.de/tap``, ``conf.aip_tap_url``).

Same interface as `gaiarvs_cnn.archives.gaia.GaiaArchive` (selection, resumable fetch into
a store); only the spectra come another way. Gaia@AIP serves the DR3 spectra as TAP
tables with array columns: ``gaiadr3.rvs_mean_spectrum`` (``source_id``, ``flux``,
``flux_error``, 2401 values each on the standard RVS grid, no wavelength column) and
``gaiadr3.xp_continuous_mean_spectrum`` (``bp_coefficients``, ``bp_coefficient_errors``,
``rp_coefficients``, ``rp_coefficient_errors``). Ids are sent in groups of at most
``conf.aip_datalink_max_ids`` (2000, the limit of AIP's spectra services).

Examples
--------
>>> from gaiarvs_cnn.archives.aip import AIPArchive       # doctest: +SKIP
>>> AIPArchive().fetch_to_store("stars.h5", source_ids=[4268620287278693120])  # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..constants import RVS_NPIX, XP_NCOEFF
from ..exceptions import InputDataError
from ..io.batch import StarBatch
from ..utils.arrays import masked_to_nan
from .gaia import PRODUCT_COLUMNS, GaiaArchive, check_product_errors
from .tables import ColumnMap
from .tap import id_query_requests, query_by_ids

__all__ = ["AIPArchive", "AIP_SPECTRA_TABLES"]

#: TAP tables holding each product at AIP.
AIP_SPECTRA_TABLES = {"RVS": "gaiadr3.rvs_mean_spectrum",
                      "XP_CONTINUOUS": "gaiadr3.xp_continuous_mean_spectrum"}


class AIPArchive(GaiaArchive):
    """Gaia DR3 at the AIP mirror (TAP only; spectra from array-valued tables).

    Parameters
    ----------
    tap_url : str, optional
        Default ``conf.aip_tap_url``.
    max_ids : int, optional
        Ids per spectra query (default ``conf.aip_datalink_max_ids``).
    client, refresh
        As for `~gaiarvs_cnn.archives.gaia.GaiaArchive`.
    """

    name = "aip"
    sync_max_rows = None

    def __init__(self, tap_url: str | None = None, max_ids: int | None = None,
                 client=None, refresh: bool = False):
        from ..settings import conf

        super().__init__(tap_url=tap_url or conf.aip_tap_url, max_ids=max_ids,
                         client=client, refresh=refresh)
        self.datalink_url = None  # spectra come from TAP tables at AIP

    @staticmethod
    def _default_max_ids() -> int:
        from ..settings import conf

        return conf.aip_datalink_max_ids

    def load_products(self, source_ids: Sequence[int],
                      retrieval_type: str) -> tuple[StarBatch, dict[int, str]]:
        """Query one product table for at most ``max_ids`` sources.

        Parameters
        ----------
        source_ids : sequence of int
            At most ``max_ids`` Gaia DR3 source ids.
        retrieval_type : str
            Product type, a key of `AIP_SPECTRA_TABLES` (``RVS`` or ``XP_CONTINUOUS``).

        Returns
        -------
        batch : StarBatch
            ``flux``/``flux_error`` (RVS, on the standard 2401-pixel grid) or the XP
            coefficient columns of the good stars.
        rejected : dict
            source_id -> reason (wrong array length, non-finite errors, all-NaN flux).

        Raises
        ------
        InputDataError
            If ``retrieval_type`` is unknown or there are more than ``max_ids`` ids.
        ArchiveError
            If the query fails or lacks the product columns.
        """
        if retrieval_type not in AIP_SPECTRA_TABLES:
            raise InputDataError(f"Unknown product {retrieval_type!r}; use one of "
                                 f"{sorted(AIP_SPECTRA_TABLES)}.")
        self._check_ids(source_ids)
        columns = PRODUCT_COLUMNS[retrieval_type]
        raw = query_by_ids(self.client, self.tap_url, source_ids,
                           select=", ".join(f"s.{c}" for c in ("source_id", *columns)),
                           table=f"{AIP_SPECTRA_TABLES[retrieval_type]} AS s",
                           id_column="s.source_id", cache=self.cache,
                           **self._product_chunks(len(source_ids)))
        table = ColumnMap({c: c for c in ("source_id", *columns)},
                          service=f"AIP {AIP_SPECTRA_TABLES[retrieval_type]}").apply(raw)
        size = RVS_NPIX if retrieval_type == "RVS" else XP_NCOEFF
        rows, rejected = {}, {}
        for i, sid in enumerate(np.asarray(table["source_id"], dtype=np.int64).tolist()):
            cells = {c: masked_to_nan(table[c][i]).ravel() for c in columns}
            wrong = [f"{c} has {v.size} values" for c, v in cells.items() if v.size != size]
            if wrong or not np.isfinite(cells[columns[0]]).any():
                rejected[sid] = "; ".join(wrong) or f"{columns[0]} entirely NaN"
                continue
            rows[sid] = cells
        batch = StarBatch({"source_id": np.array(list(rows), dtype=np.int64),
                           **{c: np.array([r[c] for r in rows.values()]).reshape(
                               len(rows), size) for c in columns}})
        return check_product_errors(batch, retrieval_type, rejected)

    def _product_chunks(self, n_ids: int) -> dict:
        """How `load_products` sends ``n_ids`` ids: in one query."""
        return {"sync_max_rows": self.sync_max_rows, "in_list_size": n_ids,
                "upload_size": n_ids}

    def product_requests(self, n_ids: int) -> int:
        """The HTTP requests of the products of one chunk of ``n_ids`` stars: one TAP
        query per table of `AIP_SPECTRA_TABLES` (the capabilities were read by the
        selection)."""
        return len(AIP_SPECTRA_TABLES) * id_query_requests(
            self.client, self.tap_url, n_ids, read_capabilities=False,
            **self._product_chunks(n_ids))
