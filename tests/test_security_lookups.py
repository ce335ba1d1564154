"""Filters and sorts take values from allow-lists: lookup-shaped, quoted, NUL or huge values
in any query parameter of a list page give the page (or a 400 or 404), never an error."""

from __future__ import annotations

import pytest

from tests.factories_exports import make_coded_project

pytestmark = pytest.mark.django_db

HOSTILE = [
    "id__gt",
    "-password",
    "coder__password",
    "codings__memo__icontains",
    "__class__",
    "1' OR '1'='1",
    "1; DROP TABLE coding_thread",
    "a\x00b",
    "9" * 5000,
    "²",
    "../../etc/passwd",
    "%(secret)s",
    "{0.__class__}",
    "-",
    "",
]
PARAMS = [
    "q", "sort", "order", "o", "source", "category", "tag", "since", "until", "accepted",
    "page", "kind", "code", "round", "pair", "min", "decided", "basis", "by", "level",
    "measure", "pairs", "group", "terms", "action", "version", "to", "a", "b", "format", "part",
]  # fmt: skip


def _pages(project, users) -> list[tuple[object, str]]:
    slug = project.slug
    codebook = project.codebook_version.codebook_id
    return [
        (users["alice"], "/corpus/"),
        (users["alice"], f"/projects/{slug}/units/"),
        (users["alice"], f"/codebooks/{codebook}/"),
        (users["alice"], f"/codebooks/{codebook}/history/"),
        (users["alice"], "/trends/"),
        (users["admin"], f"/projects/{slug}/units/"),
        (users["admin"], f"/projects/{slug}/adjudicate/"),
        (users["admin"], f"/projects/{slug}/agreement/"),
        (users["admin"], f"/projects/{slug}/reports/"),
        (users["admin"], f"/projects/{slug}/reports/frequency/table.csv"),
        (users["admin"], f"/projects/{slug}/exports/long/"),
        (users["admin"], f"/projects/{slug}/codebook/"),
        (users["admin"], f"/projects/{slug}/audit/"),
        (users["staff"], "/audit/"),
        (users["staff"], "/imports/"),
        (users["staff"], "/projects/new/matching/"),
    ]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_filter_and_sort_values_never_break_a_list_page(client, users, value):
    project = make_coded_project(users)
    broken = []
    for user, path in _pages(project, users):
        client.force_login(user)
        response = client.get(path, dict.fromkeys(PARAMS, value))
        if response.status_code not in (200, 400, 404):
            broken.append(f"{path}: {response.status_code}")
    assert broken == []


def test_a_sort_outside_the_allow_list_orders_the_corpus_as_the_default(client, users):
    make_coded_project(users)
    client.force_login(users["alice"])

    default = client.get("/corpus/").content.decode()
    hostile = client.get("/corpus/", {"sort": "-posts__author"}).content.decode()

    titles = [line for line in default.splitlines() if "/threads/" in line]
    assert titles and titles == [line for line in hostile.splitlines() if "/threads/" in line]
