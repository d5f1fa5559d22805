"""One specification per reference survey, one generic query, one schema probe.

Each reference adapter (`~gaiarvs_cnn.archives.apogee`, `~gaiarvs_cnn.archives.galah`,
`~gaiarvs_cnn.archives.k2gap`, `~gaiarvs_cnn.archives.clusters`,
`~gaiarvs_cnn.archives.gaia_ap`) declares a `ReferenceSpec`: the service table, its id
column, the column map (canonical name -> the service's candidate names), where the
names were checked, and the post-processing steps (quality cut from
`gaiarvs_cnn.selection`, duplicate ranking). `ReferenceSpec.query` fetches the rows
(`~gaiarvs_cnn.archives.tap.query_catalogue`: TAP upload or ``IN`` lists for id
selections), `ReferenceSpec.finish` turns them into the canonical table, and
`ReferenceSpec.probe` reads one row (``SELECT TOP 1 *``) of the real table and reports
which canonical columns it maps and which are missing -- how a renamed column is caught
before a long download (``gaiarvs-cnn fetch reference --kind K --probe``). The registry
by kind is `gaiarvs_cnn.archives.catalogues.reference_specs`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table

from ..exceptions import InputDataError
from .cache import DiskCache
from .http import HTTPClient
from .tables import ColumnMap, finish_reference
from .tap import id_query_requests, query_catalogue, run_tap, tap_requests

__all__ = ["ReferenceSpec", "ProbeReport"]


@dataclass(frozen=True)
class ProbeReport:
    """What `ReferenceSpec.probe` found in one row of the real table.

    Parameters
    ----------
    kind, table, url : str
        The reference kind, the service table and the TAP URL probed.
    columns : tuple of str
        The table's columns, as the service names them.
    mapped : dict
        Canonical name -> the service column it maps to.
    missing_required, missing_optional : tuple of str
        Canonical names without a service column (``name (as cand1/cand2)``).
    """

    kind: str
    table: str
    url: str
    columns: tuple
    mapped: dict
    missing_required: tuple
    missing_optional: tuple

    @property
    def ok(self) -> bool:
        """True when every required column is found."""
        return not self.missing_required

    def summary(self) -> str:
        """Several lines: table, mapped columns, missing ones, and what to do.

        Returns
        -------
        str
            The report, for the command line.
        """
        lines = [f"{self.kind}: {self.table} at {self.url} ({len(self.columns)} columns)"]
        lines += [f"  mapped   {k:<14} <- {v}" for k, v in self.mapped.items()]
        lines += [f"  MISSING  {m} (required)" for m in self.missing_required]
        lines += [f"  missing  {m} (optional)" for m in self.missing_optional]
        if not self.ok:
            lines.append("  The service has renamed or dropped required columns: update the "
                         "column map of the adapter (gaiarvs_cnn.archives).")
        return "\n".join(lines)


@dataclass(frozen=True)
class ReferenceSpec:
    """How one reference survey is read from its TAP service.

    Parameters
    ----------
    kind : str
        Canonical reference kind (`~gaiarvs_cnn.io.reference.REFERENCE_KINDS`).
    title : str
        The survey, for messages and ``meta["reference"]``.
    table : str
        Table name at the service (``"III/286/catalog"``).
    columns : `~gaiarvs_cnn.archives.tables.ColumnMap`
        Canonical name -> the service's candidate names (first found wins).
    id_column : str, optional
        The service's column of Gaia DR3 ids, for id selections (None: the table is
        always downloaded whole).
    url_setting : str
        The ``gaiarvs_cnn.conf`` item holding the TAP URL.
    namespace : str
        Download-cache sub-directory.
    sync_max_rows : int, optional
        The service's synchronous row cap.
    prepare : callable, optional
        ``prepare(table) -> table`` on the canonical-named table before the common
        steps (derived columns, unit fixes).
    cut : callable, optional
        ``cut(table) -> mask``: the survey's quality cut (`gaiarvs_cnn.selection`).
    score : str, optional
        Column ranking duplicate source_ids (highest kept).
    unique : bool
        Keep one row per source_id.
    verified : str
        Where the column names were checked (kept in the docs and the fixture README).
    """

    kind: str
    title: str
    table: str
    columns: ColumnMap
    id_column: str | None = None
    url_setting: str = "vizier_url"
    namespace: str = "vizier"
    sync_max_rows: int | None = None
    prepare: Callable[[Table], Table] | None = None
    cut: Callable[[Table], np.ndarray] | None = None
    score: str | None = None
    unique: bool = True
    verified: str = ""
    extra_meta: Mapping = field(default_factory=dict)

    def url(self, url: str | None = None) -> str:
        """The TAP URL: ``url`` or the ``conf`` item `url_setting`."""
        from ..settings import conf

        return url or getattr(conf, self.url_setting)

    def query(self, source_ids: Iterable[int] | None = None, *, url: str | None = None,
              client: HTTPClient | None = None, refresh: bool = False) -> Table:
        """The raw rows (service column names) of the whole table or of ``source_ids``.

        Parameters
        ----------
        source_ids : iterable of int, optional
            Gaia DR3 ids to select (uploaded as a table where the service allows it).
        url : str, optional
            TAP URL (default `url_setting` of ``conf``).
        client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
            Retry policy and timeout.
        refresh : bool
            If True, bypass the download cache.

        Returns
        -------
        astropy.table.Table
            The mapped columns only (found case-insensitively in one probe row).

        Raises
        ------
        InputDataError
            If ``source_ids`` is given but the survey has no id column.
        ArchiveError
            If a query fails.
        """
        if source_ids is not None and self.id_column is None:
            raise InputDataError(f"{self.title} is downloaded whole; it cannot be selected "
                                 f"by Gaia DR3 id.")
        return query_catalogue(self.table, url=self.url(url), id_column=self.id_column,
                               ids=source_ids, client=client, refresh=refresh,
                               columns=self.columns, namespace=self.namespace,
                               sync_max_rows=self.sync_max_rows)

    def requests(self, n_ids: int | None = None, *, url: str | None = None,
                 client: HTTPClient | None = None) -> int:
        """The HTTP requests that `query` sends: the whole table's query, else the
        service's capabilities and the query of each chunk of ids
        (`~gaiarvs_cnn.archives.tap.id_query_requests`: the service's published limits,
        read from its capabilities; a chunk of more ids than `sync_max_rows` is an
        asynchronous job).

        Parameters
        ----------
        n_ids : int, optional
            Distinct Gaia DR3 ids to select; None for the whole table.
        url : str, optional
            TAP URL (default `url_setting` of ``conf``).
        client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
            Retry policy and timeout (and the capabilities already read).

        Returns
        -------
        int
            Not counted: the one-row probe of the columns (cached by ``gaiarvs-cnn
            run``'s probe), the re-run as a job of an answer that reaches the
            synchronous row cap (the rows a survey holds per id are not known), further
            phase checks of a job, retries.
        """
        if n_ids is None:
            return tap_requests(sync_max_rows=self.sync_max_rows)
        return id_query_requests(client or HTTPClient(), self.url(url), n_ids,
                                 sync_max_rows=self.sync_max_rows)

    def finish(self, raw: Table, *, cuts: bool = True) -> Table:
        """The canonical table from raw rows (any case of the service's names).

        Parameters
        ----------
        raw : astropy.table.Table
            Rows as the service (or the survey's own file) names them.
        cuts : bool
            Apply the quality cut.

        Returns
        -------
        astropy.table.Table
            Checked by `~gaiarvs_cnn.io.reference.check_reference` for `kind`.

        Raises
        ------
        ArchiveError
            If a required column is missing.
        """
        from ..io.reference import check_reference

        t = self.columns.apply(raw)
        if self.prepare is not None:
            t = self.prepare(t)
        t = finish_reference(t, self.cut if cuts else None, score=self.score,
                             meta={"reference": self.title, "table": self.table,
                                   **self.extra_meta}, unique=self.unique)
        return check_reference(t, self.kind)

    def probe(self, *, url: str | None = None, client: HTTPClient | None = None
              ) -> ProbeReport:
        """Read one row (``SELECT TOP 1 *``, never cached) and report mapped/missing columns.

        Parameters
        ----------
        url : str, optional
            TAP URL (default `url_setting` of ``conf``).
        client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
            Retry policy and timeout.

        Returns
        -------
        ProbeReport
            The table's columns, what maps, what is missing.

        Raises
        ------
        ArchiveError
            If the query fails (for instance because the table was renamed).
        """
        url = self.url(url)
        name = f'"{self.table}"' if "/" in self.table else self.table
        row = run_tap(client or HTTPClient(), url, f"SELECT TOP 1 * FROM {name}", mode="sync",
                      cache=DiskCache(self.namespace, refresh=True))
        mapped, req, opt = {}, [], []
        for canonical, candidates in self.columns.mapping.items():
            found = self.columns.find(row, canonical)
            if found is not None:
                mapped[canonical] = found
            else:
                (req if canonical in self.columns.required else opt).append(
                    f"{canonical} (as {'/'.join(candidates)})")
        return ProbeReport(self.kind, self.table, url, tuple(row.colnames), mapped,
                           tuple(req), tuple(opt))
