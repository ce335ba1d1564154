"""Open coding: free-text codes per unit, the affinity board that groups them, and the way
from the board to a codebook and provisional closed codes.

Saving an open coding follows the protocol of ``coding.codings`` (same lock on the
coder's assignment, same revision counter on ``Coding``, same events): a save based on
an older revision is refused as a conflict, and an unchanged payload writes nothing.

Board changes name the revision of the card or group they were based on; a change to an
object someone else changed meanwhile is refused with a message saying who and what, and
every accepted change is kept as a ``BoardEvent``.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from .codebook import CodebookError, Node, derive_key, load_nodes, pin_project
from .codings import (
    MEMO_MAX_CHARS,
    QUOTE_MAX_CHARS,
    QUOTES_MAX,
    CodingInputError,
    Conflict,
    NotAssigned,
)
from .models import (
    Assignment,
    BoardCard,
    BoardEvent,
    BoardGroup,
    Code,
    CodebookVersion,
    Coding,
    CodingEvent,
    OpenCode,
    OpenCodeMapping,
    OpenCodeQuote,
    Post,
    Project,
    ProjectUpgrade,
    ProvisionalCode,
    Unit,
)

OPEN_CODE_MAX_CHARS = 300
OPEN_CODES_MAX = 100
PATH_SEPARATOR = " > "


def normalize(text: str) -> str:
    """The identity of an open code: Unicode NFKC, case folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


_WORD = re.compile(r"\w+")


def near_key(normalized: str) -> str:
    """A looser key under which near-duplicates meet: punctuation, word order and a
    plural ``s`` ignored ("Missing docs." and "docs missing" share it)."""
    words = [w[:-1] if len(w) > 3 and w.endswith("s") else w for w in _WORD.findall(normalized)]
    return " ".join(sorted(words))


# ------------------------------------------------------------------- one coder's open codes


@dataclass
class OpenCodingInput:
    base_revision: int
    open_codes: list[dict[str, Any]]
    not_relevant: bool = False
    unsure: bool = False
    memo: str = ""
    submit: bool = False

    def state(self, status: str) -> dict[str, Any]:
        return _state(status, self.open_codes, self.not_relevant, self.unsure, self.memo)


def _state(status, open_codes, not_relevant, unsure, memo) -> dict[str, Any]:
    """The comparable, JSON-ready form of an open coding (events, conflicts, the page)."""
    return {
        "status": status,
        "open_codes": [
            {
                "text": oc["text"],
                "quotes": sorted(
                    (
                        {"post": q["post"], "start": q["start"], "end": q["end"], "text": q["text"]}
                        for q in oc["quotes"]
                    ),
                    key=lambda q: (q["post"], q["start"], q["end"]),
                ),
            }
            for oc in open_codes
        ],
        "not_relevant": bool(not_relevant),
        "unsure": bool(unsure),
        "memo": memo,
    }


EMPTY_STATE = _state("draft", [], False, False, "")


def open_state_of(coding: Coding | None) -> dict[str, Any]:
    """The stored open coding as state (two queries)."""
    if coding is None or coding.pk is None:
        return dict(EMPTY_STATE)
    codes = list(coding.open_codes.order_by("order", "id"))
    quotes: dict[int, list[dict]] = defaultdict(list)
    for q in OpenCodeQuote.objects.filter(open_code__coding=coding).values(
        "open_code_id", "post_id", "start", "end", "text"
    ):
        quotes[q["open_code_id"]].append(
            {"post": q["post_id"], "start": q["start"], "end": q["end"], "text": q["text"]}
        )
    return _state(
        coding.status,
        [{"text": c.text, "quotes": quotes[c.pk]} for c in codes],
        coding.not_relevant,
        coding.unsure,
        coding.memo,
    )


def _flag(data: dict, name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise CodingInputError(f"'{name}' must be true or false.")
    return value


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CodingInputError(f"'{name}' must be a whole number of at least 0.")
    return value


def parse_open_input(data: Any) -> OpenCodingInput:
    """Check the payload's shape: ``open_codes`` is a list of ``{text, quotes}``."""
    if not isinstance(data, dict):
        raise CodingInputError("The request body must be a JSON object.")
    raw = data.get("open_codes", [])
    if not isinstance(raw, list):
        raise CodingInputError("'open_codes' must be a list.")
    if len(raw) > OPEN_CODES_MAX:
        raise CodingInputError(f"At most {OPEN_CODES_MAX} open codes per unit.")
    codes: list[dict] = []
    seen: dict[str, int] = {}
    quote_total = 0
    for n, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise CodingInputError(f"Open code {n} needs its 'text'.")
        text = " ".join(item["text"].split())
        if not text:
            raise CodingInputError(f"Open code {n} is empty.")
        if len(text) > OPEN_CODE_MAX_CHARS:
            raise CodingInputError(
                f"Open code {n} is longer than {OPEN_CODE_MAX_CHARS} characters."
            )
        quotes = item.get("quotes", [])
        if not isinstance(quotes, list):
            raise CodingInputError(f"The quotes of open code {n} must be a list.")
        quote_total += len(quotes)
        if quote_total > QUOTES_MAX:
            raise CodingInputError(f"At most {QUOTES_MAX} quotes per coding.")
        parsed = []
        for m, q in enumerate(quotes, start=1):
            where = f"quote {m} of open code {n}"
            if not isinstance(q, dict) or not isinstance(q.get("text"), str):
                raise CodingInputError(f"The {where} needs its 'text'.")
            if len(q["text"]) > QUOTE_MAX_CHARS:
                raise CodingInputError(f"The {where} is longer than {QUOTE_MAX_CHARS} characters.")
            parsed.append(
                {
                    "post": _count(q.get("post"), f"{where} post"),
                    "start": _count(q.get("start"), f"{where} start"),
                    "end": _count(q.get("end"), f"{where} end"),
                    "text": q["text"],
                }
            )
        key = normalize(text)
        if key in seen:  # the same code typed twice: one code with both quotes
            codes[seen[key]]["quotes"].extend(parsed)
            continue
        seen[key] = len(codes)
        codes.append({"text": text, "quotes": parsed})
    memo = data.get("memo", "")
    if not isinstance(memo, str):
        raise CodingInputError("'memo' must be text.")
    if len(memo) > MEMO_MAX_CHARS:
        raise CodingInputError(f"The memo is longer than {MEMO_MAX_CHARS} characters.")
    submit = _flag(data, "submit")
    not_relevant = _flag(data, "not_relevant")
    if submit and not (codes or not_relevant):
        raise CodingInputError("Write at least one open code, or mark the unit not relevant.")
    return OpenCodingInput(
        base_revision=_count(data.get("base_revision"), "base_revision"),
        open_codes=codes,
        not_relevant=not_relevant,
        unsure=_flag(data, "unsure"),
        memo=memo,
        submit=submit,
    )


def _check_quotes(unit: Unit, payload: OpenCodingInput) -> None:
    """Every quote must be the text of a post of the unit at its code-point offsets."""
    quotes = [q for oc in payload.open_codes for q in oc["quotes"]]
    if not quotes:
        return
    posts = Post.objects.filter(pk__in={q["post"] for q in quotes})
    posts = (
        posts.filter(pk=unit.post_id) if unit.post_id else posts.filter(thread_id=unit.thread_id)
    )
    texts = dict(posts.values_list("id", "plain_text"))
    for n, oc in enumerate(payload.open_codes, start=1):
        for m, q in enumerate(oc["quotes"], start=1):
            where = f"Quote {m} of open code {n} ('{oc['text']}')"
            text = texts.get(q["post"])
            if text is None:
                raise CodingInputError(f"{where} names post {q['post']}, not in this unit.")
            if q["end"] <= q["start"]:
                raise CodingInputError(f"{where} is empty: its end must come after its start.")
            if text[q["start"] : q["end"]] != q["text"]:
                raise CodingInputError(
                    f"{where} does not match post {q['post']} at code points "
                    f"{q['start']}-{q['end']}."
                )


def _first(queryset):
    return next(iter(queryset.order_by()[:1]), None)


@dataclass
class OpenSaveResult:
    coding: Coding
    saved: bool
    state: dict[str, Any]


def save_open_coding(
    project: Project, unit: Unit, coder, payload: OpenCodingInput
) -> OpenSaveResult:
    """Store the coder's open codes for the unit (protocol of ``coding.codings``).

    Raises ``NotAssigned``, ``CodingInputError`` (before anything is written) or
    ``Conflict`` carrying the stored open coding.
    """
    _check_quotes(unit, payload)
    with transaction.atomic():
        assignment = _first(Assignment.objects.select_for_update().filter(unit=unit, coder=coder))
        if assignment is None or assignment.status == Assignment.Status.RETURNED:
            raise NotAssigned
        coding = _first(Coding.objects.select_for_update().filter(unit=unit, coder=coder))
        before = open_state_of(coding) if coding else None
        stored_revision = coding.revision if coding else 0
        already_submitted = coding is not None and coding.status == Coding.Status.SUBMITTED
        status = (
            Coding.Status.SUBMITTED if payload.submit or already_submitted else Coding.Status.DRAFT
        )
        after = payload.state(status)
        if before == after or (before is None and after == EMPTY_STATE and not payload.submit):
            if coding is not None and payload.submit:
                _complete(assignment)
            return OpenSaveResult(
                coding=coding or Coding(unit=unit, coder=coder), saved=False, state=before or after
            )
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
        _write_open_codes(coding, payload.open_codes, replace=before is not None)
        CodingEvent.objects.create(
            coding=coding,
            user=coder,
            action="open submit" if payload.submit else "open save",
            before=before,
            after=after,
        )
        if payload.submit:
            _complete(assignment, now)
        return OpenSaveResult(coding=coding, saved=True, state=after)


def _complete(assignment: Assignment, now=None) -> None:
    if assignment.status != Assignment.Status.DONE:
        assignment.status = Assignment.Status.DONE
        assignment.completed_at = now or timezone.now()
        assignment.save(update_fields=["status", "completed_at"])


def _write_open_codes(coding: Coding, open_codes: list[dict], *, replace: bool) -> None:
    """Replace the coding's open codes and quotes (a fixed number of queries)."""
    if replace:
        OpenCode.objects.filter(coding=coding).delete()
    created = OpenCode.objects.bulk_create(
        OpenCode(coding=coding, text=oc["text"], normalized=normalize(oc["text"]), order=n)
        for n, oc in enumerate(open_codes)
    )
    if any(c.pk is None for c in created):
        by_norm = {c.normalized: c for c in OpenCode.objects.filter(coding=coding)}
        created = [by_norm[normalize(oc["text"])] for oc in open_codes]
    OpenCodeQuote.objects.bulk_create(
        OpenCodeQuote(
            open_code=code, post_id=q["post"], start=q["start"], end=q["end"], text=q["text"]
        )
        for code, oc in zip(created, open_codes, strict=True)
        for q in oc["quotes"]
    )


def suggestions(project: Project, coder, prefix: str = "", *, limit: int = 20) -> list[str]:
    """Open codes already used, for autocomplete: the coder's own, or (when the project
    says so) every coder's. Most used first; one query."""
    qs = OpenCode.objects.filter(coding__unit__project=project)
    if project.open_autocomplete != Project.OpenAutocomplete.PROJECT:
        qs = qs.filter(coding__coder=coder)
    key = normalize(prefix)
    if key:
        qs = qs.filter(normalized__contains=key)
    rows = (
        qs.order_by()
        .values("normalized")
        .annotate(n=Count("id"), text=Min("text"))
        .order_by("-n", "normalized")[:limit]
    )
    return [row["text"] for row in rows]


# ---------------------------------------------------------------------------- the board


class BoardError(ValueError):
    """A board change that does not fit (unknown group, a cycle, an empty name)."""


class BoardConflict(Exception):
    """The card or group changed since the admin's page showed it."""


@dataclass
class CardRow:
    card: BoardCard
    count: int = 0
    coders: list[str] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


def sync_cards(project: Project) -> int:
    """Give every distinct open code of the project a card (two queries when none is new)."""
    # The most used spelling names the card; on a tie, the one written first.
    used = (
        OpenCode.objects.filter(coding__unit__project=project)
        .order_by("id")
        .values_list("normalized", "text")
    )
    texts: dict[str, Counter] = defaultdict(Counter)
    for norm, text in used:
        texts[norm][text] += 1
    have = set(BoardCard.objects.filter(project=project).values_list("normalized", flat=True))
    new = [
        BoardCard(project=project, normalized=norm, label=counter.most_common(1)[0][0])
        for norm, counter in texts.items()
        if norm not in have
    ]
    BoardCard.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def board(project: Project, *, examples: int = 2) -> dict[str, Any]:
    """Everything the board page shows, in a fixed number of queries.

    A merged card's open codes count on the card it was merged into.
    """
    groups = list(BoardGroup.objects.filter(project=project).order_by("order", "id"))
    cards = list(BoardCard.objects.filter(project=project).order_by("label", "id"))
    by_norm = {c.normalized: c for c in cards}
    by_id = {c.pk: c for c in cards}

    def target(card: BoardCard) -> BoardCard:
        seen = set()
        while card.merged_into_id and card.merged_into_id in by_id and card.pk not in seen:
            seen.add(card.pk)
            card = by_id[card.merged_into_id]
        return card

    rows = {c.pk: CardRow(card=c) for c in cards if c.merged_into_id is None}
    coders: dict[int, set[str]] = defaultdict(set)
    for norm, coder, text in (
        OpenCode.objects.filter(coding__unit__project=project)
        .order_by()
        .values_list("normalized", "coding__coder__username", "text")
    ):
        card = by_norm.get(norm)
        if card is None:
            continue
        row = rows[target(card).pk]
        row.count += 1
        coders[row.card.pk].add(coder)
        if text not in row.texts:
            row.texts.append(text)
    for norm, quote in (
        OpenCodeQuote.objects.filter(open_code__coding__unit__project=project)
        .order_by("id")
        .values_list("open_code__normalized", "text")
    ):
        card = by_norm.get(norm)
        if card is None:
            continue
        row = rows[target(card).pk]
        if len(row.examples) < examples:
            row.examples.append(quote[:200])
    for pk, row in rows.items():
        row.coders = sorted(coders[pk])
    children: dict[int | None, list[BoardGroup]] = defaultdict(list)
    for g in groups:
        children[g.parent_id].append(g)
    in_group: dict[int | None, list[CardRow]] = defaultdict(list)
    for row in rows.values():
        in_group[row.card.group_id].append(row)
    ordered: list[BoardGroup] = []

    def walk(parent: int | None, depth: int, path: list[str]) -> None:
        for g in children.get(parent, []):
            g.depth = depth
            g.path = [*path, g.name]
            g.card_rows = in_group.get(g.pk, [])
            ordered.append(g)
            walk(g.pk, depth + 1, g.path)

    walk(None, 0, [])
    near: dict[str, list[CardRow]] = defaultdict(list)
    for row in rows.values():
        near[near_key(row.card.normalized)].append(row)
    duplicates = [sorted(rs, key=lambda r: -r.count) for rs in near.values() if len(rs) > 1]
    return {
        "groups": ordered,
        "ungrouped": in_group.get(None, []),
        "cards": list(rows.values()),
        "duplicates": duplicates,
    }


def _record(project: Project, user, action: str, summary: str, before=None, after=None) -> None:
    BoardEvent.objects.create(
        project=project, user=user, action=action, summary=summary, before=before, after=after
    )


def _locked(model, project: Project, pk: Any, revision: Any, what: str):
    try:
        pk, revision = int(pk), int(revision)
    except (TypeError, ValueError) as exc:
        raise BoardError(f"The {what} and its revision must be numbers.") from exc
    obj = model.objects.select_for_update().filter(project=project, pk=pk).first()
    if obj is None:
        raise BoardError(f"No such {what} on this board (it may have been deleted).")
    if obj.revision != revision:
        last = (
            BoardEvent.objects.filter(project=project)
            .select_related("user")
            .order_by("-at", "-id")
            .first()
        )
        who = f" Last change: {last.summary} by {last.user.username}." if last else ""
        raise BoardConflict(
            f"'{obj}' changed since you loaded the board; reload to see the change.{who}"
        )
    return obj


def _group_id(value: Any) -> int | None:
    """A group id from a form (empty: no group); anything else is a BoardError."""
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BoardError("The group must be given by its number.") from None


def _group_path(group: BoardGroup | None) -> str:
    names = []
    while group is not None:
        names.append(group.name)
        group = group.parent
    return PATH_SEPARATOR.join(reversed(names))


@transaction.atomic
def create_group(
    project: Project, user, name: str, *, parent_id: int | None = None, definition: str = ""
) -> BoardGroup:
    name = " ".join((name or "").split())
    if not name:
        raise BoardError("A group needs a name.")
    if len(name) > 200:
        raise BoardError("A group's name is at most 200 characters.")
    parent = None
    parent_id = _group_id(parent_id)
    if parent_id:
        parent = BoardGroup.objects.filter(project=project, pk=parent_id).first()
        if parent is None:
            raise BoardError("The parent group no longer exists.")
    if BoardGroup.objects.filter(project=project, parent=parent, name__iexact=name).exists():
        raise BoardError(f"There is already a group named '{name}' here.")
    order = BoardGroup.objects.filter(project=project, parent=parent).count()
    group = BoardGroup.objects.create(
        project=project, parent=parent, name=name, definition=definition, order=order
    )
    _record(project, user, "group", f"created group '{_group_path(group)}'", after={"id": group.pk})
    return group


@transaction.atomic
def edit_group(
    project: Project, user, group_id, revision, *, name: str, definition: str
) -> BoardGroup:
    group = _locked(BoardGroup, project, group_id, revision, "group")
    name = " ".join((name or "").split())
    if not name or len(name) > 200:
        raise BoardError("A group's name must have 1 to 200 characters.")
    siblings = BoardGroup.objects.filter(project=project, parent_id=group.parent_id)
    if siblings.filter(name__iexact=name).exclude(pk=group.pk).exists():
        raise BoardError(f"There is already a group named '{name}' here.")
    before = {"name": group.name, "definition": group.definition}
    group.name, group.definition = name, definition
    group.revision += 1
    group.save(update_fields=["name", "definition", "revision"])
    _record(
        project,
        user,
        "edit group",
        f"edited group '{_group_path(group)}'",
        before,
        {"name": name, "definition": definition},
    )
    return group


@transaction.atomic
def move_card(project: Project, user, card_id, revision, group_id) -> BoardCard:
    """Put a card into a group (``group_id`` None: back to the ungrouped pile)."""
    card = _locked(BoardCard, project, card_id, revision, "open code")
    if card.merged_into_id:
        raise BoardError(f"'{card}' was merged into another code; move that one.")
    group = None
    group_id = _group_id(group_id)
    if group_id is not None:
        group = BoardGroup.objects.filter(project=project, pk=group_id).first()
        if group is None:
            raise BoardError("That group no longer exists.")
    before = {"group": card.group_id}
    card.group = group
    card.revision += 1
    card.save(update_fields=["group", "revision"])
    where = f"'{_group_path(group)}'" if group else "the ungrouped codes"
    _record(
        project, user, "move", f"moved '{card.label}' to {where}", before, {"group": card.group_id}
    )
    return card


@transaction.atomic
def rename_card(project: Project, user, card_id, revision, label: str) -> BoardCard:
    card = _locked(BoardCard, project, card_id, revision, "open code")
    label = " ".join((label or "").split())
    if not label or len(label) > 300:
        raise BoardError("A code's name must have 1 to 300 characters.")
    before = {"label": card.label}
    card.label = label
    card.revision += 1
    card.save(update_fields=["label", "revision"])
    _record(
        project,
        user,
        "rename",
        f"renamed '{before['label']}' to '{label}'",
        before,
        {"label": label},
    )
    return card


@transaction.atomic
def merge_cards(project: Project, user, card_id, revision, into_id, into_revision) -> BoardCard:
    """Merge one card into another: its open codes count there from now on."""
    card = _locked(BoardCard, project, card_id, revision, "open code")
    into = _locked(BoardCard, project, into_id, into_revision, "open code")
    if card.pk == into.pk or into.merged_into_id:
        raise BoardError("Choose two different codes that were not merged already.")
    card.merged_into = into
    card.group = None
    card.revision += 1
    card.save(update_fields=["merged_into", "group", "revision"])
    BoardCard.objects.filter(merged_into=card).update(merged_into=into)
    into.revision += 1
    into.save(update_fields=["revision"])
    _record(
        project,
        user,
        "merge",
        f"merged '{card.label}' into '{into.label}'",
        {"card": card.pk},
        {"into": into.pk},
    )
    return into


@transaction.atomic
def set_open_settings(project: Project, user, *, coding_mode: str, autocomplete: str) -> None:
    """Change what coders code (codebook, open codes, both) and where suggestions come from."""
    if coding_mode not in Project.CodingMode.values:
        raise BoardError(f"Unknown kind of coding '{coding_mode[:30]}'.")
    if autocomplete not in Project.OpenAutocomplete.values:
        raise BoardError(f"Unknown source of suggestions '{autocomplete[:30]}'.")
    before = {"coding_mode": project.coding_mode, "open_autocomplete": project.open_autocomplete}
    after = {"coding_mode": coding_mode, "open_autocomplete": autocomplete}
    if before == after:
        return
    Project.objects.filter(pk=project.pk).update(**after)
    project.coding_mode, project.open_autocomplete = coding_mode, autocomplete
    _record(
        project,
        user,
        "settings",
        f"set coding to '{project.get_coding_mode_display()}', suggestions from "
        f"'{project.get_open_autocomplete_display()}'",
        before,
        after,
    )


# ---------------------------------------------------------------- board -> codebook -> units


def card_paths(project: Project) -> dict[str, list[str]]:
    """Normalized open code -> group path (names from the top), for every grouped card."""
    groups = {g.pk: g for g in BoardGroup.objects.filter(project=project)}
    cards = list(BoardCard.objects.filter(project=project))
    by_id = {c.pk: c for c in cards}

    def path(group_id: int | None) -> list[str]:
        names: list[str] = []
        while group_id is not None and group_id in groups:
            names.append(groups[group_id].name)
            group_id = groups[group_id].parent_id
        return list(reversed(names))

    out = {}
    for card in cards:
        final, hops = card, 0
        while final.merged_into_id and hops < len(cards):
            final, hops = by_id[final.merged_into_id], hops + 1
        if final.group_id:
            out[card.normalized] = path(final.group_id)
    return out


def board_nodes(project: Project) -> tuple[list[Node], dict[int, str]]:
    """The groups as codebook nodes (every group codable) and group id -> code key."""
    groups = list(BoardGroup.objects.filter(project=project).order_by("order", "id"))
    keys: dict[int, str] = {}
    taken: set[str] = set()
    nodes: list[Node] = []
    remaining = groups
    while remaining:  # parents before children
        later = []
        for g in remaining:
            if g.parent_id and g.parent_id not in keys:
                later.append(g)
                continue
            parent_key = keys.get(g.parent_id) if g.parent_id else None
            key = derive_key(parent_key, g.name, taken)
            taken.add(key)
            keys[g.pk] = key
            nodes.append(Node(key=key, name=g.name, parent=parent_key, definition=g.definition))
        remaining = later
    return nodes, keys


@transaction.atomic
def board_to_codebook(
    project: Project, user, name: str, *, description: str = ""
) -> CodebookVersion:
    """Turn the board's groups into a codebook named ``name`` (a new one, or a new version
    of the one with that name) and record each grouped open code's code in it."""
    nodes, keys = board_nodes(project)
    if not nodes:
        raise BoardError("The board has no groups yet.")
    name = " ".join((name or "").split())
    if not name:
        raise BoardError("The codebook needs a name.")
    try:
        _, version, _ = load_nodes(
            name, description, nodes, user=user, note=f"From the affinity board of {project.name}."
        )
    except CodebookError as exc:
        raise BoardError(f"The groups do not make a valid codebook: {exc}") from None
    codes = {c.key: c for c in Code.objects.filter(version=version)}
    paths = card_paths(project)
    key_by_path = {tuple(g.path): keys[g.pk] for g in board(project)["groups"]}
    OpenCodeMapping.objects.filter(project=project, version=version).delete()
    OpenCodeMapping.objects.bulk_create(
        OpenCodeMapping(
            project=project,
            version=version,
            normalized=norm,
            code=codes[key_by_path[tuple(path)]],
            path=PATH_SEPARATOR.join(path),
        )
        for norm, path in paths.items()
    )
    _record(
        project, user, "codebook", f"made {version} from the board", after={"version": version.pk}
    )
    return version


@transaction.atomic
def apply_codebook(
    project: Project, user, version: CodebookVersion, *, pin: bool = True
) -> dict[str, int]:
    """Give each open-coded unit provisional codes through the recorded mapping.

    Pending provisional codes of this version are recomputed; reviewed ones are kept.
    With ``pin`` the project moves to the version (closed coding goes on with it).
    """
    mapping = dict(
        OpenCodeMapping.objects.filter(project=project, version=version).values_list(
            "normalized", "code_id"
        )
    )
    if not mapping:
        raise BoardError(f"No open code maps into {version}; make it from this board first.")
    found: dict[tuple[int, int], set[str]] = defaultdict(set)
    units = set()
    for unit_id, norm, text in (
        OpenCode.objects.filter(coding__unit__project=project)
        .order_by()
        .values_list("coding__unit_id", "normalized", "text")
    ):
        units.add(unit_id)
        if norm in mapping:
            found[(unit_id, mapping[norm])].add(text)
    ProvisionalCode.objects.filter(
        unit__project=project, version=version, status=ProvisionalCode.Status.PENDING
    ).delete()
    reviewed = set(
        ProvisionalCode.objects.filter(unit__project=project, version=version).values_list(
            "unit_id", "code_id"
        )
    )
    ProvisionalCode.objects.bulk_create(
        ProvisionalCode(unit_id=u, code_id=c, version=version, sources=sorted(texts))
        for (u, c), texts in found.items()
        if (u, c) not in reviewed
    )
    if pin and project.codebook_version_id != version.pk:
        locked = Project.objects.select_for_update().get(pk=project.pk)
        if locked.codebook_version_id is None:
            pin_project(locked, version, user=user)
        else:
            ProjectUpgrade.objects.create(
                project=locked,
                from_version_id=locked.codebook_version_id,
                to_version=version,
                upgraded_by=user,
                summary=[{"from": "open coding board"}],
            )
            locked.codebook_version = version
            locked.save(update_fields=["codebook_version"])
        project.codebook_version = version
    _record(
        project,
        user,
        "apply",
        f"applied {version}: {len(found)} provisional codes on {len(units)} units",
    )
    return {"units": len(units), "provisional": len(found)}


def provisional_by_unit(project: Project) -> dict[int, list[ProvisionalCode]]:
    """Provisional codes of the project's version per unit (one query)."""
    out: dict[int, list[ProvisionalCode]] = defaultdict(list)
    for p in (
        ProvisionalCode.objects.filter(
            unit__project=project, version_id=project.codebook_version_id
        )
        .select_related("code")
        .order_by("unit_id", "code__name", "code_id")
    ):
        out[p.unit_id].append(p)
    return out


@transaction.atomic
def review_unit(
    project: Project, unit: Unit, user, accepted: set[int], *, base_revision: int | None
) -> Any:
    """Accept the provisional codes whose ids are in ``accepted`` and reject the others;
    the accepted ones become the unit's gold label (rule "manual") through adjudication.
    ``base_revision`` is the gold label's revision the reviewer saw (None: none yet); if
    another decision came since, nothing is written (``AdjudicationConflict``)."""
    from .adjudication import AdjudicationError, decide
    from .models import GoldLabel

    rows = list(
        ProvisionalCode.objects.select_for_update()
        .filter(unit=unit, version_id=project.codebook_version_id)
        .select_related("code")
    )
    now = timezone.now()
    for p in rows:
        p.status = (
            ProvisionalCode.Status.ACCEPTED if p.pk in accepted else ProvisionalCode.Status.REJECTED
        )
        p.reviewed_by, p.reviewed_at = user, now
    if not any(p.pk in accepted for p in rows):
        raise AdjudicationError(
            "accept at least one provisional code; decide a unit none of them fits "
            "(not relevant, or another code) on its adjudication page"
        )
    ProvisionalCode.objects.bulk_update(rows, ["status", "reviewed_by", "reviewed_at"])
    return decide(
        project,
        unit,
        user,
        codes={p.code.key for p in rows if p.pk in accepted},
        rule=GoldLabel.Rule.MANUAL,
        rationale="Accepted from the provisional codes of open coding.",
        base_revision=base_revision,
    )


def board_figure(data: dict[str, Any], fmt: str = "png") -> bytes:
    """The board as a figure: one line per group (indented by depth) with its open codes
    and their counts beneath, ungrouped codes last."""
    from matplotlib.figure import Figure

    lines: list[tuple[str, int, bool]] = []
    for group in data["groups"]:
        total = sum(r.count for r in group.card_rows)
        lines.append((f"{group.name} ({total})", group.depth, True))
        for row in sorted(group.card_rows, key=lambda r: (-r.count, r.card.label)):
            lines.append((f"{row.card.label} ({row.count})", group.depth + 1, False))
    if data["ungrouped"]:
        lines.append(("Not grouped", 0, True))
        for row in data["ungrouped"]:
            lines.append((f"{row.card.label} ({row.count})", 1, False))
    height = max(1.5, 0.22 * len(lines) + 0.6)
    figure = Figure(figsize=(8, height))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_axis_off()
    step = 1 / (len(lines) + 1)
    for n, (text, depth, header) in enumerate(lines, start=1):
        axes.text(
            0.02 + 0.04 * depth,
            1 - n * step,
            text,
            fontsize=9,
            fontweight="bold" if header else "normal",
            va="center",
        )
    out = io.BytesIO()
    figure.savefig(out, format=fmt, dpi=150 if fmt == "png" else None)
    return out.getvalue()
