"""`import_hub --from-file`: Hub metadata from a JSONL or CSV dump, no network needed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from coding.models import HubModel
from tests.fake_hub import hub_item

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "hub_sample.jsonl"

CSV_DUMP = """\
id,author,created_at,last_modified,pipeline_tag,library,model_type,tags,has_card_data,downloads,likes
org/bert-a,org,2021-05-03T10:00:00Z,2022-01-01T00:00:00Z,fill-mask,transformers,bert,transformers;bert,true,12,3
org/gpt2-b,,2022-03-02T23:29:04.000Z,2022-02-01T00:00:00Z,text-generation,transformers,gpt2,"[""gpt2""]",0,,
org/plain,org,2023-01-01,,,,,,no,5.0,0
"""


def _import(path: Path | str) -> str:
    out = StringIO()
    call_command("import_hub", "--from-file", str(path), stdout=out)
    return out.getvalue().strip()


def _jsonl(tmp_path: Path, items: list[dict], name: str = "dump.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def test_a_jsonl_dump_in_the_hub_shape_is_imported_and_reimporting_changes_nothing(tmp_path):
    path = _jsonl(tmp_path, [hub_item("a/one"), hub_item("b/two", card=False, model_type="t5")])
    assert _import(path) == "models: 2 new, 0 updated, 0 unchanged"
    assert _import(path) == "models: 0 new, 0 updated, 2 unchanged"
    two = HubModel.objects.get(repo_id="b/two")
    assert (two.model_type, two.has_card_data) == ("t5", False)


def test_a_csv_dump_with_flat_columns_is_imported(tmp_path):
    path = tmp_path / "dump.csv"
    path.write_text(CSV_DUMP)
    assert _import(path) == "models: 3 new, 0 updated, 0 unchanged"
    a, b, plain = HubModel.objects.order_by("repo_id")
    assert (a.repo_id, a.tags, a.has_card_data, a.downloads, a.likes) == (
        "org/bert-a",
        ["transformers", "bert"],
        True,
        12,
        3,
    )
    assert a.created_at == datetime(2021, 5, 3, 10, tzinfo=UTC)
    assert (b.created_at, b.tags, b.author, b.downloads) == (None, ["gpt2"], "org", 0)
    assert (plain.repo_id, plain.model_type, plain.last_modified) == ("org/plain", "", None)


def test_a_changed_model_in_a_later_dump_is_updated(tmp_path):
    _import(_jsonl(tmp_path, [hub_item("a/one", likes=1), hub_item("b/two")]))
    later = _jsonl(tmp_path, [hub_item("a/one", likes=5), hub_item("c/three")], "later.jsonl")
    assert _import(later) == "models: 1 new, 1 updated, 0 unchanged"
    assert HubModel.objects.get(repo_id="a/one").likes == 5


def test_a_bad_line_names_line_and_field_and_nothing_is_written(tmp_path):
    items = [hub_item("a/one"), hub_item("b/two"), hub_item("c/three")]
    items[2]["createdAt"] = "yesterday"
    path = _jsonl(tmp_path, items)
    with pytest.raises(CommandError, match=r"dump.jsonl, line 3: field 'createdAt': 'yesterday'"):
        _import(path)
    assert not HubModel.objects.exists()


def test_broken_json_a_missing_id_and_a_repeated_model_are_all_reported(tmp_path):
    path = tmp_path / "dump.jsonl"
    lines = [json.dumps(hub_item("a/one")), "{not json", json.dumps({"likes": 3}), ""]
    lines.append(json.dumps(hub_item("a/one")))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CommandError) as caught:
        _import(path)
    message = str(caught.value)
    assert "line 2: not valid JSON" in message
    assert "line 3: field 'id': missing" in message
    assert "line 5: model 'a/one' already on line 1" in message
    assert not HubModel.objects.exists()


def test_a_csv_without_an_id_column_is_refused(tmp_path):
    path = tmp_path / "dump.csv"
    path.write_text("name,likes\nx,1\n")
    with pytest.raises(CommandError, match=r"dump.csv, line 1: no 'id' column"):
        _import(path)


def test_the_bundled_sample_is_synthetic_and_imports_cleanly():
    lines = SAMPLE.read_text().splitlines()
    assert all("synthetic" in json.loads(line)["tags"] for line in lines)
    assert _import(SAMPLE) == f"models: {len(lines)} new, 0 updated, 0 unchanged"
    types = set(HubModel.objects.values_list("model_type", flat=True))
    assert {"bert", "gpt2", "t5", "roberta", "distilbert", "wav2vec2", "vit", "whisper"} <= types
    assert "llama" in types
    assert HubModel.objects.filter(created_at__isnull=True).exists()


def test_the_sample_generator_is_deterministic():
    from sample_data.make_hub_sample import generate

    written = [json.loads(line) for line in SAMPLE.read_text().splitlines()]
    assert generate() == written
