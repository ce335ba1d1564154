"""Plain helpers that build test data."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth import get_user_model

from coding.importers.html import content_hash, html_to_text, sanitize_html
from coding.models import ForumSource, Membership, Post, Project, Role, Thread

PASSWORD = "a-long-test-password-1"


def make_user(username: str, *, is_staff: bool = False, password: str = PASSWORD):
    return get_user_model().objects.create_user(
        username=username, password=password, is_staff=is_staff
    )


def make_source(name: str = "Test forum", base_url: str = "https://forum.test") -> ForumSource:
    return ForumSource.objects.get_or_create(name=name, defaults={"base_url": base_url})[0]


def make_thread(
    title: str = "How do I fine-tune BERT?",
    *,
    source: ForumSource | None = None,
    external_id: int = 1,
    category: str = "Beginners",
    posts: list[str] | None = None,
    created_at: datetime | None = None,
) -> Thread:
    source = source or make_source()
    created_at = created_at or datetime(2022, 3, 1, 12, 0, tzinfo=UTC)
    bodies = posts if posts is not None else ["<p>Question text.</p>", "<p>An answer.</p>"]
    thread = Thread.objects.create(
        source=source,
        external_id=external_id,
        title=title,
        category=category,
        created_at=created_at,
        posts_count=len(bodies),
    )
    for number, body in enumerate(bodies, start=1):
        html = sanitize_html(body)
        Post.objects.create(
            thread=thread,
            external_id=external_id * 1000 + number,
            post_number=number,
            author=f"user{number}",
            created_at=created_at,
            html=html,
            plain_text=html_to_text(html),
            content_hash=content_hash(html),
        )
    return thread


def make_project(slug: str = "study", *, admin=None, annotators=()) -> Project:
    creator = admin or make_user(f"{slug}-owner")
    project = Project.objects.create(name=slug.title(), slug=slug, created_by=creator)
    if admin:
        Membership.objects.create(project=project, user=admin, role=Role.ADMIN)
    for user in annotators:
        Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
    return project
