"""The VOTable catalogue: version 1.3, BINARY2, the base64 stream written as the rows arrive.

Units are in the CDS syntax of VOTable 1.3 (``K``, ``[cm/s2]``, ``[-]``, which astropy
parses as ``u.K``, ``u.dex(u.cm / u.s**2)``, ``u.dex``). Provenance: ``INFO`` elements, and
the table ``DESCRIPTION`` (which ``Table.read`` puts in ``meta['description']``); the counts
are ``INFO`` elements after the data.
"""
from __future__ import annotations

import base64
import io
import re
import warnings
from collections.abc import Mapping
from xml.sax.saxutils import quoteattr

import astropy.units as u
import numpy as np
from astropy.utils.exceptions import AstropyWarning

from .datamodel import FLAG_WIDTH, binary_fields, binary_rows, catalog_columns, datamodel
from .writers import (
    GOOD_PLACEHOLDER,
    ROWS_PLACEHOLDER,
    PatchedHeaderWriter,
    meta_value,
    model_table,
    register_writer,
)

__all__ = ["VOTableWriter"]


def _cds_unit(unit: str) -> str:
    """The unit in the CDS syntax of VOTable 1.3 (``[-]`` for dex, ``[cm/s2]`` for log g)."""
    un = u.Unit(unit)
    if un == u.dex:
        return "[-]"
    return un.to_string("cds")


class VOTableWriter(PatchedHeaderWriter):
    """VOTable 1.3, BINARY2 serialization, the base64 stream written as rows arrive."""

    format = "votable"
    _OPEN_TAG = b'<STREAM encoding="base64">'

    def _open(self) -> None:
        from astropy.io.votable import from_table
        from astropy.io.votable.tree import Info

        specs = catalog_columns()
        template = model_table(flag_dtype=f"S{FLAG_WIDTH}")
        template.add_row()                 # astropy writes no DATA element for no rows
        vot = from_table(template)
        vot.version = "1.3"
        resource = vot.resources[0]
        vtab = resource.tables[0]
        vtab.name = datamodel()["name"]
        vtab.description = _description(self.meta)
        for field, spec in zip(vtab.fields, specs):
            field.ucd = spec["ucd"]
            field.description = spec["description"]
            field._unit = u.UnrecognizedUnit(_cds_unit(spec["unit"])) if spec["unit"] else None
            if spec["name"] == "flag_boundary":
                field.datatype, field.arraysize = "char", str(FLAG_WIDTH)
        for key, value in self.meta.items():
            resource.infos.append(Info(name=key, value=str(meta_value(value))))
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            vot.to_xml(buf, tabledata_format="binary2")
        # astropy wraps DESCRIPTION text over lines; keep each one on one line so that a
        # reader gets the description exactly
        text = re.sub(rb"<DESCRIPTION>\s*(.*?)\s*</DESCRIPTION>",
                      lambda m: b"<DESCRIPTION>" + b" ".join(m.group(1).split()) +
                      b"</DESCRIPTION>", buf.getvalue(), flags=re.DOTALL)
        start = text.index(self._OPEN_TAG) + len(self._OPEN_TAG)
        self._tail = text[text.index(b"</STREAM>", start):]
        self._write_header(text[:start] + b"\n")
        n_null = (len(specs) + 7) // 8
        self._dtype = np.dtype([("__null__", f"V{n_null}"), *binary_fields(specs)])
        self._carry = b""

    def _append(self, columns: dict, n: int) -> None:
        data = self._carry + binary_rows(self._dtype, columns, n).tobytes()
        cut = len(data) // 3 * 3
        self._carry = data[cut:]
        self._fh.write(base64.b64encode(data[:cut]) + b"\n")

    def _close(self) -> None:
        self._fh.write(base64.b64encode(self._carry))
        end = self._tail.index(b"</DATA>") + len(b"</DATA>")
        infos = "".join(f'\n   <INFO name={quoteattr(k)} value="{v}"/>'
                        for k, v in self.counts().items()).encode()
        self._fh.write(self._tail[:end] + infos + self._tail[end:])
        self._patch_counts()
        self._fh.close()


def _description(meta: Mapping) -> str:
    """Table description with the provenance (``Table.read`` puts it in ``meta``)."""
    items = {**meta, "NSTARS": ROWS_PLACEHOLDER, "NGOOD": GOOD_PLACEHOLDER}
    return datamodel()["title"] + ". Provenance: " + "; ".join(
        f"{k} = {meta_value(v)}" for k, v in items.items()) + "."


register_writer("votable", VOTableWriter)
