"""Training of the ensemble: bundle content, loss curves, resumability, refusal, CLI.

Tiny networks, ~200 simulated stars, 2 epochs: these test the mechanics, not accuracy
(see test_accuracy.py).
"""
import json
import shutil

import click
import keras
import numpy as np
import pytest
from click.testing import CliRunner

from gaiarvs_cnn.cli import main
from gaiarvs_cnn.constants import LABELS
from gaiarvs_cnn.exceptions import InputDataError, ModelBundleError
from gaiarvs_cnn.io.store import Store
from gaiarvs_cnn.model import ModelBundle, NetworkConfig, build_model, train_ensemble
from gaiarvs_cnn.model.training import make_splits, train_member, training_arrays
from gaiarvs_cnn.preprocess import InputScalers
from gaiarvs_cnn.simulate.survey import simulate_store

TINY = NetworkConfig(conv_filters=(4, 4, 2), pool_after=(1, 2, 3), rvs_dense=8, phot_dense=4,
                     xp_dense=4, head_dense=(8,), batch_size=32, jit_compile=False)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return simulate_store(tmp_path_factory.mktemp("train") / "train.h5", 200, seed=21,
                          kind="training")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, store_path):
    out = tmp_path_factory.mktemp("bundle") / "b"
    return train_ensemble(store_path, out, TINY, n_splits=2, n_models=1, epochs=2, seed=4,
                          tsne=False, progress=False)


def test_trained_bundle_has_members_curves_and_metadata(trained, store_path):
    assert trained.n_members == 2
    hist = json.loads((trained.path / "history" / "split1_model0.json").read_text())
    assert len(hist["loss"]) == len(hist["val_loss"]) == 2
    assert hist["n_train"] == 150 and hist["n_val"] == 50
    assert all(np.isfinite(hist["loss"]))
    meta = trained.meta
    assert meta["versions"]["keras"].split(".")[0] == "3"
    assert meta["training_sample"]["n_stars"] == 200
    assert meta["training_sample"]["store_meta"]["kind"] == "training"
    assert meta["config"] == TINY.to_dict()
    with Store.open(store_path) as store:
        teff = store.read(columns=["labels"])["labels"][:, 0]
    lo, hi = trained.ranges["teff"]
    assert teff.min() <= lo < hi <= teff.max()
    assert set(trained.residuals) == set(LABELS)
    assert trained.residuals["teff"](5000.0) > 0


def test_resume_keeps_finished_members_and_retrains_the_interrupted_one(trained, tmp_path,
                                                                         store_path):
    out = tmp_path / "resume"
    shutil.copytree(trained.path, out)
    (out / "manifest.json").unlink()
    (out / "history" / "split1_model0.json").unlink()  # interrupted before its done-marker
    done = out / "members" / "split0_model0.keras"
    before = (done.read_bytes(), done.stat().st_mtime_ns)
    bundle = train_ensemble(store_path, out, TINY, n_splits=2, n_models=1, epochs=2, seed=4,
                            tsne=False, progress=False)
    assert (done.read_bytes(), done.stat().st_mtime_ns) == before
    assert (out / "history" / "split1_model0.json").is_file()
    assert bundle.n_members == 2
    # the recorded training time covers every member, not only what this run trained
    seconds = [json.loads((out / "history" / f"split{s}_model0.json").read_text())["seconds"]
               for s in (0, 1)]
    assert bundle.meta["training_seconds"] == pytest.approx(sum(seconds), abs=0.1)
    assert "wall_seconds_last_run" in bundle.meta


def test_resume_with_other_settings_is_refused_and_keeps_files(trained, tmp_path, store_path):
    out = tmp_path / "other"
    shutil.copytree(trained.path, out)
    files = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(ModelBundleError, match="different"):
        train_ensemble(store_path, out, TINY, n_splits=2, n_models=2, epochs=2, seed=4,
                       tsne=False, progress=False)
    assert sorted(p.name for p in out.rglob("*")) == files
    assert ModelBundle.load(out).n_members == 2


def test_member_training_is_reproducible_with_its_seed(store_path):
    with Store.open(store_path) as store:
        batch = store.read(0, 120)
    x, y = training_arrays(batch, InputScalers.fit(batch), TINY)
    tr, va = make_splits(len(y), 1, seed=0)[0]
    m1, h1 = train_member(x, y, tr, va, TINY, seed=9, epochs=1, progress=False)
    m2, h2 = train_member(x, y, tr, va, TINY, seed=9, epochs=1, progress=False)
    assert h1["val_loss"][0] == pytest.approx(h2["val_loss"][0], rel=1e-4)
    for w1, w2 in zip(m1.get_weights(), m2.get_weights()):
        np.testing.assert_allclose(w1, w2, rtol=1e-4, atol=1e-6)
    keras.utils.set_random_seed(10)
    other = build_model(TINY).get_weights()[0]
    assert not np.allclose(other, m1.get_weights()[0], atol=1e-3)


def test_store_without_labels_is_refused(tmp_path):
    path = simulate_store(tmp_path / "obs.h5", 20, seed=2, kind="observed")
    with pytest.raises(InputDataError, match="no star with all five labels"):
        train_ensemble(path, tmp_path / "b", TINY, n_splits=1, n_models=1, epochs=1,
                       tsne=False, progress=False)


def test_cli_train_writes_a_bundle(tmp_path, store_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(TINY.replace(inputs=("rvs",)).to_json())
    out = tmp_path / "cli_bundle"
    res = CliRunner().invoke(main, ["train", "--store", str(store_path), "--out", str(out),
                                    "--splits", "1", "--models", "1", "--epochs", "1",
                                    "--max-stars", "80",
                                    "--config", str(cfg), "--no-tsne"])
    assert res.exit_code == 0, res.output
    bundle = ModelBundle.load(out)
    assert bundle.config.inputs == ("rvs",) and bundle.n_members == 1
    assert "Example" in CliRunner().invoke(main, ["train", "--help"]).output


def _assert_same_members(a: ModelBundle, b: ModelBundle, rtol: float) -> None:
    for m1, m2 in zip(a.members, b.members, strict=True):
        for w1, w2 in zip(m1.get_weights(), m2.get_weights(), strict=True):
            np.testing.assert_allclose(w1, w2, rtol=rtol, atol=rtol * 1e-2)


def test_members_trained_separately_equal_one_run(trained, tmp_path, store_path):
    from gaiarvs_cnn.model import train_members

    out = tmp_path / "apart"
    names = train_members(store_path, out, [1], TINY, n_splits=2, n_models=1, epochs=2, seed=4,
                          progress=False)
    assert names == ["split1_model0"]
    assert not (out / "members" / "split0_model0.keras").exists()
    assert not (out / "manifest.json").exists()  # no bundle until the assembling run
    bundle = train_ensemble(store_path, out, TINY, n_splits=2, n_models=1, epochs=2, seed=4,
                            tsne=False, progress=False)
    _assert_same_members(bundle, trained, rtol=1e-4)
    with pytest.raises(InputDataError, match="outside 0..1"):
        train_members(store_path, out, [2], TINY, n_splits=2, n_models=1, epochs=2, seed=4)


def test_dask_worker_processes_train_the_same_members(trained, tmp_path, store_path):
    from gaiarvs_cnn.production import DaskExecutor

    out = tmp_path / "workers"
    executor = DaskExecutor(workers=2, threads_per_worker=1)
    try:
        bundle = train_ensemble(store_path, out, TINY, n_splits=2, n_models=1, epochs=2,
                                seed=4, tsne=False, progress=False, executor=executor)
    finally:
        executor.close()
    assert bundle.n_members == 2
    # one thread per process instead of all cores: only summation order differs
    _assert_same_members(bundle, trained, rtol=1e-2)


def test_cli_members_option_trains_a_subset_and_parses_ranges(tmp_path, store_path):
    from gaiarvs_cnn.cli.train import parse_index_list

    assert parse_index_list("0-2, 5,7-7") == [0, 1, 2, 5, 7]
    for bad in ("a", "1-x", ","):
        with pytest.raises(click.BadParameter) as err:
            parse_index_list(bad)
        assert "--members" in err.value.format_message()
    cfg = tmp_path / "cfg.json"
    cfg.write_text(TINY.to_json())
    out = tmp_path / "subset"
    args = ["train", "--store", str(store_path), "--out", str(out), "--splits", "2",
            "--models", "1", "--epochs", "1", "--max-stars", "80", "--config", str(cfg),
            "--no-tsne"]
    res = CliRunner().invoke(main, [*args, "--members", "1"])
    assert res.exit_code == 0, res.output
    assert "split1_model0" in res.output and "assemble" in res.output
    assert not (out / "manifest.json").exists()
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert ModelBundle.load(out).n_members == 2


def test_constant_labels_are_refused_naming_the_label(tmp_path, store_path):
    """A label without spread trained silently into sigma_Teff ~ 0.002 K (issue 27)."""
    from gaiarvs_cnn.simulate.survey import SIM_EXTRA_COLUMNS

    with Store.open(store_path) as store:
        batch = store.read()
    batch["labels"][:, LABELS.index("teff")] = 5000.0
    flat = tmp_path / "flat.h5"
    with Store.create(flat, extra_columns=SIM_EXTRA_COLUMNS) as out:
        out.append(batch)
    with pytest.raises(InputDataError, match=r"\['teff'\].*same value for all 200 stars"):
        train_ensemble(flat, tmp_path / "b", TINY, n_splits=1, n_models=1, epochs=1,
                       tsne=False, progress=False)
    assert not (tmp_path / "b" / "members").exists()


def test_a_second_train_into_the_same_folder_is_refused_at_once(tmp_path, store_path):
    """Two trainings into one --out both trained everything (issue 27): the run lock."""
    from gaiarvs_cnn.utils.lock import RunLock

    out = tmp_path / "b"
    with RunLock.beside(out, "model bundle (the other run)"):
        res = CliRunner().invoke(main, ["train", "--store", str(store_path), "--out",
                                        str(out), "--splits", "1", "--models", "1",
                                        "--epochs", "1", "--no-tsne"])
    assert res.exit_code == 1, res.output
    assert "Another gaiarvs-cnn run" in res.output and "Traceback" not in res.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []     # lock file removed with the lock


def test_a_too_small_tsne_sample_is_refused_before_training(tmp_path, store_path):
    res = CliRunner().invoke(main, ["train", "--store", str(store_path), "--out",
                                    str(tmp_path / "b"), "--splits", "1", "--models", "1",
                                    "--epochs", "1", "--max-stars", "150"])
    assert res.exit_code == 1, res.output
    assert "150 usable training spectra" in res.output and "--no-tsne" in res.output
    assert not (tmp_path / "b" / "members").exists()
