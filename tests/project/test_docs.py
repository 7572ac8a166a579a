"""The command blocks of README.md and docs/*.md run as written, so that no documented command is broken.

Every code block of a document (indented by 4 spaces after a blank line, or fenced with ```) whose
first command line looks like a shell command (``SHELL_START``; a fenced ```bash/sh/shell/console
block always counts) is either run or listed in ``SKIP`` with the reason it cannot run here (a
cluster, an NPU, a GPU, S3 credentials, a download, minutes of work). A shell block that is neither
listed nor runs with exit 0 fails the test, so a new command in the docs has to work or say why not.

Each document's blocks run in document order, as a reader would type them, in one fresh copy of the
clone per document (tracked and untracked files git does not ignore, ``.venv`` linked to the virtual
environment running the tests): each block is ``bash -e`` in the folder and with the exported
variables the previous block left. HOME and TMPDIR are inside the test's folder, the venv's bin is
first on PATH, and the network is off (HTTP(S) proxies point at a closed port; no AWS or Kubernetes
settings), so a block that would download something fails instead of hanging. Afterwards every file
the blocks left inside the clone must be git-ignored, so following the docs leaves `git status` clean.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.support.paths import REPO_ROOT

DOCS = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO_ROOT / "docs").glob("*.md"))]

CI = "CI runs it (.ci/run)"
CLUSTER = "needs a Kubernetes cluster"
S3 = "needs S3 credentials and a bucket"
NPU = "needs an Ascend NPU with CANN and aclruntime"

# (document, the block's first line without its comment) -> why it is not run here
SKIP: dict[tuple[str, str], str] = {
    ("README.md", ("python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e '.[cpu]' && "
                  ".venv/bin/ghostbench demo")): CI,
    ("README.md", ("python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e '.[test]' && "
                  ".venv/bin/python -m pytest")): CI,
    ("README.md", "kubectl create namespace ghostbench"): CLUSTER,
    ("README.md", "export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1"): S3,
    ("README.md", "aws s3 cp s3://my-bucket/ghostbench/sweeps/demo/report.md -"): S3 + " (and the aws CLI)",
    ("README.md", "ghostbench compare seed-ascend310p seed-ascend310p-cann8 --store s3://ghostbench-results/ghostnet"):
        S3 + (" holding two Ascend sweeps' reports; tests/results/test_compare.py compares sweeps in a local store "
              "and S3"),
    ("docs/ascend.md", "python -m jobs.stages.convert --model EXPORT_URI --target atc --batch-size 16 \\"):
        "needs the CANN toolkit's atc (the ATC image); tests/converters/test_atc.py runs it against a stand-in",
    ("docs/ascend.md", ("atc --framework=5 --model=<export>/model.onnx --input_format=NCHW "
                       "--input_shape=image:16,3,224,224")):
        "ATC's own command line, as the convert stage runs it (the CANN toolkit)",
    ("docs/ascend.md", "python -m tests.converters.test_atc --regenerate-golden"):
        "rewrites the golden files, on purpose only (never in CI); tests/converters/test_atc.py compares them",
    ("docs/ascend.md", ("python -m jobs.stages.infer --engine ENGINE_URI --data DATA_URI --backend acl "
                       "--device npu:0 --batch-size 16 --out URI")): NPU,
    ("docs/ascend.md", "ghostbench run examples/seed-ascend310p.yaml --executor kubernetes"):
        CLUSTER + " with Ascend nodes",
    ("docs/ascend.md", "S=s3://ghostbench-results/manual"):
        S3 + ", the official weights (a download), ImageNet, the CANN toolkit and an NPU",
    ("docs/ascend.md", ("python -m ais_bench --model ghostnet_bs16.om --input <shard>/bin/ --output out/ "
                       "--outfmt NPY --batchsize 16")): NPU + " (ais_bench)",
    ("docs/kubernetes.md", "kubectl create namespace ghostbench"): CLUSTER,
    ("docs/kubernetes.md", ("ghostbench run /etc/ghostbench/sweep.yaml --executor kubernetes "
                           "--settings /etc/ghostbench/settings.yaml")):
        CLUSTER + " (the controller Job's command, in a pod)",
    ("docs/kubernetes.md", "pip install -e '.[cpu,s3,kubernetes]'"):
        CLUSTER + " (a kubeconfig), an S3 store, and a download (pip install)",
    ("docs/kubernetes.md", "kubectl -n ghostbench get jobs -l ghostbench.io/sweep=seed-ascend310p"): CLUSTER,
    ("docs/kubernetes.md", "export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=cn-north-4"):
        S3,
    ("docs/kubernetes.md", "docker build -f images/wheel/Dockerfile -t ghostbench/wheel:0.1.0 ."):
        "needs a Docker daemon and the base images (a download); tests/packaging/test_images.py runs hadolint",
    ("docs/performance.md", ".venv/bin/python -m benchmarks"):
        "the benchmarks take minutes (8 on 2 cores); tests/project/test_benchmarks.py runs them with --quick",
}

# (document, a command line without its comment) -> the exit code it has as written; the line's
# comment must say so ("exit N")
EXPECTED_EXIT: dict[tuple[str, str], int] = {
    # placeholder labels fail the accuracy gate, as examples/local-demo.yaml says
    ("README.md", "ghostbench run examples/local-demo.local.yaml"): 4,
    ("README.md", "ghostbench status local-demo"): 4,
}

# A block is a shell block when its first command line (comments skipped) starts like this.
SHELL_START = re.compile(r"""^(?:
      (?:ghostbench|python3?|pip3?|kubectl|helm|docker|aws|atc|mkdir|cd|for|while|if|source|\.|bash|sh|sed
         |curl|wget|git|make|echo|ls|cat|cp|mv|rm|tar|unzip)(?:\s|$)   # a command
    | \.venv/bin/\S+                                      # the venv's tools
    | export\s+[A-Za-z_]\w*=                               # export NAME=... (not "export (pth -> onnx)")
    | [A-Za-z_]\w*=\S*                                     # NAME=value
)""", re.VERBOSE)
NOT_A_COMMAND = re.compile(r"^ghostbench \S+: (error|warning):")  # an error message quoted in the docs
SHELL_FENCES = {"sh", "bash", "shell", "console", "zsh"}
# What no runnable block may use here: anything of these must be in SKIP (checked before running).
NEEDS_LISTING = re.compile(r"s3://|\bkubectl\b|\bhelm\b|\bdocker\b|\baws\b|--executor kubernetes|"
                           r"--device (?:npu|cuda|tensorrt|cann)|--backend acl|--target atc|^atc\b|https?://",
                           re.MULTILINE)
BLOCK_TIMEOUT_S = 300


@dataclasses.dataclass(frozen=True)
class Block:
    doc: str
    line: int  # 1-based line of the block's first line in the document
    text: str  # dedented
    fence: str | None  # the fence's info string; None for an indented block

    @property
    def first(self) -> str:
        return next((x.strip() for x in self.text.splitlines() if x.strip()), "")

    @property
    def first_command(self) -> str:
        return next((x.strip() for x in self.text.splitlines() if x.strip() and not x.strip().startswith("#")), "")

    @property
    def key(self) -> tuple[str, str]:
        """(document, first line without its comment): the block's name in SKIP."""
        return (self.doc, _strip_comment(self.first))

    @property
    def is_shell(self) -> bool:
        if self.fence is not None and self.fence.split()[:1] and self.fence.split()[0].lower() in SHELL_FENCES:
            return True
        if self.fence:  # another language (yaml, python, text, ...)
            return False
        cmd = self.first_command
        return bool(SHELL_START.match(cmd)) and not NOT_A_COMMAND.match(cmd)

    def where(self) -> str:
        return f"{self.doc}:{self.line}: {self.first!r}"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def code_blocks(doc: str, text: str) -> list[Block]:
    """The code blocks of a Markdown text: fenced (``` or ~~~) and indented by 4 or more spaces after a
    blank line (also inside list items), dedented, in document order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(\s*)(`{3,}|~{3,})\s*(.*)$", line)
        if fence:
            marker, info = fence.group(2), fence.group(3).strip()
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(marker):
                j += 1
            body = [x[len(fence.group(1)):] if x.startswith(fence.group(1)) else x.lstrip() for x in lines[i + 1:j]]
            blocks.append(Block(doc, i + 2, textwrap.dedent("\n".join(body)).strip("\n") + "\n", info))
            i = j + 1
            continue
        if line.strip() and _indent(line) >= 4 and (i == 0 or not lines[i - 1].strip()):
            j = i
            while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) >= 4):
                j += 1
            body = lines[i:j]
            while body and not body[-1].strip():
                body.pop()
            blocks.append(Block(doc, i + 1, textwrap.dedent("\n".join(body)).strip("\n") + "\n", None))
            i = j
            continue
        i += 1
    return blocks


def shell_blocks(doc: str) -> list[Block]:
    return [b for b in code_blocks(doc, (REPO_ROOT / doc).read_text(encoding="utf-8")) if b.is_shell]


def _strip_comment(line: str) -> str:
    return re.sub(r"\s+#.*$", "", line).strip()


def script_for(block: Block) -> str:
    """The block as a script: each line with an EXPECTED_EXIT entry must exit with that code."""
    out = []
    for line in block.text.splitlines():
        code = EXPECTED_EXIT.get((block.doc, _strip_comment(line)))
        if code is None:
            out.append(line)
            continue
        assert re.search(rf"#.*\bexits? {code}\b", line), \
            f"{block.where()}: the comment of {line.strip()!r} must say that it exits {code} (exit {code})"
        out.append(f"if {_strip_comment(line)}; then rc=0; else rc=$?; fi; "
                   f"if [ $rc -ne {code} ]; then echo 'test_docs: expected exit {code}, got' $rc >&2; exit 1; fi")
    return "\n".join(out) + "\n"


# --- the static checks: every shell block is runnable or listed, and the lists are current --------------


def test_blocks_are_found():
    """The extraction rule sees the blocks it must (guards the parser against silently seeing none)."""
    readme = {b.first for b in shell_blocks("README.md")}
    assert any(first.startswith(". .venv/bin/activate") for first in readme)
    assert any(first.startswith("python3 -m venv .venv") for first in readme)
    assert not [b for d in DOCS for b in shell_blocks(d) if b.first.startswith(("export (", "aipp_op", "namespace:"))]
    text = "para\n\n    ghostbench plan x.yaml\n      --store y\n\n    more\nafter\n\n```bash\nls\n```\n"
    blocks = code_blocks("t.md", text)
    assert [(b.line, b.text, b.fence) for b in blocks] == [
        (3, "ghostbench plan x.yaml\n  --store y\n\nmore\n", None), (10, "ls\n", "bash")]


def test_every_skip_entry_names_a_block():
    keys = {b.key for d in DOCS for b in shell_blocks(d)}
    stale = [k for k in SKIP if k not in keys]
    assert not stale, f"SKIP entries whose block is gone or changed its first line (update them): {stale}"
    lines = {(d, _strip_comment(x)) for d in DOCS for b in shell_blocks(d) for x in b.text.splitlines()}
    assert not [k for k in EXPECTED_EXIT if k not in lines]


def test_blocks_that_need_a_cluster_a_device_or_the_network_are_listed():
    """A new block that needs something this test cannot give must be listed in SKIP with the reason."""
    unlisted = [b.where() for d in DOCS for b in shell_blocks(d) if b.key not in SKIP and NEEDS_LISTING.search(b.text)]
    assert not unlisted, ("shell blocks that need a cluster, a device, S3 or the network: list them in "
                          f"tests/project/test_docs.py SKIP with the reason, or make them run here: {unlisted}")


# --- running them ---------------------------------------------------------------------------------------


def _files(root: pathlib.Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if (p.is_file() or p.is_symlink()) and p.relative_to(root).parts[0] != ".venv"}


def _not_ignored(paths: set[str]) -> list[str]:
    """Those of ``paths`` (relative to the clone) that git would show as untracked: nothing a documented
    command writes inside the clone may be left for `git status` to show."""
    if not paths:
        return []
    try:
        proc = subprocess.run(["git", "check-ignore", "--no-index", "--stdin", "-z"], cwd=REPO_ROOT,
                              check=False, input="\0".join(sorted(paths)).encode(), capture_output=True)
    except OSError:
        return []
    if proc.returncode not in (0, 1):  # not a git checkout
        return []
    return sorted(paths - set(filter(None, proc.stdout.decode().split("\0"))))


def _copy_clone(dest: pathlib.Path) -> None:
    """The working tree as a reader's clone has it: tracked files and untracked ones git does not ignore."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=REPO_ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        listed = None
    if listed is None:
        shutil.copytree(REPO_ROOT, dest, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache", ".cache", ".benchmarks",
            "ghostbench-store", "data", "build", "dist"))
        return
    for rel in filter(None, listed):
        src = REPO_ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _environment(tmp: pathlib.Path) -> dict[str, str]:
    venv_bin = pathlib.Path(sys.prefix) / "bin"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GHOSTBENCH_", "KUBE", "PYTEST_", "PIP_"))
           and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX")}
    (tmp / "home").mkdir()
    (tmp / "tmp").mkdir()
    dead = "http://127.0.0.1:9"  # nothing listens: a download fails at once
    env.update(HOME=str(tmp / "home"), TMPDIR=str(tmp / "tmp"), PATH=f"{venv_bin}{os.pathsep}{env.get('PATH', '')}",
               http_proxy=dead, https_proxy=dead, HTTP_PROXY=dead, HTTPS_PROXY=dead, ALL_PROXY=dead,
               no_proxy="", NO_PROXY="", PIP_NO_INDEX="1", KUBECONFIG=str(tmp / "home" / "no-kubeconfig"),
               PYTHONDONTWRITEBYTECODE="1")
    return env


def _read_env(path: pathlib.Path) -> dict[str, str]:
    env = {}
    for item in path.read_bytes().decode(errors="replace").split("\0"):
        name, sep, value = item.partition("=")
        if sep and name not in ("PWD", "OLDPWD", "SHLVL", "_"):
            env[name] = value
    return env


@pytest.mark.parametrize("doc", DOCS)
def test_doc_commands_run(doc, tmp_path):
    blocks = shell_blocks(doc)
    runnable = [b for b in blocks if b.key not in SKIP]
    if not runnable:
        pytest.skip(f"{doc}: no runnable shell block ({len(blocks)} listed in SKIP)")
    if sys.prefix == sys.base_prefix:
        pytest.skip("not run from a virtual environment: the docs' `. .venv/bin/activate` needs one")
    clone = tmp_path / "clone"
    clone.mkdir()
    _copy_clone(clone)
    copied = _files(clone)
    (clone / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    env = _environment(tmp_path)
    cwd = clone
    state = tmp_path / "state"
    for block in runnable:
        script = tmp_path / "block.sh"
        script.write_text("set -e\n" + script_for(block) +
                          f'pwd > "{state}.cwd"\nenv -0 > "{state}.env"\n')
        try:
            proc = subprocess.run(["bash", str(script)], check=False, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
            pytest.fail(f"{block.where()}: still running after {BLOCK_TIMEOUT_S} s; a block that needs the "
                        f"network or a service goes in SKIP with the reason\n{err[-3000:]}")
        output = (proc.stdout + proc.stderr)[-4000:]
        assert proc.returncode == 0, (
            f"{block.where()}: exit {proc.returncode}. Fix the document (or the code), or, if the block cannot "
            f"run here (a cluster, a device, S3, a download), list it in SKIP with the reason.\n{output}")
        cwd = pathlib.Path((tmp_path / "state.cwd").read_text().strip())
        env = _read_env(tmp_path / "state.env")
    left = _not_ignored(_files(clone) - copied)
    assert not left, (f"{doc}: its commands leave files in the clone that .gitignore does not cover (write them "
                      f"elsewhere, or ignore them): {left[:20]}")
