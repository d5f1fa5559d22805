"""Reference surveys derived from the truth of a simulated Gaia-RVS sample.

Each kind returns an `~astropy.table.Table` in the canonical schema of
`gaiarvs_cnn.io.reference` (checked with `check_reference`), with the injected
systematic offsets and random scatter documented in ``table.meta["injected_offset"]``
and ``table.meta["injected_scatter"]`` (label -> value, physical units; the reference
value is ``truth + offset + N(0, scatter)``), so that the validation suite can check
that it recovers them.

* ``apogee``: labels with APOGEE DR17-like errors (no offset), ``aspcapflag``, ``snr``.
* ``galah``: southern stars (Dec < +10 deg) with GALAH DR3-like offsets and scatter;
  [alpha/Fe] (simulated as true [alpha/M] + offset + scatter) stored as ``alpham`` and
  ``alpha_fe``; ``snr_c3_iraf``; ``flag_sp``.
* ``seismic``: K2-GAP-like red giants (log g < 3.3) with nu_max from the scaling
  relation ``nu_max = 3090 muHz (g / g_sun) (Teff / 5777 K)^-1/2`` and 2 % scatter,
  plus Delta nu from ``nu_max^0.75`` scaling.
* ``clusters``: open-cluster members (Cantat-Gaudin 2020-like), membership ``proba``,
  cluster [M/H] in ``meta["cluster_mh"]``.
* ``gsp-spec``: GSP-Spec-like (Recio-Blanco et al. 2023) uncalibrated biases
  (log g too low, [M/H] too high) for S/N >= 20, with S/N-dependent scatter and a 41-digit
  ``flags_gspspec`` string whose first 13 digits are 0 only for good stars.
* ``gsp-phot``: GSP-Phot-like (Andrae et al. 2023) values with their typical biases
  (metal-poor [M/H], over-estimated Teff scatter from extinction degeneracy).
"""
from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..constants import LABELS
from ..exceptions import InputDataError
from ..io.batch import StarBatch
from ..io.reference import REFERENCE_KINDS, check_reference
from ..io.store import Store
from .photometry import NUMAX_SUN, TEFF_SUN
from .population import CLUSTERS

__all__ = ["reference_catalog", "apogee_labels", "INJECTED", "APOGEE_ERRORS"]

#: APOGEE DR17-like label uncertainties: median and log-normal width per label.
APOGEE_ERRORS = {"teff": (35.0, 0.35), "logg": (0.035, 0.3), "mh": (0.012, 0.3),
                 "alpham": (0.014, 0.3), "feh": (0.011, 0.3)}

#: Injected (offset, scatter) per label for each kind (truth + offset + N(0, scatter)).
INJECTED = {
    "apogee": {},
    "galah": {"teff": (30.0, 90.0), "logg": (0.05, 0.15), "feh": (-0.04, 0.08),
              "alpham": (0.03, 0.06)},
    "gsp-spec": {"teff": (-40.0, 120.0), "logg": (-0.30, 0.20), "mh": (0.10, 0.12),
                 "alpham": (0.05, 0.08)},
    "gsp-phot": {"teff": (60.0, 220.0), "logg": (-0.10, 0.25), "mh": (-0.20, 0.35)},
    "seismic": {"numax": (0.0, 0.02)},
}
_TRUTH_COLUMNS = ("source_id", "true_labels", "labels", "label_errors", "rvs_snr", "dec",
                  "population", "cluster_id", "phot_g_mean_mag")


def _truth(batch_or_store) -> StarBatch:
    """Read the truth columns from a simulated batch, store or store path."""
    if isinstance(batch_or_store, StarBatch):
        batch = batch_or_store
    elif isinstance(batch_or_store, Store):
        if len(batch_or_store) == 0:
            raise InputDataError(f"{batch_or_store.path.name} is empty: no stars to derive a "
                                 "reference catalogue from.")
        cols = [c for c in _TRUTH_COLUMNS if c in batch_or_store.colnames]
        batch = StarBatch.concatenate(list(batch_or_store.iter_chunks(columns=cols)))
    elif isinstance(batch_or_store, str | Path):
        with Store.open(batch_or_store) as store:
            return _truth(store)
    else:
        raise InputDataError("reference_catalog needs a StarBatch, a Store or a store path, "
                             f"not {type(batch_or_store).__name__}.")
    if "true_labels" not in batch:
        raise InputDataError("reference_catalog needs a simulated sample (a 'true_labels' "
                             "column); real stores have no truth to derive references from.")
    return batch


def _label_columns(table: Table, truth: np.ndarray, names, injected: dict,
                   errors: dict, rng) -> None:
    """Add ``name`` and ``e_name`` columns: truth + offset + scatter, with errors."""
    for name in names:
        offset, scatter = injected.get(name, (0.0, 0.0))
        err = np.asarray(errors[name], dtype=float)
        value = truth[:, LABELS.index(name)] + offset + rng.normal(0.0, 1.0, len(table)) * np.hypot(
            scatter, err)
        table[name] = value.astype(np.float32)
        table[f"e_{name}"] = err.astype(np.float32)


def apogee_labels(truth: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """APOGEE DR17-like labels (truth + noise) and their errors, both (N, 5), LABELS order.

    Errors are log-normal around `APOGEE_ERRORS`, 50 % larger per dex below [M/H] = -0.5.
    """
    n = len(truth)
    errors = np.empty_like(truth, dtype=float)
    worse = 1.0 + 0.5 * np.clip(-truth[:, 2] - 0.5, 0, None)
    for i, name in enumerate(LABELS):
        med, width = APOGEE_ERRORS[name]
        errors[:, i] = med * rng.lognormal(0.0, width, n) * worse
    return truth + rng.normal(0.0, 1.0, truth.shape) * errors, errors


def _apogee(batch, rng) -> Table:
    truth = batch["true_labels"].astype(float)
    labels, errors = apogee_labels(truth, rng)
    if np.all(np.isfinite(batch["labels"])) and np.all(np.isfinite(batch["label_errors"])):
        labels, errors = batch["labels"], batch["label_errors"]   # a training sample
    t = Table({"source_id": batch["source_id"]})
    for i, name in enumerate(LABELS):
        t[name] = labels[:, i].astype(np.float32)
        t[f"e_{name}"] = errors[:, i].astype(np.float32)
    t["aspcapflag"] = np.where(rng.random(len(t)) < 0.03, 2**23, 0).astype(np.int64)
    t["snr"] = (batch["rvs_snr"] * 3.0).astype(np.float32)
    return t


def _galah(batch, rng) -> Table:
    sel = batch["dec"] < 10.0
    b = batch[sel]
    truth = b["true_labels"].astype(float)
    n = len(b)
    t = Table({"source_id": b["source_id"]})
    snr = np.clip(b["rvs_snr"] * rng.lognormal(0.3, 0.3, n), 10, None)
    errors = {"teff": 60 + 3000 / snr, "logg": 0.08 + 3 / snr, "feh": 0.05 + 2 / snr,
              "alpham": 0.04 + 1.5 / snr}
    # GALAH's [alpha/Fe] is compared with [alpha/M] (paper Sect. 6.3): it is simulated as the
    # true [alpha/M] + offset + scatter, so the injected offset is what the comparison measures
    _label_columns(t, truth, ("teff", "logg", "feh", "alpham"), INJECTED["galah"], errors, rng)
    t["alpha_fe"] = t["alpham"]
    t["snr_c3_iraf"] = snr.astype(np.float32)
    t["flag_sp"] = np.where(rng.random(n) < 0.05, 1, 0).astype(np.int32)
    return t


def _seismic(batch, rng) -> Table:
    truth = batch["true_labels"].astype(float)
    giant = (truth[:, 1] < 3.3) & (truth[:, 1] > 1.0) & (truth[:, 0] < 5500)
    pick = giant & (rng.random(len(batch)) < 0.5)
    tl = truth[pick]
    numax_true = NUMAX_SUN * 10 ** (tl[:, 1] - 4.438) * (tl[:, 0] / TEFF_SUN) ** -0.5
    scatter = INJECTED["seismic"]["numax"][1]
    numax = numax_true * (1 + rng.normal(0, scatter, len(tl)))
    dnu = 135.1 * (numax / NUMAX_SUN) ** 0.75 * (1 + rng.normal(0, 0.01, len(tl)))
    return Table({"source_id": batch["source_id"][pick],
                  "numax": numax.astype(np.float32),
                  "e_numax": (scatter * numax).astype(np.float32),
                  "dnu": dnu.astype(np.float32),
                  "e_dnu": (0.01 * dnu).astype(np.float32),
                  "numax_true": numax_true.astype(np.float32)})


def _clusters(batch, rng) -> Table:
    member = batch["cluster_id"] >= 0
    cid = batch["cluster_id"][member]
    names = np.asarray([c[0] for c in CLUSTERS])
    t = Table({"source_id": batch["source_id"][member], "cluster": names[cid],
               "proba": np.clip(rng.beta(8, 1, member.sum()), 0.5, 1.0).astype(np.float32),
               "age_gyr": np.asarray([c[2] for c in CLUSTERS])[cid].astype(np.float32)})
    t["age_gyr"].unit = u.Gyr
    t.meta["cluster_mh"] = {c[0]: c[1] for c in CLUSTERS}
    return t


def _gsp_flags(snr: np.ndarray, teff: np.ndarray, rng) -> np.ndarray:
    """41-character flags_gspspec strings: first 13 digits 0 for 'good' stars."""
    good = (snr >= 25) & (teff > 3900) & (rng.random(len(snr)) < 0.9)
    bad_digit = rng.integers(1, 3, len(snr))
    flags = ["0" * 13 + "0" * 28 if g else str(d) + "0" * 12 + "0" * 28
             for g, d in zip(good, bad_digit)]
    return np.asarray(flags, dtype="U41")


def _gsp_spec(batch, rng) -> Table:
    sel = batch["rvs_snr"] >= 20.0
    b = batch[sel]
    truth = b["true_labels"].astype(float).copy()
    inj = dict(INJECTED["gsp-spec"])
    snr = b["rvs_snr"].astype(float)
    scale = np.clip(50.0 / snr, 0.5, 2.5)
    errors = {"teff": 60 * scale, "logg": 0.1 * scale, "mh": 0.06 * scale,
              "alpham": 0.04 * scale}
    t = Table({"source_id": b["source_id"]})
    _label_columns(t, truth, ("teff", "logg", "mh", "alpham"), inj, errors, rng)
    t["flags_gspspec"] = _gsp_flags(snr, truth[:, 0], rng)
    return t


def _gsp_phot(batch, rng) -> Table:
    truth = batch["true_labels"].astype(float)
    t = Table({"source_id": batch["source_id"]})
    errors = {"teff": np.full(len(t), 100.0), "logg": np.full(len(t), 0.1),
              "mh": np.full(len(t), 0.2)}
    _label_columns(t, truth, ("teff", "logg", "mh"), INJECTED["gsp-phot"], errors, rng)
    return t


_BUILDERS = {"apogee": _apogee, "galah": _galah, "seismic": _seismic, "clusters": _clusters,
             "gsp-spec": _gsp_spec, "gsp-phot": _gsp_phot}


def reference_catalog(kind: str, batch_or_store, seed=0) -> Table:
    """Build a reference catalogue of ``kind`` from the truth of a simulated sample.

    Parameters
    ----------
    kind : {'apogee', 'galah', 'seismic', 'clusters', 'gsp-spec', 'gsp-phot'}
    batch_or_store : `~gaiarvs_cnn.io.batch.StarBatch`, `~gaiarvs_cnn.io.store.Store` or path
        A simulated sample (it must have the ``true_labels`` truth column).
    seed : int
        Seed of the reference survey's own noise.

    Returns
    -------
    `~astropy.table.Table`
        Canonical schema of `gaiarvs_cnn.io.reference` (units attached), with
        ``meta["injected_offset"]`` and ``meta["injected_scatter"]`` (label -> value).

    Raises
    ------
    InputDataError
        For an unknown kind or a sample without truth columns.
    """
    if kind not in _BUILDERS:
        raise InputDataError(f"Unknown reference kind {kind!r}; use one of {REFERENCE_KINDS}.")
    batch = _truth(batch_or_store)
    rng = np.random.default_rng([int(np.atleast_1d(seed)[0]), REFERENCE_KINDS.index(kind)])
    table = _BUILDERS[kind](batch, rng)
    inj = INJECTED.get(kind, {})
    table.meta["reference_kind"] = kind
    table.meta["simulated"] = True
    table.meta["injected_offset"] = {k: v[0] for k, v in inj.items()}
    table.meta["injected_scatter"] = {k: v[1] for k, v in inj.items()}
    if kind == "seismic":
        table.meta["numax_sun"] = NUMAX_SUN
        table.meta["teff_sun"] = TEFF_SUN
        table["numax_true"].unit = u.uHz
    return check_reference(table, kind)
