"""Helpers that build projects with a codebook, a corpus, a sample and assignments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coding.assignment import assign_units
from coding.models import Code, Codebook, CodebookVersion, ForumSource, Project, Thread
from coding.sampling import draw_round
from tests.factories import make_project, make_source

CATEGORIES = ("Beginners", "Transformers", "Datasets", "Spaces")


def make_codebook_version(name: str = "Reuse taxonomy", codes: int = 4) -> CodebookVersion:
    codebook = Codebook.objects.create(name=name)
    version = CodebookVersion.objects.create(codebook=codebook, number=1)
    for i in range(codes):
        Code.objects.create(
            version=version, key=f"c{i}", name=f"Code {i}", order=i, shortcut=str(i + 1)
        )
    return version


def make_threads(
    count: int, *, source: ForumSource | None = None, categories=CATEGORIES, start_id: int = 1
) -> list[Thread]:
    """``count`` bare threads spread over categories and months (no posts), in bulk."""
    source = source or make_source()
    base = datetime(2021, 1, 1, tzinfo=UTC)
    return Thread.objects.bulk_create(
        [
            Thread(
                source=source,
                external_id=start_id + i,
                title=f"Thread {start_id + i}",
                category=categories[i % len(categories)],
                created_at=base + timedelta(days=(i * 7) % 365),
            )
            for i in range(count)
        ]
    )


def make_sampled_project(
    slug: str = "study",
    *,
    admin=None,
    annotators=(),
    threads: int = 20,
    size: int | None = None,
    k: int = 2,
    overlap: float = 1.0,
    seed: int = 7,
) -> Project:
    """A project over ``threads`` new threads, sampled (all of them by default) and assigned."""
    project = make_project(slug, admin=admin, annotators=annotators)
    project.codebook_version = make_codebook_version(f"Codebook {slug}")
    project.coders_per_unit = k
    project.overlap = overlap
    source = make_source(f"Forum {slug}", f"https://{slug}.forum.test")
    project.selection = {"sources": [source.pk]}
    project.save()
    make_threads(threads, source=source)
    draw_round(project, size=size or threads, seed=seed)
    assign_units(project)
    return project
