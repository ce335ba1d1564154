"""Drawing a project's sample: how many units, which ones, in which round.

The arithmetic (sample size, stratified allocation, the draw itself) is pure functions
over plain data; ``draw_round`` reads the population from the database, draws with a
stored seed and writes the round and its units in one transaction. The same seed over
the same population gives the same sample.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from django.db import transaction
from django.db.models import Max, QuerySet
from scipy.stats import norm

from .assignment import lock_open_project
from .models import Post, Project, Round, Thread, Unit

STRATIFY_CHOICES = ("category", "month")


class SamplingError(ValueError):
    """A sample that cannot be drawn as asked; the message says why."""


def sample_size(population: int, confidence: float = 0.95, margin: float = 0.05) -> int:
    """Units needed to estimate a proportion within ``margin`` at ``confidence``.

    n0 = z²·p(1-p)/e² with p = 0.5, corrected for a finite population of N:
    n = ceil(n0 / (1 + (n0 - 1) / N)). N = 11,175 at 95 % and 5 % gives 372.
    """
    if not 0 < confidence < 1:
        raise SamplingError(f"confidence must be between 0 and 1, got {confidence}")
    if not 0 < margin < 1:
        raise SamplingError(f"margin must be between 0 and 1, got {margin}")
    if population <= 0:
        return 0
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    n0 = z * z * 0.25 / (margin * margin)
    return min(population, math.ceil(n0 / (1 + (n0 - 1) / population)))


def allocate(sizes: dict[Hashable, int], n: int) -> dict[Hashable, int]:
    """Proportional allocation of ``n`` over strata by the largest-remainder method.

    Each stratum gets floor(n·N_h/N); the units left over go to the strata with the
    largest remainders (ties to the larger stratum, then the stratum key), so the
    allocations sum to exactly ``n`` and none exceeds its stratum.
    """
    total = sum(sizes.values())
    if n > total:
        raise SamplingError(f"cannot draw {n} units from a population of {total}")
    if total == 0:
        return {key: 0 for key in sizes}
    shares = {key: n * size / total for key, size in sizes.items()}
    result = {key: math.floor(share) for key, share in shares.items()}
    left = n - sum(result.values())
    order = sorted(sizes, key=lambda k: (-(shares[k] - result[k]), -sizes[k], str(k)))
    for key in order[:left]:
        result[key] += 1
    return result


def draw(
    ids: Sequence[int],
    n: int,
    seed: int,
    strata: Sequence[Hashable] | None = None,
) -> list[int]:
    """``n`` of ``ids`` at random, in a random order; stratified when ``strata`` is given.

    ``strata[i]`` is the stratum of ``ids[i]``. The result depends only on the inputs:
    ids are sorted first, so the database's row order does not matter.
    """
    if n > len(ids):
        raise SamplingError(f"cannot draw {n} units from a population of {len(ids)}")
    rng = random.Random(seed)
    if strata is None:
        chosen = rng.sample(sorted(ids), n)
    else:
        groups: dict[Hashable, list[int]] = {}
        for unit_id, stratum in zip(ids, strata, strict=True):
            groups.setdefault(stratum, []).append(unit_id)
        quotas = allocate({key: len(members) for key, members in groups.items()}, n)
        chosen = []
        for key in sorted(groups, key=str):
            chosen.extend(rng.sample(sorted(groups[key]), quotas[key]))
        rng.shuffle(chosen)
    return chosen


def choose_shared(count: int, overlap: float, seed: int) -> set[int]:
    """Positions (0..count-1) of the units coded by several coders: a random share."""
    shared = round(count * min(1.0, max(0.0, overlap)))
    rng = random.Random(f"shared-{seed}")
    return set(rng.sample(range(count), shared))


# Corpus selection -----------------------------------------------------------------


def selected_threads(project: Project) -> QuerySet[Thread]:
    """The threads a project's corpus selection admits.

    ``Project.selection`` keys: ``sources`` (ids), ``categories`` and ``tags`` (names),
    ``created_after`` and ``created_before`` (ISO dates, inclusive, UTC) and
    ``accepted_answer`` (true or false; absent means either).
    """
    selection = project.selection or {}
    threads = Thread.objects.all()
    if selection.get("sources"):
        threads = threads.filter(source_id__in=selection["sources"])
    if selection.get("categories"):
        threads = threads.filter(category__in=selection["categories"])
    if selection.get("tags"):
        threads = threads.filter(tags__name__in=selection["tags"]).distinct()
    if selection.get("created_after"):
        start = date.fromisoformat(selection["created_after"])
        threads = threads.filter(created_at__gte=datetime.combine(start, time.min, tzinfo=UTC))
    if selection.get("created_before"):
        end = date.fromisoformat(selection["created_before"])
        threads = threads.filter(created_at__lte=datetime.combine(end, time.max, tzinfo=UTC))
    if selection.get("accepted_answer") is not None:
        threads = threads.filter(has_accepted_answer=bool(selection["accepted_answer"]))
    return threads


@dataclass(frozen=True)
class Population:
    """The units a project can still sample: ids, each one's thread, and each one's
    stratum key when the draw is stratified (None otherwise)."""

    ids: list[int]
    thread_of: dict[int, int]
    keys: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)


def population(project: Project, stratify: str | None = None) -> Population:
    """Threads (or posts of threads) in the selection that no round has sampled yet,
    with the stratum key of each (category or month) read only when ``stratify`` asks."""
    if stratify not in (None, *STRATIFY_CHOICES):
        raise SamplingError(
            f"unknown stratification {stratify!r}; use one of {', '.join(STRATIFY_CHOICES)}"
        )
    threads = selected_threads(project)
    posts = project.unit_type == Project.UnitType.POST
    if posts:
        taken = Unit.objects.filter(project=project, post__isnull=False).values("post_id")
        units = Post.objects.filter(thread__in=threads).exclude(pk__in=taken)
        key = {"category": "thread__category", "month": "created_at"}.get(stratify)
    else:
        taken = Unit.objects.filter(project=project).values("thread_id")
        units = threads.exclude(pk__in=taken)
        key = {"category": "category", "month": "created_at"}.get(stratify)
    # Rows: the unit's id, its thread's id (posts only), its stratum column (if any).
    columns = ["pk", *(["thread_id"] if posts else []), *([key] if key else [])]
    rows = list(units.order_by("pk").values_list(*columns))
    keys = None
    if stratify == "category":
        keys = [row[-1] or "(none)" for row in rows]
    elif stratify == "month":
        keys = [f"{row[-1]:%Y-%m}" for row in rows]
    return Population(
        ids=[row[0] for row in rows],
        thread_of={row[0]: row[1] if posts else row[0] for row in rows},
        keys=keys,
    )


def population_count(project: Project) -> int:
    """How many units are left to sample (one COUNT query)."""
    threads = selected_threads(project)
    if project.unit_type == Project.UnitType.POST:
        taken = Unit.objects.filter(project=project, post__isnull=False).values("post_id")
        return Post.objects.filter(thread__in=threads).exclude(pk__in=taken).count()
    taken = Unit.objects.filter(project=project).values("thread_id")
    return threads.exclude(pk__in=taken).count()


@dataclass(frozen=True)
class SampleResult:
    round: Round
    sampled: int
    population: int


def draw_round(
    project: Project,
    *,
    confidence: float = 0.95,
    margin: float = 0.05,
    size: int | None = None,
    stratify: str | None = None,
    seed: int | None = None,
    round_name: str | None = None,
) -> SampleResult:
    """Sample units into a new round of ``project``, in one transaction.

    1. Lock the project row, so two admins sampling at once take turns and the second
       sees the first one's units as taken.
    2. Read the population: selected units not in any earlier round.
    3. Work out n (``size`` if given, else the calculator) and draw it with the seed.
    4. Write the round (seed and parameters kept for reproduction) and its units, a
       random ``overlap`` share of them marked shared.
    """
    if stratify is not None and stratify not in STRATIFY_CHOICES:
        raise SamplingError(
            f"unknown stratification {stratify!r}; use one of {', '.join(STRATIFY_CHOICES)}"
        )
    with transaction.atomic():
        if not lock_open_project(project.pk):
            raise SamplingError(f"project {project.slug} is closed for coding; nothing sampled")
        round_name = (round_name or "").strip() or _next_round_name(project)
        if Round.objects.filter(project=project, name=round_name).exists():
            raise SamplingError(f"project {project.slug} already has a round named {round_name!r}")
        pop = population(project, stratify)
        n = sample_size(len(pop), confidence, margin) if size is None else size
        if len(pop) == 0:
            raise SamplingError("no units left to sample: the selection is empty or all sampled")
        if n < 1:
            raise SamplingError(f"sample size must be at least 1, got {n}")
        if n > len(pop):
            raise SamplingError(f"cannot sample {n} units: only {len(pop)} are left to sample")
        if seed is None:
            seed = secrets.randbelow(2**31)
        chosen = draw(pop.ids, n, seed, pop.keys)
        shared = choose_shared(n, project.overlap, seed)
        params = {
            "confidence": confidence,
            "margin": margin,
            "size": size,
            "stratify": stratify,
            "population": len(pop),
            "sampled": n,
            "unit_type": project.unit_type,
            "selection": project.selection,
        }
        is_post = project.unit_type == Project.UnitType.POST
        order = (Round.objects.filter(project=project).aggregate(m=Max("order"))["m"] or 0) + 1
        new_round = Round.objects.create(
            project=project, name=round_name, order=order, seed=seed, params=params
        )
        start = (Unit.objects.filter(project=project).aggregate(m=Max("position"))["m"] or 0) + 1
        Unit.objects.bulk_create(
            [
                Unit(
                    project=project,
                    round=new_round,
                    thread_id=pop.thread_of[item],
                    post_id=item if is_post else None,
                    position=start + index,
                    shared=index in shared,
                )
                for index, item in enumerate(chosen)
            ],
            batch_size=1000,
        )
    return SampleResult(round=new_round, sampled=n, population=len(pop))


def _next_round_name(project: Project) -> str:
    names = set(Round.objects.filter(project=project).values_list("name", flat=True))
    if "main" not in names:
        return "main"
    number = 2
    while f"round {number}" in names:
        number += 1
    return f"round {number}"
