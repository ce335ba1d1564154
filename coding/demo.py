"""Demo accounts and a demo project, for trying the app on a laptop."""

from __future__ import annotations

import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from .models import Membership, Project, Role

DEMO_STAFF = "admin"
DEMO_ANNOTATORS = ("alice", "bob", "carol")
DEMO_PROJECT_SLUG = "demo"


def read_credentials(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text().splitlines():
        name, sep, password = line.partition(" ")
        if sep and name and not name.startswith("#"):
            found[name] = password.strip()
    return found


def write_credentials(path: Path, credentials: dict[str, str]) -> None:
    lines = ["# Demo accounts (username password); debug only, git-ignored."]
    lines += [f"{name} {password}" for name, password in credentials.items()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


@transaction.atomic
def seed_demo(known: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Create the demo accounts and project if missing; returns (credentials, created).

    A password is set only for an account that is new or whose password is not
    known, so running it again changes nothing.
    """
    User = get_user_model()
    credentials: dict[str, str] = {}
    created: list[str] = []
    for name in (DEMO_STAFF, *DEMO_ANNOTATORS):
        user, is_new = User.objects.get_or_create(
            username=name, defaults={"email": f"{name}@example.org"}
        )
        password = known.get(name)
        if is_new or not password or not user.check_password(password):
            password = secrets.token_urlsafe(12)
            user.set_password(password)
        if name == DEMO_STAFF:
            user.is_staff = True
            user.is_superuser = True
        user.save()
        credentials[name] = password
        if is_new:
            created.append(name)
    staff = User.objects.get(username=DEMO_STAFF)
    project, _ = Project.objects.get_or_create(
        slug=DEMO_PROJECT_SLUG,
        defaults={
            "name": "Demo project",
            "description": "A project to try the app with the demo accounts.",
            "created_by": staff,
        },
    )
    Membership.objects.get_or_create(project=project, user=staff, defaults={"role": Role.ADMIN})
    for name in DEMO_ANNOTATORS:
        Membership.objects.get_or_create(
            project=project,
            user=User.objects.get(username=name),
            defaults={"role": Role.ANNOTATOR},
        )
    return credentials, created


def pin_demo_codebook(version) -> bool:
    """Pin the demo project to ``version`` if it exists and has no codebook yet."""
    from .codebook import pin_project

    project = Project.objects.filter(slug=DEMO_PROJECT_SLUG, codebook_version=None).first()
    if project is None:
        return False
    pin_project(project, version, user=project.created_by)
    return True
