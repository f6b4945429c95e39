"""The page's vendored chart library is the pinned npm release (scripts/vendor_uplot.py
--check, offline), the page loads only files that are there, and its script never turns data
into markup."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.unit.cli_runner import ROOT

SCRIPT = ROOT / "scripts" / "vendor_uplot.py"
UI = ROOT / "images/worker/src/wq/read/ui"


def check(vendor: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(SCRIPT), "--check", "--dir", str(vendor)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_the_vendored_files_are_the_pinned_release() -> None:
    result = check(UI / "vendor")
    assert (result.returncode, result.stderr) == (0, "")


def test_a_changed_or_missing_file_is_refused(tmp_path: Path) -> None:
    vendor = shutil.copytree(UI / "vendor", tmp_path / "vendor")
    with (vendor / "uPlot.iife.min.js").open("a") as f:
        f.write("\n")
    (vendor / "uPlot.min.css").unlink()
    result = check(vendor)
    assert result.returncode == 1
    assert "uPlot.iife.min.js: not the file of uplot@1.6.32" in result.stderr
    assert "uPlot.min.css: missing" in result.stderr


def test_the_page_loads_only_its_own_files() -> None:
    page = (UI / "index.html").read_text()
    loaded = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert len(loaded) == 4
    for path in loaded:
        assert (UI / path.removeprefix("/static/")).is_file(), path
    assert not re.search(r"<script>|<style>|\son\w+=", page)  # nothing inline


def test_the_script_never_writes_markup() -> None:
    script = (UI / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
