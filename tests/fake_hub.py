"""A fake Hugging Face Hub: a real threaded HTTP server on 127.0.0.1 for the Hub client.

It serves ``GET /api/models`` as the Hub documents it (a JSON list sorted by
``lastModified``, newest first, only the ``expand``-ed fields plus ``id``/``_id``, a
``Link: <...>; rel="next"`` cursor header and ``X-Total-Count``) and
``GET /api/models/{id}``, with scripted trouble: 429s carrying rate-limit headers, 500s,
dropped connections, a 307 for a renamed repo and a redirect to another host.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlencode, urlsplit


def hub_item(
    repo_id: str,
    *,
    created: str | None = "2022-05-01T10:00:00.000Z",
    modified: str = "2023-01-01T00:00:00.000Z",
    model_type: str | None = "bert",
    card: bool = True,
    downloads: int = 10,
    likes: int = 1,
    pipeline_tag: str | None = "fill-mask",
    library: str | None = "transformers",
) -> dict:
    """One model in the Hub's full JSON shape (as ``expand`` of every field returns it)."""
    item = {
        "_id": hashlib.sha256(repo_id.encode()).hexdigest()[:24],
        "id": repo_id,
        "modelId": repo_id,
        "author": repo_id.split("/")[0] if "/" in repo_id else None,
        "lastModified": modified,
        "pipeline_tag": pipeline_tag,
        "library_name": library,
        "tags": [t for t in (library, model_type, pipeline_tag) if t] + ["region:us"],
        "downloads": downloads,
        "likes": likes,
        "config": {"architectures": ["Model"], "model_type": model_type} if model_type else {},
        "private": False,
    }
    if created is not None:
        item["createdAt"] = created
    if card:
        item["cardData"] = {"license": "apache-2.0"}
    return item


class FakeHub:
    """Start with ``with FakeHub(models) as hub:``; ``hub.url`` is its base URL."""

    def __init__(self, models: list[dict] | None = None) -> None:
        self.models = list(models or [])
        self.renamed: dict[str, str] = {}
        self.offsite: dict[str, str] = {}
        # Numbered listing requests (1-based) that get trouble instead of a page.
        self.rate_limited: dict[int, dict[str, str]] = {}
        self.server_errors: set[int] = set()
        self.dropped: set[int] = set()
        self.fail_from: int | None = None
        self.listing_requests: list[dict[str, list[str]]] = []
        self.user_agents: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle
    def __enter__(self) -> FakeHub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # Behaviour
    def sorted_models(self) -> list[dict]:
        return sorted(self.models, key=lambda m: (m["lastModified"], m["id"]), reverse=True)

    def _listing(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], object]:
        with self._lock:
            self.listing_requests.append(query)
            number = len(self.listing_requests)
        if number in self.dropped:
            return -1, {}, None
        if number in self.rate_limited:
            return 429, self.rate_limited[number], {"error": "rate limited"}
        if number in self.server_errors or (self.fail_from and number >= self.fail_from):
            return 500, {}, {"error": "Internal Error"}
        limit = int(query.get("limit", ["1000"])[0])
        cursor = query.get("cursor", [""])[0]
        offset = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
        everything = self.sorted_models()
        page = everything[offset : offset + limit]
        expand = set(query.get("expand", []))
        if expand:
            page = [{k: v for k, v in m.items() if k in expand or k in ("id", "_id")} for m in page]
        headers = {"X-Total-Count": str(len(everything))}
        if offset + limit < len(everything):
            next_query = {k: v for k, v in query.items() if k != "cursor"}
            next_query["cursor"] = [base64.urlsafe_b64encode(str(offset + limit).encode()).decode()]
            headers["Link"] = (
                f'<{self.url}/api/models?{urlencode(next_query, doseq=True)}>; rel="next"'
            )
        return 200, headers, page

    def _model(self, repo_id: str) -> tuple[int, dict[str, str], object]:
        if repo_id in self.renamed:
            return 307, {"Location": f"/api/models/{quote(self.renamed[repo_id])}"}, None
        if repo_id in self.offsite:
            return 307, {"Location": self.offsite[repo_id]}, None
        for model in self.models:
            if model["id"] == repo_id:
                return 200, {}, model
        return (
            404,
            {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
            {"error": "Repository not found"},
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                hub.user_agents.append(self.headers.get("User-Agent", ""))
                if parts.path == "/api/models":
                    status, headers, body = hub._listing(parse_qs(parts.query))
                elif parts.path.startswith("/api/models/"):
                    status, headers, body = hub._model(parts.path[len("/api/models/") :])
                else:
                    status, headers, body = 404, {}, {"error": "not found"}
                if status == -1:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler
