"""The coding screen: one unit, the codebook beside it, saves that never overwrite silently.

Annotators open only units assigned to them and see only their own coding; project
admins may open any unit of the project and read every coder's coding (they code only
units assigned to them). Everyone else gets a 404.
"""

from __future__ import annotations

import json
from functools import lru_cache

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_http_methods

from .. import codings
from ..access import get_project_for_user, get_unit_for_user, login_required_json
from ..assignment import next_unit_for, next_unit_id
from ..frame import render_framed
from ..models import Assignment, CodingEvent, Project, Role, Unit
from ..templatetags.stored_html import Prerendered, ScriptJSON, json_script_with, unit_posts


class CodePanel:
    """The codebook list rendered once per codebook content (a version's codes do not
    change, and the rows are the cache key), with each checkbox's state filled in per page."""

    def __init__(self, codes: list) -> None:
        self.codes = codes
        self.codable = {c.key for c in codes if c.codable}
        self.names = {c.key: c.name for c in codes}
        self.initial = [
            {"key": c.key, "name": c.name, "shortcut": c.shortcut, "codable": c.codable}
            for c in codes
        ]
        html = render_to_string(
            "coding/partials/code_list.html", {"codes": codes, "mark": Prerendered.MARK}
        )
        self.fragment = Prerendered(html)
        self.keys = [c.key for c in codes if c.codable]
        self.initial_json = ScriptJSON(self.initial)

    def html(self, checked: list[str], *, disabled: bool) -> SafeString:
        on = set(checked)
        words = [
            (" checked" if key in on else "") + (" disabled" if disabled else "")
            for key in self.keys
        ]
        return self.fragment.fill(words)


@lru_cache(maxsize=32)
def _code_panel(rows: tuple[tuple, ...]) -> CodePanel:
    return CodePanel(codings.codes_from_rows(rows))


@login_required_json
@require_http_methods(["GET", "POST"])
def code_unit(request: HttpRequest, slug: str, unit_id: int) -> HttpResponse:
    if request.method == "POST":
        return _save(request, *get_unit_for_user(request, slug, unit_id, to_save=True))
    project, unit = get_unit_for_user(request, slug, unit_id)
    assigned = unit.my_status not in (None, Assignment.Status.RETURNED)
    can_code = assigned and project.status == Project.Status.OPEN
    if assigned:
        posts, mine = codings.posts_and_coding(unit, request.user)
    else:
        posts, mine = codings.posts_for_unit(unit), []
    state = codings.state_of(mine[0] if mine else None)
    others = []
    if project.user_role == Role.ADMIN:
        others = [c for c in codings.codings_for_unit(unit) if c.coder_id != request.user.pk]
    panel = _code_panel(codings.code_rows(project))
    kept, retired = codings.without_retired_codes(state, panel.codable)
    if can_code:
        state = kept
    for coding in others:
        coding.code_names = [panel.names.get(key, key) for key in coding.state["codes"]]
    initial = {
        "unit": unit.pk,
        "user": request.user.pk,
        "canCode": can_code,
        "saveUrl": _unit_url(project.slug, unit.pk),
        "nextUrl": _queue_url(project.slug),
        "revision": mine[0].revision if mine else 0,
        "state": state,
        "posts": [
            {"id": p.pk, "number": p.post_number, "text": p.plain_text, "quotable": p.is_unit}
            for p in posts
        ],
    }
    context = {
        "project": project,
        "unit": unit,
        "thread": unit.thread,
        "posts_html": unit_posts(posts),
        "codes": panel.codes,
        "code_list": panel.html(state["codes"], disabled=not can_code),
        "state": state,
        "can_code": can_code,
        "assigned": assigned,
        "closed": project.status != Project.Status.OPEN,
        "others": others,
        "progress": unit.my_queue if can_code else None,
        "coding_data": json_script_with(initial, "codes", panel.initial_json, "coding-data"),
        "is_admin": project.user_role == Role.ADMIN,
        "retired": retired,
    }
    return render_framed(request, "coding/code_unit.html", context)


def _save(request: HttpRequest, project: Project, unit: Unit) -> JsonResponse:
    if unit.my_status is None:
        return JsonResponse({"error": "This unit is not in your queue."}, status=403)
    if project.status != Project.Status.OPEN:
        return JsonResponse({"error": "This project is closed for coding."}, status=403)
    try:
        payload = codings.parse_input(json.loads(request.body or b"null"))
        result = codings.save_coding(project, unit, request.user, payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return JsonResponse({"error": "The request body is not valid JSON."}, status=400)
    except codings.CodingInputError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except codings.NotAssigned:
        return JsonResponse({"error": "This unit is no longer in your queue."}, status=403)
    except codings.Conflict as conflict:
        return JsonResponse(
            {
                "error": (
                    "This coding was changed elsewhere (another tab or window) since you "
                    "opened it. Reload to see the stored version, or overwrite it with yours."
                ),
                "conflict": True,
                "revision": conflict.revision,
                "stored": conflict.stored,
            },
            status=409,
        )
    return JsonResponse(
        {
            "saved": result.saved,
            "revision": result.coding.revision,
            "state": result.state,
            "next": _next_url(project, request.user, result) if payload.submit else None,
        }
    )


def _next_url(project: Project, user, result: codings.SaveResult) -> str:
    """Straight to the next unit (saving the coder a redirect), or the queue-done page."""
    unit_id = result.next_unit_id if result.next_unit_known else next_unit_id(project, user)
    if unit_id is None:
        return _queue_url(project.slug)
    return _unit_url(project.slug, unit_id)


def _queue_url(slug: str) -> str:
    """The project's next-unit URL, on every page of the coding screen."""
    return _project_urls(get_script_prefix(), slug)[0]


def _unit_url(slug: str, unit_id: int) -> str:
    """``reverse("code_unit", args=[slug, unit_id])``, from the project's URLs kept."""
    _, head, tail = _project_urls(get_script_prefix(), slug)
    return f"{head}{int(unit_id)}{tail}"


@receiver(setting_changed, dispatch_uid="coding_screen_urls")
def _forget_urls(setting, **kwargs) -> None:
    if setting == "ROOT_URLCONF":
        _project_urls.cache_clear()


@lru_cache(maxsize=256)
def _project_urls(prefix: str, slug: str) -> tuple[str, str, str]:
    """The project's next-unit URL, and its units' coding URL split where the unit's id
    goes: the text two reversed URLs share before and after the one digit they differ in
    (checked against a third, so a change of the URL's pattern cannot pass unnoticed)."""
    zero, one = (reverse("code_unit", args=[slug, n]) for n in (0, 1))
    at = next(n for n, (a, b) in enumerate(zip(zero, one, strict=True)) if a != b)
    head, tail = zero[:at], zero[at + 1 :]
    if reverse("code_unit", args=[slug, 90817]) != f"{head}90817{tail}":
        raise ValueError("the coding URL does not end its unit's id where it begins")
    return reverse("code_next", args=[slug]), head, tail


@login_required
@require_GET
def code_next(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request, slug)
    if project.status != Project.Status.OPEN:
        messages.info(request, "This project is closed for coding.")
        return redirect(f"/projects/{project.slug}/")
    unit = next_unit_for(project, request.user)
    if unit is None:
        messages.success(request, "Your queue is done: every unit assigned to you is coded.")
        return redirect(f"/projects/{project.slug}/")
    return redirect("code_unit", slug=project.slug, unit_id=unit.pk)


@login_required
@require_GET
def coding_history(request: HttpRequest, slug: str, unit_id: int) -> HttpResponse:
    """Every change to every coding of the unit: who, when, before and after (admins)."""
    project = get_project_for_user(request, slug, admin=True)
    unit = (
        Unit.objects.select_related("thread").filter(project=project, pk=unit_id).order_by("pk")
    ).first()
    if unit is None:
        raise Http404("No such unit.")
    events = (
        CodingEvent.objects.filter(coding__unit=unit)
        .select_related("user", "coding__coder")
        .order_by("at", "id")
    )
    return render(
        request,
        "coding/coding_history.html",
        {"project": project, "unit": unit, "events": events},
    )
