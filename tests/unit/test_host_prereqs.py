"""scripts/host-prereqs.sh (`make prereqs`, which `make test` and `make demo` run first):
silent when every program is there, and where one is missing and it cannot install, one line
naming the package to install and exit 1. Run with a PATH of chosen real programs."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "host-prereqs.sh"
# What the script itself runs, and the programs it looks for.
SHELL_TOOLS = ("bash", "sort", "id")
PROGRAMS = (
    "redis-server",
    "redis-cli",
    "redis-benchmark",
    "shellcheck",
    "chromium",
    "chromedriver",
)


def run_with(tmp_path: Path, programs: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    """The script with only these programs (and no apt-get) on its PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in (*SHELL_TOOLS, *programs):
        found = shutil.which(name)
        assert found, f"{name} is not installed: `make prereqs` installs it"
        (bin_dir / name).symlink_to(found)
    return subprocess.run(
        [str(SCRIPT)], env={"PATH": str(bin_dir)}, capture_output=True, text=True, check=False
    )


def test_silent_when_everything_is_there(tmp_path: Path) -> None:
    result = run_with(tmp_path, PROGRAMS)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_names_what_to_install_when_it_cannot(tmp_path: Path) -> None:
    result = run_with(tmp_path, ("redis-server", "redis-cli"))
    assert result.returncode == 1
    assert result.stderr == (
        "[host-prereqs] ERROR: missing chromium chromium-driver redis-tools shellcheck: install "
        "them (on Debian this script does, as root: apt-get install -y chromium chromium-driver "
        "redis-tools shellcheck)\n"
    )
