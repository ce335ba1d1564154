"""Hugging Face Hub model metadata: a small API client, dump files, and one write path.

Listing (``GET /api/models``) is sorted by last modification, newest first, and followed
through the ``Link: <...>; rel="next"`` cursor. That order makes runs:

1. resumable: after every page the models and the next cursor are stored in one
   transaction (``ImportRun`` of kind ``hub``), so a killed or failed run with the same
   options continues from that cursor;
2. incremental: a finished full run remembers the newest modification time it saw; the
   next run stops at the first model not modified since then (new and changed models
   are always modified later than that);
3. idempotent: a model is written only when one of its stored fields changed.

``--since``/``--until`` select models by creation time. Models the Hub dates
``2022-03-02T23:29:04`` (the placeholder for "created before dates were kept") have an
unknown creation time; they are imported only when no creation window is asked for.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..models import HubModel, ImportRun

USER_AGENT = "forum-coding-hub-importer/0.1 (+https://github.com/forum-coding)"
HUB_URL = "https://huggingface.co"
PLACEHOLDER_CREATED = datetime(2022, 3, 2, 23, 29, 4, tzinfo=UTC)
EXPAND = (
    "author", "createdAt", "lastModified", "pipeline_tag", "library_name", "config", "tags",
    "cardData", "downloads", "likes",
)  # fmt: skip
STORED_FIELDS = (
    "author", "created_at", "last_modified", "pipeline_tag", "library", "model_type", "tags",
    "has_card_data", "downloads", "likes",
)  # fmt: skip
WRITE_BATCH = 500


class HubError(Exception):
    """The Hub could not be read; the message says why and what was tried."""


class HubDataError(ValueError):
    """A model record or dump file that cannot be imported; names line and field."""


@dataclass
class HubRecord:
    repo_id: str
    author: str = ""
    created_at: datetime | None = None
    last_modified: datetime | None = None
    pipeline_tag: str = ""
    library: str = ""
    model_type: str = ""
    tags: list[str] = field(default_factory=list)
    has_card_data: bool = False
    downloads: int = 0
    likes: int = 0

    def values(self) -> dict:
        data = asdict(self)
        data.pop("repo_id")
        return data


@dataclass
class ModelCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: ModelCounts) -> ModelCounts:
        self.new += other.new
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self

    def summary_line(self) -> str:
        return f"models: {self.new} new, {self.updated} updated, {self.unchanged} unchanged"


# Parsing -------------------------------------------------------------------------------


def parse_time(value: object, name: str = "time") -> datetime | None:
    """An ISO-8601 time in UTC; ``None`` when empty or the Hub's placeholder date."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise HubDataError(f"field {name!r}: {value!r} is not a date")
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise HubDataError(f"field {name!r}: {value!r} is not a date") from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if name.lower().startswith("created") and parsed.replace(microsecond=0) == (
        PLACEHOLDER_CREATED
    ):
        return None
    return parsed


def _count(value: object, name: str) -> int:
    if value is None or value == "":
        return 0
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise HubDataError(f"field {name!r}: {value!r} is not a number") from None
    if number < 0 or not number.is_integer():
        raise HubDataError(f"field {name!r}: {value!r} is not a count")
    return int(number)


def _text(value: object, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise HubDataError(f"field {name!r}: {value!r} is not text")
    text = value.strip()
    if len(text) > limit:
        raise HubDataError(f"field {name!r}: longer than {limit} characters")
    return text


def _bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes", "y", "t"}:
        return True
    if lowered in {"0", "false", "no", "n", "f", ""}:
        return False
    raise HubDataError(f"field {name!r}: {value!r} is not true or false")


def _tags(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise HubDataError(f"field 'tags': {text[:40]!r} is not a JSON list") from None
        else:
            sep = ";" if ";" in text else "|" if "|" in text else ","
            value = [t for t in text.split(sep)]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise HubDataError("field 'tags': not a list of strings")
    return [t.strip() for t in value if t.strip()]


def _first(item: dict, *names: str) -> tuple[str, object]:
    for name in names:
        if name in item:
            return name, item[name]
    return names[0], None


def parse_model(item: dict) -> HubRecord:
    """One model from a Hub listing or a dump row (flat column names are accepted too)."""
    if not isinstance(item, dict):
        raise HubDataError("not a JSON object")
    id_name, repo_id = _first(item, "id", "modelId", "repo_id", "model_id")
    repo_id = _text(repo_id, id_name, 300)
    if not repo_id:
        raise HubDataError("field 'id': missing")
    config = item.get("config")
    if config is not None and not isinstance(config, dict):
        raise HubDataError(f"field 'config': {config!r} is not an object")
    if config and config.get("model_type") is not None:
        model_type = _text(config.get("model_type"), "config.model_type", 100)
    else:
        type_name, raw_type = _first(item, "model_type", "config.model_type")
        model_type = _text(raw_type, type_name, 100)
    if "cardData" in item:
        has_card = bool(item["cardData"])
    else:
        card_name, raw_card = _first(item, "has_card_data", "has_card", "cardData")
        has_card = _bool(raw_card, card_name)
    author_name, author = _first(item, "author")
    created_name, created = _first(item, "createdAt", "created_at")
    modified_name, modified = _first(item, "lastModified", "last_modified")
    library_name, library = _first(item, "library_name", "library")
    return HubRecord(
        repo_id=repo_id,
        author=_text(author, author_name, 200) or (repo_id.split("/")[0] if "/" in repo_id else ""),
        created_at=parse_time(created, created_name),
        last_modified=parse_time(modified, modified_name),
        pipeline_tag=_text(item.get("pipeline_tag"), "pipeline_tag", 100),
        library=_text(library, library_name, 100),
        model_type=model_type,
        tags=_tags(item.get("tags")),
        has_card_data=has_card,
        downloads=_count(item.get("downloads"), "downloads"),
        likes=_count(item.get("likes"), "likes"),
    )


def parse_ratelimit_wait(headers: requests.structures.CaseInsensitiveDict) -> float | None:
    """Seconds to wait from ``Retry-After`` or ``RateLimit: "api";r=0;t=SECONDS``."""
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            try:
                when = parsedate_to_datetime(retry_after)
                return max(0.0, (when - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                pass
    ratelimit = headers.get("RateLimit")
    if ratelimit:
        for part in ratelimit.split(";"):
            key, _, value = part.strip().partition("=")
            if key == "t":
                try:
                    return max(0.0, float(value))
                except ValueError:
                    return None
    return None


# Fetching ------------------------------------------------------------------------------


class HubClient:
    """The Hub's model API around one ``requests.Session``.

    Rate limits (429) wait as long as the server asks; server errors and dropped
    connections back off exponentially with jitter; after ``max_tries`` the call fails
    with a message naming the URL and the last answer. Redirects are followed only
    within the Hub's own host.
    """

    def __init__(
        self,
        base_url: str = HUB_URL,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        max_tries: int = 6,
        backoff: float = 1.0,
        max_wait: float = 600.0,
        page_size: int = 100,
        sleep: Callable[[float], None] | None = None,
        on_wait: Callable[[float, str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self.max_tries = max_tries
        self.backoff = backoff
        self.max_wait = max_wait
        self.page_size = page_size
        self.sleep = sleep or (lambda seconds: time.sleep(seconds))
        self.on_wait = on_wait
        self.requests_made = 0
        self.waited = 0.0
        self._host = urlsplit(self.base_url)[:2]

    def close(self) -> None:
        self.session.close()

    def _wait(self, seconds: float, reason: str) -> None:
        seconds = min(seconds, self.max_wait)
        self.waited += seconds
        if self.on_wait:
            self.on_wait(seconds, reason)
        self.sleep(seconds)

    def get(self, url: str, params: list[tuple[str, str]] | None = None) -> requests.Response:
        """GET with retries and same-host redirects; returns a 2xx response."""
        last = ""
        for attempt in range(1, self.max_tries + 1):
            try:
                response = self._get_following(url, params)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"connection failed ({exc.__class__.__name__})"
                if attempt < self.max_tries:
                    self._wait(self._backoff(attempt), last)
                continue
            if response.status_code == 429:
                last = "429 Too Many Requests"
                wait = parse_ratelimit_wait(response.headers)
                if attempt < self.max_tries:
                    self._wait(wait if wait is not None else self._backoff(attempt), last)
                continue
            if response.status_code >= 500:
                last = f"{response.status_code} {response.reason}"
                if attempt < self.max_tries:
                    self._wait(self._backoff(attempt), last)
                continue
            if response.status_code >= 400:
                message = response.headers.get("X-Error-Message") or response.reason
                raise HubError(f"{response.url}: {response.status_code} {message}")
            return response
        raise HubError(f"{url}: gave up after {self.max_tries} tries (last: {last})")

    def _backoff(self, attempt: int) -> float:
        return self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random() / 2)

    def _get_following(self, url: str, params: list[tuple[str, str]] | None) -> requests.Response:
        for _ in range(6):
            self.requests_made += 1
            response = self.session.get(
                url, params=params, timeout=self.timeout, allow_redirects=False
            )
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("Location", "")
            target = urljoin(response.url, location)
            if urlsplit(target)[:2] != self._host:
                raise HubError(f"{response.url}: redirect to another host refused ({target})")
            url, params = target, None
        raise HubError(f"{url}: too many redirects")

    def list_pages(
        self, first_url: str | None = None
    ) -> Iterator[tuple[list[dict], str | None, int | None]]:
        """Pages of the model listing, newest modification first: (items, next URL, total)."""
        if first_url:
            url, params = first_url, None
        else:
            url = f"{self.base_url}/api/models"
            params = [("sort", "lastModified"), ("limit", str(self.page_size))]
            params += [("expand", name) for name in EXPAND]
        while url:
            response = self.get(url, params)
            try:
                items = response.json()
            except ValueError:
                raise HubError(f"{response.url}: the answer is not JSON") from None
            if not isinstance(items, list):
                raise HubError(f"{response.url}: expected a JSON list of models")
            next_url = response.links.get("next", {}).get("url")
            if next_url:
                next_url = urljoin(response.url, next_url)
                if urlsplit(next_url)[:2] != self._host:
                    raise HubError(f"{response.url}: next page on another host refused")
            total = response.headers.get("X-Total-Count")
            yield items, next_url, int(total) if total and total.isdigit() else None
            url, params = next_url, None

    def model_info(self, repo_id: str) -> dict:
        """One model's record; a renamed repo answers under its new id."""
        response = self.get(f"{self.base_url}/api/models/{repo_id}")
        try:
            item = response.json()
        except ValueError:
            raise HubError(f"{response.url}: the answer is not JSON") from None
        if not isinstance(item, dict):
            raise HubError(f"{response.url}: expected a JSON object")
        return item


# Writing -------------------------------------------------------------------------------


def store_models(records: Iterable[HubRecord]) -> ModelCounts:
    """Write records in one transaction per batch; only changed rows are written."""
    counts = ModelCounts()
    batch: list[HubRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) >= WRITE_BATCH:
            counts += _store_batch(batch)
            batch = []
    if batch:
        counts += _store_batch(batch)
    return counts


def _store_batch(records: list[HubRecord]) -> ModelCounts:
    counts = ModelCounts()
    by_id = {r.repo_id: r for r in records}
    now = timezone.now()
    with transaction.atomic():
        existing = {m.repo_id: m for m in HubModel.objects.filter(repo_id__in=list(by_id))}
        new, changed = [], []
        for repo_id, record in by_id.items():
            values = record.values()
            model = existing.get(repo_id)
            if model is None:
                new.append(HubModel(repo_id=repo_id, **values))
            elif any(getattr(model, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(model, k, v)
                model.refreshed_at = now
                changed.append(model)
            else:
                counts.unchanged += 1
        if new:
            HubModel.objects.bulk_create(new)
        if changed:
            HubModel.objects.bulk_update(changed, [*STORED_FIELDS, "refreshed_at"])
    counts.new, counts.updated = len(new), len(changed)
    return counts


# Dump files ----------------------------------------------------------------------------


def read_dump(path: str | Path) -> list[HubRecord]:
    """Every model of a JSONL or CSV dump, or ``HubDataError`` naming each bad line."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise HubDataError(f"{path}: no such file") from None
    if size > settings.IMPORT_MAX_BYTES:
        raise HubDataError(f"{path}: {size} bytes is more than IMPORT_MAX_BYTES")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HubDataError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() == ".csv" or (text.lstrip()[:1] not in ("{", "")):
        rows = _csv_rows(text)
    else:
        rows = _jsonl_rows(text)
    records: list[HubRecord] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        if isinstance(row, str):
            errors.append(f"{path}, line {line}: {row}")
            continue
        try:
            record = parse_model(row)
        except HubDataError as exc:
            errors.append(f"{path}, line {line}: {exc}")
            continue
        if record.repo_id in first_line:
            errors.append(
                f"{path}, line {line}: model {record.repo_id!r} already on line "
                f"{first_line[record.repo_id]}"
            )
            continue
        first_line[record.repo_id] = line
        records.append(record)
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise HubDataError("; ".join(errors[:10]) + more)
    if not records:
        raise HubDataError(f"{path}: no models in the file")
    return records


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict | str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON ({exc.msg} at column {exc.colno})"


def _csv_rows(text: str) -> Iterator[tuple[int, dict | str]]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or not {"id", "modelId", "repo_id", "model_id"} & set(
        reader.fieldnames
    ):
        yield 1, "no 'id' column (or modelId, repo_id)"
        return
    for row in reader:
        if None in row:
            yield reader.line_num, "more cells than columns"
            continue
        if not any((v or "").strip() for v in row.values()):
            continue
        yield reader.line_num, {k: v for k, v in row.items() if v is not None}


def import_dump(path: str | Path) -> ModelCounts:
    """Validate the whole dump first, then write it; a bad line writes nothing."""
    return store_models(read_dump(path))


# Live import ---------------------------------------------------------------------------


def _in_window(record: HubRecord, since: date | None, until: date | None) -> bool:
    if since is None and until is None:
        return True
    if record.created_at is None:
        return False
    if since and record.created_at < datetime.combine(since, datetime.min.time(), UTC):
        return False
    end = datetime.combine(until, datetime.min.time(), UTC) + timedelta(days=1) if until else None
    return not (end and record.created_at >= end)


def _query(since: date | None, until: date | None, max_models: int | None) -> dict:
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "max_models": max_models,
    }


def _high_water(since: date | None) -> datetime | None:
    """The newest modification seen by the last full run covering at least ``since``."""
    for run in ImportRun.objects.filter(kind=ImportRun.Kind.HUB, state=ImportRun.State.DONE):
        params = run.params or {}
        if not params.get("complete") or not params.get("high_water"):
            continue
        earlier = (params.get("query") or {}).get("since")
        if earlier is None or (since is not None and earlier <= since.isoformat()):
            return datetime.fromisoformat(params["high_water"])
    return None


def open_run(
    *,
    since: date | None = None,
    until: date | None = None,
    max_models: int | None = None,
    user=None,
    queued: bool = False,
) -> ImportRun:
    """The unfinished run with these options (to continue it), or a new one."""
    query = _query(since, until, max_models)
    run = _resumable_run(query)
    if run is None:
        run = ImportRun.objects.create(
            kind=ImportRun.Kind.HUB,
            params={"query": query, "cursor": None, "counts": asdict(ModelCounts()), "seen": 0},
            created_by=user,
        )
    if queued:
        ImportRun.objects.filter(pk=run.pk).update(
            state=ImportRun.State.QUEUED, cancel_requested=False, finished_at=None, message=""
        )
        run.refresh_from_db()
    return run


def run_options(run: ImportRun) -> dict:
    """The ``since``/``until``/``max_models`` a run was started with."""
    query = (run.params or {}).get("query") or {}
    return {
        "since": date.fromisoformat(query["since"]) if query.get("since") else None,
        "until": date.fromisoformat(query["until"]) if query.get("until") else None,
        "max_models": query.get("max_models"),
    }


def _resumable_run(query: dict) -> ImportRun | None:
    unfinished = (*ImportRun.ACTIVE_STATES, ImportRun.State.FAILED, ImportRun.State.CANCELLED)
    for run in ImportRun.objects.filter(kind=ImportRun.Kind.HUB, state__in=unfinished):
        if (run.params or {}).get("query") == query and run.params.get("cursor"):
            return run
    return None


PROGRESS_FIELDS = (
    "params", "state", "message", "topics_done", "topics_total", "requests_made",
    "wait_seconds", "heartbeat_at",
)  # fmt: skip


def import_from_hub(
    client: HubClient,
    *,
    since: date | None = None,
    until: date | None = None,
    max_models: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    user=None,
    run: ImportRun | None = None,
) -> tuple[ModelCounts, ImportRun]:
    """Import the Hub's model listing into ``HubModel``; see the module docstring.

    ``run`` is a run queued by ``open_run`` (a background import); without it the run
    with the same options that stopped early is continued, or a new one started.
    """
    if run is None:
        run = open_run(since=since, until=until, max_models=max_models, user=user)
    params = run.params
    counts = ModelCounts(**params.get("counts", {}))
    stored = counts.new + counts.updated + counts.unchanged
    stop_at = _high_water(since)
    if since is not None:
        since_start = datetime.combine(since, datetime.min.time(), UTC)
        stop_at = max(stop_at, since_start) if stop_at else since_start
    run.state = ImportRun.State.FETCHING
    run.started_at = run.started_at or timezone.now()
    run.message = ""
    run.cancel_requested = False
    run.finished_at = None
    run.save(update_fields=["state", "started_at", "message", "cancel_requested", "finished_at"])

    def waiting(seconds: float, reason: str) -> None:
        ImportRun.objects.filter(pk=run.pk).update(
            state=ImportRun.State.WAITING,
            message=f"waiting {seconds:.0f} s ({reason})",
            heartbeat_at=timezone.now(),
        )

    client.on_wait = waiting
    finished = truncated = False
    try:
        for items, next_url, total in client.list_pages(params.get("cursor")):
            page: list[HubRecord] = []
            for item in items:
                try:
                    record = parse_model(item)
                except HubDataError as exc:
                    raise HubError(f"the Hub sent a model that cannot be read: {exc}") from None
                if params.get("high_water") is None and record.last_modified:
                    params["high_water"] = record.last_modified.isoformat()
                if stop_at and record.last_modified and record.last_modified < stop_at:
                    finished = True
                    break
                if not _in_window(record, since, until):
                    continue
                if max_models is not None and stored + len(page) >= max_models:
                    truncated = True
                    break
                page.append(record)
            params["seen"] = params.get("seen", 0) + len(items)
            with transaction.atomic():
                counts += store_models(page)
                stored += len(page)
                params["cursor"] = None if (finished or truncated) else next_url
                params["counts"] = asdict(counts)
                run.params = params
                run.state = ImportRun.State.FETCHING
                run.message = ""
                run.topics_done = stored
                run.topics_total = min(total, max_models) if total and max_models else total
                run.requests_made += client.requests_made
                run.wait_seconds += client.waited
                run.heartbeat_at = timezone.now()
                # Not cancel_requested: a cancel sent meanwhile must survive this save.
                run.save(update_fields=[*PROGRESS_FIELDS])
            client.requests_made, client.waited = 0, 0.0
            if progress:
                progress(stored, max_models or total)
            if finished or truncated or not next_url:
                break
            if ImportRun.objects.filter(pk=run.pk, cancel_requested=True).exists():
                ImportRun.objects.filter(pk=run.pk).update(
                    state=ImportRun.State.CANCELLED,
                    message=f"Cancelled: {counts.summary_line()}. Run again to continue.",
                    finished_at=timezone.now(),
                )
                run.refresh_from_db()
                return counts, run
    except HubError as exc:
        run.state = ImportRun.State.FAILED
        run.message = str(exc)
        run.finished_at = timezone.now()
        run.save(update_fields=["state", "message", "finished_at"])
        raise
    params["complete"] = not truncated and until is None
    params["cursor"] = None
    run.params = params
    run.state = ImportRun.State.DONE
    run.message = counts.summary_line()
    run.finished_at = timezone.now()
    run.save(update_fields=["params", "state", "message", "finished_at"])
    return counts, run


def refresh_models(client: HubClient, repo_ids: Iterable[str]) -> ModelCounts:
    """Fetch named models one by one; a renamed repo's row takes its new id."""
    counts = ModelCounts()
    for repo_id in repo_ids:
        try:
            record = parse_model(client.model_info(repo_id))
        except HubDataError as exc:
            raise HubError(f"{repo_id}: the Hub sent a record that cannot be read: {exc}") from None
        with transaction.atomic():
            renamed = False
            old = HubModel.objects.filter(repo_id=repo_id).first()
            if record.repo_id != repo_id and old is not None:
                if HubModel.objects.filter(repo_id=record.repo_id).exists():
                    old.delete()
                else:
                    old.repo_id = record.repo_id
                    old.save(update_fields=["repo_id", "refreshed_at"])
                    renamed = True
            result = store_models([record])
            if renamed and result.unchanged:
                result = ModelCounts(updated=1)
            counts += result
    return counts
