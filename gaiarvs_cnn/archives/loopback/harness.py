"""Pointing clients at a served loopback archive, and checking what they wrote.

`conf_values` and `write_config` point this process or a ``gaiarvs-cnn`` subprocess at
the archive; `kill_after` SIGKILLs a client at a chosen request (the kill-and-resume test
and benchmark); `store_differences` compares the stores of two runs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .services import Archive

__all__ = ["conf_values", "write_config", "kill_after", "store_differences"]


def conf_values(arc: Archive, cache_dir, *, timeout: float = 5.0, retries: int = 2) -> dict:
    """`gaiarvs_cnn.conf` items that point a client at the served ``arc``."""
    return {"gaia_tap_url": arc.url + "/esa/tap", "gaia_datalink_url": arc.url + "/esa/data",
            "aip_tap_url": arc.url + "/aip/tap", "vizier_url": arc.url + "/vizier/tap",
            "xmatch_url": arc.url + "/xmatch/api/v1/sync",
            "cache_dir": str(cache_dir), "timeout": timeout, "retries": retries}


def write_config(config_home, arc: Archive, cache_dir, **items) -> dict[str, str]:
    """Write ``<config_home>/astropy/gaiarvs_cnn.cfg`` with `conf_values` (``items`` update
    them) and return the environment variables that make a subprocess read it
    (``XDG_CONFIG_HOME``: astropy's configuration directory becomes
    ``<config_home>/astropy``)."""
    from ...utils.atomic import write_text_atomic

    values = {**conf_values(arc, cache_dir), **items}
    folder = Path(config_home) / "astropy"
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "gaiarvs_cnn.cfg",
                      "".join(f"{k} = {v}\n" for k, v in values.items()))
    return {"XDG_CONFIG_HOME": str(config_home)}


def kill_after(arc: Archive, pid: int, nth: int, path: str = "/data", **params: str) -> dict:
    """SIGKILL process ``pid`` once the ``nth`` answer to a request whose path contains
    ``path`` (and whose parameters have the given values) has been sent.

    Returns
    -------
    dict
        ``{"killed": bool, "seen": int}``, updated as requests arrive.
    """
    import os
    import signal

    state = {"killed": False, "seen": 0}

    def hook(req_path: str, req_params: dict) -> None:
        if path in req_path and all(req_params.get(k) == v for k, v in params.items()):
            with arc.lock:
                state["seen"] += 1
                fire = state["seen"] == nth
            if fire:
                os.kill(pid, signal.SIGKILL)
                state["killed"] = True

    arc.after_response = hook
    return state


def store_differences(a, b) -> list[str]:
    """How two stores differ: column names, row count, then every column compared
    element by element in store order (NaN equal to NaN), and the metadata.

    Returns
    -------
    list of str
        Empty when the stores hold the same stars, columns and values in the same order.
    """
    from ...io.store import Store

    with Store.open(a) as sa, Store.open(b) as sb:
        if sa.colnames != sb.colnames:
            return [f"columns {sa.colnames} != {sb.colnames}"]
        if len(sa) != len(sb):
            return [f"{len(sa)} != {len(sb)} stars"]
        out = []
        for ca, cb in zip(sa.iter_chunks(), sb.iter_chunks()):
            for name in sa.colnames:
                x, y = np.asarray(ca[name]), np.asarray(cb[name])
                same = (x.shape == y.shape and x.dtype == y.dtype
                        and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"))
                if not same and name not in out:
                    out.append(name)
        diffs = [f"column {name} differs" for name in out]
        if sa.meta != sb.meta:
            diffs.append(f"meta {sa.meta} != {sb.meta}")
        return diffs
