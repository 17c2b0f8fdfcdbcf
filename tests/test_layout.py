"""The package's layout: floors that import only downwards, rooms of one sitting.

The floors, ground first. A module may import its own subpackage and any floor below
its own; two subpackages on one floor (``many`` and ``teach``) know nothing of each
other. The top floor is the public surface, the command and ``jaxbp.internal``.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jaxbp"

FLOORS = (
    ("util", "_version"),
    ("nn",),
    ("grads",),
    ("training",),
    ("many", "teach"),
    ("sweeps",),
    ("top",),
)
# The top floor is one room: the public surface, the demo, the command, jaxbp.internal.
TOP = ("internal", "_demo", "cli", "__main__", "_args", "_commands_teach")
ROOM = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}


def room_of(module: str) -> str:
    """``jaxbp.nn._mlp`` -> ``nn``; ``jaxbp``, ``jaxbp.cli`` -> ``top``."""
    parts = module.split(".")
    return "top" if len(parts) == 1 or parts[1] in TOP else parts[1]


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(module: str, source: str, *, is_package: bool) -> list[tuple[int, str]]:
    """Every jaxbp module ``source`` imports, anywhere in it (functions too), by line."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("jaxbp")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "jaxbp":
                continue
            if target == "jaxbp":  # a subpackage by name, else a name of the public surface
                found += [
                    (node.lineno, f"jaxbp.{a.name}" if a.name in ROOM else "jaxbp")
                    for a in node.names
                ]
            else:
                found.append((node.lineno, target))
    return found


def violations(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """The imports of ``module`` that go up a floor or across to a sibling subpackage."""
    here = room_of(module)
    bad = []
    for line, target in imported(module, source, is_package=is_package):
        there = room_of(target)
        if there != here and ROOM[there] >= ROOM[here]:
            side = "up" if ROOM[there] > ROOM[here] else "across"
            bad.append(f"{module}:{line} imports {target} ({side}: {here} -> {there})")
    return bad


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_subpackage_is_on_a_floor():
    rooms = {room_of(module_name(p)) for p in modules()}
    assert rooms <= set(ROOM), f"not on any floor: {sorted(rooms - set(ROOM))}"
    assert set(ROOM) - rooms == set(), "a floor names a room that does not exist"
    assert all((PACKAGE / t).exists() or (PACKAGE / f"{t}.py").exists() for t in TOP)


def test_imports_go_only_down_the_floors():
    bad = []
    for p in modules():
        bad += violations(module_name(p), p.read_text(), is_package=p.name == "__init__.py")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("module", "source", "is_package"),
    [
        ("jaxbp.nn._mlp", "from ..many._many import train_many\n", False),
        ("jaxbp.nn._mlp", "def f():\n    from ..sweeps import run_sweep\n", False),
        ("jaxbp.grads._check", "import jaxbp.training._train\n", False),
        ("jaxbp.many._many", "from ..teach._steps import Problem\n", False),  # a sibling
        ("jaxbp.util", "from .. import train\n", True),
        ("jaxbp.training._train", "from jaxbp.cli import main\n", False),
    ],
)
def test_a_planted_upward_import_is_caught(module, source, is_package):
    assert violations(module, source, is_package=is_package)


def test_downward_and_same_room_imports_pass():
    ok = "from ..nn._mlp import forward\nfrom ._autodiff import autodiff_grad\nimport jax\n"
    assert violations("jaxbp.grads._check", ok) == []
    assert violations("jaxbp", "from .sweeps import run_sweep\n", is_package=True) == []


def test_experiments_import_only_public_names_or_internal():
    bad = []
    for p in sorted((ROOT / "experiments").glob("*.py")):
        for line, target in imported("experiments", p.read_text(), is_package=True):
            if any(part.startswith("_") for part in target.split(".")[1:]):
                bad.append(f"{p.name}:{line} imports {target}")
    assert not bad, "\n".join(bad)


def test_no_module_is_over_600_lines():
    long = {
        p.relative_to(ROOT): n for p in modules() if (n := len(p.read_text().splitlines())) > 600
    }
    assert not long, long
