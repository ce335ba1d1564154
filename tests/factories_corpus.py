"""Helpers that build forum dumps in the shapes the file importer reads."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "sample_forum.jsonl.gz"
SAMPLE_SOURCE = "Sample forum (synthetic)"


def topic_json(
    topic_id: int = 7,
    *,
    title: str = "Tokenizer pads on the wrong side",
    posts: list[dict] | None = None,
    **fields,
) -> dict:
    """A topic as ``/t/{id}.json`` serves it, all posts in ``post_stream.posts``."""
    if posts is None:
        posts = [
            post_json(topic_id * 10 + 1, 1, "<p>Why does my tokenizer pad on the left?</p>"),
            post_json(topic_id * 10 + 2, 2, "<p>Set <code>padding_side</code>.</p>", "helper"),
        ]
    topic = {
        "id": topic_id,
        "title": title,
        "slug": "tokenizer-pads",
        "created_at": "2021-06-01T10:00:00.000Z",
        "category_id": 5,
        "tags": ["tokenizers"],
        "views": 12,
        "post_stream": {"posts": posts, "stream": [p["id"] for p in posts]},
    }
    topic.update(fields)
    return topic


def post_json(post_id: int, number: int, cooked: str, username: str = "asker", **fields) -> dict:
    post = {
        "id": post_id,
        "post_number": number,
        "post_type": 1,
        "username": username,
        "created_at": f"2021-06-0{min(number, 9)}T10:00:00.000Z",
        "cooked": cooked,
        "reply_to_post_number": None,
    }
    post.update(fields)
    return post


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_jsonl(path: Path, topics: list[dict], *, compress: bool = False) -> Path:
    text = "".join(json.dumps(t) + "\n" for t in topics)
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


CSV_COLUMNS = [
    "thread_id",
    "thread_title",
    "thread_created_at",
    "category",
    "tags",
    "post_id",
    "post_number",
    "author",
    "post_created_at",
    "body_html",
    "body_text",
    "accepted_answer",
    "reply_to_post_number",
]


def write_csv(path: Path, rows: list[dict], columns: list[str] = CSV_COLUMNS) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def read_sample_topics() -> list[dict]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def hostile_topics() -> list[dict]:
    """One topic per XSS payload, each payload in every imported field.

    Topic ``i`` carries payload ``i`` in its title, category, a tag and the username and
    HTML of its first post; its second post carries the next payload, so every payload
    also appears once more in post HTML and usernames.
    """
    from tests.xss_payloads import PAYLOADS

    topics = []
    count = len(PAYLOADS)
    for i, payload in enumerate(PAYLOADS):
        following = PAYLOADS[(i + 1) % count]
        topic_id = 9000 + i
        posts = [
            post_json(topic_id * 10 + 1, 1, f"<p>Question {i}</p>{payload}", username=payload),
            post_json(
                topic_id * 10 + 2,
                2,
                f"<p>Answer {i}</p>{following}",
                username=following,
                reply_to_post_number=1,
            ),
        ]
        topics.append(
            topic_json(
                topic_id,
                title=f"Hostile {i}: {payload}",
                posts=posts,
                category_name=payload,
                tags=[payload, {"id": i, "name": f"tag-{i} {following}", "slug": "x"}],
                accepted_answer={"post_number": 2},
            )
        )
    return topics
