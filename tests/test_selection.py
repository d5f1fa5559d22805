"""Tests of gaiarvs_cnn.selection: each condition of each selection, masks, case, ADQL."""
from pathlib import Path

import numpy as np
import pytest
from astropy import log
from astropy.table import MaskedColumn, Table

from gaiarvs_cnn.exceptions import InputDataError
from gaiarvs_cnn.io.batch import StarBatch
from gaiarvs_cnn.selection import (
    apogee_quality_cut,
    apply_cuts,
    gaia_quality_adql,
    gaia_quality_cut,
    training_cut,
)

AQ = Path(__file__).parent / "data" / "gaia_real" / "astroquery_gaia"

GOOD_GAIA = {"in_galaxy_candidates": False, "in_qso_candidates": False,
             "phot_variable_flag": "NOT_AVAILABLE", "non_single_star": 0,
             "phot_g_mean_flux_over_error": 900.0, "phot_bp_mean_flux_over_error": 700.0,
             "phot_rp_mean_flux_over_error": 800.0, "parallax": 1.2,
             "has_xp_continuous": True, "classlabel_espels": ""}

# one row per failing condition (row 0 passes everything)
GAIA_FAILURES = [
    ("in_galaxy_candidates", True), ("in_qso_candidates", True),
    ("phot_variable_flag", "VARIABLE"), ("non_single_star", 1),
    ("phot_g_mean_flux_over_error", 500.0), ("phot_bp_mean_flux_over_error", 499.0),
    ("phot_rp_mean_flux_over_error", 12.0), ("parallax", -0.1), ("parallax", 0.0),
    ("has_xp_continuous", False), ("classlabel_espels", "ELS"),
]


def _table(good, failures):
    rows = [dict(good)] + [dict(good, **{k: v}) for k, v in failures]
    return Table(rows=rows, names=list(good))


def test_gaia_quality_cut_each_condition():
    table = _table(GOOD_GAIA, GAIA_FAILURES)
    mask = gaia_quality_cut(table)
    assert mask.dtype == bool
    assert mask.tolist() == [True] + [False] * len(GAIA_FAILURES)


def test_gaia_quality_cut_masked_values_and_column_case():
    table = _table(GOOD_GAIA, [("parallax", 1.0)] * 3)
    table.rename_columns(table.colnames, [c.upper() for c in table.colnames])
    table["CLASSLABEL_ESPELS"] = MaskedColumn(["x", "ELS", "", "y"],
                                              mask=[True, False, False, False])
    table["PARALLAX"] = MaskedColumn([1.0, 1.0, 1.0, np.nan], mask=[False, False, False, False])
    table["NON_SINGLE_STAR"] = MaskedColumn([0, 0, 0, 0], mask=[False, False, True, False])
    # masked classlabel passes (NULL), masked non_single_star fails, NaN parallax fails
    assert gaia_quality_cut(table).tolist() == [True, False, False, False]


def test_gaia_quality_cut_on_real_query_result_and_missing_column():
    table = Table.read(AQ / "1710099405832VAL-result.vot")
    with pytest.raises(InputDataError, match="classlabel_espels"):
        gaia_quality_cut(table)
    table["classlabel_espels"] = MaskedColumn(["", ""], mask=[True, True])
    # both stars are flagged VARIABLE and have BP flux_over_error < 500
    assert gaia_quality_cut(table).tolist() == [False, False]
    table["phot_variable_flag"] = ["NOT_AVAILABLE"] * 2
    table["phot_bp_mean_flux_over_error"] = [600.0, 600.0]
    table["phot_rp_mean_flux_over_error"] = [600.0, 600.0]
    # star 0 passes now; star 1 still has G flux_over_error 227
    assert gaia_quality_cut(table).tolist() == [True, False]


def test_gaia_quality_adql_matches_the_cut():
    clause = gaia_quality_adql("g", "a")
    for cond in ("g.in_galaxy_candidates = 'false'", "g.phot_variable_flag != 'VARIABLE'",
                 "g.non_single_star = 0", "g.phot_bp_mean_flux_over_error > 500",
                 "g.parallax > 0", "g.has_xp_continuous = 'true'",
                 "a.classlabel_espels IS NULL"):
        assert cond in clause
    assert clause.count(" AND ") == 9
    assert "WHERE" not in clause


GOOD_APOGEE = {"ASPCAPFLAG": np.int64(1 << 3), "ASPCAP_CHI2": 3.0, "FE_H_FLAG": 0,
               "TEFF_ERR": 50.0, "LOGG_ERR": 0.05, "M_H": 0.0, "M_H_ERR": 0.05,
               "FE_H": 0.0, "FE_H_ERR": 0.05, "ALPHA_M_ERR": 0.03}
APOGEE_FAILURES = [
    ("ASPCAPFLAG", np.int64(1 << 7)), ("ASPCAPFLAG", np.int64((1 << 23) | 1)),
    ("ASPCAP_CHI2", 25.0), ("FE_H_FLAG", 1), ("TEFF_ERR", 100.0), ("LOGG_ERR", 0.1),
    ("M_H_ERR", 0.12), ("FE_H_ERR", 0.1), ("ALPHA_M_ERR", 0.11),
]


def test_apogee_quality_cut_each_condition():
    table = _table(GOOD_APOGEE, APOGEE_FAILURES)
    assert apogee_quality_cut(table).tolist() == [True] + [False] * len(APOGEE_FAILURES)


def test_apogee_metal_poor_stars_get_the_looser_error_limit():
    rows = [dict(GOOD_APOGEE, M_H=-1.0, M_H_ERR=0.15),        # metal-poor: < 0.2 passes
            dict(GOOD_APOGEE, M_H=-1.0, M_H_ERR=0.2),         # == 0.2 fails
            dict(GOOD_APOGEE, M_H=-0.4, M_H_ERR=0.15),        # metal-rich: < 0.1 needed
            dict(GOOD_APOGEE, FE_H=-0.8, FE_H_ERR=0.15),
            dict(GOOD_APOGEE, FE_H=0.1, FE_H_ERR=0.15)]
    table = Table(rows=rows, names=list(GOOD_APOGEE))
    assert apogee_quality_cut(table).tolist() == [True, False, False, True, False]
    table["TEFF_ERR"] = MaskedColumn(table["TEFF_ERR"], mask=[True, False, False, False, False])
    assert apogee_quality_cut(table).tolist() == [False, False, False, True, False]
    table.remove_column("ALPHA_M_ERR")
    with pytest.raises(InputDataError, match="ALPHA_M_ERR"):
        apogee_quality_cut(table)


def test_training_cut_snr_parallax_error_ruwe():
    table = Table({"rvs_spec_sig_to_noise": [30.0, 29.9, 50.0, 50.0, 50.0, np.nan],
                   "parallax": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
                   "parallax_error": [0.19, 0.1, 0.2, 0.1, 0.1, 0.1],
                   "ruwe": [1.0, 1.0, 1.0, 1.4, 1.39, 1.0]})
    expected = [True, False, False, False, True, False]
    assert training_cut(table).tolist() == expected           # parallax_over_error computed
    table["PARALLAX_OVER_ERROR"] = table["parallax"] / table["parallax_error"]
    assert training_cut(table).tolist() == expected
    # a StarBatch (store column rvs_snr) works too
    batch = StarBatch({"source_id": [1, 2], "rvs_snr": [40.0, 10.0], "parallax": [2.0, 2.0],
                       "parallax_error": [0.1, 0.1], "ruwe": [1.0, 1.0]})
    assert training_cut(batch).tolist() == [True, False]


def test_apply_cuts_logs_counts_and_returns_rows():
    table = _table(GOOD_GAIA, GAIA_FAILURES)
    table["rvs_spec_sig_to_noise"] = 40.0
    table["parallax_error"] = 0.01
    table["ruwe"] = 1.0
    with log.log_to_list() as messages:
        kept = apply_cuts(table, gaia_quality_cut, training_cut)
    assert len(kept) == 1
    assert kept.meta["cuts"] == [
        {"cut": "gaia_quality_cut", "passed": 1, "remaining": 1},
        {"cut": "training_cut", "passed": 10, "remaining": 1},  # 2 rows fail on parallax
    ]
    text = " ".join(m.message for m in messages)
    assert "gaia_quality_cut: 1/12 pass" in text


def test_usable_mask_tests_only_the_branches_of_the_network():
    from gaiarvs_cnn.selection import USABLE_CUTS, usable_cuts, usable_mask
    from gaiarvs_cnn.simulate.survey import simulate_batch

    batch = simulate_batch(4, seed=3, kind="calibration", snr=50.0)
    bp = batch["bp_coefficients"].copy()
    bp[1] = np.nan                                  # star 1: no XP
    batch["bp_coefficients"] = bp
    g = batch["phot_g_mean_mag"].copy()
    g[2] = np.nan                                   # star 2: no photometry
    batch["phot_g_mean_mag"] = g
    flux = batch["flux"].copy()
    flux[3] = np.nan                                # star 3: all-NaN spectrum
    batch["flux"] = flux
    assert usable_mask(batch).tolist() == [True, False, False, False]
    assert usable_mask(batch, ("rvs",)).tolist() == [True, True, True, False]
    assert usable_mask(batch, ("rvs", "phot")).tolist() == [True, True, False, False]
    assert usable_mask(batch, ("rvs", "xp")).tolist() == [True, False, True, False]
    assert usable_cuts(("rvs", "phot", "xp")) == USABLE_CUTS
    assert usable_cuts(("rvs",)).startswith("plausible RVS flux")
    assert "XP" not in usable_cuts(("rvs", "phot"))
    with pytest.raises(InputDataError, match="subset of"):
        usable_mask(batch, ("rvs", "spectra"))
