"""S3 throughput: a 200 MiB shard up and down through the store, against plain boto3 on the same server.

One SeaweedFS server (``weed mini`` on 127.0.0.1, started as the tests start it), one 200 MiB
file; for each kind of transfer, after one warm-up round, each repetition runs both variants once,
in alternating order:
  upload   store: S3Store.put_file (what commit.Output does)   boto3: client.upload_file
  download store: S3Store.get_file (what commit.local_copy does) boto3: client.download_file
  stream   store: S3Store.open_read read 4 MB at a time (what the shard reader does)
           boto3: get_object()["Body"].read 4 MB at a time
boto3 runs with its default transfer settings; the store with its own (jobs.store.s3_connection.TRANSFER).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import time
from typing import Any

from benchmarks import common

SIZE = 200 * (1 << 20)
READ_CHUNK = 4 << 20
BUCKET = "bench"
KEY = "shard-00000-of-00001/part-00000.npy"


def _make_file(path: pathlib.Path) -> None:
    block = os.urandom(1 << 20)  # incompressible, 1 MiB at a time
    with open(path, "wb") as f:
        f.writelines(i.to_bytes(8, "little") + block[8:] for i in range(SIZE >> 20))


@contextlib.contextmanager
def _aws_env(env: dict[str, str]):
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return SIZE / (time.perf_counter() - t0) / 1e6  # MB/s


def run(work, repeats: int = 5) -> dict[str, Any]:
    from jobs import store as store_mod
    from tests.support import s3server

    root = pathlib.Path(work) / "s3-throughput"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    src = root / "shard.npy"
    _make_file(src)
    server = s3server.SeaweedServer(root / "server")
    try:
        server.start()
        server.create_bucket(BUCKET)
        client = server.client()
        with _aws_env(server.env()):
            st = store_mod.open_store(f"s3://{BUCKET}/store")
            st.exists("warm-up")  # the bucket check, once, as every process pays it

            def store_up():
                st.put_file(KEY, src)  # an S3 store leaves the local file where it is

            def boto_up():
                client.upload_file(str(src), BUCKET, f"boto3/{KEY}")

            def store_down():
                st.get_file(KEY, root / "down.npy")

            def boto_down():
                client.download_file(BUCKET, f"boto3/{KEY}", str(root / "down.npy"))

            def store_stream():
                with st.open_read(KEY) as f:
                    while f.read(READ_CHUNK):
                        pass

            def boto_stream():
                body = client.get_object(Bucket=BUCKET, Key=f"boto3/{KEY}")["Body"]
                while body.read(READ_CHUNK):
                    pass

            pairs = {"upload": (store_up, boto_up), "download": (store_down, boto_down),
                     "stream": (store_stream, boto_stream)}
            values: dict[str, dict[str, list[float]]] = {k: {"store": [], "boto3": []} for k in pairs}
            for what, (ours, theirs) in pairs.items():  # one kind at a time: uploads disturb downloads
                order = [("store", ours), ("boto3", theirs)]
                for i in range(-1, repeats):  # round -1 warms up (connections, the server's caches)
                    for name, fn in (order if i % 2 == 0 else order[::-1]):
                        mbps = _timed(fn)
                        (root / "down.npy").unlink(missing_ok=True)
                        if i >= 0:
                            values[what][name].append(mbps)
            assert st.size(KEY) == SIZE
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    results: dict[str, Any] = {"size_bytes": SIZE, "repeats": repeats, "endpoint": "weed mini on 127.0.0.1"}
    for what, v in values.items():
        store_s, boto_s = common.summarize(v["store"]), common.summarize(v["boto3"])
        paired = [a / b for a, b in zip(v["store"], v["boto3"])]  # each pair ran back to back
        results[what] = {"store_MBps": store_s, "boto3_MBps": boto_s,
                         "ratio": store_s["median"] / boto_s["median"], "paired_ratio": common.summarize(paired)}
    return results


def render(res: dict[str, Any]) -> str:
    rows = []
    for what in ("upload", "download", "stream"):
        r = res[what]
        s, b = r["store_MBps"], r["boto3_MBps"]
        rows.append([what, f"{s['median']:.0f} ({s['min']:.0f}-{s['max']:.0f})",
                     f"{b['median']:.0f} ({b['min']:.0f}-{b['max']:.0f})", f"{r['ratio']:.2f}",
                     f"{r['paired_ratio']['median']:.2f}"])
    head = (f"{res['size_bytes'] / (1 << 20):.0f} MiB object, {res['repeats']} repeats, {res['endpoint']}; "
            "MB/s median (min-max)\n")
    return head + common.table(["", "store", "plain boto3", "store/boto3", "median of pairs"], rows)


def headlines(res: dict[str, Any]) -> list[tuple[str, dict]]:
    return [(f"S3 {what} store/boto3 (paired)", res[what]["paired_ratio"]) for what in ("upload", "download", "stream")]
