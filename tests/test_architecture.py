"""The package's layering (pyproject.toml ``[tool.importlinter]``) holds: ``lint-imports``."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_import_layers_and_no_cycles():
    exe = shutil.which("lint-imports")
    if exe is None:  # pragma: no cover - import-linter is a test dependency
        pytest.fail("import-linter is not installed: pip install '.[test]'")
    proc = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": str(Path(sys.executable).parent),
                               "HOME": str(Path.home())})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 broken" in proc.stdout, proc.stdout
