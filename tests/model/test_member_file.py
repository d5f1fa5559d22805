"""Member files read without Keras (gaiarvs_cnn.model.member_file) against keras.saving.

`read_member_weights` relies on how Keras 3 lays out a ``.keras`` file (see the module);
these tests compare it with ``keras.saving.load_model`` for every member of the shipped
bundle and of a freshly trained one, and check that any file in another layout is left to
Keras (None), never read with weights on the wrong layers.
"""
import io
import json
import shutil
import zipfile

import h5py
import keras
import numpy as np
import pytest

from gaiarvs_cnn.exceptions import ModelBundleError
from gaiarvs_cnn.model import ModelBundle, NetworkConfig, build_model, demo_bundle_path
from gaiarvs_cnn.model.bundle import read_bundle_config, write_manifest
from gaiarvs_cnn.model.member_file import read_member, read_member_weights
from gaiarvs_cnn.model.network import input_shapes, member_layout
from gaiarvs_cnn.model.predict import FusedEnsemble

TINY = NetworkConfig(conv_filters=(4, 4, 2), pool_after=(1, 2, 3), rvs_dense=8, phot_dense=4,
                     xp_dense=4, head_dense=(8,), jit_compile=False)


def assert_weights_equal_keras(path, config):
    """The weights read directly equal ``get_weights()`` of every layer of the Keras model."""
    weights = read_member_weights(path, config)
    assert weights is not None, path
    model = keras.saving.load_model(path, compile=False)
    with_weights = [layer for layer in model.layers if layer.get_weights()]
    assert set(weights) == {layer.name for layer in with_weights}
    for layer in with_weights:
        expected = layer.get_weights()
        assert len(weights[layer.name]) == len(expected), layer.name
        for got, want in zip(weights[layer.name], expected, strict=True):
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, want, err_msg=f"{path.name} {layer.name}")


@pytest.mark.parametrize("config", [NetworkConfig(), NetworkConfig(inputs=("rvs",)),
                                    TINY.replace(inputs=("xp", "phot")),
                                    TINY.replace(pool_after=(2,), head_dense=(8, 8, 4))],
                         ids=["paper", "rvs-only", "no-rvs", "other-sizes"])
def test_member_layout_lists_the_layers_build_model_makes(config):
    model = build_model(config)
    assert member_layout(config) == {
        layer.name: (type(layer).__name__, tuple(tuple(w.shape) for w in layer.get_weights()))
        for layer in model.layers}


@pytest.mark.slow
def test_shipped_bundle_weights_read_directly_equal_keras():
    path = demo_bundle_path()
    config = read_bundle_config(path)
    members = json.loads((path / "manifest.json").read_text())["members"]
    assert len(members) == 28
    for name in members:
        assert_weights_equal_keras(path / name, config)


def test_trained_bundle_weights_read_directly_equal_keras(tiny_bundle):
    config = read_bundle_config(tiny_bundle)
    members = sorted((tiny_bundle / "members").glob("*.keras"))
    assert len(members) == 2
    for path in members:
        assert_weights_equal_keras(path, config)


def test_member_of_another_config_is_left_to_keras(tmp_path):
    # same layer names and classes, other weight shapes
    build_model(TINY.replace(rvs_dense=6)).save(tmp_path / "m.keras")
    assert read_member_weights(tmp_path / "m.keras", TINY) is None
    assert_weights_equal_keras(tmp_path / "m.keras", TINY.replace(rvs_dense=6))


def test_member_with_an_extra_layer_is_left_to_keras(tmp_path):
    config = TINY.replace(inputs=("xp",))
    model = build_model(config)
    extra = keras.layers.Dense(5, name="extra")(model.output)
    keras.Model(model.inputs, extra).save(tmp_path / "m.keras")
    assert read_member_weights(tmp_path / "m.keras", config) is None
    assert isinstance(read_member(tmp_path / "m.keras", config), keras.Model)


def _rewrite_weights(src, dst, edit):
    """Copy the member file ``src`` to ``dst`` with ``edit(h5file)`` applied to its weights."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "model.weights.h5":
                buf = io.BytesIO(data)
                with h5py.File(buf, "a") as h5:
                    edit(h5)
                data = buf.getvalue()
            zout.writestr(item, data)


@pytest.mark.parametrize("edit", [
    # what a Keras that numbered the groups in another order would write
    lambda h5: [h5["layers/dense/vars"].attrs.__setitem__("name", "xp_dense"),
                h5["layers/dense_2/vars"].attrs.__setitem__("name", "phot_dense")],
    lambda h5: h5["layers"].move("dense_1", "dense_9"),
    lambda h5: h5["layers/dense_1/vars"].create_dataset("2", data=np.zeros(3, np.float32)),
    lambda h5: h5["vars"].create_dataset("0", data=np.zeros(3, np.float32)),
    lambda h5: h5["layers"].create_group("dense_9/vars"),
], ids=["names-swapped", "group-renamed", "extra-variable", "model-variable", "extra-group"])
def test_weights_file_in_another_layout_is_left_to_keras(tmp_path, edit):
    keras.utils.set_random_seed(0)
    build_model(TINY).save(tmp_path / "m.keras")
    assert read_member_weights(tmp_path / "m.keras", TINY) is not None
    _rewrite_weights(tmp_path / "m.keras", tmp_path / "edited.keras", edit)
    assert read_member_weights(tmp_path / "edited.keras", TINY) is None


def test_unreadable_member_is_refused_by_keras(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"not a zip archive")
    assert read_member_weights(tmp_path / "m.keras", TINY) is None
    with pytest.raises(ModelBundleError, match="Cannot load ensemble member"):
        read_member(tmp_path / "m.keras", TINY)


def test_bundle_member_in_another_layout_predicts_with_keras(tiny_bundle, tmp_path):
    path = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, path)
    config = read_bundle_config(path)
    member = sorted((path / "members").glob("*.keras"))[1]
    model = keras.saving.load_model(member, compile=False)
    extra = keras.layers.Identity(name="extra")(model.output)
    keras.Model(model.inputs, extra).save(member)
    manifest = json.loads((path / "manifest.json").read_text())
    write_manifest(path, config, manifest["members"])
    bundle = ModelBundle.load(path)
    read = bundle.prediction_members()
    assert isinstance(read[0], dict) and isinstance(read[1], keras.Model)
    ensemble = FusedEnsemble(read, config)
    assert ensemble.n_raw == 1
    rng = np.random.default_rng(0)
    x = {k: rng.random((6, *s), dtype=np.float32) for k, s in input_shapes(config).items()}
    loop = np.stack([m.predict(x, verbose=0) for m in bundle.members])
    np.testing.assert_allclose(ensemble(x), loop, rtol=1e-5, atol=1e-6)
