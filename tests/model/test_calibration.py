"""The calibrated running-dispersion term of sigma_* (gaiarvs_cnn.model.residuals /
gaiarvs_cnn.model.calibration) and the held-out calibration sample of the simulator."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gaiarvs_cnn.exceptions import InputDataError
from gaiarvs_cnn.model.residuals import (
    COVERAGE_LEVEL,
    CalibratedDispersion,
    fit_calibrated_dispersion,
)


def _synthetic(n, rng, *, spread=0.05):
    """Stars whose error beyond the ensemble spread grows with the label and falls with S/N."""
    truth = rng.uniform(0.0, 1.0, n)
    snr = np.exp(rng.uniform(np.log(15), np.log(150), n))
    extra = (0.04 + 0.08 * truth) * (30.0 / snr) ** 0.5
    e = np.full(n, spread)
    pred = truth + rng.normal(0.0, 1.0, n) * np.hypot(e, extra)
    return pred, truth, e, snr, extra


def test_calibrated_term_recovers_an_injected_excess_in_label_and_snr():
    rng = np.random.default_rng(5)
    pred, truth, e, snr, extra = _synthetic(60_000, rng)
    cal = fit_calibrated_dispersion(pred, truth, e, snr)
    # the term tracks the injected excess (x 1.0 for Gaussian errors), within 15 %
    for x, s in [(0.2, 20.0), (0.8, 20.0), (0.5, 60.0)]:
        want = (0.04 + 0.08 * x) * (30.0 / s) ** 0.5
        assert cal(x, s) == pytest.approx(want, rel=0.15)
    # and fresh stars are covered at 68 % in every S/N bin
    pred, truth, e, snr, _ = _synthetic(60_000, np.random.default_rng(6))
    sigma = np.hypot(e, cal(pred, snr))
    for lo, hi in [(15, 25), (25, 40), (40, 80), (80, 150)]:
        sel = (snr >= lo) & (snr < hi)
        assert np.mean(np.abs(pred - truth)[sel] < sigma[sel]) == pytest.approx(
            COVERAGE_LEVEL, abs=0.03)


def test_an_over_covering_spread_is_scaled_down_and_reference_errors_are_removed():
    rng = np.random.default_rng(7)
    n = 20_000
    truth, snr = rng.uniform(0, 1, n), rng.uniform(15, 100, n)
    e = np.full(n, 0.1)
    pred = truth + rng.normal(0, 0.05, n)              # the spread over-covers (x 2)
    cal = fit_calibrated_dispersion(pred, truth, e, snr)
    assert np.all(np.asarray(cal.terms) == 0)
    assert np.asarray(cal.scales) == pytest.approx(0.5, abs=0.05)
    sigma = cal.sigma(pred, e, snr)
    assert np.mean(np.abs(pred - truth) < sigma) == pytest.approx(COVERAGE_LEVEL, abs=0.02)
    # where the term is positive, the spread is not scaled
    pred = truth + rng.normal(0, 0.2, n)
    assert np.all(np.asarray(fit_calibrated_dispersion(pred, truth, e, snr).scales) == 1.0)
    # errors of the reference itself do not enter the term
    e = np.full(n, 0.01)
    eref = np.full(n, 0.06)
    ref = truth + rng.normal(0, 1, n) * eref
    pred = truth + rng.normal(0, 1, n) * np.hypot(e, 0.03)
    with_ref = fit_calibrated_dispersion(pred, ref, e, snr, reference_error=eref)
    without = fit_calibrated_dispersion(pred, ref, e, snr)
    assert with_ref(0.5, 30.0) == pytest.approx(0.03, rel=0.3)
    assert without(0.5, 30.0) > 2 * with_ref(0.5, 30.0)


def test_calibrated_dispersion_interpolates_clips_and_round_trips():
    cal = CalibratedDispersion(snr_centres=(20.0, 80.0), knots=((0.0, 1.0), (0.0, 1.0)),
                               terms=((0.2, 0.4), (0.1, 0.1)), scales=((1.0, 1.0), (0.5, 1.0)),
                               counts=((50, 50), (50, 50)))
    assert cal(0.5, 20.0) == pytest.approx(0.3)
    assert cal(0.5, 80.0) == pytest.approx(0.1)
    assert cal(0.5, 40.0) == pytest.approx(0.3 + 0.5 * (0.1 - 0.3))   # halfway in log S/N
    assert cal(5.0, 5.0) == pytest.approx(0.4)          # clipped in both label and S/N
    assert cal(0.5, np.nan) == pytest.approx(0.3)       # unknown S/N: the largest term
    assert cal(np.array([0.0, 1.0])).tolist() == pytest.approx([0.2, 0.4])
    assert np.isnan(cal(np.nan, 30.0))
    assert cal.scale(0.0, 80.0) == pytest.approx(0.5)
    assert cal.sigma(0.0, 0.4, 80.0) == pytest.approx(np.hypot(0.2, 0.1))
    again = CalibratedDispersion.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert again == cal


def test_sparse_snr_bins_are_merged_and_too_few_stars_refused():
    rng = np.random.default_rng(8)
    n = 2000
    truth = rng.uniform(0, 1, n)
    snr = np.where(rng.random(n) < 0.98, rng.uniform(15, 25, n), rng.uniform(100, 200, n))
    cal = fit_calibrated_dispersion(truth + rng.normal(0, 0.1, n), truth, np.full(n, 0.05),
                                    snr, min_per_bin=60)
    assert len(cal.snr_centres) < 4
    assert min(sum(c) for c in cal.counts) >= 120
    with pytest.raises(InputDataError, match="held-out stars"):
        fit_calibrated_dispersion(truth[:50], truth[:50], np.full(50, 0.1), snr[:50])


def test_calibration_kind_is_labelled_and_reaches_below_the_training_snr_floor():
    from gaiarvs_cnn.simulate.survey import simulate_batch

    cal = simulate_batch(400, seed=3, kind="calibration")
    assert np.all(np.isfinite(cal["labels"])) and np.all(np.isfinite(cal["label_errors"]))
    assert cal["rvs_snr"].min() >= 15 and np.mean(cal["rvs_snr"] < 30) > 0.3
    assert np.all(cal["source_id"] // 10**17 == 4)


def test_training_sample_populates_the_metal_poor_end():
    from gaiarvs_cnn.simulate.survey import simulate_batch

    train = simulate_batch(3000, seed=4, kind="training")
    mh = train["true_labels"][:, 2]
    assert np.mean(mh < -1.0) > 0.12           # was 0.04 with the field mixture alone
    assert np.mean((mh > -2.3) & (mh < -1.8)) > 0.025
    assert mh.min() >= -2.29 - 0.2             # within the paper's training range (+ noise)


@pytest.fixture(scope="module")
def calibration_store(tmp_path_factory):
    from gaiarvs_cnn.simulate.survey import simulate_store

    root = tmp_path_factory.mktemp("calibration")
    return simulate_store(root / "heldout.h5", 300, seed=12, kind="calibration",
                          progress=False)


def test_calibrate_bundle_writes_the_term_and_changes_sigma(tiny_bundle, calibration_store,
                                                            tmp_path):
    from gaiarvs_cnn.io.store import Store
    from gaiarvs_cnn.model import ModelBundle, predict_batch
    from gaiarvs_cnn.model.calibration import calibrate_bundle

    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    before = ModelBundle.load(path)
    with Store.open(calibration_store) as store:
        batch = store.read(0, 100)
    old = predict_batch(before, batch)
    after = calibrate_bundle(path, calibration_store, min_per_bin=10, progress=False)
    assert after.calibration is not None and after.bundle_id != before.bundle_id
    assert "calibration.json" in json.loads((path / "manifest.json").read_text())["files"]
    meta = after.meta["calibration"]
    assert meta["n_stars"] > 200 and meta["store"] == "heldout.h5"
    assert set(meta["coverage_on_calibration_stars"]) >= set(after.config.labels)
    new = predict_batch(after, batch)
    for lab in after.config.labels:
        np.testing.assert_allclose(new[lab], old[lab])               # labels unchanged
        c = after.calibration[lab]
        x, snr = new[lab].astype(float), batch["rvs_snr"]
        np.testing.assert_allclose(new[f"sigma_{lab}"],
                                   np.hypot(c.scale(x, snr) * new[f"e{lab}"], c(x, snr)),
                                   rtol=1e-5)
    assert any(not np.allclose(new[f"sigma_{k}"], old[f"sigma_{k}"])
               for k in after.config.labels)
    # reloaded from disk, it is the same bundle
    assert ModelBundle.load(path).bundle_id == after.bundle_id


def test_a_rewritten_bundle_drops_a_stale_calibration(tiny_bundle, calibration_store, tmp_path):
    from gaiarvs_cnn.model import ModelBundle
    from gaiarvs_cnn.model.calibration import calibrate_bundle

    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    b = calibrate_bundle(path, calibration_store, min_per_bin=10, progress=False)
    again = ModelBundle.write(path, b.config, b.scalers, b.ranges, b.residuals, b.meta,
                              json.loads((path / "manifest.json").read_text())["members"])
    assert again.calibration is None and not (path / "calibration.json").exists()
    assert "calibration" not in again.meta
    assert again.bundle_id == ModelBundle.load(tiny_bundle).bundle_id


def test_calibrate_cli_reports_coverage_and_refuses_unlabelled_stores(tiny_bundle,
                                                                      calibration_store,
                                                                      tmp_path):
    from gaiarvs_cnn.cli import main
    from gaiarvs_cnn.simulate.survey import simulate_store

    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    runner = CliRunner()
    res = runner.invoke(main, ["calibrate", "--model", str(path), "--store",
                               str(calibration_store), "--min-per-bin", "10"])
    assert res.exit_code == 0, res.output
    assert "fraction within 1 sigma" in res.output and "S/N 15-25" in res.output
    observed = simulate_store(tmp_path / "obs.h5", 50, seed=2, kind="observed", progress=False)
    res = runner.invoke(main, ["calibrate", "--model", str(path), "--store", str(observed)])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert "no usable star with five finite labels" in res.output


@pytest.mark.parametrize("fail_at", ["calibration.json", "metadata.json", "manifest.json",
                                     "commit", "replay"])
def test_an_interrupted_calibration_leaves_a_readable_bundle(tiny_bundle, calibration_store,
                                                             tmp_path, monkeypatch, fail_at):
    """Fault injection: a full disk at each write, or a kill after the commit (issue 27).

    Before the journal, a failure on the third write left a bundle whose manifest no
    longer matched its metadata: load and calibrate both refused it.
    """
    import errno

    from gaiarvs_cnn.model import ModelBundle
    from gaiarvs_cnn.model import bundle as bundle_module
    from gaiarvs_cnn.model.calibration import calibrate_bundle

    reference = tmp_path / "reference"
    shutil.copytree(tiny_bundle, reference)
    calibrated = calibrate_bundle(reference, calibration_store, min_per_bin=10,
                                  progress=False)
    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    before = ModelBundle.load(path)
    real_write, real_rename, real_replace = (bundle_module.write_json_atomic, Path.rename,
                                             Path.replace)

    def full_disk(target, obj, **kw):
        if Path(target).name == fail_at:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real_write(target, obj, **kw)

    def killed_rename(self, target):
        if fail_at == "commit" and Path(target).name == bundle_module.JOURNAL:
            raise KeyboardInterrupt
        return real_rename(self, target)

    def killed_replace(self, target):
        if fail_at == "replay" and Path(target).name == "metadata.json":
            raise KeyboardInterrupt
        return real_replace(self, target)

    monkeypatch.setattr(bundle_module, "write_json_atomic", full_disk)
    monkeypatch.setattr(Path, "rename", killed_rename)
    monkeypatch.setattr(Path, "replace", killed_replace)
    with pytest.raises((OSError, KeyboardInterrupt)):
        ModelBundle.write_calibration(before, calibrated.calibration,
                                      calibrated.meta["calibration"])
    monkeypatch.undo()
    again = ModelBundle.load(path)
    if fail_at == "replay":   # committed: the next load finishes the update
        assert again.bundle_id == calibrated.bundle_id
        assert again.meta["calibration"] == calibrated.meta["calibration"]
    else:                     # not committed: the old bundle, untouched
        assert again.bundle_id == before.bundle_id and again.calibration is None
        assert "calibration" not in again.meta
    assert not (path / bundle_module.JOURNAL).exists()
    # and calibrate works on it again
    final = calibrate_bundle(path, calibration_store, min_per_bin=10, progress=False)
    assert final.calibration is not None
    assert sorted(p.name for p in path.iterdir() if p.name.startswith(".")) == []


def test_calibrate_is_refused_while_another_run_writes_the_bundle(tiny_bundle, tmp_path):
    from gaiarvs_cnn.model.calibration import calibrate_bundle
    from gaiarvs_cnn.utils.lock import RunLock, RunLockedError

    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    with RunLock.beside(path, "model bundle"), pytest.raises(RunLockedError,
                                                              match="Another gaiarvs-cnn run"):
        calibrate_bundle(path, tmp_path / "unused.h5", progress=False)
