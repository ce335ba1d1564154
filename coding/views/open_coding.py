"""Open coding pages: a coder's free-text codes for one unit, and for project admins the
affinity board, the codebook made from it, provisional codes and the exports.

Annotators reach only their own units' open codes; the board and everything after it is
for project admins (403 for annotators, 404 for outsiders, as everywhere).
"""

from __future__ import annotations

import csv
import io
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import audit
from .. import open_coding as oc
from ..access import get_project_for_user
from ..codings import CodingInputError, Conflict, NotAssigned
from ..models import (
    Assignment,
    BoardEvent,
    CodebookVersion,
    Coding,
    GoldLabel,
    OpenCode,
    OpenCodeMapping,
    Post,
    Project,
    Role,
    Unit,
)


def _posts_for(unit: Unit) -> list[Post]:
    """The thread's posts in order; for a post unit, the opening post and that post."""
    posts = Post.objects.filter(thread_id=unit.thread_id).order_by("post_number")
    if unit.post_id:
        posts = posts.filter(pk=unit.post_id) | posts.filter(post_number=1)
    return list(posts)


def _unit_for_user(request: HttpRequest, slug: str, unit_id: int):
    """The unit with the user's own assignment (or None); annotators reach only their own
    units and admins every unit of the project (404 otherwise)."""
    project = get_project_for_user(request, slug)
    unit = (
        Unit.objects.select_related("thread", "round")
        .filter(project=project, pk=unit_id)
        .order_by()
        .first()
    )
    if unit is None:
        raise Http404("No such unit.")
    assignment = Assignment.objects.filter(unit=unit, coder=request.user).order_by().first()
    if assignment is None and project.user_role != Role.ADMIN:
        raise Http404("No such unit.")
    return project, unit, assignment


@login_required
@require_http_methods(["GET", "POST"])
def open_code_unit(request: HttpRequest, slug: str, unit_id: int) -> HttpResponse:
    """The open-coding form: one code per line, a memo; saves check the revision."""
    project, unit, assignment = _unit_for_user(request, slug, unit_id)
    assigned = assignment is not None and assignment.status != Assignment.Status.RETURNED
    can_code = assigned and project.status == Project.Status.OPEN
    coding = Coding.objects.filter(unit=unit, coder=request.user).first() if assigned else None
    error = conflict = None
    if request.method == "POST":
        if not assigned:
            raise Http404("This unit is not in your queue.")
        if not can_code:
            messages.error(request, "This project is closed for coding; nothing was saved.")
            return redirect("open_code_unit", project.slug, unit.pk)
        try:
            revision = int(request.POST.get("base_revision", ""))
        except ValueError:
            revision = -1
        lines = [line for line in request.POST.get("open_codes", "").splitlines() if line.strip()]
        try:
            open_codes = _with_quotes(lines, request.POST.get("quotes", ""))
        except CodingInputError as exc:
            open_codes, error = [], str(exc)
        body = {
            "base_revision": max(revision, 0),
            "open_codes": open_codes,
            "memo": request.POST.get("memo", ""),
            "unsure": "unsure" in request.POST,
            "not_relevant": "not_relevant" in request.POST,
            "submit": "submit" in request.POST,
        }
        try:
            if error:
                raise CodingInputError(error)
            oc.save_open_coding(project, unit, request.user, oc.parse_open_input(body))
        except CodingInputError as exc:
            error = str(exc)
        except NotAssigned:
            error = "This unit is no longer in your queue."
        except Conflict as exc:
            conflict = exc
        else:
            messages.success(request, "Submitted." if body["submit"] else "Saved.")
            if body["submit"]:
                return redirect("open_code_next", project.slug)
            return redirect("open_code_unit", project.slug, unit.pk)
        coding = Coding.objects.filter(unit=unit, coder=request.user).first()
    state = oc.open_state_of(coding)
    posts = _posts_for(unit)
    quotes = [{**q, "code": c["text"]} for c in state["open_codes"] for q in c["quotes"]]
    typed = request.POST.get("open_codes") if request.method == "POST" and not conflict else None
    context = {
        "project": project,
        "unit": unit,
        "thread": unit.thread,
        "posts": posts,
        "post_texts": [{"id": p.pk, "text": p.plain_text} for p in posts],
        "quotes_json": request.POST.get("quotes", "") if error else json.dumps(quotes),
        "can_code": can_code,
        "assigned": assigned,
        "state": state,
        "codes_text": typed
        if typed is not None
        else "\n".join(c["text"] for c in state["open_codes"]),
        "memo": request.POST.get("memo", state["memo"]) if error else state["memo"],
        "revision": coding.revision if coding else 0,
        "suggestions": oc.suggestions(project, request.user, limit=200) if can_code else [],
        "error": error,
        "conflict": conflict,
    }
    return render(request, "coding/open_code_unit.html", context)


def _with_quotes(lines: list[str], raw: str) -> list[dict]:
    """The typed codes with the quotes the page attached to them (by code text)."""
    codes = [{"text": line, "quotes": []} for line in lines]
    if not raw.strip():
        return codes
    try:
        quotes = json.loads(raw)
    except json.JSONDecodeError:
        raise CodingInputError("The quotes could not be read; reload the page.") from None
    if not isinstance(quotes, list):
        raise CodingInputError("The quotes could not be read; reload the page.")
    by_text = {oc.normalize(c["text"]): c for c in codes}
    for n, quote in enumerate(quotes, start=1):
        if not isinstance(quote, dict) or not isinstance(quote.get("code"), str):
            raise CodingInputError(f"Quote {n} names no open code.")
        target = by_text.get(oc.normalize(quote["code"]))
        if target is None:
            raise CodingInputError(
                f"Quote {n} is for '{quote['code']}', which is no longer among your codes."
            )
        target["quotes"].append({k: quote.get(k) for k in ("post", "start", "end", "text")})
    return codes


@login_required
@require_GET
def open_code_next(request: HttpRequest, slug: str) -> HttpResponse:
    """The first unit of the user's queue still to do, on the open-coding form."""
    project = get_project_for_user(request, slug)
    if project.status != Project.Status.OPEN:
        messages.info(request, "This project is closed for coding.")
        return redirect("project_detail", project.slug)
    following = (
        Assignment.objects.filter(
            unit__project=project, coder=request.user, status=Assignment.Status.PENDING
        )
        .order_by("unit__position", "unit_id")
        .first()
    )
    if following is None:
        messages.success(request, "All your units are done. Thank you!")
        return redirect("project_detail", project.slug)
    return redirect("open_code_unit", project.slug, following.unit_id)


def _board_context(project: Project) -> dict:
    data = oc.board(project)
    return {
        "project": project,
        **data,
        "events": list(
            BoardEvent.objects.filter(project=project)
            .select_related("user")
            .order_by("-at", "-id")[:15]
        ),
        "coding_modes": Project.CodingMode.choices,
        "autocomplete_choices": Project.OpenAutocomplete.choices,
        "versions": list(
            CodebookVersion.objects.filter(open_code_mappings__project=project)
            .select_related("codebook")
            .distinct()
            .order_by("-id")
        ),
    }


@login_required
@require_GET
def affinity_board(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request, slug, admin=True)
    oc.sync_cards(project)
    template = "coding/affinity_board.html"
    if request.htmx:
        template += "#board"
    return render(request, template, _board_context(project))


BOARD_ACTIONS = {"group", "edit-group", "move", "rename", "merge"}


@login_required
@require_POST
def board_action(request: HttpRequest, slug: str) -> HttpResponse:
    """One change to the board; the board (fragment for htmx) shows the outcome."""
    project = get_project_for_user(request, slug, admin=True)
    action, post, user = request.POST.get("action", ""), request.POST, request.user
    problem = ""
    try:
        if action == "group":
            oc.create_group(
                project,
                user,
                post.get("name", ""),
                parent_id=post.get("parent") or None,
                definition=post.get("definition", ""),
            )
        elif action == "edit-group":
            oc.edit_group(
                project,
                user,
                post.get("group"),
                post.get("revision"),
                name=post.get("name", ""),
                definition=post.get("definition", ""),
            )
        elif action == "move":
            oc.move_card(project, user, post.get("card"), post.get("revision"), post.get("group"))
        elif action == "rename":
            oc.rename_card(project, user, post.get("card"), post.get("revision"), post.get("label"))
        elif action == "merge":
            oc.merge_cards(
                project,
                user,
                post.get("card"),
                post.get("revision"),
                post.get("into"),
                post.get("into_revision"),
            )
        elif action == "settings":
            oc.set_open_settings(
                project,
                user,
                coding_mode=post.get("coding_mode", ""),
                autocomplete=post.get("open_autocomplete", ""),
            )
        else:
            problem = f"Unknown board action '{action[:30]}'."
    except (oc.BoardError, oc.BoardConflict) as exc:
        problem = str(exc)
    context = {**_board_context(project), "problem": problem}
    template = "coding/affinity_board.html"
    if request.htmx:
        return render(request, template + "#board", context, status=409 if problem else 200)
    if problem:
        messages.error(request, problem)
    return redirect("affinity_board", project.slug)


@login_required
@require_POST
def board_codebook(request: HttpRequest, slug: str) -> HttpResponse:
    """Make a codebook (or its next version) from the board and apply it to the units."""
    project = get_project_for_user(request, slug, admin=True)
    try:
        version = oc.board_to_codebook(project, request.user, request.POST.get("name", ""))
        result = oc.apply_codebook(project, request.user, version)
    except oc.BoardError as exc:
        messages.error(request, str(exc))
        return redirect("affinity_board", project.slug)
    audit.record(request, audit.Action.CODEBOOK, version, op="from_board", project=project)
    messages.success(
        request,
        f"{version} made from the board; {result['provisional']} provisional codes on "
        f"{result['units']} units. The project now codes with {version}.",
    )
    return redirect("open_provisional", project.slug)


@login_required
@require_http_methods(["GET", "POST"])
def open_provisional(request: HttpRequest, slug: str) -> HttpResponse:
    """Each open-coded unit with its provisional codes; accepting makes a gold label."""
    project = get_project_for_user(request, slug, admin=True)
    if request.method == "POST":
        unit_id = request.POST.get("unit", "")
        unit = (
            Unit.objects.filter(project=project, pk=int(unit_id)).first()
            if unit_id.isdecimal()
            else None
        )
        if unit is None:
            raise Http404("No such unit.")
        accepted = {int(v) for v in request.POST.getlist("accept") if v.isdecimal()}
        base = request.POST.get("base_revision", "")
        base_revision = int(base) if base.isdecimal() and len(base) < 10 else None
        try:
            oc.review_unit(project, unit, request.user, accepted, base_revision=base_revision)
        except Exception as exc:  # adjudication conflicts and errors are shown, not raised
            messages.error(request, f"Unit {unit.pk}: {exc}")
        else:
            messages.success(request, f"Unit {unit.pk} reviewed.")
        return redirect("open_provisional", project.slug)
    by_unit = oc.provisional_by_unit(project)
    units = list(
        Unit.objects.filter(project=project, codings__open_codes__isnull=False)
        .select_related("thread")
        .distinct()
        .order_by("position", "id")
    )
    revisions = dict(GoldLabel.objects.filter(unit__in=units).values_list("unit_id", "revision"))
    for unit in units:
        unit.provisional_codes = by_unit.get(unit.pk, [])
        unit.gold_revision = revisions.get(unit.pk)
    return render(request, "coding/open_provisional.html", {"project": project, "units": units})


def _csv_response(filename: str, header: list[str], rows) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_guard(v) for v in row])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _guard(value):
    """Keep spreadsheet programs from reading a cell as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@login_required
@require_GET
def open_codes_csv(request: HttpRequest, slug: str) -> HttpResponse:
    """Every open code, one row each (the long layout ``import_open_codes`` reads back)."""
    project = get_project_for_user(request, slug, admin=True)
    paths = oc.card_paths(project)
    rows = (
        OpenCode.objects.filter(coding__unit__project=project)
        .order_by("coding__unit__position", "coding__unit_id", "coding__coder__username", "order")
        .values_list(
            "coding__unit_id",
            "coding__unit__thread__source__name",
            "coding__unit__thread__external_id",
            "coding__coder__username",
            "text",
            "normalized",
        )
    )
    return _csv_response(
        f"{project.slug}-open-codes.csv",
        ["unit", "source", "thread_id", "coder", "open_code", "normalized", "group_path"],
        ([*row, oc.PATH_SEPARATOR.join(paths.get(row[5], []))] for row in rows),
    )


@login_required
@require_GET
def open_mapping_csv(request: HttpRequest, slug: str) -> HttpResponse:
    """Open code -> group path, from the board (and the code key once a codebook exists)."""
    project = get_project_for_user(request, slug, admin=True)
    keys = {
        m.normalized: m.code.key
        for m in OpenCodeMapping.objects.filter(
            project=project, version_id=project.codebook_version_id
        ).select_related("code")
    }
    board = oc.board(project)
    labels = {}
    for row in board["cards"]:
        for text in row.texts:
            labels[oc.normalize(text)] = row.card.label
    paths = oc.card_paths(project)
    return _csv_response(
        f"{project.slug}-open-code-mapping.csv",
        ["open_code", "card", "group_path", "code_key"],
        (
            [norm, labels.get(norm, ""), oc.PATH_SEPARATOR.join(path), keys.get(norm, "")]
            for norm, path in sorted(paths.items())
        ),
    )


IMAGE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


@login_required
@require_GET
def board_image(request: HttpRequest, slug: str, fmt: str) -> HttpResponse:
    """The board drawn for a paper: groups as columns of their open codes, with counts."""
    project = get_project_for_user(request, slug, admin=True)
    if fmt not in IMAGE_TYPES:
        raise Http404("Choose png or svg.")
    data = oc.board_figure(oc.board(project), fmt)
    response = HttpResponse(data, content_type=IMAGE_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-board.{fmt}"'
    return response
