"""A loopback Hugging Face Hub for tests: the HTTP routes the real `huggingface_hub` (2.4, over httpx), `transformers`
and `datasets` clients call to create a repo, commit to it (regular files inline, large/binary files through the LFS
batch API and a PUT), tag it, validate a card's YAML, and download from it (repo info, tree, paths-info, resolve).

It runs `http.server` in a thread on 127.0.0.1 (a free port) and keeps its blobs in a folder of its own. It is a
test double, not a Hub: one user (`USER`) whose token is `TOKEN`; repos are `namespace/name`; no Xet (clients need
`HF_HUB_DISABLE_XET=1`), no rate limits, no gating, and validate-yaml checks only what `LoopbackHub.card_errors`
checks (the licence id and the model-index).

    hub = LoopbackHub(tmp_path / "hub").start()
    env = {"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1", ...}  # for a subprocess
    hub.commits("org/name")[-1]  # what the last commit received
    hub.stop()
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

USER = "loopback-user"
TOKEN = "hf_loopback_fake_token"

REPO_TYPES = {"models": "model", "datasets": "dataset"}
URL_PREFIXES = {"model": "", "dataset": "datasets/"}

# The Hub sends binary files through LFS; it decides from the path (the .gitattributes patterns of a new repo) and
# from a sample of the content. These are the patterns this package's uploads need.
LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".parquet",
    ".arrow",
    ".npy",
    ".npz",
    ".png",
    ".jpg",
    ".jpeg",
    ".mp4",
    ".avi",
    ".wav",
    ".zip",
    ".gz",
    ".tar",
)

# Licence ids the Hub accepts in a card's `license:` (a subset of https://huggingface.co/docs/hub/repositories-licenses)
# and the ones that need `license_name` (and `license_link`) beside them.
KNOWN_LICENSES = {
    "apache-2.0",
    "mit",
    "bsd-3-clause",
    "cc-by-4.0",
    "cc-by-sa-4.0",
    "cc-by-nc-4.0",
    "cc-by-nc-sa-4.0",
    "cc-by-nc-nd-4.0",
    "cc0-1.0",
    "gpl-3.0",
    "lgpl-3.0",
    "openrail",
    "creativeml-openrail-m",
    "llama2",
    "unknown",
    "other",
}
LICENSES_NEEDING_NAME = {"other"}


def git_blob_oid(content: bytes) -> str:
    """The git object id of a blob (what the Hub reports as a regular file's `oid` and ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class StoredFile:
    sha256: str
    size: int
    lfs: bool
    blob_id: str  # git oid of the blob: of the content, or of the LFS pointer file

    def tree_entry(self, path: str) -> dict:
        entry = {"type": "file", "oid": self.blob_id, "size": self.size, "path": path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": 134}
        return entry


@dataclass
class Commit:
    oid: str
    parent: str | None
    summary: str
    files: dict[str, StoredFile]
    operations: list[dict]  # the NDJSON lines received (file contents decoded as `content`: bytes)


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branch or "refs/pr/N" -> commit oid
    tags: dict[str, str] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # commit oids in the order they were made

    def resolve(self, revision: str) -> Commit | None:
        oid = self.refs.get(revision) or self.tags.get(revision) or revision
        return self.commits.get(oid)


class HubError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, headers: dict | None = None, body: dict | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.headers, self.body = status, message, code, headers or {}, body


class LoopbackHub:
    """The server and its state; every request is recorded in `requests` as (method, path)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------------

    def start(self) -> LoopbackHub:
        hub = self

        class Handler(RequestHandler):
            pass

        Handler.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def client_env(self, home: Path, token: str | None = TOKEN) -> dict[str, str]:
        """Environment variables for a client subprocess talking to this server (huggingface_hub reads them when it
        is first imported, so they must be set before the process starts)."""
        env = {
            "HF_ENDPOINT": self.endpoint,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(home),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        if token is not None:
            env["HF_TOKEN"] = token
        return env

    def run_client(
        self, args: list[str], cwd: Path, token: str | None = TOKEN, env: dict | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        """Run `python *args` in `cwd` as a client of this server (HF_HOME in `cwd`), with this Python's PATH and
        PYTHONPATH; returns the finished process (text output)."""
        client_env = {key: os.environ[key] for key in ("PATH", "PYTHONPATH", "HOME") if key in os.environ}
        client_env.update(self.client_env(Path(cwd) / "hf-home", token), **(env or {}))
        return subprocess.run(
            [sys.executable, *args], cwd=cwd, env=client_env, capture_output=True, text=True, timeout=timeout
        )

    # -- inspection ----------------------------------------------------------------------------------------------------

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def commits(self, repo_id: str, repo_type: str = "model") -> list[Commit]:
        """The repo's commits, oldest first."""
        repo = self.repo(repo_id, repo_type)
        return [repo.commits[oid] for oid in repo.history]

    def read(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bytes:
        return self.blob(self.repo(repo_id, repo_type).resolve(revision).files[path].sha256)

    def blob(self, sha256: str) -> bytes:
        return (self.root / "objects" / sha256).read_bytes()

    # -- state changes -------------------------------------------------------------------------------------------------

    def store(self, content: bytes) -> str:
        sha256 = hashlib.sha256(content).hexdigest()
        (self.root / "objects" / sha256).write_bytes(content)
        return sha256

    def has_object(self, sha256: str) -> bool:
        return (self.root / "objects" / sha256).is_file()

    @staticmethod
    def card_errors(content: str, repo_type: str) -> list[str]:
        """What the Hub's validate-yaml would reject in a README.md, as far as this server checks it: YAML that does
        not parse, a licence id the Hub does not know, `license: other` without `license_name`, and (models) a
        model-index that huggingface_hub cannot turn into EvalResults."""
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
        if not match:
            return []
        try:
            metadata = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as error:
            return [f"Invalid YAML: {error}"]
        if not isinstance(metadata, dict):
            return ["Invalid YAML: the metadata is not a mapping"]
        errors = []
        licence = metadata.get("license")
        for value in licence if isinstance(licence, list) else [licence] if licence is not None else []:
            if value not in KNOWN_LICENSES:
                errors.append(f'"license" must be one of the Hub\'s licence ids, got {value!r}')
            elif value in LICENSES_NEEDING_NAME and not metadata.get("license_name"):
                errors.append(f'"license_name" is required when "license" is {value!r}')
        if repo_type == "model" and "model-index" in metadata:
            from huggingface_hub.repocard_data import model_index_to_eval_results

            try:
                model_index_to_eval_results(metadata["model-index"])
            except Exception as error:  # any failure to parse is what the Hub rejects
                errors.append(f'"model-index" does not parse: {type(error).__name__}: {error}')
        return errors

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        with self.lock:
            if (repo_type, repo_id) in self.repos:  # the Hub answers with the existing repo's url
                url = f"{self.endpoint}/{URL_PREFIXES[repo_type]}{repo_id}"
                raise HubError(409, f"You already created this {repo_type} repo: {repo_id}", body={"url": url})
            repo = Repo(repo_type, repo_id, private)
            self.repos[(repo_type, repo_id)] = repo
            # A new repo has one commit with .gitattributes, as on the Hub.
            gitattributes = "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in LFS_SUFFIXES)
            self.commit(
                repo,
                "main",
                "initial commit",
                [
                    {
                        "key": "file",
                        "value": {
                            "path": ".gitattributes",
                            "content": base64.b64encode(gitattributes.encode()).decode(),
                            "encoding": "base64",
                        },
                    }
                ],
            )
            return repo

    def commit(
        self, repo: Repo, revision: str, summary: str, operations: list[dict], create_pr: bool = False
    ) -> Commit:
        with self.lock:
            parent = repo.resolve(revision) if repo.history else None
            if repo.history and parent is None:
                raise HubError(404, f"Revision {revision} not found", "RevisionNotFound")
            files = dict(parent.files) if parent else {}
            received = []
            for operation in operations:
                key, value = operation["key"], dict(operation["value"])
                if key == "file":
                    content = base64.b64decode(value.pop("content"))
                    sha256 = self.store(content)
                    files[value["path"]] = StoredFile(sha256, len(content), False, git_blob_oid(content))
                    value["content"] = content
                elif key == "lfsFile":
                    if not self.has_object(value["oid"]):
                        raise HubError(400, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    size = (self.root / "objects" / value["oid"]).stat().st_size
                    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{value['oid']}\nsize {size}\n"
                    files[value["path"]] = StoredFile(value["oid"], size, True, git_blob_oid(pointer.encode()))
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {path: file for path, file in files.items() if not path.startswith(prefix)}
                else:
                    raise HubError(400, f"Unsupported commit operation {key!r}")
                received.append({"key": key, "value": value})
            if "README.md" in files and any(op["value"].get("path") == "README.md" for op in received):
                errors = self.card_errors(self.blob(files["README.md"].sha256).decode(), repo.repo_type)
                if errors:
                    raise HubError(400, "Invalid metadata in README.md: " + "; ".join(errors))
            oid = hashlib.sha1(uuid.uuid4().bytes).hexdigest()
            commit = Commit(oid, parent.oid if parent else None, summary, files, received)
            repo.commits[oid] = commit
            repo.history.append(oid)
            if create_pr:
                revision = f"refs/pr/{sum(ref.startswith('refs/pr/') for ref in repo.refs) + 1}"
            repo.refs[revision] = oid
            return commit


def json_body(handler: BaseHTTPRequestHandler, body: bytes) -> dict:
    if not body:
        return {}
    if handler.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
        return {key: values if key == "paths" else values[0] for key, values in parse_qs(body.decode()).items()}
    return json.loads(body)


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every response has a Content-Length
    hub: LoopbackHub

    def log_message(self, format, *args):  # quiet: tests read `hub.requests` instead
        pass

    # -- plumbing ------------------------------------------------------------------------------------------------------

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def send(self, status: int, body: bytes | dict | list = b"", headers: dict | None = None) -> None:
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def authenticated(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {TOKEN}"

    def require_token(self) -> None:
        if not self.authenticated():
            raise HubError(401, "Invalid credentials in Authorization header")

    def find_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not self.authenticated()):
            raise HubError(404, f"Repository not found: {repo_id}", "RepoNotFound")
        return repo

    def find_commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Revision not found: {revision}", "RevisionNotFound")
        return commit

    def handle_any(self) -> None:
        url = urlsplit(self.path)
        with self.hub.lock:
            self.hub.requests.append((self.command, url.path))
        body = self.read_body() if self.command in ("POST", "PUT") else b""
        try:
            self.route(url.path, parse_qs(url.query), body)
        except HubError as error:
            headers = dict(error.headers)
            if error.code:
                headers["X-Error-Code"] = error.code
            headers["X-Error-Message"] = error.message
            self.send(error.status, {"error": error.message, **(error.body or {})}, headers)

    do_GET = do_HEAD = do_POST = do_PUT = handle_any

    # -- routes --------------------------------------------------------------------------------------------------------

    def route(self, path: str, query: dict, body: bytes) -> None:
        raw = path.strip("/").split("/")
        parts = [unquote(part) for part in raw]
        method = self.command
        if parts[:2] == ["api", "whoami-v2"]:
            self.require_token()
            return self.send(
                200,
                {
                    "type": "user",
                    "name": USER,
                    "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"displayName": "loopback", "role": "write"}},
                },
            )
        if parts[:3] == ["api", "repos", "create"] and method == "POST":
            return self.create_repo(json_body(self, body))
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            request = json_body(self, body)
            errors = self.hub.card_errors(request.get("content", ""), request.get("repoType") or "model")
            if errors:
                return self.send(400, {"errors": [{"message": message} for message in errors]})
            return self.send(200, {"warnings": []})
        if parts[:1] == ["lfs-upload"] and method == "PUT":
            return self.lfs_upload(parts[1], body)
        if parts[0] == "api" and len(parts) >= 4 and parts[1] in REPO_TYPES:
            repo_type, repo_id = REPO_TYPES[parts[1]], "/".join(parts[2:4])
            return self.repo_api(repo_type, repo_id, parts[4:], query, body)
        repo_type = "dataset" if parts[0] == "datasets" else "model"
        parts = parts[1:] if repo_type == "dataset" else parts
        if len(parts) >= 2 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]:
            return self.lfs_batch(repo_type, f"{parts[0]}/{parts[1][:-4]}", json_body(self, body))
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve(repo_type, "/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        raise HubError(404, f"No route for {method} {path}")

    def create_repo(self, request: dict) -> None:
        self.require_token()
        namespace = request.get("organization") or USER
        repo_type = request.get("type") or "model"
        if repo_type not in URL_PREFIXES:
            raise HubError(400, f"Unsupported repo type {repo_type!r}")
        repo_id = f"{namespace}/{request['name']}"
        private = request.get("visibility") == "private" or bool(request.get("private"))
        self.hub.create_repo(repo_type, repo_id, private)
        self.send(200, {"url": f"{self.hub.endpoint}/{URL_PREFIXES[repo_type]}{repo_id}", "name": repo_id})

    def repo_api(self, repo_type: str, repo_id: str, rest: list[str], query: dict, body: bytes) -> None:
        repo = self.find_repo(repo_type, repo_id)
        action = rest[0] if rest else None
        if self.command in ("GET", "HEAD") and action in (None, "revision"):
            commit = self.find_commit(repo, rest[1] if action else "main")
            return self.send(200, self.repo_info(repo, commit))
        if action == "preupload" and self.command == "POST":
            self.require_token()
            files = json_body(self, body)["files"]
            modes = [
                {"path": f["path"], "uploadMode": "lfs" if self.is_lfs(f) else "regular", "shouldIgnore": False}
                for f in files
            ]
            return self.send(200, {"files": modes, "commitOid": self.find_commit(repo, rest[1]).oid})
        if action == "commit" and self.command == "POST":
            self.require_token()
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            header = next(line["value"] for line in lines if line["key"] == "header")
            create_pr = query.get("create_pr") == ["1"]
            commit = self.hub.commit(
                repo, rest[1], header["summary"], [ln for ln in lines if ln["key"] != "header"], create_pr
            )
            url = f"{self.hub.endpoint}/{URL_PREFIXES[repo_type]}{repo_id}"
            pr = next((ref for ref, oid in repo.refs.items() if oid == commit.oid and ref.startswith("refs/pr/")), None)
            return self.send(
                200,
                {
                    "commitUrl": f"{url}/commit/{commit.oid}",
                    "commitOid": commit.oid,
                    "pullRequestUrl": f"{url}/discussions/{pr.split('/')[-1]}" if pr else None,
                },
            )
        if action == "tag" and self.command == "POST":
            self.require_token()
            tag = json_body(self, body)["tag"]
            with self.hub.lock:
                if tag in repo.tags:
                    raise HubError(409, f"Tag {tag} already exists")
                repo.tags[tag] = self.find_commit(repo, rest[1]).oid
            return self.send(200, {})
        if action == "branch" and self.command == "POST":
            self.require_token()
            start = json_body(self, body).get("startingPoint") or "main"
            with self.hub.lock:
                if rest[1] in repo.refs:
                    raise HubError(409, f"Branch {rest[1]} already exists")
                repo.refs[rest[1]] = self.find_commit(repo, start).oid
            return self.send(200, {})
        if action == "refs" and self.command == "GET":
            return self.send(
                200,
                {
                    "branches": [
                        {"name": n, "ref": f"refs/heads/{n}", "targetCommit": o}
                        for n, o in repo.refs.items()
                        if not n.startswith("refs/")
                    ],
                    "tags": [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": o} for n, o in repo.tags.items()],
                    "converts": [],
                },
            )
        if action == "tree" and self.command == "GET":
            commit = self.find_commit(repo, rest[1])
            folder = "/".join(rest[2:]).strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            return self.send(200, self.tree(commit, folder, recursive))
        if action == "paths-info" and self.command == "POST":
            commit = self.find_commit(repo, rest[1])
            paths = json_body(self, body).get("paths", [])
            entries = [self.path_entry(commit, path.strip("/")) for path in paths]
            return self.send(200, [entry for entry in entries if entry is not None])
        raise HubError(404, f"No route for {self.command} {'/'.join(rest)} of {repo_id}")

    @staticmethod
    def is_lfs(file: dict) -> bool:
        return file["path"].endswith(LFS_SUFFIXES) or b"\0" in base64.b64decode(file.get("sample", ""))

    def repo_info(self, repo: Repo, commit: Commit) -> dict:
        siblings = [
            {"rfilename": path, "size": file.size, "blobId": file.blob_id}
            for path, file in sorted(commit.files.items())
        ]
        info = {
            "id": repo.repo_id,
            "_id": repo.repo_id,
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "siblings": siblings,
            "tags": [],
            "lastModified": "2024-01-01T00:00:00.000Z",
            "author": repo.repo_id.split("/")[0],
            "downloads": 0,
            "likes": 0,
        }
        if repo.repo_type == "model":
            info["modelId"] = repo.repo_id
        return info

    @staticmethod
    def folders_of(commit: Commit) -> set[str]:
        return {"/".join(path.split("/")[:depth]) for path in commit.files for depth in range(1, path.count("/") + 1)}

    def tree(self, commit: Commit, folder: str, recursive: bool) -> list[dict]:
        prefix = folder + "/" if folder else ""
        folders = self.folders_of(commit)
        if folder and folder not in folders:
            raise HubError(404, f"{folder}: no such folder", "EntryNotFound")

        def listed(path: str) -> bool:
            return path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :])

        entries = [
            {"type": "directory", "oid": git_blob_oid(path.encode()), "size": 0, "path": path}
            for path in sorted(folders)
            if listed(path)
        ]
        return entries + [file.tree_entry(path) for path, file in sorted(commit.files.items()) if listed(path)]

    def path_entry(self, commit: Commit, path: str) -> dict | None:
        if path in commit.files:
            return commit.files[path].tree_entry(path)
        if path in self.folders_of(commit):
            return {"type": "directory", "oid": git_blob_oid(path.encode()), "size": 0, "path": path}
        return None

    def resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        repo = self.find_repo(repo_type, repo_id)
        commit = self.find_commit(repo, revision)
        file = commit.files.get(path)
        if file is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        content = self.hub.blob(file.sha256)
        etag = file.sha256 if file.lfs else file.blob_id
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{etag}"', "Accept-Ranges": "bytes"}
        if file.lfs:
            headers["X-Linked-Etag"] = f'"{etag}"'
            headers["X-Linked-Size"] = file.size
        start = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if start:
            end = int(start.group(2)) + 1 if start.group(2) else len(content)
            headers["Content-Range"] = f"bytes {start.group(1)}-{end - 1}/{len(content)}"
            return self.send(206, content[int(start.group(1)) : end], headers)
        self.send(200, content, headers)

    def lfs_batch(self, repo_type: str, repo_id: str, request: dict) -> None:
        self.require_token()
        self.find_repo(repo_type, repo_id)
        objects = []
        for item in request["objects"]:
            entry = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if not self.hub.has_object(item["oid"]):  # the Hub skips objects it already holds
                entry["actions"] = {"upload": {"href": f"{self.hub.endpoint}/lfs-upload/{item['oid']}"}}
            objects.append(entry)
        self.send(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def lfs_upload(self, oid: str, body: bytes) -> None:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, f"LFS upload: content does not match sha256 {oid}")
        self.hub.store(body)
        self.send(200, b"")
