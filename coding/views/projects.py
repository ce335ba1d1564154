"""Projects: set-up, members, sampling, assignment and progress.

Admins see everyone's work in their project; an annotator sees only their own queue,
progress and codings (blind coding).
"""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..access import get_project_for_user, staff_required
from ..assignment import AssignmentError, assign_units, reassign, remove_member
from ..models import (
    Assignment,
    CodeApplication,
    CodebookVersion,
    Coding,
    ForumSource,
    Membership,
    Post,
    Project,
    Role,
    Unit,
)
from ..paging import page_of
from ..progress import memberships_with_progress, project_progress
from ..project_forms import MemberForm, ProjectForm, ReassignForm, SampleForm
from ..sampling import (
    SamplingError,
    draw_round,
    population_count,
    sample_size,
    selected_threads,
)

QUEUE_PREVIEW = 20
UNITS_PER_PAGE = 100


@require_GET
@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    memberships = memberships_with_progress(request.user)
    return render(request, "coding/project_list.html", {"memberships": memberships})


@staff_required
@require_http_methods(["GET", "POST"])
def project_create(request: HttpRequest) -> HttpResponse:
    form = ProjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            project = form.save(commit=False)
            project.created_by = request.user
            project.seed = secrets.randbelow(2**31)
            project.save()
            Membership.objects.create(project=project, user=request.user, role=Role.ADMIN)
        messages.success(request, f"Project {project.name} created. Add annotators, then sample.")
        return redirect("project_detail", slug=project.slug)
    context = {
        "form": form,
        "has_codebook": CodebookVersion.objects.exists(),
        **_matching({}),
    }
    return render(request, "coding/project_form.html", context)


def _matching(selection: dict) -> dict:
    threads = selected_threads(Project(selection=selection))
    return {
        "matching_threads": threads.count(),
        "matching_posts": Post.objects.filter(thread__in=threads).count(),
    }


@staff_required
@require_GET
def project_selection_count(request: HttpRequest) -> HttpResponse:
    """How many threads (and posts) the corpus selection being filled in matches."""
    form = ProjectForm(request.GET)
    form.is_valid()
    context = _matching(form.selection())
    return render(request, "coding/project_form.html#selection-count", context)


def _project(request: HttpRequest, slug: str, *, admin: bool = False) -> Project:
    return get_project_for_user(request, slug, admin=admin)


@require_GET
@login_required
def project_detail(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug)
    if project.user_role == Role.ADMIN:
        return render(request, "coding/project_detail.html", _admin_context(project))
    queue = (
        Assignment.objects.filter(
            unit__project=project, coder=request.user, status=Assignment.Status.PENDING
        )
        .select_related("unit__thread", "unit__post", "unit__round")
        .order_by("unit__round__order", "unit__position", "unit_id")[:QUEUE_PREVIEW]
    )
    context = {
        "project": project,
        "progress": project_progress(project, coder=request.user),
        "queue": queue,
    }
    return render(request, "coding/project_queue.html", context)


def _admin_context(project: Project, sample_form: SampleForm | None = None) -> dict:
    left = population_count(project)
    return {
        "project": project,
        "progress": project_progress(project),
        "left": left,
        "overlap_pct": project.overlap * 100,
        "source_names": _source_names(project.selection),
        **_calculator(left, 0.95, 0.05),
        "sample_form": sample_form or SampleForm(),
    }


def _source_names(selection: dict) -> list[str]:
    if not selection.get("sources"):
        return []
    return list(
        ForumSource.objects.filter(pk__in=selection["sources"]).values_list("name", flat=True)
    )


def _calculator(left: int, confidence: float, margin: float) -> dict:
    return {
        "left": left,
        "calculated": sample_size(left, confidence, margin),
        "confidence_pct": confidence * 100,
        "margin_pct": margin * 100,
    }


@require_GET
@login_required
def project_sample_size(request: HttpRequest, slug: str) -> HttpResponse:
    """The calculator: n for the confidence and margin in the sampling form."""
    project = _project(request, slug, admin=True)
    form = SampleForm(request.GET)
    form.is_valid()
    confidence = form.cleaned_data.get("confidence") or 0.95
    margin = form.cleaned_data.get("margin") or 0.05
    left = population_count(project)
    context = {
        "project": project,
        **_calculator(left, confidence, margin),
        "margin_error": form.errors.get("margin"),
    }
    return render(request, "coding/project_detail.html#sample-size", context)


@require_POST
@login_required
def project_sample(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug, admin=True)
    form = SampleForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            with transaction.atomic():
                result = draw_round(
                    project,
                    confidence=data["confidence"],
                    margin=data["margin"],
                    size=data["size"],
                    stratify=data["stratify"] or None,
                    seed=data["seed"],
                    round_name=data["round_name"],
                )
                assigned = assign_units(project)
        except SamplingError as error:
            form.add_error(None, str(error))
        else:
            messages.success(
                request,
                f"Sampled {result.sampled} of {result.population} units into round "
                f"{result.round.name} (seed {result.round.seed}); "
                f"{assigned.assigned} assignments made.",
            )
            _warn_short(request, assigned.short)
            return redirect("project_detail", slug=project.slug)
    context = _admin_context(project, sample_form=form)
    return render(request, "coding/project_detail.html", context, status=400)


def _warn_short(request: HttpRequest, short: int) -> None:
    if short:
        messages.warning(
            request,
            f"{short} coder slots are still open: the project has too few annotators. "
            "Add annotators, then assign again.",
        )


@require_POST
@login_required
def project_assign(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug, admin=True)
    try:
        result = assign_units(project)
    except AssignmentError as error:
        messages.error(request, f"Nothing assigned: {error}.")
    else:
        messages.success(request, f"{result.assigned} assignments made.")
        _warn_short(request, result.short)
    return redirect("project_detail", slug=project.slug)


@require_http_methods(["GET", "POST"])
@login_required
def project_members(request: HttpRequest, slug: str) -> HttpResponse:
    project = _project(request, slug, admin=True)
    form = MemberForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        user = form.cleaned_data["username"]
        try:
            with transaction.atomic():
                Membership.objects.create(
                    project=project, user=user, role=form.cleaned_data["role"]
                )
        except IntegrityError:
            # Another admin added them a moment ago.
            form.add_error("username", f"{user.username} is already a member of this project.")
        else:
            messages.success(request, f"{user.username} added as {form.cleaned_data['role']}.")
            return redirect("project_members", slug=project.slug)
    context = {"project": project, "progress": project_progress(project), "form": form}
    return render(
        request, "coding/project_members.html", context, status=400 if form.errors else 200
    )


@require_POST
@login_required
def member_remove(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    project = _project(request, slug, admin=True)
    user = get_object_or_404(get_user_model(), pk=user_id)
    try:
        result = remove_member(project, user)
    except AssignmentError as error:
        messages.error(request, str(error))
    else:
        handed = (
            "the project is closed, so they stay unassigned"
            if result.closed
            else f"{result.assigned} assignments made"
        )
        messages.success(
            request,
            f"{user.username} removed; their finished codings are kept; "
            f"{result.returned} unfinished units returned ({handed}).",
        )
        _warn_short(request, result.short)
    return redirect("project_members", slug=project.slug)


@require_GET
@login_required
def project_units(request: HttpRequest, slug: str) -> HttpResponse:
    """Units with their coders and codes: everyone's for admins, one's own otherwise."""
    project = _project(request, slug)
    is_admin = project.user_role == Role.ADMIN
    assignments = Assignment.objects.exclude(status=Assignment.Status.RETURNED).select_related(
        "coder"
    )
    codings = Coding.objects.select_related("coder").prefetch_related(
        Prefetch("applications", CodeApplication.objects.select_related("code"))
    )
    units = Unit.objects.filter(project=project)
    if not is_admin:
        mine = Q(assignments__coder=request.user) & ~Q(
            assignments__status=Assignment.Status.RETURNED
        )
        units = units.filter(mine)
        assignments = assignments.filter(coder=request.user)
        codings = codings.filter(coder=request.user)
    units = (
        units.select_related("thread", "post", "round")
        .prefetch_related(
            Prefetch("assignments", assignments, to_attr="active_assignments"),
            Prefetch("codings", codings, to_attr="visible_codings"),
        )
        .order_by("round__order", "position", "id")
    )
    page = page_of(Paginator(units, UNITS_PER_PAGE), request.GET.get("page"))
    context = {"project": project, "page": page, "is_admin": is_admin}
    return render(request, "coding/project_units.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def unit_reassign(request: HttpRequest, slug: str, unit_id: int) -> HttpResponse:
    project = _project(request, slug, admin=True)
    unit = get_object_or_404(Unit.objects.select_related("thread"), pk=unit_id, project=project)
    pending = [
        a.coder
        for a in unit.assignments.filter(status=Assignment.Status.PENDING).select_related("coder")
    ]
    annotators = [
        m.user
        for m in project.memberships.filter(role=Role.ANNOTATOR)
        .select_related("user")
        .order_by("user__username")
    ]
    form = ReassignForm(request.POST or None, current=pending, annotators=annotators)
    if request.method == "POST" and form.is_valid():
        users = {u.pk: u for u in [*pending, *annotators]}
        try:
            reassign(
                unit, users[form.cleaned_data["from_coder"]], users[form.cleaned_data["to_coder"]]
            )
        except AssignmentError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, "Unit reassigned.")
            return redirect("project_units", slug=project.slug)
    context = {"project": project, "unit": unit, "form": form, "pending": pending}
    return render(
        request, "coding/project_reassign.html", context, status=400 if form.errors else 200
    )
