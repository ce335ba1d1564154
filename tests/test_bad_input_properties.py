"""Malformed, truncated, huge or wrongly encoded files get a clear error and change nothing.

Each property starts from a file the importer accepts and breaks it: cut short, bytes
overwritten, re-encoded, replaced by noise. The command either imports it (a damaged
file can still be valid) or refuses it with a ``CommandError`` and leaves every table
as it was. Any other exception is a crash the user would see as a traceback.
"""

from __future__ import annotations

import gzip
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.agreement import AgreementInputError, read_long_csv
from coding.models import (
    Code,
    CodeApplication,
    Codebook,
    CodebookVersion,
    Coding,
    ImportRun,
    Post,
    Quote,
    Thread,
)
from tests.factories_corpus import SAMPLE
from tests.factories_exports import make_coded_project

pytestmark = pytest.mark.django_db

PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
TABLES = (Thread, Post, ImportRun, Codebook, CodebookVersion, Code, Coding, CodeApplication, Quote)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in TABLES}


def damaged(seed: bytes) -> st.SearchStrategy[bytes]:
    """``seed`` cut short, overwritten in places, re-encoded, or replaced by noise."""
    text = seed.decode("utf-8")
    return st.one_of(
        st.integers(0, len(seed) - 1).map(lambda n: seed[:n]),
        st.tuples(st.integers(0, len(seed) - 1), st.binary(min_size=1, max_size=16)).map(
            lambda cut: seed[: cut[0]] + cut[1] + seed[cut[0] + len(cut[1]) :]
        ),
        st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252"]).map(
            lambda encoding: text.encode(encoding, errors="replace")
        ),
        st.binary(max_size=3000),
        st.text(max_size=400).map(str.encode),
    )


def refused_or_imported(command: list[str]) -> str | None:
    """Run the command inside a rolled-back savepoint; the error message, or None."""
    before = counts()
    with transaction.atomic():
        try:
            call_command(*command, stdout=StringIO(), stderr=StringIO())
        except CommandError as exc:
            message = str(exc)
            assert message.strip(), "an empty error message"
            assert "Traceback" not in message
            assert counts() == before, f"a refused file changed the database: {message}"
            return message
        finally:
            transaction.set_rollback(True)
    return None


def sample_threads(count: int = 3) -> bytes:
    """The first sample topics as JSON lines, with non-ASCII titles."""
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as handle:
        topics = [json.loads(line) for line, _ in zip(handle, range(count), strict=False)]
    for topic in topics:
        topic["title"] += " – café ✓"
    return "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in topics).encode()


def test_the_thread_importer_refuses_damaged_files_cleanly(tmp_path):
    seed = sample_threads()
    assert (
        refused_or_imported(["import_threads", _write(tmp_path, "ok.jsonl", seed), "--source", "F"])
        is None
    )

    @PROPERTY
    @given(data=damaged(seed), suffix=st.sampled_from([".jsonl", ".json", ".csv"]))
    def check(data: bytes, suffix: str) -> None:
        path = _write(tmp_path, f"bad{suffix}", data)
        refused_or_imported(["import_threads", path, "--source", "Damaged forum"])

    check()


def test_a_thread_file_larger_than_the_limit_is_refused_before_reading(tmp_path, settings):
    settings.IMPORT_MAX_BYTES = 1000
    path = _write(tmp_path, "huge.jsonl", sample_threads(20))

    message = refused_or_imported(["import_threads", path, "--source", "F"])

    assert message is not None and "larger" in message


def _write(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


CODEBOOK_CSV = (
    "key,name,parent,definition\n"
    "problems,Problems,,Trouble of any kind\n"
    "install,Installation,problems,pip or conda errors – “quoted”\n"
    "memory,Out of memory,problems,GPU RAM ✓\n"
).encode()


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_the_codebook_loader_refuses_damaged_files_cleanly(tmp_path, suffix):
    if suffix == ".json":
        seed = (Path(__file__).parent.parent / "coding" / "default_codebook.json").read_bytes()
    else:
        seed = CODEBOOK_CSV
    ok = _write(tmp_path, f"ok{suffix}", seed)
    assert refused_or_imported(["load_codebook", ok, "--name", "Seed"]) is None

    @PROPERTY
    @given(data=damaged(seed))
    def check(data: bytes) -> None:
        path = _write(tmp_path, f"bad{suffix}", data)
        refused_or_imported(["load_codebook", path, "--name", "Damaged"])

    check()


def test_the_codebook_loader_refuses_a_damaged_refi_qda_codebook(tmp_path):
    out = tmp_path / "seed.qdc"
    call_command("load_codebook", "--default", stdout=StringIO())
    call_command("export_codebook", str(out), stdout=StringIO())
    seed = out.read_bytes()

    @PROPERTY
    @given(data=damaged(seed))
    def check(data: bytes) -> None:
        path = _write(tmp_path, "bad.qdc", data)
        refused_or_imported(["load_codebook", path, "--name", "Damaged"])

    check()


def test_the_codings_importer_refuses_damaged_files_cleanly(tmp_path, users):
    project = make_coded_project(users)
    out = tmp_path / "long.csv"
    call_command(
        "export_codings", project.slug, "--format", "long", "--output", str(out), stdout=StringIO()
    )
    seed = out.read_bytes()
    Coding.objects.filter(unit__project=project).delete()
    assert refused_or_imported(["import_codings", project.slug, str(out)]) is None

    @PROPERTY
    @given(data=damaged(seed))
    def check(data: bytes) -> None:
        path = _write(tmp_path, "bad.csv", data)
        refused_or_imported(["import_codings", project.slug, path])

    check()


AGREEMENT_CSV = "unit,coder,code\nu1,ann,install\nu1,bo,install\nu2,ann,docs\nu2,bo,mémoire\n"


@PROPERTY
@given(data=damaged(AGREEMENT_CSV.encode()))
def test_the_agreement_reader_gives_a_table_or_a_clear_error(data):
    try:
        table = read_long_csv(StringIO(data.decode("utf-8", errors="strict")), name="in.csv")
    except UnicodeDecodeError:
        return
    except AgreementInputError as exc:
        assert str(exc).startswith("in.csv")
        return
    assert {"unit", "coder"} <= set(table.columns)


@PROPERTY
@given(data=damaged(AGREEMENT_CSV.encode()))
def test_the_agreement_command_refuses_damaged_files_with_a_message(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("agreement") / "in.csv"
    path.write_bytes(data)
    try:
        call_command("agreement", "--input", str(path), "--json", stdout=StringIO())
    except CommandError as exc:
        assert "in.csv" in str(exc)
