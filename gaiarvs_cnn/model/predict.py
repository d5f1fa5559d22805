"""Ensemble prediction with uncertainties (paper Sect. 4), batch by batch or streaming a store.

For each star the label is the mean of the members' outputs (unscaled to physical units),
``e<label>`` their standard deviation (ddof=1, in physical units: the scaled spread times
the label scaler's range) and ``sigma_<label>`` the total uncertainty
(`ModelBundle.total_uncertainty`): the quadrature sum of ``e<label>`` and the bundle's
running-dispersion term at the predicted label (for a calibrated bundle, at the predicted
label and the star's RVS S/N, `~gaiarvs_cnn.model.residuals.CalibratedDispersion`).

All members run inside one compiled `tf.function` (XLA when ``config.jit_compile``): one
call per sub-batch of ``batch_size`` stars returns the (members, stars, labels) stack.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

import numpy as np
from astropy import log

from ..constants import PHOT_INPUTS, PRECISIONS, RVS_NPIX, RVS_WAVE_START, RVS_WAVE_STEP
from ..exceptions import InputDataError
from ..io.batch import StarBatch
from ..io.shards import open_source
from ..preprocess import usable_rvs_flux
from ..selection import usable_mask
from .bundle import ModelBundle
from .config import NetworkConfig
from .network import input_shapes, member_layout
from .runtime import tensorflow

__all__ = ["FusedEnsemble", "predict_batch", "predict_and_flag", "predict_store",
           "prepare_inputs", "output_keys", "usable_inputs", "INPUT_COLUMNS",
           "DEFAULT_BATCH_SIZE", "FLAG_COLUMN", "cpu_supports_bfloat16"]

#: Store columns prediction reads.
INPUT_COLUMNS = ("source_id", "flux", *PHOT_INPUTS, "bp_coefficients", "rp_coefficients",
                 "rvs_snr")
#: Input columns a batch may lack: without ``rvs_snr`` a calibrated bundle's ``sigma_*``
#: takes the largest term over S/N (`~gaiarvs_cnn.model.residuals.CalibratedDispersion`).
OPTIONAL_COLUMNS = ("rvs_snr",)
#: Stars per call of the fused ensemble function. Small enough that a member's largest
#: activation (32 x 2394 x 32 float32, 10 MB) stays in the CPU caches: the fastest of 8 to
#: 256 for the paper network (``benchmarks/bench_model.py``).
DEFAULT_BATCH_SIZE = 32
#: Name of the flag column `predict_and_flag` adds.
FLAG_COLUMN = "flag_boundary"


def output_keys(labels) -> list[str]:
    """Keys of `predict_batch`: source_id, then label, e<label>, sigma_<label> per label.

    Parameters
    ----------
    labels : iterable of str
        Label names, e.g. ``bundle.config.labels``.

    Returns
    -------
    list of str
        ``["source_id", "<label>", "e<label>", "sigma_<label>", ...]`` in label order.
    """
    return ["source_id", *[k for lab in labels for k in (lab, f"e{lab}", f"sigma_{lab}")]]


def configure_threads(threads: int | None = None) -> None:
    """Limit TensorFlow's threads (only possible before TensorFlow starts).

    Parameters
    ----------
    threads : int, optional
        Intra- and inter-op threads of this process (e.g. a training worker); a warning
        is logged if TensorFlow has already started. None applies
        ``gaiarvs_cnn.conf.threads`` (0: all cores) to the intra-op pool only, silently.
    """
    tf = tensorflow()

    from ..settings import conf

    explicit = threads is not None
    threads = int(threads if explicit else conf.threads)
    if threads <= 0:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        if explicit:
            tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow already initialised: keep its setting
        if explicit:
            log.warning(f"TensorFlow already started: cannot limit it to {threads} threads.")


#: The input cuts of every prediction: `gaiarvs_cnn.selection.usable_mask` (one home).
usable_inputs = usable_mask


def grid_slice(config: NetworkConfig) -> slice:
    """Pixels of the standard RVS grid that form the network's input grid.

    Raises
    ------
    InputDataError
        If the network's grid (``wave_start_nm``, ``wave_step_nm``, ``n_pixels``) is not a
        contiguous part of the Gaia DR3 RVS grid (846-870 nm, 0.01 nm).
    """
    step = float(RVS_WAVE_STEP.value)
    offset = (config.wave_start_nm - float(RVS_WAVE_START.value)) / step
    first = int(round(offset))
    if (abs(config.wave_step_nm - step) > 1e-9 or abs(offset - first) > 1e-6 or first < 0
            or first + config.n_pixels > RVS_NPIX):
        raise InputDataError(
            f"The model's RVS grid ({config.n_pixels} px from {config.wave_start_nm} nm, step "
            f"{config.wave_step_nm} nm) is not part of the Gaia DR3 RVS grid ({RVS_NPIX} px "
            f"from {RVS_WAVE_START}, step {RVS_WAVE_STEP}); resample the spectra or retrain.")
    return slice(first, first + config.n_pixels)


def _check_columns(batch: StarBatch) -> None:
    """Raise `InputDataError` naming a missing input column or a flux array off the RVS grid."""
    missing = [c for c in INPUT_COLUMNS if c not in batch and c not in OPTIONAL_COLUMNS]
    if missing:
        raise InputDataError(f"Input stars lack column(s) {missing} needed by the model.")
    flux = np.asarray(batch["flux"])
    if flux.ndim != 2 or flux.shape[1] != RVS_NPIX:
        raise InputDataError(f"RVS flux has shape {flux.shape}; the model reads spectra on "
                             f"the {RVS_NPIX}-pixel Gaia DR3 RVS grid.")


def prepare_inputs(bundle: ModelBundle, batch: StarBatch) -> dict[str, np.ndarray]:
    """Scaled network inputs of ``batch`` for ``bundle`` (only the branches it uses).

    Parameters
    ----------
    bundle : ModelBundle
        Supplies the input scalers and the network configuration.
    batch : `~gaiarvs_cnn.io.batch.StarBatch`
        Stars with the columns of ``INPUT_COLUMNS``; flux on the Gaia DR3 RVS grid.

    Returns
    -------
    dict of str to ndarray
        Scaled inputs keyed by ``bundle.config.inputs``; ``rvs`` is cropped to the
        network's wavelength grid, shape (N, n_pixels, 1).

    Raises
    ------
    InputDataError
        Naming a missing column, or a flux array not on the RVS grid.
    BadStarError
        Naming the first star with non-finite inputs after preprocessing.
    """
    _check_columns(batch)
    inputs = bundle.scalers.transform_inputs(batch, bundle.config.inputs)
    if "rvs" in inputs:
        inputs["rvs"] = np.ascontiguousarray(inputs["rvs"][:, grid_slice(bundle.config)])
    return inputs


def cpu_supports_bfloat16() -> bool | None:
    """Whether this CPU has bfloat16 instructions (AVX512_BF16 or AMX-BF16).

    Returns
    -------
    bool or None
        None where the CPU flags cannot be read (no ``/proc/cpuinfo``).
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), None)
    except OSError:
        return None
    if flags is None:
        return None
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_precision(precision: str) -> str:
    """``precision`` if it is one of `~gaiarvs_cnn.constants.PRECISIONS`; else an
    `InputDataError` naming them."""
    if precision not in PRECISIONS:
        raise InputDataError(f"Unknown precision {precision!r}: use one of {PRECISIONS}.")
    return precision


def _member_weights(member, config: NetworkConfig) -> dict[str, list] | None:
    """The weights of a `build_model` member by layer name, or None for another architecture.

    ``member`` is a Keras model or already such a dict (`ModelBundle.prediction_members`).
    """
    if isinstance(member, Mapping):
        return dict(member)
    layout = member_layout(config)
    got = {layer.name: (type(layer).__name__,
                        tuple(tuple(w.shape) for w in layer.get_weights()))
           for layer in member.layers}
    if len(got) != len(member.layers) or got != layout:
        return None
    return {layer.name: [np.asarray(w, np.float32) for w in layer.get_weights()]
            for layer in member.layers if layer.get_weights()}


def _member_graph(inputs: dict, weights: dict, config: NetworkConfig):
    """One member's forward pass in raw `tf.nn` operations (same operations, same order).

    Each convolution is one ``conv2d`` on a (stars, 1, pixels, channels) tensor followed by
    ``bias_add`` and ``leaky_relu``, which TensorFlow's graph optimiser fuses into one
    oneDNN convolution with post-ops (the Keras layers add the bias with a broadcast ``add``
    on a reshaped tensor, which it does not fuse); the results are the Keras model's.
    """
    tf = tensorflow()

    slope = config.leaky_slope

    def dense(h, name, act=True):
        kernel, bias = weights[name]
        z = tf.nn.bias_add(tf.matmul(h, kernel), bias)
        return tf.nn.leaky_relu(z, slope) if act else z

    branches = []
    if "phot" in inputs:
        branches.append(dense(inputs["phot"], "phot_dense"))
    if "rvs" in inputs:
        h = inputs["rvs"][:, None, :, :]
        for i in range(1, len(config.conv_filters) + 1):
            kernel, bias = weights[f"rvs_conv{i}"]
            h = tf.nn.leaky_relu(tf.nn.bias_add(tf.nn.conv2d(h, kernel[None], 1, "VALID"),
                                                bias), slope)
            if i in config.pool_after:
                h = tf.nn.max_pool2d(h, (1, config.pool_size), (1, config.pool_size), "VALID")
        n = config.rvs_length_after_convolutions() * config.conv_filters[-1]
        branches.append(dense(tf.reshape(h, (-1, n)), "rvs_dense"))
    if "xp" in inputs:
        branches.append(dense(inputs["xp"], "xp_dense"))
    x = branches[0] if len(branches) == 1 else tf.concat(branches, axis=1)
    for i in range(1, len(config.head_dense) + 1):
        x = dense(x, f"head_dense{i}")
    return dense(x, "labels", act=False)


class FusedEnsemble:
    """All members of an ensemble evaluated in one compiled `tf.function`.

    Members built by `~gaiarvs_cnn.model.network.build_model` (every bundle's) are
    rewritten as raw `tf.nn` operations on their weights (`_member_graph`): convolution,
    bias and activation then run as one oneDNN kernel, and the members' outputs equal the
    Keras models' (``tests/model/test_bundle.py``). Other Keras models are called as they
    are. Measured in ``benchmarks/bench_model.py`` (``results/model.json``).

    Parameters
    ----------
    members : list of keras.Model or dict
        Keras models, or the weights of `build_model` members by layer name (as
        `ModelBundle.prediction_members` gives them, read without Keras).
    config : NetworkConfig
    jit_compile : bool, optional
        XLA-compile the function (default ``config.jit_compile``).
    batch_size : int
        Stars per call; the last sub-batch is zero-padded so the function is compiled once.
    precision : {'float32', 'bfloat16'}
        Arithmetic of the raw members (`~gaiarvs_cnn.constants.PRECISIONS`); Keras
        models run in float32. Outputs
        are float32 either way.
    """

    def __init__(self, members, config: NetworkConfig, jit_compile: bool | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, *, precision: str = "float32"):
        tf = tensorflow()

        configure_threads()
        self.members = list(members)
        self.config = config
        self.batch_size = int(batch_size)
        self.precision = check_precision(precision)
        if self.precision == "bfloat16" and cpu_supports_bfloat16() is False:
            log.warning("This CPU has no bfloat16 instructions (AVX512_BF16 or AMX): "
                        "bfloat16 prediction is emulated and slower than float32 here.")
        dtype = tf.as_dtype(self.precision)
        signature = [{k: tf.TensorSpec((None, *s), tf.float32, name=k)
                      for k, s in input_shapes(config).items()}]
        weights = [_member_weights(m, config) for m in self.members]
        #: Members evaluated as raw operations (the others are called as Keras models).
        self.n_raw = sum(w is not None for w in weights)
        if dtype != tf.float32:
            weights = [None if w is None else
                       {k: [tf.constant(a, dtype) for a in v] for k, v in w.items()}
                       for w in weights]

        def run(inputs):
            low = {k: tf.cast(v, dtype) for k, v in inputs.items()}
            return tf.stack([m(inputs, training=False) if w is None
                             else tf.cast(_member_graph(low, w, config), tf.float32)
                             for m, w in zip(self.members, weights)])

        # autograph=False: the member loop is plain Python, unrolled at tracing
        self._fn = tf.function(run, input_signature=signature, autograph=False,
                               jit_compile=config.jit_compile if jit_compile is None
                               else jit_compile)

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Scaled outputs of every member, shape (n_members, N, n_labels), float32."""
        n = len(next(iter(inputs.values())))
        out = np.empty((len(self.members), n, len(self.config.labels)), dtype=np.float32)
        bs = self.batch_size
        for lo in range(0, n, bs):
            part = {k: v[lo:lo + bs] for k, v in inputs.items()}
            m = len(next(iter(part.values())))
            if m < bs:
                part = {k: np.concatenate([v, np.zeros((bs - m, *v.shape[1:]), v.dtype)])
                        for k, v in part.items()}
            out[:, lo:lo + m] = self._fn(part).numpy()[:, :m]
        return out


def fused(bundle: ModelBundle, precision: str = "float32") -> FusedEnsemble:
    """The bundle's (cached) `FusedEnsemble` of arithmetic ``precision``."""
    if precision not in bundle._fused:
        bundle._fused[precision] = FusedEnsemble(bundle.prediction_members(), bundle.config,
                                                 precision=precision)
    return bundle._fused[precision]


def _snr(batch: StarBatch) -> np.ndarray | None:
    """The batch's ``rvs_snr`` (None when the batch has no such column)."""
    return np.asarray(batch["rvs_snr"], float) if "rvs_snr" in batch else None


def summarise(bundle: ModelBundle, stacked: np.ndarray, source_id: np.ndarray,
              snr: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Turn member outputs (M, N, L, scaled) into labels, ``e*`` and ``sigma_*`` (physical).

    ``snr`` (the stars' RVS S/N) enters ``sigma_*`` of a calibrated bundle.
    """
    scaler = bundle.scalers.labels
    stacked = stacked.astype(np.float64)
    mean = scaler.inverse_transform(stacked.mean(axis=0))
    spread = (stacked.std(axis=0, ddof=1) if len(stacked) > 1
              else np.zeros(stacked.shape[1:]))
    err = scaler.inverse_transform_error(spread)
    out: dict[str, np.ndarray] = {"source_id": np.asarray(source_id, dtype=np.int64)}
    for j, lab in enumerate(bundle.config.labels):
        out[lab] = mean[:, j].astype(np.float32)
        out[f"e{lab}"] = err[:, j].astype(np.float32)
        out[f"sigma_{lab}"] = bundle.total_uncertainty(lab, mean[:, j], err[:, j],
                                                       snr).astype(np.float32)
    return out


def predict_batch(bundle: ModelBundle, batch: StarBatch, *, flux_checked: bool = False,
                  precision: str = "float32") -> dict[str, np.ndarray]:
    """Predict labels and uncertainties for a batch of stars.

    Parameters
    ----------
    bundle : ModelBundle
        The trained ensemble.
    batch : `~gaiarvs_cnn.io.batch.StarBatch`
        Needs source_id, flux, G, BP, RP, parallax and the BP/RP coefficients.
    flux_checked : bool, optional
        The stars already passed `~gaiarvs_cnn.preprocess.usable_rvs_flux` (catalogue
        production's cuts did it): the check is not run again.
    precision : {'float32', 'bfloat16'}, optional
        Arithmetic of the network (`~gaiarvs_cnn.constants.PRECISIONS`; bfloat16 is
        opt-in).

    Returns
    -------
    dict of str to ndarray
        ``source_id`` (int64) and, per label, ``<label>``, ``e<label>``, ``sigma_<label>``
        (float32): teff [K], logg [dex], mh, alpham, feh [dex]. Stars whose RVS flux is
        physically implausible (`~gaiarvs_cnn.preprocess.usable_rvs_flux`: absurd, infinite
        or many negative pixels) get NaN values, are counted in a log warning, and never
        affect the other stars. Catalogue production cuts every unusable star before
        predicting (`usable_inputs`).

    Raises
    ------
    InputDataError
        Naming a missing column, or a flux array not on the RVS grid.
    BadStarError
        Naming the first star with non-finite photometry, parallax or XP inputs.

    Examples
    --------
    >>> from gaiarvs_cnn.model import ModelBundle, predict_batch   # doctest: +SKIP
    >>> pred = predict_batch(ModelBundle.load(), batch)             # doctest: +SKIP
    """
    if len(batch) == 0:
        return {k: np.zeros(0, np.int64 if k == "source_id" else np.float32)
                for k in output_keys(bundle.config.labels)}
    _check_columns(batch)
    ok = (np.ones(len(batch), dtype=bool) if flux_checked
          else usable_rvs_flux(batch["flux"]))
    if ok.all():
        return summarise(bundle, fused(bundle, precision)(prepare_inputs(bundle, batch)),
                         batch["source_id"], _snr(batch))
    bad_ids = batch["source_id"][~ok]
    log.warning(f"{bad_ids.size} of {len(batch)} star(s) have an implausible RVS flux "
                "and get NaN labels: "
                f"{bad_ids[:10].tolist()}{' ...' if bad_ids.size > 10 else ''}.")
    out = {k: np.full(len(batch), np.nan, np.float32) for k in output_keys(bundle.config.labels)}
    out["source_id"] = np.asarray(batch["source_id"], dtype=np.int64)
    if ok.any():
        good = batch[ok]
        part = summarise(bundle, fused(bundle, precision)(prepare_inputs(bundle, good)),
                         good["source_id"], _snr(good))
        for key, values in part.items():
            if key != "source_id":
                out[key][ok] = values
    return out


def predict_and_flag(bundle: ModelBundle, batch: StarBatch, *, tsne: bool = True,
                     timings: dict[str, float] | None = None,
                     precision: str = "float32") -> dict[str, np.ndarray]:
    """Labels, uncertainties and ``flag_boundary`` of a batch of (usable) stars.

    The per-chunk work of catalogue production: `predict_batch`, then
    `~gaiarvs_cnn.flags.flag_boundary` with the bundle's training ranges and its own t-SNE
    reference (`ModelBundle.tsne_reference`; each star is placed independently on the
    fixed training maps, so the result does not depend on how stars are chunked).

    Parameters
    ----------
    bundle : ModelBundle
        The trained ensemble.
    batch : `~gaiarvs_cnn.io.batch.StarBatch`
        Stars passing `gaiarvs_cnn.selection.usable_mask` (their RVS flux is not checked
        again).
    tsne : bool, optional
        Test the spectra against the t-SNE reference; False (or a bundle without one)
        sets the t-SNE digit to ``"1"`` (not tested).
    timings : dict, optional
        Seconds spent are added to its ``predict`` (CNN) and ``flags`` entries.
    precision : {'float32', 'bfloat16'}, optional
        Arithmetic of the network (`~gaiarvs_cnn.constants.PRECISIONS`).

    Returns
    -------
    dict of str to ndarray
        The `predict_batch` columns and ``flag_boundary`` (``U8``).
    """
    from ..flags import flag_boundary

    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    pred = predict_batch(bundle, batch, flux_checked="rvs" in bundle.config.inputs,
                         precision=precision)
    t1 = time.perf_counter()
    ref = bundle.tsne_reference() if tsne else None
    like = (ref.training_like(batch["flux"]) if ref is not None and len(batch)
            else np.zeros(len(batch), dtype=bool))
    pred[FLAG_COLUMN] = np.asarray(flag_boundary(pred, batch, bundle.ranges, like), dtype="U8")
    timings["predict"] = timings.get("predict", 0.0) + t1 - t0
    timings["flags"] = timings.get("flags", 0.0) + time.perf_counter() - t1
    return pred


def predict_store(bundle: ModelBundle, store_or_path, chunk_size: int | None = None,
                  start: int = 0, stop: int | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Stream a store: read a chunk, predict it, yield its `predict_batch` dict.

    Only the input columns are read, so memory depends on ``chunk_size``
    (default ``gaiarvs_cnn.conf.chunk_size``), not on the number of stars.

    Parameters
    ----------
    bundle : ModelBundle
        The trained ensemble.
    store_or_path : str, path-like or store
        A star store path (opened and closed here) or an open source with
        ``iter_chunks`` (left open).
    chunk_size : int or None
        Stars per chunk; None uses ``gaiarvs_cnn.conf.chunk_size``.
    start, stop : int or None
        Row range of the store to predict (``stop=None``: to the end).

    Yields
    ------
    dict of str to ndarray
        The `predict_batch` output of each chunk, in store order.

    Raises
    ------
    InputDataError
        If the store lacks an input column (before anything is yielded).
    """
    own = not hasattr(store_or_path, "iter_chunks")
    store = open_source(store_or_path) if own else store_or_path
    try:
        store.require_columns(INPUT_COLUMNS, "by the model")
        for chunk in store.iter_chunks(chunk_size, columns=INPUT_COLUMNS, start=start,
                                       stop=stop):
            yield predict_batch(bundle, chunk)
    finally:
        if own:
            store.close()
