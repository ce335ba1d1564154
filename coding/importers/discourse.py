"""Import from a live Discourse forum: a polite HTTP client, a pure parser, the import run.

The client is one ``requests.Session`` with timeouts, a User-Agent naming the tool, a
request rate, retries (429 honoured through ``Retry-After`` or ``extras.wait_seconds``,
exponential backoff with jitter on 5xx and connection errors), a cap on response size
and no redirects to another host. ``parse_topic`` turns topic JSON into a
``ThreadRecord`` and touches no network or database, so the file importer shares it.

An import run:

1. Walks the topic lists (``/latest``, categories or tags), following
   ``more_topics_url`` until it is absent, de-duplicating by topic id.
2. Decides which topics need fetching: new ones, ones whose ``bumped_at`` or
   ``last_posted_at`` moved, and with ``refresh`` every topic in the window. An unchanged
   forum therefore costs only list pages.
3. Fetches each topic (``/t/{id}.json`` plus the posts beyond the first chunk) in
   ascending id order, in a prefetch thread, while the main thread writes the fetched
   topics through the shared store (``store_threads``), a batch at a time, each batch in
   one transaction together with the run's progress and resume cursor. A killed run
   leaves no partial topic, and the next run of the same import resumes after the cursor.

Only the main thread touches the database; the run's row carries its state, counts,
heartbeat and the process that runs it, so a run whose process died is taken over and a
live one is never run twice.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import ForumSource, ImportRun, Thread
from .public_http import PrivateAddressError, is_public_address, public_only
from .store import ImportCounts, PostRecord, ThreadRecord, store_threads

USER_AGENT = "forum-coding/0.1 (qualitative research importer; +https://github.com/forum-coding)"
DEFAULT_RATE = 1.0
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
CHUNK_SIZE = 20
BATCH_TOPICS = 20
STALE_AFTER = timedelta(seconds=120)
HEARTBEAT_EVERY = 5.0
WAIT_REASONS = {
    "rate limit": "the forum asked to slow down (429)",
    "backoff": "retrying after a server or network error",
    "rate": "keeping to the request rate",
}
SKIPPED_POST_TYPES = {3, 4}  # small actions ("closed", "split") and whispers


class DiscourseError(Exception):
    """A failure worth telling the user about; never carries the upstream body."""


class NotFound(DiscourseError):
    pass


class Cancelled(Exception):
    pass


class Interrupted(Cancelled):
    """The user pressed Ctrl-C: stop between topics, keeping what is stored."""


class ImportBusy(Exception):
    """Another run of an import of the same forum is alive."""


# Addresses and URLs


def normalize_base_url(value: str) -> str:
    """``https://host[:port][/path]`` without a trailing slash; raises ValueError if not http(s)."""
    value = (value or "").strip()
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("the forum address must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValueError("the forum address must not contain a user name or password")
    if parts.query or parts.fragment:
        raise ValueError("the forum address must not contain a query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the forum address has an invalid port") from None
    netloc = parts.hostname.lower() if ":" not in parts.hostname else f"[{parts.hostname}]"
    if port:
        netloc += f":{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def check_public_host(base_url: str) -> None:
    """Refuse hosts that resolve to loopback, private, link-local or reserved addresses."""
    host = urlsplit(base_url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise ValueError(f"the host {host} cannot be resolved") from None
    for info in infos:
        address = info[4][0]
        if not is_public_address(address):
            raise ValueError(
                f"the host {host} resolves to a private or local address ({address}); "
                "imports from such addresses are not allowed here"
            )


def _time(value) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# The client


@dataclass
class ClientStats:
    requests: int = 0
    wait_seconds: float = 0.0
    fetch_seconds: float = 0.0
    decode_seconds: float = 0.0


class DiscourseClient:
    """GETs JSON from one forum, politely. Raises ``DiscourseError`` with a clear message."""

    def __init__(
        self,
        base_url: str,
        *,
        rate: float | None = DEFAULT_RATE,
        timeout: float = 30.0,
        max_tries: int = 6,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_wait: float = 600.0,
        backoff: float = 1.0,
        api_key: str | None = None,
        api_username: str | None = None,
        sleep: Callable[[float, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        public_only_hosts: bool = False,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        parts = urlsplit(self.base_url)
        self.origin = (parts.scheme, parts.netloc)
        self.min_interval = 1.0 / rate if rate and rate > 0 else 0.0
        self.timeout = timeout
        self.max_tries = max(1, max_tries)
        self.max_bytes = max_bytes
        self.max_wait = max_wait
        self.backoff = backoff
        self.sleep = sleep or (lambda seconds, reason: time.sleep(seconds))
        self.clock = clock
        self.stats = ClientStats()
        self._last_request = float("-inf")
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        if api_key and api_username:
            self.session.headers.update({"Api-Key": api_key, "Api-Username": api_username})
        # Proxies, CA bundle and .netrc come from the environment as usual, but are read
        # once: every request goes to this one origin, and reading them per request
        # (the whole environment, a few file checks) cost more than a local request.
        found = self.session.merge_environment_settings(self.base_url, {}, None, None, None)
        self.session.proxies, self.session.verify = found["proxies"], found["verify"]
        self.session.auth = requests.utils.get_netrc_auth(self.base_url)
        self.session.trust_env = False
        self.public_only_hosts = public_only_hosts
        if public_only_hosts:
            public_only(self.session)

    def close(self) -> None:
        self.session.close()

    def _wait(self, seconds: float, reason: str) -> None:
        if seconds <= 0:
            return
        self.stats.wait_seconds += seconds
        self.sleep(seconds, reason)

    def _throttle(self) -> None:
        if self.min_interval:
            due = self._last_request + self.min_interval - self.clock()
            if due > 0:
                self.sleep(due, "rate")
        self._last_request = self.clock()

    def url(self, path: str) -> str:
        return urljoin(self.base_url + "/", path.lstrip("/"))

    def get_json(self, path: str, params: list[tuple[str, str]] | None = None) -> dict:
        """GET ``path`` (relative to the forum) and decode its JSON object."""
        url = self.url(path)
        shown = urlsplit(url).path
        last_problem = ""
        for attempt in range(self.max_tries):
            try:
                status, headers, body = self._get(url, params)
            except PrivateAddressError as exc:
                raise DiscourseError(f"{shown}: {exc}") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                last_problem = (
                    "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                )
                self._backoff(attempt, f"{shown}: {last_problem}")
                continue
            if status == 429:
                last_problem = "rate limited (429)"
                self._rate_limited(headers, body, shown)
                continue
            if status >= 500:
                last_problem = f"server error {status}"
                self._backoff(attempt, f"{shown}: {last_problem}")
                continue
            if status == 404:
                raise NotFound(f"{shown}: not found (404)")
            if status != 200:
                raise DiscourseError(f"{shown}: the forum answered {status}")
            started = time.perf_counter()
            try:
                data = json.loads(body)
            except ValueError:
                data = None
            self.stats.decode_seconds += time.perf_counter() - started
            if not isinstance(data, dict):
                last_problem = "malformed JSON"
                self._backoff(attempt, f"{shown}: {last_problem}")
                continue
            return data
        raise DiscourseError(f"{shown}: gave up after {self.max_tries} tries ({last_problem})")

    def _backoff(self, attempt: int, reason: str) -> None:
        if attempt + 1 >= self.max_tries:
            return
        delay = min(60.0, self.backoff * (2**attempt)) * random.uniform(0.5, 1.5)
        self._wait(delay, "backoff")

    def _rate_limited(self, headers, body: bytes, shown: str) -> None:
        wait = _retry_after(headers, body)
        if wait is None:
            wait = self.backoff * 2
        if wait > self.max_wait:
            raise DiscourseError(
                f"{shown}: the forum asks to wait {wait:.0f} s, more than the "
                f"{self.max_wait:.0f} s allowed; try again later"
            )
        self._wait(wait, "rate limit")

    def _get(self, url: str, params) -> tuple[int, dict, bytes]:
        """One GET; same-origin redirects are followed here, others refused."""
        for _hop in range(6):
            self._throttle()
            started = time.perf_counter()
            self.stats.requests += 1
            with self.session.get(
                url, params=params, timeout=self.timeout, allow_redirects=False, stream=True
            ) as response:
                if response.status_code in {301, 302, 303, 307, 308}:
                    target = urljoin(url, response.headers.get("Location", ""))
                    parts = urlsplit(target)
                    if (parts.scheme, parts.netloc) != self.origin:
                        raise DiscourseError(
                            f"{urlsplit(url).path}: redirected to another host "
                            f"({parts.hostname or 'unknown'}); not followed"
                        )
                    url, params = target, None
                    continue
                body = self._read(response, url)
                self.stats.fetch_seconds += time.perf_counter() - started
                return response.status_code, response.headers, body
        raise DiscourseError(f"{urlsplit(url).path}: too many redirects")

    def _read(self, response: requests.Response, url: str) -> bytes:
        too_big = DiscourseError(
            f"{urlsplit(url).path}: response larger than {self.max_bytes} bytes; refused"
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big
        chunks, size = [], 0
        for chunk in response.iter_content(65536):
            size += len(chunk)
            if size > self.max_bytes:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)

    # Endpoints

    def topic_list(self, path: str, *, stop: Callable[[list[dict]], bool]) -> Iterator[dict]:
        """Every topic item of a list, page by page, until ``more_topics_url`` is absent."""
        seen_pages = set()
        while path:
            data = self.get_json(path)
            topic_list = data.get("topic_list") or {}
            topics = [t for t in topic_list.get("topics") or [] if isinstance(t, dict)]
            yield from topics
            more = topic_list.get("more_topics_url")
            if not more or not topics or stop(topics):
                return
            path = _json_path(more)
            prefix = urlsplit(self.base_url).path  # a forum served under a folder
            if prefix and path.startswith(prefix + "/"):
                path = path[len(prefix) :]
            if path in seen_pages:
                return
            seen_pages.add(path)

    def topic(self, topic_id: int) -> tuple[dict, list[dict]]:
        """A topic's JSON and the posts beyond its first chunk."""
        data = self.get_json(f"/t/{topic_id}.json")
        stream = data.get("post_stream") or {}
        have = {p.get("id") for p in stream.get("posts") or [] if isinstance(p, dict)}
        missing = [pid for pid in stream.get("stream") or [] if pid not in have]
        extra: list[dict] = []
        for start in range(0, len(missing), CHUNK_SIZE):
            chunk = missing[start : start + CHUNK_SIZE]
            more = self.get_json(
                f"/t/{topic_id}/posts.json", [("post_ids[]", str(pid)) for pid in chunk]
            )
            extra.extend((more.get("post_stream") or {}).get("posts") or [])
        if stream.get("isMegaTopic"):
            extra.extend(self._mega_topic_posts(topic_id, stream.get("posts") or []))
        return data, extra

    def _mega_topic_posts(self, topic_id: int, first: list[dict]) -> list[dict]:
        posts: list[dict] = []
        after = max((p.get("post_number") or 0 for p in first), default=0)
        while True:
            data = self.get_json(
                f"/t/{topic_id}/posts.json", [("post_number", str(after)), ("asc", "true")]
            )
            page = (data.get("post_stream") or {}).get("posts") or []
            numbers = [p.get("post_number") or 0 for p in page]
            if not page or max(numbers) <= after:
                return posts
            posts.extend(page)
            after = max(numbers)

    def categories(self) -> list[dict]:
        try:
            data = self.get_json("/site.json")
            found = data.get("categories")
        except NotFound:
            found = None
        if not isinstance(found, list):
            data = self.get_json("/categories.json", [("include_subcategories", "true")])
            found = []
            for category in (data.get("category_list") or {}).get("categories") or []:
                found.append(category)
                for sub in category.get("subcategory_list") or []:
                    found.append({**sub, "parent_category_id": category.get("id")})
        return [c for c in found if isinstance(c, dict) and "id" in c]


_WAIT_TEXT = re.compile(rb"(?:retry again in|wait) (\d+) seconds?", re.IGNORECASE)


def _retry_after(headers, body: bytes) -> float | None:
    value = (headers.get("Retry-After") or "").strip()
    if value:
        if value.isdigit():
            return float(value)
        try:
            moment = parsedate_to_datetime(value)
            return max(0.0, (moment - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            pass
    try:
        data = json.loads(body)
        seconds = float((data.get("extras") or {})["wait_seconds"])
        return max(0.0, seconds)
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    match = _WAIT_TEXT.search(body or b"")
    return float(match.group(1)) if match else None


def _json_path(more_topics_url: str) -> str:
    """``/latest?page=1`` (current servers) or ``/latest.json?page=1`` (old ones) as a JSON path."""
    parts = urlsplit(more_topics_url)
    path = parts.path
    if not path.endswith(".json"):
        path += ".json"
    return path + (f"?{parts.query}" if parts.query else "")


# Parsing


def tag_names(tags) -> list[str]:
    """Tags as names, whether the forum sends names or ``{id, name, slug}`` objects."""
    names = []
    for tag in tags or []:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if name and isinstance(name, str | int):
            names.append(str(name))
    return names


def _accepted(topic_json: dict) -> tuple[set[int], set[int]]:
    """Accepted answers as (post ids, post numbers), from either Solved plugin generation."""
    ids: set[int] = set()
    numbers: set[int] = set()
    old = topic_json.get("accepted_answer")
    if isinstance(old, dict) and old.get("post_number"):
        numbers.add(int(old["post_number"]))
    for answer in topic_json.get("accepted_answers") or []:
        if isinstance(answer, dict):
            if answer.get("id"):
                ids.add(int(answer["id"]))
            if answer.get("post_number"):
                numbers.add(int(answer["post_number"]))
    return ids, numbers


def parse_topic(
    topic_json: dict, extra_posts: Iterable[dict], category_names: dict[int, str]
) -> ThreadRecord:
    """A ``ThreadRecord`` from ``/t/{id}.json`` and the posts fetched beyond its first chunk.

    Small actions and whispers are skipped, and so are posts the forum reports as
    deleted. The record is complete (posts missing from it were deleted upstream)
    unless the forum sent a mega topic without its full post stream.
    """
    if not isinstance(topic_json, dict) or not topic_json.get("id"):
        raise ValueError("not a Discourse topic: no id")
    created = _time(topic_json.get("created_at"))
    stream = topic_json.get("post_stream") or {}
    accepted_ids, accepted_numbers = _accepted(topic_json)
    by_id: dict[int, dict] = {}
    for post in [*(stream.get("posts") or []), *extra_posts]:
        if isinstance(post, dict) and post.get("id") and post.get("post_number"):
            by_id.setdefault(int(post["id"]), post)
    posts = []
    for post_id, post in sorted(by_id.items(), key=lambda item: item[1]["post_number"]):
        if post.get("post_type") in SKIPPED_POST_TYPES:
            continue
        if post.get("deleted_at") or post.get("user_deleted"):
            continue
        number = int(post["post_number"])
        posts.append(
            PostRecord(
                external_id=post_id,
                post_number=number,
                author=str(post.get("username") or ""),
                created_at=_time(post.get("created_at")) or created,
                html=str(post.get("cooked") or ""),
                updated_at=_time(post.get("updated_at")),
                reply_to_post_number=_int_or_none(post.get("reply_to_post_number")),
                is_accepted_answer=bool(
                    post.get("accepted_answer")
                    or post_id in accepted_ids
                    or number in accepted_numbers
                ),
            )
        )
    if created is None:
        created = min((p.created_at for p in posts if p.created_at), default=None)
    if created is None:
        raise ValueError(f"topic {topic_json['id']}: no created_at")
    has_accepted = bool(
        topic_json.get("has_accepted_answer")
        or accepted_ids
        or accepted_numbers
        or any(p.is_accepted_answer for p in posts)
    )
    category_id = topic_json.get("category_id")
    return ThreadRecord(
        external_id=int(topic_json["id"]),
        title=str(topic_json.get("title") or topic_json.get("fancy_title") or ""),
        created_at=created,
        posts=posts,
        slug=str(topic_json.get("slug") or ""),
        category=category_names.get(category_id, "") if category_id is not None else "",
        tags=tag_names(topic_json.get("tags")),
        last_posted_at=_time(topic_json.get("last_posted_at")),
        bumped_at=_time(topic_json.get("bumped_at")),
        views=_int_or_none(topic_json.get("views")) or 0,
        reply_count=_int_or_none(topic_json.get("reply_count")),
        like_count=_int_or_none(topic_json.get("like_count")) or 0,
        posts_count=_int_or_none(topic_json.get("posts_count")),
        has_accepted_answer=has_accepted,
        complete=not stream.get("isMegaTopic"),
    )


def _int_or_none(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


# Import runs


@dataclass
class ImportOptions:
    """What to import; stored in ``ImportRun.params`` so a run can be resumed or shown."""

    base_url: str
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    since: date | None = None
    until: date | None = None
    max_topics: int | None = None
    rate: float = DEFAULT_RATE
    refresh: bool = False

    def to_params(self) -> dict:
        data = asdict(self)
        data["since"] = self.since.isoformat() if self.since else None
        data["until"] = self.until.isoformat() if self.until else None
        return data

    @classmethod
    def from_params(cls, params: dict) -> ImportOptions:
        return cls(
            base_url=params["base_url"],
            categories=list(params.get("categories") or []),
            tags=list(params.get("tags") or []),
            since=date.fromisoformat(params["since"]) if params.get("since") else None,
            until=date.fromisoformat(params["until"]) if params.get("until") else None,
            max_topics=params.get("max_topics"),
            rate=float(params.get("rate") if params.get("rate") is not None else DEFAULT_RATE),
            refresh=bool(params.get("refresh")),
        )

    def same_import(self, params: dict) -> bool:
        mine = self.to_params()
        return all(params.get(k) == v for k, v in mine.items())


def source_for(base_url: str) -> ForumSource:
    base_url = normalize_base_url(base_url)
    source = ForumSource.objects.filter(base_url=base_url).first()
    if source:
        return source
    host = urlsplit(base_url).netloc
    name = host if not ForumSource.objects.filter(name=host).exists() else base_url
    try:
        with transaction.atomic():
            return ForumSource.objects.create(name=name, base_url=base_url)
    except IntegrityError:
        return ForumSource.objects.get(base_url=base_url)


def _process_alive(worker: dict) -> bool | None:
    """Whether the process that owns a run lives (None when it runs on another host)."""
    if not worker or worker.get("host") != socket.gethostname() or not worker.get("pid"):
        return None
    try:
        os.kill(int(worker["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, ValueError):
        return True
    return True


def is_stale(run: ImportRun, now: datetime | None = None) -> bool:
    """An active run nobody works on any more: its process died or its heartbeat stopped."""
    if not run.is_active:
        return False
    now = now or timezone.now()
    if run.state == ImportRun.State.QUEUED and not run.heartbeat_at:
        return False
    if _process_alive(run.params.get("worker") or {}) is False:
        return True
    last = run.heartbeat_at or run.started_at or run.created_at
    return last is not None and now - last > STALE_AFTER


def queued_unclaimed_for(run: ImportRun, now: datetime | None = None) -> timedelta | None:
    """How long a queued run has waited for a worker to pick it up."""
    if run.state != ImportRun.State.QUEUED or run.heartbeat_at:
        return None
    return (now or timezone.now()) - run.created_at


def _this_worker() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def create_run(
    options: ImportOptions,
    *,
    user=None,
    queued: bool = False,
    source: ForumSource | None = None,
    extra_params: dict | None = None,
) -> ImportRun:
    """A new run of ``options``, taking over a stale run of the same forum.

    Raises ``ImportBusy`` when another run of this forum is alive. The new run inherits
    the resume cursor of the last unfinished run of the same import.
    """
    source = source or source_for(options.base_url)
    params = {**options.to_params(), **(extra_params or {})}
    now = timezone.now()
    with transaction.atomic():
        active = ImportRun.objects.filter(source=source, state__in=ImportRun.ACTIVE_STATES).first()
        if active is not None:
            if not is_stale(active, now):
                raise ImportBusy(
                    f"another import of {source.base_url} is running (run #{active.pk}, "
                    f"{active.get_state_display().lower()}); wait for it or cancel it"
                )
            ImportRun.objects.filter(pk=active.pk, state=active.state).update(
                state=ImportRun.State.FAILED,
                message="Interrupted: its process stopped; a later run took over.",
                finished_at=now,
            )
        previous = (
            ImportRun.objects.filter(source=source, kind=ImportRun.Kind.DISCOURSE)
            .exclude(state__in=ImportRun.ACTIVE_STATES)
            .order_by("-created_at", "-pk")
            .first()
        )
        if (
            previous
            and previous.state != ImportRun.State.DONE
            and options.same_import(previous.params)
        ):
            params["cursor"] = previous.params.get("cursor")
            params["resumes"] = previous.pk
        if not queued:
            params["worker"] = _this_worker()
        try:
            with transaction.atomic():
                return ImportRun.objects.create(
                    source=source,
                    kind=ImportRun.Kind.DISCOURSE,
                    params=params,
                    state=ImportRun.State.QUEUED if queued else ImportRun.State.FETCHING,
                    created_by=user,
                    started_at=None if queued else now,
                    heartbeat_at=None if queued else now,
                )
        except IntegrityError:
            raise ImportBusy(f"another import of {source.base_url} is running") from None


def claim_run(run_id: int) -> ImportRun | None:
    """The background worker takes a queued run; None if it was cancelled or taken over."""
    now = timezone.now()
    run = ImportRun.objects.filter(pk=run_id).first()
    if run is None or run.state != ImportRun.State.QUEUED:
        return None
    params = {**run.params, "worker": _this_worker()}
    claimed = ImportRun.objects.filter(
        pk=run_id, state=ImportRun.State.QUEUED, cancel_requested=False
    ).update(state=ImportRun.State.FETCHING, params=params, started_at=now, heartbeat_at=now)
    if not claimed:
        ImportRun.objects.filter(pk=run_id, state=ImportRun.State.QUEUED).update(
            state=ImportRun.State.CANCELLED, message="Cancelled before it started.", finished_at=now
        )
        return None
    run.refresh_from_db()
    return run


@dataclass
class Progress:
    topics_total: int | None = None
    topics_done: int = 0
    posts: int = 0
    waiting: float = 0.0
    wait_reason: str = ""
    state: str = ImportRun.State.FETCHING


@dataclass
class Timings:
    listing: float = 0.0  # topic list pages and the comparison with stored topics
    fetch_wait: float = 0.0  # the writer waiting for the prefetch thread
    parse: float = 0.0
    store: float = 0.0


class _Prefetcher(threading.Thread):
    """Fetches topics ahead of the writer, in order, so the network and the database overlap.

    It never touches the database: results (or the error that stopped it) go into a
    bounded queue, and rate-limit waits are published for the writer to show.
    """

    def __init__(self, client: DiscourseClient, items: list[dict], depth: int = 32) -> None:
        super().__init__(daemon=True, name="discourse-prefetch")
        self.client = client
        self.items = items
        self.results: queue.Queue = queue.Queue(maxsize=depth)
        self.stopped = threading.Event()
        self.busy = 0.0
        self.wait_reason = ""
        self.waiting_until = 0.0

    def run(self) -> None:
        for item in self.items:
            started = time.perf_counter()
            result: object
            try:
                result = self.client.topic(int(item["id"]))
            except NotFound:
                result = None
            except Cancelled:
                return
            except Exception as exc:  # handed to the writer, which raises it in order
                result = exc
            self.busy += time.perf_counter() - started
            while not self.stopped.is_set():
                try:
                    self.results.put((item, result), timeout=0.2)
                    break
                except queue.Full:
                    continue
            if self.stopped.is_set() or isinstance(result, Exception):
                return

    def sleep(self, seconds: float, reason: str) -> None:
        shown = reason != "rate" or seconds >= 2
        end = time.monotonic() + seconds
        if shown:
            self.wait_reason, self.waiting_until = reason, end
        try:
            while (left := end - time.monotonic()) > 0:
                if self.stopped.wait(min(left, 0.2)):
                    raise Cancelled
        finally:
            self.wait_reason, self.waiting_until = "", 0.0


class DiscourseImport:
    """Carries out one ``ImportRun`` of a Discourse forum (see the module docstring)."""

    def __init__(
        self,
        run: ImportRun,
        *,
        client: DiscourseClient | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        client_options: dict | None = None,
        interrupted: threading.Event | None = None,
    ) -> None:
        self.run = run
        self.interrupted = interrupted or threading.Event()
        self.options = ImportOptions.from_params(run.params)
        self.source = run.source
        self.on_progress = on_progress or (lambda progress: None)
        self.client = client or DiscourseClient(
            self.options.base_url,
            rate=self.options.rate,
            sleep=self._sleep,
            api_key=os.environ.get("DISCOURSE_API_KEY"),
            api_username=os.environ.get("DISCOURSE_API_USERNAME"),
            # Web-started runs connect only to public addresses (see public_http).
            public_only_hosts=bool(run.params.get("from_web"))
            and not settings.IMPORT_ALLOW_PRIVATE_HOSTS,
            **(client_options or {}),
        )
        if client is not None:
            client.sleep = self._sleep
        self.counts = ImportCounts()
        self.progress = Progress()
        self.timings = Timings()
        self.fetcher: _Prefetcher | None = None
        self.cursor = run.params.get("cursor")
        self._category_names: dict[int, str] | None = None
        self._categories: list[dict] | None = None
        self._last_beat = time.monotonic()

    # Waiting and heartbeats

    def _sleep(self, seconds: float, reason: str) -> None:
        """Sleep in short slices, keeping the heartbeat and noticing a cancel request."""
        shown = reason != "rate" or seconds >= 2
        if shown:
            self._set_state(ImportRun.State.WAITING, waiting=seconds, reason=reason)
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, 0.5))
            self._beat_if_due()
            if shown:
                self.progress.waiting = max(0.0, end - time.monotonic())
                self.on_progress(self.progress)
        if shown:
            self._set_state(ImportRun.State.FETCHING)

    def _run_fields(self) -> dict:
        return {
            "heartbeat_at": timezone.now(),
            "requests_made": self.client.stats.requests,
            "wait_seconds": round(self.client.stats.wait_seconds, 3),
        }

    def _beat(self) -> None:
        self._last_beat = time.monotonic()
        alive = ImportRun.objects.filter(pk=self.run.pk, cancel_requested=False).update(
            **self._run_fields()
        )
        if not alive:
            raise Cancelled

    def _set_state(self, state: str, *, waiting: float = 0.0, reason: str = "") -> None:
        self.progress.state = state
        self.progress.waiting = waiting
        self.progress.wait_reason = reason
        self._last_beat = time.monotonic()
        message = ""
        if state == ImportRun.State.WAITING:
            message = f"Waiting {waiting:.0f} s: {WAIT_REASONS.get(reason, reason)}."
        alive = ImportRun.objects.filter(pk=self.run.pk, cancel_requested=False).update(
            state=state, message=message, **self._run_fields()
        )
        self.on_progress(self.progress)
        if not alive:
            raise Cancelled

    # Listing

    def category_names(self) -> dict[int, str]:
        if self._category_names is None:
            self._categories = self.client.categories()
            self._category_names = {
                int(c["id"]): str(c.get("name") or c.get("slug") or "") for c in self._categories
            }
        return self._category_names

    def _list_paths(self) -> list[str]:
        if self.options.categories:
            self.category_names()
            by_id = {str(c["id"]): c for c in self._categories or []}
            by_slug = {str(c.get("slug") or "").lower(): c for c in self._categories or []}
            paths = []
            for wanted in self.options.categories:
                category = by_id.get(str(wanted)) or by_slug.get(str(wanted).lower())
                if category is None:
                    raise DiscourseError(f"no category {wanted!r} on {self.options.base_url}")
                paths.append(f"/c/{category.get('slug') or category['id']}/{category['id']}.json")
            return paths
        if self.options.tags:
            return [f"/tag/{requests.utils.quote(t, safe='')}.json" for t in self.options.tags]
        return ["/latest.json"]

    def _in_window(self, item: dict) -> bool:
        created = _time(item.get("created_at"))
        if created is None:
            return True
        if self.options.since and created.date() < self.options.since:
            return False
        return not (self.options.until and created.date() > self.options.until)

    def _page_is_older(self, page: list[dict]) -> bool:
        """Lists run by activity: once a page's topics were all last bumped before
        ``since``, every later topic was also created before it."""
        if not self.options.since:
            return False
        marks = [_list_marks(t)[0] for t in page if not t.get("pinned")]
        marks = [m for m in marks if m is not None]
        return bool(marks) and all(m.date() < self.options.since for m in marks)

    def list_topics(self) -> list[dict]:
        """The topic items to consider, de-duplicated by id, filtered, in list order."""
        wanted_tags = {t.lower() for t in self.options.tags} if self.options.categories else set()
        limit = self.options.max_topics
        found: dict[int, dict] = {}
        for path in self._list_paths():
            for item in self.client.topic_list(path, stop=self._page_is_older):
                topic_id = _int_or_none(item.get("id"))
                if topic_id is None or topic_id in found or not self._in_window(item):
                    continue
                if wanted_tags and not wanted_tags & {
                    t.lower() for t in tag_names(item.get("tags"))
                }:
                    continue
                found[topic_id] = item
                self._beat_if_due()
                if limit and len(found) >= limit:
                    return list(found.values())
        return list(found.values())

    def _beat_if_due(self) -> None:
        if self.interrupted.is_set():
            raise Interrupted
        if time.monotonic() - self._last_beat >= HEARTBEAT_EVERY:
            self._beat()

    def needs_fetch(self, items: list[dict]) -> list[dict]:
        """The topics to fetch, in ascending id order (the resume cursor's order)."""
        ids = [int(item["id"]) for item in items]
        stored: dict[int, tuple] = {}
        for start in range(0, len(ids), 500):
            rows = Thread.objects.filter(
                source=self.source, external_id__in=ids[start : start + 500]
            ).values_list("external_id", "bumped_at", "last_posted_at")
            stored.update({row[0]: row[1:] for row in rows})
        wanted = []
        for item in sorted(items, key=lambda i: int(i["id"])):
            topic_id = int(item["id"])
            known = stored.get(topic_id)
            if known is None:
                wanted.append(item)
                continue
            bumped, last_posted = _list_marks(item)
            moved = (bumped is not None and bumped != known[0]) or (
                last_posted is not None and last_posted != known[1]
            )
            past_cursor = self.cursor is None or topic_id > self.cursor
            if moved or (self.options.refresh and past_cursor):
                wanted.append(item)
        return wanted

    # The run

    def execute(self) -> ImportCounts:
        """Import everything the options ask for; the run's final state says how it ended."""
        try:
            self._set_state(ImportRun.State.FETCHING)
            started = time.perf_counter()
            items = self.list_topics()
            todo = self.needs_fetch(items)
            self.timings.listing = time.perf_counter() - started
            self.progress.topics_total = len(todo)
            ImportRun.objects.filter(pk=self.run.pk).update(topics_total=len(todo))
            self.on_progress(self.progress)
            self._write_topics(todo)
        except Interrupted:
            self._finish(ImportRun.State.CANCELLED, "Interrupted; run it again to resume.")
        except Cancelled:
            self._finish(ImportRun.State.CANCELLED, "Cancelled.")
        except DiscourseError as exc:
            self._finish(ImportRun.State.FAILED, str(exc))
        except KeyboardInterrupt:
            self._finish(ImportRun.State.CANCELLED, "Interrupted; run it again to resume.")
            raise
        except Exception as exc:
            self._finish(ImportRun.State.FAILED, f"Unexpected error: {type(exc).__name__}")
            raise
        else:
            skipped = self.run.params.get("skipped_topics") or 0
            message = f"{skipped} topic(s) had disappeared from the forum." if skipped else ""
            self._finish(ImportRun.State.DONE, message)
        finally:
            self.client.close()
        return self.counts

    def _write_topics(self, todo: list[dict]) -> None:
        """Store the fetched topics in order; a prefetch thread keeps the network busy.

        Topics already fetched are written together (up to ``BATCH_TOPICS``, one
        transaction with the run's progress and cursor); while fetching is the slower
        part (a rate limit), each topic is written as soon as it arrives.
        """
        if not todo:
            return
        self.category_names()
        fetcher = _Prefetcher(self.client, todo)
        self.fetcher = fetcher
        self.client.sleep = fetcher.sleep
        fetcher.start()
        try:
            left = len(todo)
            while left:
                if self.interrupted.is_set():
                    raise Interrupted
                if ImportRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
                    raise Cancelled
                batch = [self._next_fetched(fetcher)]
                while len(batch) < min(BATCH_TOPICS, left):
                    try:
                        batch.append(fetcher.results.get_nowait())
                    except queue.Empty:
                        break
                left -= len(batch)
                self._store_batch(batch)
        finally:
            fetcher.stopped.set()
            fetcher.join(timeout=1)
            self.client.sleep = self._sleep

    def _next_fetched(self, fetcher: _Prefetcher) -> tuple[dict, object]:
        """The next fetched topic; while waiting, show rate-limit waits and keep the heartbeat."""
        started = time.perf_counter()
        try:
            while True:
                try:
                    result = fetcher.results.get(timeout=0.25)
                except queue.Empty:
                    pass
                else:
                    if self.progress.state == ImportRun.State.WAITING:
                        self._set_state(ImportRun.State.FETCHING)
                    return result
                waiting = fetcher.waiting_until - time.monotonic() if fetcher.wait_reason else 0
                if waiting > 0 and self.progress.state != ImportRun.State.WAITING:
                    self._set_state(
                        ImportRun.State.WAITING, waiting=waiting, reason=fetcher.wait_reason
                    )
                elif waiting <= 0 and self.progress.state == ImportRun.State.WAITING:
                    self._set_state(ImportRun.State.FETCHING)
                elif waiting > 0:
                    self.progress.waiting = waiting
                    self.on_progress(self.progress)
                self._beat_if_due()
                if not fetcher.is_alive() and fetcher.results.empty():
                    raise DiscourseError("fetching stopped unexpectedly")
        finally:
            self.timings.fetch_wait += time.perf_counter() - started

    def _parse(self, item: dict, fetched: tuple[dict, list[dict]]) -> ThreadRecord:
        started = time.perf_counter()
        topic_json, extra = fetched
        try:
            record = parse_topic(topic_json, extra, self.category_names())
        except ValueError as exc:
            raise DiscourseError(f"/t/{item['id']}.json: {exc}") from None
        # The list's activity marks are stored as they are, so a re-run can compare them.
        bumped, last_posted = _list_marks(item)
        record.bumped_at = bumped or record.bumped_at
        record.last_posted_at = last_posted or record.last_posted_at
        self.timings.parse += time.perf_counter() - started
        return record

    def _store_batch(self, batch: list[tuple[dict, object]]) -> None:
        """Write fetched topics, with progress and cursor, in one transaction.

        A fetch error is raised after the topics fetched before it are written.
        """
        ready: list[tuple[dict, ThreadRecord | None]] = []
        error: BaseException | None = None
        for item, result in batch:
            if isinstance(result, BaseException):
                error = result
                break
            try:
                ready.append((item, None if result is None else self._parse(item, result)))
            except DiscourseError as exc:
                error = exc
                break
        if ready:
            started = time.perf_counter()
            with transaction.atomic():
                records = [record for _item, record in ready if record is not None]
                self.counts += store_threads(self.source, records)
                gone = len(ready) - len(records)  # gone from the forum since it was listed
                if gone:
                    skipped = (self.run.params.get("skipped_topics") or 0) + gone
                    self.run.params["skipped_topics"] = skipped
                self.progress.posts += sum(len(record.posts) for record in records)
                self.progress.topics_done += len(ready)
                self.cursor = max([self.cursor or 0, *(int(item["id"]) for item, _ in ready)])
                self.run.params["cursor"] = self.cursor
                self._last_beat = time.monotonic()
                ImportRun.objects.filter(pk=self.run.pk).update(
                    params=self.run.params,
                    topics_done=self.progress.topics_done,
                    **asdict(self.counts),
                    **self._run_fields(),
                )
            self.timings.store += time.perf_counter() - started
            self.on_progress(self.progress)
        if error is not None:
            raise error

    def _finish(self, state: str, message: str) -> None:
        self.progress.state = state
        self.progress.waiting = 0
        ImportRun.objects.filter(pk=self.run.pk).update(
            state=state,
            message=message,
            finished_at=timezone.now(),
            params=self.run.params,
            topics_done=self.progress.topics_done,
            **asdict(self.counts),
            **self._run_fields(),
        )
        self.run.refresh_from_db()
        self.on_progress(self.progress)


def _list_marks(item: dict) -> tuple[datetime | None, datetime | None]:
    """The activity marks of a list item, stored as-is so a re-run can compare them."""
    last_posted = _time(item.get("last_posted_at"))
    bumped = _time(item.get("bumped_at")) or last_posted
    return bumped, last_posted


def run_import(
    options: ImportOptions,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    client_options: dict | None = None,
) -> tuple[ImportRun, ImportCounts]:
    """Create (or take over) a run of ``options`` in this process and carry it out."""
    run = create_run(options)
    importer = DiscourseImport(run, on_progress=on_progress, client_options=client_options)
    counts = importer.execute()
    return importer.run, counts
