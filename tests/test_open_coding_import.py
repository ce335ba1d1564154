"""Importing open codes made elsewhere: the study's layout and the long layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from coding.models import Assignment, OpenCode, Project, QueueCount, Round, Thread, Unit
from tests.factories import make_project, make_source, make_thread

pytestmark = pytest.mark.django_db

STUDY_FILE = Path(__file__).parent / "data" / "open_codes_study.csv"


def corpus_project(users, topic_ids=(100, 101, 102)) -> Project:
    project = make_project("study", admin=users["admin"], annotators=[users["alice"]])
    source = make_source()
    for topic in topic_ids:
        make_thread(f"Topic {topic}", source=source, external_id=topic)
    return project


def codes_by_topic() -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for topic, text in OpenCode.objects.order_by(
        "coding__unit__thread__external_id", "order"
    ).values_list("coding__unit__thread__external_id", "text"):
        out.setdefault(topic, []).append(text)
    return out


def test_the_study_layout_attaches_every_code_to_its_thread(users, capsys):
    project = corpus_project(users)
    call_command("import_open_codes", "study", str(STUDY_FILE), "--coder", "alice")
    assert codes_by_topic() == {
        100: ["Tokenizer example missing from the docs", "Asks how to pad batches"],
        101: ["GPU runs out of memory while fine-tuning", "Trainer arguments, unclear defaults"],
        102: ["Wants a model card template"],
    }
    assert Unit.objects.filter(project=project).count() == 3
    assert set(OpenCode.objects.values_list("coding__coder__username", flat=True)) == {"alice"}
    assert "open codes: 5 new, 0 unchanged; topics: 3" in capsys.readouterr().out


def test_imported_codings_finish_their_coders_assignments(users):
    project = corpus_project(users)
    alice = users["alice"]
    # Topic 100 was already in alice's queue, still to do: the import finishes it.
    round_ = Round.objects.create(project=project, name="Main")
    unit = Unit.objects.create(
        project=project, round=round_, thread=Thread.objects.get(external_id=100), position=0
    )
    Assignment.objects.create(unit=unit, coder=alice)
    started = timezone.now()
    call_command("import_open_codes", "study", str(STUDY_FILE), "--coder", "alice")
    ended = timezone.now()
    assignments = Assignment.objects.filter(coder=alice).order_by("unit__thread__external_id")
    assert [(a.unit.thread.external_id, a.status) for a in assignments] == [
        (100, Assignment.Status.DONE),
        (101, Assignment.Status.DONE),
        (102, Assignment.Status.DONE),
    ]
    assert all(started <= a.completed_at <= ended for a in assignments)
    counts = QueueCount.objects.get(project_id=project.pk, coder_id=alice.pk)
    assert (counts.total, counts.done) == (3, 3)
    # Importing again changes no finished assignment, nor its time.
    finished = dict(assignments.values_list("pk", "completed_at"))
    call_command("import_open_codes", "study", str(STUDY_FILE), "--coder", "alice")
    assert dict(assignments.values_list("pk", "completed_at")) == finished
    counts.refresh_from_db()
    assert (counts.total, counts.done) == (3, 3)


def test_importing_the_same_file_twice_adds_nothing(users, capsys):
    corpus_project(users)
    call_command("import_open_codes", "study", str(STUDY_FILE), "--coder", "alice")
    call_command("import_open_codes", "study", str(STUDY_FILE), "--coder", "alice")
    assert OpenCode.objects.count() == 5
    assert "open codes: 0 new, 5 unchanged" in capsys.readouterr().out


def test_missing_topics_are_listed_and_nothing_is_imported(users, capsys):
    corpus_project(users, topic_ids=(100,))
    with pytest.raises(CommandError) as caught:
        call_command("import_open_codes", "study", str(STUDY_FILE), "--coder", "alice")
    assert "open_codes_study.csv, line 4: topic 101 is not in the corpus" in str(caught.value)
    assert "topics not in the corpus: 101, 102" in capsys.readouterr().err
    assert not OpenCode.objects.exists()
    assert not Unit.objects.exists()


def test_skip_unknown_imports_the_known_topics_and_lists_the_rest(users, capsys):
    corpus_project(users, topic_ids=(100,))
    call_command(
        "import_open_codes", "study", str(STUDY_FILE), "--coder", "alice", "--skip-unknown"
    )
    assert list(codes_by_topic()) == [100]
    assert "topic 102 is not in the corpus" in capsys.readouterr().err


def test_the_long_layout_names_its_coders(users, tmp_path):
    corpus_project(users)
    path = tmp_path / "long.csv"
    path.write_text("thread_id,coder,open_code\n100,alice,Pad batches\n100,padmin,Padding\n")
    call_command("import_open_codes", "study", str(path))
    assert sorted(OpenCode.objects.values_list("coding__coder__username", "text")) == [
        ("alice", "Pad batches"),
        ("padmin", "Padding"),
    ]


def test_a_file_in_another_layout_says_which_columns_it_needs(users, tmp_path):
    corpus_project(users)
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(CommandError, match=r"other.csv, line 1: expected the columns Topic#"):
        call_command("import_open_codes", "study", str(path))


def test_rows_by_a_non_member_or_with_a_bad_topic_are_refused(users, tmp_path):
    corpus_project(users)
    path = tmp_path / "long.csv"
    path.write_text("thread_id,coder,open_code\nabc,alice,x\n100,bob,y\n")
    with pytest.raises(CommandError) as caught:
        call_command("import_open_codes", "study", str(path))
    assert "long.csv, line 2: thread_id must be a topic id, not 'abc'" in str(caught.value)
    assert "long.csv, line 3: 'bob' is not a member of study" in str(caught.value)
    assert not OpenCode.objects.exists()
