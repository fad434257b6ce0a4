"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1, enough for ``huggingface_hub.hf_hub_download``.

It answers ``HEAD``/``GET /{repo_id}/resolve/{revision}/{path}`` with the headers huggingface_hub (0.2x-0.3x) reads:
``X-Repo-Commit`` (commit hash), ``ETag`` (git-sha1-like for small files; the SHA-256 for "LFS" files, plus
``X-Linked-Etag``/``X-Linked-Size``), ``Content-Length``, and honours ``Range: bytes=N-`` with ``206 Partial
Content``.  Unknown files get ``404`` with ``X-Error-Code: EntryNotFound`` (what the Hub sends).

Every request is logged (method, path, Range header, status, body bytes sent, Authorization) so tests can prove what
went over the wire.  Faults for tests: ``drop_after[path] = n`` sends only n body bytes then closes the connection
(once); ``corrupt[path] = bytes`` serves other bytes while advertising the genuine ETag and size.

Usage::

    with LocalHub({"gslrm/x.pt": b"..."}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

DEFAULT_REPO = "wlyu/OpenFaceLift"
DEFAULT_REVISION = "3ebac9f8e2d791f02507b8aa61520e1ba379a115"


@dataclass
class Request:
    method: str
    path: str  # file path inside the repository ('' when the URL was not a resolve URL)
    range: str | None
    status: int
    body_bytes: int
    authorization: str | None


class LocalHub:
    def __init__(self, files: dict[str, bytes], *, repo_id: str = DEFAULT_REPO, revision: str = DEFAULT_REVISION,
                 lfs_min_size: int = 64) -> None:
        self.files = dict(files)
        self.repo_id, self.revision = repo_id, revision
        self.lfs_min_size = lfs_min_size  # files at least this big are served like LFS files (sha256 ETag)
        self.drop_after: dict[str, int] = {}
        self.corrupt: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- what the server advertises ------------------------------------------------------------------------------
    def etag(self, path: str) -> str:
        data = self.files[path]
        if len(data) >= self.lfs_min_size:
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git blob id, as the Hub sends

    def requests_for(self, path: str, method: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first (use it as a context manager)"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ---- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> "LocalHub":
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_HEAD(self) -> None:
                hub._answer(self, head=True)

            def do_GET(self) -> None:
                hub._answer(self, head=False)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-hf-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "LocalHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- request handling ----------------------------------------------------------------------------------------
    def _log(self, handler, method, path, status, sent) -> None:
        with self._lock:
            self.requests.append(Request(method, path, handler.headers.get("Range"), status, sent,
                                         handler.headers.get("Authorization")))

    def _answer(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        method = "HEAD" if head else "GET"
        prefix = f"/{self.repo_id}/resolve/"
        raw = h.path.split("?", 1)[0]
        if not raw.startswith(prefix):
            return self._not_found(h, method, "", "RepoNotFound")
        rev, _, path = unquote(raw[len(prefix):]).partition("/")
        if rev != self.revision:
            return self._not_found(h, method, path, "RevisionNotFound")
        if path not in self.files:
            return self._not_found(h, method, path, "EntryNotFound")
        genuine = self.files[path]
        body = self.corrupt.get(path, genuine)
        etag = self.etag(path)
        start = 0
        status = 200
        rng = h.headers.get("Range")
        if rng and not head:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if m:
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else len(body) - 1
                if start >= len(body):
                    h.send_response(416)
                    h.send_header("Content-Range", f"bytes */{len(body)}")
                    h.send_header("Content-Length", "0")
                    h.end_headers()
                    return self._log(h, method, path, 416, 0)
                body = body[start:end + 1]
                status = 206
        h.send_response(status)
        h.send_header("X-Repo-Commit", self.revision)
        h.send_header("ETag", f'"{etag}"')
        if len(genuine) >= self.lfs_min_size:
            h.send_header("X-Linked-Etag", f'"{etag}"')
            h.send_header("X-Linked-Size", str(len(genuine)))
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Type", "application/octet-stream")
        if status == 206:
            full = len(self.corrupt.get(path, genuine))
            h.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{full}")
        h.send_header("Content-Length", str(len(genuine) if head else len(body)))
        h.end_headers()
        if head:
            return self._log(h, method, path, status, 0)
        cut = self.drop_after.pop(path, None)
        if cut is not None and cut < len(body):
            h.wfile.write(body[:cut])
            h.wfile.flush()
            h.close_connection = True
            self._log(h, method, path, status, cut)
            try:  # make the client see an abrupt end of the body
                import socket
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        h.wfile.write(body)
        self._log(h, method, path, status, len(body))

    def _not_found(self, h, method, path, code) -> None:
        h.send_response(404)
        h.send_header("X-Error-Code", code)
        h.send_header("X-Error-Message", f"{code}: {path}")
        if code == "EntryNotFound":
            h.send_header("X-Repo-Commit", self.revision)
        h.send_header("Content-Length", "0")
        h.end_headers()
        self._log(h, method, path, 404, 0)
