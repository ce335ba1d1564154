"""Two editors saving the same codebook at once: one wins, the other is told, none is lost."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from coding.codebook import CodebookError, Node, apply_edit, load_nodes

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_edits_from_the_same_version_never_overwrite_each_other_silently():
    codebook, _, _ = load_nodes(
        "Study", "", [Node(key="a", name="A"), Node(key="b", name="B"), Node(key="c", name="C")]
    )
    start = threading.Barrier(4)
    outcomes: list[str] = []
    lock = threading.Lock()

    def editor(key: str) -> None:
        start.wait(10)
        try:
            version = apply_edit(codebook, "rename", base=1, key=key, name=f"{key} renamed")
            result = f"saved v{version.number}"
        except CodebookError as exc:
            result = f"refused: {exc}"
        finally:
            connection.close()
        with lock:
            outcomes.append(result)

    workers = [threading.Thread(target=editor, args=(k,)) for k in ("a", "b", "c", "a")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)

    saved = [o for o in outcomes if o.startswith("saved")]
    assert saved == ["saved v2"]
    assert all("changed since you opened it" in o for o in outcomes if o not in saved)
    assert codebook.versions.count() == 2


def test_editors_who_reload_between_saves_each_get_their_own_version():
    codebook, _, _ = load_nodes("Study", "", [Node(key="a", name="A"), Node(key="b", name="B")])
    start = threading.Barrier(6)
    numbers: list[int] = []
    lock = threading.Lock()

    def editor(n: int) -> None:
        start.wait(10)
        try:
            version = apply_edit(
                codebook, "add", base=None, parent="a", name=f"Child {n}", key=f"a.child-{n}"
            )
            with lock:
                numbers.append(version.number)
        finally:
            connection.close()

    workers = [threading.Thread(target=editor, args=(n,)) for n in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)

    assert sorted(numbers) == [2, 3, 4, 5, 6, 7]
    latest = codebook.latest_version()
    assert sorted(latest.codes.filter(parent__key="a").values_list("key", flat=True)) == [
        f"a.child-{n}" for n in range(6)
    ]
