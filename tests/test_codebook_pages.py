"""The codebook pages: reference, editor, history and diff, export, project upgrade."""

from __future__ import annotations

import pytest
from django.urls import reverse

from coding.codebook import Node, apply_edit, load_nodes
from coding.models import CodeApplication, Codebook, Coding, ProjectUpgrade, Round, Unit
from tests.factories import PASSWORD, make_project, make_thread


@pytest.fixture(autouse=True)
def quick_password_hashing(settings):
    # These tests log in many times; password strength is tested elsewhere.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_codebook(name: str = "Study") -> Codebook:
    nodes = [
        Node(key="problems", name="Problems", codable=False, color="#aa3300"),
        Node(key="problems.install", name="Install", parent="problems", shortcut="i"),
        Node(key="problems.setup", name="Setup", parent="problems"),
        Node(
            key="help",
            name="Help",
            definition="Someone answers with <b>documentation</b>.",
            examples=[{"text": "Read the manual"}],
        ),
    ]
    return load_nodes(name, "A test codebook.", nodes)[0]


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def setting(users):
    """A codebook pinned by a project whose admin is ``admin`` and annotators alice, bob."""
    codebook = make_codebook()
    project = make_project("study", admin=users["admin"], annotators=[users["alice"], users["bob"]])
    project.codebook_version = codebook.latest_version()
    project.save()
    return codebook, project


def coding_with(project, coder, keys):
    version = project.codebook_version
    round_, _ = Round.objects.get_or_create(project=project, name="main")
    unit = Unit.objects.create(
        project=project, round=round_, thread=make_thread(external_id=Unit.objects.count() + 1)
    )
    coding = Coding.objects.create(unit=unit, coder=coder, codebook_version=version)
    for key in keys:
        CodeApplication.objects.create(coding=coding, code=version.codes.get(key=key))
    return coding


@pytest.mark.django_db
def test_every_logged_in_user_reads_the_reference_page_with_definitions_and_shortcuts(
    client, users, setting, django_assert_num_queries
):
    codebook, _ = setting
    login(client, users["outsider"])

    with django_assert_num_queries(6):
        response = client.get(reverse("codebook_detail", args=[codebook.pk]))

    page = response.content.decode()
    assert response.status_code == 200
    assert "Someone answers with &lt;b&gt;documentation&lt;/b&gt;." in page
    assert "<kbd" in page and ">i</kbd>" in page
    assert "Read the manual" in page
    assert reverse("codebook_editor", args=[codebook.pk]) not in page


@pytest.mark.django_db
def test_reference_search_returns_matching_codes_with_their_parents_as_a_fragment(
    client, users, setting
):
    codebook, _ = setting
    login(client, users["alice"])

    response = client.get(
        reverse("codebook_detail", args=[codebook.pk]), {"q": "setup"}, HTTP_HX_REQUEST="true"
    )

    page = response.content.decode()
    assert "<h1" not in page  # only the tree fragment
    assert "Setup" in page and "Problems" in page
    assert "Install" not in page and "Help" not in page


@pytest.mark.django_db
def test_codebook_list_shows_every_codebook_with_a_fixed_number_of_queries(
    client, users, django_assert_num_queries
):
    for n in range(5):
        make_codebook(f"Book {n}")
    login(client, users["alice"])

    with django_assert_num_queries(2):
        response = client.get(reverse("codebook_list"))

    assert response.content.decode().count("Book ") == 5
    assert "Load a codebook" not in response.content.decode()


@pytest.mark.parametrize(("who", "status"), [("alice", 403), ("outsider", 403)])
@pytest.mark.django_db
def test_annotators_and_outsiders_cannot_open_the_editor_or_edit(
    client, users, setting, who, status
):
    codebook, _ = setting
    login(client, users[who])
    url = reverse("codebook_editor", args=[codebook.pk])

    assert client.get(url).status_code == status
    response = client.post(url, {"op": "rename", "key": "help", "name": "X", "base": "1"})

    assert response.status_code == status
    assert codebook.versions.count() == 1


@pytest.mark.django_db
def test_a_project_admin_edits_the_codebook_their_project_uses_and_staff_edit_any(
    client, users, setting
):
    codebook, _ = setting
    other = make_codebook("Other")
    login(client, users["admin"])
    url = reverse("codebook_editor", args=[codebook.pk])

    response = client.post(
        url, {"op": "rename", "key": "help", "name": "Answers", "base": "1"}, HTTP_HX_REQUEST="true"
    )

    assert "Saved as version 2: Renamed &#x27;Help&#x27; to &#x27;Answers&#x27;" in (
        response.content.decode()
    )
    assert client.get(reverse("codebook_editor", args=[other.pk])).status_code == 403
    login(client, users["staff"])
    assert client.get(reverse("codebook_editor", args=[other.pk])).status_code == 200


@pytest.mark.django_db
def test_the_editor_merges_splits_moves_and_deactivates_through_htmx_fragments(
    client, users, setting, django_assert_num_queries
):
    codebook, _ = setting
    login(client, users["staff"])
    url = reverse("codebook_editor", args=[codebook.pk])
    with django_assert_num_queries(4):
        client.get(url, {"code": "help"}, HTTP_HX_REQUEST="true")

    def post(**data):
        response = client.post(url, data, HTTP_HX_REQUEST="true")
        assert response.status_code == 200
        assert "<h1" not in response.content.decode()
        return response.content.decode()

    post(op="merge", key="problems.setup", into="problems.install", base="1")
    post(op="split", key="problems.install", names="Pip\nConda", base="2")
    post(op="move", key="help", parent="problems", base="3")
    post(op="deactivate", key="problems.conda", base="4")
    page = post(op="add", parent="problems", name="Drivers / CUDA", base="5")

    assert "Saved as version 6: Added &#x27;Drivers / CUDA&#x27;" in page
    latest = codebook.latest_version()
    assert latest.codes.get(key="problems.drivers-cuda").parent.key == "problems"
    assert not latest.codes.get(key="problems.conda").active
    assert latest.codes.get(key="help").parent.key == "problems"


@pytest.mark.django_db
def test_a_bad_or_stale_edit_shows_a_reason_and_saves_nothing(client, users, setting):
    codebook, _ = setting
    login(client, users["staff"])
    url = reverse("codebook_editor", args=[codebook.pk])
    apply_edit(codebook, "rename", base=1, key="help", name="Answers")

    stale = client.post(url, {"op": "rename", "key": "help", "name": "Mine", "base": "1"})
    reserved = client.post(
        url,
        {"op": "edit", "key": "help", "shortcut": "q", "base": "2", "definition": "x"},
        HTTP_HX_REQUEST="true",
    )
    unknown = client.post(url, {"op": "drop_table", "key": "help", "base": "2"})

    assert "changed since you opened it" in stale.content.decode()
    assert "reserved by the coding screen" in reserved.content.decode()
    assert "unknown operation" in unknown.content.decode()
    assert codebook.versions.count() == 2


@pytest.mark.django_db
def test_history_lists_who_changed_what_and_diffs_two_versions(
    client, users, setting, django_assert_num_queries
):
    codebook, _ = setting
    apply_edit(codebook, "rename", base=1, user=users["staff"], key="help", name="Answers")
    apply_edit(
        codebook,
        "merge",
        base=2,
        user=users["admin"],
        keys=["problems.setup"],
        into="problems.install",
    )
    for n in range(5):
        apply_edit(codebook, "rename", base=3 + n, key="problems", name=f"Problems {n}")
    login(client, users["alice"])

    with django_assert_num_queries(9):
        page = client.get(reverse("codebook_history", args=[codebook.pk])).content.decode()
    assert "staff" in page and "padmin" in page
    assert "Renamed &#x27;Help&#x27; to &#x27;Answers&#x27;" in page
    diff = client.get(
        reverse("codebook_history", args=[codebook.pk]),
        {"a": "1", "b": "3"},
        HTTP_HX_REQUEST="true",
    ).content.decode()

    assert "Renamed &#x27;Help&#x27; to &#x27;Answers&#x27;" in diff
    assert "Setup → Install" in diff
    assert (
        client.get(
            reverse("codebook_history", args=[codebook.pk]), {"a": "1", "b": "9"}
        ).status_code
        == 404
    )


@pytest.mark.django_db
def test_export_downloads_each_format_of_a_chosen_version(client, users, setting):
    codebook, _ = setting
    apply_edit(codebook, "rename", base=1, key="help", name="Answers")
    login(client, users["bob"])

    response = client.get(reverse("codebook_export", args=[codebook.pk, "csv"]), {"version": "1"})

    body = b"".join(response.streaming_content).decode()
    assert response["Content-Disposition"] == 'attachment; filename="study-v1.csv"'
    assert "help,,Help,Help" in body
    qdc = client.get(reverse("codebook_export", args=[codebook.pk, "qdc"]))
    assert b'name="Answers"' in b"".join(qdc.streaming_content)
    assert client.get(reverse("codebook_export", args=[codebook.pk, "xlsx"])).status_code == 404


@pytest.mark.django_db
def test_staff_load_a_file_on_the_list_page_and_bad_files_load_nothing(client, users):
    from django.core.files.uploadedfile import SimpleUploadedFile

    login(client, users["staff"])
    good = SimpleUploadedFile("mine.csv", b"key,name\na,A\nb,B\n", content_type="text/csv")
    bad = SimpleUploadedFile("bad.csv", b"key,name,color\na,A,red\n", content_type="text/csv")

    client.post(reverse("codebook_load"), {"file": good})
    response = client.post(reverse("codebook_load"), {"file": bad}, follow=True)

    assert Codebook.objects.get().name == "mine"
    assert "Nothing was loaded: bad.csv, row 2" in response.content.decode()
    login(client, users["alice"])
    assert client.post(reverse("codebook_load"), {"file": good}).status_code == 403


@pytest.mark.django_db
def test_project_codings_read_unchanged_until_an_admin_upgrades_after_a_preview(
    client, users, setting
):
    codebook, project = setting
    coding_with(project, users["alice"], ["problems.setup"])
    coding_with(project, users["bob"], ["problems.setup", "help"])
    apply_edit(codebook, "merge", base=1, keys=["problems.setup"], into="problems.install")
    login(client, users["admin"])
    url = reverse("project_codebook", args=[project.slug])

    before = client.get(url).content.decode()
    assert "Problems > Setup" in before
    preview = client.get(url, {"to": "2"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Upgrading from v1 to v2" in preview
    assert "<td>Setup</td><td>Install</td>" in preview.replace("\n", "")
    assert "alice" in preview and "bob" in preview
    project.refresh_from_db()
    assert project.codebook_version.number == 1

    client.post(url, {"version": codebook.latest_version().pk, "from": project.codebook_version_id})

    after = client.get(url).content.decode()
    assert "Problems > Install" in after and "Problems > Setup" not in after
    record = ProjectUpgrade.objects.get()
    assert record.upgraded_by == users["admin"] and record.summary[0]["codings"] == 2
    assert Coding.objects.filter(applications__code__key="problems.setup").count() == 2


@pytest.mark.parametrize(("who", "status"), [("alice", 403), ("outsider", 404), ("staff", 404)])
@pytest.mark.django_db
def test_only_project_admins_open_the_project_codebook_page(client, users, setting, who, status):
    _, project = setting
    login(client, users[who])

    assert client.get(reverse("project_codebook", args=[project.slug])).status_code == status


@pytest.mark.django_db
def test_an_admin_pins_a_project_without_a_codebook(client, users):
    codebook = make_codebook()
    project = make_project("fresh", admin=users["admin"])
    login(client, users["admin"])

    client.post(
        reverse("project_codebook", args=[project.slug]),
        {"action": "pin", "version": codebook.latest_version().pk},
    )

    project.refresh_from_db()
    assert project.codebook_version == codebook.latest_version()
    assert ProjectUpgrade.objects.get().from_version is None


@pytest.mark.django_db
def test_staff_start_an_empty_codebook_and_add_its_first_code_in_the_editor(client, users):
    login(client, users["staff"])

    response = client.post(reverse("codebook_create"), {"name": "Own study"})
    codebook = Codebook.objects.get(name="Own study")
    assert response.url == reverse("codebook_editor", args=[codebook.pk])
    page = client.post(
        response.url, {"op": "add", "name": "Problems", "base": ""}, HTTP_HX_REQUEST="true"
    ).content.decode()

    assert "Saved as version 1: Added &#x27;Problems&#x27;" in page
    assert codebook.latest_version().codes.get().key == "problems"
    again = client.post(reverse("codebook_create"), {"name": "Own study"}, follow=True)
    assert "already exists" in again.content.decode()
    login(client, users["alice"])
    assert client.post(reverse("codebook_create"), {"name": "Mine"}).status_code == 403


@pytest.mark.django_db
def test_hostile_markup_in_codes_comes_out_inert_on_every_codebook_page(client, users, monkeypatch):
    from tests import test_xss_import
    from tests.xss_payloads import PAYLOADS

    # The editor's own text areas and colour swatches are page chrome here; every
    # attribute is still audited.
    chrome = test_xss_import.PAGE_CHROME | {"textarea", "svg"}
    monkeypatch.setattr(test_xss_import, "PAGE_CHROME", chrome)
    audit = test_xss_import.audit

    payloads = [p for p in PAYLOADS if p.strip()][:12]
    nodes = [Node(key="top", name=payloads[0], definition=payloads[1], color="#123456")]
    for i, payload in enumerate(payloads[2:]):
        nodes.append(
            Node(
                key=f"top.c{i}",
                name=payload[:300],
                parent="top",
                definition=payload,
                when_to_use=payload,
                when_not_to_use=payload,
                examples=[{"text": payload}],
            )
        )
    codebook, first, _ = load_nodes(payloads[3][:200], payloads[4], nodes)
    project = make_project("hostile", admin=users["admin"])
    project.codebook_version = first
    project.save()
    coding_with(project, users["admin"], ["top.c0"])
    apply_edit(codebook, "merge", base=1, keys=["top.c0"], into="top.c1")
    login(client, users["admin"])

    pages = {
        "list": client.get(reverse("codebook_list")),
        "reference": client.get(reverse("codebook_detail", args=[codebook.pk])),
        "search": client.get(reverse("codebook_detail", args=[codebook.pk]), {"q": "x"}),
        "editor": client.get(reverse("codebook_editor", args=[codebook.pk]), {"code": "top.c1"}),
        "history": client.get(reverse("codebook_history", args=[codebook.pk])),
        "upgrade": client.get(reverse("project_codebook", args=[project.slug]), {"to": "2"}),
    }

    for name, response in pages.items():
        assert response.status_code == 200, name
        assert audit(response.content.decode(), own_scripts=True) == [], name


@pytest.mark.django_db
def test_the_reference_page_names_the_readers_projects_and_offers_admins_the_upgrade(
    client, users, setting
):
    codebook, project = setting
    apply_edit(codebook, "rename", base=1, key="help", name="Answers")
    upgrade_url = reverse("project_codebook", args=[project.slug])

    admin_page = login(client, users["admin"]).get(reverse("codebook_detail", args=[codebook.pk]))
    alice_page = login(client, users["alice"]).get(reverse("codebook_detail", args=[codebook.pk]))

    assert "Study (v1)" in admin_page.content.decode()
    assert upgrade_url in admin_page.content.decode()
    assert "Study (v1)" in alice_page.content.decode()
    assert upgrade_url not in alice_page.content.decode()
