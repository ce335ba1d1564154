"""`import_hub` from a (fake) Hub: exact, resumable, incremental and idempotent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from coding.importers import hub as hub_importer
from coding.importers.hub import HubClient, HubError, import_from_hub
from coding.models import HubModel, ImportRun
from tests.fake_hub import FakeHub, hub_item

pytestmark = pytest.mark.django_db


def _catalogue() -> list[dict]:
    """Nine models, modified on distinct days; one with the Hub's placeholder creation date."""
    return [
        hub_item("google-bert/bert-base-uncased", created="2022-03-02T23:29:04.000Z",
                 modified="2023-01-09T00:00:00.000Z", downloads=72376843, likes=2065),
        hub_item("openai/whisper-tiny", created="2022-09-26T06:50:00.000Z",
                 modified="2023-01-08T00:00:00.000Z", model_type="whisper",
                 pipeline_tag="automatic-speech-recognition"),
        hub_item("gpt2-fans/gpt2-poems", created="2022-10-05T12:00:00.000Z",
                 modified="2023-01-07T00:00:00.000Z", model_type="gpt2", card=False,
                 pipeline_tag="text-generation"),
        hub_item("t5-lab/t5-small-sum", created="2022-11-11T00:00:00.000Z",
                 modified="2023-01-06T00:00:00.000Z", model_type="t5"),
        hub_item("vision/vit-cats", created="2022-12-01T00:00:00.000Z",
                 modified="2023-01-05T00:00:00.000Z", model_type="vit", library="timm"),
        hub_item("someone/no-config", created="2022-12-24T00:00:00.000Z",
                 modified="2023-01-04T00:00:00.000Z", model_type=None, library=None,
                 pipeline_tag=None),
        hub_item("meta/llama-7b", created="2023-01-02T00:00:00.000Z",
                 modified="2023-01-03T00:00:00.000Z", model_type="llama"),
        hub_item("speech/wav2vec2-nl", created="2021-06-01T00:00:00.000Z",
                 modified="2023-01-02T00:00:00.000Z", model_type="wav2vec2"),
        hub_item("old/roberta-2020", created="2020-05-05T00:00:00.000Z",
                 modified="2023-01-01T00:00:00.000Z", model_type="roberta"),
    ]  # fmt: skip


def _client(hub: FakeHub, **kwargs) -> HubClient:
    return HubClient(hub.url, page_size=4, sleep=lambda s: None, **kwargs)


def _stored() -> dict[str, HubModel]:
    return {m.repo_id: m for m in HubModel.objects.all()}


def test_a_full_import_stores_exactly_what_the_hub_serves():
    with FakeHub(_catalogue()) as hub:
        counts, run = import_from_hub(_client(hub))
    assert counts.summary_line() == "models: 9 new, 0 updated, 0 unchanged"
    stored = _stored()
    assert set(stored) == {m["id"] for m in _catalogue()}
    bert = stored["google-bert/bert-base-uncased"]
    assert bert.created_at is None
    assert bert.last_modified == datetime(2023, 1, 9, tzinfo=UTC)
    assert (bert.downloads, bert.likes, bert.model_type) == (72376843, 2065, "bert")
    assert bert.tags == ["transformers", "bert", "fill-mask", "region:us"]
    poems = stored["gpt2-fans/gpt2-poems"]
    assert (poems.has_card_data, poems.pipeline_tag, poems.author) == (
        False,
        "text-generation",
        "gpt2-fans",
    )
    assert poems.created_at == datetime(2022, 10, 5, 12, tzinfo=UTC)
    bare = stored["someone/no-config"]
    assert (bare.model_type, bare.library, bare.pipeline_tag) == ("", "", "")
    assert stored["vision/vit-cats"].library == "timm"
    assert run.state == ImportRun.State.DONE and run.kind == ImportRun.Kind.HUB
    assert run.message == counts.summary_line()


def test_a_second_run_stops_at_the_first_model_not_modified_since_and_changes_nothing():
    with FakeHub(_catalogue()) as hub:
        import_from_hub(_client(hub))
        hub.listing_requests.clear()
        counts, _run = import_from_hub(_client(hub))
        assert counts.summary_line() == "models: 0 new, 0 updated, 1 unchanged"
        assert len(hub.listing_requests) == 1


def test_a_rerun_adds_new_models_and_updates_changed_ones_only():
    with FakeHub(_catalogue()) as hub:
        import_from_hub(_client(hub))
        hub.models.append(
            hub_item("new/distilbert-fresh", created="2023-01-10T00:00:00.000Z",
                     modified="2023-01-10T00:00:00.000Z", model_type="distilbert")
        )  # fmt: skip
        changed = next(m for m in hub.models if m["id"] == "t5-lab/t5-small-sum")
        changed["lastModified"] = "2023-01-11T00:00:00.000Z"
        changed["likes"] = 99
        counts, _run = import_from_hub(_client(hub))
    assert counts.summary_line() == "models: 1 new, 1 updated, 1 unchanged"
    assert HubModel.objects.get(repo_id="t5-lab/t5-small-sum").likes == 99
    assert HubModel.objects.count() == 10


def test_a_failed_run_continues_from_its_stored_cursor():
    with FakeHub(_catalogue()) as hub:
        hub.fail_from = 2
        with pytest.raises(HubError, match="gave up after 2 tries"):
            import_from_hub(_client(hub, max_tries=2))
        run = ImportRun.objects.get(kind=ImportRun.Kind.HUB)
        assert run.state == ImportRun.State.FAILED
        assert run.params["cursor"]
        assert HubModel.objects.count() == 4
        hub.fail_from = None
        hub.listing_requests.clear()
        counts, resumed = import_from_hub(_client(hub))
        assert resumed.pk == run.pk
        assert "cursor" in hub.listing_requests[0]
        assert len(hub.listing_requests) == 2
    assert counts.summary_line() == "models: 9 new, 0 updated, 0 unchanged"
    assert HubModel.objects.count() == 9


def test_since_and_until_select_models_by_creation_date_and_leave_unknown_dates_out():
    with FakeHub(_catalogue()) as hub:
        counts, _run = import_from_hub(
            _client(hub), since=date(2022, 10, 1), until=date(2022, 12, 1)
        )
        # Models modified before --since cannot have been created after it: not fetched.
        assert len(hub.listing_requests) == 3
    assert set(_stored()) == {"gpt2-fans/gpt2-poems", "t5-lab/t5-small-sum", "vision/vit-cats"}
    assert counts.new == 3


def test_max_models_stops_after_that_many():
    with FakeHub(_catalogue()) as hub:
        counts, run = import_from_hub(_client(hub), max_models=5)
    assert counts.new == 5
    assert list(HubModel.objects.order_by("-last_modified").values_list("repo_id", flat=True)) == [
        m["id"] for m in _catalogue()[:5]
    ]
    assert run.params["complete"] is False


def test_refreshing_a_renamed_repo_moves_its_row_to_the_new_id():
    with FakeHub(_catalogue()) as hub:
        hub.renamed["bert-base-uncased"] = "google-bert/bert-base-uncased"
        HubModel.objects.create(repo_id="bert-base-uncased", model_type="bert", likes=1)
        old_pk = HubModel.objects.get().pk
        out = StringIO()
        call_command("import_hub", "--hub-url", hub.url, "--model", "bert-base-uncased", stdout=out)
    assert out.getvalue().strip() == "models: 0 new, 1 updated, 0 unchanged"
    moved = HubModel.objects.get()
    assert (moved.pk, moved.repo_id, moved.likes) == (old_pk, "google-bert/bert-base-uncased", 2065)


def test_the_command_prints_the_shared_summary_line_and_fails_clearly(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(hub_importer.time, "sleep", waits.append)
    with FakeHub(_catalogue()) as hub:
        out = StringIO()
        call_command("import_hub", "--hub-url", hub.url, stdout=out)
        assert out.getvalue().strip() == "models: 9 new, 0 updated, 0 unchanged"
        hub.fail_from = 1
        with pytest.raises(CommandError, match="run the same command again to continue"):
            call_command("import_hub", "--hub-url", hub.url, stdout=StringIO())
    assert len(waits) == 5
    with pytest.raises(CommandError, match="is not a date"):
        call_command("import_hub", "--since", "last week")


def test_a_killed_run_continues_from_the_last_stored_cursor():
    class Killed(BaseException):
        pass

    def kill_after_first_page(done: int, total: int | None) -> None:
        raise Killed

    with FakeHub(_catalogue()) as hub:
        with pytest.raises(Killed):
            import_from_hub(_client(hub), progress=kill_after_first_page)
        run = ImportRun.objects.get(kind=ImportRun.Kind.HUB)
        assert run.state == ImportRun.State.FETCHING
        assert HubModel.objects.count() == 4
        hub.listing_requests.clear()
        counts, resumed = import_from_hub(_client(hub))
        assert resumed.pk == run.pk
        assert len(hub.listing_requests) == 2
    assert counts.summary_line() == "models: 9 new, 0 updated, 0 unchanged"
    assert HubModel.objects.count() == 9


def test_a_cancelled_run_stops_after_the_current_page_and_can_be_continued(monkeypatch):
    real_store = hub_importer.store_models

    def cancel_while_a_page_is_written(records):
        # A staff member presses Cancel on the imports page while this page is written.
        ImportRun.objects.filter(kind=ImportRun.Kind.HUB).update(cancel_requested=True)
        monkeypatch.setattr(hub_importer, "store_models", real_store)
        return real_store(records)

    monkeypatch.setattr(hub_importer, "store_models", cancel_while_a_page_is_written)
    with FakeHub(_catalogue()) as hub:
        counts, run = import_from_hub(_client(hub))
        assert run.state == ImportRun.State.CANCELLED
        assert counts.new == 4 and HubModel.objects.count() == 4
        counts, resumed = import_from_hub(_client(hub))
    assert resumed.pk == run.pk and resumed.state == ImportRun.State.DONE
    assert counts.summary_line() == "models: 9 new, 0 updated, 0 unchanged"


def test_a_terminal_gets_a_progress_bar_on_stderr_and_the_summary_stays_on_stdout():
    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    with FakeHub(_catalogue()) as hub:
        out, err = StringIO(), Terminal()
        call_command("import_hub", "--hub-url", hub.url, stdout=out, stderr=err)
    assert out.getvalue().strip() == "models: 9 new, 0 updated, 0 unchanged"
    assert "\r[" in err.getvalue() and "9/9 models" in err.getvalue()
