"""GALAH DR3 (Buder et al. 2021): independent validation labels (paper Sect. 6.3).

Table: VizieR ``J/MNRAS/506/150/stars`` (``conf.vizier_url``), or the GALAH DR3 main FITS
file (``GALAH_DR3_main_allstar_v2.fits``) passed to `galah_from_table`. Canonical column <-
GALAH name / VizieR label (case-insensitive):

``source_id`` <- ``dr3_source_id`` / ``GaiaEDR3`` (EDR3 ids are DR3 ids);
``teff``, ``e_teff`` (K) <- ``teff``, ``e_teff`` / ``Teff``, ``e_Teff``;
``logg``, ``e_logg`` (dex) <- ``logg``, ``e_logg``;
``feh``, ``e_feh`` (dex) <- ``fe_h``, ``e_fe_h`` / ``[Fe/H]``, ``e_[Fe/H]``;
``alpha_fe``, ``e_alpha_fe`` (dex) <- ``alpha_fe``, ``e_alpha_fe`` / ``[alpha/Fe]``,
``e_[alpha/Fe]``, also returned as ``alpham``/``e_alpham`` (compared with [alpha/M] as in
the paper); ``snr_c3_iraf`` <- ``snr_c3_iraf`` / ``snrc3iraf``; flags ``flag_sp``,
``flag_fe_h``, ``flag_alpha_fe``, ``flag_guess`` (when present) <- same names /
``flagsp``, ``flagfeh``, ``flagalphafe``, ``flagguess``.

Cuts (paper Sect. 6.3, GALAH DR3 best practice): ``flag_sp = 0``, ``flag_fe_h = 0``,
``flag_alpha_fe = 0``, ``flag_guess = 0`` where the column exists, ``snr_c3_iraf > 40``
(`gaiarvs_cnn.selection.galah_quality_cut`).

Where the names come from (``tests/data/reference_schemas/README.md``): the GALAH names
``flag_sp``, ``flag_fe_h`` and ``snr_c3_iraf`` are those of the GALAH DR3 documentation
(galah-survey.org/dr3/flags). The VizieR labels ``GaiaEDR3``, ``Teff``, ``[Fe/H]``,
``[alpha/Fe]``, their ``e_`` errors, ``snrc3iraf`` and ``flagsp`` and the table name
``J/MNRAS/506/150/stars`` are *seen in third-party code* querying VizieR, not read from
the VizieR ReadMe; ``flagfeh``, ``flagalphafe`` and ``flagguess`` only follow the pattern
of ``flagsp`` and were seen nowhere. ``gaiarvs-cnn fetch reference --kind galah --probe``
checks them on the service.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from astropy.table import Table

from ..selection import galah_quality_cut
from ..utils.arrays import masked_to_nan
from .http import HTTPClient
from .specs import ReferenceSpec
from .tables import ColumnMap

__all__ = ["GALAH_TABLE", "GALAH_COLUMNS", "GALAH_SPEC", "query_galah", "galah_from_table",
           "galah_quality_mask"]

GALAH_TABLE = "J/MNRAS/506/150/stars"
GALAH_ID_COLUMN = "GaiaEDR3"
GALAH_COLUMNS = ColumnMap({
    "source_id": ("dr3_source_id", "GaiaEDR3"),
    "teff": ("teff",), "e_teff": ("e_teff",), "logg": ("logg",), "e_logg": ("e_logg",),
    "feh": ("fe_h", "[Fe/H]"), "e_feh": ("e_fe_h", "e_[Fe/H]"),
    "alpha_fe": ("alpha_fe", "[alpha/Fe]"), "e_alpha_fe": ("e_alpha_fe", "e_[alpha/Fe]"),
    "snr_c3_iraf": ("snr_c3_iraf", "snrc3iraf"),
    "flag_sp": ("flag_sp", "flagsp"), "flag_fe_h": ("flag_fe_h", "flagfeh"),
    "flag_alpha_fe": ("flag_alpha_fe", "flagalphafe"), "flag_guess": ("flag_guess", "flagguess"),
}, required=("source_id", "teff", "e_teff", "logg", "e_logg", "feh", "e_feh", "alpha_fe",
             "e_alpha_fe", "snr_c3_iraf", "flag_sp", "flag_fe_h", "flag_alpha_fe"),
    service="GALAH DR3")


def galah_quality_mask(t: Table) -> np.ndarray:
    """Boolean mask of the paper's GALAH DR3 cuts on a canonical-named table.

    `gaiarvs_cnn.selection.galah_quality_cut` (kept here under its former name).

    Parameters
    ----------
    t : astropy.table.Table
        GALAH rows with canonical column names (``snr_c3_iraf`` and the flags).

    Returns
    -------
    numpy.ndarray
        Boolean mask, True where ``snr_c3_iraf > 40`` and every present flag is 0.
    """
    return galah_quality_cut(t)


def _alpha_as_alpham(t: Table) -> Table:
    """``alpham``/``e_alpham`` are [alpha/Fe] (compared with [alpha/M] as in the paper)."""
    from ..io.reference import COLUMN_UNITS

    t["alpham"], t["e_alpham"] = t["alpha_fe"], t["e_alpha_fe"]
    for name in ("alpha_fe", "e_alpha_fe"):
        t[name] = masked_to_nan(t[name])
        t[name].unit = COLUMN_UNITS["alpham"]
    return t


#: The survey's specification (see `gaiarvs_cnn.archives.specs`).
GALAH_SPEC = ReferenceSpec(
    kind="galah", title="GALAH DR3", table=GALAH_TABLE, columns=GALAH_COLUMNS,
    id_column=GALAH_ID_COLUMN, prepare=_alpha_as_alpham, cut=galah_quality_cut,
    score="snr_c3_iraf",
    verified="GALAH names flag_sp, flag_fe_h, snr_c3_iraf: galah-survey.org/dr3/flags; "
             "VizieR table J/MNRAS/506/150/stars and labels GaiaEDR3, Teff, [Fe/H], "
             "[alpha/Fe], snrc3iraf, flagsp: seen in third-party code only; flagfeh, "
             "flagalphafe, flagguess: pattern of flagsp, seen nowhere")


def galah_from_table(raw: Table, cuts: bool = True) -> Table:
    """Canonical GALAH reference table (kind ``galah``) from GALAH DR3 rows.

    ``alpham``/``e_alpham`` are copies of ``alpha_fe``/``e_alpha_fe``.

    Parameters
    ----------
    raw : astropy.table.Table
        GALAH DR3 rows (FITS or VizieR column names, any case).
    cuts : bool
        Apply `galah_quality_mask`.

    Returns
    -------
    astropy.table.Table
        ``source_id``, ``teff``, ``e_teff`` (K), ``logg``, ``feh``, ``alpha_fe``,
        ``alpham`` and their ``e_*`` (dex), one row per source_id (highest
        ``snr_c3_iraf``).

    Raises
    ------
    ArchiveError
        If a required column is missing.
    InputDataError
        If the result fails `~gaiarvs_cnn.io.reference.check_reference`.
    """
    return GALAH_SPEC.finish(raw, cuts=cuts)


def query_galah(source_ids: Iterable[int] | None = None, *, url: str | None = None,
                client: HTTPClient | None = None, refresh: bool = False,
                cuts: bool = True) -> Table:
    """Query GALAH DR3 (VizieR ``J/MNRAS/506/150/stars``); canonical table (kind ``galah``).

    Parameters
    ----------
    source_ids : iterable of int, optional
        Gaia DR3 ids to look up (default: the whole catalogue, an asynchronous job).
    url : str, optional
        TAP service (default ``conf.vizier_url``).
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Retry policy and timeout.
    refresh : bool
        If True, bypass the download cache.
    cuts : bool
        Apply the paper's quality cuts (`galah_quality_mask`).

    Returns
    -------
    astropy.table.Table
        The canonical reference table (see `galah_from_table`).

    Raises
    ------
    ArchiveError
        If the query fails after the retries or lacks required columns.
    """
    return GALAH_SPEC.finish(GALAH_SPEC.query(source_ids, url=url, client=client,
                                              refresh=refresh), cuts=cuts)
