"""Two admins on one board, two tabs on one open coding, at the same moment (PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from coding import open_coding as oc
from coding.codings import Conflict
from coding.models import BoardCard, BoardEvent, Coding, OpenCode
from tests.factories import make_user
from tests.factories_open_coding import make_open_project, open_code

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _in_threads(*jobs) -> tuple[list, list[BaseException]]:
    results, errors = [], []
    start = threading.Barrier(len(jobs))

    def run(job) -> None:
        try:
            start.wait()
            results.append(job())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results, errors


def _project():
    people = {name: make_user(name) for name in ("padmin", "alice", "bob", "lead")}
    people["admin"] = people["padmin"]
    project = make_open_project(people, units=1)
    open_code(project, project.units.get(), people["alice"], "Missing docs")
    oc.sync_cards(project)
    return project, people


def test_two_admins_moving_one_code_at_once_get_one_move_and_one_conflict():
    project, people = _project()
    docs = oc.create_group(project, people["padmin"], "Docs")
    other = oc.create_group(project, people["padmin"], "Other")
    card = BoardCard.objects.get(project=project)

    results, errors = _in_threads(
        lambda: oc.move_card(project, people["padmin"], card.pk, 0, docs.pk),
        lambda: oc.move_card(project, people["lead"], card.pk, 0, other.pk),
    )

    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], oc.BoardConflict)
    card.refresh_from_db()
    assert card.revision == 1 and card.group_id == results[0].group_id
    assert BoardEvent.objects.filter(action="move").count() == 1


def test_two_saves_of_one_open_coding_from_the_same_revision_keep_one_and_refuse_the_other():
    project, people = _project()
    unit = project.units.get()

    def save(text):
        payload = oc.parse_open_input({"base_revision": 1, "open_codes": [{"text": text}]})
        return oc.save_open_coding(project, unit, people["alice"], payload)

    results, errors = _in_threads(lambda: save("first tab"), lambda: save("second tab"))

    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], Conflict)
    coding = Coding.objects.get(unit=unit, coder=people["alice"])
    assert coding.revision == 2
    assert list(OpenCode.objects.filter(coding=coding).values_list("text", flat=True)) == [
        results[0].state["open_codes"][0]["text"]
    ]
