"""The ECSV catalogue: astropy's YAML header, then one line per star written by `pyarrow.csv`.

The header carries units, descriptions, UCDs and provenance in ``meta``; floats are written
in their shortest exact form.
"""
from __future__ import annotations

import io

from .writers import (
    GOOD_PLACEHOLDER,
    ROWS_PLACEHOLDER,
    PatchedHeaderWriter,
    model_table,
    register_writer,
)

__all__ = ["ECSVWriter"]


class ECSVWriter(PatchedHeaderWriter):
    """ECSV: astropy's YAML header, then one space-separated line per star."""

    format = "ecsv"

    def _open(self) -> None:
        table = model_table({**self.meta, "NSTARS": ROWS_PLACEHOLDER, "NGOOD": GOOD_PLACEHOLDER})
        buf = io.StringIO()
        table.write(buf, format="ascii.ecsv")
        self._write_header(buf.getvalue().encode("utf-8"))

    def _append(self, columns: dict, n: int) -> None:
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        # Arrow writes each float in its shortest exact form (a float32 reads back equal);
        # the flags are digits only, so no value needs quoting.
        pa_csv.write_csv(pa.table(columns), self._fh, pa_csv.WriteOptions(
            include_header=False, delimiter=" ", quoting_style="none"))

    def _close(self) -> None:
        self._patch_counts()
        self._fh.close()


register_writer("ecsv", ECSVWriter)
