"""The layout of tests/: test modules live in rooms (packages named after the code they test), import what they
share from tests/support and never from each other, and take the repository's paths from tests/support/paths.py."""

from __future__ import annotations

import ast
import pathlib

from tests.support.paths import REPO_ROOT, TESTS

TOP_LEVEL_ALLOWED = {"__init__.py", "conftest.py"}


def _test_modules() -> list[pathlib.Path]:
    return sorted(TESTS.rglob("test_*.py"))


def _imported_names(path: pathlib.Path) -> set[str]:
    """Every module a file imports, and every name it imports from one, as dotted names (relative ones with
    their leading dots)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            found.add(module)
            found |= {f"{module}.{a.name}" if node.module else f"{module}{a.name}" for a in node.names}
    return found


def _names_a_test_module(dotted: str) -> bool:
    return any(part.startswith("test_") for part in dotted.lstrip(".").split("."))


def test_the_test_modules_are_found():
    """Guards the checks below against silently looking at nothing."""
    rel = {p.relative_to(TESTS).as_posix() for p in _test_modules()}
    assert {"project/test_tests_layout.py", "kubernetes/test_manifests.py", "backends/test_acl.py"} <= rel


def test_no_test_module_imports_another():
    """Shared helpers and fixtures live in tests/support (fixtures registered in tests/conftest.py), so that a
    test module is never imported, and its tests never run, on behalf of another."""
    offenders = {p.relative_to(REPO_ROOT).as_posix(): sorted(n for n in _imported_names(p) if _names_a_test_module(n))
                 for p in _test_modules()}
    assert not {k: v for k, v in offenders.items() if v}, "import from tests/support instead"


def test_no_module_at_the_top_of_tests():
    """Tests live in rooms; only the package marker and the root conftest sit at the top of tests/."""
    stray = sorted(p.name for p in TESTS.glob("*.py") if p.name not in TOP_LEVEL_ALLOWED)
    assert not stray, f"move these into a room (tests/<room>/) or tests/support: {stray}"


def test_every_folder_holding_python_is_a_package():
    """A package per room, so that equal basenames in two rooms cannot clash."""
    folders = {p.parent for p in TESTS.rglob("*.py")} - {TESTS / "facts"}  # facts: data, loaded by path
    missing = sorted(d.relative_to(REPO_ROOT).as_posix() for d in folders if not (d / "__init__.py").is_file())
    assert not missing, f"add an __init__.py to: {missing}"


def _uses_own_location(path: pathlib.Path) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(ast.parse(path.read_text())))


def test_paths_come_from_the_one_place_that_knows_them():
    """No test or helper works out the repository root from its own location (it moves when files move)."""
    files = [*_test_modules(), *(TESTS / "support").glob("*.py"), TESTS / "conftest.py"]
    own = sorted(p.relative_to(REPO_ROOT).as_posix() for p in files
                 if p != TESTS / "support" / "paths.py" and _uses_own_location(p))
    assert not own, f"use tests.support.paths (REPO_ROOT, FACTS, GOLDEN, ...) in: {own}"
