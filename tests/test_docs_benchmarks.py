"""The documentation quotes benchmark results of the shipped bundle only.

Every ``:bench:`<file>.json:<key>``` role of the docs and the README is resolved to the
bundle the quoted result was made with (the nearest ``bundle_id`` on the key's path, see
`quoted_bundle`); a result of another bundle fails with the command that remakes it.
"""
import json
import re
from pathlib import Path

import pytest

from gaiarvs_cnn.model import demo_bundle_path
from gaiarvs_cnn.model.bundle import read_bundle_id

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ROLE = re.compile(r":bench:`([\w.-]+\.json):([^`]+)`")
#: Result sections made on purpose with a bundle that is not shipped (file, top-level key).
NOT_SHIPPED = {
    ("model.json", "snr_28_members"): "a 28-member ensemble of the demo network trained on "
                                      "30 000 stars for the accuracy table (not shipped)",
}
#: How to remake each result file with the shipped bundle.
RERUN = {
    "costmodel.json": "python benchmarks/bench_costmodel.py",
    "model.json": "python benchmarks/bench_model.py --only snr --only predict_end_to_end",
    "demo_bundle.json": "python benchmarks/bench_demo_bundle.py",
}


def _bundle_id_of(node) -> str | None:
    if not isinstance(node, dict):
        return None
    if isinstance(node.get("bundle_id"), str):
        return node["bundle_id"]
    inner = node.get("bundle")
    return inner.get("bundle_id") if isinstance(inner, dict) else None


def quoted_bundle(data: dict, key: str) -> str | None:
    """The ``bundle_id`` a quoted value was made with: the deepest one on the key's path.

    At each level of ``key`` (dotted, list indices as ``name[i]``), a dict holding
    ``bundle_id`` (or a ``bundle`` dict holding one) names the bundle of everything below.

    Parameters
    ----------
    data : dict
        A benchmark result file.
    key : str
        The quoted key, e.g. ``"snr.bins.>50.teff"``.

    Returns
    -------
    str or None
        None when no level records a bundle (a result not made with one).
    """
    found = _bundle_id_of(data)
    node = data
    for part in key.split("."):
        name, *indices = re.split(r"\[(\d+)\]", part)
        if not isinstance(node, dict) or name not in node:
            break
        node = node[name]
        for index in filter(None, indices):
            node = node[int(index)] if isinstance(node, list) else node
        found = _bundle_id_of(node) or found
    return found


def _quotes():
    for page in [*sorted((ROOT / "docs").glob("*.rst")), ROOT / "README.md"]:
        for file, key in ROLE.findall(page.read_text()):
            yield page.relative_to(ROOT).as_posix(), file, key


def test_quoted_bundle_finds_the_nearest_bundle_id():
    data = {"bundle_id": "top", "a": {"x": 1}, "b": {"bundle_id": "inner", "y": [{"z": 2}]},
            "c": {"bundle": {"bundle_id": "nested"}, "v": 3}}
    assert quoted_bundle(data, "a.x") == "top"
    assert quoted_bundle(data, "b.y[0].z") == "inner"
    assert quoted_bundle(data, "c.v") == "nested"
    assert quoted_bundle({"a": {"x": 1}}, "a.x") is None


def test_docs_quote_results_of_the_shipped_bundle_only():
    shipped = read_bundle_id(demo_bundle_path())
    stale = {}
    for page, file, key in _quotes():
        path = RESULTS / file
        if not path.exists():
            continue
        if (file, key.split(".")[0]) in NOT_SHIPPED:
            continue
        made_with = quoted_bundle(json.loads(path.read_text()), key)
        if made_with is not None and made_with != shipped:
            stale.setdefault((file, made_with), []).append(f"{page}: {key}")
    if stale:
        lines = [f"{file} (bundle {bid}, shipped {shipped}; rerun: "
                 f"{RERUN.get(file, 'its benchmark')}): {quotes[0]} and {len(quotes) - 1} more"
                 for (file, bid), quotes in stale.items()]
        pytest.fail("The docs quote results of another bundle than the shipped one:\n"
                    + "\n".join(lines))
