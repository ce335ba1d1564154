"""Full-text search over thread titles and post text, in the database's own engine.

SQLite: two FTS5 tables kept in step by triggers (which also cover the raw-SQL bulk
inserts of the synthetic corpus). Post text goes into a contentless table whose rowid is
``thread_id << 24 | post_number``, so the threads matching a search are read from the
index alone (``rowid >> 24``) without looking up a million post rows; post numbers stay
below 2**24. Titles use an external-content table on the thread rows. A table rebuild by
a later migration drops a table's triggers with it, so ``ensure_search_index`` runs after
every ``migrate`` and restores them (re-indexing) when any is missing.

PostgreSQL: a stored generated ``tsvector`` column on posts (so phrase matches read the
stored vector instead of re-parsing every candidate post) and a GIN index on it; titles
use a GIN index on their ``to_tsvector('english', title)`` expression, which the query
repeats exactly. ``ensure_search_index`` also runs after ``migrate`` there.

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
# characters (PG_SETUP). The title match repeats its indexed expression exactly.
PG_THREADS_MATCHING = (
    "SELECT thread_id FROM coding_post WHERE search_vector "
    "@@ websearch_to_tsquery('english'::regconfig, %s) "
    "UNION SELECT id FROM coding_thread WHERE to_tsvector('english'::regconfig, title) "
    "@@ websearch_to_tsquery('english'::regconfig, %s)"
)
SQLITE_THREADS_MATCHING = (
    "SELECT rowid >> 24 FROM coding_post_search WHERE coding_post_search MATCH %s "
    "UNION SELECT rowid FROM coding_thread_fts WHERE coding_thread_fts MATCH %s"
)

_SQLITE_TABLES = ("coding_post_search", "coding_thread_fts")
_SQLITE_TRIGGERS = tuple(f"{t}_{e}" for t in _SQLITE_TABLES for e in ("insert", "delete", "update"))
# An earlier layout (external content on posts), dropped where it is found.
_SQLITE_LEGACY = (
    "DROP TRIGGER IF EXISTS coding_post_fts_insert",
    "DROP TRIGGER IF EXISTS coding_post_fts_delete",
    "DROP TRIGGER IF EXISTS coding_post_fts_update",
    "DROP TABLE IF EXISTS coding_post_fts",
)
SQLITE_SETUP = (
    *_SQLITE_LEGACY,
    "CREATE VIRTUAL TABLE IF NOT EXISTS coding_post_search USING fts5(plain_text, "
    "content='', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS coding_post_search_insert AFTER INSERT ON coding_post BEGIN "
    "INSERT INTO coding_post_search(rowid, plain_text) "
    "VALUES ((new.thread_id << 24) | new.post_number, new.plain_text); END",
    "CREATE TRIGGER IF NOT EXISTS coding_post_search_delete AFTER DELETE ON coding_post BEGIN "
    "INSERT INTO coding_post_search(coding_post_search, rowid, plain_text) "
    "VALUES ('delete', (old.thread_id << 24) | old.post_number, old.plain_text); END",
    "CREATE TRIGGER IF NOT EXISTS coding_post_search_update "
    "AFTER UPDATE OF plain_text, post_number, thread_id ON coding_post BEGIN "
    "INSERT INTO coding_post_search(coding_post_search, rowid, plain_text) "
    "VALUES ('delete', (old.thread_id << 24) | old.post_number, old.plain_text); "
    "INSERT INTO coding_post_search(rowid, plain_text) "
    "VALUES ((new.thread_id << 24) | new.post_number, new.plain_text); END",
    "INSERT INTO coding_post_search(coding_post_search) VALUES ('delete-all')",
    "INSERT INTO coding_post_search(rowid, plain_text) "
    "SELECT (thread_id << 24) | post_number, plain_text FROM coding_post",
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
    *_SQLITE_LEGACY,
    *(f"DROP TRIGGER IF EXISTS {name}" for name in _SQLITE_TRIGGERS),
    *(f"DROP TABLE IF EXISTS {name}" for name in _SQLITE_TABLES),
)
PG_SETUP = (
    # An earlier layout indexed an expression; phrase searches then recomputed it per row.
    "DROP INDEX IF EXISTS coding_post_search",
    "ALTER TABLE coding_post ADD COLUMN IF NOT EXISTS search_vector tsvector GENERATED ALWAYS "
    "AS (to_tsvector('english'::regconfig, left(plain_text, 100000))) STORED",
    "CREATE INDEX IF NOT EXISTS coding_post_search_vector ON coding_post USING gin (search_vector)",
    "CREATE INDEX IF NOT EXISTS coding_thread_title_search ON coding_thread USING gin "
    "(to_tsvector('english'::regconfig, title))",
)
PG_TEARDOWN = (
    "DROP INDEX IF EXISTS coding_post_search",
    "DROP INDEX IF EXISTS coding_post_search_vector",
    "ALTER TABLE coding_post DROP COLUMN IF EXISTS search_vector",
    "DROP INDEX IF EXISTS coding_thread_title_search",
)
PG_PRESENT = (
    "SELECT (SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = "
    "current_schema() AND table_name = 'coding_post' AND column_name = 'search_vector') "
    "+ (SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname "
    "IN ('coding_post_search_vector', 'coding_thread_title_search'))"
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
    """Restore a missing or outdated search index; True if anything was repaired."""
    if connection.vendor not in {"sqlite", "postgresql"}:
        return False
    tables = set(connection.introspection.table_names())
    if not {"coding_post", "coding_thread"} <= tables:
        return False
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(PG_PRESENT)
            if cursor.fetchone()[0] == 3:
                return False
        create_search_index(connection)
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
        present = {row[0] for row in cursor.fetchall()}
    if {*_SQLITE_TABLES, *_SQLITE_TRIGGERS} <= present:
        return False
    create_search_index(connection)
    return True


_TOKEN = re.compile(r'"([^"]*)"|([\w][\w\'.+-]*)', re.UNICODE)
_WORD = re.compile(r"\w+", re.UNICODE)


def has_words(text: str) -> bool:
    """Whether ``text`` holds a word (letters or digits) a search can look for."""
    return bool(_WORD.search(text or ""))


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
        matching = RawSQL(SQLITE_THREADS_MATCHING, [query, query])  # noqa: S611
        return threads.filter(pk__in=matching)
    if vendor == "postgresql":
        if not _WORD.search(text or ""):
            return threads
        matching = RawSQL(PG_THREADS_MATCHING, [text, text])  # noqa: S611
        return threads.filter(pk__in=matching)
    # Other databases: a slow but correct fallback without an index.
    for word in _WORD.findall(text or "")[:MAX_TERMS]:
        threads = threads.filter(Q(title__icontains=word) | Q(posts__plain_text__icontains=word))
    return threads.distinct()


# A loose index scan: each step asks the category index for the next larger value, so
# listing a handful of categories costs a few index probes instead of reading every thread.
CATEGORIES_SQL = (
    "WITH RECURSIVE c(v) AS (SELECT MIN(category) FROM coding_thread UNION ALL "
    "SELECT (SELECT MIN(category) FROM coding_thread WHERE category > c.v) FROM c "
    "WHERE c.v IS NOT NULL) SELECT v FROM c WHERE v IS NOT NULL"
)


def thread_categories(connection) -> list[str]:
    """Every category of the corpus, in order, in one query that stays fast at any size."""
    with connection.cursor() as cursor:
        cursor.execute(CATEGORIES_SQL)
        return [row[0] for row in cursor.fetchall()]
