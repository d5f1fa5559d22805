"""Training of one member and of the ensemble (paper Sect. 3.2).

The training sample is split ``n_splits`` times at random into 75 % train / 25 %
validation sets (one seeded generator per split); ``n_models`` members are trained on
each split with their own seed, so the ensemble is reproducible member by member.

Training is resumable: each finished member leaves ``members/<name>.keras`` and then
``history/<name>.json`` (its loss curves; written last, it is the done-marker). Running
`train_ensemble` again on the same output directory skips finished members; a
``training_state.json`` records the settings and the training sample so a resumed run
with different settings is refused instead of mixing incompatible members.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from astropy import log
from tqdm.auto import tqdm

from ..exceptions import Call, InputDataError, ModelBundleError, Param
from ..io.batch import StarBatch
from ..io.shards import open_source
from ..preprocess import InputScalers, fill_nan_pixels
from ..utils import interrupt
from ..utils.atomic import atomic_path, write_json_atomic
from ..utils.lock import RunLock
from .bundle import ModelBundle, _read_json, software_versions
from .config import PAPER_CONFIG, NetworkConfig
from .member_file import read_member
from .network import build_model, compile_model
from .predict import INPUT_COLUMNS, FusedEnsemble, configure_threads, grid_slice
from .residuals import fit_residual_dispersion

__all__ = ["make_splits", "member_name", "member_seed", "load_training_sample",
           "training_arrays", "train_member", "train_members", "train_ensemble",
           "TRAIN_COLUMNS",
           "RANGE_PERCENTILES"]

#: Store columns read for training.
TRAIN_COLUMNS = (*INPUT_COLUMNS, "labels")
#: Percentiles of the training sample defining its "effective range" (paper Table 1).
RANGE_PERCENTILES = (0.1, 99.9)
VALIDATION_FRACTION = 0.25


def make_splits(n: int, n_splits: int, seed: int,
                val_fraction: float = VALIDATION_FRACTION) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` random (train, validation) index pairs, seeded by ``(seed, split)``.

    Parameters
    ----------
    n : int
        Number of training stars.
    n_splits : int
        Number of splits to draw.
    seed : int
        Ensemble seed; split ``s`` uses ``numpy.random.default_rng([seed, s])``.
    val_fraction : float
        Fraction of the stars put in each validation set (rounded to a whole star).

    Returns
    -------
    list of tuple of (ndarray, ndarray)
        ``(train_idx, val_idx)`` per split: sorted, disjoint integer row indices.

    Raises
    ------
    gaiarvs_cnn.exceptions.InputDataError
        If either set of a split would be empty.

    Examples
    --------
    >>> tr, va = make_splits(100, 7, seed=0)[3]
    >>> len(tr), len(va)
    (75, 25)
    """
    n_val = int(round(val_fraction * n))
    if n_val < 1 or n - n_val < 1:
        raise InputDataError(f"{n} training stars cannot be split {1 - val_fraction:.0%}/"
                             f"{val_fraction:.0%}.")
    splits = []
    for s in range(n_splits):
        perm = np.random.default_rng([seed, s]).permutation(n)
        splits.append((np.sort(perm[n_val:]), np.sort(perm[:n_val])))
    return splits


def member_name(split: int, model: int) -> str:
    """File stem of a member, e.g. ``split3_model1``.

    Parameters
    ----------
    split : int
        Index of the train/validation split.
    model : int
        Index of the model trained on that split.

    Returns
    -------
    str
        ``f"split{split}_model{model}"``.
    """
    return f"split{split}_model{model}"


def member_seed(seed: int, split: int, model: int) -> int:
    """Seed of member (split, model): distinct for every member and every ensemble seed.

    Parameters
    ----------
    seed : int
        Ensemble seed.
    split : int
        Index of the train/validation split.
    model : int
        Index of the model trained on that split.

    Returns
    -------
    int
        Seed in ``[0, 2**31 - 1)``, deterministic in ``(seed, split, model)``.
    """
    return int(np.random.default_rng([seed, split, model, 7919]).integers(2**31 - 1))


def load_training_sample(store_path, max_stars: int | None = None) -> StarBatch:
    """Read the stars of a store that have all five labels (at most ``max_stars``, in order).

    Parameters
    ----------
    store_path : str or path-like
        Star store (anything `~gaiarvs_cnn.io.store.open_source` accepts).
    max_stars : int or None
        Keep at most this many stars (the first ones in store order); None keeps all.

    Returns
    -------
    StarBatch
        The labelled stars, with the columns of ``TRAIN_COLUMNS``.

    Raises
    ------
    gaiarvs_cnn.exceptions.InputDataError
        If the store lacks a needed column or has no star with all five labels.
    """
    with open_source(store_path) as store:
        store.require_columns(TRAIN_COLUMNS, "for training")
        parts, n = [], 0
        for chunk in store.iter_chunks(columns=TRAIN_COLUMNS):
            ok = np.all(np.isfinite(chunk["labels"]), axis=1)
            parts.append(chunk[ok])
            n += int(ok.sum())
            if max_stars is not None and n >= max_stars:
                break
    batch = StarBatch.concatenate(parts) if parts else None
    if batch is None or len(batch) == 0:
        raise InputDataError(f"Store {store_path} has no star with all five labels; a "
                             "training store needs reference labels (e.g. ",
                             Call("simulate_store", Param("kind", "training")), ").",
                             file=store_path)
    return batch[:max_stars] if max_stars is not None else batch


def training_arrays(batch: StarBatch, scalers: InputScalers, config: NetworkConfig
                    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Scaled network inputs (only ``config.inputs``) and scaled labels (float32).

    Parameters
    ----------
    batch : StarBatch
        Training stars with the input columns and ``labels``.
    scalers : InputScalers
        Fitted min-max scalers of the inputs and labels.
    config : NetworkConfig
        Selects the branches; the RVS spectra are cropped to its wavelength grid.

    Returns
    -------
    x : dict of str to ndarray
        Scaled inputs keyed by ``config.inputs``; ``rvs`` has shape (N, n_pixels, 1).
    y : ndarray of float32, shape (N, n_labels)
        Scaled labels.
    """
    inputs = scalers.transform_inputs(batch, config.inputs)
    if "rvs" in inputs:
        inputs["rvs"] = np.ascontiguousarray(inputs["rvs"][:, grid_slice(config)])
    y = scalers.labels.transform(batch["labels"]).astype(np.float32)
    return inputs, y


def _progress_callback(total_epochs: int, desc: str, enabled: bool):
    import keras

    class TqdmEpochs(keras.callbacks.Callback):
        """One tqdm bar per member, advanced at each epoch with the losses."""

        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=total_epochs, desc=desc, unit="epoch", leave=False,
                            disable=not enabled)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            self.bar.set_postfix(loss=f"{logs.get('loss', np.nan):.4g}",
                                 val_loss=f"{logs.get('val_loss', np.nan):.4g}")
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return TqdmEpochs()


def _dataset(x: dict, y: np.ndarray, batch_size: int, shuffle_seed: int | None):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train_member(x: dict[str, np.ndarray], y: np.ndarray, train_idx: np.ndarray,
                 val_idx: np.ndarray, config: NetworkConfig, seed: int, epochs: int,
                 progress: bool = True, desc: str = "member"):
    """Train one member; return ``(model, history)``.

    Parameters
    ----------
    x : dict of str to ndarray
        Scaled inputs of the whole training sample (see `training_arrays`).
    y : ndarray (N, n_labels)
        Scaled labels.
    train_idx, val_idx : ndarray of int
        Rows of the train and validation sets.
    config : NetworkConfig
        Architecture and training hyper-parameters.
    seed : int
        Seeds weights initialisation and shuffling (`keras.utils.set_random_seed`).
    epochs : int
        Maximum epochs; EarlyStopping (``config.patience``) restores the best weights.
    progress : bool
        Show a tqdm progress bar over the epochs.
    desc : str
        Label of the progress bar.

    Returns
    -------
    model : keras.Model
        The trained member, with the best (lowest ``val_loss``) weights.
    history : dict
        ``loss``, ``val_loss`` and ``learning_rate`` per epoch, ``best_epoch``,
        ``seconds``, ``samples_per_second``.
    """
    import keras

    configure_threads()
    keras.utils.set_random_seed(seed)
    model = compile_model(build_model(config), config)
    train = _dataset({k: v[train_idx] for k, v in x.items()}, y[train_idx],
                     config.batch_size, seed)
    val = _dataset({k: v[val_idx] for k, v in x.items()}, y[val_idx],
                   max(config.batch_size, 512), None)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                      restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=config.lr_factor,
                                          patience=config.lr_patience, min_lr=config.min_lr),
        _progress_callback(epochs, desc, progress),
    ]
    t0 = time.perf_counter()
    hist = model.fit(train, validation_data=val, epochs=epochs, callbacks=callbacks, verbose=0,
                     shuffle=False)  # the tf.data pipeline shuffles
    seconds = time.perf_counter() - t0
    h = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    n_epochs = len(h["loss"])
    h.update(best_epoch=int(np.argmin(h["val_loss"])) + 1, epochs_run=n_epochs,
             seconds=round(seconds, 2), seed=int(seed), n_train=int(len(train_idx)),
             n_val=int(len(val_idx)),
             samples_per_second=round(n_epochs * len(train_idx) / seconds, 1))
    return model, h


def _ids_digest(ids: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).hexdigest()[:16]


def _check_state(out_dir: Path, state: dict) -> None:
    """Write the training state, or refuse to resume a run with different settings."""
    path = out_dir / "training_state.json"
    if path.exists():
        old = _read_json(path, "training_state.json")
        diff = sorted(k for k in state if old.get(k) != state[k])
        if diff:
            raise ModelBundleError(
                f"{out_dir} holds a training with different {diff}; resume with the same "
                "settings, or use a new output directory (or ", Param("overwrite", True), ").",
                file=out_dir)
        log.info(f"Resuming the training in {out_dir}.")
        return
    write_json_atomic(path, state)


def _save_member(model, history: dict, out_dir: Path, name: str, config: NetworkConfig
                 ) -> None:
    """Save the weights in an uncompiled copy (no optimizer state: 3x smaller), then history."""
    members = out_dir / "members"
    members.mkdir(parents=True, exist_ok=True)
    clean = build_model(config, name=model.name)
    clean.set_weights(model.get_weights())
    with atomic_path(members / f"{name}.keras", suffix=".keras") as tmp:
        clean.save(tmp)
    write_json_atomic(out_dir / "history" / f"{name}.json", history)  # done-marker, last


def _member_done(out_dir: Path, name: str) -> bool:
    return ((out_dir / "history" / f"{name}.json").is_file()
            and (out_dir / "members" / f"{name}.keras").is_file())


def _oof_mean(stacked: np.ndarray, val_sets: Sequence[np.ndarray]) -> np.ndarray:
    """Per star, the mean of the members that did not train on it (NaN if none)."""
    n = stacked.shape[1]
    total = np.zeros(stacked.shape[1:])
    count = np.zeros(n)
    for k, val in enumerate(val_sets):
        total[val] += stacked[k, val]
        count[val] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count[:, None]


def _residual_fits(scalers, config, stacked, val_sets, labels_true):
    """Residual dispersion fits from validation predictions (all-member mean where none)."""
    oof = _oof_mean(stacked, val_sets)
    full = stacked.mean(axis=0)
    oof = np.where(np.isfinite(oof), oof, full)
    pred = scalers.labels.inverse_transform(oof)
    fits, stats = {}, {}
    for j, lab in enumerate(config.labels):
        resid = pred[:, j] - labels_true[:, j]
        fits[lab] = fit_residual_dispersion(pred[:, j], resid)
        stats[lab] = {"bias": float(np.median(resid)),
                      "dispersion": float(1.4826 * np.median(np.abs(resid - np.median(resid))))}
    return fits, stats


def _ranges(batch: StarBatch, labels: Sequence[str]) -> dict:
    lo, hi = RANGE_PERCENTILES
    out = {lab: tuple(float(v) for v in np.nanpercentile(batch["labels"][:, j], (lo, hi)))
           for j, lab in enumerate(labels)}
    for col in ("phot_g_mean_mag", "parallax"):
        if not np.isfinite(batch[col]).any():   # a network without photometry, trained so
            log.warning(f"No training star has a finite {col}: every star's flag digit for "
                        f"{col} will say 'outside the training range'.")
            out[col] = (float("nan"), float("nan"))
        else:
            out[col] = tuple(float(v) for v in np.nanpercentile(batch[col], (lo, hi)))
    return out


def _fit_tsne(flux: np.ndarray, out_dir: Path, seed: int, max_stars: int | None) -> None:
    try:
        from ..flags import TSNEReference
    except ImportError:  # pragma: no cover - flags.py is part of the package
        log.warning("gaiarvs_cnn.flags.TSNEReference is unavailable: the bundle has no "
                    "t-SNE reference, so catalogue flags cannot test spectra.")
        return
    if max_stars is not None and len(flux) > max_stars:
        rows = np.sort(np.random.default_rng([seed, 31]).choice(len(flux), max_stars,
                                                                 replace=False))
        flux = flux[rows]
    log.info(f"Fitting the t-SNE reference on {len(flux)} training spectra.")
    TSNEReference.fit(flux, seed=seed).save(out_dir / "tsne")


def _check_label_spread(batch: StarBatch, labels: Sequence[str], store_path) -> None:
    """Refuse a label without spread: the network would learn a constant and its sigma_*
    would be ~0 (a training on constant labels gave sigma_Teff = 0.002 K)."""
    flat = [lab for j, lab in enumerate(labels)
            if not np.ptp(batch["labels"][:, j]) > 0]
    if flat:
        raise InputDataError(
            f"Label(s) {flat} of the training store {store_path} have the same value for "
            f"all {len(batch)} stars: the network cannot learn them. Use training stars "
            "whose reference labels span the parameter space.")


def _prepare(store_path, out_dir: Path, config: NetworkConfig, n_splits: int, n_models: int,
             epochs: int, seed: int, max_stars: int | None):
    """Read and scale the training sample, draw the splits, write or check the state."""
    batch = load_training_sample(store_path, max_stars)
    _check_label_spread(batch, config.labels, store_path)
    scalers = InputScalers.fit(batch, config.inputs)
    x, y = training_arrays(batch, scalers, config)
    splits = make_splits(len(batch), n_splits, seed)
    _check_state(out_dir, {"config": config.to_dict(), "n_splits": n_splits,
                           "n_models": n_models, "seed": seed, "epochs": epochs,
                           "n_stars": len(batch), "source_ids": _ids_digest(batch["source_id"])})
    return batch, scalers, x, y, splits


def _member_lock(out_dir: Path, name: str) -> RunLock:
    """The lock of one member while it trains (beside the bundle directory, so that it is
    never part of the bundle): processes sharing ``out_dir`` never train one member twice."""
    return RunLock(out_dir.parent / f".{out_dir.name}.{name}.lock",
                   f"member {name} of {out_dir}")


def _member_jobs(n_splits: int, n_models: int) -> list[tuple[int, int]]:
    """``(split, model)`` of every member, split-major (the member index order)."""
    return [(s, m) for s in range(n_splits) for m in range(n_models)]


def _train_missing(x, y, splits, out_dir: Path, config: NetworkConfig, jobs, seed: int,
                   epochs: int, progress: bool, position: int = 0) -> dict[str, dict]:
    """Train every member of ``jobs`` that has no done-marker; return all their histories."""
    histories = {}
    for s, m in tqdm(jobs, desc="ensemble", unit="member", disable=not progress,
                     position=position):
        name = member_name(s, m)
        if _member_done(out_dir, name):
            histories[name] = _read_json(out_dir / "history" / f"{name}.json", name)
            continue
        with _member_lock(out_dir, name):
            if _member_done(out_dir, name):  # finished by another process meanwhile
                histories[name] = _read_json(out_dir / "history" / f"{name}.json", name)
                continue
            model, hist = train_member(x, y, *splits[s], config, member_seed(seed, s, m),
                                       epochs, progress and position == 0, desc=name)
            _save_member(model, hist, out_dir, name, config)
        histories[name] = hist
        log.info(f"{name}: best val_loss {min(hist['val_loss']):.3g} at epoch "
                 f"{hist['best_epoch']}/{hist['epochs_run']} ({hist['seconds']:.0f} s)")
        interrupt.check()
    return histories


def train_members(store_path, out_dir, members: Sequence[int],
                  config: NetworkConfig = PAPER_CONFIG, n_splits: int = 7, n_models: int = 4,
                  epochs: int = 200, seed: int = 0, max_stars: int | None = None,
                  progress: bool = True, threads: int | None = None,
                  position: int = 0) -> list[str]:
    """Train some members of an ensemble into ``out_dir`` without assembling the bundle.

    Several processes (or machines sharing ``out_dir``) can train disjoint ``members``
    of one ensemble at once; `train_ensemble` on the same directory and settings then
    keeps them and writes the bundle. Finished members are skipped, as in a resumed run.

    Parameters
    ----------
    store_path, out_dir, config, n_splits, n_models, epochs, seed, max_stars, progress
        As for `train_ensemble`; they must be the same in every process.
    members : sequence of int
        Member indices in ``range(n_splits * n_models)``, split-major: member ``i`` is
        model ``i % n_models`` of split ``i // n_models``.
    threads : int, optional
        TensorFlow intra- and inter-op threads of this process (``configure_threads``;
        None keeps ``gaiarvs_cnn.conf.threads``).
    position : int
        Line of this process's progress bar (only position 0 shows per-epoch bars).

    Returns
    -------
    list of str
        Names of the members, all finished.

    Raises
    ------
    gaiarvs_cnn.exceptions.InputDataError
        If a member index is out of range.
    """
    jobs = _member_jobs(n_splits, n_models)
    bad = [i for i in members if not 0 <= i < len(jobs)]
    if bad:
        raise InputDataError(f"Member indices {bad} are outside 0..{len(jobs) - 1} "
                             f"({n_splits} splits x {n_models} models).")
    if threads:
        configure_threads(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _, _, x, y, splits = _prepare(store_path, out_dir, config, n_splits, n_models, epochs,
                                  seed, max_stars)
    chosen = [jobs[i] for i in sorted(set(members))]
    return list(_train_missing(x, y, splits, out_dir, config, chosen, seed, epochs, progress,
                               position))


def train_ensemble(store_path, out_dir, config: NetworkConfig = PAPER_CONFIG,
                   n_splits: int = 7, n_models: int = 4, epochs: int = 200, seed: int = 0,
                   max_stars: int | None = None, tsne: bool = True,
                   tsne_max_stars: int | None = 10_000, progress: bool = True,
                   description: str = "", executor=None) -> ModelBundle:
    """Train ``n_splits`` x ``n_models`` members and write a complete bundle to ``out_dir``.

    Parameters
    ----------
    store_path : path-like
        HDF5 store of training stars (stars without all five labels are ignored).
    out_dir : path-like
        Bundle directory; created, or resumed if it holds an unfinished training.
    config : NetworkConfig
    n_splits, n_models : int
        Random 75/25 splits and members per split (paper: 7 x 4).
    epochs : int
        Maximum epochs per member (EarlyStopping ends most earlier).
    seed : int
        Seeds the splits and every member.
    max_stars : int, optional
        Use only the first ``max_stars`` labelled stars.
    tsne : bool
        Fit and save the t-SNE reference (`gaiarvs_cnn.flags.TSNEReference`).
    tsne_max_stars : int, optional
        Random subset of training spectra for the t-SNE reference.
    progress : bool
        Show tqdm progress bars.
    description : str
        Free text stored in the metadata's training-sample description.
    executor : `~gaiarvs_cnn.production.executors.DaskExecutor` or `LocalExecutor`, optional
        Trains the unfinished members (its ``train_members``): e.g. one Dask task per
        member on a cluster (``gaiarvs-cnn train --workers N`` / ``--scheduler ADDRESS``).
        Each member gets the seed and split of a local run; a member trained with another
        number of TensorFlow threads differs only by floating-point summation order (with
        one thread in both, not at all). None trains them here, one after the other.

    Returns
    -------
    ModelBundle
        The loaded, checked bundle.

    Raises
    ------
    gaiarvs_cnn.utils.lock.RunLockedError
        If another run writes ``out_dir`` (a lock beside it, `RunLock.beside`).
    gaiarvs_cnn.exceptions.InputDataError
        If a label has no spread, or ``tsne`` and the t-SNE reference would have too few
        spectra (both checked before any member trains).
    """
    out_dir = Path(out_dir)
    with RunLock.beside(out_dir, f"model bundle {out_dir}"):
        return _train_ensemble(store_path, out_dir, config, n_splits, n_models, epochs, seed,
                               max_stars, tsne, tsne_max_stars, progress, description, executor)


def _train_ensemble(store_path, out_dir: Path, config: NetworkConfig, n_splits: int,
                    n_models: int, epochs: int, seed: int, max_stars: int | None, tsne: bool,
                    tsne_max_stars: int | None, progress: bool, description: str,
                    executor) -> ModelBundle:
    """`train_ensemble` once its run lock is held."""
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    batch, scalers, x, y, splits = _prepare(store_path, out_dir, config, n_splits, n_models,
                                            epochs, seed, max_stars)
    if tsne:  # refuse before hours of training, not after
        from ..flags.tsne import check_reference_size

        check_reference_size(min(len(batch), tsne_max_stars or len(batch)))
    jobs = _member_jobs(n_splits, n_models)
    if executor is not None:
        todo = [i for i, (s, m) in enumerate(jobs)
                if not _member_done(out_dir, member_name(s, m))]
        log.info(f"Training {len(todo)} member(s) with the {executor.name} executor.")
        executor.train_members(store_path, out_dir, todo, config, n_splits=n_splits,
                               n_models=n_models, epochs=epochs, seed=seed,
                               max_stars=max_stars)
    histories = _train_missing(x, y, splits, out_dir, config, jobs, seed, epochs, progress)
    names = [member_name(s, m) for s, m in jobs]
    val_sets = [splits[s][1] for s, _ in jobs]
    members = [read_member(out_dir / "members" / f"{n}.keras", config) for n in names]
    stacked = FusedEnsemble(members, config)(x)
    fits, stats = _residual_fits(scalers, config, stacked, val_sets, batch["labels"])
    if tsne:
        _fit_tsne(fill_nan_pixels(batch["flux"]), out_dir, seed, tsne_max_stars)
    with open_source(store_path) as store:
        store_meta = store.meta
    meta = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": software_versions(), "config": config.to_dict(),
        "ensemble": {"n_splits": n_splits, "n_models": n_models, "seed": seed,
                     "epochs_max": epochs, "validation_fraction": VALIDATION_FRACTION,
                     "members": names,
                     "member_seeds": [member_seed(seed, s, m) for s, m in jobs]},
        "training_sample": {"store": Path(store_path).name, "store_meta": store_meta,
                            "n_stars": len(batch), "description": description,
                            "rvs_snr_range": [float(np.nanmin(batch["rvs_snr"])),
                                              float(np.nanmax(batch["rvs_snr"]))],
                            "residuals": stats},
        "range_percentiles": list(RANGE_PERCENTILES),
        # the members' own fit times, whichever run trained them (a resumed training's
        # wall time covers only what was left), and this run's wall time
        "training_seconds": round(sum(histories[n].get("seconds", 0.0) for n in names), 1),
        "wall_seconds_last_run": round(time.perf_counter() - t_start, 1),
        "epochs_run": {n: histories[n]["epochs_run"] for n in names},
    }
    return ModelBundle.write(out_dir, config, scalers, _ranges(batch, config.labels), fits,
                             meta, [f"members/{n}.keras" for n in names])
