"""The catalogue: the 17-column data model (paper Table 2), its formats, readers and writers.

>>> from gaiarvs_cnn.catalog import open_writer, output_paths, format_of, CATALOG_FORMATS
>>> sorted(CATALOG_FORMATS)
['ecsv', 'fits', 'hats', 'parquet', 'votable']
"""
from .datamodel import (
    DEFAULT_NAME,
    FLAG_WIDTH,
    build_catalog_table,
    catalog_columns,
    datamodel,
    flag_text,
    select_good,
)
from .ecsv import ECSVWriter  # each format module registers its writer
from .fits import FITSWriter
from .hats import HATSWriter, read_hats  # registers the 'hats' format and writer
from .parquet import ParquetWriter
from .readers import read_catalog
from .registry import (
    BOTH,
    CATALOG_FORMATS,
    format_of,
    output_paths,
    parse_formats,
    register_format,
)
from .votable import VOTableWriter
from .writers import (
    WRITERS,
    CatalogWriteError,
    CatalogWriter,
    open_writer,
    register_writer,
    write_catalog,
)

__all__ = ["BOTH", "CATALOG_FORMATS", "CatalogWriteError", "CatalogWriter", "DEFAULT_NAME",
           "ECSVWriter", "FITSWriter", "FLAG_WIDTH", "HATSWriter", "ParquetWriter",
           "VOTableWriter", "WRITERS", "build_catalog_table", "catalog_columns", "datamodel",
           "flag_text", "format_of", "open_writer", "output_paths", "parse_formats",
           "read_catalog", "read_hats", "register_format", "register_writer", "select_good",
           "write_catalog"]
