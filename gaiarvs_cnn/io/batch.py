"""The in-memory star container: `StarBatch`, its column specifications and the core columns.

A `StarBatch` maps column names to numpy arrays with one row per star; `CORE_COLUMNS` lists
the columns every batch and every store (`gaiarvs_cnn.io.store`) has, with their dtypes,
shapes and units. `match_ids` locates source_ids; `rows_to_batch` and `join_batches` build
batches from per-star rows and from other batches.

Examples
--------
>>> from gaiarvs_cnn.io.batch import StarBatch
>>> batch = StarBatch.empty(2)
>>> batch["source_id"][:] = [1, 2]
>>> len(batch)
2
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..constants import LABEL_UNITS, LABELS, RVS_NPIX, XP_NCOEFF
from ..exceptions import InputDataError

__all__ = ["ColumnSpec", "CORE_COLUMNS", "StarBatch", "match_ids", "rows_to_batch",
           "join_batches"]


@dataclass(frozen=True)
class ColumnSpec:
    """Shape (per star), dtype, unit and description of one store column.

    Parameters
    ----------
    name : str
        Column name (unique within a store).
    dtype : str
        Numpy dtype name of one element, e.g. ``'float32'`` or ``'int64'``.
    shape : tuple of int, optional
        Shape of the value of one star: ``()`` for a scalar (default), ``(2401,)`` for
        an RVS spectrum.
    unit : str, optional
        Unit as an astropy unit string (``'deg'``, ``'mag'``, ``'mas'``); empty for
        dimensionless values (default).
    description : str, optional
        Human-readable description, copied to the Table column.

    Examples
    --------
    >>> from gaiarvs_cnn.io.store import ColumnSpec
    >>> spec = ColumnSpec("rv_shift", "float32", (), "km / s", "Injected radial velocity")
    >>> ColumnSpec.from_dict(spec.to_dict()) == spec
    True
    """

    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    unit: str = ""
    description: str = ""

    @property
    def fill(self):
        """Missing-value fill: NaN for floats, 0 for integers, False for booleans."""
        kind = np.dtype(self.dtype).kind
        return np.nan if kind == "f" else (False if kind == "b" else 0)

    def to_dict(self) -> dict:
        """Return the specification as a JSON-serialisable dict.

        Returns
        -------
        dict
            Keys ``name``, ``dtype``, ``shape`` (list of int), ``unit`` and
            ``description``; the inverse of `from_dict`.
        """
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape),
                "unit": self.unit, "description": self.description}

    @classmethod
    def from_dict(cls, d: Mapping) -> ColumnSpec:
        """Build a specification from the output of `to_dict`.

        Parameters
        ----------
        d : mapping
            Must have ``name`` and ``dtype``; ``shape``, ``unit`` and ``description``
            are optional (default scalar, dimensionless, empty).

        Returns
        -------
        ColumnSpec
            The column specification.
        """
        return cls(d["name"], d["dtype"], tuple(d.get("shape", ())), d.get("unit", ""),
                   d.get("description", ""))


def _c(name, dtype, shape=(), unit="", description=""):
    return ColumnSpec(name, dtype, tuple(shape), unit, description)


_LABEL_UNIT_STR = ", ".join(f"{k} [{LABEL_UNITS[k]}]" for k in LABELS)

#: Columns every store has, in order.
CORE_COLUMNS: tuple[ColumnSpec, ...] = (
    _c("source_id", "int64", (), "", "Gaia DR3 source identifier"),
    _c("ra", "float64", (), "deg", "Right ascension (ICRS, epoch 2016.0)"),
    _c("dec", "float64", (), "deg", "Declination (ICRS, epoch 2016.0)"),
    _c("flux", "float32", (RVS_NPIX,), "", "Normalised RVS mean spectrum, 846-870 nm"),
    _c("flux_error", "float32", (RVS_NPIX,), "", "Uncertainty of the normalised flux"),
    _c("rvs_snr", "float32", (), "", "rvs_spec_sig_to_noise of the mean RVS spectrum"),
    _c("phot_g_mean_mag", "float32", (), "mag", "Gaia G magnitude"),
    _c("phot_bp_mean_mag", "float32", (), "mag", "Gaia G_BP magnitude"),
    _c("phot_rp_mean_mag", "float32", (), "mag", "Gaia G_RP magnitude"),
    _c("phot_g_mean_mag_error", "float32", (), "mag", "Uncertainty of G"),
    _c("phot_bp_mean_mag_error", "float32", (), "mag", "Uncertainty of G_BP"),
    _c("phot_rp_mean_mag_error", "float32", (), "mag", "Uncertainty of G_RP"),
    _c("parallax", "float32", (), "mas", "Parallax"),
    _c("parallax_error", "float32", (), "mas", "Parallax uncertainty"),
    _c("ruwe", "float32", (), "", "Renormalised unit weight error"),
    _c("bp_coefficients", "float32", (XP_NCOEFF,), "", "BP continuous coefficients"),
    _c("bp_coefficient_errors", "float32", (XP_NCOEFF,), "", "BP coefficient errors"),
    _c("rp_coefficients", "float32", (XP_NCOEFF,), "", "RP continuous coefficients"),
    _c("rp_coefficient_errors", "float32", (XP_NCOEFF,), "", "RP coefficient errors"),
    _c("labels", "float32", (len(LABELS),), "",
       f"Reference labels ({_LABEL_UNIT_STR}); NaN where unknown"),
    _c("label_errors", "float32", (len(LABELS),), "", "Uncertainties of the labels"),
)


def _specs_by_name(specs: Iterable[ColumnSpec]) -> dict[str, ColumnSpec]:
    return {s.name: s for s in specs}


class StarBatch:
    """A batch of stars: a mapping of column name to a numpy array with one row per star.

    Columns follow `CORE_COLUMNS` (plus any ``extra`` columns of the store). Missing
    values are NaN (floats). Index with a column name to get an array, or with a
    slice / integer array / boolean mask to get a sub-batch.

    Parameters
    ----------
    columns : mapping of str to array-like
        Must contain at least ``source_id``; absent core columns are filled with NaN.
    specs : sequence of `ColumnSpec`, optional
        Column specifications; default `CORE_COLUMNS`.
    """

    def __init__(self, columns: Mapping[str, np.ndarray],
                 specs: Iterable[ColumnSpec] = CORE_COLUMNS):
        if "source_id" not in columns:
            raise InputDataError("A StarBatch needs a 'source_id' column.")
        self.specs = _specs_by_name(specs)
        n = len(np.atleast_1d(columns["source_id"]))
        self._data: dict[str, np.ndarray] = {}
        for name, spec in self.specs.items():
            if name in columns:
                arr = np.asarray(columns[name], dtype=spec.dtype)
                if arr.shape != (n, *spec.shape):
                    raise InputDataError(
                        f"Column '{name}' has shape {arr.shape}, expected {(n, *spec.shape)} "
                        f"({spec.shape or 'scalar'} per star).")
            else:
                arr = np.full((n, *spec.shape), spec.fill, dtype=spec.dtype)
            self._data[name] = arr
        unknown = set(columns) - set(self.specs)
        if unknown:
            raise InputDataError(
                f"Unknown column(s) {sorted(unknown)}; declare them as extra columns.")

    @classmethod
    def empty(cls, n: int, specs: Sequence[ColumnSpec] = CORE_COLUMNS) -> StarBatch:
        """Return a batch of ``n`` stars with every value missing (source_id 0).

        Parameters
        ----------
        n : int
            Number of stars.
        specs : sequence of `ColumnSpec`, optional
            Columns of the batch; default `CORE_COLUMNS`.

        Returns
        -------
        StarBatch
            Float columns NaN, integer columns 0, boolean columns False.

        Examples
        --------
        >>> from gaiarvs_cnn.io.batch import StarBatch
        >>> batch = StarBatch.empty(3)
        >>> batch["flux"].shape
        (3, 2401)
        """
        return cls({"source_id": np.zeros(n, dtype=np.int64)}, specs)

    def __len__(self) -> int:
        return len(self._data["source_id"])

    def __contains__(self, name: str) -> bool:
        return name in self._data

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._data[key]
        if isinstance(key, int | np.integer):  # one star: keep a batch of length 1
            key = [int(key)]
        return StarBatch({k: v[key] for k, v in self._data.items()}, self.specs.values())

    def __setitem__(self, name: str, value) -> None:
        if name not in self.specs:
            raise KeyError(f"Unknown column '{name}'")
        spec = self.specs[name]
        self._data[name] = np.broadcast_to(
            np.asarray(value, dtype=spec.dtype), (len(self), *spec.shape)).copy()

    @property
    def colnames(self) -> list[str]:
        """Names of the columns, in specification order."""
        return list(self._data)

    def items(self):
        """Return the (column name, array) pairs, like ``dict.items``.

        Returns
        -------
        dict_items
            View of ``(name, ndarray)`` pairs; each array has one row per star.
        """
        return self._data.items()

    @property
    def labels(self) -> dict[str, np.ndarray]:
        """The five reference labels as a dict of 1-d arrays (physical units)."""
        return {k: self._data["labels"][:, i] for i, k in enumerate(LABELS)}

    @classmethod
    def concatenate(cls, batches: Sequence[StarBatch]) -> StarBatch:
        """Join batches with the same columns, in order.

        Parameters
        ----------
        batches : sequence of `StarBatch`
            Batches with identical column names (e.g. chunks of one store).

        Returns
        -------
        StarBatch
            All stars of ``batches``, in order.

        Raises
        ------
        InputDataError
            If ``batches`` is empty or the batches' columns differ.
        """
        if not batches:
            raise InputDataError("Nothing to concatenate.")
        names = batches[0].colnames
        for b in batches[1:]:
            if b.colnames != names:
                raise InputDataError(f"Cannot concatenate batches with columns {names} and "
                                     f"{b.colnames}.")
        specs = batches[0].specs.values()
        return cls({k: np.concatenate([b[k] for b in batches]) for k in batches[0].colnames},
                   specs)

    def to_table(self) -> Table:
        """Return the batch as an astropy Table with units and descriptions.

        Returns
        -------
        `~astropy.table.Table`
            One column per batch column (array columns stay multidimensional), with
            the units and descriptions of the column specifications;
            ``meta['label_order']`` lists the order of the ``labels`` vector.
        """
        t = Table()
        for name, arr in self._data.items():
            spec = self.specs[name]
            t[name] = arr
            t[name].unit = u.Unit(spec.unit) if spec.unit else None
            t[name].description = spec.description
        t.meta["label_order"] = list(LABELS)
        return t

    @classmethod
    def from_table(cls, table: Table, specs: Sequence[ColumnSpec] = CORE_COLUMNS) -> StarBatch:
        """Build a batch from a Table whose column names match the store's (case-insensitive).

        Quantities are converted to the store's units; missing columns become NaN.

        Parameters
        ----------
        table : `~astropy.table.Table`
            Must contain ``source_id``; columns with units are converted to the units
            of ``specs``; masked values become the column's fill value (NaN for floats).
        specs : sequence of `ColumnSpec`, optional
            Columns of the batch; default `CORE_COLUMNS`.

        Returns
        -------
        StarBatch
            Batch with one star per table row.

        Raises
        ------
        InputDataError
            If ``source_id`` is missing or a column has the wrong shape.
        """
        lower = {c.lower(): c for c in table.colnames}
        cols = {}
        for spec in specs:
            src = lower.get(spec.name.lower())
            if src is None:
                continue
            col = table[src]
            # fill masked values first: a Quantity made from a MaskedColumn drops the mask
            floating = np.dtype(spec.dtype).kind == "f"
            masked: np.ma.MaskedArray = np.ma.asarray(col, dtype=np.float64 if floating else None)
            arr = np.ma.filled(masked, spec.fill)
            if spec.unit and getattr(col, "unit", None) is not None:
                arr = (arr * u.Unit(col.unit)).to_value(spec.unit)
            cols[spec.name] = arr
        return cls(cols, specs)

    def duplicated_ids(self) -> np.ndarray:
        """Return source_ids that occur more than once in this batch.

        Returns
        -------
        ndarray of int64
            Sorted, each repeated source_id once; empty when all are unique.
        """
        ids, counts = np.unique(self._data["source_id"], return_counts=True)
        return ids[counts > 1]



def match_ids(wanted: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Locate source_ids: for each of ``wanted``, whether it is in ``ids`` and where.

    Parameters
    ----------
    wanted, ids : array of int64
        ``ids`` should hold each source_id once (the last occurrence wins otherwise).

    Returns
    -------
    found : array of bool, shape of ``wanted``
        Whether each element of ``wanted`` is in ``ids``.
    rows : array of int
        Index into ``ids`` of every found element of ``wanted``, in ``wanted`` order.
    """
    wanted, ids = np.asarray(wanted, dtype=np.int64), np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        return np.zeros(wanted.shape, dtype=bool), np.zeros(0, dtype=np.int64)
    sorter = np.argsort(ids, kind="stable")
    pos = np.clip(np.searchsorted(ids, wanted, sorter=sorter), 0, ids.size - 1)
    rows = sorter[pos]
    found = ids[rows] == wanted
    return found, rows[found]



def rows_to_batch(rows: Sequence[Mapping]) -> StarBatch:
    """Stack per-star rows (dicts of column values) into a `~gaiarvs_cnn.io.batch.StarBatch`.

    Parameters
    ----------
    rows : sequence of mapping
        One mapping per star, all with the same keys (``source_id`` among them).

    Returns
    -------
    StarBatch
        One star per row (an empty batch when ``rows`` is empty).
    """
    if not rows:
        return StarBatch.empty(0)
    return StarBatch({k: np.stack([r[k] for r in rows]) for k in rows[0]})


def join_batches(batches: Sequence[StarBatch]) -> StarBatch:
    """Concatenate batches, ignoring empty ones (an empty batch when all are empty).

    Parameters
    ----------
    batches : sequence of StarBatch
        Batches with the same columns.

    Returns
    -------
    StarBatch
    """
    batches = [b for b in batches if len(b)]
    return StarBatch.concatenate(batches) if batches else StarBatch.empty(0)


