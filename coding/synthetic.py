"""Synthetic forum corpora for demos, tests and benchmarks.

The threads read like a model-reuse forum (categories, tags, questions with code,
answers, thanks) but every word is generated. HTML and plain text are produced
together so that the plain text is exactly what ``html_to_text`` would derive from
the HTML; a test holds the two in step.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from .importers.html import content_hash
from .models import (
    Assignment,
    Code,
    CodeApplication,
    CodebookVersion,
    Coding,
    CodingEvent,
    ForumSource,
    Membership,
    Post,
    Project,
    Role,
    Tag,
    Thread,
)

CATEGORIES = [
    ("Beginners", 0.30),
    ("Transformers", 0.25),
    ("Datasets", 0.09),
    ("Spaces", 0.08),
    ("Course", 0.07),
    ("Models", 0.06),
    ("Intermediate", 0.05),
    ("AutoTrain", 0.03),
    ("Accelerate", 0.03),
    ("Gradio", 0.02),
    ("Research", 0.02),
]
TAGS = [
    "pytorch",
    "tensorflow",
    "bert",
    "gpt2",
    "t5",
    "tokenizers",
    "fine-tuning",
    "inference",
    "trainer",
    "accelerate",
    "datasets",
    "deployment",
    "pipeline",
    "onnx",
    "quantization",
    "memory",
    "cuda",
    "hub",
    "model-card",
    "license",
    "llama",
    "diffusers",
    "whisper",
]
MODELS = [
    "bert-base-uncased",
    "gpt2",
    "t5-small",
    "roberta-base",
    "distilbert-base-uncased",
    "facebook/bart-large",
    "xlm-roberta-base",
    "openai/whisper-small",
    "google/vit-base",
    "sentence-transformers/all-MiniLM-L6-v2",
    "EleutherAI/gpt-neo-125M",
    "microsoft/deberta-v3",
]
OPENERS = [
    "I am trying to fine-tune {model} on my own data and the loss does not go down.",
    "When I load {model} with from_pretrained I get a warning about unused weights.",
    "Is there a way to run {model} on a CPU with less than 8 GB of memory?",
    "I want to export {model} to ONNX but the conversion fails on the attention layer.",
    "My tokenizer adds special tokens twice when I call it on a batch.",
    "How do I push a fine-tuned {model} to the Hub with a proper model card?",
    "The pipeline for {model} returns different results on GPU and CPU.",
    "Training stops with CUDA out of memory after a few hundred steps.",
    "I cannot find which license applies to the weights of {model}.",
    "The Space I built with Gradio crashes when two users send requests at once.",
    "Which learning rate do people use when fine-tuning {model} for classification?",
    "Loading a dataset with streaming=True is much slower than I expected.",
]
FOLLOWUPS = [
    "Here is the code I am running.",
    "I followed the course chapter on fine-tuning step by step.",
    "The same code worked with an older version of the library.",
    "I already tried a smaller batch size and gradient accumulation.",
    "Any pointer to the right documentation page would help.",
    "The error only appears when I use mixed precision.",
    "My environment is Python 3.10 with the latest release installed from pip.",
    "I also checked the model card but it does not say anything about this.",
]
ANSWERS = [
    "You need to set the padding side of the tokenizer before batching.",
    'Try passing device_map="auto" so the weights are spread over the devices you have.',
    "This is a known issue that was fixed in the latest release, so upgrading should help.",
    "The warning is expected: the classification head is newly initialised.",
    "Use the Trainer with fp16=True and a smaller max_length to save memory.",
    "The license is listed in the metadata at the top of the model card.",
    "Streaming datasets are read lazily, so the first batches are always slower.",
    "You can call save_pretrained and then push_to_hub with your token.",
    "Set the seed and disable dropout with model.eval() to get stable outputs.",
    "Quantizing the model to 8 bits cut the memory use in half for me.",
]
CLOSERS = [
    "Thanks, that solved it!",
    "That worked, thank you for the quick answer.",
    "Still the same error on my side, any other idea?",
    "I can confirm this, same problem here.",
    "Marking this as solved.",
]
CODE_SNIPPETS = [
    "from transformers import AutoModel, AutoTokenizer\n\n"
    'tokenizer = AutoTokenizer.from_pretrained("{model}")\n'
    'model = AutoModel.from_pretrained("{model}")\n'
    'inputs = tokenizer(texts, padding=True, return_tensors="pt")\n'
    "outputs = model(**inputs)",
    "trainer = Trainer(\n    model=model,\n    args=training_args,\n"
    "    train_dataset=train_ds,\n    eval_dataset=eval_ds,\n)\ntrainer.train()",
    "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB\n"
    '  File "train.py", line 42, in <module>\n    trainer.train()',
    'dataset = load_dataset("csv", data_files="data.csv", streaming=True)\n'
    'for example in dataset["train"]:\n    print(example)',
]
USER_PREFIXES = ["dev", "nlp", "ml", "data", "hf", "py", "deep", "bert", "code", "lab"]

START = datetime(2020, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2024, 1, 1, tzinfo=UTC) - START).total_seconds())


@dataclass
class SyntheticPost:
    post_number: int
    author: str
    created_at: datetime
    reply_to: int | None
    accepted: bool
    html: str
    text: str


@dataclass
class SyntheticThread:
    title: str
    category: str
    tags: list[str]
    created_at: datetime
    views: int
    posts: list[SyntheticPost]


class _Builder:
    """Accumulates paragraphs and code blocks as HTML and as plain text in step."""

    def __init__(self) -> None:
        self.html: list[str] = []
        self.text: list[str] = []

    def paragraph(self, sentence: str) -> None:
        self.html.append(f"<p>{escape(sentence, quote=False)}</p>")
        self.text.append(sentence)

    def code(self, code: str) -> None:
        self.html.append(f'<pre><code class="lang-python">{escape(code, quote=False)}</code></pre>')
        self.text.append(code)

    def quote(self, sentence: str) -> None:
        self.html.append(f"<blockquote><p>{escape(sentence, quote=False)}</p></blockquote>")
        self.text.append(sentence)

    def result(self) -> tuple[str, str]:
        return "\n".join(self.html), "\n\n".join(self.text)


def _posts_in_thread(rng: random.Random, mean: float) -> int:
    """Mostly short threads and a long tail (a few over 5x the mean), averaging ``mean``."""
    if mean <= 1:
        return 1
    if rng.random() < 0.03:
        return max(1, int(rng.uniform(3, 8) * mean))
    # E[1 + floor(Exp(m))] is about m + 0.5; the tail adds 3% x 5.5 x mean.
    return 1 + int(rng.expovariate(1 / max(0.01, 0.861 * mean - 0.5)))


def generate_threads(count: int, posts_per_thread: float, seed: int) -> Iterator[SyntheticThread]:
    rng = random.Random(seed)
    names = [c for c, _ in CATEGORIES]
    weights = [w for _, w in CATEGORIES]
    users = [f"{rng.choice(USER_PREFIXES)}_{i:04d}" for i in range(max(50, count // 4))]
    for _ in range(count):
        created = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
        model = rng.choice(MODELS)
        opener = rng.choice(OPENERS).format(model=model)
        title = opener.rstrip("?.!")[:120]
        n_posts = _posts_in_thread(rng, posts_per_thread)
        accepted_at = rng.randrange(2, n_posts + 1) if n_posts > 1 and rng.random() < 0.3 else 0
        asker = rng.choice(users)
        posts: list[SyntheticPost] = []
        when = created
        for number in range(1, n_posts + 1):
            b = _Builder()
            if number == 1:
                b.paragraph(opener)
                for _ in range(rng.randint(0, 3)):
                    b.paragraph(rng.choice(FOLLOWUPS))
                if rng.random() < 0.45:
                    b.code(rng.choice(CODE_SNIPPETS).format(model=model))
                author = asker
                reply_to = None
            else:
                when = when + timedelta(minutes=int(rng.expovariate(1 / 600)) + 1)
                author = asker if rng.random() < 0.3 else rng.choice(users)
                reply_to = rng.randrange(1, number) if rng.random() < 0.4 else None
                if author == asker and number > 2:
                    b.paragraph(rng.choice(CLOSERS))
                else:
                    if reply_to and rng.random() < 0.3:
                        b.quote(rng.choice(FOLLOWUPS))
                    for _ in range(1 + int(rng.expovariate(0.7))):
                        b.paragraph(rng.choice(ANSWERS))
                    if rng.random() < 0.15:
                        b.code(rng.choice(CODE_SNIPPETS).format(model=model))
            html, text = b.result()
            posts.append(
                SyntheticPost(number, author, when, reply_to, number == accepted_at, html, text)
            )
        yield SyntheticThread(
            title=title,
            category=rng.choices(names, weights)[0],
            tags=rng.sample(TAGS, k=min(len(TAGS), int(rng.random() * 4))),
            created_at=created,
            views=int(math.exp(rng.gauss(4.5, 1.2))),
            posts=posts,
        )


POST_COLUMNS = (
    "thread_id",
    "external_id",
    "post_number",
    "author",
    "created_at",
    "updated_at",
    "reply_to_post_number",
    "is_accepted_answer",
    "html",
    "plain_text",
    "content_hash",
    "deleted_upstream",
)


def _insert_rows(model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """A plain multi-row INSERT: several times faster than bulk_create for a million rows."""
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    adapt = connection.ops.adapt_datetimefield_value
    prepared = [tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", prepared)  # noqa: S608


def make_corpus(
    threads: int,
    posts_per_thread: float,
    seed: int = 0,
    source_name: str = "Synthetic forum",
    base_url: str = "https://forum.example.org",
    batch_size: int = 2000,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Write ``threads`` synthetic threads with bulk inserts; returns (threads, posts).

    Each batch is one short transaction, so other writers are never blocked long.
    External ids continue after the source's highest, so a second run adds threads.
    """
    source, _ = ForumSource.objects.get_or_create(name=source_name, defaults={"base_url": base_url})
    next_topic = (source.threads.aggregate(m=Max("external_id"))["m"] or 0) + 1
    next_post = (
        Post.objects.filter(thread__source=source).aggregate(m=Max("external_id"))["m"] or 0
    ) + 1
    tag_ids = {}
    for name in TAGS:
        tag_ids[name] = Tag.objects.get_or_create(name=name)[0].pk
    made_threads = made_posts = 0
    stream = generate_threads(threads, posts_per_thread, seed)
    while made_threads < threads:
        batch = [t for _, t in zip(range(batch_size), stream, strict=False)]
        if not batch:
            break
        with transaction.atomic():
            rows = []
            for offset, t in enumerate(batch):
                topic_id = next_topic + made_threads + offset
                last = t.posts[-1].created_at
                rows.append(
                    Thread(
                        source=source,
                        external_id=topic_id,
                        title=t.title,
                        slug=f"topic-{topic_id}",
                        url=source.topic_url(topic_id, f"topic-{topic_id}"),
                        category=t.category,
                        created_at=t.created_at,
                        last_posted_at=last,
                        bumped_at=last,
                        views=t.views,
                        reply_count=len(t.posts) - 1,
                        like_count=len(t.posts) // 2,
                        posts_count=len(t.posts),
                        has_accepted_answer=any(p.accepted for p in t.posts),
                    )
                )
            created = Thread.objects.bulk_create(rows)
            posts = []
            links = []
            for thread, t in zip(created, batch, strict=True):
                for p in t.posts:
                    posts.append(
                        (
                            thread.pk,
                            next_post,
                            p.post_number,
                            p.author,
                            p.created_at,
                            p.created_at,
                            p.reply_to,
                            p.accepted,
                            p.html,
                            p.text,
                            content_hash(p.html),
                            False,
                        )
                    )
                    next_post += 1
                links.extend((thread.pk, tag_ids[name]) for name in t.tags)
            _insert_rows(Post, POST_COLUMNS, posts)
            _insert_rows(Thread.tags.through, ("thread_id", "tag_id"), links)
        made_posts += len(posts)
        made_threads += len(batch)
        if progress:
            progress(made_threads, threads)
    return made_threads, made_posts


# Coded projects ----------------------------------------------------------------------


@dataclass(frozen=True)
class CodedProject:
    project: Project
    units: int
    codings: int


def _codebook_version() -> CodebookVersion:
    """The newest codebook version with codable codes, else the bundled default codebook."""
    version = (
        CodebookVersion.objects.filter(codes__codable=True, codes__active=True)
        .order_by("-created_at", "-id")
        .first()
    )
    if version is None:
        from .codebook_io import load_default

        _codebook, version, _changed = load_default()
    return version


def _free_slug(base: str) -> str:
    taken = set(Project.objects.filter(slug__startswith=base).values_list("slug", flat=True))
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


def make_coded_project(
    source: ForumSource,
    coders: int,
    coded_share: float,
    agreement: float,
    seed: int = 0,
) -> CodedProject:
    """A project over ``source`` whose sample is fully coded by ``coders`` coders.

    1. Members: an admin and annotators ``coder1``..``coderC`` (accounts without a usable
       password; staff set one in the admin to log in as them).
    2. A sample of ``coded_share`` of the source's threads, each unit assigned to every
       coder (K = C, overlap 100%).
    3. One submitted coding per assignment with one code each. Per unit, with probability
       ``agreement`` every coder applies the unit's true code; otherwise each coder draws
       a code independently from the same skewed distribution the true codes come from.
       Expected disagreement is then (1 - A) times chance disagreement, so Krippendorff's
       alpha comes out near ``agreement``.
    """
    from .assignment import assign_units
    from .sampling import draw_round, population_count

    if coders < 1:
        raise ValueError("--coders must be at least 1")
    if not 0 < coded_share <= 1:
        raise ValueError("--coded-share must be above 0 and at most 1")
    if not 0 <= agreement <= 1:
        raise ValueError("--agreement must be between 0 and 1")
    User = get_user_model()
    rng = random.Random(f"coded-{seed}")
    version = _codebook_version()
    codes = list(
        Code.objects.filter(version=version, codable=True, active=True).order_by("order", "id")
    )
    if not codes:
        raise ValueError(f"codebook {version} has no codable codes")
    weights = [1 / (rank + 1) for rank in range(len(codes))]
    with transaction.atomic():
        admin, _ = User.objects.get_or_create(username="synthetic_admin")
        people = []
        for number in range(1, coders + 1):
            user, created = User.objects.get_or_create(username=f"coder{number}")
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            people.append(user)
        project = Project.objects.create(
            name=f"Synthetic study ({coders} coders, agreement {agreement:g})",
            slug=_free_slug("synthetic"),
            codebook_version=version,
            selection={"sources": [source.pk]},
            coders_per_unit=coders,
            overlap=1.0,
            seed=seed,
            created_by=admin,
        )
        Membership.objects.create(project=project, user=admin, role=Role.ADMIN)
        Membership.objects.bulk_create(
            [Membership(project=project, user=u, role=Role.ANNOTATOR) for u in people]
        )
        size = max(1, round(coded_share * population_count(project)))
        result = draw_round(project, size=size, seed=seed, round_name="main")
        assign_units(project)
        now = timezone.now()
        assignments = list(
            Assignment.objects.filter(unit__project=project).order_by("unit__position", "coder_id")
        )
        labels: dict[int, Code] = {}
        truth: dict[int, tuple[Code, bool]] = {}
        codings = []
        for assignment in assignments:
            if assignment.unit_id not in truth:
                truth[assignment.unit_id] = (
                    rng.choices(codes, weights)[0],
                    rng.random() < agreement,
                )
            true_code, agreed = truth[assignment.unit_id]
            code = true_code if agreed else rng.choices(codes, weights)[0]
            when = now - timedelta(minutes=rng.randrange(14 * 24 * 60))
            assignment.status = Assignment.Status.DONE
            assignment.completed_at = when
            coding = Coding(
                unit_id=assignment.unit_id,
                coder_id=assignment.coder_id,
                codebook_version=version,
                status=Coding.Status.SUBMITTED,
                revision=1,
                submitted_at=when,
            )
            codings.append(coding)
            labels[len(codings) - 1] = code
        Assignment.objects.bulk_update(assignments, ["status", "completed_at"], batch_size=1000)
        Coding.objects.bulk_create(codings, batch_size=1000)
        CodeApplication.objects.bulk_create(
            [CodeApplication(coding=c, code=labels[i]) for i, c in enumerate(codings)],
            batch_size=1000,
        )
        CodingEvent.objects.bulk_create(
            [
                CodingEvent(
                    coding=c,
                    user_id=c.coder_id,
                    action="submit",
                    before=None,
                    after={
                        "status": "submitted",
                        "codes": [labels[i].key],
                        "quotes": [],
                        "not_relevant": False,
                        "unsure": False,
                        "memo": "",
                    },
                )
                for i, c in enumerate(codings)
            ],
            batch_size=1000,
        )
    return CodedProject(project=project, units=result.sampled, codings=len(codings))
