"""Named sample selections of the paper (Sects. 2.1-2.5), as boolean masks on Tables.

Every cut takes an `~astropy.table.Table` (or a `~gaiarvs_cnn.io.batch.StarBatch`), looks its
columns up case-insensitively, and returns a boolean numpy array (True = star kept).
Masked or NaN values fail a condition, as NULL does in ADQL -- except
``classlabel_espels``, which must be NULL to pass. A missing column raises
`~gaiarvs_cnn.exceptions.InputDataError` naming it. `apply_cuts` applies several cuts
and logs how many stars each keeps.

Examples
--------
>>> from gaiarvs_cnn.selection import apply_cuts, gaia_quality_cut, training_cut
>>> good = apply_cuts(gaia_table, gaia_quality_cut, training_cut)  # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from astropy import log
from astropy.table import Table

from .constants import INPUT_NAMES
from .exceptions import InputDataError
from .io.availability import input_availability
from .utils.columns import find_column

__all__ = [
    "gaia_quality_cut",
    "apogee_quality_cut",
    "galah_quality_cut",
    "training_cut",
    "gaia_quality_adql",
    "apply_cuts",
    "usable_mask",
    "usable_cuts",
    "USABLE_CUTS",
    "BRANCH_CUTS",
    "GAIA_MIN_FLUX_OVER_ERROR",
    "TRAINING_MIN_SNR",
    "TRAINING_MIN_PARALLAX_OVER_ERROR",
    "TRAINING_MAX_RUWE",
    "APOGEE_STAR_WARN_BIT",
    "APOGEE_STAR_BAD_BIT",
]

#: phot_{g,bp,rp}_mean_flux_over_error must exceed this (paper Sect. 2.2).
GAIA_MIN_FLUX_OVER_ERROR = 500.0
#: Training sample: rvs_spec_sig_to_noise >= 30 (Sect. 2.5).
TRAINING_MIN_SNR = 30.0
#: Training sample: parallax relative error < 20 %, i.e. parallax_over_error > 5.
TRAINING_MIN_PARALLAX_OVER_ERROR = 5.0
#: Training sample: RUWE < 1.4.
TRAINING_MAX_RUWE = 1.4
#: APOGEE DR17 ASPCAPFLAG bits rejected (Sect. 2.4).
APOGEE_STAR_WARN_BIT = 7
APOGEE_STAR_BAD_BIT = 23
APOGEE_MAX_CHI2 = 25.0
#: GALAH DR3: snr_c3_iraf must exceed this (paper Sect. 6.3).
GALAH_MIN_SNR_C3 = 40.0
#: GALAH DR3 flags that must be 0 where present (GALAH DR3 best practice, paper Sect. 6.3).
GALAH_FLAGS = ("flag_sp", "flag_fe_h", "flag_alpha_fe", "flag_guess")


def _as_table(table) -> Table:
    return table if isinstance(table, Table) else table.to_table()


def _column(table: Table, *names: str) -> np.ma.MaskedArray:
    """The first of ``names`` present (case-insensitive) as a masked array (NaN masked)."""
    found = find_column(table.colnames, *names)
    if found is not None:
        col = np.ma.asarray(table[found])
        if col.dtype.kind == "f":
            col = np.ma.masked_invalid(col)
        return col
    raise InputDataError(f"Column '{names[0]}' is needed for this cut but the table has "
                         f"none of {list(names)} (case-insensitive); add it to the query.")


def _passes(condition: np.ma.MaskedArray) -> np.ndarray:
    """True where the condition holds and is not masked (NULL fails)."""
    return np.asarray(np.ma.filled(condition, False), dtype=bool)


def _text(col: np.ma.MaskedArray) -> np.ndarray:
    """Stripped strings ('' where masked)."""
    filled = col.filled("") if col.dtype.kind in "USO" else col.astype(str).filled("")
    return np.char.strip(np.asarray(filled, dtype=str))


def _is_bool(table: Table, name: str, value: bool) -> np.ndarray:
    """True where the boolean column equals ``value`` (strings 'true'/'false' accepted)."""
    col = _column(table, name)
    if col.dtype.kind in "USO":
        col = np.ma.array(np.char.lower(_text(col)) == "true", mask=np.ma.getmaskarray(col))
    return _passes(col.astype(bool) == value)


def _is_null(col: np.ma.MaskedArray) -> np.ndarray:
    null = np.ma.getmaskarray(col).copy()
    if col.dtype.kind in "USO":
        text = _text(col)
        null |= (text == "") | (np.char.lower(text) == "null")
    return null


def gaia_quality_cut(table) -> np.ndarray:
    """Gaia DR3 quality selection of the paper (Sects. 2.1-2.3).

    Keeps stars with ``in_galaxy_candidates`` and ``in_qso_candidates`` false,
    ``phot_variable_flag != 'VARIABLE'``, ``non_single_star == 0``,
    ``phot_{g,bp,rp}_mean_flux_over_error > 500``, ``parallax > 0`` (mas),
    ``has_xp_continuous`` true and ``classlabel_espels`` NULL (from
    ``gaiadr3.astrophysical_parameters``).

    Parameters
    ----------
    table : `~astropy.table.Table` or StarBatch
        ``gaia_source`` (+ ``classlabel_espels``) rows; column case does not matter.

    Returns
    -------
    ndarray of bool
        One value per row; True where the star passes every condition.

    Raises
    ------
    InputDataError
        Naming a missing column.
    """
    t = _as_table(table)
    keep = _is_bool(t, "in_galaxy_candidates", False) & _is_bool(t, "in_qso_candidates", False)
    flag = _column(t, "phot_variable_flag")
    keep &= (_text(flag) != "VARIABLE") & ~np.ma.getmaskarray(flag)
    keep &= _passes(_column(t, "non_single_star") == 0)
    for band in ("g", "bp", "rp"):
        keep &= _passes(_column(t, f"phot_{band}_mean_flux_over_error")
                        > GAIA_MIN_FLUX_OVER_ERROR)
    keep &= _passes(_column(t, "parallax") > 0)
    keep &= _is_bool(t, "has_xp_continuous", True)
    keep &= _is_null(_column(t, "classlabel_espels"))
    return keep


def gaia_quality_adql(source_alias: str = "gs", ap_alias: str = "ap") -> str:
    """Return the ADQL WHERE clause equivalent to `gaia_quality_cut`.

    Use with ``FROM gaiadr3.gaia_source AS gs LEFT JOIN gaiadr3.astrophysical_parameters
    AS ap USING (source_id)`` (aliases configurable).

    Parameters
    ----------
    source_alias : str, optional
        Alias of ``gaiadr3.gaia_source`` in the query.
    ap_alias : str, optional
        Alias of ``gaiadr3.astrophysical_parameters`` in the query.

    Returns
    -------
    str
        Conditions joined by AND, without the ``WHERE`` keyword.

    Examples
    --------
    >>> from gaiarvs_cnn.selection import gaia_quality_adql
    >>> print(gaia_quality_adql().splitlines()[0])
    gs.in_galaxy_candidates = 'false'
    """
    g, a = source_alias, ap_alias
    conditions = [
        f"{g}.in_galaxy_candidates = 'false'",
        f"{g}.in_qso_candidates = 'false'",
        f"{g}.phot_variable_flag != 'VARIABLE'",
        f"{g}.non_single_star = 0",
        *(f"{g}.phot_{b}_mean_flux_over_error > {GAIA_MIN_FLUX_OVER_ERROR:g}"
          for b in ("g", "bp", "rp")),
        f"{g}.parallax > 0",
        f"{g}.has_xp_continuous = 'true'",
        f"{a}.classlabel_espels IS NULL",
    ]
    return "\n  AND ".join(conditions)


def _error_below(table: Table, error: str, value: str, lo: float, hi: float) -> np.ndarray:
    """error < lo where value < -0.5 dex, else error < hi (metal-poor stars: looser)."""
    err, val = _column(table, error), _column(table, value)
    limit = np.ma.where(val < -0.5, lo, hi)
    return _passes(err < limit)


def apogee_quality_cut(table) -> np.ndarray:
    """APOGEE DR17 label-quality selection of the paper (Sect. 2.4).

    Keeps stars with ASPCAPFLAG bits 7 (STAR_WARN) and 23 (STAR_BAD) unset,
    ``ASPCAP_CHI2 < 25``, ``FE_H_FLAG == 0``, ``TEFF_ERR < 100`` K, ``LOGG_ERR < 0.1`` dex,
    ``M_H_ERR < 0.2`` dex if ``M_H < -0.5`` else ``< 0.1`` dex (same for ``FE_H_ERR``
    with ``FE_H``), and ``ALPHA_M_ERR < 0.1`` dex.

    Parameters
    ----------
    table : `~astropy.table.Table`
        APOGEE allStar rows (column case does not matter).

    Returns
    -------
    ndarray of bool
        One value per row; True where the star passes every condition.

    Raises
    ------
    InputDataError
        Naming a missing column.
    """
    t = _as_table(table)
    flag = _column(t, "ASPCAPFLAG")
    bits = (1 << APOGEE_STAR_WARN_BIT) | (1 << APOGEE_STAR_BAD_BIT)
    keep = _passes((flag.astype(np.int64) & bits) == 0)
    keep &= _passes(_column(t, "ASPCAP_CHI2") < APOGEE_MAX_CHI2)
    keep &= _passes(_column(t, "FE_H_FLAG") == 0)
    keep &= _passes(_column(t, "TEFF_ERR") < 100.0)
    keep &= _passes(_column(t, "LOGG_ERR") < 0.1)
    keep &= _error_below(t, "M_H_ERR", "M_H", 0.2, 0.1)
    keep &= _error_below(t, "FE_H_ERR", "FE_H", 0.2, 0.1)
    keep &= _passes(_column(t, "ALPHA_M_ERR") < 0.1)
    return keep


def galah_quality_cut(table) -> np.ndarray:
    """GALAH DR3 selection of the paper (Sect. 6.3).

    Keeps stars with ``snr_c3_iraf > 40`` and every flag of `GALAH_FLAGS` present in the
    table equal to 0 (``flag_sp``, ``flag_fe_h``, ``flag_alpha_fe``, ``flag_guess``; the
    GALAH DR3 recommendation is ``flag_sp == 0`` and ``flag_fe_h == 0``,
    galah-survey.org/dr3/flags).

    Parameters
    ----------
    table : `~astropy.table.Table`
        GALAH DR3 rows with GALAH's own column names (column case does not matter).

    Returns
    -------
    ndarray of bool
        One value per row; True where the star passes every condition.

    Raises
    ------
    InputDataError
        If ``snr_c3_iraf`` is missing.
    """
    t = _as_table(table)
    keep = _passes(_column(t, "snr_c3_iraf") > GALAH_MIN_SNR_C3)
    for flag in GALAH_FLAGS:
        if find_column(t.colnames, flag) is not None:
            keep &= _passes(_column(t, flag) == 0)
    return keep


def training_cut(table) -> np.ndarray:
    """Extra selection of the training sample (Sect. 2.5).

    Keeps stars with RVS S/N >= 30 (``rvs_spec_sig_to_noise``, or the store's
    ``rvs_snr``), parallax relative error < 20 % (``parallax_over_error > 5``, computed
    from ``parallax``/``parallax_error`` when absent) and ``ruwe < 1.4``.

    Parameters
    ----------
    table : `~astropy.table.Table` or StarBatch
        Rows with S/N, parallax (+ error or ``parallax_over_error``) and ``ruwe``;
        column case does not matter.

    Returns
    -------
    ndarray of bool
        One value per row; True where the star passes every condition.

    Raises
    ------
    InputDataError
        Naming a missing column.
    """
    t = _as_table(table)
    keep = _passes(_column(t, "rvs_spec_sig_to_noise", "rvs_snr") >= TRAINING_MIN_SNR)
    try:
        poe = _column(t, "parallax_over_error")
    except InputDataError:
        with np.errstate(divide="ignore", invalid="ignore"):
            poe = np.ma.masked_invalid(_column(t, "parallax") / _column(t, "parallax_error"))
    keep &= _passes(poe > TRAINING_MIN_PARALLAX_OVER_ERROR)
    keep &= _passes(_column(t, "ruwe") < TRAINING_MAX_RUWE)
    return keep


def apply_cuts(table, *cuts: Callable[[Table], np.ndarray]) -> Table:
    """Apply cuts in order, log how many stars each keeps, return the kept rows.

    Parameters
    ----------
    table : `~astropy.table.Table` or StarBatch
        Stars to select from.
    *cuts : callable
        Functions ``table -> bool mask`` such as `gaia_quality_cut`.

    Returns
    -------
    `~astropy.table.Table`
        The rows passing every cut; ``meta['cuts']`` lists the cut names and counts.
    """
    t = _as_table(table)
    keep = np.ones(len(t), dtype=bool)
    counts = []
    for cut in cuts:
        mask = np.asarray(cut(t), dtype=bool)
        keep &= mask
        name = getattr(cut, "__name__", repr(cut))
        counts.append({"cut": name, "passed": int(mask.sum()), "remaining": int(keep.sum())})
        log.info(f"{name}: {int(mask.sum())}/{len(t)} pass; {int(keep.sum())} remain.")
    out = t[keep]
    out.meta["cuts"] = list(t.meta.get("cuts", [])) + counts
    return out


#: What `usable_mask` requires of a star for each network branch (catalogue provenance).
BRANCH_CUTS = {
    "rvs": "plausible RVS flux (finite normalised continuum, no absurd or many negative pixels)",
    "xp": "XP coefficients",
    "phot": "G, BP, RP, parallax",
}
#: What `usable_mask` requires of a star for the full (RVS + phot + XP) network.
USABLE_CUTS = ", ".join(BRANCH_CUTS.values())


def usable_cuts(inputs: Sequence[str] = INPUT_NAMES) -> str:
    """What `usable_mask` requires of a star for a network with branches ``inputs`` (text).

    Examples
    --------
    >>> from gaiarvs_cnn.selection import usable_cuts
    >>> usable_cuts(("rvs",))
    'plausible RVS flux (finite normalised continuum, no absurd or many negative pixels)'
    """
    _check_inputs(inputs)
    return ", ".join(text for b, text in BRANCH_CUTS.items() if b in inputs)


def _check_inputs(inputs: Sequence[str]) -> None:
    bad = [b for b in inputs if b not in INPUT_NAMES]
    if bad or not len(inputs):
        raise InputDataError(f"Network inputs {tuple(inputs)!r}: use a non-empty subset of "
                             f"{INPUT_NAMES}.")


def usable_mask(batch, inputs: Sequence[str] = INPUT_NAMES) -> np.ndarray:
    """Stars a network with branches ``inputs`` can parameterise (its input cuts).

    Only the branches the network uses are tested (`input_availability`): an RVS-only
    network (``inputs=('rvs',)``) needs neither photometry nor XP, so stars without them
    are kept. Pass the bundle's ``config.inputs``.

    Parameters
    ----------
    batch : `~gaiarvs_cnn.io.batch.StarBatch` or mapping
        Stars read from a store (the columns of the branches tested).
    inputs : sequence of str, optional
        Branches of the network, a subset of `~gaiarvs_cnn.constants.INPUT_NAMES`; default
        all three (see `usable_cuts`).

    Returns
    -------
    ndarray of bool
        True for stars kept.
    """
    _check_inputs(inputs)
    available = input_availability(batch, inputs)
    ok = np.ones(len(batch["source_id"]), dtype=bool)
    for branch in inputs:
        ok &= available[branch]
    return ok
