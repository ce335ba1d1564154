"""import_threads: Discourse topic JSON, JSONL and CSV files, validated whole, then written."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from coding.importers.files import import_file
from coding.models import ForumSource, ImportRun, Post, Thread
from tests.factories import make_source, make_thread
from tests.factories_corpus import (
    SAMPLE,
    SAMPLE_SOURCE,
    post_json,
    read_sample_topics,
    topic_json,
    write_csv,
    write_json,
    write_jsonl,
)

pytestmark = pytest.mark.django_db


def run(path, source: str = "Test forum", *extra) -> str:
    out = StringIO()
    call_command("import_threads", str(path), "--source", source, *extra, stdout=out)
    return out.getvalue().strip()


def test_one_topic_json_is_imported_with_its_posts_tags_and_category_id(tmp_path):
    line = run(write_json(tmp_path / "topic.json", topic_json()))

    assert line == "threads: 1 new, 0 updated, 0 unchanged; posts: 2 new, 0 updated, 0 unchanged"
    thread = Thread.objects.get()
    assert thread.title == "Tokenizer pads on the wrong side"
    assert thread.category == "5"
    assert list(thread.tags.values_list("name", flat=True)) == ["tokenizers"]
    assert [p.plain_text for p in thread.posts.all()] == [
        "Why does my tokenizer pad on the left?",
        "Set padding_side.",
    ]


def test_a_list_of_topics_with_category_names_and_tag_objects_is_imported(tmp_path):
    topics = [
        topic_json(1, category_name="Beginners", tags=[{"id": 3, "name": "bert", "slug": "b"}]),
        topic_json(2, category="Datasets", tags=["datasets", "streaming"]),
    ]
    run(write_json(tmp_path / "topics.json", topics))

    assert dict(Thread.objects.values_list("external_id", "category")) == {
        1: "Beginners",
        2: "Datasets",
    }
    assert sorted(Thread.objects.get(external_id=2).tags.values_list("name", flat=True)) == [
        "datasets",
        "streaming",
    ]
    assert Thread.objects.get(external_id=1).tags.get().name == "bert"


def test_both_accepted_answer_shapes_and_the_post_flag_mark_the_answer(tmp_path):
    topics = [
        topic_json(1, accepted_answer={"post_number": 2, "username": "helper"}),
        topic_json(2, accepted_answers=[{"id": 22, "post_number": 2}]),
        topic_json(
            3,
            posts=[
                post_json(31, 1, "<p>Q</p>"),
                post_json(32, 2, "<p>A</p>", accepted_answer=True),
            ],
        ),
        topic_json(4),
    ]
    run(write_jsonl(tmp_path / "topics.jsonl", topics))

    accepted = dict(
        Post.objects.filter(is_accepted_answer=True).values_list(
            "thread__external_id", "post_number"
        )
    )
    assert accepted == {1: 2, 2: 2, 3: 2}
    assert sorted(
        Thread.objects.filter(has_accepted_answer=True).values_list("external_id", flat=True)
    ) == [1, 2, 3]


def test_small_action_posts_are_skipped(tmp_path):
    posts = [
        post_json(1, 1, "<p>Question</p>"),
        post_json(2, 2, "", "moderator", post_type=3, action_code="closed.enabled"),
        post_json(3, 3, "<p>Reopened answer</p>"),
    ]
    run(write_json(tmp_path / "t.json", topic_json(posts=posts)))

    assert list(Post.objects.values_list("post_number", flat=True)) == [1, 3]


def test_gzip_compressed_jsonl_is_read(tmp_path):
    path = write_jsonl(tmp_path / "dump.jsonl.gz", [topic_json(1), topic_json(2)], compress=True)
    assert run(path).startswith("threads: 2 new")


def test_csv_rows_become_threads_with_html_or_text_bodies(tmp_path):
    base = {"thread_title": "Hub upload fails", "thread_created_at": "2022-01-05 08:00:00"}
    rows = [
        {**base, "thread_id": "9", "category": "Spaces", "tags": "hub;deployment", "post_id": "91",
         "post_number": "1", "author": "ana", "post_created_at": "2022-01-05T08:00:00Z",
         "body_text": "It fails with <error>.\n\nSecond paragraph."},
        {**base, "thread_id": "9", "category": "Spaces", "tags": "hub;deployment", "post_id": "92",
         "post_number": "2", "author": "ben", "post_created_at": "2022-01-05T09:00:00Z",
         "body_html": "<p>Log in first.</p>", "accepted_answer": "yes",
         "reply_to_post_number": "1"},
    ]  # fmt: skip
    line = run(write_csv(tmp_path / "posts.csv", rows))

    assert line == "threads: 1 new, 0 updated, 0 unchanged; posts: 2 new, 0 updated, 0 unchanged"
    thread = Thread.objects.get()
    assert (thread.category, thread.has_accepted_answer) == ("Spaces", True)
    assert sorted(thread.tags.values_list("name", flat=True)) == ["deployment", "hub"]
    first, second = thread.posts.all()
    assert first.html == "<p>It fails with &lt;error&gt;.</p><p>Second paragraph.</p>"
    assert first.plain_text == "It fails with <error>.\n\nSecond paragraph."
    assert (second.reply_to_post_number, second.is_accepted_answer) == (1, True)


def test_csv_without_required_columns_names_them(tmp_path):
    path = write_csv(tmp_path / "bad.csv", [{"thread_id": "1"}], columns=["thread_id", "title"])
    with pytest.raises(CommandError) as error:
        run(path)
    assert "bad.csv, line 1: missing column(s): thread_title" in str(error.value)
    assert "body_html or body_text" in str(error.value)


def test_a_file_with_errors_names_each_line_and_field_and_writes_nothing(tmp_path):
    good = topic_json(1)
    bad_time = topic_json(2, created_at="last Tuesday")
    bad_post = topic_json(3, posts=[post_json(31, 1, "<p>x</p>", post_number="first")])
    path = tmp_path / "dump.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(good),
                json.dumps(bad_time),
                "{not json",
                json.dumps(bad_post),
            ]
        )
    )

    with pytest.raises(CommandError) as error:
        run(path)

    message = str(error.value)
    assert "3 problems, nothing was imported" in message
    assert "dump.jsonl, line 2, created_at: not an ISO-8601 time: 'last Tuesday'" in message
    assert "dump.jsonl, line 3, column 2: not valid JSON" in message
    assert (
        "dump.jsonl, line 4, post_stream.posts[0].post_number: expected a whole number" in message
    )
    assert Thread.objects.count() == 0
    assert not ForumSource.objects.exists()


def test_post_numbers_beyond_what_search_can_key_are_refused(tmp_path):
    topic = topic_json(posts=[post_json(1, 2**24, "<p>x</p>")])
    with pytest.raises(CommandError, match=r"post_number: must be at most 16777215"):
        run(write_json(tmp_path / "t.json", topic))


def test_a_json_list_error_names_the_json_path(tmp_path):
    topics = [topic_json(1), topic_json(2, posts=[post_json(21, 1, None)])]
    with pytest.raises(CommandError) as error:
        run(write_json(tmp_path / "list.json", topics))
    assert "list.json, $[1].post_stream.posts[0].cooked: missing" in str(error.value)
    assert Thread.objects.count() == 0


def test_a_topic_twice_in_one_file_is_refused(tmp_path):
    with pytest.raises(CommandError) as error:
        run(write_jsonl(tmp_path / "twice.jsonl", [topic_json(4), topic_json(4)]))
    assert "twice.jsonl, line 2: topic id 4 appears again (first at line 1)" in str(error.value)


def test_files_over_the_size_cap_are_refused_before_parsing(tmp_path):
    path = write_json(tmp_path / "big.json", topic_json())
    with override_settings(IMPORT_MAX_BYTES=100), pytest.raises(CommandError) as error:
        run(path)
    assert "big.json: the file is larger than the import limit (100 bytes" in str(error.value)
    assert "IMPORT_MAX_BYTES" in str(error.value)
    with pytest.raises(CommandError, match="larger than the import limit"):
        run(path, "Test forum", "--max-bytes", "50")
    assert Thread.objects.count() == 0


def test_a_compressed_file_that_inflates_past_the_cap_is_refused(tmp_path):
    topic = topic_json(posts=[post_json(1, 1, "<p>" + "padding " * 50_000 + "</p>")])
    path = write_jsonl(tmp_path / "bomb.jsonl.gz", [topic], compress=True)
    assert path.stat().st_size < 20_000
    with pytest.raises(CommandError, match="larger than the import limit once decompressed"):
        run(path, "Test forum", "--max-bytes", "100000")


def test_an_unknown_file_type_or_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match=r"unknown file type '\.xml'"):
        run(write_json(tmp_path / "dump.xml", topic_json()))
    with pytest.raises(CommandError, match="no such file"):
        run(tmp_path / "missing.json")


def test_a_base_url_source_ties_the_file_to_the_live_forum_rows(tmp_path):
    live = make_source("HF forum", "https://discuss.example.org")
    make_thread("Tokenizer pads on the wrong side", source=live, external_id=7, posts=["<p>a</p>"])

    posts = [post_json(7001, 1, "<p>a</p>"), post_json(7002, 2, "<p>b</p>")]
    line = run(
        write_json(tmp_path / "t.json", topic_json(7, posts=posts)), "https://discuss.example.org/"
    )

    assert line.startswith("threads: 0 new, 1 updated, 0 unchanged; posts: 1 new, ")
    assert Post.objects.count() == 2
    assert ForumSource.objects.count() == 1
    thread = Thread.objects.get()
    assert thread.source == live
    assert thread.url == "https://discuss.example.org/t/tokenizer-pads/7"


def test_importing_the_same_file_again_changes_nothing(tmp_path):
    path = write_json(tmp_path / "t.json", [topic_json(1), topic_json(2)])
    run(path)
    assert run(path) == (
        "threads: 0 new, 0 updated, 2 unchanged; posts: 0 new, 0 updated, 4 unchanged"
    )


def test_an_edited_post_is_updated_in_place_and_keeps_its_row(tmp_path):
    run(write_json(tmp_path / "t.json", topic_json()))
    post = Post.objects.get(post_number=2)

    edited = topic_json()
    edited["post_stream"]["posts"][1]["cooked"] = "<p>Set <code>padding_side='left'</code>.</p>"
    line = run(write_json(tmp_path / "t2.json", edited))

    assert line == "threads: 0 new, 0 updated, 1 unchanged; posts: 0 new, 1 updated, 1 unchanged"
    post.refresh_from_db()
    assert post.plain_text == "Set padding_side='left'."
    assert Post.objects.get(post_number=2).pk == post.pk


def test_the_sample_corpus_imports_once_and_then_reports_nothing_new():
    first = run(SAMPLE, SAMPLE_SOURCE)
    second = run(SAMPLE, SAMPLE_SOURCE)

    assert first.startswith("threads: 300 new, 0 updated, 0 unchanged; posts: ")
    threads, posts = Thread.objects.count(), Post.objects.count()
    assert second == (
        f"threads: 0 new, 0 updated, {threads} unchanged; posts: 0 new, 0 updated, "
        f"{posts} unchanged"
    )


def test_an_edited_copy_of_one_sample_post_reports_exactly_one_updated_post(tmp_path):
    run(SAMPLE, SAMPLE_SOURCE)
    topics = read_sample_topics()
    topics[41]["post_stream"]["posts"][0]["cooked"] += "<p>Edit: solved it myself.</p>"

    line = run(write_jsonl(tmp_path / "edited.jsonl", topics), SAMPLE_SOURCE)

    assert "; posts: 0 new, 1 updated, " in line
    assert line.startswith("threads: 0 new, 0 updated, ")


def test_the_sample_corpus_has_what_the_pages_and_tests_rely_on():
    run(SAMPLE, SAMPLE_SOURCE)

    threads = Thread.objects.all()
    years = {t.created_at.year for t in threads}
    assert years == {2020, 2021, 2022, 2023}
    categories = set(threads.values_list("category", flat=True))
    assert {"Beginners", "Transformers", "Datasets", "Spaces", "Course"} <= categories
    assert threads.filter(posts_count__gt=20).count() >= 10
    assert threads.filter(has_accepted_answer=True).count() >= 30
    assert Post.objects.filter(html__contains="<pre><code").exists()
    assert Post.objects.filter(html__contains="<blockquote>").exists()
    assert ForumSource.objects.get().name == "Sample forum (synthetic)"


def test_a_file_import_records_its_run_and_counts():
    counts, run_row = import_file(SAMPLE, SAMPLE_SOURCE)

    run_row.refresh_from_db()
    assert run_row.kind == ImportRun.Kind.FILE
    assert run_row.state == ImportRun.State.DONE
    assert run_row.topics_done == run_row.topics_total == 300
    assert run_row.summary_line() == counts.summary_line()


def test_an_import_is_refused_while_another_runs_for_the_same_source(tmp_path):
    source = make_source(SAMPLE_SOURCE, "")
    ImportRun.objects.create(source=source, kind=ImportRun.Kind.DISCOURSE, state="fetching")
    with pytest.raises(CommandError, match="another import of Sample forum"):
        run(write_json(tmp_path / "t.json", topic_json()), SAMPLE_SOURCE)
    assert Thread.objects.count() == 0


def test_a_stale_run_of_the_same_source_is_taken_over(tmp_path):
    source = make_source(SAMPLE_SOURCE, "")
    long_ago = timezone.now() - timedelta(days=1)
    stale = ImportRun.objects.create(
        source=source, kind=ImportRun.Kind.FILE, state="writing", heartbeat_at=long_ago
    )

    line = run(write_json(tmp_path / "t.json", topic_json()), SAMPLE_SOURCE)

    assert line.startswith("threads: 1 new")
    stale.refresh_from_db()
    assert stale.state == ImportRun.State.FAILED
    assert "Abandoned" in stale.message
