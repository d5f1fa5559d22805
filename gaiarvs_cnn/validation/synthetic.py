"""Seeded truth-plus-noise tables for tests, examples and figure baselines (no spectra).

`synthetic_truth` draws stars with true labels (two [alpha/M] sequences), positions,
parallaxes and RVS S/N; `synthetic_catalog` turns them into a 17-column CNN catalogue
(truth + a known bias + Gaussian noise of a known dispersion); `synthetic_reference`
gives a reference catalogue of any kind in the canonical schema with a known offset and
scatter. Because every offset and dispersion is known exactly, the statistics of
`gaiarvs_cnn.validation` can be checked against them. For spectra use the full simulator
(`gaiarvs_cnn.simulate.survey`).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..constants import LABEL_UNITS, LABELS
from ..io.batch import CORE_COLUMNS, ColumnSpec, StarBatch
from ..io.reference import check_reference
from ..io.store import Store
from .seismic import LOGG_SUN, NUMAX_SUN, TEFF_SUN

__all__ = ["synthetic_truth", "synthetic_catalog", "synthetic_reference", "synthetic_store",
           "DEFAULT_SCATTER", "TRUTH_SPECS"]

#: Default CNN dispersion around the truth (close to the paper's Sect. 3.3 values).
DEFAULT_SCATTER = {"teff": 60.0, "logg": 0.10, "mh": 0.07, "alpham": 0.03, "feh": 0.07}
_CLUSTERS = (("SynCl-A", 0.10), ("SynCl-B", -0.25), ("SynCl-C", 0.0))

#: Truth columns of a synthetic store (the names the simulated survey uses).
TRUTH_SPECS = (
    ColumnSpec("true_labels", "float32", (len(LABELS),), "", "True labels (LABELS order)"),
    ColumnSpec("population", "int8", (), "", "0 thin, 1 thick, 5 cluster member"),
    ColumnSpec("cluster_id", "int16", (), "", "Cluster index, -1 if none"),
)


def synthetic_truth(n: int = 2000, seed: int = 0, cluster_fraction: float = 0.05) -> Table:
    """Draw ``n`` stars with true labels, astrometry and RVS S/N.

    Thin-disc stars (60 %) follow the low-[alpha/M] sequence, thick-disc stars the
    high one; a fraction are members of three open clusters (same [M/H] per cluster).

    Parameters
    ----------
    n : int
        Number of stars.
    seed : int
        Random seed.
    cluster_fraction : float
        Fraction of cluster members.

    Returns
    -------
    `~astropy.table.Table`
        ``source_id, true_<label> (5), population (0 thin, 1 thick, 5 cluster), cluster,
        rvs_snr, ra, dec, parallax, parallax_error, phot_g_mean_mag``.
    """
    rng = np.random.default_rng(seed)
    thick = rng.random(n) < 0.4
    mh = np.where(thick, rng.normal(-0.5, 0.25, n), rng.normal(-0.05, 0.2, n))
    alpham = np.where(thick, 0.20 - 0.10 * (mh + 0.5), 0.02 - 0.08 * mh) + rng.normal(0, 0.02, n)
    giant = rng.random(n) < 0.7
    logg = np.where(giant, rng.uniform(1.0, 3.3, n), rng.uniform(3.8, 4.6, n))
    teff = np.where(giant, 4600 + 380 * (logg - 2.5) - 200 * mh, rng.uniform(4800, 6300, n))
    teff = teff + rng.normal(0, 50, n)
    member = rng.random(n) < cluster_fraction
    which = rng.integers(0, len(_CLUSTERS), n)
    cl_mh = np.array([c[1] for c in _CLUSTERS])[which]
    mh = np.where(member, cl_mh, mh)
    alpham = np.where(member, 0.02 - 0.08 * cl_mh, alpham)
    feh = mh - 0.1 * alpham
    t = Table()
    t["source_id"] = np.arange(1, n + 1, dtype=np.int64) * 1000 + 7
    for label, vals in zip(LABELS, (teff, logg, mh, alpham, feh)):
        t[f"true_{label}"] = vals * LABEL_UNITS[label] if label != "logg" else vals
    t["population"] = np.where(member, 5, thick.astype(int)).astype(np.int8)
    t["cluster"] = np.where(member, np.array([c[0] for c in _CLUSTERS])[which], "")
    t["rvs_snr"] = (15.0 + rng.exponential(20.0, n)).astype(np.float32)
    t["ra"] = rng.uniform(0, 360, n) * u.deg
    t["dec"] = np.degrees(np.arcsin(rng.uniform(-1, 1, n))) * u.deg
    t["parallax"] = rng.uniform(0.1, 3.0, n) * u.mas
    t["parallax_error"] = 0.02 * np.ones(n) * u.mas
    t["phot_g_mean_mag"] = rng.uniform(9.0, 14.0, n) * u.mag
    return t


def synthetic_catalog(truth: Table, seed: int = 1, bias: Mapping[str, float] | None = None,
                      scatter: Mapping[str, float] | None = None,
                      bad_fraction: float = 0.05) -> Table:
    """A 17-column CNN catalogue: truth + ``bias`` + N(0, ``scatter``) per label.

    ``sigma_<label>`` equals ``scatter`` (calibrated uncertainties), ``e<label>`` half of
    it; ``bad_fraction`` of the stars get ``flag_boundary = "10000000"``.

    Parameters
    ----------
    truth : `~astropy.table.Table`
        Output of `synthetic_truth` (or any table with ``source_id``, ``true_<label>``).
    seed : int
        Random seed of the noise.
    bias, scatter : mapping label -> float, optional
        Systematic offset and Gaussian dispersion per label (label units); default no
        bias and `DEFAULT_SCATTER`.
    bad_fraction : float
        Fraction of stars flagged outside the training limits.

    Returns
    -------
    `~astropy.table.Table`
        The 17 catalogue columns with units.
    """
    rng = np.random.default_rng(seed)
    bias = {k: 0.0 for k in LABELS} | dict(bias or {})
    scatter = DEFAULT_SCATTER | dict(scatter or {})
    n = len(truth)
    cat = Table()
    cat["source_id"] = np.asarray(truth["source_id"], dtype=np.int64)
    for label in LABELS:
        true = np.asarray(truth[f"true_{label}"], dtype=float)
        cat[label] = (true + bias[label] + rng.normal(0, scatter[label], n)).astype(np.float32)
        cat[f"e{label}"] = np.full(n, 0.5 * scatter[label], np.float32)
        cat[f"sigma_{label}"] = np.full(n, scatter[label], np.float32)
        for c in (label, f"e{label}", f"sigma_{label}"):
            cat[c].unit = LABEL_UNITS[label]
    order = ["source_id"] + [c for k in ("teff", "logg", "mh", "feh", "alpham")
                             for c in (k, f"e{k}", f"sigma_{k}")]
    cat = cat[order]
    cat["flag_boundary"] = np.where(rng.random(n) < bad_fraction, "10000000", "00000000")
    return cat


def _seismic_columns(truth: Table, rng, offset: float, scatter: float) -> dict:
    """numax from the true log g and Teff; ``offset``/``scatter`` are in log g (dex)."""
    logg = np.asarray(truth["true_logg"], float) + offset + rng.normal(0, scatter, len(truth))
    teff = np.asarray(truth["true_teff"], float)
    numax = NUMAX_SUN.value * 10 ** (logg - LOGG_SUN) * (teff / TEFF_SUN.value) ** -0.5
    return {"numax": numax * u.uHz, "e_numax": 0.01 * numax * u.uHz}


def synthetic_reference(truth: Table, kind: str, seed: int = 2,
                        offset: Mapping[str, float] | None = None,
                        scatter: Mapping[str, float] | None = None,
                        fraction: float = 0.5) -> Table:
    """A reference catalogue of ``kind`` in the canonical schema, for a random ``fraction``.

    Labels are truth + ``offset`` + N(0, ``scatter``^2 + ``e_<label>``^2) (the simulator's
    convention) with quoted errors ``e_<label>`` of half the default scatter.
    GALAH's ``alpha_fe`` equals its ``alpham`` (true [alpha/M] + offset + noise, as in the
    simulator).
    For ``seismic`` the offset/scatter of ``logg`` is imprinted on numax; ``clusters``
    lists the cluster members (``proba = 0.9``); GALAH gets ``snr_c3_iraf`` and zero
    quality flags, GSP-Spec a passing ``flags_gspspec`` for 80 % of its stars.
    ``meta["injected_offset"]`` and ``meta["injected_scatter"]`` record the inputs.

    Parameters
    ----------
    truth : `~astropy.table.Table`
        Output of `synthetic_truth`.
    kind : str
        Reference kind (`~gaiarvs_cnn.io.reference.REFERENCE_KINDS`).
    seed : int
        Random seed.
    offset, scatter : mapping label -> float, optional
        Injected offset and scatter (default 0 and half of `DEFAULT_SCATTER`).
    fraction : float
        Fraction of the stars the reference observes.

    Returns
    -------
    `~astropy.table.Table`
        In the canonical schema of ``kind``.
    """
    rng = np.random.default_rng(seed)
    offset = {k: 0.0 for k in LABELS} | dict(offset or {})
    scatter = {k: 0.5 * v for k, v in DEFAULT_SCATTER.items()} | dict(scatter or {})
    if kind == "clusters":
        sel = np.asarray(truth["population"]) == 5
        ref = Table({"source_id": np.asarray(truth["source_id"])[sel],
                     "cluster": np.asarray(truth["cluster"])[sel],
                     "proba": np.full(sel.sum(), 0.9)})
        return check_reference(ref, kind)
    sel = rng.random(len(truth)) < fraction
    sub = truth[sel]
    ref = Table({"source_id": np.asarray(sub["source_id"], dtype=np.int64)})
    if kind == "seismic":
        ref.update(_seismic_columns(sub, rng, offset["logg"], scatter["logg"]))
    else:
        labels = {"galah": ("teff", "logg", "feh", "alpham"), "gsp-phot": ("teff", "logg", "mh"),
                  "gsp-spec": ("teff", "logg", "mh", "alpham")}.get(kind, LABELS)
        for label in labels:
            true = np.asarray(sub[f"true_{label}"], dtype=float)
            err = 0.25 * DEFAULT_SCATTER[label]
            ref[label] = true + offset[label] + rng.normal(0, np.hypot(scatter[label], err),
                                                           len(sub))
            ref[f"e_{label}"] = np.full(len(sub), err)
    if kind == "galah":
        ref["alpha_fe"] = ref["alpham"]
        ref["snr_c3_iraf"] = rng.uniform(45, 120, len(sub))
        for flag in ("flag_guess", "flag_sp", "flag_fe_h", "flag_alpha_fe"):
            ref[flag] = np.zeros(len(sub), dtype=np.int32)
    if kind == "gsp-spec":
        good = rng.random(len(sub)) < 0.8
        ref["flags_gspspec"] = np.where(good, "0" * 41, "1" + "0" * 40)
    ref.meta["injected_offset"] = dict(offset)
    ref.meta["injected_scatter"] = dict(scatter)
    return check_reference(ref, kind)


def synthetic_store(path, truth: Table, overwrite: bool = False) -> Path:
    """Write the astrometry, S/N and truth of ``truth`` into an HDF5 store (no spectra).

    The store has the core columns (flux and XP left NaN) and the truth columns
    `TRUTH_SPECS`, so that `~gaiarvs_cnn.validation.crossmatch.add_store_columns` finds
    what the validation needs.

    Parameters
    ----------
    path : path-like
        New HDF5 store.
    truth : `~astropy.table.Table`
        Output of `synthetic_truth`.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
    """
    names = [c[0] for c in _CLUSTERS]
    cluster = np.asarray(truth["cluster"]).astype(str)
    cols = {"source_id": np.asarray(truth["source_id"], dtype=np.int64),
            "true_labels": np.column_stack([np.asarray(truth[f"true_{k}"], float)
                                            for k in LABELS]),
            "population": np.asarray(truth["population"]),
            "cluster_id": np.array([names.index(c) if c in names else -1 for c in cluster])}
    for name in ("ra", "dec", "parallax", "parallax_error", "rvs_snr", "phot_g_mean_mag"):
        cols[name] = np.asarray(truth[name], float)
    batch = StarBatch(cols, (*CORE_COLUMNS, *TRUTH_SPECS))
    with Store.create(path, extra_columns=TRUTH_SPECS, overwrite=overwrite,
                      meta={"source": "synthetic", "n": len(truth)}) as store:
        store.append(batch)
    return Path(path)
