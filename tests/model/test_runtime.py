"""TensorFlow for prediction without Keras (`gaiarvs_cnn.model.runtime`): checked in fresh
processes, since the import order is the point."""
import subprocess
import sys

_WITHOUT_KERAS = """
import sys
from gaiarvs_cnn.model.runtime import tensorflow
tf = tensorflow()
assert "keras" not in sys.modules, sorted(m for m in sys.modules if m.startswith("keras"))
assert sys.modules.get("keras.src.optimizers", "absent") == "absent"
import numpy as np
from gaiarvs_cnn.model import ModelBundle, predict_batch
from gaiarvs_cnn.simulate.survey import simulate_batch
pred = predict_batch(ModelBundle.load(), simulate_batch(20, seed=3, kind="observed"))
assert np.isfinite(pred["teff"]).any()
assert "keras" not in sys.modules  # the shipped bundle predicts without Keras
import keras  # and Keras still imports and trains afterwards
from gaiarvs_cnn.model import NetworkConfig, build_model
from gaiarvs_cnn.model.network import compile_model
config = NetworkConfig(conv_filters=(2, 2, 2), rvs_dense=4, phot_dense=2, xp_dense=2,
                       head_dense=(4, 2), jit_compile=False)
model = compile_model(build_model(config), config)
from gaiarvs_cnn.model.network import input_shapes
x = {k: np.zeros((4, *s), np.float32) for k, s in input_shapes(config).items()}
model.fit(x, np.zeros((4, 5), np.float32), epochs=1, verbose=0)
print("OK", tf.__version__, keras.__version__)
"""

_VERSIONS = """
from gaiarvs_cnn.model.bundle import software_versions
import keras, numpy, tensorflow
v = software_versions()
assert v["tensorflow"] == tensorflow.__version__ and v["keras"] == keras.__version__, v
assert v["numpy"] == numpy.__version__
print("OK")
"""


def _run(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_prediction_imports_tensorflow_without_keras_and_keras_still_works_after():
    assert "OK" in _run(_WITHOUT_KERAS)


def test_bundle_versions_are_read_without_importing_and_equal_the_modules():
    assert "OK" in _run(_VERSIONS)
