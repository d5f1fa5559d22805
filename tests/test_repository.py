"""The repository stands on its own: CI runs what the README says, and no file names a path
outside the repository."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_quick_start_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```")[0]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in quick_start.splitlines() if line.strip()]
    assert commands[0].startswith("pip install")
    for command in commands:
        assert command in ci, f"README quick start {command!r} is not a line of .ci/run"


def test_ci_runs_the_checks():
    ci = (ROOT / ".ci" / "run").read_text()
    for check in ("ruff check", "lint-imports", "mypy", "sphinx-build -W"):
        assert check in ci


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(),
                    reason="needs a git checkout")
@pytest.mark.parametrize("pattern", ["../" + "shared", f"{ROOT.parent}/"])  # (not spelled
# out, or this file would match)
def test_no_path_outside_the_repository(pattern):
    found = subprocess.run(["git", "grep", "-nF", pattern, "--", ".", ":!.ci"], cwd=ROOT,
                           capture_output=True, text=True)
    assert found.returncode == 1, found.stdout[:2000]
