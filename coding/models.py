"""The corpus (forum sources, threads, posts) and projects with their members.

All times are stored in UTC. Post text is kept twice: the sanitized HTML that is shown
to coders, and a plain-text copy that search, quotes and mention counts work on.
Quote offsets are Unicode code points into ``Post.plain_text``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse


class ForumSource(models.Model):
    """A forum the corpus comes from; file and live imports of one forum share it."""

    name = models.CharField(max_length=200, unique=True)
    base_url = models.URLField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["base_url"], condition=~Q(base_url=""), name="unique_source_base_url"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def topic_url(self, external_id: int, slug: str = "") -> str:
        if not self.base_url:
            return ""
        return f"{self.base_url.rstrip('/')}/t/{slug or 'topic'}/{external_id}"


class Tag(models.Model):
    name = models.CharField(max_length=200, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Thread(models.Model):
    """A forum topic: the default unit of coding."""

    source = models.ForeignKey(ForumSource, on_delete=models.PROTECT, related_name="threads")
    external_id = models.BigIntegerField(help_text="The topic id on the forum.")
    title = models.CharField(max_length=500)
    slug = models.CharField(max_length=500, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    category = models.CharField(max_length=200, blank=True, db_index=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="threads")
    created_at = models.DateTimeField(db_index=True)
    last_posted_at = models.DateTimeField(null=True, blank=True)
    bumped_at = models.DateTimeField(null=True, blank=True)
    views = models.PositiveIntegerField(default=0)
    reply_count = models.PositiveIntegerField(default=0)
    like_count = models.PositiveIntegerField(default=0)
    posts_count = models.PositiveIntegerField(default=0)
    has_accepted_answer = models.BooleanField(default=False)
    imported_at = models.DateTimeField(auto_now_add=True)
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"], name="unique_thread_per_source"
            )
        ]
        indexes = [
            models.Index(fields=["source", "category"], name="thread_source_category"),
            models.Index(fields=["source", "created_at"], name="thread_source_created"),
            models.Index(fields=["bumped_at"], name="thread_bumped"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("thread_detail", args=[self.pk])


class Post(models.Model):
    thread = models.ForeignKey(Thread, on_delete=models.CASCADE, related_name="posts")
    external_id = models.BigIntegerField(help_text="The post id on the forum.")
    post_number = models.PositiveIntegerField()
    author = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField(null=True, blank=True)
    reply_to_post_number = models.PositiveIntegerField(null=True, blank=True)
    is_accepted_answer = models.BooleanField(default=False)
    html = models.TextField(help_text="Sanitized HTML, safe to show.")
    plain_text = models.TextField(help_text="Plain text; quote offsets index into it.")
    content_hash = models.CharField(max_length=64)
    deleted_upstream = models.BooleanField(default=False)

    class Meta:
        ordering = ["thread", "post_number"]
        constraints = [
            models.UniqueConstraint(fields=["thread", "post_number"], name="unique_post_number"),
            models.UniqueConstraint(fields=["thread", "external_id"], name="unique_post_id"),
        ]
        indexes = [models.Index(fields=["created_at"], name="post_created")]

    def __str__(self) -> str:
        return f"{self.thread_id}#{self.post_number}"


class Role(models.TextChoices):
    ADMIN = "admin", "Project admin"
    ANNOTATOR = "annotator", "Annotator"


class ProjectQuerySet(models.QuerySet):
    def for_user(self, user) -> ProjectQuerySet:
        """Projects the user is a member of, in any role."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user).distinct()


class Project(models.Model):
    """A coding study: members with roles; later issues add its codebook and units."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def role_of(self, user) -> str | None:
        """The user's role here, or None for an outsider."""
        if not user.is_authenticated:
            return None
        return self.memberships.filter(user=user).values_list("role", flat=True).first()


class Membership(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.ANNOTATOR)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="unique_membership")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"
