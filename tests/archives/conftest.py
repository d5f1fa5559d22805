"""Fixtures of the loopback archive (`gaiarvs_cnn.archives.loopback`): a running server
with its content, and a fast HTTP client."""
from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from gaiarvs_cnn import conf
from gaiarvs_cnn.archives.loopback import RealProducts, build_archive, conf_values, serve

#: The real Gaia DR3 products the loopback archive serves (tests/data/README.md).
REAL = RealProducts(Path(__file__).resolve().parents[1] / "data" / "gaia_real")


@pytest.fixture
def archive(tmp_path):
    """A running loopback archive (`loopback.build_archive`); ``gaiarvs_cnn.conf`` URLs
    point at it and the cache directory is a fresh temporary directory."""
    with serve(build_archive(REAL)) as arc, contextlib.ExitStack() as stack:
        for name, value in conf_values(arc, tmp_path / "cache").items():
            stack.enter_context(conf.set_temp(name, value))
        yield arc


@pytest.fixture
def fast_client():
    """An HTTPClient with a short timeout and near-zero backoff."""
    from gaiarvs_cnn.archives.http import HTTPClient

    return HTTPClient(timeout=5.0, retries=2, backoff=0.01)
