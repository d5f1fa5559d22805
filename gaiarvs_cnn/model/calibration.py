"""Calibrate a bundle's uncertainties on held-out labelled stars.

`calibrate_bundle` predicts a store of labelled stars that the ensemble did not train on
(for real data: APOGEE x RVS stars outside the training sample, e.g. those at S/N < 30
that the paper's training cuts remove; for the demo bundle: the simulator's
``'calibration'`` kind), fits the calibrated running-dispersion term of every label
(`~gaiarvs_cnn.model.residuals.fit_calibrated_dispersion`, definition in
`gaiarvs_cnn.model.residuals`) and writes it into the bundle (``calibration.json``), so
that ``sigma_*`` of every later prediction puts 68 % of the stars within 1 sigma in each
bin of S/N and label. The coverage reached on the calibration stars is recorded in the
bundle's metadata and returned.

Command line: ``gaiarvs-cnn calibrate --model my_bundle/ --store heldout.h5``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy import log
from tqdm.auto import tqdm

from ..exceptions import InputDataError
from ..io.shards import open_source
from ..selection import usable_mask
from ..utils.lock import RunLock
from .bundle import ModelBundle
from .predict import INPUT_COLUMNS, predict_batch
from .residuals import (
    CALIBRATION_MIN_PER_BIN,
    CALIBRATION_SNR_EDGES,
    COVERAGE_LEVEL,
    fit_calibrated_dispersion,
)

__all__ = ["calibrate_bundle", "coverage_table"]


def coverage_table(pred: dict, reference: np.ndarray, reference_error: np.ndarray | None,
                   snr: np.ndarray, labels, snr_edges=CALIBRATION_SNR_EDGES) -> dict:
    """Fraction of stars with ``|pred - reference| < sqrt(sigma**2 + e_ref**2)`` per S/N bin.

    Parameters
    ----------
    pred : dict
        `~gaiarvs_cnn.model.predict_batch` output (``<label>``, ``sigma_<label>``).
    reference, reference_error : ndarray, shape (N, L)
        Reference labels and their errors (None: zero), columns in ``labels`` order.
    snr : ndarray
        RVS S/N of each star.
    labels : sequence of str
        Label names.
    snr_edges : sequence of float
        S/N bin edges.

    Returns
    -------
    dict
        ``{label: {"a-b": fraction, ...}}`` (keys: the S/N bin edges) and ``"n"``:
        stars per bin.
    """
    edges = list(snr_edges)
    names = [f"{a:g}-{b:g}" for a, b in zip(edges[:-1], edges[1:])]
    out: dict = {"n": {}}
    eref = np.zeros_like(reference) if reference_error is None else reference_error
    for j, lab in enumerate(labels):
        res = np.abs(np.asarray(pred[lab], float) - reference[:, j])
        tol = np.hypot(np.asarray(pred[f"sigma_{lab}"], float), eref[:, j])
        out[lab] = {}
        for name, a, b in zip(names, edges[:-1], edges[1:]):
            sel = (snr >= a) & (snr < b) & np.isfinite(res)
            out["n"][name] = int(sel.sum())
            out[lab][name] = float(np.mean(res[sel] < tol[sel])) if sel.any() else float("nan")
    return out


def calibrate_bundle(bundle_path, store_path, *, snr_edges=CALIBRATION_SNR_EDGES,
                     n_label_bins: int = 6, min_per_bin: int = CALIBRATION_MIN_PER_BIN,
                     chunk_size: int = 4096,
                     progress: bool = True) -> ModelBundle:
    """Fit the calibrated dispersion term on held-out labelled stars and add it to a bundle.

    Parameters
    ----------
    bundle_path : path-like
        A complete bundle directory (modified in place: ``calibration.json``, the
        metadata and the manifest; the ``bundle_id`` changes).
    store_path : path-like
        Store (or shard manifest) of labelled stars the bundle did not train on, with
        ``labels`` (and ``label_errors``, removed in quadrature when finite) and
        ``rvs_snr``. Stars without five finite labels or not usable by the model
        (`gaiarvs_cnn.selection.usable_mask`) are skipped.
    snr_edges : sequence of float
        S/N bins of the calibration (sparse bins are merged).
    n_label_bins, min_per_bin : int
        Label bins per S/N bin and minimum stars per bin
        (`~gaiarvs_cnn.model.residuals.fit_calibrated_dispersion`).
    chunk_size : int
        Stars predicted at a time.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    ModelBundle
        The calibrated bundle, re-loaded.

    Raises
    ------
    InputDataError
        If the store has no labelled stars, or too few to fit a label's term.
    ModelBundleError
        If ``bundle_path`` is not a complete bundle.
    gaiarvs_cnn.utils.lock.RunLockedError
        If another run writes the bundle (``train``, ``calibrate``).
    """
    with RunLock.beside(bundle_path, f"model bundle {bundle_path}"):
        return _calibrate_bundle(bundle_path, store_path, snr_edges, n_label_bins,
                                 min_per_bin, chunk_size, progress)


def _calibrate_bundle(bundle_path, store_path, snr_edges, n_label_bins: int, min_per_bin: int,
                      chunk_size: int, progress: bool) -> ModelBundle:
    """`calibrate_bundle` once the bundle's run lock is held."""
    bundle = ModelBundle.load(bundle_path)
    labels = list(bundle.config.labels)
    parts: dict[str, list] = {"pred": [], "spread": [], "ref": [], "eref": [], "snr": []}
    with open_source(store_path) as src:
        have = {s.name for s in src.specs}
        if "labels" not in have:
            raise InputDataError(f"Store {store_path} has no 'labels' column: calibration "
                                 "needs labelled stars the bundle did not train on.")
        cols = [c for c in (*INPUT_COLUMNS, "labels", "label_errors") if c in have]
        bar = tqdm(total=len(src), unit="star", desc="calibrate", disable=not progress)
        for chunk in src.iter_chunks(chunk_size, columns=cols):
            keep = (np.all(np.isfinite(chunk["labels"]), axis=1)
                    & usable_mask(chunk, bundle.config.inputs))
            bar.update(int((~keep).sum()))
            if not keep.any():
                continue
            chunk = chunk[keep]
            pred = predict_batch(bundle, chunk)
            parts["pred"].append(np.stack([pred[k] for k in labels], axis=1))
            parts["spread"].append(np.stack([pred[f"e{k}"] for k in labels], axis=1))
            parts["ref"].append(np.asarray(chunk["labels"], float))
            err = (np.asarray(chunk["label_errors"], float) if "label_errors" in chunk
                   else np.zeros((len(chunk), len(labels))))
            parts["eref"].append(np.where(np.isfinite(err), err, 0.0))
            parts["snr"].append(np.asarray(chunk["rvs_snr"], float))
            bar.update(len(chunk))
        bar.close()
        store_meta = dict(src.meta)
    if not parts["pred"]:
        raise InputDataError(f"Store {store_path} has no usable star with five finite "
                             "labels to calibrate on.")
    data = {k: np.concatenate(v) for k, v in parts.items()}
    terms = {}
    for j, lab in enumerate(labels):
        try:
            terms[lab] = fit_calibrated_dispersion(
                data["pred"][:, j], data["ref"][:, j], data["spread"][:, j], data["snr"],
                reference_error=data["eref"][:, j], snr_edges=snr_edges,
                n_label_bins=n_label_bins, min_per_bin=min_per_bin)
        except InputDataError as exc:
            raise InputDataError(f"Cannot calibrate {lab} on {store_path}: {exc}") from None
    edges = [float(v) for v in snr_edges]
    meta = {"store": Path(store_path).name, "store_meta": store_meta,
            "n_stars": int(len(data["snr"])), "snr_edges": edges,
            "n_label_bins": n_label_bins, "min_per_bin": min_per_bin,
            "level": COVERAGE_LEVEL,
            "definition": "sigma = sqrt((k e)**2 + d**2) per (S/N, predicted label) bin: "
                          "d**2 = 68.27 % quantile of (CNN - ref)**2 - e**2 - e_ref**2 where "
                          "positive (k = 1), else d = 0 and k**2 = 68.27 % quantile of "
                          "((CNN - ref)**2 - e_ref**2) / e**2 (gaiarvs_cnn.model.residuals)"}
    # coverage reached on the calibration stars themselves (a check of the fit)
    sigma = {f"sigma_{lab}": terms[lab].sigma(data["pred"][:, j], data["spread"][:, j],
                                              data["snr"])
             for j, lab in enumerate(labels)}
    sigma.update({lab: data["pred"][:, j] for j, lab in enumerate(labels)})
    cov = coverage_table(sigma, data["ref"], data["eref"], data["snr"], labels, snr_edges)
    log.info(f"Calibrated {bundle_path} on {len(data['snr'])} stars of {store_path}; "
             "fraction within 1 sigma: "
             + ", ".join(f"{lab} {np.nanmean(list(cov[lab].values())):.3f}" for lab in labels))
    meta["coverage_on_calibration_stars"] = cov
    return ModelBundle.write_calibration(bundle, terms, meta)
