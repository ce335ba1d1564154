"""Codebook domain logic: versions, edits, mappings, diffs and project upgrades.

A codebook's tree is handled here as plain data: a flat, ordered list of ``Node``s whose
``parent`` is a key. Every edit (rename, move, merge, split, deactivate, edit, add) reads
the latest version, applies the change to that plain list, validates the result and
writes it as a new version together with the ``CodeMapping`` rows that say where the old
keys went. Versions are never changed after they are written, and coders' codings are
never rewritten: ``map_keys`` reads them through the mappings.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from itertools import pairwise

from django.db import transaction
from django.db.models import Count
from django.utils.text import slugify

from .models import (
    Code,
    CodeApplication,
    Codebook,
    CodebookVersion,
    CodeMapping,
    Project,
    ProjectUpgrade,
)

# Keys the coding screen uses for itself (Enter is never a single printable character).
RESERVED_SHORTCUTS = frozenset("/jkqu[]{}?")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
TEXT_FIELDS = ("name", "definition", "when_to_use", "when_not_to_use")
EDITABLE_FIELDS = (
    "definition",
    "when_to_use",
    "when_not_to_use",
    "examples",
    "color",
    "shortcut",
    "codable",
)


class CodebookError(ValueError):
    """A codebook change or file that cannot be accepted; the message says what and where."""


class VersionConflict(CodebookError):
    """The codebook changed since the editor loaded it."""


@dataclass
class Node:
    """One code as plain data; ``parent`` is the parent's key (None at the top)."""

    key: str
    name: str
    parent: str | None = None
    definition: str = ""
    when_to_use: str = ""
    when_not_to_use: str = ""
    examples: list[dict] = field(default_factory=list)
    color: str = ""
    shortcut: str = ""
    codable: bool = True
    active: bool = True

    def __post_init__(self) -> None:
        # One line ending everywhere (browsers send CRLF; XML readers would fold CR).
        for attr in TEXT_FIELDS:
            value = getattr(self, attr)
            if isinstance(value, str) and "\r" in value:
                setattr(self, attr, value.replace("\r\n", "\n").replace("\r", "\n"))
        if isinstance(self.examples, list):
            self.examples = [
                {**e, "text": e["text"].replace("\r\n", "\n").replace("\r", "\n")}
                if isinstance(e, dict) and isinstance(e.get("text"), str) and "\r" in e["text"]
                else e
                for e in self.examples
            ]

    def content(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------- reading


def nodes_of(version: CodebookVersion) -> list[Node]:
    """The version's codes as plain nodes, parents before children, siblings in order."""
    codes = list(version.codes.select_related("parent").order_by("order", "id"))
    children: dict[int | None, list[Code]] = defaultdict(list)
    for code in codes:
        children[code.parent_id].append(code)
    out: list[Node] = []

    def walk(parent_id: int | None) -> None:
        for code in children.get(parent_id, []):
            out.append(node_of(code))
            walk(code.id)

    walk(None)
    return out


def node_of(code: Code) -> Node:
    """A stored code as a plain node (its parent, if any, loaded with it)."""
    return Node(
        key=code.key,
        name=code.name,
        parent=code.parent.key if code.parent else None,
        definition=code.definition,
        when_to_use=code.when_to_use,
        when_not_to_use=code.when_not_to_use,
        examples=list(code.examples or []),
        color=code.color,
        shortcut=code.shortcut,
        codable=code.codable,
        active=code.active,
    )


def tree_order(nodes: list[Node]) -> list[Node]:
    """The nodes depth first (parents before children), keeping sibling order."""
    children: dict[str | None, list[Node]] = defaultdict(list)
    for node in nodes:
        children[node.parent].append(node)
    out: list[Node] = []

    def walk(parent: str | None) -> None:
        for node in children.get(parent, []):
            out.append(node)
            walk(node.key)

    walk(None)
    return out


def paths(nodes: list[Node]) -> dict[str, list[str]]:
    """Each key's path of names from the top, e.g. ["Challenges", "Spaces"]."""
    by_key = {n.key: n for n in nodes}
    out: dict[str, list[str]] = {}
    for node in nodes:
        path, seen, current = [], set(), node
        while current is not None and current.key not in seen:
            seen.add(current.key)
            path.append(current.name)
            current = by_key.get(current.parent) if current.parent else None
        out[node.key] = path[::-1]
    return out


@dataclass
class TreeRow:
    node: Node
    depth: int
    path: list[str]
    has_children: bool


def tree_rows(nodes: list[Node]) -> list[TreeRow]:
    """The tree as rows with depth and path, ready for an indented list."""
    ordered = tree_order(nodes)
    all_paths = paths(ordered)
    parents = {n.parent for n in ordered if n.parent}
    return [
        TreeRow(n, len(all_paths[n.key]) - 1, all_paths[n.key], n.key in parents) for n in ordered
    ]


def search_rows(rows: list[TreeRow], query: str) -> list[TreeRow]:
    """Rows whose name, definition, guidance, examples or shortcut contain every word of
    ``query``, with their ancestors kept for context."""
    words = query.lower().split()
    if not words:
        return rows
    by_key = {r.node.key: r for r in rows}
    keep: set[str] = set()
    for row in rows:
        n = row.node
        text = " ".join(
            [n.name, n.definition, n.when_to_use, n.when_not_to_use, n.shortcut]
            + [e.get("text", "") for e in n.examples]
        ).lower()
        if all(w in text for w in words):
            current: Node | None = n
            while current is not None and current.key not in keep:
                keep.add(current.key)
                current = by_key[current.parent].node if current.parent else None
    return [r for r in rows if r.node.key in keep]


def derive_key(parent_key: str | None, name: str, taken: Iterable[str] = ()) -> str:
    """A key from the path (parent key + slugified name), made unique among ``taken``."""
    slug = slugify(name.replace("/", " "))[:60].strip("-") or "code"
    base = f"{parent_key}.{slug}" if parent_key else slug
    base = base[:95]
    taken = set(taken)
    key, n = base, 2
    while key in taken:
        key, n = f"{base}-{n}", n + 1
    return key


# ---------------------------------------------------------------------------- validation


def validate_nodes(
    nodes: list[Node], where: str = "", *, kept: frozenset[tuple[str, str]] = frozenset()
) -> None:
    """Raise ``CodebookError`` naming the first bad code; accept a sound tree silently.

    ``kept``: (key, shortcut) pairs of the version being replaced. A code keeping its
    shortcut is not refused for a key the coding screen reserves since (the screen drops
    such a shortcut), so a version from before may still be edited or reloaded."""
    prefix = f"{where}: " if where else ""
    keys: set[str] = set()
    shortcuts: dict[str, str] = {}
    if not nodes:
        raise CodebookError(f"{prefix}the codebook has no codes")
    for node in nodes:
        label = f"{prefix}code {node.key or node.name!r}"
        if not node.key:
            raise CodebookError(f"{label}: the key is empty")
        if len(node.key) > 100 or not KEY_RE.match(node.key):
            raise CodebookError(
                f"{label}: a key is at most 100 characters of lowercase letters, digits, "
                "'.', '_' and '-', starting with a letter or digit"
            )
        if node.key in keys:
            raise CodebookError(f"{label}: the key is used twice")
        keys.add(node.key)
        if not node.name.strip():
            raise CodebookError(f"{label}: the name is empty")
        texts = [getattr(node, attr) for attr in TEXT_FIELDS]
        texts += [e.get("text", "") for e in node.examples if isinstance(e, dict)]
        if any(isinstance(t, str) and CONTROL_RE.search(t) for t in texts):
            raise CodebookError(f"{label}: the text contains a control character")
        if len(node.name) > 300:
            raise CodebookError(f"{label}: the name is longer than 300 characters")
        if node.color and not COLOR_RE.match(node.color):
            raise CodebookError(f"{label}: the colour {node.color!r} is not #rrggbb")
        if node.shortcut:
            if len(node.shortcut) != 1 or node.shortcut.isspace():
                raise CodebookError(f"{label}: a shortcut is one key")
            if (
                node.shortcut.lower() in RESERVED_SHORTCUTS
                and (node.key, node.shortcut) not in kept
            ):
                raise CodebookError(
                    f"{label}: the shortcut {node.shortcut!r} is reserved by the coding screen "
                    f"(reserved: {' '.join(sorted(RESERVED_SHORTCUTS))} and Enter)"
                )
            if node.shortcut in shortcuts:
                raise CodebookError(
                    f"{label}: the shortcut {node.shortcut!r} is already used by "
                    f"{shortcuts[node.shortcut]!r}"
                )
            shortcuts[node.shortcut] = node.key
        if not isinstance(node.examples, list) or not all(
            isinstance(e, dict) and isinstance(e.get("text"), str) for e in node.examples
        ):
            raise CodebookError(f'{label}: examples must be a list of {{"text": ...}}')
    for node in nodes:
        if node.parent is not None and node.parent not in keys:
            raise CodebookError(f"{prefix}code {node.key!r}: no parent with key {node.parent!r}")
    # Cycles: every node must reach the top.
    by_key = {n.key: n for n in nodes}
    for node in nodes:
        seen, current = set(), node
        while current.parent is not None:
            if current.key in seen:
                raise CodebookError(f"{prefix}code {node.key!r}: the tree has a cycle")
            seen.add(current.key)
            current = by_key[current.parent]


def shared_names(nodes: list[Node]) -> dict[str, str]:
    """Codes in use whose name (case and spacing aside) an earlier sibling in use already
    has: each such code's key -> the sibling's key. A retired code may keep the name its
    successor took."""
    named: dict[tuple[str | None, str], str] = {}
    shared: dict[str, str] = {}
    for node in nodes:
        if node.active:
            name = " ".join(node.name.split()).casefold()
            first = named.setdefault((node.parent, name), node.key)
            if first != node.key:
                shared[node.key] = first
    return shared


# ---------------------------------------------------------------------------- writing


def _write_version(
    codebook: Codebook,
    parent: CodebookVersion | None,
    nodes: list[Node],
    *,
    user=None,
    note: str = "",
    changes: list[dict] | None = None,
    mappings: Iterable[tuple[str, str, str]] = (),
) -> CodebookVersion:
    """Store ``nodes`` as the codebook's next version (call inside a transaction)."""
    number = (parent.number + 1) if parent else 1
    latest = codebook.versions.order_by("-number").values_list("number", flat=True).first()
    if latest is not None:
        number = latest + 1
    version = CodebookVersion.objects.create(
        codebook=codebook,
        number=number,
        parent=parent,
        note=note,
        changes=changes or [],
        created_by=user if user is not None and user.is_authenticated else None,
    )
    ordered = tree_order(nodes)
    ids: dict[str, int] = {}
    order_in_parent: dict[str | None, int] = defaultdict(int)
    # One bulk insert per depth, so parents have ids before their children.
    depth: dict[str, int] = {}
    for node in ordered:
        depth[node.key] = depth[node.parent] + 1 if node.parent else 0
    for level in sorted(set(depth.values())):
        batch = []
        for node in ordered:
            if depth[node.key] != level:
                continue
            batch.append(
                Code(
                    version=version,
                    key=node.key,
                    parent_id=ids[node.parent] if node.parent else None,
                    name=node.name,
                    definition=node.definition,
                    when_to_use=node.when_to_use,
                    when_not_to_use=node.when_not_to_use,
                    examples=node.examples,
                    color=node.color,
                    shortcut=node.shortcut,
                    order=order_in_parent[node.parent],
                    active=node.active,
                    codable=node.codable,
                )
            )
            order_in_parent[node.parent] += 1
        created = Code.objects.bulk_create(batch)
        if any(c.pk is None for c in created):
            created = list(version.codes.filter(key__in=[c.key for c in batch]))
        for code in created:
            ids[code.key] = code.pk
    CodeMapping.objects.bulk_create(
        [
            CodeMapping(
                from_version=parent, to_version=version, old_key=old, new_key=new, kind=kind
            )
            for old, new, kind in dict.fromkeys(mappings)
        ]
    )
    return version


def kept_shortcuts(nodes: list[Node]) -> frozenset[tuple[str, str]]:
    """The (key, shortcut) pairs of a version, for ``validate_nodes(kept=...)``."""
    return frozenset((n.key, n.shortcut) for n in nodes if n.shortcut)


def same_tree(a: list[Node], b: list[Node]) -> bool:
    return [n.content() for n in tree_order(a)] == [n.content() for n in tree_order(b)]


@transaction.atomic
def load_nodes(
    name: str, description: str, nodes: list[Node], *, user=None, note: str = ""
) -> tuple[Codebook, CodebookVersion, bool]:
    """Create the codebook, or a new version of it when the tree differs from the latest.

    Returns (codebook, version, changed). Loading the same tree again changes nothing.
    Keys present in the latest version but not in ``nodes`` are recorded as removed.
    """
    codebook, _ = Codebook.objects.get_or_create(
        name=name, defaults={"description": description, "created_by": _user(user)}
    )
    codebook = Codebook.objects.select_for_update().get(pk=codebook.pk)
    latest = codebook.latest_version()
    validate_nodes(nodes, kept=kept_shortcuts(nodes_of(latest)) if latest else frozenset())
    if description and codebook.description != description:
        codebook.description = description
        codebook.save(update_fields=["description"])
    if latest is not None and same_tree(nodes_of(latest), nodes):
        return codebook, latest, False
    changes, mappings = [], []
    if latest is not None:
        rows = diff_nodes(nodes_of(latest), nodes)
        changes = [{"op": "load", "summary": row["summary"], "key": row["key"]} for row in rows]
        new_keys = {n.key for n in nodes}
        mappings = [
            (n.key, "", CodeMapping.Kind.REMOVE) for n in nodes_of(latest) if n.key not in new_keys
        ]
    version = _write_version(
        codebook,
        latest,
        nodes,
        user=user,
        note=note or ("Loaded from a file." if latest is None else "Reloaded from a file."),
        changes=changes,
        mappings=mappings,
    )
    return codebook, version, True


def _user(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


# ---------------------------------------------------------------------------- edits


@dataclass
class Edit:
    """The outcome of one editing operation on plain nodes."""

    nodes: list[Node]
    summary: str
    change: dict
    mappings: list[tuple[str, str, str]] = field(default_factory=list)


def _find(nodes: list[Node], key: str) -> Node:
    for node in nodes:
        if node.key == key:
            return node
    raise CodebookError(f"no code with key {key!r} in this version")


def _descendants(nodes: list[Node], key: str) -> set[str]:
    out: set[str] = set()
    frontier = {key}
    while frontier:
        frontier = {n.key for n in nodes if n.parent in frontier} - out
        out |= frontier
    return out


def _leaf_becomes_parent(nodes: list[Node], parent: str | None) -> tuple[list[Node], str]:
    """A codable leaf that gets its first subcode stops being codable (the default rule;
    an admin may allow it again). Returns the nodes and a note for the summary."""
    if parent is None:
        return nodes, ""
    target = _find(nodes, parent)
    if not target.codable or any(n.parent == parent for n in nodes):
        return nodes, ""
    out = [replace(n, codable=False) if n.key == parent else n for n in nodes]
    return out, f"; {target.name!r} is no longer codable itself"


def op_add(nodes: list[Node], *, parent: str | None, name: str, key: str = "", **fields) -> Edit:
    parent = parent or None
    if parent:
        _find(nodes, parent)
    key = key.strip() or derive_key(parent, name, (n.key for n in nodes))
    new = Node(key=key, name=name.strip(), parent=parent, **fields)
    nodes, note = _leaf_becomes_parent(nodes, parent)
    return Edit(
        nodes=[*nodes, new],
        summary=f"Added {new.name!r}{note}",
        change={"op": "add", "key": key, "name": new.name, "parent": parent},
    )


def op_rename(nodes: list[Node], *, key: str, name: str) -> Edit:
    node = _find(nodes, key)
    name = name.strip()
    if name == node.name:
        raise CodebookError(f"{node.name!r} already has that name")
    out = [replace(n, name=name) if n.key == key else n for n in nodes]
    return Edit(
        nodes=out,
        summary=f"Renamed {node.name!r} to {name!r}",
        change={"op": "rename", "key": key, "from": node.name, "to": name},
        mappings=[(key, key, CodeMapping.Kind.RENAME)],
    )


def op_edit(nodes: list[Node], *, key: str, **fields) -> Edit:
    node = _find(nodes, key)
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise CodebookError(f"cannot edit {', '.join(sorted(unknown))}")
    changed = sorted(f for f, v in fields.items() if getattr(node, f) != v)
    if not changed:
        raise CodebookError(f"nothing changed in {node.name!r}")
    out = [replace(n, **fields) if n.key == key else n for n in nodes]
    return Edit(
        nodes=out,
        summary=f"Edited {', '.join(f.replace('_', ' ') for f in changed)} of {node.name!r}",
        change={"op": "edit", "key": key, "fields": changed},
    )


def op_move(nodes: list[Node], *, key: str, parent: str | None) -> Edit:
    node = _find(nodes, key)
    parent = parent or None
    if parent is not None:
        target = _find(nodes, parent)
        if parent == key or parent in _descendants(nodes, key):
            raise CodebookError(f"cannot move {node.name!r} under itself")
        where = repr(target.name)
    else:
        where = "the top level"
    if parent == node.parent:
        raise CodebookError(f"{node.name!r} is already there")
    # Moved codes go last among their new siblings.
    out, note = _leaf_becomes_parent([n for n in nodes if n.key != key], parent)
    out.append(replace(node, parent=parent))
    return Edit(
        nodes=out,
        summary=f"Moved {node.name!r} to {where}{note}",
        change={"op": "move", "key": key, "from": node.parent, "to": parent},
        mappings=[(key, key, CodeMapping.Kind.MOVE)],
    )


def op_merge(nodes: list[Node], *, keys: list[str], into: str) -> Edit:
    target = _find(nodes, into)
    sources = [_find(nodes, k) for k in dict.fromkeys(keys) if k != into]
    if not sources:
        raise CodebookError("choose at least one code to merge into another")
    for source in sources:
        if into in _descendants(nodes, source.key):
            raise CodebookError(f"cannot merge {source.name!r} into its own subcode")
    gone = {s.key for s in sources}
    out = []
    for n in nodes:
        if n.key in gone:
            continue
        out.append(replace(n, parent=into) if n.parent in gone else n)
    names = ", ".join(repr(s.name) for s in sources)
    return Edit(
        nodes=out,
        summary=f"Merged {names} into {target.name!r}",
        change={"op": "merge", "keys": sorted(gone), "into": into},
        mappings=[(s.key, into, CodeMapping.Kind.MERGE) for s in sources],
    )


def op_split(nodes: list[Node], *, key: str, names: list[str]) -> Edit:
    node = _find(nodes, key)
    names = [n.strip() for n in names if n.strip()]
    if len(names) < 2:
        raise CodebookError("a split needs at least two new names")
    if len(set(names)) != len(names):
        raise CodebookError("the new names must differ")
    taken = {n.key for n in nodes}
    parts = []
    for name in names:
        new_key = derive_key(node.parent, name, taken)
        taken.add(new_key)
        parts.append(replace(node, key=new_key, name=name, shortcut="", examples=[]))
    out = []
    for n in nodes:
        if n.key == key:
            out.extend(parts)
        else:
            out.append(replace(n, parent=parts[0].key) if n.parent == key else n)
    return Edit(
        nodes=out,
        summary=f"Split {node.name!r} into {', '.join(repr(p.name) for p in parts)}",
        change={"op": "split", "key": key, "into": [p.key for p in parts]},
        mappings=[(key, p.key, CodeMapping.Kind.SPLIT) for p in parts],
    )


def op_deactivate(nodes: list[Node], *, key: str, active: bool = False) -> Edit:
    node = _find(nodes, key)
    if node.active == active:
        raise CodebookError(f"{node.name!r} is already {'active' if active else 'inactive'}")
    affected = {key} | (set() if active else _descendants(nodes, key))
    out = [replace(n, active=active) if n.key in affected else n for n in nodes]
    verb = "Reactivated" if active else "Deactivated"
    return Edit(
        nodes=out,
        summary=f"{verb} {node.name!r}",
        change={"op": "activate" if active else "deactivate", "keys": sorted(affected)},
        mappings=[] if active else [(k, k, CodeMapping.Kind.REMOVE) for k in sorted(affected)],
    )


OPERATIONS = {
    "add": op_add,
    "rename": op_rename,
    "edit": op_edit,
    "move": op_move,
    "merge": op_merge,
    "split": op_split,
    "deactivate": op_deactivate,
}


@transaction.atomic
def apply_edit(
    codebook: Codebook, operation: str, *, base: int | None, user=None, **params
) -> CodebookVersion:
    """Apply one edit to the latest version and store the result as a new version.

    ``base`` is the version number the editor was looking at; if someone else made a
    newer version meanwhile the edit is refused (``VersionConflict``), never merged
    silently.
    """
    if operation not in OPERATIONS:
        raise CodebookError(f"unknown operation {operation!r}")
    codebook = Codebook.objects.select_for_update().get(pk=codebook.pk)
    latest = codebook.latest_version()
    if latest is None:
        if operation != "add":
            raise CodebookError("the codebook has no codes yet; add one first")
        nodes: list[Node] = []
    else:
        nodes = nodes_of(latest)
    if base is not None and latest is not None and base != latest.number:
        raise VersionConflict(
            f"the codebook changed since you opened it (now version {latest.number}, "
            f"you edited version {base}); reload and try again"
        )
    edit = OPERATIONS[operation](nodes, **params)
    validate_nodes(edit.nodes, kept=kept_shortcuts(nodes))
    # An edit may not give two codes under one parent the same name: a coder could not
    # tell them apart. (Another tool's codebook may arrive with such names; it loads, and
    # edits that leave those names alone still go through.)
    before = shared_names(nodes)
    for key, other in shared_names(edit.nodes).items():
        if before.get(key) != other:
            node = next(n for n in edit.nodes if n.key == key)
            where = f"under {node.parent!r}" if node.parent else "at the top"
            raise CodebookError(
                f"code {key!r}: the name {node.name!r} is already used {where} by code {other!r}"
            )
    change = {**edit.change, "summary": edit.summary}
    return _write_version(
        codebook,
        latest,
        edit.nodes,
        user=user,
        note=edit.summary,
        changes=[change],
        mappings=edit.mappings,
    )


# ---------------------------------------------------------------------------- mapping


def version_chain(from_version: CodebookVersion, to_version: CodebookVersion) -> list[int]:
    """Version ids from ``from_version`` to ``to_version`` following parent links."""
    if from_version.codebook_id != to_version.codebook_id:
        raise CodebookError("the two versions belong to different codebooks")
    parents = dict(
        CodebookVersion.objects.filter(codebook_id=to_version.codebook_id).values_list(
            "id", "parent_id"
        )
    )
    chain, current = [], to_version.pk
    while current is not None:
        chain.append(current)
        if current == from_version.pk:
            return chain[::-1]
        current = parents.get(current)
    raise CodebookError(
        f"version {to_version.number} does not descend from version {from_version.number}"
    )


def map_keys(from_version: CodebookVersion, to_version: CodebookVersion) -> dict[str, set[str]]:
    """Where each key of ``from_version`` went in ``to_version`` (empty set: removed).

    A key that still exists maps to itself; merges, splits and removals follow the
    recorded ``CodeMapping`` rows of every step in between.
    """
    chain = version_chain(from_version, to_version)
    keys_by_version: dict[int, set[str]] = defaultdict(set)
    for version_id, key in Code.objects.filter(version_id__in=chain).values_list(
        "version_id", "key"
    ):
        keys_by_version[version_id].add(key)
    steps: dict[tuple[int, int], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for row in CodeMapping.objects.filter(to_version_id__in=chain[1:]).values(
        "from_version_id", "to_version_id", "old_key", "new_key"
    ):
        steps[(row["from_version_id"], row["to_version_id"])][row["old_key"]].add(row["new_key"])
    current = {key: {key} for key in keys_by_version[chain[0]]}
    for prev, nxt in pairwise(chain):
        step, present = steps.get((prev, nxt), {}), keys_by_version[nxt]
        for old, now in current.items():
            moved: set[str] = set()
            for key in now:
                if key in step:
                    moved |= {k for k in step[key] if k}
                elif key in present:
                    moved.add(key)
            current[old] = moved
    return current


def codes_in_version(
    codes: Iterable[Code], target_version: CodebookVersion
) -> dict[int, list[Code]]:
    """For each code (of any earlier version), the codes of ``target_version`` it reads as.

    Use it to read codings made against an older version, e.g.
    ``codes_in_version([a.code for a in applications], project.codebook_version)``.
    """
    codes = list(codes)
    by_version: dict[int, list[Code]] = defaultdict(list)
    for code in codes:
        by_version[code.version_id].append(code)
    targets = {c.key: c for c in target_version.codes.all()}
    versions = {v.pk: v for v in CodebookVersion.objects.filter(pk__in=by_version)}
    out: dict[int, list[Code]] = {}
    for version_id, members in by_version.items():
        try:
            mapping = map_keys(versions[version_id], target_version)
        except CodebookError:
            # Another codebook, or a version the target does not descend from: no reading.
            mapping = {}
        for code in members:
            out[code.pk] = [targets[k] for k in sorted(mapping.get(code.key, ())) if k in targets]
    return out


# ---------------------------------------------------------------------------- diff

DIFF_FIELDS = ("definition", "when_to_use", "when_not_to_use", "examples", "color", "shortcut")


def diff_nodes(old: list[Node], new: list[Node]) -> list[dict]:
    """Rows of what differs, by key: added, removed, renamed, moved, edited, (de)activated."""
    before, after = {n.key: n for n in old}, {n.key: n for n in new}
    old_paths, new_paths = paths(old), paths(new)
    rows: list[dict] = []

    def row(kind: str, key: str, summary: str) -> None:
        rows.append({"kind": kind, "key": key, "summary": summary})

    for key in before:
        if key not in after:
            row("removed", key, f"Removed {' > '.join(old_paths[key])}")
    for key, node in after.items():
        if key not in before:
            row("added", key, f"Added {' > '.join(new_paths[key])}")
            continue
        was = before[key]
        if was.name != node.name:
            row("renamed", key, f"Renamed {was.name!r} to {node.name!r}")
        if was.parent != node.parent:
            row(
                "moved",
                key,
                f"Moved {node.name!r} from {' > '.join(old_paths[key][:-1]) or 'the top'} "
                f"to {' > '.join(new_paths[key][:-1]) or 'the top'}",
            )
        edited = [f.replace("_", " ") for f in DIFF_FIELDS if getattr(was, f) != getattr(node, f)]
        if was.codable != node.codable:
            edited.append("codable" if node.codable else "not codable")
        if edited:
            row("edited", key, f"Edited {', '.join(edited)} of {node.name!r}")
        if was.active != node.active:
            row(
                "activated" if node.active else "deactivated",
                key,
                f"{'Reactivated' if node.active else 'Deactivated'} {node.name!r}",
            )
    return rows


def diff_versions(a: CodebookVersion, b: CodebookVersion) -> dict:
    """What changed from version ``a`` to version ``b``, with the code mapping if one exists."""
    old, new = nodes_of(a), nodes_of(b)
    rows = diff_nodes(old, new)
    mapping_rows: list[dict] = []
    try:
        mapping = map_keys(a, b)
    except CodebookError:
        mapping = None
    if mapping is not None:
        old_names = {n.key: n.name for n in old}
        new_names = {n.key: n.name for n in new}
        for key in sorted(mapping, key=lambda k: [n.key for n in old].index(k)):
            targets = mapping[key]
            if targets != {key}:
                mapping_rows.append(
                    {
                        "key": key,
                        "name": old_names[key],
                        "to": [new_names[k] for k in sorted(targets)],
                    }
                )
    return {
        "from": a,
        "to": b,
        "rows": rows,
        "mapping": mapping_rows,
        "related": mapping is not None,
    }


# ---------------------------------------------------------------------------- projects


@dataclass
class UpgradeRow:
    key: str
    name: str
    before: list[str]
    after: list[str]
    applications: int
    codings: int
    units: list[list] = field(default_factory=list)  # [unit id, coder] of the codings


PREVIEW_UNITS = 50


def upgrade_preview(project: Project, target: CodebookVersion) -> list[UpgradeRow]:
    """For each code used in the project's codings whose reading changes, how and how often.

    Codings stay as they were; the rows show how they will read once the project is
    pinned to ``target`` instead of its current version.
    """
    current = project.codebook_version
    if current is None:
        raise CodebookError("the project has no codebook version yet")
    if target.codebook_id != current.codebook_id:
        raise CodebookError("a project can only be upgraded within its own codebook")
    if target.number <= current.number:
        raise CodebookError(f"version {target.number} is not newer than {current.number}")
    usage = (
        CodeApplication.objects.filter(coding__unit__project=project)
        .values("code_id")
        .annotate(applications=Count("id"), codings=Count("coding_id", distinct=True))
    )
    counts = {u["code_id"]: u for u in usage}
    codes = list(Code.objects.filter(pk__in=counts).select_related("version"))
    now = codes_in_version(codes, current)
    later = codes_in_version(codes, target)
    rows = []
    for code in sorted(codes, key=lambda c: (c.key, c.version.number)):
        before = [c.name for c in now[code.pk]]
        after = [c.name for c in later[code.pk]]
        if before != after or {c.key for c in now[code.pk]} != {c.key for c in later[code.pk]}:
            rows.append(
                UpgradeRow(
                    key=code.key,
                    name=code.name,
                    before=before,
                    after=after,
                    applications=counts[code.pk]["applications"],
                    codings=counts[code.pk]["codings"],
                )
            )
    # Which codings: the units and coders behind each changed code (one query).
    by_code = {row.key: row for row in rows}
    changed_ids = [c.pk for c in codes if c.key in by_code]
    if changed_ids:
        for key, unit_id, coder in (
            CodeApplication.objects.filter(coding__unit__project=project, code_id__in=changed_ids)
            .order_by("coding__unit_id", "coding__coder__username")
            .values_list("code__key", "coding__unit_id", "coding__coder__username")
        ):
            listed = by_code[key].units
            if len(listed) < PREVIEW_UNITS and [unit_id, coder] not in listed:
                listed.append([unit_id, coder])
    return rows


def codings_by_code(project: Project) -> list[dict]:
    """How many of the project's codings carry each code, read in its pinned version.

    Codings made against older versions are read through the mapping; nothing is
    rewritten. Rows follow the tree order of the pinned version.
    """
    current = project.codebook_version
    if current is None:
        return []
    pairs = list(
        CodeApplication.objects.filter(coding__unit__project=project).values_list(
            "coding_id", "code_id"
        )
    )
    codes = list(Code.objects.filter(pk__in={c for _, c in pairs}))
    read = codes_in_version(codes, current)
    codings: dict[str, set[int]] = defaultdict(set)
    for coding_id, code_id in pairs:
        for target in read.get(code_id, []):
            codings[target.key].add(coding_id)
    rows = tree_rows(nodes_of(current))
    return [
        {
            "key": r.node.key,
            "name": r.node.name,
            "path": r.path,
            "codings": len(codings[r.node.key]),
        }
        for r in rows
        if codings.get(r.node.key)
    ]


@transaction.atomic
def pin_project(project: Project, version: CodebookVersion, *, user) -> ProjectUpgrade:
    """Give a project without a codebook its first version (recorded like an upgrade)."""
    locked = Project.objects.select_for_update().get(pk=project.pk)
    if locked.codebook_version_id is not None:
        raise VersionConflict("the project already has a codebook version; upgrade it instead")
    locked.codebook_version = version
    locked.save(update_fields=["codebook_version"])
    return ProjectUpgrade.objects.create(
        project=locked, from_version=None, to_version=version, upgraded_by=_user(user)
    )


@transaction.atomic
def upgrade_project(
    project: Project, target: CodebookVersion, *, user, expected_from: int | None
) -> ProjectUpgrade:
    """Pin the project to ``target`` and record the upgrade; codings are not touched.

    ``expected_from`` is the version id the admin previewed; a concurrent upgrade makes
    this one fail rather than apply a mapping nobody looked at.
    """
    locked = Project.objects.select_for_update().get(pk=project.pk)
    if locked.codebook_version_id != expected_from:
        raise VersionConflict("the project's codebook version changed meanwhile; preview again")
    rows = upgrade_preview(locked, target)
    record = ProjectUpgrade.objects.create(
        project=locked,
        from_version=locked.codebook_version,
        to_version=target,
        upgraded_by=_user(user),
        summary=[asdict(r) for r in rows],
    )
    locked.codebook_version = target
    locked.save(update_fields=["codebook_version"])
    return record
