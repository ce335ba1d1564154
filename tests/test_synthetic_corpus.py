from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Max, Min

from coding.importers.html import content_hash, html_to_text
from coding.models import Post, Thread
from coding.synthetic import generate_threads

pytestmark = pytest.mark.django_db


def test_command_writes_the_requested_threads_with_realistic_shape():
    out = StringIO()
    call_command("make_synthetic_corpus", threads=400, posts_per_thread=10, seed=3, stdout=out)

    assert out.getvalue().startswith("threads: 400 new, 0 updated, 0 unchanged; posts: ")
    assert Thread.objects.count() == 400
    posts = Post.objects.count()
    assert 400 * 8 <= posts <= 400 * 12
    span = Thread.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
    assert span["first"] >= datetime(2020, 1, 1, tzinfo=UTC)
    assert span["last"] < datetime(2024, 1, 1, tzinfo=UTC)
    assert (span["last"] - span["first"]).days > 1000
    assert Thread.objects.values("category").distinct().count() >= 6
    assert Thread.objects.filter(has_accepted_answer=True).exists()
    longest = Thread.objects.annotate(n=Count("posts")).aggregate(m=Max("n"))["m"]
    assert longest >= 30
    assert Post.objects.filter(html__contains="<pre><code").exists()


def test_plain_text_is_exactly_what_the_html_yields():
    call_command("make_synthetic_corpus", threads=150, posts_per_thread=6, stdout=StringIO())
    for post in Post.objects.all():
        assert post.plain_text == html_to_text(post.html)
        assert post.content_hash == content_hash(post.html)


def test_same_seed_same_corpus_and_a_second_run_adds_threads():
    first = [(t.title, t.created_at, len(t.posts)) for t in generate_threads(50, 5, seed=9)]
    again = [(t.title, t.created_at, len(t.posts)) for t in generate_threads(50, 5, seed=9)]
    other = [(t.title, t.created_at, len(t.posts)) for t in generate_threads(50, 5, seed=10)]
    assert first == again
    assert first != other
    call_command("make_synthetic_corpus", threads=20, stdout=StringIO())
    call_command("make_synthetic_corpus", threads=20, seed=1, stdout=StringIO())
    assert Thread.objects.count() == 40
    assert Thread.objects.values("external_id").distinct().count() == 40


def test_bad_arguments_are_refused():
    with pytest.raises(CommandError, match="--threads"):
        call_command("make_synthetic_corpus", threads=0)
