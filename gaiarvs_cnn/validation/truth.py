"""Science checks on the simulated survey: does the suite recover what was injected?

On a simulated store the truth is known (``true_<label>`` columns) and each simulated
reference catalogue records the offset and scatter it injected
(``meta["injected_offset"]``, ``meta["injected_scatter"]``, per label). These checks
compare what the validation statistics measure with those inputs:

* `truth_comparison`: CNN - truth, overall, per S/N bin, for metal-poor stars.
* `offset_recovery`: the reference offset measured as median(reference - truth), and the
  CNN - reference bias predicted from the CNN - truth bias and the injected offset, with
  pulls ``(measured - injected) / error``.
* `sequence_recovery`: the two [alpha/M] sequences fitted on the CNN labels against the
  same fit on the true labels.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from astropy.table import Table

from ..constants import LABELS
from .bimodality import alpha_sequences
from .crossmatch import good_mask, snr_subsets
from .stats import comparison_table, difference_stats, finite

__all__ = ["truth_comparison", "offset_recovery", "sequence_recovery", "MAD_SIGMA_ERROR"]

#: Standard error of a MAD-based dispersion in units of sigma / sqrt(2 n)
#: (the MAD has 36.8 % Gaussian efficiency).
MAD_SIGMA_ERROR = 1.0 / np.sqrt(0.3675)


def _col(table: Table, name: str) -> np.ndarray:
    return np.asarray(np.ma.filled(np.ma.asarray(table[name], dtype=float), np.nan))


def truth_comparison(matched: Table, snr_column: str = "rvs_snr",
                     good_only: bool = True) -> Table:
    """CNN - truth statistics: all, S/N bins, and metal-poor (true [M/H] < -1) at S/N 15-25."""
    base = good_mask(matched) if good_only else np.ones(len(matched), bool)
    bins = snr_subsets(_col(matched, snr_column))
    subsets = {"all": base, **{k: base & v for k, v in bins.items()}}
    subsets["metal-poor snr 15-25"] = base & bins["snr 15-25"] & (_col(matched, "true_mh") < -1)
    pairs = {k: (k, f"true_{k}") for k in LABELS if k in matched.colnames}
    return comparison_table(matched, pairs, subsets, "truth")


def _sigma_error(sigma: float, n: int) -> float:
    return MAD_SIGMA_ERROR * sigma / np.sqrt(2.0 * max(n, 1))


def offset_recovery(matched: Table, injected_offset: Mapping[str, float],
                    injected_scatter: Mapping[str, float] | None = None,
                    ref_prefix: str = "ref_", labels: Sequence[str] = LABELS,
                    base: np.ndarray | None = None, ref_columns: Mapping[str, str] | None = None
                    ) -> Table:
    """Compare the measured reference offsets and scatters with the injected ones.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue + truth (``true_*``) + reference (``ref_*``) columns.
    injected_offset, injected_scatter : mapping label -> float
        From the reference's ``meta``. Labels absent from the mapping are skipped.
    base : bool array, optional
        Rows to use (default: all).
    ref_columns : mapping label -> column, optional
        Reference column per label when not ``ref_prefix + label`` (e.g. ``seis_logg``).

    Returns
    -------
    `~astropy.table.Table`
        Per label: ``n``; ``offset`` = median(ref - truth) with ``e_offset``,
        ``injected_offset`` and ``pull_offset``; ``scatter`` = MAD dispersion of ref -
        truth with ``e_scatter``, ``injected_scatter``, ``pull_scatter``; ``bias_cnn_ref``
        (median CNN - ref), ``expected_bias`` = median(CNN - truth) - injected offset,
        ``e_bias`` and ``pull_bias``; ``recovered`` is True when all pulls are below 3.
    """
    base = np.ones(len(matched), bool) if base is None else base
    ref_columns = dict(ref_columns or {})
    rows = []
    for label in labels:
        ref_col = ref_columns.get(label, f"{ref_prefix}{label}")
        if label not in injected_offset or ref_col not in matched.colnames:
            continue
        cnn, ref, true = _col(matched, label), _col(matched, ref_col), _col(matched,
                                                                             f"true_{label}")
        ok = base & finite(cnn, ref, true)
        d_ref = difference_stats(ref[ok] - true[ok])
        d_cr = difference_stats(cnn[ok] - ref[ok])
        d_ct = difference_stats(cnn[ok] - true[ok])
        inj = float(injected_offset[label])
        inj_s = float((injected_scatter or {}).get(label, np.nan))
        e_sc = _sigma_error(d_ref["sigma_mad"], d_ref["n"])
        expected = d_ct["bias"] - inj
        e_bias = float(np.hypot(d_cr["e_bias"], d_ct["e_bias"]))
        pulls = ((d_ref["bias"] - inj) / d_ref["e_bias"], (d_ref["sigma_mad"] - inj_s) / e_sc,
                 (d_cr["bias"] - expected) / e_bias)
        finite_pulls = [abs(p) for p in pulls if np.isfinite(p)]
        rows.append((label, d_ref["n"], d_ref["bias"], d_ref["e_bias"], inj, pulls[0],
                     d_ref["sigma_mad"], e_sc, inj_s, pulls[1], d_cr["bias"], expected, e_bias,
                     pulls[2], bool(finite_pulls) and max(finite_pulls) < 3.0))
    names = ("label", "n", "offset", "e_offset", "injected_offset", "pull_offset", "scatter",
             "e_scatter", "injected_scatter", "pull_scatter", "bias_cnn_ref", "expected_bias",
             "e_bias", "pull_bias", "recovered")
    return Table(rows=rows, names=names, dtype=(str, int, *[float] * 12, bool))


def sequence_recovery(matched: Table, mask: np.ndarray | None = None, seed: int = 0) -> Table:
    """Two-sequence [alpha/M] fit on the CNN labels and on the true labels of the same stars.

    Returns
    -------
    `~astropy.table.Table`
        Rows ``cnn`` and ``truth`` with the keys of
        `~gaiarvs_cnn.validation.bimodality.alpha_sequences`.
    """
    mask = good_mask(matched) if mask is None else np.asarray(mask, bool)
    rows = []
    for name, prefix in (("cnn", ""), ("truth", "true_")):
        res = alpha_sequences(_col(matched, f"{prefix}mh")[mask],
                              _col(matched, f"{prefix}alpham")[mask], seed=seed)
        rows.append({"labels": name, **res})
    return Table(rows=rows)
