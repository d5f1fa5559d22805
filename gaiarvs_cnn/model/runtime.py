"""TensorFlow for prediction, imported without Keras, and the installed versions that a
model bundle is checked against.

`import tensorflow` also imports Keras (``keras.src.optimizers``, to register Keras's
optimizers with SavedModel), about 2 of its 5 s here. Prediction never needs Keras:
bundles are read with `gaiarvs_cnn.model.member_file` and evaluated as raw TensorFlow
operations (`gaiarvs_cnn.model.predict.FusedEnsemble`). `tensorflow` imports TensorFlow
with that one eager import failing (TensorFlow catches the `ImportError` and goes on);
Keras is then imported as usual by whatever needs it later (training, gradients, members
of another layout). ``tests/model/test_runtime.py`` checks both, so a TensorFlow release
that changes this is noticed.
"""
from __future__ import annotations

import importlib
import sys
from importlib import metadata

__all__ = ["tensorflow", "installed_version"]

#: The module TensorFlow imports eagerly only for Keras's sake (TensorFlow 2.16-2.21).
_KERAS_EAGER_IMPORT = "keras.src.optimizers"


def tensorflow():
    """The `tensorflow` module, imported without Keras if neither is imported yet.

    Returns
    -------
    module
        ``tensorflow``.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    block = "keras" not in sys.modules and _KERAS_EAGER_IMPORT not in sys.modules
    if block:
        sys.modules[_KERAS_EAGER_IMPORT] = None  # importing it raises ImportError
    try:
        import tensorflow as tf
    finally:
        if block and sys.modules.get(_KERAS_EAGER_IMPORT, False) is None:
            del sys.modules[_KERAS_EAGER_IMPORT]
    return tf


def installed_version(package: str) -> str:
    """Version of an installed package, from its metadata (no import) when it has some.

    Parameters
    ----------
    package : str
        Distribution and module name (``tensorflow``, ``keras``, ``numpy``).

    Returns
    -------
    str
        The version; for a package installed under another distribution name (such as
        ``tensorflow-cpu``), its module's ``__version__``.
    """
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        module = tensorflow() if package == "tensorflow" else importlib.import_module(package)
        return str(module.__version__)
