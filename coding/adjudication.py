"""Adjudication: an admin turns the coders' codings of a unit into a gold label.

Coders' codings are never changed. A decision is a ``GoldLabel`` beside them with the
starting rule, the rationale, who and when; every decision, re-opening and change is
kept as a ``GoldEvent``. ``GoldLabel.revision`` guards against two admins deciding the
same unit at once: a decision based on an older revision is refused as a conflict.

Starting rules over the coders' code sets (``not relevant`` counts as a code):
union (any coder), intersection (every coder), majority (more than half the coders).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import QuerySet

from .models import (
    Code,
    CodeApplication,
    CodebookVersion,
    Coding,
    ExampleProposal,
    GoldEvent,
    GoldLabel,
    Project,
    Quote,
    Unit,
)

NOT_RELEVANT = "__not_relevant__"
RULES = ("union", "intersection", "majority")


class AdjudicationConflict(Exception):
    """Someone decided the unit since the decision's form was loaded."""


class AdjudicationError(ValueError):
    pass


@dataclass
class UnitCodings:
    """What the coders said about one unit, and where it stands."""

    unit_id: int
    sets: dict[str, frozenset[str]] = field(default_factory=dict)  # coder -> codes
    unsure: set[str] = field(default_factory=set)
    gold: GoldLabel | None = None

    @property
    def coders(self) -> list[str]:
        return sorted(self.sets)

    @property
    def union(self) -> frozenset[str]:
        return frozenset().union(*self.sets.values()) if self.sets else frozenset()

    @property
    def intersection(self) -> frozenset[str]:
        values = list(self.sets.values())
        return frozenset.intersection(*values) if values else frozenset()

    @property
    def majority(self) -> frozenset[str]:
        counts = Counter(code for codes in self.sets.values() for code in codes)
        return frozenset(c for c, n in counts.items() if n > len(self.sets) / 2)

    @property
    def disagreement(self) -> int:
        """How many codes some but not all coders applied."""
        return len(self.union - self.intersection)

    @property
    def kind(self) -> str:
        if len(self.sets) == 1:
            return "single"
        return "unanimous" if self.disagreement == 0 else "disagreement"

    @property
    def decided(self) -> bool:
        return self.gold is not None and not self.gold.is_open

    def start(self, rule: str) -> frozenset[str]:
        if rule not in RULES:
            raise AdjudicationError(f"unknown starting rule {rule!r}")
        return getattr(self, rule)


def unit_codings(project: Project, units: QuerySet | None = None) -> dict[int, UnitCodings]:
    """Every unit with at least one submitted coding: three queries in all."""
    codings = Coding.objects.filter(unit__project=project, status=Coding.Status.SUBMITTED)
    if units is not None:
        codings = codings.filter(unit__in=units)
    rows = list(codings.values_list("id", "unit_id", "coder__username", "not_relevant", "unsure"))
    codes: dict[int, set[str]] = {row[0]: set() for row in rows}
    for coding_id, key in CodeApplication.objects.filter(coding__in=codings).values_list(
        "coding_id", "code__key"
    ):
        codes[coding_id].add(key)
    result: dict[int, UnitCodings] = {}
    for coding_id, unit_id, coder, not_relevant, unsure in rows:
        entry = result.setdefault(unit_id, UnitCodings(unit_id))
        found = codes[coding_id] | ({NOT_RELEVANT} if not_relevant else set())
        entry.sets[coder] = frozenset(found)
        if unsure:
            entry.unsure.add(coder)
    for gold in GoldLabel.objects.filter(unit_id__in=result).prefetch_related("codes"):
        result[gold.unit_id].gold = gold
    return result


def _state(gold: GoldLabel | None) -> dict | None:
    if gold is None:
        return None
    keys = sorted(c.key for c in gold.codes.all())
    return {
        "codes": keys,
        "not_relevant": gold.not_relevant,
        "rule": gold.rule,
        "rationale": gold.rationale,
        "is_open": gold.is_open,
        "decided_by": gold.decided_by.username if gold.decided_by_id else None,
    }


def _codes_by_key(project: Project, keys: set[str]) -> list[Code]:
    codes = list(Code.objects.filter(version_id=project.codebook_version_id, key__in=keys))
    unknown = keys - {c.key for c in codes}
    if unknown:
        raise AdjudicationError(f"unknown code(s): {', '.join(sorted(unknown))}")
    return codes


def decide(
    project: Project,
    unit: Unit,
    user,
    *,
    codes: set[str],
    rule: str,
    rationale: str = "",
    base_revision: int | None = None,
) -> GoldLabel:
    """Record the gold label for a unit. ``base_revision`` is the revision the admin saw
    (None when there was no gold label); a different stored revision is a conflict."""
    if project.codebook_version_id is None:
        raise AdjudicationError("the project has no codebook version")
    not_relevant = NOT_RELEVANT in codes
    with transaction.atomic():
        # Lock the unit first: with no gold label yet there is no label row to lock, and
        # two first decisions must still queue rather than race.
        Unit.objects.select_for_update().filter(pk=unit.pk).values_list("pk", flat=True).first()
        gold = GoldLabel.objects.select_for_update().filter(unit=unit).first()
        stored = gold.revision if gold else None
        # A stale form is a conflict before anything else is said about it, so that the
        # admin sees the stored decision rather than correcting a form that would then
        # overwrite it.
        if stored != base_revision:
            raise AdjudicationConflict(
                f"unit {unit.pk} was decided by someone else meanwhile (revision {stored})"
            )
        if rule not in {r.value for r in GoldLabel.Rule}:
            raise AdjudicationError(f"unknown rule {rule!r}")
        chosen = _codes_by_key(project, set(codes) - {NOT_RELEVANT})
        if not chosen and not not_relevant:
            # As a coder's submitted coding: a relevant unit has at least one code.
            raise AdjudicationError("choose at least one code, or mark the unit not relevant")
        before = _state(gold)
        if gold is None:
            gold = GoldLabel(unit=unit)
        gold.codebook_version_id = project.codebook_version_id
        gold.not_relevant = not_relevant
        gold.rule = rule
        gold.rationale = rationale
        gold.decided_by = user
        gold.is_open = False
        gold.revision = (stored or 0) + 1
        gold.save()
        gold.codes.set(chosen)
        GoldEvent.objects.create(
            gold=gold, user=user, action="decide", before=before, after=_state(gold)
        )
    return gold


def reopen(unit: Unit, user, *, base_revision: int) -> GoldLabel:
    with transaction.atomic():
        gold = GoldLabel.objects.select_for_update().filter(unit=unit).first()
        if gold is None or gold.revision != base_revision:
            raise AdjudicationConflict(f"unit {unit.pk} changed meanwhile; reload it")
        before = _state(gold)
        gold.is_open = True
        gold.revision += 1
        gold.save(update_fields=["is_open", "revision"])
        GoldEvent.objects.create(
            gold=gold, user=user, action="reopen", before=before, after=_state(gold)
        )
    return gold


def acceptable(entries: dict[int, UnitCodings]) -> list[UnitCodings]:
    """Units that can pass to gold without discussion: every coder agrees, or a single
    coder who did not flag the unit unsure; none decided yet. Codings that agree on
    nothing at all (no code, not marked not relevant) are left for a decision."""
    return [
        e
        for e in entries.values()
        if e.gold is None
        and e.intersection
        and (e.kind == "unanimous" or (e.kind == "single" and not e.unsure))
    ]


def bulk_accept(project: Project, user, entries: dict[int, UnitCodings]) -> int:
    """Accept every acceptable unit as gold in one transaction; returns how many."""
    chosen = acceptable(entries)
    if not chosen:
        return 0
    units = {u.pk: u for u in Unit.objects.filter(pk__in=[e.unit_id for e in chosen])}
    with transaction.atomic():
        for entry in chosen:
            rule = GoldLabel.Rule.UNANIMOUS if entry.kind == "unanimous" else GoldLabel.Rule.SINGLE
            decide(
                project,
                units[entry.unit_id],
                user,
                codes=set(entry.intersection),
                rule=rule,
                rationale="Accepted in bulk: "
                + ("all coders agreed." if entry.kind == "unanimous" else "single coder."),
                base_revision=None,
            )
    return len(chosen)


def progress(entries: dict[int, UnitCodings]) -> dict[str, int]:
    total = len(entries)
    decided = sum(1 for e in entries.values() if e.decided)
    return {
        "total": total,
        "decided": decided,
        "percent": round(100 * decided / total) if total else 0,
    }


def propose_example(project: Project, quote: Quote, user) -> ExampleProposal:
    """Keep a coder's quote as a proposed example of its code, to enter the codebook when
    the project closes. Proposing the same text for the same code again changes nothing."""
    if quote.application.coding.unit.project_id != project.pk:
        raise AdjudicationError("that quote belongs to another project")
    proposal, _ = ExampleProposal.objects.get_or_create(
        project=project,
        code_key=quote.application.code.key,
        text=quote.text,
        defaults={"post": quote.post, "proposed_by": user},
    )
    return proposal


def close_project(project: Project, user) -> list[CodebookVersion]:
    """Close the project and add its pending example proposals to the codebook, each as
    a new version (annotators could not see them while the project ran)."""
    from .codebook import apply_edit, nodes_of

    versions: list[CodebookVersion] = []
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        project.status = Project.Status.CLOSED
        project.save(update_fields=["status"])
        if project.codebook_version_id is None:
            return versions
        codebook = project.codebook_version.codebook
        pending = ExampleProposal.objects.filter(project=project, applied_version__isnull=True)
        for proposal in pending.order_by("proposed_at", "pk"):
            latest = codebook.latest_version()
            node = next((n for n in nodes_of(latest) if n.key == proposal.code_key), None)
            if node is None:
                continue
            example = {"text": proposal.text, "post_id": proposal.post_id}
            if example in node.examples:
                proposal.applied_version = latest
            else:
                proposal.applied_version = apply_edit(
                    codebook, "edit", base=None, user=user, key=node.key,
                    examples=[*node.examples, example],
                )  # fmt: skip
                versions.append(proposal.applied_version)
            proposal.save(update_fields=["applied_version"])
    return versions
