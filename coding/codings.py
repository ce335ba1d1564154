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
from typing import Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from .models import (
    Assignment,
    Code,
    CodeApplication,
    Coding,
    CodingEvent,
    Post,
    Project,
    Quote,
    Unit,
)

MEMO_MAX_CHARS = 20_000
QUOTES_MAX = 500
QUOTE_MAX_CHARS = 10_000

# Keys the coding screen uses for itself; a code's shortcut is never one of them.
RESERVED_KEYS = frozenset("/jkqQu[]{}?")


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

    Two queries whatever the number of codes and quotes.
    """
    qs = Coding.objects.filter(unit=unit).select_related("coder")
    if coder is not None:
        qs = qs.filter(coder=coder)
    codings = list(qs.order_by("coder__username"))
    _attach_states(codings)
    return codings


def _attach_states(codings: list[Coding]) -> None:
    """Give each coding ``state`` and ``app_ids`` (code key -> application id): one query."""
    if not codings:
        return
    by_id = {c.pk: c for c in codings}
    keys: dict[int, list[str]] = {pk: [] for pk in by_id}
    quotes: dict[int, list[dict[str, Any]]] = {pk: [] for pk in by_id}
    app_ids: dict[int, dict[str, int]] = {pk: {} for pk in by_id}
    rows = (
        CodeApplication.objects.filter(coding_id__in=by_id)
        .order_by()
        .values_list(
            "id",
            "coding_id",
            "code__key",
            "quotes__post_id",
            "quotes__start",
            "quotes__end",
            "quotes__text",
        )
    )
    for app_id, coding_id, key, post_id, start, end, text in rows:
        if key not in app_ids[coding_id]:
            app_ids[coding_id][key] = app_id
            keys[coding_id].append(key)
        if post_id is not None:
            quotes[coding_id].append(
                {"code": key, "post": post_id, "start": start, "end": end, "text": text}
            )
    for pk, coding in by_id.items():
        coding.app_ids = app_ids[pk]
        coding.state = _state(
            status=coding.status,
            codes=keys[pk],
            quotes=quotes[pk],
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
    """The active codes of the project's codebook version as plain rows (one query).

    Rows are cheap to compare, so the coding screen keys what it builds from them (the
    rendered codebook panel) on the rows themselves: a changed code is a different key.
    """
    if project.codebook_version_id is None:
        return ()
    return tuple(
        Code.objects.filter(version_id=project.codebook_version_id, active=True)
        .order_by("order", "id")
        .values_list(*_CODE_ROW_FIELDS)
    )


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


def queue_progress(project: Project, user) -> dict[str, int]:
    """How many of the user's assignments in the project are done, of how many (one query)."""
    counts = Assignment.objects.filter(unit__project=project, coder=user).aggregate(
        total=Count("id", filter=~Q(status=Assignment.Status.RETURNED)),
        done=Count("id", filter=Q(status=Assignment.Status.DONE)),
    )
    total, done = counts["total"] or 0, counts["done"] or 0
    return {"total": total, "done": done, "percent": round(100 * done / total) if total else 0}


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
    parsed_quotes = []
    for n, quote in enumerate(quotes, start=1):
        if not isinstance(quote, dict):
            raise CodingInputError(f"Quote {n} must be an object.")
        text = quote.get("text")
        code = quote.get("code")
        if not isinstance(text, str) or not isinstance(code, str):
            raise CodingInputError(f"Quote {n} needs a 'code' key and its 'text'.")
        if len(text) > QUOTE_MAX_CHARS:
            raise CodingInputError(f"Quote {n} is longer than {QUOTE_MAX_CHARS} characters.")
        parsed_quotes.append(
            {
                "code": code,
                "post": _as_int(quote.get("post"), f"quote {n} post"),
                "start": _as_int(quote.get("start"), f"quote {n} start"),
                "end": _as_int(quote.get("end"), f"quote {n} end"),
                "text": text,
            }
        )
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

    Two queries whatever the size of the codebook or thread.
    """
    if project.codebook_version_id is None:
        raise CodingInputError("This project has no codebook version to code with.")
    found = {
        c.key: c
        for c in Code.objects.filter(
            version_id=project.codebook_version_id,
            active=True,
            codable=True,
            key__in=payload.codes,
        )
        .only("id", "key")
        .order_by()
    }
    unknown = [k for k in payload.codes if k not in found]
    if unknown:
        raise CodingInputError(f"Unknown or not codable code: {', '.join(unknown)}.")
    payload.code_objects = found
    if not payload.quotes:
        return
    post_ids = {q["post"] for q in payload.quotes}
    posts = Post.objects.filter(pk__in=post_ids)
    posts = (
        posts.filter(pk=unit.post_id) if unit.post_id else posts.filter(thread_id=unit.thread_id)
    )
    texts = dict(posts.order_by().values_list("id", "plain_text"))
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
        if text[quote["start"] : quote["end"]] != quote["text"]:
            raise CodingInputError(
                f"Quote {n} does not match post {quote['post']} at code points "
                f"{quote['start']}-{quote['end']}."
            )


# Saving ------------------------------------------------------------------------------


def save_coding(project: Project, unit: Unit, coder, payload: CodingInput) -> SaveResult:
    """Store the coder's coding of the unit by the protocol in the module docstring.

    Raises ``NotAssigned``, ``CodingInputError`` (before anything is written) or
    ``Conflict``. A constant number of queries whatever the corpus or codebook size.
    """
    validate_against_unit(project, unit, payload)
    with transaction.atomic():
        # order_by() keeps the Meta ordering's joins out, so only these rows are locked.
        assignment = _first(Assignment.objects.select_for_update().filter(unit=unit, coder=coder))
        if assignment is None or assignment.status == Assignment.Status.RETURNED:
            raise NotAssigned
        coding = _first(Coding.objects.select_for_update().filter(unit=unit, coder=coder))
        before = state_of(coding) if coding else None
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
                _complete(assignment)
            return SaveResult(coding=coding, saved=False, state=before)
        if payload.base_revision != stored_revision:
            raise Conflict(revision=stored_revision, stored=before or dict(EMPTY_STATE))

        now = timezone.now()
        if coding is None:
            coding = Coding(unit=unit, coder=coder)
        coding.codebook_version_id = project.codebook_version_id
        coding.status = status
        coding.not_relevant = payload.not_relevant
        coding.unsure = payload.unsure
        coding.memo = payload.memo
        coding.revision = stored_revision + 1
        if payload.submit and not coding.submitted_at:
            coding.submitted_at = now
        coding.save()
        _write_codes(coding, payload, before)
        CodingEvent.objects.create(
            coding=coding,
            user=coder,
            action="submit" if payload.submit else "save",
            before=before,
            after=after,
        )
        if payload.submit:
            _complete(assignment, now)
        coding.state = after
        return SaveResult(coding=coding, saved=True, state=after)


def _first(queryset):
    """The only row of a query on a unique key, or None, without any ORDER BY."""
    return next(iter(queryset.order_by()[:1]), None)


def _complete(assignment: Assignment, now=None) -> None:
    if assignment.status != Assignment.Status.DONE:
        assignment.status = Assignment.Status.DONE
        assignment.completed_at = now or timezone.now()
        assignment.save(update_fields=["status", "completed_at"])


def _write_codes(coding: Coding, payload: CodingInput, before: dict[str, Any] | None) -> None:
    """Bring applications and quotes in line with the payload in a fixed number of queries."""
    app_ids: dict[str, int] = dict(getattr(coding, "app_ids", {})) if before else {}
    if before and before["quotes"]:
        Quote.objects.filter(application__coding=coding).delete()
    removed = [app_ids.pop(key) for key in set(app_ids) - set(payload.codes)]
    if removed:
        # The coding's quotes are gone already, so nothing refers to these rows: one
        # DELETE, not the collector's select-then-cascade (three queries).
        apps = CodeApplication.objects.filter(pk__in=removed)
        apps._raw_delete(apps.db)
    added = [key for key in payload.codes if key not in app_ids]
    if added:
        created = CodeApplication.objects.bulk_create(
            CodeApplication(coding=coding, code=payload.code_objects[key]) for key in added
        )
        app_ids.update((app.code.key, app.pk) for app in created)
    if payload.quotes:
        Quote.objects.bulk_create(
            Quote(
                application_id=app_ids[q["code"]],
                post_id=q["post"],
                start=q["start"],
                end=q["end"],
                text=q["text"],
            )
            for q in payload.quotes
        )
