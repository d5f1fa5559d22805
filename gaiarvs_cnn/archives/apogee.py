"""APOGEE DR17 allStar (Abdurro'uf et al. 2022): the training labels.

Table: VizieR ``III/286/catalog`` (``conf.vizier_url``), or a local allStar FITS file
(``allStar-dr17-synspec_rev1.fits``) read with `astropy.table.Table.read` and passed to
`apogee_from_table`. Column names are matched case-insensitively; each canonical column
lists the allStar name first and the VizieR label second:

============  =====================  ==========  ===========
canonical     allStar                VizieR      unit
============  =====================  ==========  ===========
source_id     GAIAEDR3_SOURCE_ID     GaiaEDR3    (EDR3 id = DR3 id; 0 = none)
teff, e_teff  TEFF, TEFF_ERR         Teff        K
logg, e_logg  LOGG, LOGG_ERR         logg        dex (cgs)
mh, e_mh      M_H, M_H_ERR           [M/H]       dex
alpham        ALPHA_M, ALPHA_M_ERR   [a/M]       dex
feh, e_feh    FE_H, FE_H_ERR         [Fe/H]      dex
aspcapflag    ASPCAPFLAG             AFlag       bitmask (or flag names)
aspcap_chi2   ASPCAP_CHI2            chi2
fe_h_flag     FE_H_FLAG              f_[Fe/H]
snr           SNR                    SNR
============  =====================  ==========  ===========

Quality cuts of the paper (Sect. 2.4), `apogee_quality_mask`: ASPCAPFLAG bits 7
(STAR_WARN) and 23 (STAR_BAD) unset, ASPCAP_CHI2 < 25, FE_H_FLAG = 0, TEFF_ERR < 100 K,
LOGG_ERR < 0.1 dex, M_H_ERR (and FE_H_ERR) < 0.2 dex if M_H < -0.5 else < 0.1 dex,
ALPHA_M_ERR < 0.1 dex; stars without a Gaia id are dropped and duplicated Gaia ids keep
the highest-S/N entry. The cuts are `gaiarvs_cnn.selection.apogee_quality_cut`.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from astropy.table import Table

from ..selection import APOGEE_STAR_BAD_BIT, APOGEE_STAR_WARN_BIT, apogee_quality_cut
from .http import HTTPClient
from .specs import ReferenceSpec
from .tables import ColumnMap

__all__ = ["APOGEE_TABLE", "APOGEE_COLUMNS", "APOGEE_SPEC", "query_apogee",
           "apogee_from_table", "apogee_quality_mask"]

APOGEE_TABLE = "III/286/catalog"
APOGEE_ID_COLUMN = "GaiaEDR3"
APOGEE_COLUMNS = ColumnMap({
    "source_id": ("GAIAEDR3_SOURCE_ID", "GaiaEDR3"),
    "teff": ("TEFF", "Teff"), "e_teff": ("TEFF_ERR", "e_Teff"),
    "logg": ("LOGG", "logg"), "e_logg": ("LOGG_ERR", "e_logg"),
    "mh": ("M_H", "[M/H]"), "e_mh": ("M_H_ERR", "e_[M/H]"),
    "alpham": ("ALPHA_M", "[a/M]"), "e_alpham": ("ALPHA_M_ERR", "e_[a/M]"),
    "feh": ("FE_H", "[Fe/H]"), "e_feh": ("FE_H_ERR", "e_[Fe/H]"),
    "aspcapflag": ("ASPCAPFLAG", "AFlag"), "aspcap_chi2": ("ASPCAP_CHI2", "chi2"),
    "fe_h_flag": ("FE_H_FLAG", "f_[Fe/H]"), "snr": ("SNR", "S/N"),
}, required=("source_id", "teff", "e_teff", "logg", "e_logg", "mh", "e_mh", "alpham",
             "e_alpham", "feh", "e_feh"), service="APOGEE DR17 allStar")

#: Canonical column -> allStar name expected by `gaiarvs_cnn.selection.apogee_quality_cut`.
_ALLSTAR_NAMES = {k: v[0] for k, v in APOGEE_COLUMNS.mapping.items()}


def _flag_bits(flags) -> np.ndarray:
    """ASPCAPFLAG as an integer bitmask; VizieR's flag-name strings are converted
    (``STAR_WARN`` -> bit 7, ``STAR_BAD`` -> bit 23)."""
    arr = np.ma.filled(np.ma.asarray(flags), 0)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    text = np.char.upper(np.asarray(arr).astype(str))
    return (((np.char.find(text, "STAR_WARN") >= 0) << APOGEE_STAR_WARN_BIT)
            | ((np.char.find(text, "STAR_BAD") >= 0) << APOGEE_STAR_BAD_BIT)).astype(np.int64)


def apogee_quality_mask(t: Table) -> np.ndarray:
    """Boolean mask of the paper's APOGEE quality cuts.

    Applies `gaiarvs_cnn.selection.apogee_quality_cut` to a table with canonical column names
    (as returned by ``APOGEE_COLUMNS.apply``).

    Parameters
    ----------
    t : astropy.table.Table
        APOGEE rows with canonical column names; ``aspcapflag`` may be an integer
        bitmask or VizieR's flag-name strings.

    Returns
    -------
    numpy.ndarray
        Boolean mask, True for the rows passing the cuts.
    """
    view = Table({_ALLSTAR_NAMES[c]: t[c] for c in t.colnames if c in _ALLSTAR_NAMES})
    if "aspcapflag" in t.colnames:
        view[_ALLSTAR_NAMES["aspcapflag"]] = _flag_bits(t["aspcapflag"])
    return apogee_quality_cut(view)


#: The survey's specification (see `gaiarvs_cnn.archives.specs`).
APOGEE_SPEC = ReferenceSpec(
    kind="apogee", title="APOGEE DR17 allStar", table=APOGEE_TABLE, columns=APOGEE_COLUMNS,
    id_column=APOGEE_ID_COLUMN, cut=apogee_quality_mask, score="snr",
    verified="allStar names: SDSS DR17 allStar data model; VizieR table III/286/catalog "
             "and labels GaiaEDR3, Teff, logg, [M/H], [a/M], [Fe/H] (and e_*), SNR, AFlag "
             "(an integer bitmask): seen in third-party code only; chi2, f_[Fe/H]: seen "
             "nowhere (tests/data/reference_schemas/README.md)")


def apogee_from_table(raw: Table, cuts: bool = True) -> Table:
    """Canonical APOGEE reference table from an allStar-like table (FITS or VizieR names).

    Parameters
    ----------
    raw : Table
        allStar rows (any case of the column names listed in the module docstring).
    cuts : bool
        Apply `apogee_quality_mask`.

    Returns
    -------
    Table
        ``source_id``, ``teff``, ``logg``, ``mh``, ``alpham``, ``feh`` and ``e_*`` (K, dex),
        checked by `~gaiarvs_cnn.io.reference.check_reference` (kind ``apogee``).
    """
    return APOGEE_SPEC.finish(raw, cuts=cuts)


def query_apogee(source_ids: Iterable[int] | None = None, *, url: str | None = None,
                 client: HTTPClient | None = None, refresh: bool = False,
                 cuts: bool = True) -> Table:
    """Query APOGEE DR17 (VizieR ``III/286/catalog``) and return the canonical table.

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
        Apply the paper's quality cuts.

    Returns
    -------
    astropy.table.Table
        The canonical reference table (see `apogee_from_table`).

    Raises
    ------
    ArchiveError
        If the query fails after the retries.
    """
    return APOGEE_SPEC.finish(APOGEE_SPEC.query(source_ids, url=url, client=client,
                                                refresh=refresh), cuts=cuts)
