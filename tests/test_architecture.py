"""The package's layering (pyproject.toml ``[tool.importlinter]``) holds: ``lint-imports``.

Runs import-linter in a subprocess with this checkout first on ``sys.path``, so that the
package checked is the one under test (also in a worktree or a clean clone).
"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
RUN = ("import sys; from importlinter.cli import lint_imports; "
       "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))")


def test_import_layers_and_no_cycles():
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    proc = subprocess.run([sys.executable, "-c", RUN, str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 2 kept, 0 broken." in proc.stdout, proc.stdout
