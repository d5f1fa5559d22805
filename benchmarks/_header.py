"""The header every benchmark result file starts with (one home for it)."""
from __future__ import annotations

import os
import platform
from pathlib import Path

#: The repository root (recorded paths are written relative to it).
ROOT = Path(__file__).resolve().parents[1]


def recorded_path(path) -> str:
    """``path`` as a result file records it: relative to the repository root when inside it,
    otherwise only its name (a result file never names a path outside the repository).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    str
    """
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(ROOT).as_posix()
    except ValueError:
        return f"<outside the repository>/{resolved.name}"


def recorded_arguments(args) -> dict:
    """The parsed arguments of a benchmark, paths written by `recorded_path`."""
    return {k: recorded_path(v) if isinstance(v, Path) else v for k, v in vars(args).items()}


def result_header(script, script_version: int, args) -> dict:
    """Script, version, arguments, gaiarvs-cnn version, git commit, machine and load average.

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
            "arguments": recorded_arguments(args),
            "gaiarvs_cnn": __version__, **provenance(),
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                        "processor": platform.processor() or platform.machine()},
            "load_average_start": list(os.getloadavg())}


def provenance(bundle_path=None) -> dict:
    """What a result was made with: the git commit (and whether the tree was modified) and,
    for a result made with a model bundle, its name and ``bundle_id``.

    Parameters
    ----------
    bundle_path : path-like, optional
        The bundle the benchmark used (e.g. the shipped demo bundle).

    Returns
    -------
    dict
        ``git_commit``, ``uncommitted_changes`` and, with a bundle, ``bundle`` (recorded
        by `recorded_path`) and ``bundle_id``.
    """
    import subprocess

    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                     "benchmarks/*.py", "gaiarvs_cnn"], check=True,
                                    capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = None, None
    out = {"git_commit": commit, "uncommitted_changes": dirty}
    if bundle_path is not None:
        from gaiarvs_cnn.model.bundle import read_bundle_id

        out.update(bundle=recorded_path(bundle_path), bundle_id=read_bundle_id(bundle_path))
    return out
