"""Full-text search over thread titles and post text, in the database's own engine.

SQLite: two FTS5 tables over the plain text of posts and the titles of threads (external
content, so the text is stored once), kept in step by triggers. Triggers also cover the
raw-SQL bulk inserts of the synthetic corpus. A table rebuild by a later migration drops
a table's triggers with it, so ``ensure_search_index`` runs after every ``migrate`` and
restores them (re-indexing) when any is missing.

PostgreSQL: GIN indexes on ``to_tsvector('english', ...)`` expressions; the queries
below repeat those expressions exactly so the planner uses the indexes.

User input never reaches either engine's query syntax directly: on SQLite it is cut into
words and quoted phrases, each quoted for FTS5; on PostgreSQL ``websearch_to_tsquery``
parses it and accepts anything.
"""

from __future__ import annotations

import re

from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

MAX_TERMS = 12
# PostgreSQL refuses a tsvector over 1 MB, so posts are indexed by their first 100,000
# characters. The match queries repeat the indexed expressions exactly.
PG_POSTS_MATCHING = (
    "SELECT thread_id FROM coding_post WHERE "
    "to_tsvector('english'::regconfig, left(plain_text, 100000)) "
    "@@ websearch_to_tsquery('english'::regconfig, %s)"
)
PG_TITLES_MATCHING = (
    "SELECT id FROM coding_thread WHERE to_tsvector('english'::regconfig, title) "
    "@@ websearch_to_tsquery('english'::regconfig, %s)"
)
SQLITE_POSTS_MATCHING = (
    "SELECT thread_id FROM coding_post WHERE id IN "
    "(SELECT rowid FROM coding_post_fts WHERE coding_post_fts MATCH %s)"
)
SQLITE_TITLES_MATCHING = "SELECT rowid FROM coding_thread_fts WHERE coding_thread_fts MATCH %s"

_SQLITE_TABLES = ("coding_post_fts", "coding_thread_fts")
_SQLITE_TRIGGERS = tuple(f"{t}_{e}" for t in _SQLITE_TABLES for e in ("insert", "delete", "update"))
SQLITE_SETUP = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS coding_post_fts USING fts5(plain_text, "
    "content='coding_post', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS coding_post_fts_insert AFTER INSERT ON coding_post BEGIN "
    "INSERT INTO coding_post_fts(rowid, plain_text) VALUES (new.id, new.plain_text); END",
    "CREATE TRIGGER IF NOT EXISTS coding_post_fts_delete AFTER DELETE ON coding_post BEGIN "
    "INSERT INTO coding_post_fts(coding_post_fts, rowid, plain_text) "
    "VALUES ('delete', old.id, old.plain_text); END",
    "CREATE TRIGGER IF NOT EXISTS coding_post_fts_update AFTER UPDATE OF plain_text "
    "ON coding_post BEGIN "
    "INSERT INTO coding_post_fts(coding_post_fts, rowid, plain_text) "
    "VALUES ('delete', old.id, old.plain_text); "
    "INSERT INTO coding_post_fts(rowid, plain_text) VALUES (new.id, new.plain_text); END",
    "INSERT INTO coding_post_fts(coding_post_fts) VALUES ('rebuild')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS coding_thread_fts USING fts5(title, "
    "content='coding_thread', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS coding_thread_fts_insert AFTER INSERT ON coding_thread BEGIN "
    "INSERT INTO coding_thread_fts(rowid, title) VALUES (new.id, new.title); END",
    "CREATE TRIGGER IF NOT EXISTS coding_thread_fts_delete AFTER DELETE ON coding_thread BEGIN "
    "INSERT INTO coding_thread_fts(coding_thread_fts, rowid, title) "
    "VALUES ('delete', old.id, old.title); END",
    "CREATE TRIGGER IF NOT EXISTS coding_thread_fts_update AFTER UPDATE OF title "
    "ON coding_thread BEGIN "
    "INSERT INTO coding_thread_fts(coding_thread_fts, rowid, title) "
    "VALUES ('delete', old.id, old.title); "
    "INSERT INTO coding_thread_fts(rowid, title) VALUES (new.id, new.title); END",
    "INSERT INTO coding_thread_fts(coding_thread_fts) VALUES ('rebuild')",
)
SQLITE_TEARDOWN = (
    *(f"DROP TRIGGER IF EXISTS {name}" for name in _SQLITE_TRIGGERS),
    *(f"DROP TABLE IF EXISTS {name}" for name in _SQLITE_TABLES),
)
PG_SETUP = (
    "CREATE INDEX IF NOT EXISTS coding_post_search ON coding_post USING gin "
    "(to_tsvector('english'::regconfig, left(plain_text, 100000)))",
    "CREATE INDEX IF NOT EXISTS coding_thread_title_search ON coding_thread USING gin "
    "(to_tsvector('english'::regconfig, title))",
)
PG_TEARDOWN = (
    "DROP INDEX IF EXISTS coding_post_search",
    "DROP INDEX IF EXISTS coding_thread_title_search",
)


def _run(connection, statements) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def create_search_index(connection) -> None:
    """Create the search tables or indexes for this database (used by the migration)."""
    if connection.vendor == "sqlite":
        _run(connection, SQLITE_SETUP)
    elif connection.vendor == "postgresql":
        _run(connection, PG_SETUP)


def drop_search_index(connection) -> None:
    if connection.vendor == "sqlite":
        _run(connection, SQLITE_TEARDOWN)
    elif connection.vendor == "postgresql":
        _run(connection, PG_TEARDOWN)


def ensure_search_index(connection) -> bool:
    """Restore missing SQLite search triggers and re-index; True if anything was repaired."""
    if connection.vendor != "sqlite":
        return False
    tables = set(connection.introspection.table_names())
    if not {"coding_post", "coding_thread"} <= tables:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
        present = {row[0] for row in cursor.fetchall()}
    if {*_SQLITE_TABLES, *_SQLITE_TRIGGERS} <= present:
        return False
    create_search_index(connection)
    return True


_TOKEN = re.compile(r'"([^"]*)"|([\w][\w\'.+-]*)', re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)


def fts5_query(text: str) -> str:
    """User text as a safe FTS5 query: every word and quoted phrase must occur."""
    parts: list[str] = []
    for phrase, word in _TOKEN.findall(text or ""):
        words = _WORD.findall(phrase if phrase else word)
        if words:
            parts.append('"' + " ".join(words) + '"')
        if len(parts) >= MAX_TERMS:
            break
    return " ".join(parts)


def search_threads(threads: QuerySet, text: str, vendor: str) -> QuerySet:
    """Threads whose title or any post matches ``text`` (all of its words)."""
    if vendor == "sqlite":
        query = fts5_query(text)
        if not query:
            return threads
        # The user's words travel only as query parameters.
        in_title = RawSQL(SQLITE_TITLES_MATCHING, [query])  # noqa: S611
        in_posts = RawSQL(SQLITE_POSTS_MATCHING, [query])  # noqa: S611
    elif vendor == "postgresql":
        if not _WORD.search(text or ""):
            return threads
        in_title = RawSQL(PG_TITLES_MATCHING, [text])  # noqa: S611
        in_posts = RawSQL(PG_POSTS_MATCHING, [text])  # noqa: S611
    else:
        words = _WORD.findall(text or "")[:MAX_TERMS]
        for word in words:
            threads = threads.filter(
                Q(title__icontains=word) | Q(posts__plain_text__icontains=word)
            )
        return threads.distinct()
    return threads.filter(Q(pk__in=in_title) | Q(pk__in=in_posts))
