"""A saved ensemble member (``members/*.keras``): its weights read directly, or the Keras model.

Prediction needs only each member's weights (`gaiarvs_cnn.model.predict.FusedEnsemble`
evaluates them as raw TensorFlow operations), and deserialising 28 Keras models costs
seconds. `read_member_weights` therefore reads the weights of a member built by
`~gaiarvs_cnn.model.network.build_model` straight from the file, a zip archive holding
``config.json`` (the Keras model config) and ``model.weights.h5``, in which Keras 3 stores
a layer's variables under ``layers/<snake-case class name>[_<k>]/vars/<i>`` (the k-th
layer of that class in the config's layer order, counted from 0, with no suffix for the
first) and the layer's own name as the ``name`` attribute of that ``vars`` group.

Anything that is not exactly that layout for the bundle's `NetworkConfig` (another
architecture, another layer count, name or weight shape, other dtypes, a missing or
extra group, a file Keras wrote differently) makes it return None; the caller then loads
the member with Keras (`load_member`), so weights are never assigned to the wrong layer.
``tests/model/test_member_file.py`` compares both ways of reading every member of the
shipped bundle and of a freshly trained one; the Keras versions whose layout has been
checked are bounded in ``pyproject.toml``.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
from astropy import log

from ..exceptions import ModelBundleError
from .config import NetworkConfig
from .network import input_shapes, member_layout

__all__ = ["read_member_weights", "load_member", "read_member"]

#: Archive entries of a Keras 3 ``.keras`` file.
CONFIG_ENTRY = "config.json"
WEIGHTS_ENTRY = "model.weights.h5"


def _snake_case(name: str) -> str:
    """Keras's name of a layer class in the weights file (``LeakyReLU`` -> ``leaky_re_lu``)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _weight_paths(layers: list[dict]) -> dict[str, str]:
    """Layer name -> its group in ``model.weights.h5``, from the config's layer list."""
    used: dict[str, int] = {}
    paths = {}
    for layer in layers:
        base = _snake_case(layer["class_name"])
        used[base] = used.get(base, -1) + 1
        paths[layer["config"]["name"]] = (f"layers/{base}" if used[base] == 0
                                          else f"layers/{base}_{used[base]}")
    return paths


class _OtherLayout(Exception):
    """The file is not a `build_model` member in the layout read here (message: why)."""


def _read_weights(archive: zipfile.ZipFile, config: NetworkConfig) -> dict:
    """Weights by layer name of a `build_model` member of ``config`` (raises `_OtherLayout`)."""
    import h5py

    if not {CONFIG_ENTRY, WEIGHTS_ENTRY} <= set(archive.namelist()):
        raise _OtherLayout(f"no {CONFIG_ENTRY} and {WEIGHTS_ENTRY}")
    model = json.loads(archive.read(CONFIG_ENTRY))
    if model.get("class_name") != "Functional":
        raise _OtherLayout(f"a {model.get('class_name')} model, not a Functional one")
    layers = model["config"]["layers"]
    expected = member_layout(config)
    got = {la["config"]["name"]: la["class_name"] for la in layers}
    if len(got) != len(layers) or got != {k: cls for k, (cls, _) in expected.items()}:
        raise _OtherLayout("other layers than build_model makes for the bundle's config")
    shapes = input_shapes(config)
    for la in layers:
        if la["class_name"] == "InputLayer":
            batch_shape = la["config"].get("batch_shape") or [None]
            if tuple(batch_shape[1:]) != shapes[la["config"]["name"]]:
                raise _OtherLayout(f"input {la['config']['name']} of shape {batch_shape[1:]}")
    paths = _weight_paths(layers)
    weights: dict[str, list[np.ndarray]] = {}
    with h5py.File(io.BytesIO(archive.read(WEIGHTS_ENTRY)), "r") as h5:
        if "layers" not in h5 or set(h5["layers"]) != {p.split("/")[1] for p in paths.values()}:
            raise _OtherLayout("other weight groups than the config's layers")
        if len(h5.get("vars", ())):
            raise _OtherLayout("model-level variables")
        for name, path in paths.items():
            group = h5[path].get("vars")
            if not isinstance(group, h5py.Group) or group.attrs.get("name") != name:
                raise _OtherLayout(f"group {path} is not named {name}")
            want = expected[name][1]
            if set(group) != {str(i) for i in range(len(want))}:
                raise _OtherLayout(f"{len(group)} variable(s) of {name}, not {len(want)}")
            values = [group[str(i)] for i in range(len(want))]
            if any(not isinstance(v, h5py.Dataset) or v.dtype != np.float32
                   or tuple(v.shape) != s or len(v.attrs) for v, s in zip(values, want)):
                raise _OtherLayout(f"variables of {name} are not float32 of shapes {want}")
            if want:
                weights[name] = [np.asarray(v[()], np.float32) for v in values]
    return weights


def read_member_weights(path, config: NetworkConfig) -> dict[str, list[np.ndarray]] | None:
    """The weights of a `build_model` member file, read without building a Keras model.

    Parameters
    ----------
    path : str or path-like
        A ``.keras`` member file.
    config : NetworkConfig
        The bundle's architecture.

    Returns
    -------
    dict of str to list of ndarray, or None
        Layer name -> its weights (as ``layer.get_weights()`` of the loaded model) for
        every layer with weights; None (with the reason in a debug message) when the file
        is not a `build_model` member of ``config`` in the layout this module reads: such
        a member is loaded with `load_member`.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            return _read_weights(archive, config)
    except _OtherLayout as exc:
        reason = str(exc)
    except (OSError, zipfile.BadZipFile, KeyError, TypeError, ValueError,
            AttributeError) as exc:
        reason = f"unreadable ({type(exc).__name__}: {exc})"
    log.debug(f"Ensemble member {path.name} is read with Keras: {reason}.")
    return None


def load_member(path, config: NetworkConfig):
    """Load a member file as a Keras model (no code from the file is run).

    Parameters
    ----------
    path : str or path-like
        A ``.keras`` member file.
    config : NetworkConfig
        The bundle's architecture; the model's input shapes must be its `input_shapes`.

    Returns
    -------
    keras.Model

    Raises
    ------
    ModelBundleError
        If Keras cannot read the file or the model's inputs differ from the config's.
    """
    import keras

    path = Path(path)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises many types for unreadable files
        raise ModelBundleError(f"Cannot load ensemble member {path}: {exc}") from exc
    expected = input_shapes(config)
    got = {t.name.split(":")[0]: tuple(t.shape[1:]) for t in model.inputs}
    if got != expected:
        raise ModelBundleError(f"Ensemble member {path.name} has inputs {got}; the bundle "
                               f"config expects {expected}.")
    return model


def read_member(path, config: NetworkConfig):
    """What prediction needs of a member file: its weights, else its Keras model.

    Parameters
    ----------
    path : str or path-like
        A ``.keras`` member file.
    config : NetworkConfig
        The bundle's architecture.

    Returns
    -------
    dict of str to list of ndarray, or keras.Model
        `read_member_weights` of a `build_model` member in the layout read here,
        otherwise `load_member` (as `~gaiarvs_cnn.model.predict.FusedEnsemble` takes both).

    Raises
    ------
    ModelBundleError
        If the file must be loaded with Keras and cannot be (see `load_member`).
    """
    weights = read_member_weights(path, config)
    return weights if weights is not None else load_member(path, config)
