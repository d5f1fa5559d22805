"""Sphinx configuration for the gaiarvs-cnn documentation.

The build is offline-safe: no intersphinx inventories are fetched, and every
generated page (API, CLI help, catalogue data model) is produced from the code
and data files of this repository at build time.
"""
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "agg")
# automodapi writes api/ afresh on every build; stale pages of renamed objects would
# otherwise remain and warn.
shutil.rmtree(DOCS / "api", ignore_errors=True)

# -- Project information: the version comes from the package metadata --------
project = "gaiarvs-cnn"
author = "gaiarvs-cnn developers"
copyright = "2026, gaiarvs-cnn developers"
try:
    release = metadata.version("gaiarvs-cnn")
except metadata.PackageNotFoundError:  # building from a checkout that is not installed
    import gaiarvs_cnn

    release = gaiarvs_cnn.__version__
version = ".".join(release.split(".")[:2])

# -- General configuration -----------------------------------------------------
extensions = [
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx_automodapi.automodapi",
    "sphinx_automodapi.smart_resolver",
    "numpydoc",
    "gaiarvs_docs",
]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
root_doc = "index"
default_role = "obj"
nitpicky = False

# automodapi / numpydoc
automodapi_toctreedirnm = "api"
automodapi_inheritance_diagram = False
automodsumm_inherited_members = False
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"gaiarvs-cnn {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "icon_links": [],
    "use_edit_page_button": False,
}
html_last_updated_fmt = None
