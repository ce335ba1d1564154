"""Background tasks, run by ``manage.py db_worker``; their progress lives in the database."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from .importers.discourse import (
    DiscourseImport,
    ImportOptions,
    check_public_host,
    claim_run,
    create_run,
)
from .models import ImportRun


@task()
def run_discourse_import(run_id: int) -> str:
    """Carry out a queued Discourse import run started from the web."""
    run = claim_run(run_id)
    if run is None:
        return "not started"
    if run.params.get("from_web") and not settings.IMPORT_ALLOW_PRIVATE_HOSTS:
        # Checked again here: the name may resolve elsewhere than when the form was sent.
        try:
            check_public_host(run.params["base_url"])
        except ValueError as exc:
            ImportRun.objects.filter(pk=run.pk).update(
                state=ImportRun.State.FAILED, message=str(exc), finished_at=timezone.now()
            )
            return ImportRun.State.FAILED
    importer = DiscourseImport(run)
    importer.execute()
    return importer.run.state


def start_discourse_import(options: ImportOptions, user) -> ImportRun:
    """Queue a web-started import; raises ``ImportBusy`` if this forum is being imported."""
    with transaction.atomic():
        run = create_run(options, user=user, queued=True, extra_params={"from_web": True})
        result = run_discourse_import.enqueue(run.pk)
        ImportRun.objects.filter(pk=run.pk).update(task_id=str(result.id)[:64])
    run.refresh_from_db()
    return run
