"""The import contracts of pyproject.toml hold, and breaking one fails the check.

``lint-imports`` runs in ``make test`` (and so in CI) before the tests; these
tests show that it would catch a framework import in ``workflows/`` or an
import cycle between services, by breaking a scratch copy of the tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(tmp_path: Path) -> Path:
    for name in ("rems_service", "workflows", "config"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.fail(f"lint-imports is not installed beside {sys.executable} (the test extra installs it)")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_tree_keeps_every_contract(tmp_path):
    result = _lint_imports(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def test_a_framework_import_in_workflows_breaks_the_check(tmp_path):
    tree = _copy_tree(tmp_path)
    with open(tree / "workflows" / "clock.py", "a") as module:
        module.write("\nimport flask  # a scratch violation\n")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "workflows.clock -> flask" in result.stdout


def test_an_import_cycle_between_services_breaks_the_check(tmp_path):
    tree = _copy_tree(tmp_path)
    # patients imports versions; making versions import patients closes a cycle.
    with open(tree / "rems_service" / "services" / "versions.py", "a") as module:
        module.write("\nfrom rems_service.services import patients  # noqa: E402,F401  a scratch cycle\n")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and ".versions -> .patients" in result.stdout


def test_a_service_importing_a_front_breaks_the_check(tmp_path):
    tree = _copy_tree(tmp_path)
    with open(tree / "rems_service" / "services" / "versions.py", "a") as module:
        module.write("\nfrom rems_service.api import decisions  # noqa: E402,F401  a scratch violation\n")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "rems_service.services is not allowed to import rems_service.api" in result.stdout
