"""s3:// stores against a real S3 server: SeaweedFS ``weed mini`` on 127.0.0.1 (tests/support/s3server.py).

Every test gets a fresh bucket and the standard AWS variables pointing at the server; the stage
subprocesses of a sweep inherit them, as pods would get them from a secret.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
import urllib3
import yaml

from controller import cli, display, runner
from controller import plan as plan_mod
from controller import spec as spec_mod
from controller.executors import local as local_executor
from jobs import errors, store
from jobs.artifacts import commit
from jobs.store import s3 as s3_store
from jobs.store import s3_connection, s3_errors
from jobs.tools import fake_imagenet
from tests.support import s3proxy, s3server
from tests.support.paths import REPO_ROOT

MiB = 1 << 20


def ghostbench(*args: str) -> list[str]:
    """The ``ghostbench`` command as a user runs it (the script next to this Python, if installed)."""
    script = pathlib.Path(sys.executable).parent / "ghostbench"
    return [str(script), *args] if script.is_file() else [sys.executable, "-m", "controller.cli", *args]


# ----------------------------------------------------------------------------------------------
# Helpers: a small sweep (null backend, optionally one ONNX Runtime target) on any store


@pytest.fixture(scope="module")
def image_set(tmp_path_factory) -> pathlib.Path:
    images = tmp_path_factory.mktemp("s3-images") / "images"
    names = fake_imagenet.make_image_set(images, count=12, seed=5)
    fake_imagenet.write_labels(images, names, [i % 3 for i in range(len(names))])
    return images


def upload_inputs(images: pathlib.Path, bucket: str) -> tuple[str, str]:
    """The images and labels put below ``<bucket>/inputs/``: (images URI, labels URI)."""
    st = store.open_store(f"{bucket}/inputs/images")
    for p in sorted(images.iterdir()):
        st.put_file(p.name, p)
    return st.uri, f"{st.uri}/{fake_imagenet.LABELS_FILE}"


def sweep_file(tmp_path: pathlib.Path, name: str, store_uri: str, images: str, labels: str, shards: int = 2,
               small: bool = False, ort_weights: tuple[str, str] | None = None) -> pathlib.Path:
    targets = [{"name": "null-f32", "backend": "null", "batch_sizes": [1, 4]}]
    if not small:
        targets.append({"name": "null-u8", "backend": "null", "input_mode": "uint8", "batch_sizes": [4]})
    doc = {
        "name": name,
        "store": store_uri,
        "dataset": {"images": images, "labels": labels, "shards": shards},
        "targets": targets,
        "reference": {"top1": 0.0, "top5": 0.0, "gate": 5.0},  # placeholder labels: no accuracy gate here
        "timing": {"warmup": 0, "min_batches": 1, "min_seconds": 0},
    }
    if ort_weights:
        doc["model"] = {"name": "ghostnet_1.0x", "weights": ort_weights[0], "checksum": ort_weights[1]}
        doc["targets"].append({"name": "ort-f32", "backend": "onnxruntime", "engine": "onnxruntime",
                               "batch_sizes": [4]})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def report_rows(st: store.Store, sweep: str) -> list[tuple]:
    """The report without timings or locations: what must be the same on any store."""
    rep = json.loads(st.read_text(f"sweeps/{sweep}/report.json"))
    return [(r["target"], r["batch_size"], r["num_images"], r["accuracy"], r["gate_pass"]) for r in rep["runs"]]


@pytest.fixture(scope="module")
def small_reference(image_set, tmp_path_factory) -> list[tuple]:
    """The small sweep's report on a directory store."""
    tmp = tmp_path_factory.mktemp("small-reference")
    path = sweep_file(tmp, "ref", str(tmp / "store"), str(image_set), str(image_set / "val_label.txt"),
                      shards=1, small=True)
    assert cli.main(["run", str(path)]) == 0
    return report_rows(store.open_store(tmp / "store"), "ref")


def all_objects_text(bucket: str) -> bytes:
    st = store.open_store(bucket)
    return b"\n".join(st.read_bytes(n) for n in st.list())


# ----------------------------------------------------------------------------------------------
# The store itself


def test_uri_forms_and_no_io_on_open(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing there: opening must not connect
    st = store.open_store("s3://bucket/some/prefix/")
    assert isinstance(st, s3_store.S3Store) and st.uri == "s3://bucket/some/prefix"
    assert st.child("a/b").uri == "s3://bucket/some/prefix/a/b"
    assert store.open_store("s3://bucket").uri == "s3://bucket"
    assert st.local_path("x") is None
    parent, name = store.split_object_uri("s3://bucket/w/weights.pth")
    assert parent.uri == "s3://bucket/w" and name == "weights.pth"


@pytest.mark.parametrize("uri, message", [
    ("s3://", "no bucket"),
    ("s3://KEYID:SECRETVALUE@bucket/x", "credentials in the URI are not accepted"),
    ("s3://bucket/x?endpoint=http://h", "without port, query or fragment"),
])
def test_bad_s3_uris(uri, message):
    with pytest.raises(errors.BadInput, match=message) as e:
        store.open_store(uri)
    assert "SECRETVALUE" not in str(e.value)


def test_the_test_server_takes_a_bucket_for_each_of_many_tests(s3_env):
    # each bucket is a SeaweedFS collection with volumes of its own: with weed mini's automatic volume size and count
    # (free disk / volume size) the suite's ~20th bucket found no writable volume (HTTP 500 on every put)
    client = s3_env.client()
    for i in range(40):
        name = s3_env.create_bucket(f"many-{i:02d}-{os.getpid()}").removeprefix("s3://")
        client.put_object(Bucket=name, Key="k", Body=b"x")
        assert client.get_object(Bucket=name, Key="k")["Body"].read() == b"x"


def test_small_objects_round_trip(s3_bucket, tmp_path):
    st = store.open_store(f"{s3_bucket}/pre/fix")
    st.write_text("a/b.txt", "hello")
    st.write_bytes("a/empty", b"")
    assert st.read_text("a/b.txt") == "hello" and st.read_bytes("a/empty") == b""
    assert st.exists("a/b.txt") and not st.exists("a/nope") and st.size("a/b.txt") == 5
    assert st.list() == ["a/b.txt", "a/empty"] and st.list("a") == ["a/b.txt", "a/empty"]
    assert st.list("a/b.txt") == ["a/b.txt"] and st.child("a").list() == ["b.txt", "empty"]
    assert store.open_store(s3_bucket).list("pre") == ["pre/fix/a/b.txt", "pre/fix/a/empty"]
    with st.open_read("a/b.txt") as f:
        assert f.read(2) == b"he" and f.read() == b"llo"
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(1000))
    st.put_file("f/src.bin", src)
    st.get_file("f/src.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    with pytest.raises(errors.StoreError, match="no such object"):
        st.read_bytes("nope")
    with pytest.raises(errors.StoreError, match="no such object"):
        st.size("nope")
    with pytest.raises(errors.BadInput, match="'..'"):
        st.write_text("../escape", "x")
    st.delete("a/b.txt")
    st.delete("a/b.txt")  # already gone: no error
    assert st.list("a") == ["a/empty"]
    with st.staging_dir() as d:
        assert d.is_dir()
    assert not d.exists()


def test_commit_and_local_copy_verify(s3_bucket):
    out = store.open_store(f"{s3_bucket}/out")
    with commit.Output(out, "demo", {"p": 1}) as o:
        (o.dir / "a.txt").write_text("abc")
        (o.dir / "sub").mkdir()
        (o.dir / "sub" / "b.bin").write_bytes(b"\0" * 10)
    m = commit.read_manifest(out)
    assert m is not None and out.list() == ["_manifest.json", "a.txt", "sub/b.bin"]
    commit.verify_file(out, m, "sub/b.bin")
    assert commit.read_verified(out, m, "a.txt") == b"abc"
    with commit.local_copy(out, m, "sub/b.bin") as p:
        assert p.read_bytes() == b"\0" * 10
    assert not p.exists()  # the copy lives as long as the block
    out.write_text("a.txt", "abd")  # changed after the commit
    with pytest.raises(errors.StoreError, match="a.txt: sha256 does not match the manifest"):
        commit.read_verified(out, m, "a.txt")
    with pytest.raises(errors.StoreError, match="does not match the manifest"):
        commit.verify_file(out, m, "a.txt")
    assert commit.corrupted_files(out, m) == ["a.txt"]


class _Broken:
    """A response body whose connection breaks on the next read."""

    def read(self, n=-1):
        raise urllib3.exceptions.ProtocolError("Connection broken: reset by peer")

    def close(self):
        pass


def test_streamed_read_resumes_after_a_broken_connection(s3_bucket):
    st = store.open_store(s3_bucket)
    data = os.urandom(3 * MiB + 123)
    st.write_bytes("obj", data)
    with st.open_read("obj") as f:
        got = [f.read(MiB)]
        f._body.close()  # the response ends early: resumed with a ranged GET
        got.append(f.read(MiB))
        f._body = _Broken()  # the connection breaks: resumed again
        got.append(f.read())
    assert b"".join(got) == data

    with st.open_read("obj") as f:  # the object is replaced while it is being read
        f.read(10)
        st.write_bytes("obj", b"new version")
        f._body = _Broken()
        with pytest.raises(errors.StoreError, match="changed while it was being read"):
            f.read()


@pytest.mark.slow
def test_200mb_object_round_trip_streams(s3_env, s3_bucket, tmp_path):
    """Upload, download and a streamed read of 200 MB, in a separate process whose peak memory is
    measured: it stays well below the object's size (multipart up, ranged parallel down, streaming)."""
    script = r"""
import hashlib, json, pathlib, sys
from jobs import store
uri, tmp = sys.argv[1], pathlib.Path(sys.argv[2])
src = tmp / "big.bin"
digest = hashlib.sha256()
with open(src, "wb") as f:  # 200 MiB, written and hashed 1 MiB at a time
    block = bytearray(hashlib.sha256(b"ghostbench").digest() * (1 << 15))
    for i in range(200):
        block[:8] = i.to_bytes(8, "little")
        f.write(block)
        digest.update(block)
st = store.open_store(uri)
st.put_file("big/part-00000.npy", src)
size = st.size("big/part-00000.npy")
src.unlink()
st.get_file("big/part-00000.npy", tmp / "back.bin")
back = hashlib.sha256()
with open(tmp / "back.bin", "rb") as f:
    while chunk := f.read(1 << 20):
        back.update(chunk)
(tmp / "back.bin").unlink()
streamed = hashlib.sha256()
with st.open_read("big/part-00000.npy") as f:
    while chunk := f.read(3 << 20):
        streamed.update(chunk)
# this process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent)
status = pathlib.Path("/proc/self/status")
peak = [int(ln.split()[1]) / 1024 for ln in status.read_text().splitlines() if ln.startswith("VmHWM:")] \
    if status.exists() else [None]
print(json.dumps({"size": size, "sha": digest.hexdigest(), "back": back.hexdigest(),
                  "streamed": streamed.hexdigest(), "peak_rss_mb": peak[0]}))
"""
    r = subprocess.run([sys.executable, "-c", script, s3_bucket, str(tmp_path)], check=False, capture_output=True,
                       text=True, cwd=REPO_ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["size"] == 200 * MiB
    assert res["sha"] == res["back"] == res["streamed"]
    if res["peak_rss_mb"] is not None:
        assert res["peak_rss_mb"] < 200, res  # never the whole object in memory (about 120 MB seen)
    # it went up in parts: a multipart object's ETag is "<md5 of part md5s>-<parts>"
    head = s3_env.client().head_object(Bucket=s3_bucket[5:], Key="big/part-00000.npy")
    assert head["ETag"].strip('"').endswith(f"-{-(-200 * MiB // s3_connection.TRANSFER.multipart_chunksize)}")


def test_listing_over_1000_keys_with_prefixes(s3_bucket):
    st = store.open_store(f"{s3_bucket}/many")
    names = [f"{d}/obj-{i:05d}" for d, n in (("a", 600), ("b", 450)) for i in range(n)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: st.write_bytes(n, n.encode()), names))
    store.open_store(s3_bucket).write_text("many-more/x", "not below many/")
    assert st.list() == sorted(names) and len(names) == 1050  # two pages of a listing
    assert st.list("a") == [n for n in names if n.startswith("a/")]
    assert st.child("b").list() == [n[2:] for n in names if n.startswith("b/")]
    assert store.open_store(s3_bucket).list("many") == ["many/" + n for n in sorted(names)]
    assert st.list("c") == []


# ----------------------------------------------------------------------------------------------
# Configuration errors: one line, exit 2, no credential in sight


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if "error:" in ln]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("variable, value, message", [
    ("AWS_SECRET_ACCESS_KEY", "not-the-secret-5551", "wrong credentials: the secret access key does not match"),
    ("AWS_ACCESS_KEY_ID", "NOSUCHKEYID5551", "wrong credentials: InvalidAccessKeyId"),
])
def test_wrong_credentials_refused_in_one_line(s3_bucket, monkeypatch, capsys, variable, value, message):
    monkeypatch.setenv(variable, value)
    assert cli.main(["status", "nosuch", "--store", s3_bucket]) == errors.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    line = _one_error_line(err)
    assert message in line and s3_bucket in line
    for secret in (value, s3server.SECRET_KEY):
        assert secret not in err
    # the same from a stage, as a pod runs it
    r = subprocess.run(ghostbench("stage", "eval", "--run", f"{s3_bucket}/r", "--data", f"{s3_bucket}/d",
                                  "--out", f"{s3_bucket}/e"), check=False, capture_output=True, text=True,
                       cwd=REPO_ROOT, timeout=120)
    assert r.returncode == errors.EXIT_BAD_INPUT
    assert message in _one_error_line(r.stderr) and value not in r.stderr + r.stdout
    assert s3server.SECRET_KEY not in r.stderr + r.stdout


def test_access_denied(s3_bucket, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3server.READER_ACCESS_KEY)  # may read and list, not write
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3server.READER_SECRET_KEY)
    st = store.open_store(s3_bucket)
    assert st.list() == []
    with pytest.raises(errors.BadInput, match=r"writing s3://.*/x: access denied \(AccessDenied"):
        st.write_text("x", "y")


def test_missing_bucket(s3_env, capsys):
    assert cli.main(["report", "any", "--store", "s3://no-such-bucket-here/p"]) == errors.EXIT_BAD_INPUT
    line = _one_error_line(capsys.readouterr().err)
    assert "bucket 'no-such-bucket-here' does not exist at http://127.0.0.1:" in line


def _count_attempts(conn: s3_connection.Connection) -> list[str]:
    """The HTTP attempts (botocore's own retries included) that ``conn``'s client makes from now on."""
    attempts: list[str] = []
    conn.client.meta.events.register("before-send.s3", lambda request, **_: attempts.append(request.url))
    return attempts


def test_wrong_endpoint_fails_at_once(s3_env, monkeypatch, capsys):
    """Nothing has ever answered at that port: one attempt, no retries, one line, exit 2."""
    port = s3server.free_ports(1)[0]  # nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    assert cli.main(["status", "s", "--store", "s3://bucket/p"]) == errors.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    line = _one_error_line(err)
    assert f"nothing answered at S3 endpoint {endpoint} (connection refused; the first request to it" in line
    assert "retry" not in err

    waits: list[float] = []
    conn = s3_connection.Connection("bucket", deadline_s=60.0, sleep=waits.append)
    attempts = _count_attempts(conn)
    with pytest.raises(errors.BadInput, match="nothing answered") as e:
        s3_store.S3Store(conn).exists("x")
    assert len(attempts) == 1 and waits == []  # neither botocore (3 attempts by default) nor the store retried
    assert e.value.__cause__ is not None  # the cause is kept for a debug log
    assert not s3_connection.reached(endpoint)

    # an unknown host: the same (the name server's answer faked, so that no network is needed)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host == "no-such-host.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://no-such-host.invalid:9000")
    with pytest.raises(errors.BadInput, match=r"nothing answered at S3 endpoint http://no-such-host.invalid:9000 "
                                              r"\(unknown host"):
        store.open_store("s3://bucket/p").exists("x")


def test_wrong_endpoint_from_the_command_line(s3_env, monkeypatch):
    port = s3server.free_ports(1)[0]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    r = subprocess.run(ghostbench("report", "X", "--store", "s3://bucket/p"), check=False, capture_output=True,
                       text=True, cwd=REPO_ROOT, timeout=120)
    assert r.returncode == errors.EXIT_BAD_INPUT, r.stderr
    line = _one_error_line(r.stderr)
    assert f"nothing answered at S3 endpoint http://127.0.0.1:{port}" in line and "retry" not in r.stderr


def test_endpoint_that_answered_before_is_waited_for_until_the_deadline(s3_env, monkeypatch, capsys):
    """Once the server has answered (here, or in the controller that started this process), a refused
    connection is a server away for a while: retried with growing backoff until the deadline."""
    port = s3server.free_ports(1)[0]
    endpoint = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    monkeypatch.setenv(s3_connection.REACHED_ENV, f"http://elsewhere:1 {endpoint}")  # as a controller passes it on
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries off: only the deadline loop
    monkeypatch.setenv(s3_connection.DEADLINE_ENV, "0")
    assert cli.main(["status", "s", "--store", "s3://bucket/p"]) == errors.EXIT_STORE_UNAVAILABLE
    line = _one_error_line(capsys.readouterr().err)
    assert f"S3 endpoint {endpoint} unreachable" in line and "gave up after 0s" in line

    # with a deadline: retried with growing backoff until it passes (fake clock: no waiting)
    now = [0.0]
    waits: list[float] = []

    def sleep(s):
        waits.append(s)
        now[0] += s

    conn = s3_connection.Connection("bucket", deadline_s=10.0, sleep=sleep, clock=lambda: now[0])
    attempts = _count_attempts(conn)
    with pytest.raises(errors.StoreUnavailable, match="unreachable .*gave up after 10s") as e:
        s3_store.S3Store(conn).exists("x")
    assert waits[:3] == [0.25, 0.5, 1.0] and sum(waits) == pytest.approx(10.0)
    assert len(attempts) == len(waits) + 1 and e.value.__cause__ is not None


def test_a_store_that_got_an_answer_says_so_to_its_subprocesses(s3_bucket, monkeypatch):
    monkeypatch.delenv(s3_connection.REACHED_ENV, raising=False)
    st = store.open_store(s3_bucket)
    assert not st.exists("x")
    endpoint = st._conn.endpoint
    assert endpoint.startswith("http://127.0.0.1:") and os.environ[s3_connection.REACHED_ENV].split() == [endpoint]
    r = subprocess.run([sys.executable, "-c", "from jobs.store import s3_connection; import sys; print(s3_connection.reached(sys.argv[1]))",
                        endpoint], check=True, capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert r.stdout.strip() == "True"


def test_bad_deadline_setting(s3_env, monkeypatch):
    monkeypatch.setenv(s3_connection.DEADLINE_ENV, "soon")
    with pytest.raises(errors.BadInput, match="GHOSTBENCH_S3_DEADLINE_S='soon'"):
        store.open_store("s3://bucket")


# ----------------------------------------------------------------------------------------------
# Older S3-compatible servers: the checksums botocore >= 1.36 sends by default


@pytest.fixture
def old_s3(s3_env, monkeypatch, tmp_path) -> Iterator[s3proxy.OldS3Proxy]:
    """The server behind a TLS proxy that refuses the new checksums as older MinIO/Ceph do; the AWS
    variables point at the proxy (AWS_ENDPOINT_URL_S3, AWS_CA_BUNDLE for its certificate)."""
    if not s3proxy.tls_available():
        pytest.skip("no `openssl` command to make the proxy's certificate (botocore sends checksum trailers "
                    "over TLS only)")
    for name in (s3_errors.REQUEST_CHECKSUM_ENV, s3_errors.RESPONSE_CHECKSUM_ENV):
        monkeypatch.delenv(name, raising=False)
    with s3proxy.OldS3Proxy(s3_env.endpoint, tmp_path / "proxy") as proxy:
        for name, value in proxy.env().items():
            monkeypatch.setenv(name, value)
        yield proxy


def test_the_proxy_refuses_what_an_older_server_refuses(old_s3, s3_bucket):
    """The fault: boto3 with its defaults cannot write through the proxy (as before the store set
    ``when_required``); with ``when_required`` it can."""
    import boto3
    import botocore.config
    import botocore.exceptions

    def client(**config):
        return boto3.client("s3", endpoint_url=old_s3.endpoint, verify=str(old_s3.ca_bundle),
                            config=botocore.config.Config(s3={"addressing_style": "path"}, **config))

    bucket = s3_bucket[len("s3://"):]
    with pytest.raises(botocore.exceptions.ClientError, match=s3proxy.ERROR_CODE):
        client().put_object(Bucket=bucket, Key="k", Body=b"data")
    assert [(m, why.split(":")[0]) for m, _, why in old_s3.refused] == [("PUT", "x-amz-trailer")]
    client(request_checksum_calculation="when_required").put_object(Bucket=bucket, Key="k", Body=b"data")
    assert len(old_s3.refused) == 1


def test_store_works_with_an_older_server_by_default(old_s3, s3_bucket, tmp_path):
    st = store.open_store(f"{s3_bucket}/pre")
    config = st._conn.client.meta.config
    assert (config.request_checksum_calculation, config.response_checksum_validation) == ("when_required",) * 2
    assert st._conn.endpoint == old_s3.endpoint and old_s3.endpoint.startswith("https://")
    st.write_text("a.txt", "hello")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * MiB))  # above the multipart threshold: parts and a completion
    st.put_file("big.bin", big)
    st.get_file("big.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()
    with st.open_read("a.txt") as f:
        assert f.read() == b"hello"
    with commit.Output(st.child("out"), "demo", {"p": 1}) as o:
        (o.dir / "x.txt").write_text("abc")
    m = commit.read_manifest(st.child("out"))
    assert m is not None and commit.read_verified(st.child("out"), m, "x.txt") == b"abc"
    st.delete("a.txt")
    assert st.list() == ["big.bin", "out/_manifest.json", "out/x.txt"]
    assert old_s3.refused == [] and old_s3.forwarded > 0


def test_stage_command_through_an_older_server(old_s3, s3_bucket, image_set):
    out = f"{s3_bucket}/pre"
    args = ghostbench("stage", "preprocess", "--images", str(image_set), "--labels",
                      str(image_set / fake_imagenet.LABELS_FILE), "--out", out)
    r = subprocess.run(args, check=False, capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert old_s3.refused == []
    assert store.open_store(out).list()  # committed through the proxy

    # the user asks for the new checksums anyway: one line, exit 2, naming the setting
    env = {**os.environ, s3_errors.REQUEST_CHECKSUM_ENV: "when_supported"}
    r = subprocess.run([*args[:-1], f"{s3_bucket}/pre2"], check=False, capture_output=True, text=True,
                       cwd=REPO_ROOT, timeout=300, env=env)
    assert r.returncode == errors.EXIT_BAD_INPUT, r.stderr[-3000:]
    line = _one_error_line(r.stderr)
    assert "refused the request's integrity checksum (XAmzContentSHA256Mismatch at https://127.0.0.1:" in line
    assert "AWS_REQUEST_CHECKSUM_CALCULATION=when_required" in line
    assert old_s3.refused


def test_explicit_checksum_setting_is_kept_and_explained(old_s3, s3_bucket, monkeypatch):
    monkeypatch.setenv(s3_errors.REQUEST_CHECKSUM_ENV, "when_supported")
    st = store.open_store(s3_bucket)
    assert st._conn.client.meta.config.request_checksum_calculation == "when_supported"
    assert st._conn.client.meta.config.response_checksum_validation == "when_required"
    with pytest.raises(errors.BadInput, match=r"writing s3://.*/x: the S3 server refused the request's integrity "
                                              r"checksum \(XAmzContentSHA256Mismatch at https://127.0.0.1:\d+\): "
                                              r".*set AWS_REQUEST_CHECKSUM_CALCULATION=when_required") as e:
        st.write_text("x", "y")
    assert "\n" not in str(e.value) and e.value.__cause__ is not None


def test_untrusted_certificate_fails_at_once(old_s3, s3_bucket, monkeypatch):
    monkeypatch.delenv("AWS_CA_BUNDLE")  # the proxy's self-signed certificate is not trusted
    waits: list[float] = []
    conn = s3_connection.Connection(s3_bucket[len("s3://"):], deadline_s=60.0, sleep=waits.append)
    attempts = _count_attempts(conn)
    with pytest.raises(errors.BadInput, match=rf"the TLS certificate of S3 endpoint {old_s3.endpoint} is not "
                                              r"trusted \(self.signed certificate\); set AWS_CA_BUNDLE"):
        s3_store.S3Store(conn).exists("x")
    assert len(attempts) == 1 and waits == [] and old_s3.forwarded == 0


@pytest.mark.parametrize("endpoint, env, profile, expected", [
    ("http://127.0.0.1:9", {}, "", ("when_required", "when_required")),
    (None, {}, "", ("when_supported", "when_supported")),  # AWS: botocore's defaults
    ("http://127.0.0.1:9", {"AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_SUPPORTED"}, "",
     ("when_supported", "when_required")),
    ("http://127.0.0.1:9", {"AWS_RESPONSE_CHECKSUM_VALIDATION": "when_supported"}, "",
     ("when_required", "when_supported")),
    ("http://127.0.0.1:9", {}, "request_checksum_calculation = when_supported\n"
                               "response_checksum_validation = when_supported\n",
     ("when_supported", "when_supported")),
])
def test_checksum_settings(s3_env, monkeypatch, tmp_path, endpoint, env, profile, expected):
    """Which checksum settings the client gets; no request is made."""
    if endpoint is None:
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    for name in (s3_errors.REQUEST_CHECKSUM_ENV, s3_errors.RESPONSE_CHECKSUM_ENV):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if profile:
        (tmp_path / "config").write_text("[default]\n" + profile)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    config = s3_connection.Connection("bucket").client.meta.config
    assert (config.request_checksum_calculation, config.response_checksum_validation) == expected


# ----------------------------------------------------------------------------------------------
# botocore's own log lines


_LOGGED_SCRIPT = r"""
import logging, sys
logging.basicConfig(level=getattr(logging, sys.argv[2]), format="%(name)s %(levelname)s %(message)s")
from jobs import store
print(store.open_store(sys.argv[1]).list())
"""


def test_sdk_log_lines_stay_off_the_terminal(s3_bucket):
    r = subprocess.run(ghostbench("report", "demo", "--store", f"{s3_bucket}/x"), check=False, capture_output=True,
                       text=True, cwd=REPO_ROOT, timeout=120)
    assert r.returncode == errors.EXIT_BAD_INPUT and "no report at" in _one_error_line(r.stderr)
    assert "Found credentials" not in r.stderr and "botocore" not in r.stderr
    # a stage logs at INFO: still not botocore's lines
    r = subprocess.run([sys.executable, "-c", _LOGGED_SCRIPT, s3_bucket, "INFO"], check=True, capture_output=True,
                       text=True, cwd=REPO_ROOT, timeout=120)
    assert r.stdout.strip() == "[]" and "Found credentials" not in r.stderr and "botocore" not in r.stderr
    # asked for with the DEBUG level: there they are
    r = subprocess.run([sys.executable, "-c", _LOGGED_SCRIPT, s3_bucket, "DEBUG"], check=True, capture_output=True,
                       text=True, cwd=REPO_ROOT, timeout=120)
    assert "botocore.credentials INFO Found credentials in environment variables." in r.stderr


def test_quieting_leaves_the_root_logger_and_set_levels_alone(monkeypatch):
    loggers = [logging.getLogger(n) for n in ("", "ghostbench", "botocore", "boto3", "s3transfer")]
    saved = [lg.level for lg in loggers]
    monkeypatch.setattr(s3_connection, "_quieted", set())
    root, _, botocore_logger, boto3_logger, _ = loggers
    try:
        root.setLevel(logging.INFO)
        loggers[1].setLevel(logging.NOTSET)
        botocore_logger.setLevel(logging.NOTSET)
        boto3_logger.setLevel(logging.ERROR)  # somebody chose this: kept
        s3_connection.quiet_sdk_logs()
        assert root.level == logging.INFO and boto3_logger.level == logging.ERROR
        assert botocore_logger.level == logging.WARNING
        root.setLevel(logging.DEBUG)  # asked for: let through
        s3_connection.quiet_sdk_logs()
        assert botocore_logger.level == logging.NOTSET and root.level == logging.DEBUG
    finally:
        for lg, level in zip(loggers, saved):
            lg.setLevel(level)


# ----------------------------------------------------------------------------------------------
# Sweeps on s3://


@pytest.fixture(scope="module")
def ort_reference(image_set, tmp_path_factory, demo_weights) -> tuple[list[tuple], pathlib.Path]:
    """The full sweep (null targets in both modes, one ONNX Runtime target) on a directory store."""
    tmp = tmp_path_factory.mktemp("reference")
    path = sweep_file(tmp, "ref", str(tmp / "store"), str(image_set), str(image_set / "val_label.txt"),
                      ort_weights=(str(demo_weights[0]), demo_weights[1]))
    assert cli.main(["run", str(path)]) == 0
    return report_rows(store.open_store(tmp / "store"), "ref"), tmp / "store"


@pytest.mark.slow
def test_sweep_on_s3_gives_the_same_report_as_on_a_directory(s3_bucket, image_set, ort_reference, demo_weights,
                                                           tmp_path, capsys):
    reference, ref_store = ort_reference
    images, labels = upload_inputs(image_set, s3_bucket)  # images listed from an s3 prefix, labels from s3
    weights_uri = f"{s3_bucket}/inputs/weights.pth"
    store.open_store(s3_bucket).put_file("inputs/weights.pth", demo_weights[0])  # export reads them from s3
    path = sweep_file(tmp_path, "s", f"{s3_bucket}/results", images, labels,
                      ort_weights=(weights_uri, demo_weights[1]))
    assert cli.main(["run", str(path)]) == 0
    st = store.open_store(f"{s3_bucket}/results")
    assert report_rows(st, "s") == reference
    assert ("ort-f32", 4) in {(r[0], r[1]) for r in reference}
    # the model and the engine are the same bytes as on the directory store
    plan = plan_mod.make_plan(spec_mod.load(path), st.uri)
    for step in plan.steps:
        m = commit.read_manifest(st.child(step.out))
        assert m is not None and st.size(step.log) > 0  # every step committed, its log kept
        if step.stage in ("export", "convert"):
            ref_m = json.loads((ref_store / step.out / commit.MANIFEST).read_text())
            onnx = {f["name"]: f["sha256"] for f in m["files"] if f["name"].endswith(".onnx")}
            assert onnx and onnx == {f["name"]: f["sha256"] for f in ref_m["files"] if f["name"].endswith(".onnx")}
    assert {n.rsplit("/", 1)[1] for n in st.list("sweeps/s")} >= {"spec.yaml", "plan.json", "status.json",
                                                                   "report.md", "report.json", "report.csv"}
    # status, report and plan read the store
    capsys.readouterr()
    assert cli.main(["status", "s", "--store", st.uri]) == 0
    assert "succeeded" in capsys.readouterr().out
    assert cli.main(["report", "s", "--store", st.uri, "--format", "csv"]) == 0
    assert "ort-f32" in capsys.readouterr().out
    assert cli.main(["run", str(path)]) == 0
    assert "(0 run now)" in capsys.readouterr().err
    # no credential anywhere in the bucket: logs, manifests, reports, the stored spec
    everything = all_objects_text(s3_bucket)
    assert s3server.SECRET_KEY.encode() not in everything and s3server.ACCESS_KEY.encode() not in everything


# ----------------------------------------------------------------------------------------------
# Faults


class _Hooked(display.ProgressDisplay):
    """The CLI's progress display on the current (captured) stderr, plus a hook called on every event."""

    hook = staticmethod(lambda statuses, event: None)

    def __init__(self):
        super().__init__(stream=sys.stderr)

    def __call__(self, statuses, event):
        type(self).hook(statuses, event)
        super().__call__(statuses, event)


def _first_infer(plan: plan_mod.Plan) -> plan_mod.Step:
    return next(s for s in plan.steps if s.stage == "infer")


@pytest.mark.slow
def test_server_down_for_seconds_mid_sweep_is_survived(s3_env, s3_bucket, image_set, small_reference, tmp_path):
    """The server is killed when preprocessing has finished, before inference starts; it comes back
    once the inference step has met the outage for a while (its log shows four retries, with botocore's
own retries in between: several seconds). The controller and the
    step wait for it; the sweep completes with the same report."""
    server = s3_env
    images, labels = upload_inputs(image_set, s3_bucket)
    path = sweep_file(tmp_path, "s", s3_bucket, images, labels, shards=1, small=True)
    spec = spec_mod.load(path)
    st = store.open_store(s3_bucket)
    plan = plan_mod.make_plan(spec, st.uri)
    victim = _first_infer(plan)  # the runner starts steps in plan order
    runner.write_sweep_files(spec, plan, st)
    executor = local_executor.LocalExecutor(st, max_parallel=2)
    stopped = threading.Event()
    seen_retries = threading.Event()

    def on_change(statuses, event):
        if event.startswith("finished preprocess") and not stopped.is_set():
            server.kill()  # a crash; returns once the process is gone
            stopped.set()

    def restarter():
        try:
            if not stopped.wait(timeout=120):
                return
            log_path, _ = executor._log_path(victim)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # bounded wait for the condition
                if log_path.exists() and log_path.read_text(errors="replace").count("retry ") >= 4:
                    seen_retries.set()
                    break
                time.sleep(0.1)
        finally:
            server.start()

    t = threading.Thread(target=restarter, daemon=True)
    t.start()
    result = runner.run(plan, st, executor, on_change, poll_s=0.2)
    t.join(timeout=180)
    assert stopped.is_set() and seen_retries.is_set() and server.running
    assert result.ok, {s.title: (s.state, s.reason, s.log_tail) for s in result.statuses.values()}
    assert report_rows(st, "s") == small_reference
    assert "retry 4" in st.read_text(victim.log)  # the step itself waited for the server


@pytest.mark.slow
def test_past_the_deadline_fails_clearly_and_resumes(s3_env, s3_bucket, image_set, small_reference, tmp_path,
                                                     monkeypatch, capsys):
    server = s3_env
    images, labels = upload_inputs(image_set, s3_bucket)
    path = sweep_file(tmp_path, "s", s3_bucket, images, labels, shards=1, small=True)

    def stop_after_preprocessing(statuses, event):
        if event.startswith("finished preprocess") and server.running:
            server.kill()

    with monkeypatch.context() as mp:
        mp.setenv(s3_connection.DEADLINE_ENV, "1")
        mp.setenv("AWS_MAX_ATTEMPTS", "1")
        mp.setattr(_Hooked, "hook", staticmethod(stop_after_preprocessing))
        mp.setattr(display, "ProgressDisplay", _Hooked)
        assert cli.main(["run", str(path)]) == errors.EXIT_STORE_UNAVAILABLE
    line = _one_error_line(capsys.readouterr().err)
    assert "S3 endpoint http://127.0.0.1:" in line and "unreachable" in line and "gave up after 1s" in line

    server.start()
    st = store.open_store(s3_bucket)
    plan = plan_mod.make_plan(spec_mod.load(path), st.uri)
    done_before = runner.committed_keys(plan, st)
    assert {plan.by_key()[k].stage for k in done_before} == {"preprocess"}
    assert cli.main(["run", str(path)]) == 0
    assert f"({len(plan.steps) - len(done_before)} run now)" in capsys.readouterr().err
    assert report_rows(st, "s") == small_reference


_KILL_BEFORE_MANIFEST = r"""
import os, signal, sys
from controller import cli
from jobs.artifacts import commit
from jobs.store import s3
write_bytes = s3.S3Store.write_bytes
def write_or_die(self, name, data):
    if name == commit.MANIFEST:  # every file is in the store: die before the manifest
        os.kill(os.getpid(), signal.SIGKILL)
    return write_bytes(self, name, data)
s3.S3Store.write_bytes = write_or_die
sys.exit(cli.main(["stage", *sys.argv[1:]]))
"""


def _stage_args(step: plan_mod.Step) -> list[str]:
    """The step's arguments for ``ghostbench stage <stage>``: its command without ``-m <module>``."""
    if not hasattr(step, "command"):
        return list(step.args)
    cmd = list(step.command())
    return cmd[2:] if cmd[:1] == ["-m"] else cmd


@pytest.mark.slow
def test_stage_killed_between_output_and_manifest_is_not_committed(s3_bucket, image_set, small_reference,
                                                                   tmp_path):
    images, labels = upload_inputs(image_set, s3_bucket)
    path = sweep_file(tmp_path, "s", s3_bucket, images, labels, shards=1, small=True)
    st = store.open_store(s3_bucket)
    plan = plan_mod.make_plan(spec_mod.load(path), st.uri)
    step = next(s for s in plan.steps if s.stage == "preprocess")
    r = subprocess.run([sys.executable, "-c", _KILL_BEFORE_MANIFEST, step.stage, *_stage_args(step)],
                       check=False, capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert r.returncode == -9, r.stderr[-2000:]
    out = st.child(step.out)
    assert set(out.list()) == {"index.json", "part-00000.npy"}  # the output is there...
    assert commit.read_manifest(out) is None  # ...but not committed
    assert step.key not in runner.committed_keys(plan, st)
    assert cli.main(["run", str(path)]) == 0
    m = commit.read_manifest(out)
    assert m is not None and commit.corrupted_files(out, m) == []
    assert report_rows(st, "s") == small_reference


@pytest.mark.slow
def test_corrupted_object_detected_and_rebuilt(s3_env, s3_bucket, image_set, small_reference, tmp_path, capsys,
                                              monkeypatch):
    monkeypatch.setattr(display, "ProgressDisplay", _Hooked)  # sweep events on the captured stderr
    images, labels = upload_inputs(image_set, s3_bucket)
    path = sweep_file(tmp_path, "s", s3_bucket, images, labels, shards=1, small=True)
    assert cli.main(["run", str(path)]) == 0
    st = store.open_store(s3_bucket)
    plan = plan_mod.make_plan(spec_mod.load(path), st.uri)
    infer = next(s for s in plan.steps if s.stage == "infer")
    evaluation = next(s for s in plan.steps if s.stage == "eval")
    # change bytes of a committed object behind ghostbench's back (same size)
    raw, bucket, obj = s3_env.client(), s3_bucket[len("s3://"):], f"{infer.out}/predictions.csv"
    data = bytearray(raw.get_object(Bucket=bucket, Key=obj)["Body"].read())
    data[-3] = ord("7") if data[-3] != ord("7") else ord("8")
    raw.put_object(Bucket=bucket, Key=obj, Body=bytes(data))
    corrupted = hashlib.sha256(data).hexdigest()

    # the cheap "is it done?" check does not read the files: nothing reruns
    capsys.readouterr()
    assert cli.main(["run", str(path)]) == 0 and "(0 run now)" in capsys.readouterr().err
    # a stage reading the corrupted file fails with a clear message
    commit.uncommit(st.child(evaluation.out))
    assert cli.main(["run", str(path)]) == errors.EXIT_FAILURE
    assert "predictions.csv: sha256 does not match the manifest" in st.read_text(evaluation.log)
    # --verify finds it by its checksum and rebuilds it (and the eval after it)
    assert cli.main(["run", str(path), "--verify"]) == 0
    err = capsys.readouterr().err
    assert "1 corrupted output(s) to rebuild: infer null-f32 bs1 (predictions.csv)" in err
    m = commit.read_manifest(st.child(infer.out))
    assert m is not None and commit.corrupted_files(st.child(infer.out), m) == []
    assert hashlib.sha256(st.read_bytes(obj)).hexdigest() != corrupted
    assert report_rows(st, "s") == small_reference


@pytest.mark.parametrize("variable", s3_connection.ENDPOINT_SOURCES)
def test_an_endpoint_with_a_path_is_refused_naming_the_path(monkeypatch, variable):
    """Behind a reverse proxy at http://host:port/s3 a request signed over /s3/bucket/key reaches the server as
    /bucket/key (SignatureDoesNotMatch, with the right credentials) or the bucket is looked up under /s3 (does not
    exist): refused before any request, naming the setting and the path."""
    for other in s3_connection.ENDPOINT_SOURCES:
        monkeypatch.delenv(other, raising=False)
    monkeypatch.setenv(variable, "http://127.0.0.1:9/s3")  # nothing there: refused before connecting
    with pytest.raises(errors.BadInput, match=rf"^{variable}=http://127.0.0.1:9/s3: .*its path '/s3' is not "
                                              r"supported: .*SignatureDoesNotMatch"):
        store.open_store("s3://bucket/p").exists("x")


@pytest.mark.parametrize("url", ["127.0.0.1:9000", "http://[bad", "http://127.0.0.1:99999", "http://127.0.0.1:x"])
def test_a_malformed_endpoint_is_one_line_and_exit_2(url):
    """botocore fails on these with a bare ValueError (a traceback, exit 1): checked before it builds a client."""
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": url, "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b",
           "AWS_DEFAULT_REGION": "us-east-1"}
    r = subprocess.run(ghostbench("status", "demo", "--store", "s3://bucket"), check=False, capture_output=True,
                       text=True, cwd=REPO_ROOT, timeout=120, env=env)
    assert r.returncode == errors.EXIT_BAD_INPUT, r.stderr
    assert _one_error_line(r.stderr).startswith(f"ghostbench status: error: AWS_ENDPOINT_URL_S3={url}: expected")


def test_an_endpoint_with_a_path_from_the_command_line_is_one_line_and_exit_2(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_env.endpoint + "/s3")  # the server is there: the path is the cause
    r = subprocess.run(ghostbench("report", "X", "--store", "s3://bucket/p"), check=False, capture_output=True,
                       text=True, cwd=REPO_ROOT, timeout=120)
    assert r.returncode == errors.EXIT_BAD_INPUT, r.stderr
    line = _one_error_line(r.stderr)
    assert f"AWS_ENDPOINT_URL_S3={s3_env.endpoint}/s3: " in line and "path '/s3'" in line, line
    assert "does not exist" not in line.split(": ", 2)[1]  # the old, wrong cause


@pytest.mark.parametrize("url, ok", [
    ("http://minio:9000", True), ("https://s3.example.org", True), ("http://minio:9000/", True),
    ("http://minio:9000/s3", False), ("http://minio:9000/s3/", False), ("http://user:pw@minio:9000", False),
    ("ftp://minio:9000", False), ("minio:9000", False), ("http://[::1]:9000", True), ("http://minio:9000?x=1", False),
    ("http://minio:9000#f", False), ("http://minio:99999", False), ("http://minio:notaport", False),
    ("http://minio:65535", True), ("http://[bad", False),
])
def test_one_endpoint_rule_in_the_store_and_the_chart(url, ok):
    """The chart's ``store.endpoint`` schema and the store accept the same endpoints (``""``, AWS, aside)."""
    import jsonschema

    schema = json.loads((REPO_ROOT / "charts" / "ghostbench" / "values.schema.json").read_text())
    chart_ok = jsonschema.Draft7Validator({"type": "string", **{k: v for k, v in schema["properties"]["store"][
        "properties"]["endpoint"].items() if k != "description"}}).is_valid(url)
    assert (s3_connection.endpoint_problem(url) is None) == ok == chart_ok, s3_connection.endpoint_problem(url)
