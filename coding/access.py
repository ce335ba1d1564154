"""Who may see and do what: one lookup per object, used by every view.

Outsiders get a 404 for a project (its existence is not revealed); members whose role
is too low for the action get a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

from . import statements
from .models import Codebook, ForumSource, Membership, Project, Role, Round, Thread, Unit


def get_project_for_user(request: HttpRequest, slug: str, *, admin: bool = False) -> Project:
    """The project named by ``slug`` if the user is a member (an admin when ``admin``)."""
    project = Project.objects.filter(slug=slug).first()
    role = project.role_of(request.user) if project else None
    if role is None:
        raise Http404("No such project.")
    if admin and role != Role.ADMIN:
        raise PermissionDenied("Only the project's admins may do this.")
    project.user_role = role
    return project


_UNIT_FOR_USER = """
SELECT p.id, p.name, p.slug, p.status, p.codebook_version_id, m.role,
       u.id, u.project_id, u.round_id, u.thread_id, u.post_id, u.position,
       r.id, r.name,
       t.id, t.title, t.category, t.url, t.created_at, t.source_id,
       s.id, s.name,
       a.status, q.total, q.done, v.created_at
FROM coding_project p
JOIN coding_membership m ON m.project_id = p.id AND m.user_id = %s
LEFT JOIN coding_unit u ON u.id = %s AND u.project_id = p.id
LEFT JOIN coding_round r ON r.id = u.round_id
LEFT JOIN coding_thread t ON t.id = u.thread_id
LEFT JOIN coding_forumsource s ON s.id = t.source_id
LEFT JOIN coding_assignment a ON a.unit_id = u.id AND a.coder_id = %s
LEFT JOIN coding_queuecount q ON q.project_id = p.id AND q.coder_id = %s
LEFT JOIN coding_codebookversion v ON v.id = p.codebook_version_id
WHERE p.slug = %s
"""
# What a save reads: the same rows without the thread, source, round and queue counts
# that only the page shows, the columns in the same places up to the unit's.
_UNIT_TO_SAVE = """
SELECT p.id, p.name, p.slug, p.status, p.codebook_version_id, m.role,
       u.id, u.project_id, u.round_id, u.thread_id, u.post_id, u.position,
       a.status, v.created_at
FROM coding_project p
JOIN coding_membership m ON m.project_id = p.id AND m.user_id = %s
LEFT JOIN coding_unit u ON u.id = %s AND u.project_id = p.id
LEFT JOIN coding_assignment a ON a.unit_id = u.id AND a.coder_id = %s
LEFT JOIN coding_codebookversion v ON v.id = p.codebook_version_id
WHERE p.slug = %s
"""


def get_unit_for_user(
    request: HttpRequest, slug: str, unit_id: int, *, to_save: bool = False
) -> tuple[Project, Unit]:
    """The unit of the project named by ``slug`` if the user may open it: annotators open
    the units assigned to them, the project's admins any of its units; everyone else gets
    a 404. ``unit.my_status`` is the status of the user's own assignment (None when the
    unit is not assigned to them). One statement for project, role, unit, its thread,
    source and round, the assignment, and ``unit.my_queue``: the user's queue in the
    project counted (``queue_figures``). With ``to_save``, the same checks on a statement
    that leaves out the thread, source, round and queue, which a save does not show:
    ``unit.thread`` and ``unit.round`` are then not loaded (reading them runs a query) and
    ``unit.my_queue`` is not set.
    """
    user = request.user
    if not user.is_authenticated:
        raise Http404("No such project.")
    if to_save:
        row = statements.one(_UNIT_TO_SAVE, [user.pk, unit_id, user.pk, slug])
    else:
        row = statements.one(_UNIT_FOR_USER, [user.pk, unit_id, user.pk, user.pk, slug])
    if row is None:
        raise Http404("No such project.")
    project = statements.instance(
        Project, ("id", "name", "slug", "status", "codebook_version_id"), row[0:5]
    )
    project.user_role = row[5]
    # Which version, written when: a version's codes never change once written.
    project.codebook_version_stamp = (project.codebook_version_id, row[-1])
    if row[6] is None:
        raise Http404("No such unit.")
    unit = statements.instance(
        Unit, ("id", "project_id", "round_id", "thread_id", "post_id", "position"), row[6:12]
    )
    unit.my_status = row[12] if to_save else row[22]
    if unit.my_status is None and project.user_role != Role.ADMIN:
        raise Http404("No such unit.")
    unit.project = project
    if to_save:
        return project, unit
    unit.my_queue = queue_figures(row[23], row[24])
    unit.round = statements.instance(Round, ("id", "name"), row[12:14])
    thread = statements.instance(
        Thread, ("id", "title", "category", "url", "created_at", "source_id"), row[14:20]
    )
    thread.source = statements.instance(ForumSource, ("id", "name"), row[20:22])
    unit.thread = thread
    return project, unit


def queue_figures(total: int | None, done: int | None) -> dict[str, int]:
    """A coder's progress through their queue: done of total, and the percentage."""
    total, done = total or 0, done or 0
    return {"total": total, "done": done, "percent": round(100 * done / total) if total else 0}


def get_codebook_for_user(request: HttpRequest, pk: int, *, edit: bool = False) -> Codebook:
    """The codebook ``pk``; every user may read it, and with ``edit`` the user must be staff
    or an admin of a project pinned to one of its versions. Sets ``user_can_edit``."""
    codebook = Codebook.objects.filter(pk=pk).first()
    if codebook is None or not request.user.is_authenticated:
        raise Http404("No such codebook.")
    codebook.user_can_edit = (
        request.user.is_staff
        or Membership.objects.filter(
            user=request.user, role=Role.ADMIN, project__codebook_version__codebook=codebook
        ).exists()
    )
    if edit and not codebook.user_can_edit:
        raise PermissionDenied(
            "Only site staff and admins of a project using this codebook may edit it."
        )
    return codebook


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Site staff only: sources, imports, codebooks and accounts."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("Only site staff may do this.")
        return view(request, *args, **kwargs)

    return wrapper


SIGNED_OUT = (
    "Not saved: you are signed out. Your changes are kept in this browser; reload the "
    "page, sign in, and they are restored."
)


def login_required_json(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``login_required`` for a view that also answers JSON requests: a signed-out JSON
    request gets a 401 with a message instead of a redirect to the sign-in page, which a
    script would follow and take for an answer."""
    page_view = login_required(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated and request.content_type == "application/json":
            return JsonResponse({"error": SIGNED_OUT, "signed_out": True}, status=401)
        return page_view(request, *args, **kwargs)

    return wrapper
