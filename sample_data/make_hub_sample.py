"""Write sample_data/hub_sample.jsonl: a small SYNTHETIC Hugging Face Hub metadata dump.

Every model here is invented (owners are named ``synthetic-…`` and every model carries the
tag ``synthetic``); the file only has the shape of the Hub's ``/api/models`` listing, so the
demo can show the trends page without the network. The same seed always writes the same
file:

    .venv/bin/python sample_data/make_hub_sample.py
    .venv/bin/python manage.py import_hub --from-file sample_data/hub_sample.jsonl
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent / "hub_sample.jsonl"
SEED = 20240115
PLACEHOLDER = "2022-03-02T23:29:04.000Z"
FIRST, LAST = datetime(2020, 1, 1, tzinfo=UTC), datetime(2023, 6, 30, tzinfo=UTC)

# model type -> (first month it appears, monthly growth, base uploads, pipeline tag)
TYPES = {
    "bert": ("2020-01", 0.04, 6, "fill-mask"),
    "gpt2": ("2020-01", 0.05, 3, "text-generation"),
    "t5": ("2020-03", 0.05, 2, "text2text-generation"),
    "roberta": ("2020-02", 0.05, 2, "fill-mask"),
    "distilbert": ("2020-04", 0.06, 2, "text-classification"),
    "wav2vec2": ("2021-01", 0.04, 3, "automatic-speech-recognition"),
    "vit": ("2021-04", 0.06, 1, "image-classification"),
    "whisper": ("2022-10", 0.12, 4, "automatic-speech-recognition"),
    "llama": ("2023-02", 0.35, 5, "text-generation"),
}
OWNERS = [f"synthetic-{name}" for name in ("lab", "org", "nlp", "speech", "vision", "student")]


def _months() -> list[datetime]:
    months, current = [], FIRST
    while current <= LAST:
        months.append(current)
        current = (current + timedelta(days=32)).replace(day=1)
    return months


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def generate(seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    models: list[dict] = []
    months = _months()
    for index, month in enumerate(months):
        card_share = 0.35 + 0.5 * index / (len(months) - 1)
        for model_type, (start, growth, base, task) in TYPES.items():
            if month.strftime("%Y-%m") < start:
                continue
            age = sum(1 for m in months[: index + 1] if m.strftime("%Y-%m") >= start)
            expected = 0.4 * base * math.exp(growth * age)
            for _ in range(max(0, round(rng.gauss(expected, math.sqrt(expected))))):
                models.append(_model(rng, month, model_type, task, card_share, len(models)))
        for _ in range(rng.randint(0, 2)):  # models without a config
            models.append(_model(rng, month, None, None, card_share, len(models)))
    return models


def _model(rng, month, model_type, task, card_share, number) -> dict:
    created = month + timedelta(days=rng.randint(0, 27), seconds=rng.randint(0, 86399))
    modified = min(LAST, created + timedelta(days=rng.randint(0, 400)))
    owner = rng.choice(OWNERS)
    repo_id = f"{owner}/{model_type or 'custom'}-demo-{number:04d}"
    # Before March 2022 the Hub often shows a placeholder instead of the creation time.
    placeholder = created < datetime(2022, 3, 2, tzinfo=UTC) and rng.random() < 0.1
    library = "transformers" if model_type else rng.choice(["timm", "sentence-transformers"])
    item = {
        "id": repo_id,
        "author": owner,
        "createdAt": PLACEHOLDER if placeholder else _iso(created),
        "lastModified": _iso(modified),
        "pipeline_tag": task,
        "library_name": library,
        "tags": [t for t in (library, model_type, task) if t] + ["synthetic"],
        "downloads": int(rng.paretovariate(1.2) * 10),
        "likes": int(rng.paretovariate(2.0)) - 1,
        "config": {"model_type": model_type} if model_type else {},
    }
    if rng.random() < card_share:
        item["cardData"] = {"license": rng.choice(["apache-2.0", "mit", "cc-by-4.0"])}
    return item


def main() -> None:
    models = generate()
    with OUT.open("w", encoding="utf-8") as handle:
        for item in models:
            handle.write(json.dumps(item, sort_keys=True) + "\n")
    print(f"{OUT}: {len(models)} synthetic models")


if __name__ == "__main__":
    main()
