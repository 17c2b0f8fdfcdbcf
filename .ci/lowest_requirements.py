"""Print the project's requirements pinned to the lowest versions pyproject.toml declares.

``>=X`` becomes ``==X`` for the core dependencies and the extras named on the command
line (default: data, plots, test), so CI can test exactly the oldest versions the
package promises to work with. Requirements pinned already (``==``) are kept;
``--skip NAME`` leaves a package out (PyTorch, whose tests need its CPU build).
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path


def lowest(requirement: str) -> str:
    name, spec = re.match(r"\s*([A-Za-z0-9_.\-\[\]]+)\s*(.*)", requirement).groups()
    low = re.search(r">=\s*([^,\s]+)", spec)
    if low:
        return f"{name}=={low.group(1)}"
    if "==" in spec:
        return f"{name}{spec.strip()}"
    raise SystemExit(f"{requirement!r} declares no lowest version (>=): add one")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("extras", nargs="*", default=["data", "plots", "test"])
    ap.add_argument("--skip", action="append", default=[])
    args = ap.parse_args()
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())[
        "project"
    ]
    reqs = list(project["dependencies"])
    for extra in args.extras:
        reqs += project["optional-dependencies"][extra]
    seen = set()
    for r in reqs:
        pinned = lowest(r)
        name = pinned.split("==")[0].lower()
        if name in seen or name in {s.lower() for s in args.skip}:
            continue
        seen.add(name)
        print(pinned)


if __name__ == "__main__":
    main()
