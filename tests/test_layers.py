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
    if rel != "controller/k8s_api.py":  # the one module that talks to the API server
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
    if path.relative_to(ROOT).as_posix() != "jobs/imaging_opencv.py":
        assert "cv2" not in {m.split(".")[0] for m in imports(path)}
