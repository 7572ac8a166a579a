"""The import rules of docs/architecture.md, checked on the source."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(package: str):
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules("jobs"), ids=lambda p: str(p.relative_to(ROOT)))
def test_jobs_never_import_the_controller(path):
    assert not any(m == "controller" or m.startswith("controller.") for m in imports(path))


@pytest.mark.parametrize("path", modules("jobs") + modules("controller"), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_store_talks_to_s3_and_only_the_kubernetes_executor_to_kubernetes(path):
    found = {m.split(".")[0] for m in imports(path)}
    rel = path.relative_to(ROOT).as_posix()
    if rel != "jobs/store/s3.py":
        assert not found & {"boto3", "botocore"}
    if rel != "controller/kubernetes/api.py":  # the one module that talks to the API server
        assert "kubernetes" not in found


@pytest.mark.parametrize("path", modules("jobs/backends"), ids=lambda p: str(p.relative_to(ROOT)))
def test_backend_libraries_stay_inside_their_backend(path):
    found = {m.split(".")[0] for m in imports(path)}
    rel = path.relative_to(ROOT).as_posix()
    if "onnxruntime" in found:
        assert rel.startswith("jobs/backends/onnxruntime/")


@pytest.mark.parametrize("path", modules("jobs") + modules("controller"), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_opencv_pipeline_imports_opencv(path):
    # the default preprocessing is PIL; OpenCV is an optional extra behind one module
    if path.relative_to(ROOT).as_posix() != "jobs/data/imaging_opencv.py":
        assert "cv2" not in {m.split(".")[0] for m in imports(path)}


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (at any depth in the file, lazy imports included)."""
    paths = modules("jobs") + modules("controller")
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

    files = {p.stem for p in (ROOT / "jobs" / "stages").glob("*.py")} - {"__init__", "cli"}
    assert files == set(params.STAGES)
