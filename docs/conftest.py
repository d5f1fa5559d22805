"""Set-up of the doctests of the documentation pages (pytest-doctestplus, ``--doctest-rst``).

The ``>>>`` session of a page runs in a scratch directory, after the ``$ gaiarvs-cnn ...``
commands of the page's ``console`` blocks that come before it. Those commands run exactly
as printed (no size is changed), and what they print must match the output shown on the
page (``...`` stands for omitted text, whitespace is normalised), so a page's commands,
outputs and Python session are tested together, in the page's order. `NOT_RUN` lists the
commands that are too slow for the test suite, with the reason; no later step of a page
may read their outputs.
"""
from __future__ import annotations

import doctest
import os
import re
import shlex
from pathlib import Path

import pytest

#: Console commands of the pages that the doctests do not run, and why.
NOT_RUN = {
    'pip install ".[test,docs]" && gaiarvs-cnn produce-catalog':
        "the quick start: 20 000 stars, minutes on two cores (the test suite runs the same "
        "pipeline at 300 stars in tests/production/test_pinned_output.py)",
    "gaiarvs-cnn validate --catalog catalog/gaiarvs_cnn_catalog.fits --against all":
        "validates the quick start's 20 000-star catalogue",
}

_BLOCK = re.compile(r"^\.\. code-block:: console\s*$")
_CHECK = doctest.OutputChecker()
_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def console_commands(text: str) -> list[tuple[int, str, str]]:
    """``(line number, command, expected output)`` of the console blocks of an rst page."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        if not _BLOCK.match(lines[i]):
            i += 1
            continue
        i += 1
        block = []
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
            block.append((i + 1, lines[i]))
            i += 1
        indent = min(len(t) - len(t.lstrip()) for _, t in block if t.strip())
        for lineno, line in block:
            line = line[indent:]
            if line.startswith("$ "):
                out.append([lineno, line[2:].strip(), []])
            elif out and out[-1][0] < lineno:
                out[-1][2].append(line)
    return [(n, cmd, "\n".join(expected).strip() + "\n") for n, cmd, expected in out]


def first_doctest_line(text: str) -> int:
    """Line number of the first ``>>>`` of the page (0 if none)."""
    for n, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith(">>> "):
            return n
    return 0


def run_console(command: str) -> str:
    """Run one ``gaiarvs-cnn ...`` command in-process; return what it printed."""
    from click.testing import CliRunner

    from gaiarvs_cnn.cli import main

    words = shlex.split(command)
    assert words[0] == "gaiarvs-cnn", f"not a gaiarvs-cnn command: {command}"
    result = CliRunner().invoke(main, words[1:])
    if result.exit_code != 0:
        pytest.fail(f"'{command}' exited with {result.exit_code}:\n{result.output}\n"
                    f"{result.exception!r}", pytrace=False)
    return result.output


@pytest.fixture(autouse=True)
def _page_commands(request, tmp_path, monkeypatch):
    """Before a page's doctest: chdir to a scratch directory, run the page's commands."""
    path = Path(str(request.node.path))
    if path.suffix != ".rst":
        yield
        return
    text = path.read_text()
    stop = first_doctest_line(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    for lineno, command, expected in console_commands(text):
        if lineno > stop:
            break
        if command in NOT_RUN:
            continue
        got = run_console(command)
        if not _CHECK.check_output(expected, got, _FLAGS):
            pytest.fail(f"{path.name}:{lineno}: '{command}' printed\n{got}\nbut the page "
                        f"shows\n{expected}", pytrace=False)
    yield
