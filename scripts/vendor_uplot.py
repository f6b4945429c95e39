#!/usr/bin/env python3
"""The chart library of the web page (`wq exporter --ui`), uPlot, vendored from npm at a pinned
version: its files in images/worker/src/wq/read/ui/vendor/, and beside them uplot.json, which
pins the version, the npm tarball's `dist.integrity` (sha512) and each file's sha512.

    scripts/vendor_uplot.py           fetch the pinned tarball with `npm pack`, check it against
                                      the pinned integrity, write the files and their hashes
    scripts/vendor_uplot.py --check   offline: the vendored files are the pinned ones
                                      (tests/unit/test_ui_vendor.py runs it)

To move to another version: set "version" and "integrity" in uplot.json from
`npm view uplot@X version dist.integrity`, then run the script with no option.
"""

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).resolve().parents[1] / "images/worker/src/wq/read/ui/vendor"
LOCK = "uplot.json"


def sri(data: bytes) -> str:
    """Subresource-integrity form of sha512, as npm's dist.integrity writes it."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def check(vendor: Path) -> list[str]:
    """What differs between the vendored files and the lock (nothing: they match)."""
    lock = json.loads((vendor / LOCK).read_text())
    problems = []
    for name, entry in lock["files"].items():
        path = vendor / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sri(path.read_bytes()) != entry["sha512"]:
            problems.append(f"{name}: not the file of {lock['package']}@{lock['version']}")
    return problems


def fetch(vendor: Path) -> None:
    """npm pack the pinned version, check its integrity, write the files and their hashes."""
    lock_path = vendor / LOCK
    lock = json.loads(lock_path.read_text())
    spec = f"{lock['package']}@{lock['version']}"
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["npm", "pack", spec, "--pack-destination", tmp, "--json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        tarball = Path(tmp) / json.loads(out)[0]["filename"]
        data = tarball.read_bytes()
        if sri(data) != lock["integrity"]:
            sys.exit(f"{spec}: the tarball's sha512 is not the pinned integrity: refusing it")
        with tarfile.open(tarball) as archive:
            for name, entry in lock["files"].items():
                member = archive.extractfile(entry["from"])
                if member is None:
                    sys.exit(f"{spec}: no file {entry['from']}")
                content = member.read()
                (vendor / name).write_bytes(content)
                entry["sha512"] = sri(content)
    lock_path.write_text(json.dumps(lock, indent=2) + "\n")
    print(f"vendored {spec} into {vendor}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="offline: verify the files")
    parser.add_argument("--dir", type=Path, default=VENDOR, help="the vendor folder")
    args = parser.parse_args()
    if args.check:
        problems = check(args.dir)
        for problem in problems:
            print(f"vendor_uplot: {problem}", file=sys.stderr)
        sys.exit(1 if problems else 0)
    fetch(args.dir)


if __name__ == "__main__":
    main()
