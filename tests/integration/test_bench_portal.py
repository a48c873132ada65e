"""bench/portal.py (the dispense check page's server time) is not run by the test suite
(figures are never asserted), but its entry point must keep importing."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.server import ROOT


def test_portal_bench_entry_point_imports():
    result = subprocess.run(
        [sys.executable, "-m", "bench.portal", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower() and "--authorizations" in result.stdout
