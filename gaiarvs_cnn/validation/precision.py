"""Precision against S/N, calibration of the uncertainties, and the Cramér-Rao bound.

* `precision_vs_snr`: per S/N bin, the empirical dispersion of CNN - reference (paper
  Fig. 16, solid lines), of GSP-Spec - reference (dashed) when given, and the median of
  the model's own uncertainties ``e_*`` (model-to-model dispersion) and ``sigma_*``
  (total uncertainty).
* `calibration_check`: fraction of stars with ``|CNN - reference| / sqrt(sigma^2 +
  sigma_ref^2) < 1``, to be compared with 68.3 % for calibrated Gaussian uncertainties.
* `cramer_rao_bound`: the best precision any unbiased estimator can reach from the RVS
  spectrum alone, ``sqrt(diag(F^-1))`` with ``F = J^T Sigma^-1 J``, ``J = d flux / d
  label`` (2401 x 5) and a diagonal per-pixel noise ``1 / (S/N)``.

About the Cramér-Rao ratio: the bound uses the spectrum only, whereas the CNN also uses
G/BP/RP photometry, the parallax and 110 XP coefficients. For labels those inputs
constrain (Teff and log g above all, [M/H] partly), the CNN's precision can be *better*
than the spectra-only bound (ratio < 1) without any contradiction; a ratio well above 1
means information in the spectrum is left unused (or the ensemble is not converged).
When two labels are degenerate in the spectrum (e.g. [Fe/H] and [M/H] if the simulator
derives one from the other), the Fisher matrix is singular and the bound of those labels
is reported as infinite. Nearly degenerate labels ([M/H], [alpha/M] and [Fe/H] act on
overlapping sets of lines) have a large marginal bound; the CNN beats it by using the
correlations between labels present in its training set ([Fe/H] ~ [M/H] - 0.1 [alpha/M],
the two [alpha/M] sequences) - prior information the bound does not include. The
conditional bound (the other four labels known) is therefore reported as well, and the
validation of the simulated survey adds the simulator's own bound
(`gaiarvs_cnn.simulate.survey.cramer_rao_bound`: its photon-noise model and [Fe/H] tied
to [M/H] - 0.1 [alpha/M], the relation of the simulated populations).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from astropy.table import Table
from matplotlib.figure import Figure
from scipy import stats as sps
from tqdm.auto import tqdm

from ..constants import LABEL_LATEX, LABELS
from .crossmatch import good_mask
from .stats import column, difference_stats, finite
from .style import COLOURS, new_figure, styled

__all__ = ["PRECISION_SNR_EDGES", "GAUSS_1SIGMA", "precision_vs_snr", "calibration_check",
           "fisher_matrix", "cramer_rao_bound", "fisher_bounds", "cramer_rao_table",
           "plot_precision_vs_snr", "plot_calibration"]

#: S/N bin edges of the precision-vs-S/N statistics.
PRECISION_SNR_EDGES = (15.0, 25.0, 35.0, 50.0, 75.0, 125.0, np.inf)
#: Fraction of a unit Gaussian within +/-1 sigma.
GAUSS_1SIGMA = float(sps.norm.cdf(1.0) - sps.norm.cdf(-1.0))


def _col(table: Table, name: str) -> np.ndarray:
    return column(table, name, missing_ok=True)


_ERR = {label: (f"e{label}", f"sigma_{label}") for label in LABELS}


def precision_vs_snr(matched: Table, ref_prefix: str | None = "ref_",
                     gsp_prefix: str | None = None, snr_column: str = "rvs_snr",
                     edges: Sequence[float] = PRECISION_SNR_EDGES,
                     labels: Sequence[str] = LABELS, good_only: bool = True) -> Table:
    """Precision per label in S/N bins (``lo <= S/N < hi``).

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue with ``rvs_snr`` (from the store), ``e<label>``, ``sigma_<label>``, and
        optionally reference columns ``<ref_prefix><label>`` (APOGEE, GALAH or ``true_``)
        and GSP-Spec columns ``<gsp_prefix><label>``.
    ref_prefix, gsp_prefix : str or None
        Prefixes of the reference and GSP-Spec columns; None to skip.
    snr_column : str
        RVS S/N column.
    edges : sequence of float
        S/N bin edges.
    labels : sequence of str
        Labels to summarise.
    good_only : bool
        Keep only ``flag_boundary == "00000000"``.

    Returns
    -------
    `~astropy.table.Table`
        ``label, lo, hi, n, snr_median, median_e, median_sigma, std_ref, sigma_mad_ref,
        std_gsp, sigma_mad_gsp`` (label units; NaN where not computable).
    """
    snr = _col(matched, snr_column)
    base = good_mask(matched, good_only)
    rows = []
    for label in labels:
        if label not in matched.colnames:
            continue
        cnn = _col(matched, label)
        e_int, e_tot = (_col(matched, c) for c in _ERR[label])
        ref = _col(matched, f"{ref_prefix}{label}") if ref_prefix else np.full(len(cnn), np.nan)
        gsp = _col(matched, f"{gsp_prefix}{label}") if gsp_prefix else np.full(len(cnn), np.nan)
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = base & (snr >= lo) & (snr < hi) & np.isfinite(cnn)
            s_ref = difference_stats(cnn[sel] - ref[sel])
            s_gsp = difference_stats(gsp[sel] - ref[sel])
            rows.append((label, lo, hi, int(sel.sum()),
                         float(np.median(snr[sel])) if sel.any() else np.nan,
                         float(np.nanmedian(e_int[sel])) if np.isfinite(e_int[sel]).any()
                         else np.nan,
                         float(np.nanmedian(e_tot[sel])) if np.isfinite(e_tot[sel]).any()
                         else np.nan,
                         s_ref["std"], s_ref["sigma_mad"], s_gsp["std"], s_gsp["sigma_mad"]))
    return Table(rows=rows, names=("label", "lo", "hi", "n", "snr_median", "median_e",
                                   "median_sigma", "std_ref", "sigma_mad_ref", "std_gsp",
                                   "sigma_mad_gsp"),
                 dtype=(str, float, float, int, float, float, float, float, float, float,
                        float))


def calibration_check(matched: Table, ref_prefix: str = "ref_", labels: Sequence[str] = LABELS,
                      good_only: bool = True, remove_bias: bool = False) -> Table:
    """Fraction of stars whose CNN - reference difference is within the combined 1 sigma.

    For each label, ``z = (CNN - ref) / sqrt(sigma_cnn^2 + sigma_ref^2)`` with
    ``sigma_cnn`` the total uncertainty ``sigma_<label>`` (and, for comparison, the
    model-to-model dispersion ``e<label>``) and ``sigma_ref`` the reference uncertainty
    ``<ref_prefix>e_<label>`` (0 if absent, e.g. for the simulation truth).

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue with the reference columns.
    ref_prefix : str
        Prefix of the reference columns (``true_`` for the simulation truth).
    labels : sequence of str
        Labels to check.
    good_only : bool
        Keep only ``flag_boundary == "00000000"``.
    remove_bias : bool
        Subtract the median difference first (tests the dispersion only).

    Returns
    -------
    `~astropy.table.Table`
        ``label, n, frac_within_1sigma, frac_within_1sigma_internal, expected, std_z,
        median_z``. Calibrated uncertainties give ``frac_within_1sigma ~ 0.683``, ``std_z
        ~ 1``.
    """
    base = good_mask(matched, good_only)
    rows = []
    for label in labels:
        if label not in matched.colnames or f"{ref_prefix}{label}" not in matched.colnames:
            continue
        diff = _col(matched, label) - _col(matched, f"{ref_prefix}{label}")
        e_ref = np.nan_to_num(_col(matched, f"{ref_prefix}e_{label}"), nan=0.0)
        e_int, e_tot = (_col(matched, c) for c in _ERR[label])
        ok = base & finite(diff, e_tot)
        if remove_bias and ok.any():
            diff = diff - np.median(diff[ok])
        z = diff / np.hypot(e_tot, e_ref)
        z_int = diff / np.hypot(e_int, e_ref)
        n = int(ok.sum())
        rows.append((label, n, float(np.mean(np.abs(z[ok]) < 1)) if n else np.nan,
                     float(np.mean(np.abs(z_int[ok]) < 1)) if n else np.nan, GAUSS_1SIGMA,
                     float(np.std(z[ok])) if n else np.nan,
                     float(np.median(z[ok])) if n else np.nan))
    return Table(rows=rows, names=("label", "n", "frac_within_1sigma",
                                   "frac_within_1sigma_internal", "expected", "std_z",
                                   "median_z"),
                 dtype=(str, int, float, float, float, float, float))


def fisher_matrix(jacobian: np.ndarray, noise: np.ndarray | float) -> np.ndarray:
    """Fisher information ``F = J^T Sigma^-1 J`` for independent Gaussian pixel noise.

    Parameters
    ----------
    jacobian : ndarray, shape (npix, nlabel)
        d(normalised flux)/d(label), in flux per label unit.
    noise : float or ndarray, shape (npix,)
        Per-pixel noise standard deviation (normalised flux); ``1 / (S/N)`` for RVS.

    Returns
    -------
    ndarray, shape (nlabel, nlabel)
        In inverse squared label units. Pixels with non-finite values are skipped.
    """
    jac = np.asarray(jacobian, dtype=float)
    w = 1.0 / np.broadcast_to(np.asarray(noise, dtype=float), jac.shape[:1]) ** 2
    ok = np.isfinite(w) & np.all(np.isfinite(jac), axis=1)
    return jac[ok].T @ (jac[ok] * w[ok, None])


def cramer_rao_bound(jacobian: np.ndarray, noise: np.ndarray | float,
                     rcond: float = 1e-10) -> np.ndarray:
    """Cramér-Rao lower bound ``sqrt(diag(F^-1))`` of each label (label units).

    Labels in a (near-)degenerate direction of ``F`` (eigenvalue below ``rcond`` times
    the largest) get an infinite bound. Labels with an all-zero Jacobian column also get
    an infinite bound; the others are computed from the non-degenerate sub-matrix.

    Parameters
    ----------
    jacobian : ndarray, shape (npix, nlabel)
        d(flux)/d(label).
    noise : float or ndarray, shape (npix,)
        Per-pixel noise (``1 / (S/N)``).
    rcond : float
        Relative eigenvalue threshold of the (correlation-scaled) Fisher matrix.

    Returns
    -------
    ndarray, shape (nlabel,)
        The bounds in label units (``inf`` where unconstrained).

    Examples
    --------
    A linear model ``flux = 1 + a * x`` with 100 pixels of slope ``a = 0.01`` and noise
    0.1 has ``F = 100 * 0.01**2 / 0.1**2 = 1``:

    >>> import numpy as np
    >>> float(cramer_rao_bound(np.full((100, 1), 0.01), 0.1)[0])
    1.0
    """
    return _marginal_bound(fisher_matrix(jacobian, noise), rcond)


def _marginal_bound(fisher: np.ndarray, rcond: float = 1e-10) -> np.ndarray:
    """``sqrt(diag(F^-1))`` with infinite bounds for degenerate labels."""
    nlab = fisher.shape[0]
    bound = np.full(nlab, np.inf)
    active = np.flatnonzero(np.diag(fisher) > 0)
    if active.size == 0:
        return bound
    sub = fisher[np.ix_(active, active)]
    scale = np.sqrt(np.diag(sub))
    corr = sub / np.outer(scale, scale)
    evals, evecs = np.linalg.eigh(corr)
    good = evals > rcond * evals.max()
    inv = (evecs[:, good] / evals[good]) @ evecs[:, good].T
    var = np.diag(inv) / scale**2
    # a label with weight on a dropped (degenerate) eigenvector is unconstrained
    degenerate = np.any(np.abs(evecs[:, ~good]) > 1e-6, axis=1) if (~good).any() else \
        np.zeros(active.size, bool)
    bound[active] = np.where(degenerate, np.inf, np.sqrt(var))
    return bound


def fisher_bounds(jacobian: Callable[[np.ndarray], np.ndarray]
                  ) -> Callable[[np.ndarray, float], dict[str, np.ndarray]]:
    """Bounds from a Jacobian function with per-pixel noise ``1 / (S/N)``.

    Parameters
    ----------
    jacobian : callable
        ``jacobian(labels) -> (npix, 5)`` d(flux)/d(label), labels in
        `~gaiarvs_cnn.constants.LABELS` order (e.g. `gaiarvs_cnn.simulate.survey.jacobian`).

    Returns
    -------
    callable
        ``f(labels, snr) -> {"free": (5,), "conditional": (5,)}``: the marginal bound with
        all five labels unknown (`cramer_rao_bound`) and the bound of each label when the
        four others are known (``1 / sqrt(F_ii)``, free of label degeneracies).
    """
    def bounds(labels: np.ndarray, snr: float) -> dict[str, np.ndarray]:
        fisher = fisher_matrix(jacobian(labels), 1.0 / snr)
        with np.errstate(divide="ignore"):
            conditional = 1.0 / np.sqrt(np.diag(fisher))
        return {"free": _marginal_bound(fisher), "conditional": conditional}
    return bounds


def cramer_rao_table(matched: Table, bounds: Callable[[np.ndarray, float], dict],
                     snr_range: tuple[float, float] = (15.0, 25.0),
                     snr_column: str = "rvs_snr", truth_prefix: str = "true_",
                     labels: Sequence[str] = LABELS, max_stars: int = 100, seed: int = 0,
                     good_only: bool = True) -> Table:
    """Ensemble precision at ``snr_range`` against spectra-only Cramér-Rao bounds.

    The bounds are computed for up to ``max_stars`` randomly chosen stars of the bin at
    their true labels and S/N; the table reports their medians.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Catalogue with the truth columns ``true_<label>`` and ``rvs_snr`` (from a simulated
        store).
    bounds : callable
        ``bounds(labels (5,), snr) -> {name: (5,) bound}``, e.g. `fisher_bounds` of the
        simulator's Jacobian (names ``free``, ``conditional``), possibly merged with the
        simulator's own noise model.
    snr_range : (float, float)
        S/N bin (``lo <= S/N < hi``).
    snr_column, truth_prefix : str
        S/N and truth columns.
    labels : sequence of str
        Labels reported.
    max_stars : int
        Stars of the bin for which the bounds are computed.
    seed : int
        Seed of their random choice.
    good_only : bool
        Keep only ``flag_boundary == "00000000"``.

    Returns
    -------
    `~astropy.table.Table`
        ``label, n, precision_std, precision_mad`` (CNN - truth in the bin) and, per bound
        name, ``bound_<name>`` (median over stars) and ``ratio_<name> = precision_std /
        bound_<name>``; see the module docstring for their meaning.
    """
    snr = _col(matched, snr_column)
    truth = np.column_stack([_col(matched, truth_prefix + k) for k in LABELS])
    base = good_mask(matched, good_only)
    sel = np.flatnonzero(base & (snr >= snr_range[0]) & (snr < snr_range[1])
                         & np.all(np.isfinite(truth), axis=1))
    rng = np.random.default_rng(seed)
    pick = rng.choice(sel, size=min(max_stars, sel.size), replace=False) if sel.size else sel
    per_star = [bounds(truth[i], snr[i])
                for i in tqdm(pick, desc="Cramer-Rao", disable=None, leave=False)]
    names = list(per_star[0]) if per_star else []
    medians = {k: np.median([b[k] for b in per_star], axis=0) for k in names}
    table = Table(names=("label", "n", "precision_std", "precision_mad",
                         *[c for k in names for c in (f"bound_{k}", f"ratio_{k}")]),
                  dtype=(str, int, float, float, *[float] * (2 * len(names))))
    for j, label in enumerate(LABELS):
        if label not in labels or label not in matched.colnames:
            continue
        st = difference_stats(_col(matched, label)[sel] - truth[sel, j])
        table.add_row((label, st["n"], st["std"], st["sigma_mad"],
                       *[v for k in names for v in (medians[k][j],
                                                     st["std"] / medians[k][j])]))
    table.meta["snr_range"] = list(snr_range)
    table.meta["n_bound_stars"] = int(pick.size)
    table.meta["note"] = ("Spectra-only bounds; the CNN also uses photometry, parallax, XP "
                          "coefficients and the label correlations of its training set, so "
                          "ratios < 1 are possible.")
    return table


@styled
def plot_precision_vs_snr(precision: Table, labels: Sequence[str] = ("teff", "logg", "mh",
                                                                     "alpham"),
                          reference_name: str = "reference",
                          cramer_rao: Table | None = None) -> Figure:
    """Precision against S/N per label (paper Fig. 16).

    Solid: dispersion (std) of CNN - reference; dashed: GSP-Spec - reference (when
    present); dotted: median total uncertainty ``sigma_*``; dash-dotted: median
    model-to-model dispersion ``e*``. With ``cramer_rao`` (output of `cramer_rao_table`)
    its spectra-only Cramér-Rao bounds (one open marker per bound) are drawn in the S/N
    bin they were computed for.

    Parameters
    ----------
    precision : `~astropy.table.Table`
        Output of `precision_vs_snr`.
    labels : sequence of str
        One panel each.
    reference_name : str
        Name of the reference in the legend.
    cramer_rao : `~astropy.table.Table`, optional
        Output of `cramer_rao_table`.

    Returns
    -------
    `~matplotlib.figure.Figure`
    """
    fig, axes = new_figure(1, len(labels), panel_size=(2.3, 2.2))
    for ax, label in zip(axes[0], labels):
        rows = precision[(precision["label"] == label) & (precision["n"] > 0)]
        x = np.arange(len(rows))
        for col, style, colour, name in (
                ("std_ref", "o-", COLOURS["cnn"], f"CNN $-$ {reference_name}"),
                ("std_gsp", "s--", COLOURS["ref"], f"GSP-Spec $-$ {reference_name}"),
                ("median_sigma", "^:", COLOURS["model"], r"median $\sigma$ (total)"),
                ("median_e", "v-.", "0.4", "median e (ensemble)")):
            y = np.asarray(rows[col], float)
            if np.isfinite(y).any():
                ax.plot(x, y, style, ms=3, color=colour, label=name)
        if cramer_rao is not None and label in set(cramer_rao["label"]):
            cr = cramer_rao[cramer_rao["label"] == label][0]
            lo_cr = cramer_rao.meta.get("snr_range", [15.0, 25.0])[0]
            at = np.flatnonzero(np.isclose(np.asarray(rows["lo"], float), lo_cr))
            xcr = x[at[0]] if at.size else 0
            bound_cols = [c for c in cramer_rao.colnames if c.startswith("bound_")]
            for col, marker in zip(bound_cols, ("*", "P", "X", "D")):
                ax.plot(xcr, cr[col], marker, mfc="none", color="black", ms=5, ls="none",
                        label=f"Cramér-Rao ({col[6:]})")
        ax.set_xticks(x, [f"{lo:g}-{hi:g}" if np.isfinite(hi) else f"$\\geq${lo:g}"
                          for lo, hi in zip(rows["lo"], rows["hi"])], rotation=45)
        ax.set_ylim(bottom=0.0)
        ax.set_xlabel("RVS S/N [per pixel]")
        ax.set_ylabel(f"precision {LABEL_LATEX[label]} [{'K' if label == 'teff' else 'dex'}]")
    axes[0, 0].legend(frameon=False, fontsize=5.5)
    return fig


@styled
def plot_calibration(matched: Table, ref_prefix: str = "ref_",
                     labels: Sequence[str] = LABELS, good_only: bool = True) -> Figure:
    """Histograms of the normalised residuals ``(CNN - ref) / sqrt(sigma^2 + sigma_ref^2)``.

    A unit Gaussian (calibrated uncertainties) is overplotted; each panel states the
    fraction within +/-1.

    Parameters
    ----------
    matched, ref_prefix, labels, good_only
        As for `calibration_check`.

    Returns
    -------
    `~matplotlib.figure.Figure`
    """
    cal = calibration_check(matched, ref_prefix, labels, good_only)
    show = [k for k in labels if k in set(cal["label"])]
    fig, axes = new_figure(1, len(show), panel_size=(2.1, 2.0), sharey=True)
    base = good_mask(matched, good_only)
    grid = np.linspace(-5, 5, 41)
    for ax, label in zip(axes[0], show):
        diff = _col(matched, label) - _col(matched, f"{ref_prefix}{label}")
        e_ref = np.nan_to_num(_col(matched, f"{ref_prefix}e_{label}"), nan=0.0)
        z = diff / np.hypot(_col(matched, f"sigma_{label}"), e_ref)
        ok = base & np.isfinite(z)
        ax.hist(np.clip(z[ok], -5, 5), bins=grid, density=True, color=COLOURS["cnn"],
                alpha=0.6, label="CNN")
        ax.plot(grid, sps.norm.pdf(grid), color="black", lw=0.8, label="N(0, 1)")
        frac = float(cal["frac_within_1sigma"][cal["label"] == label][0])
        ax.set_title(f"{LABEL_LATEX[label]}: {100 * frac:.0f}% within 1$\\sigma$")
        ax.set_xlabel(f"{LABEL_LATEX[label]} residual / uncertainty [$\\sigma$]")
    axes[0, 0].set_ylabel("probability density [1/$\\sigma$]")
    axes[0, 0].legend(frameon=False)
    return fig
