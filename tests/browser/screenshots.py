"""The README's screenshots, one per role, taken by the browser tests.

``REMS_UPDATE_SCREENSHOTS=1`` writes them into ``docs/screenshots/`` (to commit);
otherwise they go to the test's temporary folder, so every run still takes them
and a plain test run leaves the work tree unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def take(page: Any, name: str, tmp_path: Path) -> Path:
    """A full-page PNG of ``page`` named ``name``.png; returns where it was written."""
    folder = DOCS if os.environ.get("REMS_UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, "an empty screenshot"
    return path
