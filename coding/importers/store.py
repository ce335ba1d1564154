"""The one write path of every forum importer (files and live Discourse alike).

Parsers turn their input into ``ThreadRecord``s; ``store_thread`` writes one thread
and its posts in one short transaction, so a crash never leaves half a thread and an
annotator's save never waits long. Writing is idempotent and edit-aware:

1. The thread row is matched by (source, topic id); its fields are compared and
   written only when something changed.
2. Posts are matched by post id within the thread. A post whose sanitized HTML
   (content hash) or metadata changed is updated in place, keeping its row and so
   every coding that points at it; an unchanged post is not written at all.
3. With ``complete=True`` (the record lists every post the forum still shows), posts
   missing from the record are marked ``deleted_upstream``; they are never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime

from django.db import IntegrityError, connections, models, router, transaction
from django.utils import timezone

from ..models import ForumSource, Post, Tag, Thread
from .html import clean_line, content_hash, html_to_text, sanitize_html


@dataclass
class PostRecord:
    external_id: int
    post_number: int
    author: str
    created_at: datetime
    html: str
    updated_at: datetime | None = None
    reply_to_post_number: int | None = None
    is_accepted_answer: bool = False


@dataclass
class ThreadRecord:
    external_id: int
    title: str
    created_at: datetime
    posts: list[PostRecord]
    slug: str = ""
    url: str = ""
    category: str = ""
    tags: list[str] = field(default_factory=list)
    last_posted_at: datetime | None = None
    bumped_at: datetime | None = None
    views: int = 0
    reply_count: int | None = None
    like_count: int = 0
    posts_count: int | None = None
    has_accepted_answer: bool | None = None
    complete: bool = True


@dataclass
class ImportCounts:
    threads_new: int = 0
    threads_updated: int = 0
    threads_unchanged: int = 0
    posts_new: int = 0
    posts_updated: int = 0
    posts_unchanged: int = 0

    def __iadd__(self, other: ImportCounts) -> ImportCounts:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    @property
    def writes(self) -> int:
        return self.threads_new + self.threads_updated + self.posts_new + self.posts_updated

    def summary_line(self) -> str:
        return (
            f"threads: {self.threads_new} new, {self.threads_updated} updated, "
            f"{self.threads_unchanged} unchanged; posts: {self.posts_new} new, "
            f"{self.posts_updated} updated, {self.posts_unchanged} unchanged"
        )


THREAD_FIELDS = (
    "title", "slug", "url", "category", "created_at", "last_posted_at", "bumped_at", "views",
    "reply_count", "like_count", "posts_count", "has_accepted_answer",
)  # fmt: skip
POST_FIELDS = (
    "post_number", "author", "created_at", "updated_at", "reply_to_post_number",
    "is_accepted_answer", "html", "plain_text", "content_hash", "deleted_upstream",
)  # fmt: skip
INSERT_ROWS = 500  # rows per INSERT statement, well under PostgreSQL's parameter limit


def _tag_pks(names) -> dict[str, int]:
    """Tag ids by name, creating the tags not stored yet."""
    wanted = sorted({clean_line(n)[:200] for n in names if clean_line(n)})
    if not wanted:
        return {}
    found = dict(Tag.objects.filter(name__in=wanted).values_list("name", "pk"))
    missing = [n for n in wanted if n not in found]
    if missing:
        Tag.objects.bulk_create([Tag(name=n) for n in missing], ignore_conflicts=True)
        found.update(Tag.objects.filter(name__in=missing).values_list("name", "pk"))
    return found


def _tag_ids(names: list[str]) -> list[int]:
    return sorted(_tag_pks(names).values())


def prepare_post(record: PostRecord) -> dict:
    """The stored form of a post: sanitized HTML, its plain text and hash."""
    html = sanitize_html(record.html)
    return {
        "post_number": record.post_number,
        "author": clean_line(record.author)[:200],
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "reply_to_post_number": record.reply_to_post_number,
        "is_accepted_answer": record.is_accepted_answer,
        "html": html,
        "plain_text": html_to_text(html),
        "content_hash": content_hash(html),
        "deleted_upstream": False,
    }


def _thread_values(source: ForumSource, record: ThreadRecord) -> dict:
    posts = record.posts
    return {
        "title": clean_line(record.title)[:500] or f"Topic {record.external_id}",
        "slug": clean_line(record.slug)[:500],
        "url": record.url or source.topic_url(record.external_id, record.slug),
        "category": clean_line(record.category)[:200],
        "created_at": record.created_at,
        "last_posted_at": record.last_posted_at or max((p.created_at for p in posts), default=None),
        "bumped_at": record.bumped_at or record.last_posted_at,
        "views": max(0, record.views or 0),
        "reply_count": record.reply_count
        if record.reply_count is not None
        else max(0, len(posts) - 1),
        "like_count": max(0, record.like_count or 0),
        "posts_count": record.posts_count if record.posts_count is not None else len(posts),
        "has_accepted_answer": (
            record.has_accepted_answer
            if record.has_accepted_answer is not None
            else any(p.is_accepted_answer for p in posts)
        ),
    }


def store_thread(source: ForumSource, record: ThreadRecord) -> ImportCounts:
    """Write one thread and its posts in one transaction; returns what changed."""
    counts = ImportCounts()
    values = _thread_values(source, record)
    prepared = {p.external_id: prepare_post(p) for p in record.posts}
    tag_ids = _tag_ids(record.tags)
    with transaction.atomic():
        thread = Thread.objects.filter(source=source, external_id=record.external_id).first()
        if thread is None:
            thread = Thread.objects.create(source=source, external_id=record.external_id, **values)
            counts.threads_new = 1
            existing: dict[int, Post] = {}
            old_tags: list[int] = []
        else:
            changed = [k for k, v in values.items() if getattr(thread, k) != v]
            if changed:
                for k in changed:
                    setattr(thread, k, values[k])
                thread.save(update_fields=[*changed, "refreshed_at"])
                counts.threads_updated = 1
            existing = {p.external_id: p for p in thread.posts.all()}
            old_tags = sorted(thread.tags.values_list("pk", flat=True))
        if tag_ids != old_tags:
            thread.tags.set(tag_ids)
            if not counts.threads_new and not counts.threads_updated:
                counts.threads_updated = 1
        if not counts.threads_new and not counts.threads_updated:
            counts.threads_unchanged = 1

        new_posts: list[list] = []
        changed_posts: list[Post] = []
        for external_id, data in prepared.items():
            post = existing.get(external_id)
            if post is None:
                new_posts.append([thread.pk, external_id, *_ordered(data, POST_FIELDS)])
            elif any(getattr(post, k) != v for k, v in data.items()):
                for k, v in data.items():
                    setattr(post, k, v)
                changed_posts.append(post)
            else:
                counts.posts_unchanged += 1
        if record.complete:
            for external_id, post in existing.items():
                if external_id not in prepared and not post.deleted_upstream:
                    post.deleted_upstream = True
                    changed_posts.append(post)
        if changed_posts:
            # Free post numbers first: a renumbered post may take another's old number.
            Post.objects.bulk_update(changed_posts, POST_FIELDS)
        if new_posts:
            _insert(Post, ["thread", "external_id", *POST_FIELDS], new_posts)
        counts.posts_new = len(new_posts)
        counts.posts_updated = len(changed_posts)
    return counts


def store_threads(source: ForumSource, records: list[ThreadRecord]) -> ImportCounts:
    """Several threads in one transaction: the same result as ``store_thread`` on each.

    Threads not stored yet (most of a first import) are created with bulk inserts; known
    threads, and every thread if the bulk insert meets a concurrent writer, go through
    ``store_thread`` so edits and deletions are handled in one place.
    """
    counts = ImportCounts()
    with transaction.atomic():
        ids = {r.external_id for r in records}
        known = set(
            Thread.objects.filter(source=source, external_id__in=ids).values_list(
                "external_id", flat=True
            )
        )
        fresh: dict[int, ThreadRecord] = {}
        later: list[ThreadRecord] = []
        for record in records:
            if record.external_id in known or record.external_id in fresh:
                later.append(record)
            else:
                fresh[record.external_id] = record
        if fresh:
            try:
                with transaction.atomic():
                    counts += _create_threads(source, list(fresh.values()))
            except IntegrityError:
                later = records
        for record in later:
            counts += store_thread(source, record)
    return counts


def _create_threads(source: ForumSource, records: list[ThreadRecord]) -> ImportCounts:
    tag_pks = _tag_pks([name for r in records for name in r.tags])
    now = timezone.now()
    rows = [
        [source.pk, r.external_id, *_ordered(_thread_values(source, r), THREAD_FIELDS), now, now]
        for r in records
    ]
    names = ["source", "external_id", *THREAD_FIELDS, "imported_at", "refreshed_at"]
    if _can_return_rows(Thread):
        thread_pks = dict(_insert(Thread, names, rows, returning=("external_id", "id")))
    else:
        _insert(Thread, names, rows)
        thread_pks = dict(
            Thread.objects.filter(
                source=source, external_id__in=[r.external_id for r in records]
            ).values_list("external_id", "pk")
        )
    links, posts = [], []
    for record in records:
        thread_pk = thread_pks[record.external_id]
        tags = {clean_line(n)[:200] for n in record.tags if clean_line(n)}
        links += [[thread_pk, tag_pks[name]] for name in sorted(tags)]
        posts += [
            [thread_pk, p.external_id, *_ordered(prepare_post(p), POST_FIELDS)]
            for p in {p.external_id: p for p in record.posts}.values()
        ]
    _insert(Thread.tags.through, ["thread", "tag"], links)
    _insert(Post, ["thread", "external_id", *POST_FIELDS], posts)
    return ImportCounts(threads_new=len(records), posts_new=len(posts))


def _ordered(values: dict, names: tuple[str, ...]) -> list:
    return [values[name] for name in names]


def _can_return_rows(model) -> bool:
    return connections[router.db_for_write(model)].features.can_return_rows_from_bulk_insert


def _insert(model, names: list[str], rows: list[list], returning: tuple[str, ...] = ()) -> list:
    """Insert ``rows`` (values in the order of the fields ``names``) with multi-row
    INSERTs, returning the ``returning`` columns of the new rows if asked.

    A first import is mostly such inserts, and building a model instance per row costs
    more than the insert itself. The values already have their column's Python type;
    times are adapted as the ORM adapts them (a naive time goes through the field,
    which warns about it).
    """
    if not rows:
        return []
    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    db = connections[router.db_for_write(model)]
    quote, adapt = db.ops.quote_name, db.ops.adapt_datetimefield_value
    times = [i for i, f in enumerate(fields) if isinstance(f, models.DateTimeField)]
    for row in rows:
        for i in times:
            value = row[i]
            if value is not None and value.tzinfo is not None:
                row[i] = adapt(value)
            elif value is not None:
                row[i] = fields[i].get_db_prep_save(value, db)
    head = "INSERT INTO {} ({}) ".format(
        quote(meta.db_table), ", ".join(quote(f.column) for f in fields)
    )
    tail = ""
    if returning:
        tail = " RETURNING " + ", ".join(quote(meta.get_field(n).column) for n in returning)
    size = max(1, min(db.ops.bulk_batch_size(fields, rows), INSERT_ROWS))
    marks = ["%s"] * len(fields)
    found: list = []
    with db.cursor() as cursor:
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            values = db.ops.bulk_insert_sql(fields, [marks] * len(chunk))
            cursor.execute(head + values + tail, [value for row in chunk for value in row])
            if returning:
                found += cursor.fetchall()
    return found
