"""The layer order and import rules, written once in pyproject.toml ([tool.importlinter]), checked on the source
with import-linter, and shown as the same table in docs/architecture.md."""

import ast
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from tests.support.paths import REPO_ROOT

PYPROJECT = REPO_ROOT / "pyproject.toml"


def contracts() -> list[dict]:
    api = pytest.importorskip("importlinter.api", reason="import-linter is not installed (the test extra)")
    return api.read_configuration(str(PYPROJECT))["contracts_options"]


def layers() -> list[list[str]]:
    """The layers contract's rows, top first: each a list of rooms."""
    (layer_contract,) = [c for c in contracts() if c["type"] == "layers"]
    rows = layer_contract["layers"]
    return [[m.strip() for m in re.split(r"[|:]", row)] for row in ([rows] if isinstance(rows, str) else rows)]


def lint_imports(config: pathlib.Path, cwd: pathlib.Path = REPO_ROOT) -> subprocess.CompletedProcess:
    """import-linter's command on ``config``, importing the project from ``cwd`` (it puts cwd first on the path)."""
    script = pathlib.Path(sys.executable).parent / "lint-imports"
    if not script.exists():
        pytest.skip("import-linter is not installed: pip install import-linter (the test extra)")
    return subprocess.run([str(script), "--config", str(config), "--no-cache", "--no-logo"], cwd=cwd,
                          capture_output=True, text=True, check=False)


def test_every_import_contract_is_kept():
    proc = lint_imports(PYPROJECT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    kept = re.findall(r"^(.*) KEPT", proc.stdout, re.M)
    assert len(kept) == len(contracts()) >= 7


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    # the check can fail: a copy of the project where the store imports the results room
    copy = tmp_path / "copy"
    for room in ("jobs", "controller"):
        shutil.copytree(REPO_ROOT / room, copy / room, ignore=shutil.ignore_patterns("__pycache__"))
    local = copy / "jobs" / "store" / "local.py"
    local.write_text(local.read_text() + "\n\ndef _probe():\n    from jobs.results import metrics  # noqa: F401\n")
    config = copy / "pyproject.toml"
    config.write_text(PYPROJECT.read_text())
    proc = lint_imports(config, cwd=copy)
    assert proc.returncode != 0
    assert "jobs.store is not allowed to import jobs.results" in proc.stdout


def test_the_docs_table_is_the_layers_contract():
    text = (REPO_ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", text, re.M)
    documented = [[m.strip().strip("`") for m in rooms.split(",")] for _, rooms in rows]
    assert [int(n) for n, _ in rows] == list(range(1, len(rows) + 1))
    assert documented == layers()


def test_jobs_has_no_module_at_its_root_beyond_the_seams():
    modules = {p.stem for p in (REPO_ROOT / "jobs").glob("*.py")} - {"__init__"}
    assert modules == {"errors", "params", "paramspec", "registry", "progress"}
    for seam in modules:
        assert [f"jobs.{seam}"] in layers() or any(f"jobs.{seam}" in row for row in layers())


def test_no_module_is_over_500_lines():
    long = {str(p.relative_to(REPO_ROOT)): n for room in ("jobs", "controller") for p in (REPO_ROOT / room).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 500}
    assert not long


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (at any depth in the file, lazy imports included)."""
    paths = sorted((REPO_ROOT / "jobs").rglob("*.py")) + sorted((REPO_ROOT / "controller").rglob("*.py"))
    names = {_module_name(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names} & names
                deps |= subs or ({node.module} & names)
        graph[_module_name(path)] = deps - {_module_name(path)}
    return graph


def test_no_import_circles():
    graph = project_graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycle = stack[stack.index(d):] + [d]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_only_stages_import_stages():
    # the stage commands are leaves: the library (jobs.*) and the controller use jobs.params, never a stage
    for module, deps in project_graph().items():
        if not module.startswith("jobs.stages"):
            assert not {d for d in deps if d.startswith("jobs.stages")}, module


def test_the_stage_package_holds_exactly_the_stages():
    from jobs import params

    files = {p.stem for p in (REPO_ROOT / "jobs" / "stages").glob("*.py")} - {"__init__", "cli"}
    assert files == set(params.STAGES)
