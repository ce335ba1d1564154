import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from coding.models import Coding
from tests.factories_exports import make_coded_project

pytestmark = pytest.mark.django_db


def test_only_project_admins_reach_exports_and_downloads(client, users):
    project = make_coded_project(users)
    urls = [
        f"/projects/{project.slug}/exports/",
        f"/projects/{project.slug}/exports/long/",
        f"/projects/{project.slug}/exports/qdpx/",
        f"/projects/{project.slug}/exports/pseudonym-key.csv",
    ]
    for name, expected in (("alice", 403), ("outsider", 404), ("staff", 404)):
        client.force_login(users[name])
        for url in urls:
            assert client.get(url).status_code == expected, (name, url)
    client.force_login(users["admin"])
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_the_long_download_streams_the_same_bytes_as_the_command(client, users, tmp_path):
    from io import StringIO

    from django.core.management import call_command

    project = make_coded_project(users)
    client.force_login(users["admin"])
    response = client.get(f"/projects/{project.slug}/exports/long/?no_formula_guard=1")
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    out = tmp_path / "long.csv"
    call_command(
        "export_codings",
        project.slug,
        "--format",
        "long",
        "--no-formula-guard",
        "--output",
        str(out),
        stdout=StringIO(),
    )
    assert body == out.read_bytes().decode()


def test_pseudonym_key_lists_coders_and_forum_users(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    key = client.get(f"/projects/{project.slug}/exports/pseudonym-key.csv").content.decode()
    assert "alice" in key and "user1" in key
    pseudonymized = b"".join(
        client.get(f"/projects/{project.slug}/exports/long/?pseudonymize=1").streaming_content
    ).decode()
    assert "alice" not in pseudonymized
    coder_pseudonym = next(
        line.split(",")[0] for line in key.splitlines() if line.endswith(",alice")
    )
    assert coder_pseudonym in pseudonymized


def test_an_upload_with_problems_lists_them_and_writes_nothing(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    before = Coding.objects.count()
    bad = SimpleUploadedFile("bad.csv", b"unit,coder,code\n999,alice,install\n")
    response = client.post(f"/projects/{project.slug}/exports/import/", {"file": bad})
    assert response.status_code == 400
    assert "line 2: no unit of this project matches" in response.content.decode()
    assert Coding.objects.count() == before


def test_the_page_offers_one_download_per_format_and_no_format_choice_that_does_nothing(
    client, users
):
    from analysis.export_views import FORMATS

    project = make_coded_project(users)
    client.force_login(users["admin"])
    page = client.get(f"/projects/{project.slug}/exports/").content.decode()
    assert 'type="radio"' not in page
    for key in FORMATS:
        assert f'href="/projects/{project.slug}/exports/{key}/" data-export="{key}"' in page
    assert "the agreement figures always cover every unit" in page


def test_an_upload_with_many_problems_counts_them_and_folds_all_but_the_first_twenty(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    rows = "".join(f"{9000 + n},alice,install\n" for n in range(250))
    bad = SimpleUploadedFile("many.csv", ("unit,coder,code\n" + rows).encode())
    response = client.post(f"/projects/{project.slug}/exports/import/", {"file": bad})
    assert response.status_code == 400
    page = response.content.decode()
    assert "250 problems, the first 200 listed" in page
    head, folded = page.split("<details><summary>180 more</summary>")
    assert head.count("no unit of this project matches") == 20
    assert folded.count("no unit of this project matches") == 180
