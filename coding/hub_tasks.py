"""The Hub import as a background task (``manage.py db_worker``); progress in ``ImportRun``."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from .importers.hub import HubClient, HubError, import_from_hub, open_run, run_options
from .models import ImportRun


@task()
def run_hub_import(run_id: int) -> str:
    """Carry out a queued Hub import run started from the web."""
    run = ImportRun.objects.filter(
        pk=run_id, kind=ImportRun.Kind.HUB, state=ImportRun.State.QUEUED
    ).first()
    if run is None:
        return "not started"
    client = HubClient(settings.HUB_URL, token=settings.HF_TOKEN)
    try:
        _counts, run = import_from_hub(client, run=run, **run_options(run))
    except HubError:
        return ImportRun.State.FAILED
    except Exception as exc:
        ImportRun.objects.filter(pk=run_id).update(
            state=ImportRun.State.FAILED,
            message=f"Stopped by an unexpected error ({exc.__class__.__name__}).",
            finished_at=timezone.now(),
        )
        raise
    finally:
        client.close()
    return run.state


def start_hub_import(*, since=None, until=None, max_models=None, user=None) -> ImportRun:
    """Queue a Hub import; an unfinished run with the same options is continued."""
    with transaction.atomic():
        run = open_run(since=since, until=until, max_models=max_models, user=user, queued=True)
        result = run_hub_import.enqueue(run.pk)
        ImportRun.objects.filter(pk=run.pk).update(task_id=str(result.id)[:64])
    run.refresh_from_db()
    return run
