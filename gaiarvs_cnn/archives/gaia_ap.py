"""Gaia DR3 astrophysical parameters: GSP-Spec (Recio-Blanco et al. 2023) and GSP-Phot
(Andrae et al. 2023) from ``gaiadr3.astrophysical_parameters`` at the ESA archive.

Kind ``gsp-spec``: ``teff`` <- ``teff_gspspec`` (K), ``logg`` <- ``logg_gspspec``,
``mh`` <- ``mh_gspspec``, ``alpham`` <- ``alphafe_gspspec`` ([alpha/Fe], compared with
[alpha/M] as in the paper), ``feh`` <- ``mh_gspspec + fem_gspspec`` when ``fem_gspspec``
is present, ``flags_gspspec`` (41-character string), and the original ``*_gspspec``
columns. **The values are the uncalibrated GSP-Spec parameters**: the polynomial
calibrations of Recio-Blanco et al. (2023, Sect. 9 / Tables 3-4) used in the paper are not
applied by this package (their coefficients were not verified here); apply them
downstream if needed. ``good_flags=True`` keeps the paper's "good" stars: the first 13
characters of ``flags_gspspec`` are all ``0``.

Kind ``gsp-phot``: ``teff`` <- ``teff_gspphot``, ``logg`` <- ``logg_gspphot``, ``mh`` <-
``mh_gspphot`` (no metallicity calibration, as in the paper's footnote 8).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

import numpy as np
from astropy.table import Table

from ..exceptions import InputDataError
from ..utils.arrays import masked_to_nan
from .http import HTTPClient
from .specs import ReferenceSpec
from .tables import ColumnMap

__all__ = ["AP_TABLE", "GSPSPEC_SPEC", "GSPPHOT_SPEC", "query_gsp", "gspspec_from_table",
           "gspphot_from_table", "good_gspspec_flags"]

AP_TABLE = "gaiadr3.astrophysical_parameters"
_SPEC = ("teff_gspspec", "logg_gspspec", "mh_gspspec", "alphafe_gspspec", "fem_gspspec",
         "flags_gspspec")
_PHOT = ("teff_gspphot", "logg_gspphot", "mh_gspphot")
GSPSPEC_COLUMNS = ColumnMap({"source_id": "source_id", **{c: c for c in _SPEC}},
                            required=("source_id", "teff_gspspec", "logg_gspspec",
                                      "mh_gspspec", "alphafe_gspspec", "flags_gspspec"),
                            service="Gaia DR3 astrophysical_parameters (GSP-Spec)")
GSPPHOT_COLUMNS = ColumnMap({"source_id": "source_id", **{c: c for c in _PHOT}},
                            service="Gaia DR3 astrophysical_parameters (GSP-Phot)")


def _gspspec_labels(t: Table) -> Table:
    for name, src in (("teff", "teff_gspspec"), ("logg", "logg_gspspec"),
                      ("mh", "mh_gspspec"), ("alpham", "alphafe_gspspec")):
        t[name] = masked_to_nan(t[src])
    if "fem_gspspec" in t.colnames:
        t["feh"] = t["mh"] + masked_to_nan(t["fem_gspspec"])
    t["flags_gspspec"] = np.asarray(np.ma.filled(np.ma.asarray(t["flags_gspspec"]).astype(
        str), "")).astype(str)
    return t


def _gspphot_labels(t: Table) -> Table:
    for name in ("teff", "logg", "mh"):
        t[name] = masked_to_nan(t[f"{name}_gspphot"])
    return t


_VERIFIED = ("column names seen in code generated from the ESA TAP /tables metadata "
             "(TheComamba/gaia_access, src/data/gaiadr3/astrophysical_parameters); the "
             "*_gspphot names also in a recorded gaia_source answer; flags_gspspec "
             "characters: Recio-Blanco et al. 2023, Table 2")
#: GSP-Spec of ``gaiadr3.astrophysical_parameters`` (see `gaiarvs_cnn.archives.specs`).
GSPSPEC_SPEC = ReferenceSpec(
    kind="gsp-spec", title="Gaia DR3 GSP-Spec (uncalibrated)", table=AP_TABLE,
    columns=GSPSPEC_COLUMNS, id_column="source_id", url_setting="gaia_tap_url",
    namespace="esa", sync_max_rows=2000, prepare=_gspspec_labels,
    cut=lambda x: np.isfinite(masked_to_nan(x["teff"])),
    extra_meta={"calibrated": False, "good_flags": False}, verified=_VERIFIED)
#: GSP-Phot of ``gaiadr3.astrophysical_parameters``.
GSPPHOT_SPEC = ReferenceSpec(
    kind="gsp-phot", title="Gaia DR3 GSP-Phot", table=AP_TABLE, columns=GSPPHOT_COLUMNS,
    id_column="source_id", url_setting="gaia_tap_url", namespace="esa", sync_max_rows=2000,
    prepare=_gspphot_labels, cut=lambda x: np.isfinite(x["teff"]), verified=_VERIFIED)
#: Leading characters of flags_gspspec that must be '0' for a "good" star (paper Sect. 3.3).
GOOD_FLAG_DIGITS = 13


def good_gspspec_flags(flags) -> np.ndarray:
    """True where the first 13 characters of ``flags_gspspec`` are all ``0``.

    Parameters
    ----------
    flags : array-like of str
        ``flags_gspspec`` strings, possibly masked (masked or short strings are not
        good).

    Returns
    -------
    numpy.ndarray
        Boolean array, one value per flag string.
    """
    text = np.asarray(np.ma.filled(np.ma.asarray(flags).astype(str), "")).astype(str)
    head = np.char.ljust(np.char.strip(text), GOOD_FLAG_DIGITS, "9")
    return np.array([h[:GOOD_FLAG_DIGITS] == "0" * GOOD_FLAG_DIGITS for h in head])


def gspspec_from_table(raw: Table, good_flags: bool = False) -> Table:
    """Canonical GSP-Spec table (kind ``gsp-spec``, uncalibrated) from AP rows.

    Parameters
    ----------
    raw : astropy.table.Table
        ``gaiadr3.astrophysical_parameters`` rows with ``source_id`` and the
        ``*_gspspec`` columns.
    good_flags : bool
        If True, keep only stars passing `good_gspspec_flags`.

    Returns
    -------
    astropy.table.Table
        ``source_id``, ``teff`` (K), ``logg``, ``mh``, ``alpham`` and, when
        ``fem_gspspec`` is present, ``feh`` (dex), plus ``flags_gspspec``; rows
        without a finite Teff are dropped.

    Raises
    ------
    ArchiveError
        If a required column is missing.
    """
    def cut(x):
        ok = np.isfinite(masked_to_nan(x["teff"]))
        return ok & good_gspspec_flags(x["flags_gspspec"]) if good_flags else ok

    return replace(GSPSPEC_SPEC, cut=cut,
                   extra_meta={"calibrated": False, "good_flags": good_flags}).finish(raw)


def gspphot_from_table(raw: Table) -> Table:
    """Canonical GSP-Phot table (kind ``gsp-phot``) from AP rows.

    Parameters
    ----------
    raw : astropy.table.Table
        ``gaiadr3.astrophysical_parameters`` rows with ``source_id`` and the
        ``*_gspphot`` columns.

    Returns
    -------
    astropy.table.Table
        ``source_id``, ``teff`` (K), ``logg`` and ``mh`` (dex); rows without a finite
        Teff are dropped.

    Raises
    ------
    ArchiveError
        If a required column is missing.
    """
    return GSPPHOT_SPEC.finish(raw)


def query_gsp(kind: str, source_ids: Iterable[int], *, url: str | None = None,
              client: HTTPClient | None = None, refresh: bool = False,
              good_flags: bool = False) -> Table:
    """GSP-Spec or GSP-Phot parameters of ``source_ids`` from the ESA archive.

    The values come from ``gaiadr3.astrophysical_parameters``.

    Parameters
    ----------
    kind : {"gsp-spec", "gsp-phot"}
        Which parameters to query.
    source_ids : iterable of int
        Gaia DR3 source ids.
    url : str, optional
        ESA TAP service (default ``conf.gaia_tap_url``).
    client : `~gaiarvs_cnn.archives.http.HTTPClient`, optional
        Retry policy and timeout.
    refresh : bool
        If True, bypass the download cache.
    good_flags : bool
        ``gsp-spec`` only: keep only stars passing `good_gspspec_flags`.

    Returns
    -------
    astropy.table.Table
        The canonical table (see `gspspec_from_table` and `gspphot_from_table`).

    Raises
    ------
    InputDataError
        If ``kind`` is unknown or ``source_ids`` is empty.
    ArchiveError
        If a query fails after the retries.
    """
    if kind not in ("gsp-spec", "gsp-phot"):
        raise InputDataError(f"kind must be 'gsp-spec' or 'gsp-phot', not {kind!r}.")
    spec = GSPSPEC_SPEC if kind == "gsp-spec" else GSPPHOT_SPEC
    raw = spec.query(source_ids, url=url, client=client, refresh=refresh)
    return gspspec_from_table(raw, good_flags) if kind == "gsp-spec" else \
        gspphot_from_table(raw)
