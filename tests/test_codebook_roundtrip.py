"""Any codebook survives CSV, JSON and REFI-QDA .qdc unchanged (property tests, no database)."""

from __future__ import annotations

from pathlib import Path

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coding.codebook import CONTROL_RE, CodebookError, Node, tree_order, validate_nodes
from coding.codebook_io import (
    code_guid,
    read_csv,
    read_json,
    read_qdc,
    with_left_out,
    write_csv,
    write_qdc,
)

XSD = xmlschema.XMLSchema(
    str(Path(__file__).resolve().parent / "data" / "refi-qda" / "Codebook.xsd")
)


class FakeCodebook:
    name = "Property codebook"
    description = "Made by a property test."


def clean(text: str) -> str:
    return CONTROL_RE.sub("", text.replace("\r", "")).strip()


texts = st.text(max_size=40).map(clean)
names = texts.filter(bool)
colors = st.one_of(st.just(""), st.from_regex(r"\A#[0-9a-f]{6}\Z"))
shortcuts = st.sampled_from(["", "", "", "a", "b", "1", "é"])


@st.composite
def codebooks(draw) -> list[Node]:
    size = draw(st.integers(min_value=1, max_value=12))
    nodes: list[Node] = []
    used_shortcuts: set[str] = set()
    for i in range(size):
        parent = draw(st.one_of(st.none(), st.sampled_from(nodes))) if nodes else None
        shortcut = draw(shortcuts)
        if shortcut in used_shortcuts:
            shortcut = ""
        if shortcut:
            used_shortcuts.add(shortcut)
        examples = draw(st.lists(texts.filter(bool), max_size=3))
        nodes.append(
            Node(
                key=f"k{i}" if parent is None else f"{parent.key}.k{i}",
                name=draw(names),
                parent=parent.key if parent else None,
                definition=draw(texts),
                when_to_use=draw(texts),
                when_not_to_use=draw(texts),
                examples=[{"text": t} for t in examples],
                color=draw(colors),
                shortcut=shortcut,
                codable=draw(st.booleans()),
                active=draw(st.booleans()),
            )
        )
    validate_nodes(nodes)
    return tree_order(nodes)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(codebooks())
def test_any_codebook_round_trips_through_csv(nodes):
    assert [n.content() for n in read_csv(write_csv(nodes))] == [n.content() for n in nodes]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(codebooks())
def test_any_codebook_round_trips_through_json(nodes):
    from coding.codebook_io import write_json

    _, back = read_json(write_json(FakeCodebook(), None, nodes))

    assert [n.content() for n in back] == [n.content() for n in nodes]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(codebooks())
def test_any_codebook_exports_valid_qdc_that_reads_back_its_tree(nodes):
    if not any(n.active for n in nodes if not n.parent):
        with pytest.raises(CodebookError, match="every code of this version is retired"):
            write_qdc(FakeCodebook.name, nodes)
        return
    raw = write_qdc(FakeCodebook.name, nodes)
    XSD.validate(raw.decode())
    known = {code_guid(FakeCodebook.name, n.key): n for n in nodes}

    read = read_qdc(raw, known=known)
    back = with_left_out(read, nodes)

    # What the format cannot carry comes from the codes the file was made from; retired
    # codes (and codes under them), left out of the file, are put back where they were.
    assert [n.content() for n in tree_order(back)] == [n.content() for n in nodes]
    assert all(n.active for n in read)
