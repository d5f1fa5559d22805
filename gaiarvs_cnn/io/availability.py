"""Which network inputs each star has: the RVS spectrum, photometry + parallax, XP spectra.

The one home of the per-branch input tests: `gaiarvs_cnn.selection.usable_mask` (the input
cuts of a network: only its own branches) and ``store ingest`` (which networks can use the
stars it wrote) both build on `input_availability`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..constants import INPUT_NAMES, PHOT_INPUTS
from ..preprocess import usable_rvs_flux, xp_available

__all__ = ["input_availability", "network_coverage", "NETWORK_KINDS"]

#: Input combinations of the networks (name -> branches), full network first.
NETWORK_KINDS = {"rvs+phot+xp": ("rvs", "phot", "xp"), "rvs+phot": ("rvs", "phot"),
                 "rvs+xp": ("rvs", "xp"), "rvs": ("rvs",)}


def input_availability(batch, inputs: Sequence[str] = INPUT_NAMES) -> dict[str, np.ndarray]:
    """Per star and network branch: whether the star has the inputs that branch needs.

    ``rvs``: an RVS flux that passes `usable_rvs_flux`; ``phot``: finite G, BP, RP and
    parallax; ``xp``: both XP spectra (non-zero first coefficients, all 2 x 55 coefficients
    finite). Only the columns of the branches in ``inputs`` are read.

    Parameters
    ----------
    batch : `~gaiarvs_cnn.io.batch.StarBatch` or mapping
        Stars (``flux``; the `~gaiarvs_cnn.constants.PHOT_INPUTS` columns;
        ``bp_coefficients``, ``rp_coefficients``).
    inputs : sequence of str, optional
        Branches to test, a subset of `~gaiarvs_cnn.constants.INPUT_NAMES` (default all).

    Returns
    -------
    dict of str to ndarray of bool
        One boolean array per branch of ``inputs``.
    """
    out = {}
    if "rvs" in inputs:
        out["rvs"] = usable_rvs_flux(batch["flux"])
    if "phot" in inputs:
        out["phot"] = np.all([np.isfinite(np.asarray(batch[c], dtype=float))
                              for c in PHOT_INPUTS], axis=0)
    if "xp" in inputs:
        bp, rp = np.asarray(batch["bp_coefficients"]), np.asarray(batch["rp_coefficients"])
        out["xp"] = (xp_available(bp, rp) & np.isfinite(bp).all(axis=1)
                     & np.isfinite(rp).all(axis=1))
    return out


def network_coverage(batch) -> dict[str, int]:
    """How many stars of ``batch`` each kind of network (`NETWORK_KINDS`) can use.

    Parameters
    ----------
    batch : `~gaiarvs_cnn.io.batch.StarBatch` or mapping
        As for `input_availability`.

    Returns
    -------
    dict of str to int
        ``{'rvs+phot+xp': n, 'rvs+phot': n, 'rvs+xp': n, 'rvs': n}``; a star counts for
        every network whose branches it has.
    """
    have = input_availability(batch)
    return {name: int(np.all([have[b] for b in branches], axis=0).sum())
            for name, branches in NETWORK_KINDS.items()}
