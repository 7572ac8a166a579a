"""An older S3-compatible server, for the tests: a small TLS proxy in front of SeaweedFS.

botocore 1.36 and later send integrity checksums by default: a PUT over TLS goes out as an
``aws-chunked`` body with the checksum in a trailer (``x-amz-trailer``,
``x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER``). Older MinIO and Ceph releases answer
such a request ``400 XAmzContentSHA256Mismatch`` (boto/boto3#4400). ``OldS3Proxy`` does the same:
it listens on 127.0.0.1, terminates TLS with a throw-away self-signed certificate, refuses every
request that carries those markers with that S3 error, and forwards everything else unchanged to
the real server (the ``Host`` header is passed through, so SigV4 signatures still verify).

botocore only uses the trailer over HTTPS (over plain HTTP it puts the checksum in a header, which
older servers ignore), so the proxy must speak TLS for the fault to show. The certificate is made
with the ``openssl`` command line tool (no Python dependency); ``tls_available()`` says whether it
is there. Clients trust it through ``AWS_CA_BUNDLE`` (``env()``).
"""

from __future__ import annotations

import http.client
import http.server
import pathlib
import shutil
import socket
import ssl
import subprocess
import threading
import urllib.parse
from typing import Any

ERROR_CODE = "XAmzContentSHA256Mismatch"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "expect", "te", "upgrade"}
_ERROR_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>The provided '
              "'x-amz-content-sha256' header does not match what was computed.</Message><Resource>{path}"
              "</Resource><RequestId>old-s3-proxy</RequestId></Error>")


def tls_available() -> bool:
    return shutil.which("openssl") is not None


def make_certificate(folder: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, valid for two days: (cert, key)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "proxy-cert.pem", folder / "proxy-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def refusal_reason(headers: Any) -> str | None:
    """Why an older server would refuse this request (the new checksum markers), or None."""
    if headers.get("x-amz-trailer"):
        return f"x-amz-trailer: {headers.get('x-amz-trailer')}"
    encoding = (headers.get("content-encoding") or "").lower()
    if "aws-chunked" in encoding:
        return f"content-encoding: {encoding}"
    sha = (headers.get("x-amz-content-sha256") or "").upper()
    if sha.startswith("STREAMING-"):
        return f"x-amz-content-sha256: {sha}"
    return None


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass  # quiet: the tests read the proxy's counters instead

    def _read_body(self) -> bytes:
        """The request body as it came on the wire (chunked bodies with their framing)."""
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            raw = bytearray()
            while True:
                line = self.rfile.readline(65537)
                raw += line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers, up to the empty line
                        trailer = self.rfile.readline(65537)
                        raw += trailer
                        if trailer in (b"\r\n", b"\n", b""):
                            return bytes(raw)
                raw += self.rfile.read(size + 2)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        reason = refusal_reason(self.headers)
        if reason is not None:
            with self.server.lock:
                self.server.refused.append((self.command, self.path, reason))
            payload = _ERROR_XML.format(code=ERROR_CODE, path=self.path).encode()
            self.send_response_only(400, "Bad Request")
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        up = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=60)
        try:
            up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    up.putheader(name, value)
            up.endheaders()
            if body:
                up.send(body)
            resp = up.getresponse()
            data = resp.read()
            headers = resp.getheaders()
        except OSError:
            self.send_response_only(502, "Bad Gateway")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        finally:
            up.close()
        with self.server.lock:
            self.server.forwarded += 1
        self.send_response_only(resp.status, resp.reason)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP | {"transfer-encoding", "content-length"}:
                self.send_header(name, value)
        if self.command == "HEAD":
            self.send_header("Content-Length", resp.getheader("content-length") or "0")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, context: ssl.SSLContext | None):
        super().__init__(("127.0.0.1", 0), _Handler)
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.context = context
        self.lock = threading.Lock()
        self.refused: list[tuple[str, str, str]] = []
        self.forwarded = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.context is not None:
            sock.settimeout(30)  # the handshake happens in the handler's thread, on first use
            sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError):
                return
        super().finish_request(request, client_address)


class OldS3Proxy:
    """``https://127.0.0.1:PORT`` in front of ``upstream``, refusing the new checksum requests."""

    def __init__(self, upstream: str, folder: pathlib.Path, tls: bool = True):
        context = None
        self.ca_bundle: pathlib.Path | None = None
        if tls:
            cert, key = make_certificate(pathlib.Path(folder))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.ca_bundle = cert
        self._server = _Server(upstream, context)
        scheme = "https" if tls else "http"
        self.endpoint = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="old-s3-proxy")

    @property
    def refused(self) -> list[tuple[str, str, str]]:
        """(method, path, why) of every request answered with XAmzContentSHA256Mismatch."""
        with self._server.lock:
            return list(self._server.refused)

    @property
    def forwarded(self) -> int:
        with self._server.lock:
            return self._server.forwarded

    def env(self) -> dict[str, str]:
        """What a user sets to reach the server through this proxy (on top of the server's own env)."""
        out = {"AWS_ENDPOINT_URL_S3": self.endpoint}
        if self.ca_bundle is not None:
            out["AWS_CA_BUNDLE"] = str(self.ca_bundle)
        return out

    def start(self) -> OldS3Proxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> OldS3Proxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
