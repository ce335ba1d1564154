"""A small coded project whose report tables are known by hand.

Codebook: ``ch`` > ``ch.a`` > (``ch.a.1``, ``ch.a.2``); ``ch`` > ``ch.b`` > ``ch.b.1``;
``be`` > ``be.x``. Units (thread dates in UTC) and their gold labels:

=====  ==================  ==========  ======  =====================
unit   created (UTC)       category    round   gold
=====  ==================  ==========  ======  =====================
u1     2021-01-10 09:00    Beginners   Main    ch.a.1, ch.a.2
u2     2021-01-31 23:30    Beginners   Main    ch.a.1, ch.b.1
u3     2021-02-01 00:10    Beginners   Main    be.x
u4     2021-03-05 12:00    Beginners   Second  (no code)
u5     2021-03-20 12:00    Research    Second  ch.b.1, be.x
u6     2021-03-25 12:00    Beginners   Main    none
u7     2021-02-10 12:00    Beginners   Main    re-opened (ch.a.1)
u8     2021-02-11 12:00    Beginners   Main    not relevant
=====  ==================  ==========  ======  =====================

Submitted codings: alice u1 {ch.a.1}, u2 {ch.a.1, ch.b.1}, u3 not relevant, u6 {be.x};
bob u1 {ch.a.1, ch.a.2}, u3 {be.x}. Bob's draft on u4 {ch.a.1} never counts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from coding.models import (
    Code,
    CodeApplication,
    Codebook,
    CodebookVersion,
    Coding,
    GoldLabel,
    Project,
    Round,
    Unit,
)
from tests.factories import make_project, make_source, make_thread

CODES = [
    ("ch", "Challenges", "", "#555555"),
    ("ch.a", "Category A", "ch", "#1f77b4"),
    ("ch.a.1", "A one", "ch.a", "#1f77b4"),
    ("ch.a.2", "A two", "ch.a", "#aec7e8"),
    ("ch.b", "Category B", "ch", "#ff7f0e"),
    ("ch.b.1", "B one", "ch.b", "#ff7f0e"),
    ("be", "Benefits", "", "#2ca02c"),
    ("be.x", "X", "be", "#2ca02c"),
]

UNITS = [
    ("u1", datetime(2021, 1, 10, 9, 0, tzinfo=UTC), "Beginners", "Main"),
    ("u2", datetime(2021, 1, 31, 23, 30, tzinfo=UTC), "Beginners", "Main"),
    ("u3", datetime(2021, 2, 1, 0, 10, tzinfo=UTC), "Beginners", "Main"),
    ("u4", datetime(2021, 3, 5, 12, 0, tzinfo=UTC), "Beginners", "Second"),
    ("u5", datetime(2021, 3, 20, 12, 0, tzinfo=UTC), "Research", "Second"),
    ("u6", datetime(2021, 3, 25, 12, 0, tzinfo=UTC), "Beginners", "Main"),
    ("u7", datetime(2021, 2, 10, 12, 0, tzinfo=UTC), "Beginners", "Main"),
    ("u8", datetime(2021, 2, 11, 12, 0, tzinfo=UTC), "Beginners", "Main"),
]

TEXTS = {
    "u1": ["<p>I fine-tuned BERT yesterday.</p>", "<p>Which checkpoint?</p>"],
    "u2": ["<p>RoBERTa and distilbert both fail.</p>"],
    "u3": ["<p>Using bert-base-uncased with GPT-2.</p>"],
    "u4": ["<p>Nothing to see.</p>"],
    "u5": ["<p>gpt2 is small</p>", "<p>Try Llama 2 instead.</p>"],
    "u6": ["<p>Quiet thread.</p>"],
    "u7": ["<p>Reopened.</p>"],
    "u8": ["<p>Spam.</p>"],
}

GOLD = {
    "u1": ["ch.a.1", "ch.a.2"],
    "u2": ["ch.a.1", "ch.b.1"],
    "u3": ["be.x"],
    "u4": [],
    "u5": ["ch.b.1", "be.x"],
}


def make_report_codebook(name: str = "Report taxonomy") -> tuple[CodebookVersion, dict]:
    codebook = Codebook.objects.create(name=name)
    version = CodebookVersion.objects.create(codebook=codebook, number=1)
    codes: dict[str, Code] = {}
    for order, (key, label, parent, color) in enumerate(CODES):
        codes[key] = Code.objects.create(
            version=version,
            key=key,
            name=label,
            parent=codes.get(parent),
            color=color,
            order=order,
            codable=key.count(".") == 2 or key == "be.x",
        )
    return version, codes


def _gold(unit: Unit, codes: list[Code], decider, **fields) -> GoldLabel:
    gold = GoldLabel.objects.create(
        unit=unit,
        codebook_version=unit.project.codebook_version,
        rule=GoldLabel.Rule.MANUAL,
        decided_by=decider,
        **fields,
    )
    gold.codes.set(codes)
    return gold


def _coding(unit: Unit, coder, codes: list[Code], *, status=Coding.Status.SUBMITTED, **fields):
    coding = Coding.objects.create(
        unit=unit,
        coder=coder,
        codebook_version=unit.project.codebook_version,
        status=status,
        **fields,
    )
    CodeApplication.objects.bulk_create(CodeApplication(coding=coding, code=c) for c in codes)
    return coding


def make_report_project(users: dict, *, slug: str = "report-study") -> tuple[Project, dict]:
    """The project in the module docstring; returns it and its units by name."""
    project = make_project(slug, admin=users["admin"], annotators=[users["alice"], users["bob"]])
    version, codes = make_report_codebook(f"{slug} taxonomy")
    project.codebook_version = version
    project.save()
    rounds = {
        name: Round.objects.create(project=project, name=name, order=n)
        for n, name in enumerate(["Main", "Second"])
    }
    source = make_source(f"{slug} forum", f"https://{slug}.forum.test")
    units: dict[str, Unit] = {}
    for n, (name, created, category, round_name) in enumerate(UNITS, start=1):
        thread = make_thread(
            f"Thread {name}",
            source=source,
            external_id=n,
            category=category,
            posts=TEXTS[name],
            created_at=created,
        )
        units[name] = Unit.objects.create(
            project=project, round=rounds[round_name], thread=thread, position=n
        )
    admin = users["admin"]
    for name, keys in GOLD.items():
        _gold(units[name], [codes[k] for k in keys], admin)
    _gold(units["u7"], [codes["ch.a.1"]], admin, is_open=True)
    _gold(units["u8"], [], admin, not_relevant=True)
    alice, bob = users["alice"], users["bob"]
    _coding(units["u1"], alice, [codes["ch.a.1"]])
    _coding(units["u2"], alice, [codes["ch.a.1"], codes["ch.b.1"]])
    _coding(units["u3"], alice, [], not_relevant=True)
    _coding(units["u6"], alice, [codes["be.x"]])
    _coding(units["u1"], bob, [codes["ch.a.1"], codes["ch.a.2"]])
    _coding(units["u3"], bob, [codes["be.x"]])
    _coding(units["u4"], bob, [codes["ch.a.1"]], status=Coding.Status.DRAFT)
    return project, units


def complete_gold(project: Project, units: dict, decider) -> None:
    """Give every unit of the report project a decided gold label."""
    GoldLabel.objects.filter(unit__project=project).update(is_open=False)
    _gold(units["u6"], [], decider)
