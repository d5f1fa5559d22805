"""The header every benchmark result file starts with (one home for it)."""
from __future__ import annotations

import os
import platform
from pathlib import Path


def result_header(script, script_version: int, args) -> dict:
    """Script, version, arguments, gaiarvs-cnn version, machine and load average.

    Parameters
    ----------
    script : str or path-like
        The benchmark script (``__file__``).
    script_version : int
        Its ``SCRIPT_VERSION``.
    args : argparse.Namespace
        Its parsed arguments (paths written as strings).

    Returns
    -------
    dict
        The common keys of a ``benchmarks/results/*.json`` file.
    """
    from gaiarvs_cnn import __version__

    return {"script": Path(script).name, "script_version": script_version,
            "arguments": {k: str(v) if isinstance(v, Path) else v
                          for k, v in vars(args).items()},
            "gaiarvs_cnn": __version__,
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                        "processor": platform.processor() or platform.machine()},
            "load_average_start": list(os.getloadavg())}
