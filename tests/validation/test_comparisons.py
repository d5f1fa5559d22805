"""Seismic, GALAH, open-cluster and GSP comparisons recover what synthetic data inject."""
import astropy.units as u
import numpy as np
import pytest
from astropy.table import join

from gaiarvs_cnn.validation.clusters import cluster_logg_trends, cluster_statistics
from gaiarvs_cnn.validation.crossmatch import match_reference
from gaiarvs_cnn.validation.gaia_ap import compare_gsp, gsp_precision_ratio
from gaiarvs_cnn.validation.galah import compare_galah
from gaiarvs_cnn.validation.seismic import LOGG_SUN, compare_seismic, seismic_logg
from gaiarvs_cnn.validation.synthetic import synthetic_catalog, synthetic_reference, synthetic_truth
from gaiarvs_cnn.validation.truth import fit_offset_scatter, offset_recovery


@pytest.fixture(scope="module")
def data():
    truth = synthetic_truth(3000, seed=11, cluster_fraction=0.08)
    cat = synthetic_catalog(truth, seed=12, bias={"teff": 15.0, "logg": 0.02})
    return join(cat, truth, keys="source_id")


def _row(stats, label, subset):
    return stats[(stats["label"] == label) & (stats["subset"] == subset)][0]


def test_seismic_logg_hand_values():
    assert LOGG_SUN == pytest.approx(4.43807, abs=2e-5)   # log10(27420 cm s^-2)
    assert seismic_logg(3090.0, 5777.0) == pytest.approx(LOGG_SUN)
    # numax = 30 uHz, Teff = 4800 K: 4.43807 - 2.01284 - 0.04023 = 2.38500
    assert seismic_logg(30.0 * u.uHz, 4800.0 * u.K) == pytest.approx(2.38500, abs=2e-4)
    # units are converted: 30 uHz = 3e-5 Hz
    assert seismic_logg(3e-5 * u.Hz, 4800.0) == pytest.approx(2.38500, abs=2e-4)
    logg, e_logg = seismic_logg(30.0, 4800.0, e_numax=0.3, e_teff=0.0)
    assert e_logg == pytest.approx(0.01 / np.log(10))


def test_seismic_comparison_recovers_injected_offset(data):
    ref = synthetic_reference(data, "seismic", seed=3, offset={"logg": 0.08},
                              scatter={"logg": 0.05})
    matched = match_reference(data, ref)
    stats = compare_seismic(matched)
    assert set(stats["subset"]) == {"all", "logg<2.3", "2.3<=logg<2.6", "logg>=2.6"}
    row = _row(stats, "logg", "all")
    # CNN = truth + 0.02 + N(0, 0.10); seismic = truth + 0.08 + N(0, 0.05)
    assert abs(row["bias"] - (0.02 - 0.08)) < 3 * row["e_bias"]
    assert row["sigma_mad"] == pytest.approx(np.hypot(0.10, 0.05), rel=0.1)
    ranges = stats[stats["subset"] != "all"]
    assert ranges["n"].sum() == row["n"]
    rec = offset_recovery(matched, {"logg": 0.08}, {"logg": 0.05}, labels=("logg",),
                          ref_columns={"logg": "seis_logg"})
    assert rec["recovered"][0]
    assert rec["offset"][0] == pytest.approx(0.08, abs=3 * rec["e_offset"][0])


def test_galah_comparison_bins_cuts_and_offsets(data):
    offset = {"teff": -40.0, "logg": 0.05, "feh": -0.03, "alpham": 0.02}
    ref = synthetic_reference(data, "galah", seed=4, offset=offset)
    ref["flag_sp"][:100] = 1
    ref["snr_c3_iraf"][100:150] = 20.0
    matched = match_reference(data, ref)
    stats = compare_galah(matched)
    good = np.asarray(matched["flag_boundary"]) == "00000000"
    passing = good & (np.asarray(matched["ref_flag_sp"]) == 0) & (
        np.asarray(matched["ref_snr_c3_iraf"]) > 40)
    assert _row(stats, "teff", "all")["n"] == passing.sum()
    snr_rows = stats[(stats["label"] == "teff") & np.isin(stats["subset"], [
        "snr 15-25", "snr 25-50", "snr >=50"])]
    assert snr_rows["n"].sum() == passing.sum()
    split = [_row(stats, "feh", s)["n"] for s in ("giants", "dwarfs")]
    assert sum(split) == passing.sum()
    cnn_bias = {"teff": 15.0, "logg": 0.02, "feh": 0.0, "alpham": 0.0}
    for label, off in offset.items():
        row = _row(stats, label, "all")
        assert abs(row["bias"] - (cnn_bias[label] - off)) < 3.5 * row["e_bias"], label
    assert _row(stats, "mh", "metal-poor [Fe/H]<-1")["n"] == _row(
        stats, "feh", "metal-poor [Fe/H]<-1")["n"]


def test_cluster_statistics_and_logg_trend(data):
    ref = synthetic_reference(data, "clusters")
    galah = synthetic_reference(data, "galah", seed=5, offset={"feh": 0.1}, fraction=0.7)
    matched = match_reference(match_reference(data, ref), galah, "galah_", join_type="left")
    stats = cluster_statistics(matched)
    assert len(stats) == 3
    for row in stats:
        assert row["mean_feh"] == pytest.approx(row["true_mean_feh"],
                                                abs=4 * 0.07 / np.sqrt(row["n"]))
        assert row["std_feh"] == pytest.approx(0.07, rel=0.5)
        assert row["cnn_minus_galah_feh"] == pytest.approx(-0.1, abs=0.08)
    flat = cluster_logg_trends(matched)
    feh = flat[flat["label"] == "feh"][0]
    assert abs(feh["slope"]) < 4 * feh["e_slope"]
    # inject a gravity trend of 0.1 dex/dex in the member metallicities
    tilted = matched.copy()
    tilted["feh"] = tilted["feh"] + 0.1 * (tilted["logg"] - 2.5)
    trend = cluster_logg_trends(tilted)
    feh = trend[trend["label"] == "feh"][0]
    assert feh["slope"] == pytest.approx(0.1, abs=4 * feh["e_slope"])


def test_gsp_spec_flags_and_precision_ratio(data):
    scatter = {"teff": 180.0, "logg": 0.3, "mh": 0.21, "alpham": 0.09}
    ref = synthetic_reference(data, "gsp-spec", seed=6, scatter=scatter)
    matched = match_reference(data, ref)
    stats = compare_gsp(matched, "gsp-spec")
    good_flags = np.char.startswith(np.asarray(matched["ref_flags_gspspec"]).astype(str),
                                    "0" * 13)
    good = good_flags & (np.asarray(matched["flag_boundary"]) == "00000000")
    assert _row(stats, "teff", "all")["n"] == good.sum()
    assert "feh" not in set(stats["label"])
    ratio = gsp_precision_ratio(matched, "true_", kind="gsp-spec")
    cnn = {"teff": 60.0, "logg": 0.1, "mh": 0.07, "alpham": 0.03}
    for row in ratio:   # GSP noise: injected scatter and quoted error (cnn / 4) in quadrature
        gsp = np.hypot(scatter[row["label"]], 0.25 * cnn[row["label"]])
        assert row["ratio_std"] == pytest.approx(gsp / cnn[row["label"]], rel=0.1)


def test_gsp_phot_has_no_flag_cut(data):
    ref = synthetic_reference(data, "gsp-phot", seed=7)
    matched = match_reference(data, ref)
    stats = compare_gsp(matched, "gsp-phot")
    good = np.asarray(matched["flag_boundary"]) == "00000000"
    assert _row(stats, "teff", "all")["n"] == good.sum()
    assert set(stats["label"]) == {"teff", "logg", "mh"}


def test_fit_offset_scatter_separates_scatter_from_quoted_errors():
    rng = np.random.default_rng(40)
    err = rng.uniform(0.02, 0.2, 20000)
    diff = 0.05 + rng.normal(0, 1, err.size) * np.hypot(0.08, err)
    off, e_off, sc, e_sc = fit_offset_scatter(diff, err)
    assert off == pytest.approx(0.05, abs=3 * e_off)
    assert sc == pytest.approx(0.08, abs=3 * e_sc)
    assert e_sc < 0.003
    off, e_off, sc, e_sc = fit_offset_scatter(diff[:5000])   # no errors: total dispersion
    assert sc == pytest.approx(np.sqrt(0.08**2 + np.mean(err**2)), rel=0.05)


def test_seismic_comparison_of_other_surveys(data):
    ref = synthetic_reference(data, "seismic", seed=8, scatter={"logg": 0.02})
    matched = match_reference(data, ref)
    matched["apogee_logg"] = np.asarray(matched["true_logg"]) - 0.2
    half = np.arange(len(matched)) % 2 == 0
    stats = compare_seismic(matched, others={"apogee": ("apogee_logg", half)})
    other = stats[stats["comparison"] == "apogee vs seismic"]
    assert list(other["subset"]) == ["all", "logg<2.3", "2.3<=logg<2.6", "logg>=2.6"]
    cnn_all = stats[(stats["comparison"] == "seismic") & (stats["subset"] == "all")][0]
    assert other["n"][0] == np.sum(half & (np.asarray(matched["flag_boundary"]) == "00000000"))
    assert other["n"][0] < cnn_all["n"]
    assert other["bias"][0] == pytest.approx(-0.2, abs=3 * other["e_bias"][0])
    assert other["sigma_mad"][0] == pytest.approx(0.02, rel=0.15)
