"""Robust statistics, cross-matching and the recovery of injected biases (validation)."""
import numpy as np
import pytest
from astropy.table import Table, join

from gaiarvs_cnn.constants import LABELS
from gaiarvs_cnn.exceptions import InputDataError
from gaiarvs_cnn.validation.crossmatch import good_mask, match_reference, snr_subsets
from gaiarvs_cnn.validation.stats import (
    binned_stats,
    comparison_table,
    difference_stats,
    robust_sigma,
    running_stats,
)
from gaiarvs_cnn.validation.synthetic import synthetic_catalog, synthetic_truth


def test_difference_stats_of_known_values():
    st = difference_stats([1.0, 2.0, 4.0, np.nan, 10.0])
    assert st["n"] == 4
    assert st["bias"] == pytest.approx(3.0)
    assert st["mean"] == pytest.approx(4.25)
    # |d - 3| = 2, 1, 1, 7 -> median 1.5
    assert st["sigma_mad"] == pytest.approx(1.482602218505602 * 1.5)
    assert st["std"] == pytest.approx(np.std([1, 2, 4, 10], ddof=1))


def test_robust_sigma_matches_gaussian_sigma_and_ignores_outliers():
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 2.0, 20000)
    x[:200] = 1e4
    assert robust_sigma(x) == pytest.approx(2.0, rel=0.03)
    assert np.std(x) > 100


def test_empty_statistics_are_nan():
    st = difference_stats([])
    assert st["n"] == 0 and np.isnan(st["bias"]) and np.isnan(st["sigma_mad"])


def test_comparison_table_recovers_injected_bias_and_scatter():
    truth = synthetic_truth(4000, seed=5)
    bias = {"teff": 25.0, "logg": -0.04, "mh": 0.02, "alpham": -0.01, "feh": 0.03}
    cat = synthetic_catalog(truth, seed=6, bias=bias, bad_fraction=0.0)
    t = join(cat, truth, keys="source_id")
    stats = comparison_table(t, {k: (k, f"true_{k}") for k in LABELS}, comparison="truth")
    assert list(stats["label"]) == list(LABELS)
    scatter = {"teff": 60.0, "logg": 0.10, "mh": 0.07, "alpham": 0.03, "feh": 0.07}
    for row in stats:
        assert row["n"] == 4000
        assert abs(row["bias"] - bias[row["label"]]) < 3 * row["e_bias"]
        assert row["sigma_mad"] == pytest.approx(scatter[row["label"]], rel=0.06)
        assert row["std"] == pytest.approx(scatter[row["label"]], rel=0.04)


def test_comparison_table_subsets_count_rows():
    t = Table({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 0.0, 0.0, np.nan]})
    stats = comparison_table(t, {"teff": ("a", "b")},
                             {"all": np.ones(4, bool), "first": np.array([1, 1, 0, 0], bool)})
    assert list(stats["n"]) == [3, 2]
    assert list(stats["bias"]) == [2.0, 1.5]


def test_running_stats_follow_a_linear_trend():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, 20000)
    y = 0.5 * x + rng.normal(0, 0.2, x.size)
    run = running_stats(x, y, nbins=10)
    assert len(run) == 10
    np.testing.assert_allclose(run["median"], 0.5 * run["x"], atol=0.03)
    # within a bin of width 1 the trend adds 0.5 / sqrt(12) in quadrature
    np.testing.assert_allclose(run["sigma_mad"], np.hypot(0.2, 0.5 / np.sqrt(12)), rtol=0.12)
    assert np.all(run["n"] == 2000)


def test_binned_stats_use_half_open_bins():
    out = binned_stats([15, 24.9, 25, 49, 50, 80], [1, 1, 2, 2, 3, 3], [15, 25, 50, np.inf])
    assert list(out["n"]) == [2, 2, 2]
    assert list(out["bias"]) == [1.0, 2.0, 3.0]


def test_snr_subsets_edges():
    masks = snr_subsets(np.array([15.0, 24.99, 25.0, 50.0, 300.0, 14.0]))
    assert masks["snr 15-25"].tolist() == [True, True, False, False, False, False]
    assert masks["snr 25-50"].tolist() == [False, False, True, False, False, False]
    assert masks["snr >=50"].tolist() == [False, False, False, True, True, False]


def test_match_reference_prefixes_reference_columns():
    cat = Table({"source_id": np.array([3, 1, 2], np.int64), "teff": [5000.0, 4000.0, 4500.0]})
    ref = Table({"source_id": np.array([2, 3, 9], np.int64), "teff": [4400.0, 5100.0, 1.0]})
    m = match_reference(cat, ref)
    assert m.colnames == ["source_id", "teff", "ref_teff"]
    assert list(m["source_id"]) == [2, 3]
    np.testing.assert_allclose(m["teff"] - m["ref_teff"], [100.0, -100.0])
    left = match_reference(cat, ref, join_type="left")
    assert len(left) == 3 and np.ma.is_masked(left["ref_teff"][0])


def test_match_reference_needs_source_id():
    with pytest.raises(InputDataError, match="source_id"):
        match_reference(Table({"a": [1]}), Table({"source_id": [1]}))


def test_good_mask_reads_flag_boundary():
    t = Table({"flag_boundary": ["00000000", "10000000", "00000001"]})
    assert good_mask(t).tolist() == [True, False, False]


def test_good_mask_keeps_every_row_unless_good_only():
    t = Table({"flag_boundary": ["00000000", "10000000", "00000001"]})
    assert good_mask(t, good_only=False).tolist() == [True, True, True]
    assert good_mask(t, good_only=True).tolist() == [True, False, False]
