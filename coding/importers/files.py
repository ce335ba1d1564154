"""Import threads from files: Discourse topic JSON, JSONL of topics, or CSV of posts.

The work goes in two passes so that a bad file changes nothing:

1. ``validate_file`` stream-parses the whole file into ``ThreadRecord``s and collects
   every problem, each named by file, line (or JSON path) and field. Any problem stops
   the import before a single row is written.
2. ``import_file`` then parses the file again and writes thread by thread through
   ``store_thread``, one short transaction each, so annotators' saves are never blocked
   for long and a live import of the same forum meets the same rows.

Accepted shapes (also documented in the README under "File import"):

- JSON: one topic object as served by ``/t/{id}.json`` (all posts in
  ``post_stream.posts``), or a list of such objects.
- JSONL: one topic object per line (``.jsonl``/``.ndjson``).
- CSV: one row per post with the columns in ``CSV_REQUIRED`` plus ``body_html`` or
  ``body_text``, optionally ``reply_to_post_number``, ``accepted_answer`` and ``url``.

Any of these may be gzip-compressed (``.gz``). Files larger than ``IMPORT_MAX_BYTES``
(compressed or not) are refused before parsing.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import ForumSource, ImportRun
from .discourse import is_stale
from .html import clean_line
from .store import ImportCounts, PostRecord, ThreadRecord, store_thread

SMALL_ACTION = 3
# The search index keys a post by thread and post number in one integer (coding/search.py).
MAX_POST_NUMBER = 2**24 - 1
MAX_REPORTED_ERRORS = 20
CSV_REQUIRED = (
    "thread_id",
    "thread_title",
    "thread_created_at",
    "category",
    "tags",
    "post_id",
    "post_number",
    "author",
    "post_created_at",
)
FORMATS = ("json", "jsonl", "csv")


class ImportFileError(Exception):
    """A file that cannot be imported; ``problems`` lists each one with its location."""

    def __init__(self, problems: list[str], total: int | None = None) -> None:
        self.problems = problems
        self.total = total if total is not None else len(problems)
        shown = "\n".join(f"  {p}" for p in problems)
        more = self.total - len(problems)
        tail = f"\n  ... and {more} more" if more > 0 else ""
        noun = "problem" if self.total == 1 else "problems"
        super().__init__(f"{self.total} {noun}, nothing was imported:\n{shown}{tail}")


class _Problem(Exception):
    """One field of one record is wrong; ``where`` is filled in by the caller."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass
class Located:
    """A parsed thread and where it came from (for messages)."""

    where: str
    record: ThreadRecord


# ---------------------------------------------------------------------------
# Opening files


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext == ".json":
        return "json"
    if ext in {".jsonl", ".ndjson"}:
        return "jsonl"
    if ext == ".csv":
        return "csv"
    raise ImportFileError(
        [f"{path.name}: unknown file type {ext or '(none)'!r}; expected .json, .jsonl or .csv"]
    )


class _CappedReader(io.RawIOBase):
    """Reads a decompressed stream and refuses to go past ``limit`` bytes."""

    def __init__(self, raw: IO[bytes], limit: int, name: str) -> None:
        self.raw = raw
        self.limit = limit
        self.name = name
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.count += len(data)
        if self.count > self.limit:
            raise ImportFileError([_too_large(self.name, self.limit, "once decompressed ")])
        buffer[: len(data)] = data
        return len(data)


def _too_large(name: str, limit: int, how: str = "") -> str:
    return (
        f"{name}: the file is larger than the import limit {how}"
        f"({limit:,} bytes; set IMPORT_MAX_BYTES to raise it)"
    )


def check_size(path: Path, max_bytes: int | None = None) -> int:
    limit = max_bytes if max_bytes is not None else settings.IMPORT_MAX_BYTES
    if not path.is_file():
        raise ImportFileError([f"{path}: no such file"])
    if path.stat().st_size > limit:
        raise ImportFileError([_too_large(path.name, limit)])
    return limit


def _open_text(path: Path, limit: int) -> IO[str]:
    raw = path.open("rb")
    if path.suffix.lower() == ".gz":
        stream: IO[bytes] = io.BufferedReader(
            _CappedReader(gzip.GzipFile(fileobj=raw), limit, path.name)
        )
    else:
        stream = raw
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


# ---------------------------------------------------------------------------
# Field helpers


def _parse_time(value: Any, field: str, *, required: bool = True) -> datetime | None:
    if value is None or value == "":
        if required:
            raise _Problem(field, "missing")
        return None
    if not isinstance(value, str):
        raise _Problem(field, f"expected an ISO-8601 time, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _Problem(field, f"not an ISO-8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse_int(
    value: Any, field: str, *, required: bool = True, minimum: int = 0, maximum: int = 2**62
) -> int | None:
    if value is None or value == "":
        if required:
            raise _Problem(field, "missing")
        return None
    if isinstance(value, bool):
        raise _Problem(field, f"expected a whole number, got {value!r}")
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"-?\d+", value):
            raise _Problem(field, f"expected a whole number, got {value!r}")
        value = int(value)
    if not isinstance(value, int):
        raise _Problem(field, f"expected a whole number, got {value!r}")
    if value < minimum:
        raise _Problem(field, f"must be at least {minimum}, got {value}")
    if value > maximum:
        raise _Problem(field, f"must be at most {maximum}, got {value}")
    return value


def _parse_str(value: Any, field: str, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise _Problem(field, "missing")
        return ""
    if not isinstance(value, str):
        raise _Problem(field, f"expected text, got {type(value).__name__}")
    if required and not value.strip():
        raise _Problem(field, "empty")
    return value


def _parse_bool(value: Any, field: str) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "y"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "n"}:
        return False
    raise _Problem(field, f"expected true or false, got {value!r}")


def _parse_tags(value: Any, field: str) -> list[str]:
    """Tags as names (older Discourse) or as objects with a ``name`` (current)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Problem(field, "expected a list of tags")
    names = []
    for i, tag in enumerate(value):
        if isinstance(tag, str):
            names.append(tag)
        elif isinstance(tag, dict) and isinstance(tag.get("name"), str):
            names.append(tag["name"])
        else:
            raise _Problem(f"{field}[{i}]", "expected a tag name or an object with a name")
    return names


def _text_to_html(text: str) -> str:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    return "".join(
        "<p>" + "<br>".join(escape(line) for line in p.splitlines()) + "</p>" for p in paragraphs
    )


def _check_posts(posts: list[PostRecord], field: str) -> None:
    numbers: set[int] = set()
    ids: set[int] = set()
    for post in posts:
        if post.post_number in numbers:
            raise _Problem(field, f"post number {post.post_number} appears twice")
        if post.external_id in ids:
            raise _Problem(field, f"post id {post.external_id} appears twice")
        numbers.add(post.post_number)
        ids.add(post.external_id)


# ---------------------------------------------------------------------------
# Discourse topic JSON


def _topic_category(topic: dict) -> str:
    """A category name when the file carries one, otherwise the forum's category id."""
    for key in ("category_name", "category"):
        value = topic.get(key)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            return value["name"]
    category_id = topic.get("category_id")
    if category_id is None or category_id == "":
        return ""
    return str(_parse_int(category_id, "category_id"))


def _accepted_numbers(topic: dict) -> tuple[set[int], set[int]]:
    """Post numbers and post ids named as accepted answers at topic level (both shapes)."""
    numbers: set[int] = set()
    ids: set[int] = set()
    single = topic.get("accepted_answer")
    if isinstance(single, dict) and single.get("post_number") is not None:
        numbers.add(_parse_int(single["post_number"], "accepted_answer.post_number"))
    many = topic.get("accepted_answers")
    if many is not None:
        if not isinstance(many, list):
            raise _Problem("accepted_answers", "expected a list")
        for i, item in enumerate(many):
            if not isinstance(item, dict):
                raise _Problem(f"accepted_answers[{i}]", "expected an object")
            if item.get("post_number") is not None:
                numbers.add(_parse_int(item["post_number"], f"accepted_answers[{i}].post_number"))
            if item.get("id") is not None:
                ids.add(_parse_int(item["id"], f"accepted_answers[{i}].id"))
    return numbers, ids


def parse_topic(topic: Any) -> ThreadRecord:
    """One ``/t/{id}.json`` object as a ThreadRecord; raises ``_Problem`` naming the field."""
    if not isinstance(topic, dict):
        raise _Problem("$", "expected a topic object")
    topic_id = _parse_int(topic.get("id"), "id", minimum=1)
    title = _parse_str(topic.get("title"), "title", required=True)
    created_at = _parse_time(topic.get("created_at"), "created_at")
    stream = topic.get("post_stream")
    if not isinstance(stream, dict) or not isinstance(stream.get("posts"), list):
        raise _Problem("post_stream.posts", "missing or not a list")
    accepted_numbers, accepted_ids = _accepted_numbers(topic)
    posts: list[PostRecord] = []
    seen_ids: set[int] = set()
    for i, raw in enumerate(stream["posts"]):
        where = f"post_stream.posts[{i}]"
        if not isinstance(raw, dict):
            raise _Problem(where, "expected a post object")
        post_id = _parse_int(raw.get("id"), f"{where}.id", minimum=1)
        seen_ids.add(post_id)
        post_type = _parse_int(raw.get("post_type"), f"{where}.post_type", required=False)
        if post_type == SMALL_ACTION:
            continue
        number = _parse_int(
            raw.get("post_number"), f"{where}.post_number", minimum=1, maximum=MAX_POST_NUMBER
        )
        cooked = raw.get("cooked")
        if cooked is None:
            raise _Problem(f"{where}.cooked", "missing")
        author = raw.get("username") or raw.get("display_username") or raw.get("name") or ""
        posts.append(
            PostRecord(
                external_id=post_id,
                post_number=number,
                author=_parse_str(author, f"{where}.username"),
                created_at=_parse_time(raw.get("created_at"), f"{where}.created_at"),
                html=_parse_str(cooked, f"{where}.cooked"),
                updated_at=_parse_time(
                    raw.get("updated_at"), f"{where}.updated_at", required=False
                ),
                reply_to_post_number=_parse_int(
                    raw.get("reply_to_post_number"),
                    f"{where}.reply_to_post_number",
                    required=False,
                    minimum=1,
                ),
                is_accepted_answer=(
                    _parse_bool(raw.get("accepted_answer"), f"{where}.accepted_answer")
                    or number in accepted_numbers
                    or post_id in accepted_ids
                ),
            )
        )
    if not posts:
        raise _Problem("post_stream.posts", "no posts (besides small actions)")
    _check_posts(posts, "post_stream.posts")
    # A topic whose stream lists posts the file lacks is a partial copy: never mark the
    # missing ones as deleted upstream.
    stream_ids = stream.get("stream")
    complete = isinstance(stream_ids, list) and all(
        isinstance(s, int) and s in seen_ids for s in stream_ids
    )
    has_accepted = topic.get("has_accepted_answer")
    return ThreadRecord(
        external_id=topic_id,
        title=title,
        created_at=created_at,
        posts=posts,
        slug=_parse_str(topic.get("slug"), "slug"),
        category=_topic_category(topic),
        tags=_parse_tags(topic.get("tags"), "tags"),
        last_posted_at=_parse_time(topic.get("last_posted_at"), "last_posted_at", required=False),
        bumped_at=_parse_time(topic.get("bumped_at"), "bumped_at", required=False),
        views=_parse_int(topic.get("views"), "views", required=False) or 0,
        reply_count=_parse_int(topic.get("reply_count"), "reply_count", required=False),
        like_count=_parse_int(topic.get("like_count"), "like_count", required=False) or 0,
        posts_count=_parse_int(topic.get("posts_count"), "posts_count", required=False),
        has_accepted_answer=(
            True
            if any(p.is_accepted_answer for p in posts)
            else (_parse_bool(has_accepted, "has_accepted_answer") if has_accepted else None)
        ),
        complete=complete,
    )


def _iter_json(handle: IO[str], name: str) -> Iterator[Located | str]:
    try:
        data = json.load(handle)
    except json.JSONDecodeError as exc:
        yield f"{name}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
        return
    except UnicodeDecodeError:
        yield f"{name}: not UTF-8 text"
        return
    items = data if isinstance(data, list) else [data]
    for index, topic in enumerate(items):
        where = f"{name}, $[{index}]" if isinstance(data, list) else f"{name}, $"
        try:
            yield Located(where, parse_topic(topic))
        except _Problem as p:
            yield f"{where}.{p.field}: {p.message}" if p.field != "$" else f"{where}: {p.message}"


def _iter_jsonl(handle: IO[str], name: str) -> Iterator[Located | str]:
    try:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{name}, line {number}"
            try:
                topic = json.loads(line)
            except json.JSONDecodeError as exc:
                yield f"{where}, column {exc.colno}: not valid JSON ({exc.msg})"
                continue
            try:
                yield Located(where, parse_topic(topic))
            except _Problem as p:
                yield f"{where}, {p.field}: {p.message}"
    except UnicodeDecodeError:
        yield f"{name}: not UTF-8 text"


# ---------------------------------------------------------------------------
# CSV, one row per post


def _iter_csv(handle: IO[str], name: str) -> Iterator[Located | str]:
    try:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        missing = [c for c in CSV_REQUIRED if c not in columns]
        if "body_html" not in columns and "body_text" not in columns:
            missing.append("body_html or body_text")
        if missing:
            yield f"{name}, line 1: missing column(s): {', '.join(missing)}"
            return
        threads: dict[int, dict] = {}
        for row in reader:
            line = reader.line_num
            where = f"{name}, line {line}"
            try:
                thread_id = _parse_int(row.get("thread_id"), "thread_id", minimum=1)
                thread = threads.get(thread_id)
                title = _parse_str(row.get("thread_title"), "thread_title", required=True)
                created = _parse_time(row.get("thread_created_at"), "thread_created_at")
                category = row.get("category") or ""
                tags = [t for t in (row.get("tags") or "").split(";") if t.strip()]
                if thread is None:
                    thread = threads[thread_id] = {
                        "where": where,
                        "title": title,
                        "created_at": created,
                        "category": category,
                        "tags": tags,
                        "url": row.get("url") or "",
                        "posts": [],
                    }
                else:
                    for field, key, value in (
                        ("thread_title", "title", title),
                        ("thread_created_at", "created_at", created),
                        ("category", "category", category),
                    ):
                        if thread[key] != value:
                            raise _Problem(
                                field, f"differs from the first row of thread {thread_id}"
                            )
                html = row.get("body_html") or ""
                if not html and row.get("body_text"):
                    html = _text_to_html(row["body_text"])
                if not html.strip():
                    raise _Problem("body_html/body_text", "empty")
                thread["posts"].append(
                    PostRecord(
                        external_id=_parse_int(row.get("post_id"), "post_id", minimum=1),
                        post_number=_parse_int(
                            row.get("post_number"),
                            "post_number",
                            minimum=1,
                            maximum=MAX_POST_NUMBER,
                        ),
                        author=row.get("author") or "",
                        created_at=_parse_time(row.get("post_created_at"), "post_created_at"),
                        html=html,
                        reply_to_post_number=_parse_int(
                            row.get("reply_to_post_number"),
                            "reply_to_post_number",
                            required=False,
                            minimum=1,
                        ),
                        is_accepted_answer=_parse_bool(
                            row.get("accepted_answer"), "accepted_answer"
                        ),
                    )
                )
            except _Problem as p:
                yield f"{where}, {p.field}: {p.message}"
    except csv.Error as exc:
        yield f"{name}, line {reader.line_num}: not valid CSV ({exc})"
        return
    except UnicodeDecodeError:
        yield f"{name}: not UTF-8 text"
        return
    for thread_id, t in threads.items():
        posts = sorted(t["posts"], key=lambda p: p.post_number)
        try:
            _check_posts(posts, "post_number/post_id")
        except _Problem as p:
            yield f"{name}, thread {thread_id} (from {t['where']}), {p.field}: {p.message}"
            continue
        yield Located(
            t["where"],
            ThreadRecord(
                external_id=thread_id,
                title=t["title"],
                created_at=t["created_at"],
                posts=posts,
                url=t["url"] if urlsplit(t["url"]).scheme in {"http", "https"} else "",
                category=t["category"],
                tags=t["tags"],
                complete=False,
            ),
        )


_READERS: dict[str, Callable[[IO[str], str], Iterator[Located | str]]] = {
    "json": _iter_json,
    "jsonl": _iter_jsonl,
    "csv": _iter_csv,
}


def iter_file(path: Path, fmt: str | None = None, max_bytes: int | None = None):
    """Yield a ``Located`` record or a problem string for each thread in the file."""
    limit = check_size(path, max_bytes)
    fmt = fmt or detect_format(path)
    seen: dict[int, str] = {}
    with _open_text(path, limit) as handle:
        for item in _READERS[fmt](handle, path.name):
            if isinstance(item, Located):
                first = seen.setdefault(item.record.external_id, item.where)
                if first != item.where:
                    yield (
                        f"{item.where}: topic id {item.record.external_id} "
                        f"appears again (first at {first.split(', ', 1)[-1]})"
                    )
                    continue
            yield item


def validate_file(path: Path, fmt: str | None = None, max_bytes: int | None = None) -> int:
    """Parse the whole file; raise ``ImportFileError`` listing problems, else count threads."""
    problems: list[str] = []
    total = threads = 0
    for item in iter_file(path, fmt, max_bytes):
        if isinstance(item, str):
            total += 1
            if len(problems) < MAX_REPORTED_ERRORS:
                problems.append(item)
        else:
            threads += 1
    if total:
        raise ImportFileError(problems, total)
    if not threads:
        raise ImportFileError([f"{path.name}: no threads in the file"])
    return threads


# ---------------------------------------------------------------------------
# Sources and the write pass


def resolve_source(name_or_url: str) -> tuple[ForumSource, bool]:
    """The forum source named by ``--source``: a base URL or a name; created if new.

    A base URL ties the file to the forum a live import reads from, so the two share
    thread rows instead of duplicating them.
    """
    value = clean_line(name_or_url)
    if not value:
        raise ImportFileError(["--source: empty"])
    parts = urlsplit(value)
    if parts.scheme in {"http", "https"} and parts.netloc:
        base_url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        source = ForumSource.objects.filter(base_url__in=[base_url, base_url + "/"]).first()
        if source:
            return source, False
        name = parts.netloc
        if ForumSource.objects.filter(name=name).exists():
            name = base_url
        return ForumSource.objects.get_or_create(name=name, defaults={"base_url": base_url})
    if "://" in value:
        raise ImportFileError([f"--source: only http and https forum URLs are accepted: {value}"])
    return ForumSource.objects.get_or_create(name=value[:200])


def import_file(
    path: Path,
    source_spec: str,
    *,
    fmt: str | None = None,
    max_bytes: int | None = None,
    user=None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ImportCounts, ImportRun]:
    """Validate ``path`` whole, then write it thread by thread; returns the counts.

    Progress is kept on an ``ImportRun`` so pages can show it while the file is written.
    """
    path = Path(path)
    total = validate_file(path, fmt, max_bytes)
    source, _ = resolve_source(source_spec)
    run = _start_run(source, path, fmt, total, user)
    counts = ImportCounts()
    done = 0
    try:
        for item in iter_file(path, fmt, max_bytes):
            if isinstance(item, str):  # the file changed since it was validated
                raise ImportFileError([item])
            counts += store_thread(source, item.record)
            done += 1
            if done % 50 == 0 or done == total:
                _save_progress(run, counts, done)
            if progress:
                progress(done, total)
    except BaseException as exc:
        _save_progress(run, counts, done)
        run.state = ImportRun.State.FAILED
        run.message = str(exc)[:2000] or type(exc).__name__
        run.finished_at = timezone.now()
        run.save(update_fields=["state", "message", "finished_at"])
        raise
    _save_progress(run, counts, done)
    run.state = ImportRun.State.DONE
    run.message = counts.summary_line()
    run.finished_at = timezone.now()
    run.save(update_fields=["state", "message", "finished_at"])
    return counts, run


def _start_run(source: ForumSource, path: Path, fmt: str | None, total: int, user) -> ImportRun:
    """A run row for this import; a stale run of the same forum (its process died) is
    taken over, a live one refuses the import."""
    params = {
        "path": str(path),
        "format": fmt or detect_format(path),
        "worker": {"host": socket.gethostname(), "pid": os.getpid()},
    }
    for attempt in range(2):
        try:
            with transaction.atomic():
                return ImportRun.objects.create(
                    source=source,
                    kind=ImportRun.Kind.FILE,
                    params=params,
                    state=ImportRun.State.WRITING,
                    topics_total=total,
                    created_by=user,
                    started_at=timezone.now(),
                    heartbeat_at=timezone.now(),
                )
        except IntegrityError:
            active = ImportRun.objects.filter(
                source=source, state__in=ImportRun.ACTIVE_STATES
            ).first()
            if attempt == 0 and (active is None or is_stale(active)):
                if active is not None:
                    ImportRun.objects.filter(pk=active.pk, state=active.state).update(
                        state=ImportRun.State.FAILED,
                        message="Abandoned: its process stopped; a file import took over.",
                        finished_at=timezone.now(),
                    )
                continue
            raise ImportFileError(
                [f"another import of {source.name} is running ({active}); try again when it ends"]
            ) from None
    raise ImportFileError([f"could not start an import of {source.name}"])


def _save_progress(run: ImportRun, counts: ImportCounts, done: int) -> None:
    run.topics_done = done
    run.threads_new = counts.threads_new
    run.threads_updated = counts.threads_updated
    run.threads_unchanged = counts.threads_unchanged
    run.posts_new = counts.posts_new
    run.posts_updated = counts.posts_updated
    run.posts_unchanged = counts.posts_unchanged
    run.heartbeat_at = timezone.now()
    run.save(
        update_fields=[
            "topics_done",
            "threads_new",
            "threads_updated",
            "threads_unchanged",
            "posts_new",
            "posts_updated",
            "posts_unchanged",
            "heartbeat_at",
        ]
    )
