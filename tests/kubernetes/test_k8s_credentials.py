"""Expired and rotated cluster credentials (``controller.kubernetes.api``), against the fake API server.

An exec credential plugin may return a token without ``expirationTimestamp`` (kubectl runs it again
after a 401; the python client never does: kubernetes-client/python#741). The fake accepts only the
token of the moment (``FakeCluster.require_token``); the tests rotate it. On a 401 the Api loads the
credentials again (the plugin runs again, a token file is read again) and repeats the call once; if
the server still refuses, ``CredentialsRejected`` (exit code 2) ends the command at once, with no
retry loop. Nothing waits on time: the fake's state and fake sleeps are the only synchronisation.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import threading

import pytest

pytest.importorskip("kubernetes", reason="the Kubernetes tests need the client: pip install 'ghostbench[kubernetes]'")

import kubernetes.config.incluster_config

from controller import cli
from controller.kubernetes import api as k8s_api
from controller.kubernetes import executor as k8s_executor
from controller.kubernetes import manifests
from controller.kubernetes import settings as k8s_settings
from jobs import errors
from jobs import store as store_mod
from tests.support.cluster import NAMESPACE, load_plan, write_settings
from tests.support.k8s_fake import FakeCluster
from tests.support.paths import REPO_ROOT
from tests.support.sweeps import make_sweep

PLUGIN = '''\
import json, pathlib, sys
token_file, calls = sys.argv[1:3]
with open(calls, "a") as f:
    f.write("run\\n")
# client.authentication.k8s.io/v1 without expirationTimestamp: "valid until the server says 401"
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                  "status": {"token": pathlib.Path(token_file).read_text().strip()}}))
'''


class ExecPlugin:
    """An exec credential plugin in ``tmp``: prints the token in its token file; counts its runs."""

    def __init__(self, tmp: pathlib.Path, token: str):
        self.script = tmp / "credential-plugin.py"
        self.script.write_text(PLUGIN)
        self.token_file = tmp / "plugin-token"
        self.calls_file = tmp / "plugin-calls"
        self.calls_file.write_text("")
        self.set_token(token)

    def set_token(self, token: str) -> None:
        self.token_file.write_text(token)

    @property
    def calls(self) -> int:
        return len(self.calls_file.read_text().splitlines())

    def user(self) -> dict:
        return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
                         "args": [str(self.script), str(self.token_file), str(self.calls_file)],
                         "interactiveMode": "Never"}}


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """A fake cluster that wants the token "t1", with the store's ConfigMap and Secret."""
    with FakeCluster(REPO_ROOT) as fc:
        fc.add_config_map(NAMESPACE, "ghostbench-store", {"AWS_DEFAULT_REGION": "us-test-1"})
        fc.add_secret(NAMESPACE, "ghostbench-store", {"AWS_ACCESS_KEY_ID": "AKIAFAKE",
                                                      "AWS_SECRET_ACCESS_KEY": "fake"})
        fc.require_token("t1")
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield fc


@pytest.fixture
def plugin(tmp_path, cluster, monkeypatch):
    """The kubeconfig (KUBECONFIG) of context "fake-ctx", user "exec-user": the plugin, token "t1"."""
    p = ExecPlugin(tmp_path, "t1")
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig(tmp_path / "kubeconfig", NAMESPACE, user=p.user(),
                                                            user_name="exec-user", context="fake-ctx")))
    return p


def rotate(cluster: FakeCluster, plugin: ExecPlugin | None, token: str) -> None:
    """The old token expires: the server accepts only ``token``, which the plugin now hands out."""
    cluster.require_token(token)
    if plugin is not None:
        plugin.set_token(token)


def job_body(name: str) -> dict:
    labels = {"app": "credentials-test"}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "x", "command": ["python", "-c", "print('hello')"]}]}}}}


def test_rotated_token_is_reloaded_for_every_call(cluster, plugin):
    api = k8s_api.Api.connect(NAMESPACE)
    try:
        assert plugin.calls == 1  # loading the kubeconfig ran it once
        assert api.list_jobs("app=credentials-test") == ([], str(cluster.rv))
        before = str(cluster.rv)

        def after_rotation(n, call):
            """``call`` after the n-th rotation: one 401, one more run of the plugin, then an answer."""
            rotate(cluster, plugin, f"t{n}")
            result = call()
            assert (plugin.calls, cluster.unauthorized, api.reloads) == (n, n - 1, n - 1)
            return result

        assert after_rotation(2, lambda: api.create_job(job_body("cred-job")))["metadata"]["name"] == "cred-job"
        cluster.wait_for(lambda c: (c.job("cred-job") or {}).get("status", {}).get("succeeded") == 1)
        assert after_rotation(3, lambda: api.get_job("cred-job"))["status"]["succeeded"] == 1
        assert [j["metadata"]["name"] for j in after_rotation(4, lambda: api.list_jobs("app=credentials-test"))[0]] \
            == ["cred-job"]

        def first_event():
            for event in api.watch_jobs("app=credentials-test", before, timeout_seconds=5):
                return event
        assert after_rotation(5, first_event).type == "ADDED"
        pods = after_rotation(6, lambda: api.list_pods("app=credentials-test"))
        assert len(pods) == 1
        name = pods[0]["metadata"]["name"]
        assert after_rotation(7, lambda: api.read_pod_log(name, "main")) == "hello\n"
        assert after_rotation(8, lambda: api.delete_job("cred-job")) is True
        assert cluster.job_names() == []
    finally:
        api.close()


def test_token_rotated_mid_sweep_is_reloaded(tmp_path, cluster, plugin):
    spec_path = make_sweep(tmp_path)
    settings = write_settings(tmp_path)
    plan = load_plan(spec_path)
    infers = sorted({manifests.job_name(plan.sweep, s) for s in plan.steps if s.stage == "infer"})
    cluster.hold(lambda job: job["metadata"]["labels"].get("app.kubernetes.io/component") == "infer")
    result: list[int] = []
    sweep = threading.Thread(target=lambda: result.append(
        cli.main(["run", str(spec_path), "--executor", "kubernetes", "--settings", str(settings)])))
    sweep.start()
    try:
        cluster.wait_for(lambda c: all(c.creates[n] for n in infers))  # submitted, waiting to run
        rotate(cluster, plugin, "t2")  # the token expires mid-sweep
    finally:
        for name in infers:
            cluster.release(name)
        sweep.join()
    assert result == [0]
    assert cluster.unauthorized >= 1  # the watch thread and the main thread may both have hit it ...
    assert plugin.calls == 2  # ... but the plugin ran again only once


def test_rejected_credentials_are_one_error_exit_2(cluster, plugin):
    rotate(cluster, None, "t2")  # the plugin keeps handing out t1, which the server no longer takes
    api = k8s_api.Api.connect(NAMESPACE)
    try:
        with pytest.raises(k8s_api.CredentialsRejected) as raised:
            api.list_jobs("app=credentials-test")
    finally:
        api.close()
    e = raised.value
    assert isinstance(e, errors.BadInput) and e.exit_code == errors.EXIT_BAD_INPUT == 2
    assert not isinstance(e, k8s_api.ApiError)  # nothing that retries ApiErrors may swallow it
    message = str(e)
    assert "\n" not in message and "rejected the credentials" in message
    assert 'context "fake-ctx" (user "exec-user")' in message and "also after loading them again" in message
    assert plugin.calls == 2 and cluster.unauthorized == 2  # one reload, one retry, no more

    # an unauthenticated client has nothing to reload: the first 401 is the answer
    bare = k8s_api.Api.for_host(cluster.url, NAMESPACE)
    try:
        with pytest.raises(k8s_api.CredentialsRejected, match="no credentials"):
            bare.get_job("anything")
    finally:
        bare.close()
    assert cluster.unauthorized == 3


def test_a_failing_plugin_is_named_in_the_error(cluster, plugin):
    api = k8s_api.Api.connect(NAMESPACE)
    try:
        rotate(cluster, None, "t2")
        plugin.token_file.unlink()  # the plugin fails from now on (exit 1): the reload gives no token
        with pytest.raises(k8s_api.CredentialsRejected, match="gave no token or certificate: did the exec plugin"):
            api.list_jobs("app=x")
    finally:
        api.close()
    assert plugin.calls == 2 and cluster.unauthorized == 2


def test_cancel_and_run_with_rejected_credentials_exit_2_with_one_line(tmp_path, cluster, plugin, capsys):
    rotate(cluster, None, "t2")
    settings = write_settings(tmp_path)
    assert cli.main(["cancel", "s", "--settings", str(settings)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ghostbench cancel: error: the API server at ")
    assert 'rejected the credentials of context "fake-ctx" (user "exec-user")' in err[0]
    assert plugin.calls == 2

    spec_path = make_sweep(tmp_path)
    assert cli.main(["run", str(spec_path), "--executor", "kubernetes", "--settings", str(settings)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors_printed = [line for line in err if "error:" in line]
    assert len(errors_printed) == 1 and errors_printed[0].startswith("ghostbench run: error: the API server at ")
    assert 'context "fake-ctx" (user "exec-user")' in errors_printed[0]
    assert plugin.calls == 4 and cluster.unauthorized == 4  # each command: one reload, one retry
    assert cluster.creates == {}


def test_watch_thread_ends_the_sweep_at_once_when_credentials_are_rejected(tmp_path, cluster, plugin):
    spec_path = make_sweep(tmp_path)
    plan = load_plan(spec_path)
    step = next(s for s in plan.steps if not s.deps)
    name = manifests.job_name(plan.sweep, step)
    cluster.hold(lambda job: True)
    slept: list[float] = []
    api = k8s_api.Api.connect(NAMESPACE)
    executor = k8s_executor.KubernetesExecutor(
        store_mod.open_store(tmp_path / "store"), sweep=plan.sweep,
        settings=k8s_settings.load_settings(write_settings(tmp_path)), api=api, sleep=slept.append,
        clock=lambda: 0.0, notify=lambda text: None)
    try:
        executor.start(step)
        cluster.wait_for(lambda c: len(c.watch_versions) == 1)  # the watch thread listed and is watching
        rotate(cluster, None, "t2")  # the plugin still hands out t1
        cluster.expire_next_watch()  # the watch's next event is a 410: the thread must list again ...
        cluster.release(name)  # ... which it does as soon as the Job changes
        with pytest.raises(k8s_api.CredentialsRejected, match="also after loading them again"):
            executor.wait(timeout=120)  # returns at once when the watch thread gives up
    finally:
        executor.close()
        api.close()
    assert slept == [] and executor.stats["watch_errors"] == 0  # no backoff, no retry until a deadline
    assert plugin.calls == 2 and cluster.unauthorized == 2


def test_rotated_token_file_is_read_again(tmp_path, cluster, monkeypatch):
    token_file = tmp_path / "token"
    token_file.write_text("t1")
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig(tmp_path / "kubeconfig", NAMESPACE,
                                                            user={"tokenFile": str(token_file)})))
    api = k8s_api.Api.connect(NAMESPACE)
    try:
        api.list_jobs("app=x")
        token_file.write_text("t2")  # rotated on disk ...
        cluster.require_token("t2")  # ... and the old one expired
        assert api.list_jobs("app=x")[0] == []
        assert api.reloads == 1 and cluster.unauthorized == 1
    finally:
        api.close()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for a test certificate")
def test_in_cluster_service_account_token_is_read_again(tmp_path, monkeypatch):
    """The pod's service account token file, rotated by the kubelet, through the client's in-cluster loader
    (HTTPS only: the fake serves TLS with a certificate made here)."""
    cert, key = tmp_path / "ca.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    token_file = tmp_path / "token"
    token_file.write_text("t1")
    monkeypatch.setattr(kubernetes.config.incluster_config, "SERVICE_TOKEN_FILENAME", str(token_file))
    monkeypatch.setattr(kubernetes.config.incluster_config, "SERVICE_CERT_FILENAME", str(cert))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    with FakeCluster(REPO_ROOT, tls=(cert, key)) as cluster:
        cluster.require_token("t1")
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", cluster.url.rsplit(":", 1)[1])
        api = k8s_api.Api.connect(NAMESPACE)
        try:
            assert api.host == cluster.url and "service account" in api.credentials
            api.list_jobs("app=x")
            token_file.write_text("t2")  # the kubelet rotated it
            cluster.require_token("t2")
            assert api.list_jobs("app=x")[0] == []
            assert api.reloads == 1 and cluster.unauthorized == 1
            cluster.require_token("t3")  # a token the file never gets: one clear error
            with pytest.raises(k8s_api.CredentialsRejected, match="in-cluster"):
                api.list_jobs("app=x")
            assert api.reloads == 2 and cluster.unauthorized == 3
        finally:
            api.close()


def test_plugin_output_is_an_exec_credential_without_expiry(tmp_path):
    """The plugin the tests use prints the case under test: a v1 ExecCredential with no expirationTimestamp."""
    p = ExecPlugin(tmp_path, "abc")
    out = json.loads(subprocess.run([sys.executable, str(p.script), str(p.token_file), str(p.calls_file)],
                                    check=True, capture_output=True, text=True).stdout)
    assert out == {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
                   "status": {"token": "abc"}}
    assert p.calls == 1
