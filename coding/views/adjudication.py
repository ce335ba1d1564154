"""Adjudication pages: the disagreement queue and the side-by-side decision screen.

Project admins only: annotators get 403, outsiders 404 (coding.access).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import adjudication as adj
from .. import audit
from ..access import get_project_for_user
from ..codings import codes_for_project, codings_for_unit
from ..models import ExampleProposal, GoldEvent, Post, Project, Quote, Unit


def _digits(value: str) -> int:
    return int(value) if value.isdecimal() and len(value) < 12 else 0


SORTS = {
    "size": lambda row: (-row["entry"].disagreement, row["unit"].position),
    "position": lambda row: row["unit"].position,
    "category": lambda row: (row["unit"].thread.category, row["unit"].position),
}
KINDS = ("disagreement", "unanimous", "single", "all")


def _queue_rows(project: Project, request: HttpRequest) -> tuple[list[dict], dict]:
    entries = adj.unit_codings(project)
    units = {u.pk: u for u in Unit.objects.filter(pk__in=entries).select_related("thread", "round")}
    kind = request.GET.get("kind", "disagreement")
    kind = kind if kind in KINDS else "disagreement"
    code = request.GET.get("code", "")
    round_name = request.GET.get("round", "")
    category = request.GET.get("category", "")
    pair = request.GET.get("pair", "")
    min_size = request.GET.get("min", "")
    show_decided = request.GET.get("decided") == "1"
    rows = []
    for unit_id, entry in entries.items():
        unit = units[unit_id]
        if kind != "all" and entry.kind != kind:
            continue
        if entry.decided and not show_decided:
            continue
        if code and code not in entry.union:
            continue
        if round_name and unit.round.name != round_name:
            continue
        if category and unit.thread.category != category:
            continue
        if pair:
            a, _, b = pair.partition("+")
            if not {a, b} <= set(entry.sets):
                continue
        if min_size.isdecimal() and len(min_size) < 10 and entry.disagreement < int(min_size):
            continue
        rows.append({"unit": unit, "entry": entry})
    sort = request.GET.get("sort", "size")
    rows.sort(key=SORTS.get(sort, SORTS["size"]))
    coders = sorted({c for e in entries.values() for c in e.sets})
    filters = {
        "kind": kind, "code": code, "round": round_name, "category": category, "pair": pair,
        "min": min_size, "sort": sort if sort in SORTS else "size", "decided": show_decided,
        "codes": sorted({c for e in entries.values() for c in e.union}),
        "rounds": sorted({u.round.name for u in units.values()}),
        "categories": sorted({u.thread.category for u in units.values()}),
        "pairs": [f"{a}+{b}" for i, a in enumerate(coders) for b in coders[i + 1 :]],
    }  # fmt: skip
    return rows, {"filters": filters, "entries": entries}


@require_GET
@login_required
def adjudication_queue(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request, slug, admin=True)
    rows, extra = _queue_rows(project, request)
    entries = extra["entries"]
    context = {
        "project": project,
        "rows": rows[:500],
        "shown": len(rows),
        "filters": extra["filters"],
        "progress": adj.progress(entries),
        "acceptable": len(adj.acceptable(entries)),
        "proposals": ExampleProposal.objects.filter(
            project=project, applied_version__isnull=True
        ).count(),
    }
    template = "coding/adjudication_queue.html"
    if request.htmx:
        template += "#queue"
    return render(request, template, context)


@require_POST
@login_required
def adjudication_close(request: HttpRequest, slug: str) -> HttpResponse:
    """Close the project; its proposed examples then enter the codebook."""
    project = get_project_for_user(request, slug, admin=True)
    versions = adj.close_project(project, request.user)
    audit.record(
        request, audit.Action.CODEBOOK, project, op="close_project", examples=len(versions)
    )
    messages.success(
        request,
        f"Project closed; {len(versions)} proposed example{'s' if len(versions) != 1 else ''} "
        "added to the codebook.",
    )
    return redirect("adjudication_queue", slug=project.slug)


@require_POST
@login_required
def adjudication_bulk_accept(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request, slug, admin=True)
    entries = adj.unit_codings(project)
    expected = request.POST.get("expected", "")
    found = len(adj.acceptable(entries))
    if expected != str(found):
        messages.error(
            request,
            f"The number of units to accept changed ({expected} shown, {found} now); "
            "check the preview again.",
        )
        return redirect("adjudication_queue", slug=project.slug)
    try:
        count = adj.bulk_accept(project, request.user, entries)
    except (adj.AdjudicationConflict, adj.AdjudicationError) as exc:
        # Nothing was accepted: the units go to gold together or not at all.
        messages.error(request, f"Nothing accepted: {exc}. Check the preview again.")
        return redirect("adjudication_queue", slug=project.slug)
    audit.record(request, audit.Action.ADJUDICATE, project, op="bulk_accept", units=count)
    messages.success(request, f"{count} units accepted as gold.")
    return redirect("adjudication_queue", slug=project.slug)


def _next_undecided(project: Project, after: int | None = None) -> int | None:
    entries = adj.unit_codings(project)
    pending = sorted(
        (e for e in entries.values() if not e.decided),
        key=lambda e: (-e.disagreement, e.unit_id),
    )
    for entry in pending:
        if entry.unit_id != after:
            return entry.unit_id
    return None


@login_required
@require_http_methods(["GET", "POST"])
def adjudicate_unit(request: HttpRequest, slug: str, unit_id: int) -> HttpResponse:
    project = get_project_for_user(request, slug, admin=True)
    unit = (
        Unit.objects.select_related("thread", "thread__source", "round")
        .filter(project=project, pk=unit_id)
        .first()
    )
    if unit is None:
        raise Http404("No such unit.")
    entry = adj.unit_codings(project, Unit.objects.filter(pk=unit.pk)).get(unit.pk)
    if entry is None:
        raise Http404("This unit has no submitted codings yet.")
    error = None
    status = 200
    refused = None  # a decision refused as sent, shown again to be corrected
    if request.method == "POST":
        action = request.POST.get("action", "decide")
        base = request.POST.get("base_revision", "")
        base_revision = int(base) if base.isdecimal() and len(base) < 10 else None
        try:
            if action == "propose_example":
                quote = Quote.objects.filter(
                    pk=_digits(request.POST.get("quote", "")), application__coding__unit=unit
                ).select_related("application__code", "application__coding__unit", "post")
                found = quote.first()
                if found is None:
                    raise adj.AdjudicationError("no such quote on this unit")
                adj.propose_example(project, found, request.user)
                audit.record(
                    request, audit.Action.ADJUDICATE, unit, op="propose_example", project=project
                )
                messages.success(
                    request,
                    f"Proposed as an example of {found.application.code.name}; it enters "
                    "the codebook when the project closes.",
                )
                return redirect("adjudicate_unit", slug=project.slug, unit_id=unit.pk)
            if action == "reopen":
                adj.reopen(unit, request.user, base_revision=base_revision or 0)
                audit.record(request, audit.Action.ADJUDICATE, unit, op="reopen", project=project)
                messages.success(request, f"Unit {unit.pk} re-opened.")
                return redirect("adjudicate_unit", slug=project.slug, unit_id=unit.pk)
            sent = {
                "codes": set(request.POST.getlist("codes")),
                "rule": request.POST.get("rule", "manual"),
                "rationale": request.POST.get("rationale", "").strip(),
                "base_revision": base_revision,
            }
            adj.decide(project, unit, request.user, **sent)
        except adj.AdjudicationConflict as exc:
            error = f"Not saved: {exc}. The page now shows the stored decision."
            status = 409
            entry = adj.unit_codings(project, Unit.objects.filter(pk=unit.pk))[unit.pk]
        except adj.AdjudicationError as exc:
            error = f"Not saved: {exc}."
            status = 400
            if action not in ("propose_example", "reopen"):
                # decide checked the revision the form was based on before refusing it,
                # so the form goes back with that revision, not one read since.
                refused = sent
        else:
            audit.record(
                request,
                audit.Action.ADJUDICATE,
                unit,
                op="decide",
                project=project,
                codes=sorted(request.POST.getlist("codes")),
                rule=request.POST.get("rule", "manual"),
            )
            following = _next_undecided(project, after=unit.pk)
            messages.success(request, f"Unit {unit.pk} decided.")
            if following:
                return redirect("adjudicate_unit", slug=project.slug, unit_id=following)
            return redirect("adjudication_queue", slug=project.slug)
    posts = Post.objects.filter(thread_id=unit.thread_id).order_by("post_number")
    if unit.post_id:
        posts = posts.filter(pk=unit.post_id) | posts.filter(post_number=1)
    posts = list(posts)
    for post in posts:
        post.is_unit = not unit.post_id or post.pk == unit.post_id
    codes = codes_for_project(project)
    by_key = {c.key: c for c in codes}
    hide = request.GET.get("names") != "show"
    codings = codings_for_unit(unit)
    labels = {c.coder.username: (f"Coder {chr(65 + i)}" if hide else c.coder.username)
              for i, c in enumerate(codings)}  # fmt: skip
    gold = entry.gold
    current = (
        {c.key for c in gold.codes.all()} | ({adj.NOT_RELEVANT} if gold.not_relevant else set())
        if gold
        else set(entry.majority)
    )
    form = {
        "rule": gold.rule if gold else "majority",
        "rationale": gold.rationale if gold else "",
        "base_revision": gold.revision if gold else None,
    }
    if refused is not None:
        current = refused["codes"]
        form = {k: refused[k] for k in form}
    disputed = sorted(entry.union - entry.intersection)
    names = {c.key: c.name for c in codes}
    quotes_by_coding: dict[int, list[dict]] = {}
    for quote_id, coding_id, key, text in (
        Quote.objects.filter(application__coding__in=[c.pk for c in codings])
        .order_by("application__coding_id", "post_id", "start")
        .values_list("id", "application__coding_id", "application__code__key", "text")
    ):
        quotes_by_coding.setdefault(coding_id, []).append(
            {"id": quote_id, "code": key, "text": text}
        )
    context = {
        "project": project,
        "unit": unit,
        "thread": unit.thread,
        "posts": posts,
        "entry": entry,
        "codings": [
            {
                "label": labels[c.coder.username],
                "coding": c,
                "names": [names.get(k, k) for k in c.state["codes"]],
                "quotes": quotes_by_coding.get(c.pk, []),
            }
            for c in codings
        ],
        "codes": codes,
        "disputed": [by_key[k] for k in disputed if k in by_key],
        "disputed_not_relevant": adj.NOT_RELEVANT in disputed,
        "starts": {rule: sorted(entry.start(rule)) for rule in adj.RULES},
        "current": current,
        "form": form,
        "gold": gold,
        "hide_names": hide,
        "error": error,
        "history": GoldEvent.objects.filter(gold=gold).select_related("user") if gold else [],
        "not_relevant_key": adj.NOT_RELEVANT,
    }
    return render(request, "coding/adjudicate_unit.html", context, status=status)
