"""workflows/ is the pure domain: no web, ORM, queue or cache imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

FORBIDDEN = {
    "flask",
    "flask_smorest",
    "sqlmodel",
    "sqlalchemy",
    "rq",
    "redis",
    "marshmallow",
    "webargs",
    "psycopg",
    "fakeredis",
}
WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def test_no_forbidden_import_statements():
    offenders = []
    for path in WORKFLOWS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_workflows_loads_no_framework():
    code = (
        "import sys, pkgutil, importlib, workflows\n"
        "for m in pkgutil.walk_packages(workflows.__path__, 'workflows.'): importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {sorted(FORBIDDEN)!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=WORKFLOWS.parent)
    assert out.stdout.strip() == ""
