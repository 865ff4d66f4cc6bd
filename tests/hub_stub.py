"""A local stand-in for the Hugging Face Hub's HTTP API, enough for `HfApi` to create a dataset repo, read and
change its visibility, and commit files (the preupload + NDJSON commit protocol, every file sent inline).

It records every request (method, path, Authorization header, JSON body) and keeps each repo's files, so a
test can point `HF_ENDPOINT` at it and check what a push really sent.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Repo:
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: int = 0


def _card_errors(readme: str) -> list[str]:
    """What the Hub would refuse in a card's YAML: unparsable metadata, a config without name or files."""
    import yaml

    if not readme.startswith("---\n"):
        return []
    try:
        meta = yaml.safe_load(readme.split("---\n", 2)[1]) or {}
    except yaml.YAMLError as exc:
        return [f"invalid YAML: {exc}"]
    errors = []
    for c in meta.get("configs", []):
        if not isinstance(c.get("config_name"), str):
            errors.append(f"config without config_name: {c}")
        for f in c.get("data_files", []):
            if not {"split", "path"} <= set(f):
                errors.append(f"data_files entry needs split and path: {f}")
    return errors


def asked_private(body: dict | None) -> bool | None:
    """The visibility a create/settings body asks for: `visibility` (huggingface_hub >= 1) or `private` (older)."""
    body = body or {}
    if "visibility" in body:
        return body["visibility"] == "private"
    return body.get("private")


class HubStub:
    def __init__(self, default_private: bool = False):
        self.default_private = default_private  # what the "organisation" gives a repo created without `private`
        self.repos: dict[str, Repo] = {}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "HubStub":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def calls(self, method: str, suffix: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"].endswith(suffix)]

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _record(self) -> tuple[str, bytes]:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                try:
                    body = json.loads(raw) if raw and "ndjson" not in (self.headers.get("Content-Type") or "") else None
                except ValueError:
                    body = None
                with stub._lock:
                    stub.requests.append({"method": self.command, "path": path, "body": body,
                                          "auth": self.headers.get("Authorization")})
                return path, raw

            def _repo_id(self, path: str) -> str:
                parts = path.split("/")  # /api/datasets/ORG/NAME/...
                return "/".join(parts[3:5])

            def _not_found(self) -> None:
                self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})

            def do_GET(self) -> None:
                path, _ = self._record()
                if path.startswith("/api/datasets/"):
                    repo_id = self._repo_id(path)
                    repo = stub.repos.get(repo_id)
                    if repo is None:
                        return self._not_found()
                    return self._reply(200, {"id": repo_id, "private": repo.private, "sha": f"{repo.commits:040d}",
                                             "siblings": [{"rfilename": f} for f in repo.files]})
                return self._reply(404, {"error": f"stub: no route {path}"})

            def do_POST(self) -> None:
                path, raw = self._record()
                body = stub.requests[-1]["body"]
                if path == "/api/validate-yaml":  # the README's metadata is checked before the commit
                    errors = _card_errors(body.get("content", ""))
                    return self._reply(400 if errors else 200, {"errors": [{"message": e} for e in errors],
                                                                "warnings": []})
                if path == "/api/repos/create":
                    repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
                    if repo_id in stub.repos:
                        return self._reply(409, {"error": "You already created this dataset repo"})
                    asked = asked_private(body)
                    stub.repos[repo_id] = Repo(private=stub.default_private if asked is None else asked)
                    return self._reply(200, {"url": f"{stub.endpoint}/datasets/{repo_id}", "name": repo_id})
                if "/preupload/" in path:
                    if self._repo_id(path) not in stub.repos:
                        return self._not_found()
                    return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                        "shouldIgnore": False} for f in body["files"]]})
                if "/commit/" in path:
                    repo = stub.repos.get(self._repo_id(path))
                    if repo is None:
                        return self._not_found()
                    for line in raw.decode().splitlines():
                        op = json.loads(line)
                        if op["key"] == "file":
                            repo.files[op["value"]["path"]] = base64.b64decode(op["value"]["content"])
                        elif op["key"] == "deletedFile":
                            repo.files.pop(op["value"]["path"], None)
                    repo.commits += 1
                    oid = f"{repo.commits:040d}"
                    return self._reply(200, {"commitUrl": f"{stub.endpoint}/datasets/{self._repo_id(path)}/commit/{oid}",
                                             "commitOid": oid})
                return self._reply(404, {"error": f"stub: no route {path}"})

            def do_PUT(self) -> None:
                path, _ = self._record()
                if path.endswith("/settings"):
                    repo = stub.repos.get(self._repo_id(path))
                    if repo is None:
                        return self._not_found()
                    asked = asked_private(stub.requests[-1]["body"])
                    if asked is not None:
                        repo.private = asked
                    return self._reply(200, {"private": repo.private})
                return self._reply(404, {"error": f"stub: no route {path}"})

        return Handler
