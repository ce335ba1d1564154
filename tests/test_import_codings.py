import zipfile
from io import StringIO
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from django.core.management import CommandError, call_command

from coding.models import Coding, Membership, Project, Quote, Role, Round, Unit
from tests.factories import make_user
from tests.factories_exports import make_coded_project

pytestmark = pytest.mark.django_db


def _snapshot(project: Project) -> set:
    """Every coding as (thread id, coder, codes, quotes, flags, memo), independent of ids."""
    out = set()
    for coding in Coding.objects.filter(unit__project=project).select_related(
        "unit__thread", "coder"
    ):
        codes = tuple(sorted(a.code.key for a in coding.applications.all()))
        quotes = tuple(
            sorted(
                (q.application.code.key, q.post.external_id, q.start, q.end, q.text)
                for q in Quote.objects.filter(application__coding=coding)
            )
        )
        out.add(
            (
                coding.unit.thread.external_id,
                coding.coder.username,
                codes,
                quotes,
                coding.not_relevant,
                coding.unsure,
                coding.memo,
            )
        )
    return out


def _empty_copy(project: Project, users: dict) -> Project:
    copy = Project.objects.create(
        name="Copy",
        slug=f"{project.slug}-copy",
        created_by=users["admin"],
        codebook_version=project.codebook_version,
    )
    for m in Membership.objects.filter(project=project):
        Membership.objects.create(project=copy, user=m.user, role=m.role)
    round_ = Round.objects.create(project=copy, name="Main")
    for unit in project.units.all():
        Unit.objects.create(
            project=copy, round=round_, thread=unit.thread, post=unit.post, position=unit.position
        )
    return copy


@pytest.mark.parametrize(
    ("fmt", "extra"), [("long", ["--no-formula-guard"]), ("long", []), ("qdpx", [])]
)
def test_an_export_imported_into_an_empty_copy_reproduces_the_codings(users, tmp_path, fmt, extra):
    # The memos start with = + - @, a tab and a carriage return: the default export
    # guards them with an apostrophe, which the import takes off again.
    project = make_coded_project(users)
    path = tmp_path / ("export.csv" if fmt == "long" else "export.qdpx")
    call_command(
        "export_codings",
        project.slug,
        "--format",
        fmt,
        "--output",
        str(path),
        *extra,
        stdout=StringIO(),
    )
    copy = _empty_copy(project, users)

    out = StringIO()
    call_command("import_codings", copy.slug, str(path), stdout=out)

    assert out.getvalue().strip() == "codings: 6 imported"
    if fmt == "long":
        assert _snapshot(copy) == _snapshot(project)
    else:
        # A .qdpx carries no 'unsure' flag; everything else survives.
        strip = lambda rows: {r[:5] + r[6:] for r in rows}  # noqa: E731
        assert strip(_snapshot(copy)) == strip(_snapshot(project))
    assert copy.units.first().assignments.filter(status="done").count() == 2


def test_unknown_codes_and_coders_are_listed_and_nothing_is_written(users, tmp_path):
    project = make_coded_project(users)
    copy = _empty_copy(project, users)
    make_user("stranger")
    path = tmp_path / "bad.csv"
    path.write_text(
        "unit,coder,code,source,thread_id,post_id\n"
        f",alice,install,{'exported forum'},1,\n"
        f",alice,no_such_code,exported forum,1,\n"
        f",stranger,docs,exported forum,2,\n"
        f",bob,docs,exported forum,99,\n"
    )
    with pytest.raises(CommandError) as error:
        call_command("import_codings", copy.slug, str(path))
    message = str(error.value)
    assert "line 5: no unit of this project matches" in message
    assert "unknown code 'no_such_code'" in message
    assert "coder 'stranger' is not a member" in message
    assert not Coding.objects.filter(unit__project=copy).exists()


def test_codes_may_be_given_by_path_and_existing_codings_are_not_overwritten(users, tmp_path):
    project = make_coded_project(users)
    copy = _empty_copy(project, users)
    path = tmp_path / "paths.csv"
    path.write_text(
        "unit,coder,code,source,thread_id,post_id\n"
        ",alice,Problems > Installation,exported forum,1,\n"
    )
    call_command("import_codings", copy.slug, str(path), stdout=StringIO())
    coding = Coding.objects.get(unit__project=copy)
    assert [a.code.key for a in coding.applications.all()] == ["install"]
    with pytest.raises(CommandError, match="already has a coding"):
        call_command("import_codings", copy.slug, str(path))
    assert Coding.objects.filter(unit__project=copy).count() == 1


def test_a_broken_qdpx_is_refused_clearly(users, tmp_path):
    project = make_coded_project(users)
    path = tmp_path / "broken.qdpx"
    path.write_bytes(b"not a zip")
    with pytest.raises(CommandError, match=r"not a \.qdpx package"):
        call_command("import_codings", project.slug, str(path))
    assert Membership.objects.filter(project=project, role=Role.ANNOTATOR).count() == 2


def test_csv_problems_name_the_line_a_record_starts_on_and_flags_are_read_as_words(users, tmp_path):
    project = make_coded_project(users)
    copy = _empty_copy(project, users)
    path = tmp_path / "memos.csv"
    path.write_text(
        "unit,coder,code,source,thread_id,post_id,memo,unsure,not_relevant\n"
        ',alice,install,exported forum,1,,"three\nline\nmemo",Yes,\n'
        ",bob,docs,exported forum,1,,,maybe,\n"
        "\n\n"
        ",bob,nope,exported forum,2,,,,FALSE\n"
    )
    with pytest.raises(CommandError) as error:
        call_command("import_codings", copy.slug, str(path))
    message = str(error.value)
    assert "line 5: unsure 'maybe' is not one of 1/0, true/false, yes/no" in message
    assert "unknown code 'nope'" in message and "line 8" in message
    assert not Coding.objects.filter(unit__project=copy).exists()

    path.write_text(
        "unit,coder,code,source,thread_id,post_id,memo,unsure,not_relevant\n"
        ',alice,install,exported forum,1,,"three\nline\nmemo",Yes,no\n'
    )
    call_command("import_codings", copy.slug, str(path), stdout=StringIO())
    coding = Coding.objects.get(unit__project=copy)
    assert coding.unsure and not coding.not_relevant and coding.memo == "three\nline\nmemo"


def _rewritten_qdpx(project, tmp_path, change) -> Path:
    """The project's .qdpx export with ``change(root, sources)`` applied to its parts."""
    exported = tmp_path / "export.qdpx"
    call_command(
        "export_codings", project.slug, "--format", "qdpx", "--output", str(exported),
        stdout=StringIO(),
    )  # fmt: skip
    with zipfile.ZipFile(exported) as archive:
        root = ET.fromstring(archive.read("project.qde"))
        sources = {n: archive.read(n) for n in archive.namelist() if n.startswith("sources/")}
    change(root, sources)
    path = tmp_path / "changed.qdpx"
    with zipfile.ZipFile(path, "w") as archive:
        # As the export does: a raw CR would be read back as a line feed.
        qde = ET.tostring(root, encoding="utf-8").replace(b"\r", b"&#13;")
        archive.writestr("project.qde", qde)
        for name, data in sources.items():
            archive.writestr(name, data)
    return path


def test_a_qdpx_from_another_tool_with_marked_sources_and_whole_source_codings_imports(
    users, tmp_path
):
    ns = "{urn:QDA-XML:project:1.0}"

    def as_other_tools_write_it(root, sources):
        for name in sources:  # QualCoder: a byte order mark before the text
            sources[name] = b"\xef\xbb\xbf" + sources[name]
        for source in root.iter(f"{ns}TextSource"):
            text = sources["sources/" + source.get("plainTextPath").split("//")[1]]
            length = len(text.decode("utf-8-sig"))
            for selection in list(source.iter(f"{ns}PlainTextSelection")):
                whole = (selection.get("startPosition"), selection.get("endPosition"))
                if whole == ("0", str(length)):
                    # A code applied to the whole source, as a Coding of the source itself.
                    source.remove(selection)
                    source.extend(selection.iter(f"{ns}Coding"))

    project = make_coded_project(users)
    path = _rewritten_qdpx(project, tmp_path, as_other_tools_write_it)
    copy = _empty_copy(project, users)
    call_command("import_codings", copy.slug, str(path), stdout=StringIO())
    strip = lambda rows: {r[:5] + r[6:] for r in rows}  # noqa: E731
    assert strip(_snapshot(copy)) == strip(_snapshot(project))


def test_a_qdpx_selection_with_a_position_that_is_not_a_number_is_listed(users, tmp_path):
    def spoil(root, sources):
        selection = next(root.iter("{urn:QDA-XML:project:1.0}PlainTextSelection"))
        selection.set("startPosition", "twelve")

    project = make_coded_project(users)
    path = _rewritten_qdpx(project, tmp_path, spoil)
    copy = _empty_copy(project, users)
    with pytest.raises(CommandError, match="position that is not a whole number"):
        call_command("import_codings", copy.slug, str(path))
    assert not Coding.objects.filter(unit__project=copy).exists()


def test_an_import_into_a_closed_project_is_refused(users, tmp_path):
    project = make_coded_project(users)
    copy = _empty_copy(project, users)
    copy.status = Project.Status.CLOSED
    copy.save()
    path = tmp_path / "late.csv"
    path.write_text("unit,coder,code,source,thread_id,post_id\n,alice,install,exported forum,1,\n")
    with pytest.raises(CommandError, match="is closed for coding; nothing was imported"):
        call_command("import_codings", copy.slug, str(path))
    assert not Coding.objects.filter(unit__project=copy).exists()
