"""A fake Discourse forum: a real threaded HTTP server on 127.0.0.1 serving documented JSON.

It serves ``/site.json``, ``/latest.json``, ``/c/{slug}/{id}.json`` (subcategories
included; a wrong slug answers 301 to the canonical path), ``/tag/{name}.json``,
``/t/{id}.json`` (the first 20 posts and the full ``stream``) and
``/t/{id}/posts.json?post_ids[]=...``, paged like Discourse (30 topics a page,
``more_topics_url`` without ``.json`` and only on full pages).

Faults are injected per path: 429 (``Retry-After`` or ``extras.wait_seconds``), 5xx,
a connection reset, slow and malformed responses, oversized bodies and redirects to
another host. Every request is logged.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PER_PAGE = 30
CHUNK = 20
T0 = datetime(2021, 1, 4, 9, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass
class FakePost:
    id: int
    post_number: int
    username: str
    created_at: datetime
    cooked: str
    updated_at: datetime | None = None
    reply_to_post_number: int | None = None
    post_type: int = 1
    accepted: bool = False
    deleted: bool = False

    def as_json(self, topic_id: int) -> dict:
        return {
            "id": self.id,
            "name": self.username.title(),
            "username": self.username,
            "avatar_template": f"/user_avatar/forum/{self.username}/{{size}}/1_2.png",
            "created_at": stamp(self.created_at),
            "cooked": self.cooked,
            "post_number": self.post_number,
            "post_type": self.post_type,
            "updated_at": stamp(self.updated_at or self.created_at),
            "reply_count": 0,
            "reply_to_post_number": self.reply_to_post_number,
            "quote_count": 0,
            "reads": 3,
            "score": 1.2,
            "topic_id": topic_id,
            "version": 1,
            "actions_summary": [{"id": 2, "count": 1}],
            "hidden": False,
            "deleted_at": None,
            "user_deleted": False,
            "accepted_answer": self.accepted,
            "topic_accepted_answer": False,
        }


@dataclass
class FakeTopic:
    id: int
    title: str
    category_id: int
    created_at: datetime
    posts: list[FakePost] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    bumped_at: datetime | None = None
    views: int = 10
    like_count: int = 0

    @property
    def slug(self) -> str:
        return "-".join(self.title.lower().split())[:60] or "topic"

    @property
    def visible_posts(self) -> list[FakePost]:
        return [p for p in self.posts if not p.deleted]

    @property
    def last_posted_at(self) -> datetime:
        return max(p.created_at for p in self.visible_posts)


@dataclass
class Fault:
    """Answer the next ``times`` requests whose path contains ``match`` badly."""

    kind: str  # 429, 429json, 500, 502, reset, slow, hold, malformed, huge, redirect_other
    match: str = ""
    times: int = 1
    seconds: float = 1.0


class FakeForum:
    """The forum's content; tests change it between runs (new replies, edits, deletions)."""

    def __init__(self, *, tag_shape: str = "objects", accepted_shape: str = "new") -> None:
        self.categories = [
            {"id": 1, "name": "Beginners", "slug": "beginners", "parent_category_id": None},
            {"id": 2, "name": "Transformers", "slug": "transformers", "parent_category_id": None},
            {"id": 3, "name": "Tokenizers", "slug": "tokenizers", "parent_category_id": 2},
        ]
        self.topics: dict[int, FakeTopic] = {}
        self.tag_shape = tag_shape
        self.accepted_shape = accepted_shape
        self.next_post_id = 1000
        self.mega_topic_posts = 10_000  # Discourse's MEGA_TOPIC_POSTS_COUNT
        self.lock = threading.Lock()

    def add_topic(
        self,
        topic_id: int,
        *,
        posts: int = 3,
        category_id: int = 1,
        tags: list[str] | None = None,
        created_at: datetime | None = None,
        title: str | None = None,
        accepted_post: int | None = None,
    ) -> FakeTopic:
        created = created_at or T0 + timedelta(hours=topic_id)
        topic = FakeTopic(
            id=topic_id,
            title=title or f"Topic number {topic_id} about fine-tuning",
            category_id=category_id,
            created_at=created,
            tags=list(tags or []),
        )
        self.topics[topic_id] = topic
        for number in range(1, posts + 1):
            self.add_post(topic_id, bump=True, at=created + timedelta(minutes=number - 1))
        if accepted_post:
            topic.posts[accepted_post - 1].accepted = True
        return topic

    def add_post(
        self, topic_id: int, *, html: str | None = None, bump: bool = True, at=None
    ) -> FakePost:
        topic = self.topics[topic_id]
        self.next_post_id += 1
        number = len(topic.posts) + 1
        created = at or (topic.bumped_at or topic.created_at) + timedelta(days=1)
        post = FakePost(
            id=self.next_post_id,
            post_number=number,
            username=f"user{(topic_id + number) % 17}",
            created_at=created,
            cooked=html
            or (
                f"<p>Post {number} of topic {topic_id}: trying <code>Trainer</code> "
                f'with lr=3e-5 &amp; batch 16.</p>\n<pre><code class="lang-python">'
                f"model = AutoModel.from_pretrained('m{number}')</code></pre>"
            ),
            reply_to_post_number=number - 1 if number > 2 else None,
        )
        topic.posts.append(post)
        if bump:
            topic.bumped_at = created
        return post

    def edit_post(self, post_id: int, html: str, *, bump: bool = False) -> None:
        post, topic = self._find(post_id)
        post.cooked = html
        post.updated_at = (topic.bumped_at or topic.created_at) + timedelta(hours=1)
        if bump:
            topic.bumped_at = post.updated_at

    def delete_post(self, post_id: int) -> None:
        self._find(post_id)[0].deleted = True

    def _find(self, post_id: int) -> tuple[FakePost, FakeTopic]:
        for topic in self.topics.values():
            for post in topic.posts:
                if post.id == post_id:
                    return post, topic
        raise KeyError(post_id)

    # JSON

    def tags_json(self, topic: FakeTopic) -> list:
        if self.tag_shape == "names":
            return list(topic.tags)
        return [{"id": i + 1, "name": t, "slug": t} for i, t in enumerate(topic.tags)]

    def list_item(self, topic: FakeTopic) -> dict:
        visible = topic.visible_posts
        return {
            "id": topic.id,
            "title": topic.title,
            "fancy_title": topic.title,
            "slug": topic.slug,
            "posts_count": len(visible),
            "reply_count": len(visible) - 1,
            "highest_post_number": topic.posts[-1].post_number,
            "created_at": stamp(topic.created_at),
            "last_posted_at": stamp(topic.last_posted_at),
            "bumped": True,
            "bumped_at": stamp(topic.bumped_at or topic.created_at),
            "pinned": False,
            "visible": True,
            "closed": False,
            "archived": False,
            "views": topic.views,
            "like_count": topic.like_count,
            "category_id": topic.category_id,
            "tags": self.tags_json(topic),
            "has_accepted_answer": any(p.accepted for p in visible),
            "posters": [{"extras": "latest", "description": "Original Poster", "user_id": 1}],
        }

    def topic_json(self, topic: FakeTopic) -> dict:
        visible = topic.visible_posts
        data = {
            **self.list_item(topic),
            "post_stream": {
                "posts": [p.as_json(topic.id) for p in visible[:CHUNK]],
                "stream": [p.id for p in visible],
            },
            "chunk_size": CHUNK,
            "archetype": "regular",
            "details": {"created_by": {"id": 1, "username": visible[0].username}},
        }
        if len(visible) >= self.mega_topic_posts:
            stream = data["post_stream"]
            stream.pop("stream")
            stream.update({"isMegaTopic": True, "lastId": visible[-1].id})
        accepted = [p for p in visible if p.accepted]
        if accepted and self.accepted_shape == "old":
            data["accepted_answer"] = {
                "post_number": accepted[0].post_number,
                "username": accepted[0].username,
                "excerpt": "Use from_pretrained.",
            }
            for post in data["post_stream"]["posts"]:
                post.pop("accepted_answer")
        elif accepted:
            data["accepted_answers"] = [
                {**p.as_json(topic.id), "accepter": {"id": 1, "username": "mod"}} for p in accepted
            ]
            for post in data["post_stream"]["posts"]:
                post["accepted_answer"] = False
        return data

    def sorted_topics(self, topics: list[FakeTopic]) -> list[FakeTopic]:
        return sorted(topics, key=lambda t: (t.bumped_at or t.created_at, t.id), reverse=True)

    def category_ids(self, category_id: int) -> set[int]:
        ids = {category_id}
        ids |= {c["id"] for c in self.categories if c["parent_category_id"] == category_id}
        return ids


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args) -> None:
        pass

    def do_GET(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        with fake.log_lock:
            fake.requests.append(self.path)
            fake.headers.append(dict(self.headers))
            fake.request_times.append(time.monotonic())
            count = len(fake.requests)
        for waiter in list(fake.waiters):
            if count >= waiter[0]:
                waiter[1].set()
        if fake.delay:
            time.sleep(fake.delay)
        fault = fake.take_fault(parts.path)
        if fault and self._fault(fault):
            return
        status, body, headers = fake.route(parts.path, parse_qs(parts.query))
        self._send(status, body, headers)

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _fault(self, fault: Fault) -> bool:
        """Answer with the fault; False when the normal answer should follow (slow)."""
        if fault.kind == "429":
            body = (
                f"Slow down, too many requests from this IP address.\nPlease retry again in "
                f"{int(fault.seconds)} seconds.\nError code: ip_10_secs_limit.\n"
            ).encode()
            self._send(
                429,
                body,
                {
                    "Content-Type": "text/plain",
                    "Retry-After": str(int(fault.seconds)),
                    "Discourse-Rate-Limit-Error-Code": "ip_10_secs_limit",
                },
            )
        elif fault.kind == "429json":
            body = json.dumps(
                {
                    "errors": ["You’ve performed this action too many times."],
                    "error_type": "rate_limit",
                    "extras": {"wait_seconds": fault.seconds, "time_left": "1 second"},
                }
            ).encode()
            self._send(429, body)
        elif fault.kind in {"500", "502"}:
            self._send(int(fault.kind), b"<html>SECRET-UPSTREAM-PAGE Internal error</html>")
        elif fault.kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif fault.kind == "slow":
            time.sleep(fault.seconds)
            return False
        elif fault.kind == "hold":
            self.server.fake.released.wait(fault.seconds)
            return False
        elif fault.kind == "malformed":
            self._send(200, b'{"topic_list": {"topics": [ SECRET-UPSTREAM-PAGE')
        elif fault.kind == "huge":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b'{"pad": "' + b"x" * 65536
            try:
                for _ in range(int(fault.seconds)):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass
            self.close_connection = True
        elif fault.kind == "redirect_other":
            port = self.server.server_address[1]
            self._send(302, b"", {"Location": f"http://127.0.0.2:{port}{self.path}"})
        else:
            raise ValueError(fault.kind)
        return True

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, delayed ACKs add
        # 40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        with contextlib.suppress(OSError):
            super().handle()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeDiscourse


class FakeDiscourse:
    """The server: ``start()``, ``url``, ``requests`` (paths), ``faults``, ``stop()``."""

    def __init__(self, forum: FakeForum | None = None, *, delay: float = 0.0) -> None:
        self.forum = forum or FakeForum()
        self.delay = delay
        self.faults: list[Fault] = []
        self.requests: list[str] = []
        self.headers: list[dict] = []
        self.request_times: list[float] = []
        self.waiters: list[tuple[int, threading.Event]] = []
        self.log_lock = threading.Lock()
        self.released = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeDiscourse:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeDiscourse:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fault(self, kind: str, match: str = "", *, times: int = 1, seconds: float = 1.0) -> None:
        self.faults.append(Fault(kind, match, times, seconds))

    def hold(self, match: str, *, seconds: float = 60.0) -> None:
        """Keep the next request matching ``match`` waiting until ``release()``."""
        self.released.clear()
        self.fault("hold", match, seconds=seconds)

    def release(self) -> None:
        self.released.set()

    def take_fault(self, path: str) -> Fault | None:
        with self.log_lock:
            for fault in self.faults:
                if fault.times > 0 and fault.match in path:
                    fault.times -= 1
                    return fault
        return None

    def event_after(self, count: int) -> threading.Event:
        """An event set once ``count`` requests have arrived."""
        event = threading.Event()
        self.waiters.append((count, event))
        return event

    def clear_log(self) -> None:
        with self.log_lock:
            self.requests.clear()
            self.headers.clear()
            self.request_times.clear()

    def topic_fetches(self) -> list[str]:
        return [p for p in self.requests if p.startswith("/t/")]

    def list_fetches(self) -> list[str]:
        return [
            p
            for p in self.requests
            if p.startswith(("/latest", "/c/", "/tag/")) or p.startswith("/site.json")
        ]

    # Routing

    def route(self, path: str, query: dict) -> tuple[int, bytes, dict]:
        forum = self.forum
        with forum.lock:
            if path == "/site.json":
                return self._json({"categories": forum.categories})
            if path in {"/latest.json", "/latest"}:
                return self._list(list(forum.topics.values()), "/latest", query)
            if path.startswith("/tag/"):
                name = path.removeprefix("/tag/").removesuffix(".json")
                topics = [t for t in forum.topics.values() if name in t.tags]
                return self._list(topics, f"/tag/{name}", query)
            if path.startswith("/c/"):
                return self._category(path, query)
            if path.startswith("/t/"):
                return self._topic(path, query)
        return 404, b'{"errors": ["The requested URL or resource could not be found."]}', {}

    def _json(self, data: dict, status: int = 200) -> tuple[int, bytes, dict]:
        return status, json.dumps(data).encode(), {}

    def _list(self, topics: list[FakeTopic], base: str, query: dict) -> tuple[int, bytes, dict]:
        page = int((query.get("page") or ["0"])[0])
        ordered = self.forum.sorted_topics(topics)
        chunk = ordered[page * PER_PAGE : (page + 1) * PER_PAGE]
        topic_list = {
            "per_page": PER_PAGE,
            "topics": [self.forum.list_item(t) for t in chunk],
        }
        if len(chunk) == PER_PAGE:
            topic_list["more_topics_url"] = f"{base}?page={page + 1}"
        return self._json({"users": [], "primary_groups": [], "topic_list": topic_list})

    def _category(self, path: str, query: dict) -> tuple[int, bytes, dict]:
        pieces = path.removesuffix(".json").split("/")
        if len(pieces) != 4 or not pieces[3].isdigit():
            return 404, b"{}", {}
        slug, category_id = pieces[2], int(pieces[3])
        category = next((c for c in self.forum.categories if c["id"] == category_id), None)
        if category is None:
            return 404, b"{}", {}
        if slug != category["slug"]:
            target = f"/c/{category['slug']}/{category_id}"
            return 301, b"", {"Location": f"{self.url}{target}.json"}
        ids = self.forum.category_ids(category_id)
        topics = [t for t in self.forum.topics.values() if t.category_id in ids]
        return self._list(topics, f"/c/{slug}/{category_id}", query)

    def _topic(self, path: str, query: dict) -> tuple[int, bytes, dict]:
        pieces = path.removesuffix(".json").split("/")
        if len(pieces) < 3 or not pieces[2].isdigit():
            return 404, b"{}", {}
        topic = self.forum.topics.get(int(pieces[2]))
        if topic is None:
            return 404, b'{"errors": ["not found"]}', {}
        if len(pieces) == 3:
            return self._json(self.forum.topic_json(topic))
        if pieces[3] == "posts":
            if "post_number" in query:  # the 20 posts after a post number (mega topics)
                after = int(query["post_number"][0])
                later = [p for p in topic.visible_posts if p.post_number > after][:CHUNK]
                posts = [p.as_json(topic.id) for p in later]
                return self._json({"post_stream": {"posts": posts}, "id": topic.id})
            wanted = {int(i) for i in query.get("post_ids[]", []) if i.isdigit()}
            posts = [p.as_json(topic.id) for p in topic.visible_posts if p.id in wanted]
            return self._json({"post_stream": {"posts": posts}, "id": topic.id})
        return 404, b"{}", {}


def make_forum(
    topics: int, posts: int, *, seed: int = 1, long_topics: int = 0, long_size: int = 130, **kw
) -> FakeForum:
    """A forum of ``topics`` topics holding ``posts`` posts in all.

    ``long_topics`` of them have ``long_size`` posts (several post chunks); the rest of
    the posts are spread over the other topics.
    """
    rng = random.Random(seed)
    forum = FakeForum(**kw)
    remaining = posts - long_topics * long_size
    short = topics - long_topics
    if short <= 0 or remaining < short:
        raise ValueError("not enough posts for that many topics")
    sizes = [1] * short
    for _ in range(remaining - short):
        sizes[rng.randrange(short)] += 1
    sizes = [long_size] * long_topics + sizes
    rng.shuffle(sizes)
    tag_pool = ["bert", "gpt2", "datasets", "pytorch", "tokenizers", "peft", "diffusers"]
    for topic_id, size in enumerate(sizes, start=1):
        forum.add_topic(
            topic_id,
            posts=size,
            category_id=rng.choice([1, 2, 3]),
            tags=rng.sample(tag_pool, rng.randrange(0, 3)),
            accepted_post=2 if size > 1 and rng.random() < 0.3 else None,
        )
    return forum


def main() -> None:
    """Serve a generated forum until interrupted (for benchmarks and trying the importer)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--topics", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=12000)
    parser.add_argument("--long-topics", type=int, default=20)
    parser.add_argument("--long-size", type=int, default=130)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    forum = make_forum(
        args.topics, args.posts, seed=args.seed, long_topics=args.long_topics,
        long_size=args.long_size,
    )  # fmt: skip
    server = FakeDiscourse(forum)
    print(server.url, flush=True)
    try:
        server._server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
