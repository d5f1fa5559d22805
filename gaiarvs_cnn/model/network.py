"""Build one hybrid CNN member (Keras 3) from a `~gaiarvs_cnn.model.NetworkConfig`.

The model takes a dict of inputs named after the branches it has: ``rvs`` (N, n_pixels, 1),
``phot`` (N, 4) and ``xp`` (N, 110), all min-max scaled as by
`gaiarvs_cnn.preprocess.InputScalers.transform_inputs`, and returns the scaled labels
(N, 5) in `gaiarvs_cnn.constants.LABELS` order. `member_layout` lists the layers
`build_model` makes without building them (Keras is imported only to build or compile).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .config import PAPER_CONFIG, NetworkConfig

if TYPE_CHECKING:
    import keras

__all__ = ["build_model", "compile_model", "input_shapes", "member_layout"]


def input_shapes(config: NetworkConfig) -> dict[str, tuple[int, ...]]:
    """Per-star shape of each model input, keyed by input name.

    Parameters
    ----------
    config : NetworkConfig
        Network configuration; only the branches in ``config.inputs`` are listed.

    Returns
    -------
    dict of str to tuple of int
        ``rvs``: ``(n_pixels, 1)``; ``phot``: ``(n_phot,)``; ``xp``: ``(n_xp,)``.
    """
    shapes = {"rvs": (config.n_pixels, 1), "phot": (config.n_phot,), "xp": (config.n_xp,)}
    return {k: shapes[k] for k in config.inputs}


def member_layout(config: NetworkConfig) -> dict[str, tuple[str, tuple[tuple[int, ...], ...]]]:
    """Every layer `build_model` makes for ``config``, with the shapes of its weights.

    Parameters
    ----------
    config : NetworkConfig
        Network configuration.

    Returns
    -------
    dict of str to (str, tuple of tuple of int)
        Layer name -> (Keras class name, shape of each of its weights in
        ``layer.get_weights()`` order: kernel, bias); ``()`` for layers without weights.
        Checked against `build_model` in ``tests/model/test_member_file.py``.
    """
    layers: dict[str, tuple[str, tuple[tuple[int, ...], ...]]] = {
        k: ("InputLayer", ()) for k in input_shapes(config)}

    def dense(name: str, n_in: int, width: int, act: bool = True) -> int:
        layers[name] = ("Dense", ((n_in, width), (width,)))
        if act:
            layers[f"{name}_act"] = ("LeakyReLU", ())
        return width

    widths = []
    if "phot" in config.inputs:
        widths.append(dense("phot_dense", config.n_phot, config.phot_dense))
    if "rvs" in config.inputs:
        for i, (_, channels, filters) in enumerate(config.conv_layers(), start=1):
            layers[f"rvs_conv{i}"] = ("Conv1D", ((config.kernel_size, channels, filters),
                                                 (filters,)))
            layers[f"rvs_conv{i}_act"] = ("LeakyReLU", ())
            if i in config.pool_after:
                layers[f"rvs_pool{i}"] = ("MaxPooling1D", ())
        layers["rvs_flatten"] = ("Flatten", ())
        widths.append(dense("rvs_dense", config.rvs_length_after_convolutions()
                            * config.conv_filters[-1], config.rvs_dense))
    if "xp" in config.inputs:
        widths.append(dense("xp_dense", config.n_xp, config.xp_dense))
    if len(widths) > 1:
        layers["merge"] = ("Concatenate", ())
    n = sum(widths)
    for i, width in enumerate(config.head_dense, start=1):
        n = dense(f"head_dense{i}", n, width)
    dense("labels", n, len(config.labels), act=False)
    return layers


def _dense(x, width: int, config: NetworkConfig, name: str):
    import keras

    x = keras.layers.Dense(width, name=name)(x)
    return keras.layers.LeakyReLU(negative_slope=config.leaky_slope, name=f"{name}_act")(x)


def _rvs_branch(x, config: NetworkConfig):
    import keras

    for i, filters in enumerate(config.conv_filters, start=1):
        x = keras.layers.Conv1D(filters, config.kernel_size, name=f"rvs_conv{i}")(x)
        x = keras.layers.LeakyReLU(negative_slope=config.leaky_slope,
                                   name=f"rvs_conv{i}_act")(x)
        if i in config.pool_after:
            x = keras.layers.MaxPooling1D(config.pool_size, name=f"rvs_pool{i}")(x)
    x = keras.layers.Flatten(name="rvs_flatten")(x)
    return _dense(x, config.rvs_dense, config, "rvs_dense")


def build_model(config: NetworkConfig = PAPER_CONFIG, name: str = "hybrid_cnn") -> keras.Model:
    """Return an uncompiled hybrid CNN for ``config``.

    Parameters
    ----------
    config : NetworkConfig
        Sizes, branches and activations.
    name : str
        Keras model name.

    Returns
    -------
    keras.Model
        Inputs: dict keyed by ``config.inputs``; output: (N, len(config.labels)) scaled labels.

    Examples
    --------
    >>> from gaiarvs_cnn.model import NetworkConfig, build_model
    >>> build_model(NetworkConfig()).output.shape
    (None, 5)
    """
    import keras

    shapes = input_shapes(config)
    inputs = {k: keras.Input(shape=s, name=k) for k, s in shapes.items()}
    branches = []
    # Concatenation order of the paper's Fig. 6: photometry, RVS, XP.
    if "phot" in inputs:
        branches.append(_dense(inputs["phot"], config.phot_dense, config, "phot_dense"))
    if "rvs" in inputs:
        branches.append(_rvs_branch(inputs["rvs"], config))
    if "xp" in inputs:
        branches.append(_dense(inputs["xp"], config.xp_dense, config, "xp_dense"))
    x = branches[0] if len(branches) == 1 else keras.layers.Concatenate(name="merge")(branches)
    for i, width in enumerate(config.head_dense, start=1):
        x = _dense(x, width, config, f"head_dense{i}")
    out = keras.layers.Dense(len(config.labels), name="labels")(x)
    return keras.Model(inputs=inputs, outputs=out, name=name)


def compile_model(model: keras.Model, config: NetworkConfig,
                  jit_compile: bool | None = None) -> keras.Model:
    """Compile with Adam (``config.learning_rate``) and the MSE loss; returns ``model``.

    Parameters
    ----------
    model : keras.Model
        Model to compile in place, e.g. from `build_model`.
    config : NetworkConfig
        Supplies the learning rate and the default of ``jit_compile``.
    jit_compile : bool or None
        Compile with XLA; None uses ``config.jit_compile``.

    Returns
    -------
    keras.Model
        The same ``model``, compiled.
    """
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate),
                  loss="mse",
                  jit_compile=config.jit_compile if jit_compile is None else jit_compile)
    return model
