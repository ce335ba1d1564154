import threading

import pytest
from django.db import connection
from django.urls import get_resolver

from coding import adjudication as adj
from coding.models import Code, Coding, GoldEvent, GoldLabel
from tests.factories_coding import make_codebook_version
from tests.factories_exports import make_coded_project

pytestmark = pytest.mark.django_db


def test_units_are_classed_by_agreement_and_rules_start_from_the_coders_sets(users):
    project = make_coded_project(users)
    entries = adj.unit_codings(project)
    u1, u2, u3 = project.units.order_by("position")
    assert entries[u1.pk].kind == "unanimous"
    assert entries[u2.pk].kind == "disagreement"
    assert entries[u3.pk].union == {"__not_relevant__", "memory"}
    assert entries[u3.pk].intersection == frozenset()
    assert entries[u2.pk].majority == frozenset()  # one of two coders is no majority


def test_bulk_accept_turns_only_unanimous_and_sure_single_units_into_gold(users):
    project = make_coded_project(users)
    GoldLabel.objects.all().delete()
    u1, u2, u3 = project.units.order_by("position")
    Coding.objects.filter(unit=u3, coder=users["bob"]).delete()
    entries = adj.unit_codings(project)
    assert {e.unit_id for e in adj.acceptable(entries)} == {u1.pk, u3.pk}

    assert adj.bulk_accept(project, users["admin"], entries) == 2

    gold = GoldLabel.objects.get(unit=u1)
    assert gold.rule == "unanimous"
    assert sorted(c.key for c in gold.codes.all()) == ["install", "memory"]
    assert GoldLabel.objects.get(unit=u3).not_relevant
    assert not GoldLabel.objects.filter(unit=u2).exists()


def test_a_decision_records_rule_rationale_and_history_and_leaves_codings_alone(users):
    project = make_coded_project(users)
    u2 = project.units.order_by("position")[1]
    before = list(Coding.objects.values_list("id", "memo", "revision"))
    gold = adj.decide(
        project, u2, users["admin"], codes={"docs"}, rule="union", rationale="Docs gap is explicit."
    )
    assert (gold.rule, gold.rationale, gold.revision) == ("union", "Docs gap is explicit.", 1)
    adj.reopen(u2, users["admin"], base_revision=1)
    adj.decide(
        project, u2, users["admin"], codes={adj.NOT_RELEVANT}, rule="manual", base_revision=2
    )
    actions = list(GoldEvent.objects.filter(gold__unit=u2).values_list("action", flat=True))
    assert actions == ["decide", "reopen", "decide"]
    assert list(Coding.objects.values_list("id", "memo", "revision")) == before


def test_a_decision_based_on_a_stale_revision_is_refused(users):
    project = make_coded_project(users)
    u2 = project.units.order_by("position")[1]
    adj.decide(project, u2, users["admin"], codes={"docs"}, rule="union")
    # Stale and empty, or stale with a code that does not exist: the conflict comes first.
    for codes in (set(), {"no-such-code"}):
        with pytest.raises(adj.AdjudicationConflict):
            adj.decide(project, u2, users["admin"], codes=codes, rule="manual", base_revision=None)
    assert [c.key for c in GoldLabel.objects.get(unit=u2).codes.all()] == ["docs"]


def test_a_decision_with_no_code_and_not_marked_not_relevant_is_refused(users):
    project = make_coded_project(users)
    u2 = project.units.order_by("position")[1]
    with pytest.raises(adj.AdjudicationError, match="choose at least one code"):
        adj.decide(project, u2, users["admin"], codes=set(), rule="manual")
    assert not GoldLabel.objects.filter(unit=u2).exists()
    adj.decide(project, u2, users["admin"], codes={"docs"}, rule="manual")
    with pytest.raises(adj.AdjudicationError, match="choose at least one code"):
        adj.decide(project, u2, users["admin"], codes=set(), rule="manual", base_revision=1)
    gold = GoldLabel.objects.get(unit=u2)
    assert gold.revision == 1 and [c.key for c in gold.codes.all()] == ["docs"]
    assert GoldEvent.objects.filter(gold=gold).count() == 1
    assert adj.decide(project, u2, users["admin"], codes={adj.NOT_RELEVANT}, rule="manual",
                      base_revision=1).not_relevant  # fmt: skip


def test_bulk_accept_leaves_codings_that_agree_on_nothing_for_a_decision(users):
    project = make_coded_project(users)
    GoldLabel.objects.all().delete()
    u1 = project.units.order_by("position")[0]
    for coding in Coding.objects.filter(unit=u1):
        coding.applications.all().delete()
    entries = adj.unit_codings(project)
    assert entries[u1.pk].kind == "unanimous" and not entries[u1.pk].intersection
    assert u1.pk not in {e.unit_id for e in adj.acceptable(entries)}
    adj.bulk_accept(project, users["admin"], entries)
    assert not GoldLabel.objects.filter(unit=u1).exists()


def test_a_refused_decision_comes_back_as_sent_with_the_revision_it_was_based_on(client, users):
    project = make_coded_project(users)
    _, u2, _ = project.units.order_by("position")
    adj.decide(project, u2, users["admin"], codes={"docs"}, rule="union", rationale="First")
    client.force_login(users["admin"])
    url = f"/projects/{project.slug}/adjudicate/{u2.pk}/"
    response = client.post(
        url, {"rule": "intersection", "rationale": "No code fits <here>", "base_revision": "1"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Not saved: choose at least one code, or mark the unit not relevant." in body
    # What was sent comes back (escaped), to be corrected rather than retyped.
    assert ">No code fits &lt;here&gt;</textarea>" in body
    assert 'name="rule" id="rule" value="intersection"' in body
    assert 'name="base_revision" value="1"' in body
    assert 'value="docs" checked' not in body
    assert GoldLabel.objects.get(unit=u2).revision == 1
    # A stale form gets the conflict page with the stored decision, not the refusal.
    adj.reopen(u2, users["admin"], base_revision=1)
    response = client.post(url, {"rule": "manual", "rationale": "", "base_revision": "1"})
    assert response.status_code == 409
    body = response.content.decode()
    assert "decided by someone else meanwhile" in body
    assert 'name="base_revision" value="2"' in body and ">First</textarea>" in body


def _adjudication_urls(project, unit):
    urls = []
    for pattern in get_resolver().url_patterns:
        for sub in getattr(pattern, "url_patterns", [pattern]):
            route = str(sub.pattern)
            if "adjudicate" in route:
                urls.append(
                    "/"
                    + route.replace("<slug:slug>", project.slug).replace(
                        "<int:unit_id>", str(unit.pk)
                    )
                )
    return urls


def test_every_adjudication_url_refuses_annotators_and_outsiders(client, users):
    project = make_coded_project(users)
    unit = project.units.order_by("position")[1]
    urls = _adjudication_urls(project, unit)
    assert len(urls) == 4
    for name, expected in (("alice", 403), ("bob", 403), ("outsider", 404), ("staff", 404)):
        client.force_login(users[name])
        for url in urls:
            assert client.get(url).status_code in {expected, 405}, (name, url)
            status = client.post(url, {"codes": ["docs"]}).status_code
            assert status in {expected, 405}, (name, url)
    assert not GoldLabel.objects.filter(unit=unit).exists()


def test_admin_decides_through_the_page_and_moves_to_the_next_unit(client, users):
    project = make_coded_project(users)
    _, u2, u3 = project.units.order_by("position")
    client.force_login(users["admin"])
    page = client.get(f"/projects/{project.slug}/adjudicate/{u2.pk}/")
    body = page.content.decode()
    assert (
        "Coder A" in body
        and "alice" not in body.split("What the coders said")[1].split("Gold label")[0]
    )
    response = client.post(
        f"/projects/{project.slug}/adjudicate/{u2.pk}/",
        {"codes": ["docs"], "rule": "union", "rationale": "ok", "base_revision": ""},
    )
    assert response.status_code == 302
    assert response["Location"].endswith(f"/adjudicate/{u3.pk}/")
    queue = client.get(f"/projects/{project.slug}/adjudicate/").content.decode()
    assert "67% adjudicated" in queue


def test_queue_filters_by_code_and_pair(client, users):
    project = make_coded_project(users)
    client.force_login(users["admin"])
    page = client.get(f"/projects/{project.slug}/adjudicate/?kind=all&code=docs&decided=1")
    assert page.context["shown"] == 1
    page = client.get(f"/projects/{project.slug}/adjudicate/?kind=all&pair=alice%2Bbob&decided=1")
    assert page.context["shown"] == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_admins_deciding_the_same_unit_at_once_never_overwrite_silently(users):
    project = make_coded_project(users)
    u2 = project.units.order_by("position")[1]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def decide(codes):
        barrier.wait()
        try:
            adj.decide(project, u2, users["admin"], codes=codes, rule="manual", base_revision=None)
            outcomes.append("saved")
        except adj.AdjudicationConflict:
            outcomes.append("conflict")
        finally:
            connection.close()

    workers = [threading.Thread(target=decide, args=(c,)) for c in ({"docs"}, {"memory"})]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert sorted(outcomes) == ["conflict", "saved"]
    assert GoldLabel.objects.get(unit=u2).revision == 1
    assert GoldEvent.objects.filter(gold__unit=u2).count() == 1


def test_a_proposed_example_enters_the_codebook_only_when_the_project_closes(client, users):
    from coding.models import ExampleProposal, Project, Quote

    project = make_coded_project(users)
    version = project.codebook_version
    quote = Quote.objects.order_by("pk").first()
    unit = quote.application.coding.unit
    client.force_login(users["admin"])
    url = f"/projects/{project.slug}/adjudicate/{unit.pk}/"
    page = client.get(url).content.decode()
    assert "propose as example" in page

    response = client.post(url, {"action": "propose_example", "quote": str(quote.pk)})
    assert response.status_code == 302
    client.post(url, {"action": "propose_example", "quote": str(quote.pk)})
    assert ExampleProposal.objects.count() == 1
    assert version.codebook.latest_version() == version  # nothing visible while running

    client.force_login(users["alice"])
    assert client.post(f"/projects/{project.slug}/adjudicate/close/").status_code == 403
    client.force_login(users["admin"])
    client.post(f"/projects/{project.slug}/adjudicate/close/")

    project.refresh_from_db()
    assert project.status == Project.Status.CLOSED
    latest = version.codebook.latest_version()
    assert latest.number == version.number + 1
    code = latest.codes.get(key=quote.application.code.key)
    assert {"text": quote.text, "post_id": quote.post_id} in code.examples
    assert project.codebook_version == version  # the project keeps its pinned version


def test_a_quote_of_another_unit_cannot_be_proposed(client, users):
    from coding.models import ExampleProposal, Quote

    project = make_coded_project(users)
    quote = Quote.objects.order_by("pk").first()
    other = project.units.exclude(pk=quote.application.coding.unit_id).first()
    client.force_login(users["admin"])
    response = client.post(
        f"/projects/{project.slug}/adjudicate/{other.pk}/",
        {"action": "propose_example", "quote": str(quote.pk)},
    )
    assert response.status_code == 400
    assert not ExampleProposal.objects.exists()


def test_bulk_accept_that_cannot_go_through_accepts_nothing_and_says_why(client, users):
    project = make_coded_project(users)
    GoldLabel.objects.all().delete()
    # The coders agreed on a code the project's codebook version no longer has (as after
    # an upgrade that merged it away).
    elsewhere = make_codebook_version("Later")
    moved = Code.objects.filter(version=project.codebook_version, key="install")
    moved.update(version=elsewhere, key="install-old", shortcut="")
    client.force_login(users["admin"])
    found = len(adj.acceptable(adj.unit_codings(project)))
    response = client.post(f"/projects/{project.slug}/adjudicate/accept/", {"expected": str(found)})
    assert response.status_code == 302
    shown = client.get(response["Location"]).content.decode()
    assert "Nothing accepted: unknown code(s): install-old. Check the preview again." in shown
    assert not GoldLabel.objects.exists()
