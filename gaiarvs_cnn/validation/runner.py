"""Run the validation comparisons and collect their tables and figures.

Each ``validate_<comparison>`` function takes the catalogue joined with its store
columns (`~gaiarvs_cnn.validation.crossmatch.add_store_columns`) and the reference
Table(s) it needs, and returns a `~gaiarvs_cnn.validation.report.ValidationResult`.
When the catalogue carries the simulation truth (``true_<label>`` columns, from a
simulated store) the science checks of `gaiarvs_cnn.validation.truth` are added: the
injected reference offsets and scatters must be recovered.

`run_validation` runs several comparisons. Each comparison is registered once in
`gaiarvs_cnn.validation.registry` (name, required and optional reference kinds, report
order); `COMPARISONS`, `REQUIRED_REFERENCES` and `OPTIONAL_REFERENCES` are views of that
registry, kept for the existing API.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from astropy import log
from astropy.table import Table

from ..archives.gaia_ap import good_gspspec_flags
from ..constants import LABELS
from ..exceptions import InputDataError, Param
from ..utils.arrays import masked_to_nan
from .bimodality import add_galactocentric, bimodality_grid, plot_bimodality, select_giants
from .clusters import cluster_logg_trends, cluster_statistics, plot_clusters
from .crossmatch import GOOD_FLAG, good_mask, match_reference, require_stars
from .figures import plot_comparison, plot_kiel
from .gaia_ap import compare_gsp, gsp_precision_ratio
from .galah import compare_galah, galah_quality_mask, plot_galah_snr
from .precision import (
    calibration_check,
    cramer_rao_table,
    fisher_bounds,
    plot_calibration,
    plot_precision_vs_snr,
    precision_vs_snr,
)
from .registry import comparisons, register_comparison
from .registry import needed_references as _needed_references
from .report import ValidationResult
from .seismic import add_seismic_logg, compare_seismic, plot_seismic, seismic_logg
from .stats import column, comparison_table, difference_stats
from .truth import offset_recovery, sequence_recovery, truth_comparison

__all__ = ["COMPARISONS", "REQUIRED_REFERENCES", "OPTIONAL_REFERENCES", "has_truth",  # noqa: F822
           "validate_galah", "validate_seismic", "validate_clusters", "validate_gsp",
           "validate_precision", "validate_bimodality", "validate_truth", "run_validation",
           "needed_references", "simulator_bounds"]

_SUMMARY_SUBSETS = ("all", "snr 15-25", "snr 25-50", "snr >=50", "giants", "dwarfs",
                    "logg<2.2", "metal-poor [Fe/H]<-1", "[Fe/H]>=-1", "logg<2.3",
                    "2.3<=logg<2.6", "logg>=2.6", "metal-poor snr 15-25")


def has_truth(table: Table) -> bool:
    """True when ``table`` holds the simulation truth (``true_teff`` ... ``true_feh``).

    Parameters
    ----------
    table : `~astropy.table.Table`

    Returns
    -------
    bool
    """
    return all(f"true_{k}" in table.colnames for k in LABELS)


def needed_references(against: Sequence[str], optional: bool = True) -> tuple[list, list]:
    """Reference kinds (required, optional) of a list of comparisons.

    `gaiarvs_cnn.validation.registry.needed_references`.

    Parameters
    ----------
    against : sequence of str
        Comparison names (`COMPARISONS`).
    optional : bool
        Also list the optional kinds.

    Returns
    -------
    required, optional : list of str
    """
    return _needed_references(against, optional)


def _summary(stats: Table) -> Table:
    keep = np.isin(np.asarray(stats["subset"]), _SUMMARY_SUBSETS)
    return stats[keep]


def _injected(reference: Table) -> tuple[dict, dict]:
    return (dict(reference.meta.get("injected_offset") or {}),
            dict(reference.meta.get("injected_scatter") or {}))


def _recovery_notes(name: str, table: Table) -> list[str]:
    notes = []
    for row in table:
        verdict = "recovered" if row["recovered"] else "NOT recovered"
        notes.append(f"{name} {row['label']}: injected offset {row['injected_offset']:+.4g}, "
                     f"measured {row['offset']:+.4g} ± {row['e_offset']:.2g}; injected scatter "
                     f"{row['injected_scatter']:.4g}, measured {row['scatter']:.4g} ± "
                     f"{row['e_scatter']:.2g}; CNN - {name} bias {row['bias_cnn_ref']:+.4g} "
                     f"(expected {row['expected_bias']:+.4g} ± {row['e_bias']:.2g}), "
                     f"dispersion {row['std_cnn_ref']:.4g} (expected {row['expected_std']:.4g} "
                     f"± {row['e_std']:.2g}): {verdict}.")
    return notes


def _add_recovery(result: ValidationResult, matched: Table, reference: Table, base: np.ndarray,
                  labels: Sequence[str] = LABELS, ref_columns: Mapping | None = None,
                  error_columns: Mapping | None = None) -> None:
    offset, scatter = _injected(reference)
    if not has_truth(matched) or not offset:
        return
    rec = offset_recovery(matched, offset, scatter, labels=labels, base=base,
                          ref_columns=ref_columns, error_columns=error_columns)
    result.tables["recovery"] = rec
    result.notes += _recovery_notes(result.name, rec)


def validate_galah(data: Table, galah: Table) -> ValidationResult:
    """CNN vs GALAH DR3: statistics, 1:1/residual figure, S/N figure, offset recovery.

    Parameters
    ----------
    data : `~astropy.table.Table`
        Catalogue with the store column ``rvs_snr``.
    galah : `~astropy.table.Table`
        GALAH reference (canonical schema).

    Returns
    -------
    `~gaiarvs_cnn.validation.report.ValidationResult`
    """
    matched = match_reference(data, galah)
    stats = compare_galah(matched)
    base = good_mask(matched) & galah_quality_mask(matched, "ref_")
    result = ValidationResult("galah", tables={"stats": stats}, summary=_summary(stats))
    result.figures["comparison"] = plot_comparison(matched[base], "ref_",
                                                   ("teff", "logg", "feh", "alpham"),
                                                   "GALAH DR3")
    result.figures["snr"] = plot_galah_snr(stats)
    # the simulator injects GALAH's [alpha/Fe] offset relative to the true [alpha/M]
    _add_recovery(result, matched, galah, base, ("teff", "logg", "feh", "alpham"))
    return result


def _seismic_injection(seismic: Table) -> Table:
    """Express a numax-space injection (fractional) as log g offset/scatter (dex)."""
    offset, scatter = _injected(seismic)
    if "logg" in offset or "numax" not in offset:
        return seismic
    view = Table(seismic, copy=False)
    view.meta = dict(seismic.meta)
    view.meta["injected_offset"] = {"logg": float(np.log10(1.0 + offset["numax"]))}
    view.meta["injected_scatter"] = {"logg": float(scatter.get("numax", np.nan) / np.log(10))}
    return view


def validate_seismic(data: Table, seismic: Table, apogee: Table | None = None,
                     gsp: Table | None = None) -> ValidationResult:
    """CNN log g vs seismic log g (numax + CNN Teff): statistics, figure, recovery.

    Parameters
    ----------
    data : `~astropy.table.Table`
        Catalogue (its Teff enters the seismic log g).
    seismic : `~astropy.table.Table`
        Seismic reference (``numax``, ``e_numax``).
    apogee, gsp : `~astropy.table.Table`, optional
        APOGEE and GSP-Spec references whose log g is compared with seismology too
        (GSP-Spec with its first 13 flags zero).

    Returns
    -------
    `~gaiarvs_cnn.validation.report.ValidationResult`
    """
    matched = add_seismic_logg(match_reference(data, seismic))
    others = {}
    for name, pre, ref in (("apogee", "apogee_", apogee), ("gsp-spec", "gspspec_", gsp)):
        if ref is not None:
            matched = match_reference(matched, ref, pre, join_type="left")
            mask = (good_gspspec_flags(matched[f"{pre}flags_gspspec"]) if name == "gsp-spec"
                    else np.ones(len(matched), bool))
            others[name] = (f"{pre}logg", mask)
    stats = compare_seismic(matched, others=others)
    base = good_mask(matched)
    result = ValidationResult("seismic", tables={"stats": stats}, summary=_summary(stats))
    result.figures["logg"] = plot_seismic(matched[base])
    if has_truth(matched):
        # the injection is checked with the true Teff, so that CNN Teff errors do not enter
        matched["seis_logg_true_teff"] = seismic_logg(
            masked_to_nan(matched["ref_numax"]),
            np.asarray(matched["true_teff"], dtype=float))
        _add_recovery(result, matched, _seismic_injection(seismic), base, ("logg",),
                      {"logg": "seis_logg_true_teff"}, {"logg": None})
    return result


def validate_clusters(data: Table, clusters: Table, galah: Table | None = None
                      ) -> ValidationResult:
    """Open clusters: per-cluster statistics, trends with log g, GALAH cluster means.

    Parameters
    ----------
    data : `~astropy.table.Table`
        Catalogue with ``logg`` and the abundances.
    clusters : `~astropy.table.Table`
        Membership list (``cluster``, ``proba``).
    galah : `~astropy.table.Table`, optional
        GALAH reference for the cluster means.

    Returns
    -------
    `~gaiarvs_cnn.validation.report.ValidationResult`
    """
    matched = match_reference(data, clusters)
    if galah is not None:
        cut = galah[galah_quality_mask(galah)]
        matched = match_reference(matched, cut, prefix="galah_", join_type="left")
    stats = cluster_statistics(matched)
    trends = cluster_logg_trends(matched)
    result = ValidationResult("clusters", tables={"stats": stats, "logg_trends": trends})
    result.figures["feh"] = plot_clusters(matched, stats)
    if "true_mean_feh" in stats.colnames and len(stats):
        dev = np.asarray(stats["mean_feh"]) - np.asarray(stats["true_mean_feh"])
        err = np.asarray(stats["std_feh"]) / np.sqrt(np.asarray(stats["n"]))
        result.notes.append(f"CNN cluster mean [Fe/H] - true cluster [Fe/H]: max |dev| = "
                            f"{np.max(np.abs(dev)):.3f} dex, max |dev|/error = "
                            f"{np.max(np.abs(dev) / err):.1f} over {len(stats)} clusters.")
    for row in trends[trends["n"] >= 3]:
        result.notes.append(f"{row['label']} trend with log g: {row['slope']:+.4f} ± "
                            f"{row['e_slope']:.4f} dex/dex; within-cluster scatter "
                            f"{row['scatter']:.3f} dex (N = {row['n']}).")
    return result


def validate_gsp(data: Table, reference: Table, kind: str = "gsp-spec",
                 apogee: Table | None = None) -> ValidationResult:
    """CNN vs GSP-Spec/GSP-Phot (flags applied) and the GSP/CNN precision ratio.

    The ratio is measured against the simulation truth when present, otherwise against
    APOGEE (``apogee``) when given.

    Parameters
    ----------
    data : `~astropy.table.Table`
        Catalogue with the store column ``rvs_snr``.
    reference : `~astropy.table.Table`
        GSP-Spec or GSP-Phot reference.
    kind : {"gsp-spec", "gsp-phot"}
    apogee : `~astropy.table.Table`, optional
        APOGEE reference for the precision ratio.

    Returns
    -------
    `~gaiarvs_cnn.validation.report.ValidationResult`
    """
    matched = match_reference(data, reference)
    stats = compare_gsp(matched, kind)
    result = ValidationResult(kind, tables={"stats": stats}, summary=_summary(stats))
    name = {"gsp-spec": "GSP-Spec", "gsp-phot": "GSP-Phot"}[kind]
    keep = good_mask(matched)
    if kind == "gsp-spec":
        keep &= good_gspspec_flags(matched["ref_flags_gspspec"])
    result.figures["comparison"] = plot_comparison(matched[keep], "ref_", LABELS, name)
    against = "true_" if has_truth(matched) else None
    if against is None and apogee is not None:
        matched = match_reference(matched, apogee, prefix="apogee_", join_type="left")
        against = "apogee_"
    if against:
        ratio = gsp_precision_ratio(matched, against, kind=kind)
        result.tables["precision_ratio"] = ratio
        result.notes.append(f"{name} / CNN dispersion against {against.rstrip('_')}: " + ", ".join(
            f"{r['label']} {r['ratio_mad']:.2f}" for r in ratio) + " (paper: 2-3).")
    return result


def _add_metal_poor(result: ValidationResult, table: Table, prefix: str, name: str) -> None:
    """Metal-poor stars ([M/H]_ref < -1) at 15 <= S/N < 25 (paper Sect. 4.4, Fig. 15)."""
    mp = (good_mask(table) & (column(table, f"{prefix}mh") < -1.0)
          & (column(table, "rvs_snr") >= 15.0) & (column(table, "rvs_snr") < 25.0))
    pairs = {k: (k, prefix + k) for k in LABELS if prefix + k in table.colnames}
    stats = comparison_table(table, pairs, {"metal-poor snr 15-25": mp}, name.lower())
    result.tables["metal_poor"] = stats
    if mp.sum() >= 5:
        result.figures["metal_poor"] = plot_comparison(table[mp], prefix,
                                                       ("teff", "logg", "mh", "alpham"),
                                                       f"{name}, [M/H] < -1, S/N 15-25")


def validate_precision(data: Table, apogee: Table | None = None, gsp: Table | None = None,
                       bounds: Callable | None = None) -> ValidationResult:
    """Precision vs S/N, calibration of sigma_*, Kiel diagrams and the Cramér-Rao ratio.

    The reference is the simulation truth when present, else APOGEE when given (else
    only the model's own uncertainties are shown). The Cramér-Rao ratio needs the truth
    and the simulator's bounds.

    Parameters
    ----------
    data : `~astropy.table.Table`
        Catalogue with ``rvs_snr`` and, for a simulated store, the truth.
    apogee, gsp : `~astropy.table.Table`, optional
        APOGEE and GSP-Spec references.
    bounds : callable, optional
        ``bounds(labels, snr) -> {name: (5,)}`` Cramér-Rao bounds (see
        `~gaiarvs_cnn.validation.precision.cramer_rao_table`).

    Returns
    -------
    `~gaiarvs_cnn.validation.report.ValidationResult`
    """
    table, prefix, name = data, None, "reference"
    if has_truth(data):
        prefix, name = "true_", "truth"
    elif apogee is not None:
        table, prefix, name = match_reference(data, apogee, "apogee_", "left"), "apogee_", "APOGEE"
    gsp_prefix = None
    if gsp is not None:
        table = match_reference(table, gsp, prefix="gsp_", join_type="left")
        bad = ~good_gspspec_flags(table["gsp_flags_gspspec"])
        for label in ("teff", "logg", "mh", "alpham"):
            if f"gsp_{label}" in table.colnames:
                table[f"gsp_{label}"] = np.where(bad, np.nan, masked_to_nan(table[f"gsp_{label}"]))
        gsp_prefix = "gsp_"
    prec = precision_vs_snr(table, prefix, gsp_prefix)
    result = ValidationResult("precision", tables={"vs_snr": prec})
    cr = cramer_rao_table(data, bounds) if bounds is not None and has_truth(data) else None
    result.figures["kiel"] = plot_kiel(data, np.asarray(data["rvs_snr"], float),
                                       background=~good_mask(data))
    if prefix:
        _add_metal_poor(result, table, prefix, name)
        cal = calibration_check(table, prefix)
        result.tables["calibration"] = cal
        result.figures["calibration"] = plot_calibration(table, prefix)
        result.notes.append("Fraction within 1 sigma (expected 0.683): " + ", ".join(
            f"{r['label']} {r['frac_within_1sigma']:.3f}" for r in cal))
    result.figures["vs_snr"] = plot_precision_vs_snr(prec, reference_name=name, cramer_rao=cr)
    if cr is not None:
        result.tables["cramer_rao"] = cr
        names = [c[6:] for c in cr.colnames if c.startswith("ratio_")]
        result.notes.append(
            "Ensemble precision / spectra-only Cramér-Rao bound at S/N 15-25 ("
            + " | ".join(names) + "): " + "; ".join(
                f"{r['label']} " + " | ".join(f"{r['ratio_' + k]:.2f}" for k in names)
                for r in cr)
            + ". " + cr.meta["note"])
    return result


def validate_bimodality(data: Table) -> ValidationResult:
    """[alpha/M]-[M/H] of giants in galactocentric R-``|Z|`` bins (paper Fig. 24).

    Parameters
    ----------
    data : `~astropy.table.Table`
        Catalogue with ``ra``, ``dec``, ``parallax``, ``rvs_snr`` (store).

    Returns
    -------
    `~gaiarvs_cnn.validation.report.ValidationResult`
    """
    table = add_galactocentric(data.copy(copy_data=False))
    mask = select_giants(table)
    grid = bimodality_grid(table, mask)
    result = ValidationResult("bimodality", tables={"grid": grid})
    result.figures["alpha_mh"] = plot_bimodality(table, mask)
    whole = grid[0]
    result.notes.append(f"Giants (log g < 2.2, 15 <= S/N <= 25): {whole['n_bin']}; two "
                        f"[alpha/M] sequences at {whole['mu_low']:.3f} and {whole['mu_high']:.3f}"
                        f" dex, delta BIC(1-2) = {whole['delta_bic']:.1f}.")
    if has_truth(table):
        seq = sequence_recovery(table, mask)
        result.tables["sequences"] = seq
        cnn, true = seq[0], seq[1]
        result.notes.append(f"Sequences on the true labels of the same giants: "
                            f"{true['mu_low']:.3f} and {true['mu_high']:.3f} dex "
                            f"(CNN {cnn['mu_low']:.3f}, {cnn['mu_high']:.3f}).")
    if "galactic_R" in table.colnames:
        d_r = np.asarray(table["R_gc"], float) - np.asarray(table["galactic_R"], float)
        d_z = np.asarray(table["Z_gc"], float) - np.asarray(table["galactic_Z"], float)
        sr, sz = difference_stats(d_r), difference_stats(d_z)
        result.notes.append(f"R, Z from Gaia astrometry minus the simulator's true R, Z "
                            f"(parallax_over_error >= 5): median {sr['bias']:+.3f}, "
                            f"{sz['bias']:+.3f} kpc; sigma {sr['sigma_mad']:.3f}, "
                            f"{sz['sigma_mad']:.3f} kpc (N = {sr['n']}).")
    return result


def validate_truth(data: Table) -> ValidationResult:
    """CNN vs the simulation truth: statistics and the 1:1/residual figure.

    Parameters
    ----------
    data : `~astropy.table.Table`
        Catalogue with the truth columns ``true_<label>`` (simulated store).

    Returns
    -------
    `~gaiarvs_cnn.validation.report.ValidationResult`
    """
    stats = truth_comparison(data)
    result = ValidationResult("truth", tables={"stats": stats}, summary=_summary(stats))
    result.figures["comparison"] = plot_comparison(data[good_mask(data)], "true_", LABELS,
                                                   "truth")
    return result


def simulator_bounds() -> Callable[[np.ndarray, float], dict]:
    """Cramér-Rao bounds of the simulated survey for `cramer_rao_table`.

    Returns
    -------
    callable
        ``f(labels, snr)`` giving ``free`` and ``conditional`` (Jacobian with noise ``1 /
        (S/N)``, `~gaiarvs_cnn.validation.precision.fisher_bounds`) and ``simulator`` (the
        simulator's photon-noise model with [Fe/H] tied to [M/H] and [alpha/M],
        `gaiarvs_cnn.simulate.survey.cramer_rao_bound`).
    """
    from ..simulate import survey as simulated

    spectral = fisher_bounds(simulated.jacobian)

    def bounds(labels: np.ndarray, snr: float) -> dict:
        return {**spectral(labels, snr),
                "simulator": simulated.cramer_rao_bound(labels, snr)}
    return bounds


def check_validation_inputs(data: Table, chosen: Sequence, references: Mapping[str, Table]
                            ) -> Table:
    """Refuse inputs whose comparisons would be silently empty; returns the data to use.

    Parameters
    ----------
    data : `~astropy.table.Table`
        Catalogue joined with its store columns.
    chosen : sequence of `~gaiarvs_cnn.validation.registry.Comparison`
        The comparisons to run.
    references : mapping kind -> `~astropy.table.Table`
        Their reference catalogues.

    Returns
    -------
    `~astropy.table.Table`
        ``data``; when no star's spectrum was tested by t-SNE (a bundle without t-SNE
        reference, or ``tsne=False``: every t-SNE digit ``"1"``, "not tested"), a copy whose
        t-SNE digit is ``"0"``, so that the comparisons select on the other seven digits
        (with a warning) instead of finding no good star at all.

    Raises
    ------
    InputDataError
        If the catalogue has no star, no star has a clean flag, or a required reference
        shares no source_id with the catalogue (the message names the reference).
    """
    require_stars(data)
    if "flag_boundary" in data.colnames:
        flags = np.char.strip(np.asarray(data["flag_boundary"]).astype(str))
        if np.all(np.char.endswith(flags, "1")):
            log.warning(f"No star of the catalogue ({len(data)} stars) has a t-SNE test (its "
                        "t-SNE flag digit is 1 for every star: predicted with a bundle without "
                        "t-SNE reference, or --no-tsne): the comparisons select stars on the "
                        "seven other flag digits only.")
            data = data.copy(copy_data=False)
            data["flag_boundary"] = np.array([f[:-1] + "0" for f in flags.tolist()], dtype="U8")
        if not good_mask(data).any():
            raise InputDataError(
                f"No star of the catalogue ({len(data)} stars) has flag_boundary "
                f"'{GOOD_FLAG}': every comparison would be empty. The stars are outside the "
                "bundle's training ranges; validate a catalogue of stars like the training "
                "sample.")
    ids = np.asarray(data["source_id"], dtype=np.int64)
    for comparison in chosen:
        for kind in comparison.required:
            ref = references[kind]
            n = int(np.isin(np.asarray(ref["source_id"], dtype=np.int64), ids).sum()) if len(
                ref) else 0
            if n == 0:
                raise InputDataError(
                    f"No star of the catalogue ({len(data)} stars) is in the {kind} reference "
                    f"({len(ref)} stars): the {comparison.name} comparison would be empty. "
                    f"Give a {kind} reference that covers the catalogue's stars (",
                    Param("reference_files", {kind: "PATH"}), "), or leave the "
                    f"{comparison.name} comparison out of ", Param("against"), ".",
                    parameter="reference_files")
    return data


def run_validation(data: Table, against: Sequence[str], references: Mapping[str, Table],
                   bounds: Callable | None = None) -> list[ValidationResult]:
    """Run the comparisons ``against`` (names of `COMPARISONS`).

    Parameters
    ----------
    data : `~astropy.table.Table`
        Catalogue joined with its store columns (``rvs_snr``, ``ra``, ``dec``,
        ``parallax`` ...; truth columns for a simulated store).
    against : sequence of str
        Comparisons to run.
    references : mapping kind -> `~astropy.table.Table`
        Reference catalogues in the canonical schema.
    bounds : callable, optional
        Cramér-Rao bounds ``bounds(labels, snr) -> {name: (5,)}`` for the precision ratio
        (see `simulator_bounds`).

    Returns
    -------
    list of `~gaiarvs_cnn.validation.report.ValidationResult`
        In `COMPARISONS` order, plus ``truth`` when the truth is present.

    Raises
    ------
    InputDataError
        If a required reference is missing from ``references`` or the comparisons would
        be empty (`check_validation_inputs`).
    """
    registered = comparisons()
    unknown = sorted(set(against) - {c.name for c in registered})
    if unknown:
        raise InputDataError(f"Unknown comparison(s) {unknown}; choose from "
                             f"{[c.name for c in registered]}.")
    req, _ = needed_references(against)
    missing = [k for k in req if k not in references]
    if missing:
        raise InputDataError(f"Reference catalogue(s) {missing} needed for {list(against)} "
                             "were not provided.")
    data = check_validation_inputs(data, [c for c in registered if c.name in against],
                                   references)
    results = []
    for comparison in registered:
        if comparison.name in against:
            log.info(f"Validation: {comparison.name}")
            results.append(comparison.run(data, references, bounds))
    if has_truth(data):
        results.append(validate_truth(data))
    return results


# -- registration: one entry per comparison (gaiarvs_cnn.validation.registry) -------------
@register_comparison("galah", required=("galah",), order=10,
                     description="CNN vs GALAH DR3 (paper Sect. 6.3)")
def _run_galah(data, refs, bounds):
    return validate_galah(data, refs["galah"])


@register_comparison("seismic", required=("seismic",), optional=("apogee", "gsp-spec"),
                     order=20, description="log g vs K2-GAP asteroseismology (Sect. 6.2)")
def _run_seismic(data, refs, bounds):
    return validate_seismic(data, refs["seismic"], refs.get("apogee"), refs.get("gsp-spec"))


@register_comparison("clusters", required=("clusters",), optional=("galah",), order=30,
                     description="open clusters, Cantat-Gaudin+2020 (Sect. 6.4)")
def _run_clusters(data, refs, bounds):
    return validate_clusters(data, refs["clusters"], refs.get("galah"))


@register_comparison("gsp-spec", required=("gsp-spec",), optional=("apogee",), order=40,
                     description="CNN vs Gaia DR3 GSP-Spec (Sect. 6.1)")
def _run_gsp_spec(data, refs, bounds):
    return validate_gsp(data, refs["gsp-spec"], "gsp-spec", refs.get("apogee"))


@register_comparison("gsp-phot", required=("gsp-phot",), optional=("apogee",), order=50,
                     description="CNN vs Gaia DR3 GSP-Phot (Sect. 6.1)")
def _run_gsp_phot(data, refs, bounds):
    return validate_gsp(data, refs["gsp-phot"], "gsp-phot", refs.get("apogee"))


@register_comparison("precision", optional=("apogee", "gsp-spec"), order=60,
                     description="precision vs S/N, uncertainty calibration (Sect. 4)")
def _run_precision(data, refs, bounds):
    return validate_precision(data, refs.get("apogee"), refs.get("gsp-spec"), bounds)


@register_comparison("bimodality", order=70,
                     description="[alpha/M]-[M/H] bimodality of giants (Sect. 7, Fig. 24)")
def _run_bimodality(data, refs, bounds):
    return validate_bimodality(data)


def __getattr__(name: str):
    """``COMPARISONS``, ``REQUIRED_REFERENCES``, ``OPTIONAL_REFERENCES``: views of the
    registry, computed on access so that every registered comparison is included."""
    if name == "COMPARISONS":  # comparisons, in report order
        return tuple(c.name for c in comparisons())
    if name == "REQUIRED_REFERENCES":  # kinds without which a comparison cannot run
        return {c.name: c.required for c in comparisons()}
    if name == "OPTIONAL_REFERENCES":  # kinds a comparison uses when available
        return {c.name: c.optional for c in comparisons() if c.optional}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
