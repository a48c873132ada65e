"""bench/ is not run by the test suite (figures are never asserted), but its entry
points must keep importing against the code they measure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.integration.server import ROOT


@pytest.mark.parametrize(
    "module", ["bench.run", "bench.load", "bench.profile", "bench.interop", "bench.compare", "bench.phases"]
)
def test_bench_entry_points_import(module):
    result = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()
