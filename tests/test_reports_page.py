"""The report page: who may see it, its filters, charts and the CSV behind each chart."""

import csv
import io
import re

import pytest

from coding.models import Project
from tests.factories_reports import complete_gold, make_report_project

pytestmark = pytest.mark.django_db

URL = "/projects/report-study/reports/"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def study(users):
    return make_report_project(users)


def _csv(client, kind: str, query: str = "") -> list[list[str]]:
    response = client.get(f"{URL}{kind}/table.csv?{query}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_admin_sees_the_basis_three_charts_and_their_tables(client, users, study):
    client.force_login(users["admin"])
    response = client.get(URL)
    body = response.content.decode()
    assert response.status_code == 200
    assert "gold labels for 6 of 8 units; units without a gold label (left out): 2" in body
    for kind in ("frequency", "trend", "cooccurrence"):
        assert f'src="{URL}{kind}/chart/?"' in body
        assert f'href="{URL}{kind}/table.csv?"' in body
    shown = {
        chart["kind"]: [chart["header"], *chart["rows"]] for chart in response.context["charts"]
    }
    for kind, rows in shown.items():
        assert _csv(client, kind) == rows


def test_frequency_table_on_the_page_holds_the_hand_counted_categories(client, users, study):
    client.force_login(users["admin"])
    response = client.get(URL)
    frequency = response.context["charts"][0]
    assert frequency["header"][:4] == ["group", "code", "label", "units"]
    units = {row[1]: row[3] for row in frequency["rows"]}
    assert units == {"ch.a": "2", "ch.b": "2", "be.x": "2"}
    codes = client.get(URL + "?level=codes").context["charts"][0]
    assert {row[1]: row[3] for row in codes["rows"]} == {
        "ch.a.1": "2",
        "ch.a.2": "1",
        "ch.b.1": "2",
        "be.x": "2",
    }


def test_the_page_reads_a_fixed_number_of_queries(client, users, study, django_assert_num_queries):
    client.force_login(users["admin"])
    client.get(URL)
    with django_assert_num_queries(14):
        client.get(URL + "?level=codes&by=quarter")


def test_filters_and_period_change_every_table(client, users, study):
    client.force_login(users["admin"])
    rows = _csv(client, "trend", "by=quarter&level=codes&measure=count&round=Second")
    assert rows[0] == ["code", "label", "2021-Q1"]
    assert dict((r[0], r[2]) for r in rows[1:]) == {
        "ch.a.1": "0",
        "ch.a.2": "0",
        "ch.b.1": "1",
        "be.x": "1",
    }
    share = _csv(client, "trend", "level=codes&since=2021-02-01&category=Beginners")
    assert share[0] == ["code", "label", "2021-02", "2021-03"]
    assert dict((r[0], r[2:]) for r in share[1:])["be.x"] == ["1", "0"]
    group = _csv(client, "cooccurrence", "level=codes&group=ch.a&pairs=both")
    assert group == [
        ["code", "label", "ch.a.1", "ch.a.2"],
        ["ch.a.1", "A one", "2", "1"],
        ["ch.a.2", "A two", "1", "1"],
    ]


def test_one_coders_basis_is_stated_on_the_page(client, users, study):
    client.force_login(users["admin"])
    body = client.get(URL + "?basis=coder:bob").content.decode()
    assert "bob&#x27;s submitted codings for 2 of 8 units" in body


def test_charts_come_as_svg_png_and_pdf(client, users, study):
    client.force_login(users["admin"])
    svg = client.get(f"{URL}frequency/chart/")
    assert svg["Content-Type"] == "image/svg+xml"
    assert b"<svg" in svg.content
    assert b"Category A" in svg.content
    assert b"<script" not in svg.content
    png = client.get(f"{URL}trend/chart/?format=png")
    assert png["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    assert "attachment" in png["Content-Disposition"]
    pdf = client.get(f"{URL}cooccurrence/chart/?format=pdf&level=codes")
    assert pdf.content.startswith(b"%PDF")


def test_bad_chart_requests_get_clear_answers(client, users, study):
    client.force_login(users["admin"])
    assert client.get(f"{URL}frequency/chart/?format=gif").status_code == 400
    assert client.get(f"{URL}pie/chart/").status_code == 404
    bad = client.get(f"{URL}frequency/table.csv?round=Pilot")
    assert bad.status_code == 400
    assert "round" in bad.content.decode()


def test_a_reversed_date_window_is_explained_on_the_page(client, users, study):
    client.force_login(users["admin"])
    response = client.get(URL + "?since=2021-03-01&until=2021-01-01")
    assert response.status_code == 400
    assert "The date window ends before it starts." in response.content.decode()
    fragment = client.get(URL + "?basis=nobody", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode()
    assert "basis" in fragment.content.decode()


def test_htmx_filter_changes_get_only_the_report_body(client, users, study):
    client.force_login(users["admin"])
    response = client.get(URL + "?by=year", headers={"HX-Request": "true"})
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="report-body"')
    assert "by=year" in body


def test_outsiders_get_not_found_and_annotators_not_allowed(client, users, study):
    client.force_login(users["outsider"])
    assert client.get(URL).status_code == 404
    assert client.get(f"{URL}frequency/table.csv").status_code == 404
    client.force_login(users["alice"])
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}frequency/chart/").status_code == 403
    assert client.post(URL, {"visible": "1"}).status_code == 403


def test_reports_stay_hidden_from_annotators_until_every_unit_has_gold(client, users, study):
    project, units = study
    client.force_login(users["admin"])
    page = client.get(URL).content.decode()
    assert "2 units still need a decided gold label" in page
    response = client.post(URL, {"visible": "1"}, follow=True)
    assert "complete: 2 units have no decided gold label or a coder still to code them" in (
        response.content.decode()
    )
    project.refresh_from_db()
    assert project.reports_visible_to_annotators is False

    complete_gold(project, units, users["admin"])
    response = client.post(URL, {"visible": "1"}, follow=True)
    assert "Annotators can now see the reports" in response.content.decode()
    assert Project.objects.get(pk=project.pk).reports_visible_to_annotators is True

    client.force_login(users["alice"])
    page = client.get(URL)
    assert page.status_code == 200
    assert "gold labels for 8 of 8 units" in page.content.decode()
    assert "Show to annotators" not in page.content.decode()
    assert not re.search(r'value="all"|value="coder:', page.content.decode())
    assert client.get(URL + "?basis=all").status_code == 400
    assert client.get(f"{URL}frequency/table.csv?basis=coder:bob").status_code == 400


def test_a_reopened_gold_label_hides_the_reports_from_annotators_again(client, users, study):
    project, units = study
    complete_gold(project, units, users["admin"])
    Project.objects.filter(pk=project.pk).update(reports_visible_to_annotators=True)
    client.force_login(users["bob"])
    assert client.get(URL).status_code == 200
    units["u1"].gold.is_open = True
    units["u1"].gold.save()
    assert client.get(URL).status_code == 403


def test_a_unit_with_gold_but_a_coder_still_to_code_it_hides_the_reports(client, users, study):
    from coding.models import Assignment

    project, units = study
    complete_gold(project, units, users["admin"])
    Project.objects.filter(pk=project.pk).update(reports_visible_to_annotators=True)
    # The gold label was decided from one coding; bob has still to code the unit.
    Assignment.objects.update_or_create(
        unit=units["u1"], coder=users["bob"], defaults={"status": Assignment.Status.PENDING}
    )
    client.force_login(users["bob"])
    assert client.get(URL).status_code == 403


def test_admin_can_hide_the_reports_again(client, users, study):
    project, units = study
    complete_gold(project, units, users["admin"])
    Project.objects.filter(pk=project.pk).update(reports_visible_to_annotators=True)
    client.force_login(users["admin"])
    response = client.post(URL, {"visible": "0"}, follow=True)
    assert "Reports are hidden from annotators." in response.content.decode()
    client.force_login(users["alice"])
    assert client.get(URL).status_code == 403


def test_the_project_page_links_admins_to_the_reports(client, users, study):
    client.force_login(users["admin"])
    body = client.get("/projects/report-study/").content.decode()
    assert f'href="{URL}"' in body


def test_mention_terms_add_a_fourth_chart_with_its_table(client, users, study):
    client.force_login(users["admin"])
    terms = "bert\ngpt2 | gpt-2"
    response = client.get(URL, {"terms": terms, "measure": "count"})
    charts = {
        chart["kind"]: [chart["header"], *chart["rows"]] for chart in response.context["charts"]
    }
    assert charts["mentions"] == [
        ["term", "2021-01", "2021-02", "2021-03"],
        ["bert", "1", "1", "0"],
        ["gpt2", "0", "1", "1"],
    ]
    query = "terms=bert%0Agpt2+%7C+gpt-2&measure=count"
    assert _csv(client, "mentions", query) == charts["mentions"]
    chart = client.get(f"{URL}mentions/chart/?{query}")
    assert chart["Content-Type"] == "image/svg+xml"
    assert b"gpt2" in chart.content


def test_a_repeated_mention_term_is_explained(client, users, study):
    client.force_login(users["admin"])
    response = client.get(URL, {"terms": "bert\nBERT"})
    assert response.status_code == 400
    assert "terms, line 2: term &#x27;BERT&#x27; already given on line 1" in (
        response.content.decode()
    )
    assert client.get(f"{URL}mentions/table.csv").status_code == 400


def test_a_project_without_codebook_or_units_gets_a_plain_explanation(client, users):
    from tests.factories import make_project
    from tests.factories_reports import make_report_codebook

    bare = make_project("bare", admin=users["admin"])
    client.force_login(users["admin"])
    response = client.get("/projects/bare/reports/")
    assert response.status_code == 200
    assert "project &#x27;bare&#x27; has no codebook version" in response.content.decode()
    assert client.get("/projects/bare/reports/frequency/chart/").status_code == 400

    bare.codebook_version, _ = make_report_codebook("Bare taxonomy")
    bare.save()
    response = client.get("/projects/bare/reports/")
    assert response.status_code == 200
    assert "gold labels for 0 of 0 units" in response.content.decode()
    for kind in ("frequency", "trend", "cooccurrence"):
        assert client.get(f"/projects/bare/reports/{kind}/chart/").status_code == 200
