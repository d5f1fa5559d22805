"""Validation of CNN catalogues (paper Sects. 4.4-4.5, 6 and 7).

Comparisons, each returning an `~astropy.table.Table` of statistics and with a figure
function returning a `~matplotlib.figure.Figure`:

* `~gaiarvs_cnn.validation.seismic`: log g against K2-GAP asteroseismology;
* `~gaiarvs_cnn.validation.galah`: GALAH DR3, per S/N bin, giants/dwarfs, metal-poor;
* `~gaiarvs_cnn.validation.clusters`: open-cluster chemistry (Cantat-Gaudin 2020);
* `~gaiarvs_cnn.validation.gaia_ap`: Gaia DR3 GSP-Spec and GSP-Phot;
* `~gaiarvs_cnn.validation.precision`: precision vs S/N, calibration of the uncertainties,
  Cramér-Rao bound;
* `~gaiarvs_cnn.validation.bimodality`: [alpha/M]-[M/H] of giants in galactocentric R-Z;
* `~gaiarvs_cnn.validation.truth`: science checks on the simulated survey.

`~gaiarvs_cnn.validation.runner.run_validation` runs them and
`~gaiarvs_cnn.validation.report.write_report` writes ``validation_report/``;
`~gaiarvs_cnn.validation.pipeline.validate_catalog` does both for a catalogue file (store,
references and all), as the command line ``gaiarvs-cnn validate`` does.

Examples
--------
>>> from gaiarvs_cnn.validation import synthetic_truth, synthetic_catalog, seismic_logg
>>> truth = synthetic_truth(200, seed=0)
>>> len(synthetic_catalog(truth).colnames)
17
"""
from .bimodality import (
    add_galactocentric,
    alpha_sequences,
    bimodality_grid,
    galactocentric_frame,
    galactocentric_rz,
    plot_bimodality,
    select_giants,
)
from .clusters import cluster_logg_trends, cluster_statistics, plot_clusters
from .crossmatch import add_store_columns, good_mask, match_reference
from .figures import plot_comparison, plot_kiel
from .gaia_ap import compare_gsp, gsp_precision_ratio
from .galah import compare_galah, plot_galah_snr
from .pipeline import ValidationRun, validate_catalog
from .precision import (
    calibration_check,
    cramer_rao_bound,
    cramer_rao_table,
    fisher_matrix,
    plot_calibration,
    plot_precision_vs_snr,
    precision_vs_snr,
)
from .report import ValidationResult, write_report
from .runner import run_validation
from .seismic import add_seismic_logg, compare_seismic, plot_seismic, seismic_logg
from .stats import binned_stats, comparison_table, difference_stats, robust_sigma, running_stats
from .synthetic import synthetic_catalog, synthetic_reference, synthetic_truth
from .truth import offset_recovery, sequence_recovery, truth_comparison

__all__ = [
    "add_galactocentric", "alpha_sequences", "bimodality_grid", "galactocentric_frame",
    "galactocentric_rz", "plot_bimodality", "select_giants", "cluster_logg_trends",
    "cluster_statistics", "plot_clusters", "add_store_columns", "good_mask", "match_reference",
    "plot_comparison", "plot_kiel", "compare_gsp", "gsp_precision_ratio", "compare_galah",
    "plot_galah_snr", "calibration_check", "cramer_rao_bound", "cramer_rao_table",
    "fisher_matrix", "plot_calibration", "plot_precision_vs_snr", "precision_vs_snr",
    "ValidationResult", "write_report", "run_validation", "add_seismic_logg",
    "compare_seismic", "plot_seismic", "seismic_logg", "binned_stats", "comparison_table",
    "difference_stats", "robust_sigma", "running_stats", "synthetic_catalog",
    "synthetic_reference", "synthetic_truth", "offset_recovery", "sequence_recovery",
    "truth_comparison", "ValidationRun", "validate_catalog",
]
