"""One coder's coding of one unit: loading it, and saving it without losing anyone's work.

The save protocol is optimistic: every payload names the revision it was based on. The
save runs in one transaction that first locks the coder's assignment row (PostgreSQL:
``SELECT ... FOR UPDATE``; SQLite: the IMMEDIATE transaction holds the write lock), so
two saves of the same coding queue instead of interleaving. Then:

1. If the stored state already equals the payload, nothing is written and the save
   succeeds (a double-click, a retried request or an autosave after a manual save).
2. If the stored revision moved since the payload's base, the save is refused with a
   conflict that carries the stored state; the client may reload it, or overwrite it by
   sending the same payload again based on the stored revision.
3. Otherwise the coding is written, its revision goes up by one, and an event keeps who
   changed what, when, with the state before and after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from django.db import transaction
from django.utils import timezone

from . import statements
from .codebook import RESERVED_SHORTCUTS
from .models import (
    Assignment,
    Code,
    CodeApplication,
    Coding,
    Post,
    Project,
    Unit,
)

MEMO_MAX_CHARS = 20_000
QUOTES_MAX = 500
QUOTE_MAX_CHARS = 10_000

# Keys the coding screen uses for itself; a code's shortcut is never one of them (the
# codebook refuses them, and a stored one is dropped). Shift+q quotes too.
RESERVED_KEYS = RESERVED_SHORTCUTS | {"Q"}


class CodingInputError(ValueError):
    """The payload is malformed or names codes, posts or offsets that do not fit."""


class NotAssigned(Exception):
    """The user has no assignment for this unit, so there is nothing of theirs to save."""


@dataclass
class Conflict(Exception):
    """The stored coding moved on since the revision the payload was based on."""

    revision: int
    stored: dict[str, Any]


@dataclass
class SaveResult:
    coding: Coding
    saved: bool
    state: dict[str, Any]
    # The coder's next unit after a submit, when the save found it (None: queue done).
    next_unit_id: int | None = None
    next_unit_known: bool = False


@dataclass
class CodingInput:
    """A validated payload: what the coder wants stored."""

    base_revision: int
    codes: list[str]
    quotes: list[dict[str, Any]]
    not_relevant: bool = False
    unsure: bool = False
    memo: str = ""
    submit: bool = False
    # Resolved while validating: code key -> Code.
    code_objects: dict[str, Code] = field(default_factory=dict)

    def state(self, status: str) -> dict[str, Any]:
        return _state(
            status=status,
            codes=self.codes,
            quotes=self.quotes,
            not_relevant=self.not_relevant,
            unsure=self.unsure,
            memo=self.memo,
        )


def _state(*, status, codes, quotes, not_relevant, unsure, memo) -> dict[str, Any]:
    """The comparable, JSON-ready form of a coding used in events, conflicts and the page."""
    return {
        "status": status,
        "codes": sorted(set(codes)),
        "quotes": sorted(
            (
                {
                    "code": q["code"],
                    "post": q["post"],
                    "start": q["start"],
                    "end": q["end"],
                    "text": q["text"],
                }
                for q in quotes
            ),
            key=lambda q: (q["code"], q["post"], q["start"], q["end"]),
        ),
        "not_relevant": bool(not_relevant),
        "unsure": bool(unsure),
        "memo": memo,
    }


EMPTY_STATE = _state(status="draft", codes=[], quotes=[], not_relevant=False, unsure=False, memo="")


# Loading -----------------------------------------------------------------------------


def codings_for_unit(unit: Unit, *, coder=None) -> list[Coding]:
    """The unit's codings (only ``coder``'s when given) with their codes and quotes.

    Two queries whatever the number of codes and quotes; one for a single coder's.
    """
    if coder is not None:
        return _coder_codings(unit.pk, coder)
    codings = list(
        Coding.objects.filter(unit=unit).select_related("coder").order_by("coder__username")
    )
    _attach_states(codings)
    return codings


_CODING_FIELDS = (
    "id",
    "unit_id",
    "coder_id",
    "codebook_version_id",
    "status",
    "not_relevant",
    "unsure",
    "memo",
    "revision",
    "submitted_at",
)
_CODER_CODING_COLUMNS = """
c.id, c.unit_id, c.coder_id, c.codebook_version_id, c.status, c.not_relevant,
c.unsure, c.memo, c.revision, c.submitted_at,
a.id, k.key, q.post_id, q.start, q."end", q.text
"""
_CODER_CODING_FROM = """
FROM coding_coding c
LEFT JOIN coding_codeapplication a ON a.coding_id = c.id
LEFT JOIN coding_code k ON k.id = a.code_id
LEFT JOIN coding_quote q ON q.application_id = a.id
WHERE c.unit_id = %s AND c.coder_id = %s
"""
_CODER_CODING = f"SELECT {_CODER_CODING_COLUMNS} {_CODER_CODING_FROM}"


def _coder_codings(unit_id: int, coder, *, lock: bool = False) -> list[Coding]:
    """The coder's coding of the unit (a list of none or one) with its state and
    ``app_ids``: one statement. With ``lock``, the coding row is locked for update."""
    sql = _CODER_CODING
    if lock and statements.for_update():
        sql += " FOR UPDATE OF c"
    return _coder_codings_from(statements.rows(sql, [unit_id, coder.pk]), coder)


def _coder_codings_from(found: list[tuple], coder) -> list[Coding]:
    """The coding (a list of none or one) from rows of ``_CODER_CODING``."""
    if not found:
        return []
    coding = statements.instance(Coding, _CODING_FIELDS, found[0][:10])
    coding.coder = coder
    _set_state(coding, [row[10:] for row in found if row[10] is not None])
    return [coding]


def _attach_states(codings: list[Coding]) -> None:
    """Give each coding ``state`` and ``app_ids`` (code key -> application id): one query."""
    if not codings:
        return
    by_id = {c.pk: c for c in codings}
    rows: dict[int, list[tuple]] = {pk: [] for pk in by_id}
    found = (
        CodeApplication.objects.filter(coding_id__in=by_id)
        .order_by()
        .values_list(
            "coding_id",
            "id",
            "code__key",
            "quotes__post_id",
            "quotes__start",
            "quotes__end",
            "quotes__text",
        )
    )
    for coding_id, *row in found:
        rows[coding_id].append(row)
    for pk, coding in by_id.items():
        _set_state(coding, rows[pk])


def _set_state(coding: Coding, rows) -> None:
    """``state`` and ``app_ids`` from rows of (application id, code key, quote post, start,
    end, text), one per quote or per application without quotes."""
    app_ids: dict[str, int] = {}
    quotes: list[dict[str, Any]] = []
    for app_id, key, post_id, start, end, text in rows:
        app_ids.setdefault(key, app_id)
        if post_id is not None:
            quotes.append({"code": key, "post": post_id, "start": start, "end": end, "text": text})
    coding.app_ids = app_ids
    coding.state = _state(
        status=coding.status,
        codes=list(app_ids),
        quotes=quotes,
        not_relevant=coding.not_relevant,
        unsure=coding.unsure,
        memo=coding.memo,
    )


def state_of(coding: Coding | None) -> dict[str, Any]:
    if coding is None:
        return dict(EMPTY_STATE)
    if not hasattr(coding, "state"):
        _attach_states([coding])
    return coding.state


_CODE_ROW_FIELDS = (
    "id",
    "key",
    "parent_id",
    "name",
    "definition",
    "when_to_use",
    "when_not_to_use",
    "shortcut",
    "codable",
)


def without_retired_codes(
    state: dict[str, Any], codable: set[str]
) -> tuple[dict[str, Any], list[str]]:
    """The state with only codes of the current codebook version, and the keys left out.

    A coding made before a codebook upgrade may hold codes the new version no longer
    has; the screen cannot show them, so the coder's next save drops them (and says so).
    """
    retired = [key for key in state["codes"] if key not in codable]
    if not retired:
        return state, []
    kept = {
        **state,
        "codes": [key for key in state["codes"] if key in codable],
        "quotes": [q for q in state["quotes"] if q["code"] in codable],
    }
    return kept, retired


def code_rows(project: Project) -> tuple[tuple, ...]:
    """The active codes of the project's codebook version as plain rows (one query, none
    when the project was read with its version's stamp and this process read them before).

    Rows are cheap to compare, so the coding screen keys what it builds from them (the
    rendered codebook panel) on the rows themselves: a changed code is a different key.
    A version's codes are never changed once written, so the rows are kept per version,
    by its id and the time it was written.
    """
    if project.codebook_version_id is None:
        return ()
    stamp = getattr(project, "codebook_version_stamp", None)
    if stamp is not None and stamp[0] == project.codebook_version_id:
        rows = _ROWS_BY_VERSION.get(stamp)
        if rows is not None:
            return rows
    found = statements.rows(_CODE_ROWS, [project.codebook_version_id])
    rows = tuple((*row[:-1], bool(row[-1])) for row in found)
    if stamp is not None and stamp[0] == project.codebook_version_id:
        if len(_ROWS_BY_VERSION) >= 64:
            _ROWS_BY_VERSION.clear()
        _ROWS_BY_VERSION[stamp] = rows
    return rows


_ROWS_BY_VERSION: dict[tuple, tuple[tuple, ...]] = {}


_CODE_ROWS = f"""
SELECT {", ".join(_CODE_ROW_FIELDS)} FROM coding_code
WHERE version_id = %s AND active ORDER BY "order", id
"""  # noqa: S608


def codes_from_rows(rows: tuple[tuple, ...]) -> list[Code]:
    """Codes built from ``code_rows`` in tree order, each with ``depth``; shortcuts that
    clash with the screen's own keys are dropped."""
    codes = [Code(**dict(zip(_CODE_ROW_FIELDS, row, strict=True))) for row in rows]
    children: dict[int | None, list[Code]] = {}
    ids = {c.pk for c in codes}
    for code in codes:
        parent = code.parent_id if code.parent_id in ids else None
        children.setdefault(parent, []).append(code)
    ordered: list[Code] = []

    def walk(parent: int | None, depth: int) -> None:
        for code in children.get(parent, []):
            code.depth = depth
            if code.shortcut in RESERVED_KEYS:
                code.shortcut = ""
            ordered.append(code)
            walk(code.pk, depth + 1)

    walk(None, 0)
    return ordered


def codes_for_project(project: Project) -> list[Code]:
    """The active codes of the project's codebook version, in tree order (one query)."""
    return codes_from_rows(code_rows(project))


class UnitPost(NamedTuple):
    """A post as the coding screen shows it; ``is_unit``: part of the unit, not only
    context."""

    pk: int
    post_number: int
    author: str
    created_at: datetime
    is_accepted_answer: bool
    html: str
    plain_text: str
    is_unit: bool


_UNIT_POSTS = (
    "SELECT id, post_number, author, created_at, is_accepted_answer, html, plain_text "
    "FROM coding_post"
)


def _posts_where(unit: Unit) -> tuple[str, list[Any]]:
    """The condition on coding_post for the unit's posts: the thread's, or for a post
    unit that post and the opening post."""
    if unit.post_id:
        return "thread_id = %s AND (id = %s OR post_number = 1)", [unit.thread_id, unit.post_id]
    return "thread_id = %s", [unit.thread_id]


def _unit_posts(unit: Unit, found) -> list[UnitPost]:
    created = statements.converter(Post, "created_at")
    return [
        UnitPost(
            pk,
            number,
            author,
            created(at),
            bool(accepted),
            html,
            text,
            not unit.post_id or pk == unit.post_id,
        )
        for pk, number, author, at, accepted, html, text in found
    ]


def posts_for_unit(unit: Unit) -> list[UnitPost]:
    """The thread's posts in order; for a post unit, that post after the opening post.
    One query; the rows are read as they are, not as model instances, since a thread
    may have hundreds of posts."""
    where, params = _posts_where(unit)
    return _unit_posts(
        unit, statements.rows(f"{_UNIT_POSTS} WHERE {where} ORDER BY post_number", params)
    )


_POST_COLUMNS, _CODING_COLUMNS = 7, 16
# Posts (kind 0) and the coder's coding rows (kind 1) side by side, each padded with
# NULLs in the other's columns.
_POSTS_AND_CODING = (
    "SELECT 0, id, post_number, author, created_at, is_accepted_answer, html, plain_text, "  # noqa: S608
    + ", ".join(["NULL"] * _CODING_COLUMNS)
    + " FROM coding_post WHERE {where} UNION ALL SELECT 1, "
    + "NULL, " * _POST_COLUMNS
    + _CODER_CODING_COLUMNS
    + _CODER_CODING_FROM
    + " ORDER BY 1, 3"
)


def posts_and_coding(unit: Unit, coder) -> tuple[list[UnitPost], list[Coding]]:
    """``posts_for_unit(unit)`` and ``codings_for_unit(unit, coder=coder)`` in one
    statement: what the coding screen shows its coder."""
    where, params = _posts_where(unit)
    found = statements.rows(_POSTS_AND_CODING.format(where=where), [*params, unit.pk, coder.pk])
    posts = [row[1 : 1 + _POST_COLUMNS] for row in found if row[0] == 0]
    coding_rows = [row[1 + _POST_COLUMNS :] for row in found if row[0] == 1]
    return _unit_posts(unit, posts), _coder_codings_from(coding_rows, coder)


# Validating --------------------------------------------------------------------------


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    raise CodingInputError(f"'{name}' must be true or false.")


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CodingInputError(f"'{name}' must be a whole number of at least 0.")
    return value


def parse_input(data: Any) -> CodingInput:
    """Check the payload's shape (not yet against the database)."""
    if not isinstance(data, dict):
        raise CodingInputError("The request body must be a JSON object.")
    codes = data.get("codes", [])
    if not isinstance(codes, list) or not all(isinstance(k, str) for k in codes):
        raise CodingInputError("'codes' must be a list of code keys.")
    quotes = data.get("quotes", [])
    if not isinstance(quotes, list):
        raise CodingInputError("'quotes' must be a list.")
    if len(quotes) > QUOTES_MAX:
        raise CodingInputError(f"At most {QUOTES_MAX} quotes per coding.")
    parsed_quotes: list[dict[str, Any]] = []
    seen: dict[tuple, int] = {}
    for n, quote in enumerate(quotes, start=1):
        if not isinstance(quote, dict):
            raise CodingInputError(f"Quote {n} must be an object.")
        text = quote.get("text")
        code = quote.get("code")
        if not isinstance(text, str) or not isinstance(code, str):
            raise CodingInputError(f"Quote {n} needs a 'code' key and its 'text'.")
        if len(text) > QUOTE_MAX_CHARS:
            raise CodingInputError(f"Quote {n} is longer than {QUOTE_MAX_CHARS} characters.")
        parsed = {
            "code": code,
            "post": _as_int(quote.get("post"), f"quote {n} post"),
            "start": _as_int(quote.get("start"), f"quote {n} start"),
            "end": _as_int(quote.get("end"), f"quote {n} end"),
            "text": text,
        }
        first = seen.setdefault(tuple(parsed.values()), n)
        if first != n:
            raise CodingInputError(f"Quote {n} repeats quote {first} (same code and span).")
        parsed_quotes.append(parsed)
    memo = data.get("memo", "")
    if not isinstance(memo, str):
        raise CodingInputError("'memo' must be text.")
    if len(memo) > MEMO_MAX_CHARS:
        raise CodingInputError(f"The memo is longer than {MEMO_MAX_CHARS} characters.")
    submit = _as_bool(data.get("submit", False), "submit")
    not_relevant = _as_bool(data.get("not_relevant", False), "not_relevant")
    if submit and not (codes or not_relevant):
        raise CodingInputError("Choose at least one code, or mark the unit not relevant.")
    return CodingInput(
        base_revision=_as_int(data.get("base_revision"), "base_revision"),
        codes=sorted(set(codes)),
        quotes=parsed_quotes,
        not_relevant=not_relevant,
        unsure=_as_bool(data.get("unsure", False), "unsure"),
        memo=memo,
        submit=submit,
    )


def validate_against_unit(project: Project, unit: Unit, payload: CodingInput) -> None:
    """Codes must be codable codes of the project's version; quotes must match post text.

    One statement whatever the size of the codebook or thread: the codes named, and the
    texts of the posts quoted.
    """
    _need_version(project)
    parts, params = [], []
    if payload.codes:
        parts.append(
            "SELECT 'code', id, key FROM coding_code WHERE version_id = %s AND active "  # noqa: S608
            f"AND codable AND key IN ({statements.placeholders(len(payload.codes))})"
        )
        params += [project.codebook_version_id, *payload.codes]
    post_ids = sorted({q["post"] for q in payload.quotes})
    if post_ids:
        in_unit = "id = %s" if unit.post_id else "thread_id = %s"
        parts.append(
            "SELECT 'post', id, plain_text FROM coding_post "  # noqa: S608
            f"WHERE id IN ({statements.placeholders(len(post_ids))}) AND {in_unit}"
        )
        params += [*post_ids, unit.post_id or unit.thread_id]
    codes: list[tuple[int, str]] = []
    texts: dict[int, str] = {}
    for kind, pk, value in statements.rows(" UNION ALL ".join(parts), params) if parts else []:
        if kind == "code":
            codes.append((pk, value))
        else:
            texts[pk] = value
    _check_against_unit(payload, codes, texts)


def _need_version(project: Project) -> None:
    if project.codebook_version_id is None:
        raise CodingInputError("This project has no codebook version to code with.")


def _check_against_unit(
    payload: CodingInput, codes: list[tuple[int, str]], texts: dict[int, str]
) -> None:
    """The checks of ``validate_against_unit`` on what the database holds: the (id, key)
    of each code named that may be coded, and the plain text of each quoted post of the
    unit. Sets ``payload.code_objects``."""
    found = {key: statements.instance(Code, ("id", "key"), (pk, key)) for pk, key in codes}
    unknown = [k for k in payload.codes if k not in found]
    if unknown:
        raise CodingInputError(f"Unknown or not codable code: {', '.join(unknown)}.")
    payload.code_objects = found
    for n, quote in enumerate(payload.quotes, start=1):
        if quote["code"] not in found:
            raise CodingInputError(
                f"Quote {n} is evidence for '{quote['code']}', which is not among the codes."
            )
        text = texts.get(quote["post"])
        if text is None:
            raise CodingInputError(f"Quote {n} names post {quote['post']}, not in this unit.")
        if quote["end"] <= quote["start"]:
            raise CodingInputError(f"Quote {n} is empty: its end must come after its start.")
        if quote["end"] > len(text):
            raise CodingInputError(
                f"Quote {n} ends at code point {quote['end']}, past the end of post "
                f"{quote['post']} ({len(text)} code points)."
            )
        if text[quote["start"] : quote["end"]] != quote["text"]:
            raise CodingInputError(
                f"Quote {n} does not match post {quote['post']} at code points "
                f"{quote['start']}-{quote['end']}."
            )


# Saving ------------------------------------------------------------------------------


_ASSIGNMENT = "SELECT id, status FROM coding_assignment WHERE unit_id = %s AND coder_id = %s"


def save_coding(project: Project, unit: Unit, coder, payload: CodingInput) -> SaveResult:
    """Store the coder's coding of the unit by the protocol in the module docstring.

    Raises ``NotAssigned``, ``CodingInputError`` (before anything is written) or
    ``Conflict``. A constant number of statements whatever the corpus or codebook size.
    """
    postgres = statements.vendor() == "postgresql"
    if not postgres:
        validate_against_unit(project, unit, payload)
    with transaction.atomic():
        if postgres:
            row = _lock_and_check(project, unit, coder, payload)
        else:
            row = statements.one(_ASSIGNMENT + statements.for_update(), [unit.pk, coder.pk])
        if row is None or row[1] == Assignment.Status.RETURNED:
            raise NotAssigned
        assignment_id, assignment_status = row
        found = _coder_codings(unit.pk, coder, lock=True)
        coding = found[0] if found else None
        before = coding.state if coding else None
        stored_revision = coding.revision if coding else 0
        already_submitted = coding is not None and coding.status == Coding.Status.SUBMITTED
        status = (
            Coding.Status.SUBMITTED if payload.submit or already_submitted else Coding.Status.DRAFT
        )
        after = payload.state(status)
        if before == after or (before is None and after == EMPTY_STATE and not payload.submit):
            if coding is None:
                return SaveResult(coding=Coding(unit=unit, coder=coder), saved=False, state=after)
            if payload.submit:
                _complete(assignment_id, assignment_status)
            return SaveResult(coding=coding, saved=False, state=before)
        if payload.base_revision != stored_revision:
            raise Conflict(revision=stored_revision, stored=before or dict(EMPTY_STATE))
        if already_submitted and not (payload.codes or payload.not_relevant):
            raise CodingInputError(
                "Not saved: a submitted coding needs at least one code, or the unit marked "
                "not relevant. Choose a code; your changes are kept in this browser."
            )

        now = timezone.now()
        if coding is None:
            coding = Coding(unit=unit, coder=coder, created_at=now)
        coding.codebook_version_id = project.codebook_version_id
        coding.status = status
        coding.not_relevant = payload.not_relevant
        coding.unsure = payload.unsure
        coding.memo = payload.memo
        coding.revision = stored_revision + 1
        coding.updated_at = now
        if payload.submit and not coding.submitted_at:
            coding.submitted_at = now
        complete = payload.submit and assignment_status != Assignment.Status.DONE
        result = SaveResult(coding=coding, saved=True, state=after)
        if postgres:
            found = _write_in_one_statement(
                project, coding, coder, payload, before, after, now, assignment_id, complete
            )
            if payload.submit:
                result.next_unit_id, result.next_unit_known = found, True
        else:
            _write_coding(coding)
            _write_codes(coding, payload, before, now)
            _insert_event(coding, coder, now, payload, before, after)
            if complete:
                _complete(assignment_id, assignment_status, now)
        coding.state = after
        return result


_LOCK_AND_CHECK = f"""
WITH a AS ({_ASSIGNMENT} FOR UPDATE)
SELECT a.id, a.status,
       (SELECT json_agg(json_build_array(id, key)) FROM coding_code
        WHERE version_id = %s AND active AND codable AND key = ANY(%s::text[])),
       (SELECT json_agg(json_build_array(id, plain_text)) FROM coding_post
        WHERE id = ANY(%s::bigint[]) AND {{in_unit}} = %s)
FROM a
"""  # noqa: S608
_LOCK_AND_CHECK_BY_UNIT = {
    in_unit: _LOCK_AND_CHECK.format(in_unit=in_unit) for in_unit in ("id", "thread_id")
}


def _lock_and_check(project: Project, unit: Unit, coder, payload: CodingInput) -> tuple | None:
    """PostgreSQL, inside the save's transaction: lock the coder's assignment and check
    the payload against the codes and posts (``validate_against_unit``) in one statement.
    Returns the assignment's (id, status), None when there is none.

    The coding is read by a statement of its own once the lock is held: a statement sees
    the database as it was when the statement began, so a coding written by the save
    this one waited for would be missed if it were read in the same statement."""
    _need_version(project)
    sql = _LOCK_AND_CHECK_BY_UNIT["id" if unit.post_id else "thread_id"]
    row = statements.one(
        sql,
        [
            unit.pk,
            coder.pk,
            project.codebook_version_id,
            payload.codes,
            sorted({q["post"] for q in payload.quotes}),
            unit.post_id or unit.thread_id,
        ],
    )
    if row is None:
        return None
    _check_against_unit(payload, [tuple(c) for c in row[2] or []], dict(row[3] or []))
    return row[:2]


def _write_in_one_statement(
    project: Project,
    coding: Coding,
    coder,
    payload: CodingInput,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    now,
    assignment_id: int,
    complete: bool,
) -> int | None:
    """PostgreSQL: the coding, its applications and quotes, the event, the completed
    assignment and the coder's next unit in one statement of data-modifying CTEs; the
    same writes as the statements below, in one round trip instead of five or more.
    Returns the next unit's id (None when none is left)."""
    parts: list[str] = []
    params: list[Any] = []
    sql, coding_params = _coding_row(coding)
    parts.append(f"c AS ({sql} RETURNING id)")
    params += coding_params
    app_ids: dict[str, int] = dict(getattr(coding, "app_ids", {})) if before else {}
    if before and before["quotes"]:
        parts.append(
            "dq AS (DELETE FROM coding_quote WHERE application_id IN "
            "(SELECT id FROM coding_codeapplication WHERE coding_id = %s))"
        )
        params.append(coding.pk)
    removed = [app_ids.pop(key) for key in sorted(set(app_ids) - set(payload.codes))]
    if removed:
        parts.append("da AS (DELETE FROM coding_codeapplication WHERE id = ANY(%s::bigint[]))")
        params.append(removed)
    added = [payload.code_objects[key].pk for key in payload.codes if key not in app_ids]
    parts.append(
        "a AS (INSERT INTO coding_codeapplication (coding_id, code_id, created_at) "
        "SELECT c.id, x.code_id, %s FROM c CROSS JOIN unnest(%s::bigint[]) AS x(code_id) "
        "RETURNING id, code_id)"
    )
    params += [now, added]
    if payload.quotes:
        kept = {payload.code_objects[key].pk: app_id for key, app_id in app_ids.items()}
        quotes = payload.quotes
        parts.append(
            'q AS (INSERT INTO coding_quote (application_id, post_id, start, "end", text) '
            'SELECT ap.id, x.post_id, x.start, x."end", x.text '
            "FROM unnest(%s::bigint[], %s::bigint[], %s::integer[], %s::integer[], %s::text[]) "
            'WITH ORDINALITY AS x(code_id, post_id, start, "end", text, n) '
            "JOIN (SELECT id, code_id FROM a UNION ALL "
            "SELECT * FROM unnest(%s::bigint[], %s::bigint[])) AS ap(id, code_id) "
            "ON ap.code_id = x.code_id ORDER BY x.n)"
        )
        params += [
            [payload.code_objects[q["code"]].pk for q in quotes],
            [q["post"] for q in quotes],
            [q["start"] for q in quotes],
            [q["end"] for q in quotes],
            [q["text"] for q in quotes],
            list(kept.values()),
            list(kept),
        ]
    parts.append(
        "e AS (INSERT INTO coding_codingevent (coding_id, user_id, at, action, before, after) "
        "SELECT c.id, %s, %s, %s, %s, %s FROM c)"
    )
    params += [
        coder.pk,
        now,
        "submit" if payload.submit else "save",
        statements.db_json(before),
        statements.db_json(after),
    ]
    if complete:
        parts.append(
            "s AS (UPDATE coding_assignment SET status = %s, completed_at = %s WHERE id = %s)"
        )
        params += [Assignment.Status.DONE, now, assignment_id]
    # The statement sees the assignments as they were before it, so the unit just
    # saved is left out by name.
    if payload.submit:
        next_unit = f"({_NEXT_UNIT_BUT})"
        params += [coder.pk, project.pk, coding.unit_id]
    else:
        next_unit = "NULL"
    sql = f"WITH {', '.join(parts)} SELECT c.id, {next_unit} FROM c"  # noqa: S608
    coding_id, next_unit = statements.one(sql, params)
    if coding.pk is None:
        coding.pk = coding_id
        coding._state.adding = False
    return next_unit


_NEXT_UNIT_BUT = f"""
SELECT unit_id FROM coding_assignment
WHERE coder_id = %s AND project_id = %s AND status = '{Assignment.Status.PENDING}'
  AND unit_id <> %s
ORDER BY queue_rank, unit_id
LIMIT 1
"""  # noqa: S608


def _coding_row(coding: Coding) -> tuple[str, list[Any]]:
    """The INSERT (a new coding) or UPDATE of the coding's row, with its parameters."""
    values = [
        coding.codebook_version_id,
        coding.status,
        coding.not_relevant,
        coding.unsure,
        coding.memo,
        coding.revision,
        statements.db_datetime(coding.updated_at),
        statements.db_datetime(coding.submitted_at),
    ]
    if coding.pk is None:
        sql = (
            "INSERT INTO coding_coding (codebook_version_id, status, not_relevant, unsure, "
            "memo, revision, updated_at, submitted_at, created_at, unit_id, coder_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        )
        return sql, [
            *values,
            statements.db_datetime(coding.created_at),
            coding.unit_id,
            coding.coder_id,
        ]
    sql = (
        "UPDATE coding_coding SET codebook_version_id = %s, status = %s, not_relevant = %s, "
        "unsure = %s, memo = %s, revision = %s, updated_at = %s, submitted_at = %s "
        "WHERE id = %s"
    )
    return sql, [*values, coding.pk]


def _write_coding(coding: Coding) -> None:
    """Insert or update the coding's row (one statement)."""
    sql, params = _coding_row(coding)
    if coding.pk is None:
        coding.pk = statements.one(sql + " RETURNING id", params)[0]
        coding._state.adding = False
    else:
        statements.execute(sql, params)


def _insert_event(coding: Coding, coder, now, payload: CodingInput, before, after) -> None:
    """Who changed the coding, when, and its state before and after (one statement)."""
    statements.execute(
        "INSERT INTO coding_codingevent (coding_id, user_id, at, action, before, after) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        [
            coding.pk,
            coder.pk,
            statements.db_datetime(now),
            "submit" if payload.submit else "save",
            statements.db_json(before),
            statements.db_json(after),
        ],
    )


def _complete(assignment_id: int, status: str, now=None) -> None:
    if status != Assignment.Status.DONE:
        statements.execute(
            "UPDATE coding_assignment SET status = %s, completed_at = %s WHERE id = %s",
            [Assignment.Status.DONE, statements.db_datetime(now or timezone.now()), assignment_id],
        )


def _write_codes(coding: Coding, payload: CodingInput, before: dict[str, Any] | None, now) -> None:
    """Bring applications and quotes in line with the payload in a fixed number of
    statements."""
    app_ids: dict[str, int] = dict(getattr(coding, "app_ids", {})) if before else {}
    if before and before["quotes"]:
        statements.execute(
            "DELETE FROM coding_quote WHERE application_id IN "
            "(SELECT id FROM coding_codeapplication WHERE coding_id = %s)",
            [coding.pk],
        )
    removed = [app_ids.pop(key) for key in set(app_ids) - set(payload.codes)]
    if removed:
        # The coding's quotes are gone already, so nothing refers to these rows.
        ids = statements.placeholders(len(removed))
        statements.execute(
            f"DELETE FROM coding_codeapplication WHERE id IN ({ids})",  # noqa: S608
            removed,
        )
    added = [key for key in payload.codes if key not in app_ids]
    if added:
        stamp = statements.db_datetime(now)
        by_code = {payload.code_objects[key].pk: key for key in added}
        values = statements.placeholders(len(added), 3)
        created = statements.rows(
            "INSERT INTO coding_codeapplication (coding_id, code_id, created_at) "  # noqa: S608
            f"VALUES {values} RETURNING id, code_id",
            [v for code_id in by_code for v in (coding.pk, code_id, stamp)],
        )
        app_ids.update((by_code[code_id], app_id) for app_id, code_id in created)
    if payload.quotes:
        values = statements.placeholders(len(payload.quotes), 5)
        statements.execute(
            'INSERT INTO coding_quote (application_id, post_id, start, "end", text) '  # noqa: S608
            f"VALUES {values}",
            [
                v
                for q in payload.quotes
                for v in (app_ids[q["code"]], q["post"], q["start"], q["end"], q["text"])
            ],
        )
