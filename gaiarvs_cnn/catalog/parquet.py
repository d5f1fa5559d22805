"""The Parquet catalogue: pyarrow row groups, astropy's ``table_meta_yaml`` footer metadata.

``Table.read`` restores units, descriptions and ``meta`` from the footer.
"""
from __future__ import annotations

import numpy as np
from astropy.table import meta as table_meta

from ..exceptions import InputDataError
from .datamodel import FLAG_WIDTH, catalog_columns
from .writers import CatalogWriter, model_table, register_writer

__all__ = ["ParquetWriter"]


class ParquetWriter(CatalogWriter):
    """Parquet: pyarrow row groups, astropy's ``table_meta_yaml`` footer metadata."""

    format = "parquet"
    #: Rows buffered per Parquet row group (about 10 MB of catalogue).
    row_group_rows = 1 << 17

    def _open(self) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise InputDataError(f"Writing {self.path} (Parquet) needs pyarrow: "
                                 "`pip install pyarrow`, or choose another format.") from exc
        self._pa = pa
        types = {"int64": pa.int64(), "float32": pa.float32(), "str8": pa.string()}
        self._schema = pa.schema([(s["name"], types[s["dtype"]]) for s in catalog_columns()])
        # The footer's key-value metadata is written on close (it holds the counts); without
        # a stored Arrow schema, readers take the schema metadata from it.
        self._writer = pq.ParquetWriter(self.tmp, self._schema, version="2.6",
                                        store_schema=False)
        self._buffer: list[dict] = []
        self._buffered = 0

    def _append(self, columns: dict, n: int) -> None:
        self._buffer.append(columns)
        self._buffered += n
        if self._buffered >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        arrays = [self._pa.array(np.concatenate([c[name] for c in self._buffer]),
                                 type=self._schema.field(name).type)
                  for name in self._schema.names]
        self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema))
        self._buffer, self._buffered = [], 0

    def _close(self) -> None:
        self._flush()
        table = model_table({**self.meta, **self.counts()})
        yaml = "\n".join(table_meta.get_yaml_from_table(table))
        self._writer.add_key_value_metadata({"table_meta_yaml": yaml,
                                             "table::len::flag_boundary": str(FLAG_WIDTH)})
        self._writer.close()

    def _abort(self) -> None:
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.close()


register_writer("parquet", ParquetWriter)
