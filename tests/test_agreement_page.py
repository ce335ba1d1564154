"""The agreement page: figures with intervals for project admins, filters, chart."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse

from tests.factories import make_project
from tests.factories_codings import make_coded_project

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()


def page_url(project, **query) -> str:
    url = reverse("agreement", args=[project.slug])
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def test_admin_sees_overall_and_per_code_figures_with_intervals(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    response = client.get(page_url(project))
    assert response.status_code == 200
    text = response.content.decode()
    assert "Krippendorff's alpha, MASI" in text
    assert "95% CI" in text
    assert '<tr data-code="load-error"><th scope="row">load error</th>' in text
    assert '<tr data-code="__not_relevant__"><th scope="row">Not relevant</th>' in text
    assert "1 marked unsure, included" in text
    report = response.context["report"]
    assert report["n_units"] == 9  # six main units, one half-drafted, two pilot units
    assert report["per_code"]["load-error"]["alpha_ci95"] is not None


def test_methods_text_carries_the_figures_ready_to_paste(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    response = client.get(page_url(project))
    methods = response.context["methods"]
    report = response.context["report"]
    assert f"{report['masi_alpha']:.3f}" in methods
    assert "bootstrap resamples of units" in methods
    assert "MASI distance (Passonneau, 2006)" in methods
    assert '<textarea id="methods-text"' in response.content.decode()


def test_chart_is_an_image_from_its_own_url_not_inlined(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    text = client.get(page_url(project)).content.decode()
    assert f'<img class="chart" src="{reverse("agreement_chart", args=[project.slug])}' in text
    assert "<svg" not in text
    svg = client.get(reverse("agreement_chart", args=[project.slug]))
    assert svg["Content-Type"] == "image/svg+xml"
    assert b"Krippendorff" in svg.content
    assert b"load error" in svg.content
    png = client.get(reverse("agreement_chart", args=[project.slug]) + "?format=png")
    assert png["Content-Type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")


def test_round_filter_and_category_level_change_the_figures(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    pilot = project.rounds.get(name="pilot")
    report = client.get(page_url(project, round=pilot.pk)).context["report"]
    assert report["n_units"] == 2
    categories = client.get(page_url(project, level="category")).context["report"]
    assert set(categories["per_code"]) == {"loading", "training", "datasets", "__not_relevant__"}
    text = client.get(page_url(project, level="category")).content.decode()
    assert "codes rolled up to categories" in text


def test_codebook_version_filter_defaults_to_the_project_version(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    response = client.get(page_url(project))
    assert response.context["form"]["version"].value() == str(project.codebook_version_id)
    every = client.get(page_url(project, version=""))
    assert every.context["report"]["n_units"] == response.context["report"]["n_units"]


def test_a_value_outside_the_allow_list_gets_a_friendly_message(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    response = client.get(page_url(project, round="999999", level="everything"))
    assert response.status_code == 200
    text = response.content.decode()
    assert 'role="alert"' in text
    assert "Select a valid choice" in text


def test_htmx_request_gets_only_the_results_fragment(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    response = client.get(page_url(project, level="category"), headers={"HX-Request": "true"})
    text = response.content.decode()
    assert text.lstrip().startswith('<div id="agreement-body"')
    assert "<html" not in text


def test_project_without_submitted_codings_says_so(client, users):
    project = make_project("empty", admin=users["admin"])
    client.force_login(users["admin"])
    response = client.get(page_url(project))
    assert "No submitted codings for these filters yet" in response.content.decode()


def test_annotator_is_refused_and_outsider_does_not_learn_the_project_exists(client, users):
    project = make_coded_project(users)
    client.force_login(users["alice"])
    assert client.get(page_url(project)).status_code == 403
    assert client.get(reverse("agreement_chart", args=[project.slug])).status_code == 403
    client.force_login(users["outsider"])
    assert client.get(page_url(project)).status_code == 404
    assert client.get(reverse("agreement_chart", args=[project.slug])).status_code == 404
    client.logout()
    assert client.get(page_url(project)).status_code == 302


def test_page_queries_are_pinned(client, users, django_assert_num_queries):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    # session with user, project, role, rounds, versions coded, scope stamp, cache read,
    # codings, applications, coders' usernames, codes of the versions, cache write (5),
    # code labels
    with django_assert_num_queries(17):
        client.get(page_url(project))
    # Cached until a coding changes: the figures are not recomputed.
    with django_assert_num_queries(8):
        client.get(page_url(project))
