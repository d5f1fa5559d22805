"""Science checks on the simulated survey: does the suite recover what was injected?

On a simulated store the truth is known (``true_<label>`` columns) and each simulated
reference catalogue records the offset and scatter it injected
(``meta["injected_offset"]``, ``meta["injected_scatter"]``, per label). These checks
compare what the validation statistics measure with those inputs:

* `truth_comparison`: CNN - truth, overall, per S/N bin, for metal-poor stars.
* `offset_recovery`: the reference offset and intrinsic scatter fitted on reference -
  truth (maximum likelihood, the reference's own errors added in quadrature), and the
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
from .stats import column, comparison_table, difference_stats, finite

__all__ = ["truth_comparison", "fit_offset_scatter", "offset_recovery", "sequence_recovery"]



def truth_comparison(matched: Table, snr_column: str = "rvs_snr",
                     good_only: bool = True) -> Table:
    """CNN - truth statistics: all, S/N bins, and metal-poor (true [M/H] < -1) at S/N 15-25.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue with ``true_<label>`` and S/N columns.
    snr_column : str
        RVS S/N column.
    good_only : bool
        Keep only ``flag_boundary == "00000000"``.

    Returns
    -------
    `~astropy.table.Table`
        `~gaiarvs_cnn.validation.stats.comparison_table` rows (comparison ``truth``).
    """
    base = good_mask(matched, good_only)
    bins = snr_subsets(column(matched, snr_column))
    subsets = {"all": base, **{k: base & v for k, v in bins.items()}}
    subsets["metal-poor snr 15-25"] = base & bins["snr 15-25"] & (column(matched, "true_mh") < -1)
    pairs = {k: (k, f"true_{k}") for k in LABELS if k in matched.colnames}
    return comparison_table(matched, pairs, subsets, "truth")


def fit_offset_scatter(diff: np.ndarray, errors: np.ndarray | None = None
                       ) -> tuple[float, float, float, float]:
    """Maximum-likelihood offset and intrinsic scatter of ``diff`` given per-star errors.

    Model: ``diff_i ~ N(offset, scatter^2 + errors_i^2)``. Uncertainties follow from the
    Fisher information, ``1 / sqrt(sum 1/v_i)`` for the offset and ``1 / sqrt(sum 2 s^2 /
    v_i^2)`` for the scatter (``v_i = s^2 + errors_i^2``).

    Parameters
    ----------
    diff : array-like
        Reference - truth.
    errors : array-like, optional
        Quoted uncertainties of the reference (none: the scatter is the total one).

    Returns
    -------
    offset, e_offset, scatter, e_scatter : float
    """
    from scipy.optimize import minimize

    d = np.asarray(diff, dtype=float)
    e2 = np.zeros_like(d) if errors is None else np.asarray(errors, dtype=float) ** 2
    ok = np.isfinite(d) & np.isfinite(e2)
    d, e2 = d[ok], e2[ok]
    if d.size < 3:
        return (np.nan,) * 4

    def nll(p):
        v = p[1] ** 2 + e2
        return 0.5 * np.sum(np.log(v) + (d - p[0]) ** 2 / v)

    start = difference_stats(d)
    s0 = np.sqrt(max(start["sigma_mad"] ** 2 - np.median(e2), 0.25 * start["sigma_mad"] ** 2))
    res = minimize(nll, [start["bias"], s0], method="Nelder-Mead",
                   options={"xatol": 1e-8 * max(start["sigma_mad"], 1e-12), "fatol": 1e-10,
                            "maxiter": 4000})
    mu, sig = float(res.x[0]), float(abs(res.x[1]))
    v = sig**2 + e2
    e_sig = 1.0 / np.sqrt(np.sum(2.0 * sig**2 / v**2)) if sig > 0 else np.nan
    return mu, float(1.0 / np.sqrt(np.sum(1.0 / v))), sig, float(e_sig)


def _expected_dispersion(cnn_true: np.ndarray, ref_true: np.ndarray, injected_total: np.ndarray,
                         n_boot: int = 200, seed: int = 0) -> tuple[float, float, float]:
    """std(CNN - ref), its expectation hypot(std(CNN - truth), injected), bootstrap error.

    ``injected_total`` is the per-star injected reference noise (scatter and quoted error
    in quadrature); the error is the bootstrap dispersion of measured - expected.
    """
    def pair(idx):
        measured = np.std(cnn_true[idx] - ref_true[idx], ddof=1)
        expected = np.sqrt(np.var(cnn_true[idx], ddof=1) + np.mean(injected_total[idx] ** 2))
        return measured, expected

    n = cnn_true.size
    if n < 3:
        return np.nan, np.nan, np.nan
    measured, expected = pair(np.arange(n))
    rng = np.random.default_rng(seed)
    boot = [np.subtract(*pair(rng.integers(0, n, n))) for _ in range(n_boot)]
    return float(measured), float(expected), float(np.std(boot, ddof=1))


def offset_recovery(matched: Table, injected_offset: Mapping[str, float],
                    injected_scatter: Mapping[str, float] | None = None,
                    ref_prefix: str = "ref_", labels: Sequence[str] = LABELS,
                    base: np.ndarray | None = None, ref_columns: Mapping[str, str] | None = None,
                    error_columns: Mapping[str, str | None] | None = None) -> Table:
    """Compare the measured reference offsets and scatters with the injected ones.

    The reference is modelled as ``truth + offset + N(0, scatter^2 + e_ref^2)`` (the
    simulator's convention: the injected scatter adds to the quoted errors); `offset` and
    `scatter` are fitted by maximum likelihood (`fit_offset_scatter`).

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue + truth (``true_*``) + reference (``ref_*``) columns.
    injected_offset, injected_scatter : mapping label -> float
        From the reference's ``meta``. Labels absent from the mapping are skipped.
    ref_prefix : str
        Prefix of the reference columns.
    labels : sequence of str
        Labels to check.
    base : bool array, optional
        Rows to use (default: all).
    ref_columns : mapping label -> column, optional
        Reference column per label when not ``ref_prefix + label`` (e.g. ``seis_logg``).
    error_columns : mapping label -> column or None, optional
        Reference error column per label (default ``ref_prefix + "e_" + label`` when
        present; None for none).

    Returns
    -------
    `~astropy.table.Table`
        Per label: ``n``; fitted ``offset`` with ``e_offset``, ``injected_offset`` and
        ``pull_offset``; fitted ``scatter`` with ``e_scatter``, ``injected_scatter`` and
        ``pull_scatter``; ``bias_cnn_ref`` (median CNN - ref), ``expected_bias`` =
        median(CNN - truth) - injected offset, ``e_bias`` and ``pull_bias``;
        ``std_cnn_ref`` (dispersion of CNN - ref), ``expected_std`` = hypot(std(CNN -
        truth), injected scatter and quoted errors), ``e_std`` (bootstrap) and
        ``pull_std``; ``recovered`` is True when all pulls are below 3 in absolute value.
    """
    base = np.ones(len(matched), bool) if base is None else base
    ref_columns = dict(ref_columns or {})
    error_columns = dict(error_columns or {})
    rows = []
    for label in labels:
        ref_col = ref_columns.get(label, f"{ref_prefix}{label}")
        if label not in injected_offset or ref_col not in matched.colnames:
            continue
        err_col = error_columns.get(label, f"{ref_prefix}e_{label}")
        cnn, ref, true = (column(matched, c) for c in (label, ref_col, f"true_{label}"))
        err = column(matched, err_col) if err_col and err_col in matched.colnames else None
        ok = base & finite(cnn, ref, true)
        off, e_off, sc, e_sc = fit_offset_scatter(ref[ok] - true[ok],
                                                  None if err is None else err[ok])
        d_cr = difference_stats(cnn[ok] - ref[ok])
        d_ct = difference_stats(cnn[ok] - true[ok])
        inj = float(injected_offset[label])
        inj_s = float((injected_scatter or {}).get(label, np.nan))
        expected = d_ct["bias"] - inj
        e_bias = float(np.hypot(d_cr["e_bias"], d_ct["e_bias"]))
        total = np.hypot(inj_s, np.zeros(ok.sum()) if err is None else err[ok])
        std_m, std_x, e_std = _expected_dispersion(cnn[ok] - true[ok], ref[ok] - true[ok], total)
        pulls = ((off - inj) / e_off, (sc - inj_s) / e_sc, (d_cr["bias"] - expected) / e_bias,
                 (std_m - std_x) / e_std)
        finite_pulls = [abs(p) for p in pulls if np.isfinite(p)]
        rows.append((label, int(ok.sum()), off, e_off, inj, pulls[0], sc, e_sc, inj_s, pulls[1],
                     d_cr["bias"], expected, e_bias, pulls[2], std_m, std_x, e_std, pulls[3],
                     bool(finite_pulls) and max(finite_pulls) < 3.0))
    names = ("label", "n", "offset", "e_offset", "injected_offset", "pull_offset", "scatter",
             "e_scatter", "injected_scatter", "pull_scatter", "bias_cnn_ref", "expected_bias",
             "e_bias", "pull_bias", "std_cnn_ref", "expected_std", "e_std", "pull_std",
             "recovered")
    return Table(rows=rows, names=names, dtype=(str, int, *[float] * 16, bool))


def sequence_recovery(matched: Table, mask: np.ndarray | None = None, seed: int = 0) -> Table:
    """Two-sequence [alpha/M] fit on the CNN labels and on the true labels of the same stars.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue with ``mh``, ``alpham``, ``true_mh``, ``true_alpham``.
    mask : bool array, optional
        Stars to use (default ``flag_boundary == "00000000"``).
    seed : int
        Random state of the mixture fits.

    Returns
    -------
    `~astropy.table.Table`
        Rows ``cnn`` and ``truth`` with the keys of
        `~gaiarvs_cnn.validation.bimodality.alpha_sequences`.
    """
    mask = good_mask(matched) if mask is None else np.asarray(mask, bool)
    rows = []
    for name, prefix in (("cnn", ""), ("truth", "true_")):
        res = alpha_sequences(column(matched, f"{prefix}mh")[mask],
                              column(matched, f"{prefix}alpham")[mask], seed=seed)
        rows.append({"labels": name, **res})
    return Table(rows=rows)
