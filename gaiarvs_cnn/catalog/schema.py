"""The catalogue API under its earlier module name (imports of earlier versions keep working).

The code lives in `gaiarvs_cnn.catalog.datamodel` (the 17 columns), ``registry`` (formats and
suffixes), ``writers`` (streaming writers, `write_catalog`) and ``readers``
(`read_catalog`); import it from `gaiarvs_cnn.catalog`.
"""
from .datamodel import (  # noqa: F401
    DEFAULT_NAME,
    build_catalog_table,
    catalog_columns,
    datamodel,
    select_good,
)
from .readers import read_catalog  # noqa: F401
from .registry import CATALOG_FORMATS, FORMATS, format_of, output_paths, parse_formats  # noqa: F401
from .writers import CatalogWriteError, open_writer, write_catalog  # noqa: F401

__all__ = ["CATALOG_FORMATS", "CatalogWriteError", "DEFAULT_NAME", "FORMATS",
           "build_catalog_table", "catalog_columns", "datamodel", "format_of", "open_writer",
           "output_paths", "parse_formats", "read_catalog", "select_good", "write_catalog"]
