"""The corpus: forum sources, threads, posts, and the runs that import them.

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


class ImportRun(models.Model):
    """One import (a file, a live forum, the Hub) with its progress, kept in the database.

    Any page can show a run's progress and it survives a page reload or a worker restart.
    At most one run per source is active at a time (a partial unique constraint).
    """

    class Kind(models.TextChoices):
        FILE = "file", "File"
        DISCOURSE = "discourse", "Discourse forum"
        HUB = "hub", "Hugging Face Hub"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        FETCHING = "fetching", "Fetching"
        WAITING = "waiting", "Waiting on rate limit"
        WRITING = "writing", "Writing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATES = ("queued", "fetching", "waiting", "writing")

    source = models.ForeignKey(
        ForumSource, on_delete=models.CASCADE, related_name="import_runs", null=True, blank=True
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    message = models.TextField(blank=True)
    topics_total = models.PositiveIntegerField(null=True, blank=True)
    topics_done = models.PositiveIntegerField(default=0)
    requests_made = models.PositiveIntegerField(default=0)
    wait_seconds = models.FloatField(default=0)
    threads_new = models.PositiveIntegerField(default=0)
    threads_updated = models.PositiveIntegerField(default=0)
    threads_unchanged = models.PositiveIntegerField(default=0)
    posts_new = models.PositiveIntegerField(default=0)
    posts_updated = models.PositiveIntegerField(default=0)
    posts_unchanged = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source"],
                condition=Q(state__in=("queued", "fetching", "waiting", "writing")),
                name="one_active_import_per_source",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} import {self.pk} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    def summary_line(self) -> str:
        return (
            f"threads: {self.threads_new} new, {self.threads_updated} updated, "
            f"{self.threads_unchanged} unchanged; posts: {self.posts_new} new, "
            f"{self.posts_updated} updated, {self.posts_unchanged} unchanged"
        )
