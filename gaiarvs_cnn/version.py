"""The installed version of gaiarvs-cnn (``gaiarvs_cnn.__version__``)."""
from __future__ import annotations

try:
    from ._version import version as __version__
except ImportError:  # pragma: no cover - only when running from a bare checkout
    from importlib.metadata import PackageNotFoundError, version

    try:
        __version__ = version("gaiarvs-cnn")
    except PackageNotFoundError:
        __version__ = "0.0.0"

__all__ = ["__version__"]
