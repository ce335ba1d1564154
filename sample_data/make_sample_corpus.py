"""Write the bundled sample corpus: synthetic forum threads in the Discourse topic shape.

Every word is made up here; nothing is copied from a real forum. The output is
deterministic (fixed seed, no timestamps in the gzip header), so running the script
again reproduces ``sample_forum.jsonl.gz`` byte for byte:

    python sample_data/make_sample_corpus.py

Each line is one topic as ``/t/{id}.json`` serves it, with all posts in
``post_stream.posts``. Some posts are hostile on purpose (script tags, event handlers,
javascript: links, SVG); importing them must leave nothing that runs.
"""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

SEED = 20231
THREADS = 300
OUTPUT = Path(__file__).resolve().parent / "sample_forum.jsonl.gz"
START = datetime(2020, 1, 1, tzinfo=UTC)
SPAN = datetime(2024, 1, 1, tzinfo=UTC) - START

CATEGORIES = {
    5: "Beginners",
    9: "Transformers",
    10: "Datasets",
    24: "Spaces",
    17: "Course",
    11: "Models",
    6: "Intermediate",
    18: "Accelerate",
}
TAGS = [
    "fine-tuning", "tokenizers", "inference", "trainer", "memory", "cuda", "onnx",
    "deployment", "hub", "license", "model-card", "streaming", "gradio", "evaluation",
]  # fmt: skip
MODELS = [
    "sample-org/tiny-encoder", "sample-org/small-decoder", "lab/seq2seq-mini",
    "lab/vision-patch-base", "lab/speech-small", "acme/sentence-embedder",
    "acme/code-helper-350m", "acme/chat-7b-demo",
]  # fmt: skip
ASKS = [
    "How do I fine-tune {model} on a few thousand labelled sentences?",
    "Loss stays flat when training {model} with the Trainer",
    "Out of memory when I load {model} on a 12 GB card",
    "Tokenizer of {model} splits words in a strange way",
    "Exporting {model} to ONNX fails with a shape error",
    "Which license covers the weights of {model}?",
    "My Space that serves {model} restarts every few minutes",
    "Streaming a large dataset is slower than reading it from disk",
    "Evaluation metrics differ between two runs of {model}",
    "Course chapter 3: the data collator pads to the wrong length",
    "Accelerate launch hangs on two GPUs with {model}",
    "How should I write a model card for a fine-tuned {model}?",
]
DETAILS = [
    "I followed the documentation step by step and still get this.",
    "The same script ran fine last month on another machine.",
    "I tried a smaller batch size and gradient accumulation already.",
    "My setup is Python 3.10 with recent releases of every library.",
    "The problem only appears with mixed precision turned on.",
    "Any hint about where to look next is welcome.",
    "I am new to this, so sorry if the question is obvious.",
]
REPLIES = [
    "Set the padding side of the tokenizer before you build batches.",
    "Pass a smaller maximum length; most of your inputs are short anyway.",
    "Upgrading to the latest release fixed the same error for me.",
    "The warning is expected: the new classification head starts untrained.",
    "Try loading the weights in half precision to save memory.",
    "The license is stated in the metadata block of the model card.",
    "Streaming reads lazily, so the first batches are always the slowest.",
    "Fix the random seed and call model.eval() before comparing outputs.",
    "You can push the folder to the Hub once you are logged in.",
    "Check that every process sees the same number of batches.",
]
THANKS = [
    "Thanks, that solved it!",
    "That worked, thank you.",
    "Still the same on my side, any other idea?",
    "Same problem here, following this thread.",
]
CODE = [
    "from transformers import AutoModel, AutoTokenizer\n\n"
    'tok = AutoTokenizer.from_pretrained("{model}")\n'
    'model = AutoModel.from_pretrained("{model}")\n'
    'batch = tok(["a sentence", "another one"], padding=True, return_tensors="pt")\n'
    "out = model(**batch)",
    "trainer = Trainer(\n    model=model,\n    args=args,\n    train_dataset=train,\n"
    "    eval_dataset=valid,\n)\ntrainer.train()",
    "Traceback (most recent call last):\n"
    '  File "train.py", line 31, in <module>\n'
    "    trainer.train()\n"
    "RuntimeError: CUDA out of memory. Tried to allocate 64.00 MiB",
]
LONG_CODE = "\n".join(
    [
        "import torch",
        "from torch.utils.data import DataLoader",
        "",
        "def train(model, data, epochs=3):",
        "    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)",
    ]
    + [f"    # step {i}: log the running loss\n    print('step', {i})" for i in range(1, 20)]
    + ["    return model"]
)
# Hostile markup: every kind must come out of the importer harmless.
HOSTILE = [
    "<p>Look at this</p><script>window.__xss && window.__xss('script')</script>",
    '<p><img src="x" onerror="window.__xss(\'img\')"> broken image</p>',
    "<p><a href=\"javascript:window.__xss('link')\">click for the fix</a></p>",
    "<svg onload=\"window.__xss('svg')\"><circle r='4'/></svg><p>an icon</p>",
    "<p onmouseover=\"window.__xss('hover')\">hover over me</p>",
    "<iframe src=\"javascript:window.__xss('frame')\"></iframe><p>embedded</p>",
    '<a href="data:text/html,&lt;script&gt;window.__xss(1)&lt;/script&gt;">data link</a>',
    '<style>body{display:none}</style><p>styled</p><form action="javascript:x()">'
    "<button>send</button></form>",
]
HOSTILE_TITLES = [
    "<script>window.__xss('title')</script> tokenizer question",
    'Model card with <img src=x onerror="window.__xss(1)"> inside',
]
HOSTILE_NAMES = ["<b onmouseover=window.__xss(1)>mallory</b>", 'eve"><script>x()</script>']
NAMES = ["ada", "bo", "chen", "dara", "eli", "farah", "gus", "hana", "ines", "jun", "kofi"]


def _p(text: str) -> str:
    return f"<p>{escape(text, quote=False)}</p>"


def _code(code: str) -> str:
    return f'<pre><code class="lang-python">{escape(code, quote=False)}</code></pre>'


def _quote(author: str, number: int, topic: int, text: str) -> str:
    return (
        f'<aside class="quote no-group" data-username="{escape(author)}" '
        f'data-post="{number}" data-topic="{topic}"><div class="title">{escape(author)}:</div>'
        f"<blockquote>{_p(text)}</blockquote></aside>"
    )


def _length(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.12:
        return rng.randint(21, 40)
    if roll < 0.25:
        return 1
    return rng.randint(2, 9)


def make_topic(rng: random.Random, topic_id: int, users: list[str]) -> dict:
    created = START + timedelta(seconds=rng.randrange(int(SPAN.total_seconds()) - 86400 * 30))
    model = rng.choice(MODELS)
    category_id = rng.choice(list(CATEGORIES))
    hostile = topic_id % 23 == 0
    title = rng.choice(ASKS).format(model=model)
    if hostile and topic_id % 2:
        title = HOSTILE_TITLES[topic_id % len(HOSTILE_TITLES)]
    asker = HOSTILE_NAMES[topic_id % 2] if hostile and topic_id % 3 == 0 else rng.choice(users)
    count = _length(rng)
    accepted = rng.randint(2, count) if count > 1 and rng.random() < 0.35 else 0
    posts = []
    texts: dict[int, str] = {}
    when = created
    next_post_id = topic_id * 100
    number = 0
    for index in range(count):
        number += 1
        next_post_id += 1
        if index:
            when += timedelta(minutes=int(rng.expovariate(1 / 400)) + 1)
        author = asker if index == 0 else rng.choice(users)
        reply_to = None
        parts: list[str] = []
        if index == 0:
            text = title if not hostile else "A question about a model."
            said = text.rstrip("?") + "?"
            parts.append(_p(said))
            parts.extend(_p(rng.choice(DETAILS)) for _ in range(rng.randint(0, 2)))
            if rng.random() < 0.5:
                parts.append(_code(rng.choice(CODE).format(model=model)))
            if topic_id % 17 == 0:
                parts.append(_code(LONG_CODE))
        else:
            if rng.random() < 0.3:
                reply_to = rng.randint(1, number - 1)
                parts.append(_quote(posts[reply_to - 1]["username"], reply_to, topic_id,
                                    texts.get(reply_to, "see above")))  # fmt: skip
            if author == asker and index > 1:
                said = rng.choice(THANKS)
                parts.append(_p(said))
            else:
                sentences = [rng.choice(REPLIES) for _ in range(rng.randint(1, 3))]
                said = sentences[0]
                parts.extend(_p(sentence) for sentence in sentences)
                if rng.random() < 0.15:
                    parts.append(_code(rng.choice(CODE).format(model=model)))
        if hostile and index in (0, 1):
            parts.append(HOSTILE[(topic_id + index) % len(HOSTILE)])
        texts[number] = said
        posts.append(
            {
                "id": next_post_id,
                "post_number": number,
                "post_type": 1,
                "username": author,
                "name": author.title(),
                "created_at": when.isoformat().replace("+00:00", "Z"),
                "updated_at": when.isoformat().replace("+00:00", "Z"),
                "reply_to_post_number": reply_to,
                "cooked": "\n".join(parts),
                "accepted_answer": number == accepted,
            }
        )
        # Now and then a moderator closes or moves the topic: a small action to skip.
        if index == count - 1 and rng.random() < 0.05:
            number += 1
            next_post_id += 1
            posts.append(
                {
                    "id": next_post_id,
                    "post_number": number,
                    "post_type": 3,
                    "action_code": "closed.enabled",
                    "username": "moderator",
                    "created_at": when.isoformat().replace("+00:00", "Z"),
                    "cooked": "",
                }
            )
    tag_names = rng.sample(TAGS, k=rng.randint(0, 3))
    if hostile:
        tag_names.append("<svg onload=window.__xss(1)>")
    # Older dumps carry tag names, newer ones tag objects; accept both.
    tags = tag_names if topic_id % 2 else [{"id": i, "name": t, "slug": t} for i, t in
                                           enumerate(tag_names)]  # fmt: skip
    topic = {
        "id": topic_id,
        "title": title,
        "fancy_title": escape(title),
        "slug": f"sample-topic-{topic_id}",
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "last_posted_at": when.isoformat().replace("+00:00", "Z"),
        "bumped_at": when.isoformat().replace("+00:00", "Z"),
        "posts_count": count,
        "reply_count": count - 1,
        "views": int(rng.lognormvariate(4.5, 1.0)),
        "like_count": rng.randint(0, count * 2),
        "category_id": category_id,
        "category_name": CATEGORIES[category_id]
        if not hostile
        else "<img src=x onerror=window.__xss(1)>Beginners",
        "tags": tags,
        "post_stream": {"posts": posts, "stream": [p["id"] for p in posts]},
    }
    if accepted:
        answer = posts[accepted - 1]
        # Two generations of the Solved plugin: one object, or a list of answer posts.
        if topic_id % 2:
            topic["accepted_answer"] = {"post_number": accepted, "username": answer["username"]}
        else:
            topic["accepted_answers"] = [{"id": answer["id"], "post_number": accepted}]
        topic["has_accepted_answer"] = True
    return topic


def main() -> None:
    rng = random.Random(SEED)
    users = [f"{rng.choice(NAMES)}_{i:03d}" for i in range(80)]
    lines = [
        json.dumps(make_topic(rng, topic_id, users), ensure_ascii=False, sort_keys=True)
        for topic_id in range(1, THREADS + 1)
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with OUTPUT.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(data)
    print(f"wrote {THREADS} topics to {OUTPUT.name} ({OUTPUT.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
