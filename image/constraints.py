"""Rewrite image/constraints.txt from a wheelhouse: `make image-constraints`.

python image/constraints.py WHEEL_DIR  (keeps the file's leading comment block)."""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename


def main(wheel_dir: str) -> int:
    target = Path(__file__).with_name("constraints.txt")
    header = []
    for line in target.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line)
    pins = {}
    for wheel in Path(wheel_dir).glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        if name != "cnai-guard":
            pins[canonicalize_name(name)] = str(version)
    if not pins:
        print(f"no wheels in {wheel_dir}", file=sys.stderr)
        return 2
    target.write_text("\n".join([*header, *(f"{n}=={v}" for n, v in sorted(pins.items()))]) + "\n")
    print(f"{target}: {len(pins)} pins")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]) if len(sys.argv) == 2 else "usage: python image/constraints.py WHEEL_DIR")
