"""Who may see and do what: one lookup per object, used by every view.

Outsiders get a 404 for a project (its existence is not revealed); members whose role
is too low for the action get a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse

from .models import Codebook, Membership, Project, Role


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
