"""Fetching, verifying and loading weights: checksums first, clear one-line errors."""

from __future__ import annotations

import datetime
import functools
import hashlib
import http.server
import pathlib
import threading

import pytest

torch = pytest.importorskip("torch")

from jobs import errors
from jobs.models import ghostnet, weights


def _md5(path: pathlib.Path) -> str:
    return "md5:" + hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture()
def small_file(tmp_path) -> pathlib.Path:
    path = tmp_path / "blob.bin"
    path.write_bytes(b"ghostbench weights test\n" * 100)
    return path


# --- checksums ---------------------------------------------------------------------------------

def test_checksum_ok_md5_and_sha256_any_case(small_file, tmp_path):
    data = small_file.read_bytes()
    md5 = hashlib.md5(data).hexdigest()
    sha = hashlib.sha256(data).hexdigest()
    for checksum in (f"md5:{md5}", f"MD5:{md5.upper()}", f"sha256:{sha}", f"sha256:{sha.upper()}"):
        assert weights.fetch(str(small_file), checksum, tmp_path / "dl") == small_file


def test_checksum_mismatch_names_both_digests(small_file, tmp_path):
    wrong = "0" * 32
    with pytest.raises(errors.BadInput) as e:
        weights.fetch(str(small_file), f"md5:{wrong}", tmp_path)
    actual = hashlib.md5(small_file.read_bytes()).hexdigest()
    assert str(e.value) == f"weights {small_file}: md5 is {actual}, expected {wrong}"


@pytest.mark.parametrize("checksum", ["", "md5", "f7241350b4486bf00accbf9c3a192331", "crc32:1234abcd",
                                      "md5:xyz", "md5:f7241350b4486bf00accbf9c3a19233",
                                      "sha256:f7241350b4486bf00accbf9c3a192331", "md5:" + "g" * 32])
def test_malformed_checksum_is_bad_input(checksum, small_file, tmp_path):
    with pytest.raises(errors.BadInput, match="checksum") as e:
        weights.fetch(str(small_file), checksum, tmp_path)
    assert "\n" not in str(e.value)


def test_parse_checksum_names_field():
    with pytest.raises(errors.BadInput, match="^--checksum 'md5:12'"):
        weights.parse_checksum("md5:12", "--checksum")
    assert weights.parse_checksum(" SHA256:" + "AB" * 32) == ("sha256", "ab" * 32)


# --- locations ---------------------------------------------------------------------------------

def test_file_uri_and_plain_path(small_file, tmp_path):
    checksum = _md5(small_file)
    assert weights.fetch(small_file.as_uri(), checksum, tmp_path / "dl") == small_file
    assert weights.fetch(str(small_file), checksum, tmp_path / "dl") == small_file
    assert not (tmp_path / "dl").exists()  # local files are verified in place, not copied


def test_missing_file_is_bad_input(tmp_path):
    missing = tmp_path / "nope.pth"
    for uri in (str(missing), missing.as_uri()):
        with pytest.raises(errors.BadInput, match="no such file"):
            weights.fetch(uri, "md5:" + "0" * 32, tmp_path)


def test_public_uri_strips_credentials_and_query():
    assert weights.public_uri("https://user:secret@example.com:8443/a/w.pth?token=abc#x") == \
        "https://example.com:8443/a/w.pth"
    assert weights.public_uri("/data/w.pth") == "/data/w.pth"
    assert weights.public_uri("file:///data/w.pth") == "file:///data/w.pth"


@pytest.fixture()
def http_root(tmp_path):
    """A local HTTP server (no internet needed) serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_http_download_verified_and_reused(http_root, tmp_path, small_file):
    root, base = http_root
    (root / "w.pth").write_bytes(small_file.read_bytes())
    dest = tmp_path / "dl"
    path = weights.fetch(f"{base}/w.pth?sig=abc", _md5(small_file), dest)
    assert path == dest / "w.pth"
    assert path.read_bytes() == small_file.read_bytes()
    assert [p.name for p in dest.iterdir()] == ["w.pth"]  # no temp files left behind
    (root / "w.pth").unlink()  # a verified copy is reused without downloading again
    assert weights.fetch(f"{base}/w.pth", _md5(small_file), dest) == path


def test_http_errors_are_one_line(http_root, tmp_path, small_file):
    root, base = http_root
    with pytest.raises(errors.BadInput, match="HTTP 404") as e:
        weights.fetch(f"{base}/missing.pth", _md5(small_file), tmp_path / "dl")
    assert "\n" not in str(e.value)
    (root / "w.pth").write_bytes(b"tampered")
    with pytest.raises(errors.BadInput, match="md5 is"):
        weights.fetch(f"{base}/w.pth", _md5(small_file), tmp_path / "dl")


# --- loading -----------------------------------------------------------------------------------

def test_load_demo_weights(demo_weights):
    path, checksum = demo_weights
    assert checksum.startswith("sha256:") and len(checksum) == 7 + 64
    weights.verify(path, checksum, str(path))
    state = weights.load_state_dict(path)
    model = ghostnet.GhostNet()
    weights.apply_state_dict(model, state, str(path))
    assert torch.equal(model.conv_stem.weight, state["conv_stem.weight"])


def test_save_deterministic_weights_is_reproducible(tmp_path):
    a = weights.save_deterministic_weights(tmp_path / "a.pth", "ghostnet_1.0x", 7)
    b = weights.save_deterministic_weights(tmp_path / "b.pth", "ghostnet_1.0x", 7)
    sa, sb = weights.load_state_dict(tmp_path / "a.pth"), weights.load_state_dict(tmp_path / "b.pth")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.startswith("sha256:") and b.startswith("sha256:")
    with pytest.raises(errors.BadInput, match="not known"):
        weights.save_deterministic_weights(tmp_path / "c.pth", "no_such_model", 7)


@pytest.mark.parametrize("content", [
    pytest.param(lambda p: p.write_bytes(b"this is not a checkpoint"), id="garbage"),
    pytest.param(lambda p: p.write_bytes(b""), id="empty"),
    pytest.param(lambda p: torch.save([torch.zeros(2)], p), id="list"),
    pytest.param(lambda p: torch.save(torch.zeros(2), p), id="tensor"),
    pytest.param(lambda p: torch.save({"epoch": 3, "weights": torch.zeros(2)}, p), id="dict-with-int"),
    pytest.param(lambda p: torch.save({}, p), id="empty-dict"),
])
def test_not_a_state_dict_is_bad_input(content, tmp_path):
    path = tmp_path / "bad.pth"
    content(path)
    with pytest.raises(errors.BadInput) as e:
        weights.load_state_dict(path)
    message = str(e.value)
    assert str(path) in message and "\n" not in message


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "pickle.pth"
    torch.save({"x": datetime.date(2020, 1, 1)}, path)  # not on weights_only's allow-list
    with pytest.raises(errors.BadInput, match="not a PyTorch weights file"):
        weights.load_state_dict(path)


def test_wrapped_and_prefixed_checkpoints_are_unwrapped(tmp_path, caplog):
    state = {"a.weight": torch.ones(2), "b.bias": torch.zeros(3)}
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 9}, tmp_path / "w.pth")
    with caplog.at_level("INFO", logger="ghostbench"):
        loaded = weights.load_state_dict(tmp_path / "w.pth")
    assert list(loaded) == list(state)
    assert "'state_dict' entry" in caplog.text and "'module.' prefix" in caplog.text


def test_wrong_keys_are_listed():
    model = ghostnet.GhostNet()
    state = ghostnet.deterministic_state_dict(0)
    state["extra.weight"] = torch.zeros(1)
    del state["conv_stem.weight"]
    with pytest.raises(errors.BadInput) as e:
        weights.apply_state_dict(model, state, "w.pth")
    message = str(e.value)
    assert "1 missing (conv_stem.weight)" in message
    assert "1 unexpected (extra.weight)" in message
    assert "\n" not in message


def test_wrong_shapes_are_listed():
    model = ghostnet.GhostNet()
    state = ghostnet.deterministic_state_dict(0)
    state["classifier.weight"] = torch.zeros(1001, 1280)
    state["classifier.bias"] = torch.zeros(1001)
    with pytest.raises(errors.BadInput, match=r"2 with the wrong shape \(classifier.weight \(1001, 1280\)"):
        weights.apply_state_dict(model, state, "w.pth")


def test_many_missing_keys_are_summarised():
    model = ghostnet.GhostNet()
    with pytest.raises(errors.BadInput, match=r"512 missing \(conv_stem.weight, .* and 508 more\)"):
        weights.apply_state_dict(model, {"x": torch.zeros(1)}, "w.pth")
