"""What a Gaia product is, judged from its content: RVS spectra, XP coefficients, gaia_source.

Files are classified by content (`classify_table`), not by name: a folder of RVS DataLink
CSVs named after their stars is read; a file that is not a Gaia product we read is reported
by name, never silently left out.
"""
from __future__ import annotations

from collections.abc import Sequence

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..exceptions import InputDataError
from ..utils.columns import find_column
from .cells import column_floats, has_columns, meta_value

__all__ = ["classify_table", "classify_tables", "OTHER_PRODUCTS", "KIND_NAMES", "KIND_ARGS"]

#: Gaia DataLink products recognised (by name or content) but not read by gaiarvs-cnn.
OTHER_PRODUCTS = ("XP_SAMPLED", "MCMC_MSC", "MCMC_GSPPHOT", "EPOCH_PHOTOMETRY",
                  "EPOCH_ASTROMETRY_BRIGHT", "RVS_EPOCH", "XP_CONTINUOUS_EPOCH")
#: Wavelength range of RVS spectra, nm (a wider margin than the 846-870 nm grid).
_RVS_WAVE_NM = (840.0, 876.0)


def classify_table(table: Table) -> str | None:
    """The kind of Gaia product ``table`` holds, judged from its columns and values.

    Parameters
    ----------
    table : `~astropy.table.Table`
        One table of a file.

    Returns
    -------
    str or None
        ``'RVS'`` (wavelength/flux/flux_error on the RVS range), ``'XP_CONTINUOUS'``
        (BP and RP coefficients), ``'GAIA_SOURCE'`` (G magnitude and parallax),
        ``'XP_SAMPLED'`` (wavelength/flux outside the RVS range), ``'MCMC_MSC'`` /
        ``'MCMC_GSPPHOT'``, or None when the table is none of these.
    """
    if has_columns(table, "bp_coefficients", "rp_coefficients"):
        return "XP_CONTINUOUS"
    if has_columns(table, "wavelength", "flux", "flux_error"):
        try:
            wave = column_floats(table[find_column(table.colnames, "wavelength")], "nm")
        except (ValueError, TypeError, u.UnitsError):
            return "RVS"      # let the RVS reader say what is wrong with the column
        finite = wave[np.isfinite(wave)]
        if finite.size == 0:
            return "RVS"
        lo, hi = _RVS_WAVE_NM
        inside = (finite >= lo) & (finite <= hi)
        return "RVS" if inside.mean() > 0.5 else "XP_SAMPLED"
    if has_columns(table, "phot_g_mean_mag", "parallax"):
        return "GAIA_SOURCE"
    if has_columns(table, "teff1", "logg1"):
        return "MCMC_MSC"
    if (has_columns(table, "teff", "logg", "log_pos")
            or has_columns(table, "teff", "logg", "mh", "log_lik")):
        return "MCMC_GSPPHOT"
    if len(table.meta) and meta_value(table.meta, "source_id", "SOURCEID") is not None \
            and has_columns(table, "wavelength", "flux"):
        return "RVS"
    return None


def classify_tables(tables: Sequence[Table], name: str) -> str:
    """The one product kind of all tables of the file ``name`` (see `classify_table`).

    Raises
    ------
    InputDataError
        If the file is not a Gaia product gaiarvs-cnn recognises, or mixes kinds.
    """
    kinds = {classify_table(t) for t in tables}
    if kinds == {None} or not kinds:
        cols = tables[0].colnames[:12] if tables else []
        raise InputDataError(f"{name} is not a Gaia product gaiarvs-cnn recognises (RVS "
                             "spectra, XP continuous coefficients, gaia_source rows); its "
                             f"columns are {cols}.")
    if len(kinds) > 1:
        raise InputDataError(f"{name} mixes tables of kinds {sorted(map(str, kinds))}; give "
                             "one product per file.")
    return str(kinds.pop())


KIND_NAMES = {"RVS": "RVS spectra", "XP_CONTINUOUS": "XP continuous coefficients",
               "GAIA_SOURCE": "gaia_source rows", "XP_SAMPLED": "XP sampled spectra",
               "MCMC_MSC": "MCMC_MSC samples", "MCMC_GSPPHOT": "MCMC_GSPPHOT samples"}


#: The argument of `~gaiarvs_cnn.io.ingest.ingest_to_store` each product belongs to.
KIND_ARGS = {"RVS": "rvs_files", "XP_CONTINUOUS": "xp_files", "GAIA_SOURCE": "gaia_source"}

