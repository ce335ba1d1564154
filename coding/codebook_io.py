"""Codebooks in and out of files: CSV, JSON and REFI-QDA ``.qdc``.

Readers turn a file into plain ``Node``s (validated, with errors naming the row or
element); ``load_file`` then stores them in one transaction, so a bad file loads
nothing. Writers turn a version's nodes back into the same formats.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree as ET  # writing only; reading goes through defusedxml

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from django.conf import settings

from .codebook import (
    CodebookError,
    Node,
    derive_key,
    kept_shortcuts,
    load_nodes,
    node_of,
    nodes_of,
    paths,
    tree_order,
    validate_nodes,
)
from .models import Code, Codebook, CodebookVersion

DEFAULT_CODEBOOK = Path(__file__).resolve().parent / "default_codebook.json"
FORMATS = ("csv", "json", "qdc")
CSV_COLUMNS = [
    "key",
    "parent_key",
    "path",
    "name",
    "definition",
    "when_to_use",
    "when_not_to_use",
    "examples",
    "color",
    "shortcut",
    "codable",
    "active",
]
STUDY_COLUMNS = ["#", "Category", "Subcategory", "Definition", "Example"]
QDC_NS = "urn:QDA-XML:codebook:1.0"
QDC_SCHEMA_LOCATION = (
    "urn:QDA-XML:codebook:1.0 http://schema.qdasoftware.org/versions/Codebook/v1.0/Codebook.xsd"
)
# Fixed namespace for code GUIDs: the same codebook name and key give the same GUID.
GUID_NAMESPACE = uuid.UUID("8f0c2a5e-4d3b-5c1a-9e7f-0b6d2c4a8e10")
TRUE_WORDS = {"true", "1", "yes", "y"}
FALSE_WORDS = {"false", "0", "no", "n"}


def code_guid(codebook_name: str, key: str) -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, f"{codebook_name}\n{key}")).upper()


def format_of(path: Path | str) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise CodebookError(
            f"{Path(path).name}: unknown format {suffix or '(none)'!r}; use .csv, .json or .qdc"
        )
    return suffix


# ---------------------------------------------------------------------------- reading


def _flag(value: str, where: str, column: str) -> bool | None:
    word = (value or "").strip().lower()
    if not word:
        return None
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CodebookError(f"{where}: {column} must be true or false, not {value!r}")


def _leaf_default(nodes: list[Node], unset: set[str]) -> list[Node]:
    """Codes whose codable flag the file left open: leaves codable, parents not."""
    parents = {n.parent for n in nodes if n.parent}
    for node in nodes:
        if node.key in unset:
            node.codable = node.key not in parents
    return nodes


def _examples_from_cell(cell: str, where: str) -> list[dict]:
    cell = (cell or "").strip()
    if not cell:
        return []
    if cell.startswith("["):
        try:
            data = json.loads(cell)
        except json.JSONDecodeError as exc:
            raise CodebookError(f"{where}: examples are not valid JSON ({exc.msg})") from None
        if not isinstance(data, list):
            raise CodebookError(f"{where}: examples must be a list")
        return [e if isinstance(e, dict) else {"text": str(e)} for e in data]
    return [{"text": line.strip()} for line in cell.split("\n") if line.strip()]


def _examples_to_cell(examples: list[dict]) -> str:
    """One example per line; JSON when lines could not carry them back unchanged."""
    texts = [e.get("text", "") for e in examples]
    if any(
        set(e) - {"text"} or "\n" in t or "\r" in t or t != t.strip() or not t
        for e, t in zip(examples, texts, strict=True)
    ) or (texts and texts[0].startswith("[")):
        return json.dumps(examples, ensure_ascii=False)
    return "\n".join(e.get("text", "") for e in examples)


def read_csv(text: str, filename: str = "codebook.csv") -> list[Node]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise CodebookError(f"{filename}: the file is empty") from None
    except csv.Error as exc:
        raise CodebookError(f"{filename}, row 1: {exc}") from None
    if "key" in header and "name" in header:
        return _read_own_csv(reader, header, filename)
    if all(c in header for c in STUDY_COLUMNS[1:4]):
        return _read_study_csv(reader, header, filename)
    raise CodebookError(
        f"{filename}, row 1: expected the columns {', '.join(CSV_COLUMNS)} "
        f"or the study's layout {','.join(STUDY_COLUMNS)}"
    )


def _rows(reader, header: list[str], filename: str):
    try:
        for number, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            yield number, dict(zip(header, row, strict=False))
    except csv.Error as exc:
        raise CodebookError(f"{filename}, row {reader.line_num}: {exc}") from None


def _read_own_csv(reader, header: list[str], filename: str) -> list[Node]:
    nodes: list[Node] = []
    rows_of: dict[str, int] = {}
    unset: set[str] = set()
    for number, row in _rows(reader, header, filename):
        where = f"{filename}, row {number}"
        name = (row.get("name") or "").strip()
        if not name:
            raise CodebookError(f"{where}: the name is empty")
        parent = (row.get("parent_key") or "").strip() or None
        if parent and parent not in rows_of:
            raise CodebookError(f"{where}: parent key {parent!r} is not defined on an earlier row")
        key = (row.get("key") or "").strip() or derive_key(parent, name, rows_of)
        if key in rows_of:
            raise CodebookError(f"{where}: key {key!r} is already used on row {rows_of[key]}")
        rows_of[key] = number
        codable = _flag(row.get("codable", ""), where, "codable")
        active = _flag(row.get("active", ""), where, "active")
        node = Node(
            key=key,
            name=name,
            parent=parent,
            definition=(row.get("definition") or "").strip(),
            when_to_use=(row.get("when_to_use") or "").strip(),
            when_not_to_use=(row.get("when_not_to_use") or "").strip(),
            examples=_examples_from_cell(row.get("examples", ""), where),
            color=(row.get("color") or "").strip(),
            shortcut=(row.get("shortcut") or "").strip(),
            codable=bool(codable),
            active=True if active is None else active,
        )
        if codable is None:
            unset.add(key)
        _validate_row(node, where)
        nodes.append(node)
    return _leaf_default(nodes, unset)


def _validate_row(node: Node, where: str) -> None:
    try:
        validate_nodes([Node(**{**node.content(), "parent": None})])
    except CodebookError as exc:
        raise CodebookError(f"{where}: {exc}") from None


def _read_study_csv(reader, header: list[str], filename: str) -> list[Node]:
    """The study's layout: ``#,Category,Subcategory,Definition,Example``, one file per group.

    The category is given only on its first row; a category without subcategories
    carries the definition itself. All categories go under one group named after the
    file (e.g. "Challenges").
    """
    group_name = Path(filename).stem.replace("_", " ").strip() or "Codes"
    group = Node(key=derive_key(None, group_name), name=group_name, codable=False)
    nodes: list[Node] = [group]
    keys = {group.key}
    category: Node | None = None
    for number, row in _rows(reader, header, filename):
        where = f"{filename}, row {number}"
        cat_name = (row.get("Category") or "").strip()
        sub_name = (row.get("Subcategory") or "").strip()
        definition = (row.get("Definition") or "").strip()
        example = (row.get("Example") or "").strip()
        examples = [{"text": example}] if example else []
        if cat_name:
            key = derive_key(group.key, cat_name, keys)
            keys.add(key)
            category = Node(key=key, name=cat_name, parent=group.key, codable=not sub_name)
            if not sub_name:
                category.definition, category.examples = definition, examples
            nodes.append(category)
        elif category is None:
            raise CodebookError(f"{where}: a subcategory before any category")
        if sub_name:
            key = derive_key(category.key, sub_name, keys)
            keys.add(key)
            category.codable = False
            nodes.append(
                Node(
                    key=key,
                    name=sub_name,
                    parent=category.key,
                    definition=definition,
                    examples=examples,
                )
            )
        elif not cat_name:
            raise CodebookError(f"{where}: neither a category nor a subcategory")
    if len(nodes) == 1:
        raise CodebookError(f"{filename}: no categories found")
    return nodes


def read_json(text: str, filename: str = "codebook.json") -> tuple[dict, list[Node]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CodebookError(f"{filename}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("codes"), list):
        raise CodebookError(f'{filename}: expected an object with a "codes" list')
    nodes: list[Node] = []
    unset: set[str] = set()
    keys: set[str] = set()

    def walk(items: list, parent: str | None, where: str) -> None:
        for index, item in enumerate(items):
            here = f"{where}[{index}]"
            if not isinstance(item, dict):
                raise CodebookError(f"{filename}: {here} is not an object")
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                raise CodebookError(f"{filename}: {here} has no name")
            key = item.get("key") or derive_key(parent, name, keys)
            if not isinstance(key, str):
                raise CodebookError(f"{filename}: {here}: the key must be text")
            if key in keys:
                raise CodebookError(f"{filename}: {here}: key {key!r} is used twice")
            keys.add(key)
            fields = {}
            for attr in ("definition", "when_to_use", "when_not_to_use", "color", "shortcut"):
                value = item.get(attr, "")
                if not isinstance(value, str):
                    raise CodebookError(f"{filename}: {here}.{attr} must be text")
                fields[attr] = value
            examples = item.get("examples", [])
            if isinstance(examples, list):
                examples = [e if isinstance(e, dict) else {"text": str(e)} for e in examples]
            for attr in ("codable", "active"):
                if attr in item and not isinstance(item[attr], bool):
                    raise CodebookError(f"{filename}: {here}.{attr} must be true or false")
            node = Node(
                key=key,
                name=name.strip(),
                parent=parent,
                examples=examples,
                codable=item.get("codable", True),
                active=item.get("active", True),
                **fields,
            )
            if "codable" not in item:
                unset.add(key)
            _validate_row(node, f"{filename}: {here}")
            nodes.append(node)
            children = item.get("children", [])
            if not isinstance(children, list):
                raise CodebookError(f"{filename}: {here}.children must be a list")
            walk(children, key, f"{here}.children")

    walk(data["codes"], None, "codes")
    return data, _leaf_default(nodes, unset)


def read_qdc(
    raw: bytes, filename: str = "codebook.qdc", known: dict[str, Node] | None = None
) -> list[Node]:
    """A REFI-QDA codebook. ``known`` (GUID → the code we exported under it) keeps the
    key of each code we exported, and what the format cannot carry (when to use it and
    when not, examples, shortcut, whether it is in use) from that code."""
    try:
        root = SafeET.fromstring(raw)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise CodebookError(f"{filename}: not well-formed XML ({exc})") from None

    def local(tag: str) -> str:
        return tag.rsplit("}", 1)[-1]

    if local(root.tag) != "CodeBook":
        raise CodebookError(f"{filename}: the root element is <{local(root.tag)}>, not <CodeBook>")
    codes_el = [c for c in root if local(c.tag) == "Codes"]
    if not codes_el:
        raise CodebookError(f"{filename}: <CodeBook> has no <Codes> element")
    known = {g.upper().strip("{}"): n for g, n in (known or {}).items()}
    nodes: list[Node] = []
    keys: set[str] = set()

    def walk(element, parent: str | None, where: str) -> None:
        index = 0
        for child in element:
            if local(child.tag) != "Code":
                continue
            index += 1
            here = f"{where}/Code[{index}]"
            name = (child.get("name") or "").strip()
            if not name:
                raise CodebookError(f"{filename}: {here} has no name attribute")
            here = f"{here} {name!r}"
            guid = (child.get("guid") or "").upper().strip("{}")
            if not guid:
                raise CodebookError(f"{filename}: {here} has no guid attribute")
            codable = child.get("isCodable")
            if codable not in ("true", "false", "1", "0"):
                raise CodebookError(f"{filename}: {here}: isCodable must be true or false")
            color = (child.get("color") or "").strip()
            if len(color) == 4 and color.startswith("#"):
                color = "#" + "".join(ch * 2 for ch in color[1:])
            description = next((d.text or "" for d in child if local(d.tag) == "Description"), "")
            exported = known.get(guid)
            if exported is None or exported.key in keys:
                exported, key = None, derive_key(parent, name, keys)
            else:
                key = exported.key
            keys.add(key)
            node = replace(
                exported or Node(key=key, name=name),
                key=key,
                name=name,
                parent=parent,
                definition=description.strip(),
                color=color.lower(),
                codable=codable in ("true", "1"),
            )
            _validate_row(node, f"{filename}: {here}")
            nodes.append(node)
            walk(child, key, here)

    walk(codes_el[0], None, "CodeBook/Codes")
    if not nodes:
        raise CodebookError(f"{filename}: <Codes> holds no <Code>")
    return nodes


# ---------------------------------------------------------------------------- writing


def write_csv(nodes: list[Node]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    all_paths = paths(nodes)
    for node in tree_order(nodes):
        writer.writerow(
            [
                node.key,
                node.parent or "",
                " > ".join(all_paths[node.key]),
                node.name,
                node.definition,
                node.when_to_use,
                node.when_not_to_use,
                _examples_to_cell(node.examples),
                node.color,
                node.shortcut,
                "true" if node.codable else "false",
                "true" if node.active else "false",
            ]
        )
    return out.getvalue()


def write_json(codebook: Codebook, version: CodebookVersion | None, nodes: list[Node]) -> str:
    children: dict[str | None, list[Node]] = {}
    for node in tree_order(nodes):
        children.setdefault(node.parent, []).append(node)

    def tree(parent: str | None) -> list[dict]:
        items = []
        for node in children.get(parent, []):
            item = node.content()
            del item["parent"]
            sub = tree(node.key)
            if sub:
                item["children"] = sub
            items.append(item)
        return items

    data = {
        "format": "forum-coding-codebook",
        "format_version": 1,
        "name": codebook.name,
        "description": codebook.description,
        "version": version.number if version else None,
        "codes": tree(None),
    }
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def write_qdc(codebook_name: str, nodes: list[Node]) -> bytes:
    ET.register_namespace("", QDC_NS)
    ET.register_namespace("xsi", "http://www.w3.org/2001/XMLSchema-instance")
    q = f"{{{QDC_NS}}}"
    root = ET.Element(
        f"{q}CodeBook",
        {
            "origin": "Forum coding",
            "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation": QDC_SCHEMA_LOCATION,
        },
    )
    codes_el = ET.SubElement(root, f"{q}Codes")
    elements: dict[str | None, ET.Element] = {None: codes_el}
    left_out = left_out_keys(nodes)
    if len(left_out) == len(nodes):
        raise CodebookError("every code of this version is retired; a .qdc would hold none")
    for node in tree_order(nodes):
        if node.key in left_out:
            continue
        attrs = {
            "guid": code_guid(codebook_name, node.key),
            "name": node.name,
            "isCodable": "true" if node.codable else "false",
        }
        if node.color:
            attrs["color"] = node.color
        element = ET.SubElement(elements[node.parent], f"{q}Code", attrs)
        if node.definition:
            ET.SubElement(element, f"{q}Description").text = node.definition
        elements[node.key] = element
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


# ---------------------------------------------------------------------------- files


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise CodebookError(f"{path}: no such file")
    if path.stat().st_size > settings.IMPORT_MAX_BYTES:
        raise CodebookError(f"{path.name}: larger than IMPORT_MAX_BYTES")
    return path.read_bytes()


def _text(raw: bytes, filename: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CodebookError(f"{filename}: not UTF-8 text (byte {exc.start})") from None


def read_file(path: Path, name: str | None = None) -> tuple[str, str, list[Node]]:
    """(codebook name, description, nodes) from a file, fully validated; nothing is stored."""
    path = Path(path)
    fmt = format_of(path)
    raw = _read_bytes(path)
    description = ""
    kept: frozenset[tuple[str, str]] = frozenset()
    if fmt == "csv":
        nodes = read_csv(_text(raw, path.name), path.name)
    elif fmt == "json":
        data, nodes = read_json(_text(raw, path.name), path.name)
        name = name or (data.get("name") if isinstance(data.get("name"), str) else None)
        description = data.get("description") or ""
        if not isinstance(description, str):
            raise CodebookError(f"{path.name}: description must be text")
    else:
        codebook_name = name or path.stem
        known, target = _exported_codes(codebook_name)
        nodes = with_left_out(read_qdc(raw, path.name, known), target)
        kept = kept_shortcuts(target)
    name = (name or path.stem).strip()
    if not name:
        raise CodebookError(f"{path.name}: the codebook needs a name (--name)")
    validate_nodes(nodes, path.name, kept=kept)
    return name, description, nodes


def _exported_codes(target_name: str) -> tuple[dict[str, Node], list[Node]]:
    """Every codebook's codes by the GUID ``write_qdc`` gives them (the code as it is in
    the codebook's latest version, or as it last was for a key no longer there), the
    codebook named ``target_name`` winning; and that codebook's latest nodes."""
    others: dict[str, Node] = {}
    known: dict[str, Node] = {}
    codes = Code.objects.select_related("parent", "version__codebook").order_by(
        "version__number", "id"
    )
    for code in codes.iterator(chunk_size=2000):
        name = code.version.codebook.name
        (known if name == target_name else others)[code_guid(name, code.key)] = node_of(code)
    codebook = Codebook.objects.filter(name=target_name).first()
    latest = codebook.latest_version() if codebook else None
    return others | known, nodes_of(latest) if latest else []


def left_out_keys(nodes: list[Node]) -> set[str]:
    """The codes a .qdc leaves out: retired codes and every code under one. Other tools
    would offer them as codes in use; loading the file back keeps them (``read_file``)."""
    out: set[str] = set()
    for node in tree_order(nodes):
        if not node.active or node.parent in out:
            out.add(node.key)
    return out


def with_left_out(nodes: list[Node], latest: list[Node]) -> list[Node]:
    """``nodes`` read from a .qdc, with the codes of the codebook's latest version that
    the file leaves out (``left_out_keys``) put back in their place: under the same parent,
    after the same sibling."""
    out = list(nodes)
    present = {n.key for n in out}
    left_out = left_out_keys(latest)
    siblings: dict[str | None, list[str]] = {}
    for node in tree_order(latest):
        siblings.setdefault(node.parent, []).append(node.key)
    for node in tree_order(latest):
        if node.key not in left_out or node.key in present:
            continue
        if node.parent is not None and node.parent not in present:
            continue
        before = siblings[node.parent][: siblings[node.parent].index(node.key)]
        after = next((k for k in reversed(before) if k in present), None)
        if after is not None:
            at = next(i for i, n in enumerate(out) if n.key == after) + 1
        else:
            at = next((i for i, n in enumerate(out) if n.parent == node.parent), len(out))
        out.insert(at, node)
        present.add(node.key)
    return out


def load_file(path: Path, name: str | None = None, user=None):
    """Read and store a codebook file; returns (codebook, version, changed)."""
    name, description, nodes = read_file(Path(path), name)
    return load_nodes(name, description, nodes, user=user, note=f"Loaded from {Path(path).name}.")


def load_default(user=None):
    return load_file(DEFAULT_CODEBOOK, user=user)


def export_version(version: CodebookVersion, fmt: str) -> bytes:
    nodes = nodes_of(version)
    if fmt == "csv":
        return write_csv(nodes).encode("utf-8")
    if fmt == "json":
        return write_json(version.codebook, version, nodes).encode("utf-8")
    if fmt == "qdc":
        return write_qdc(version.codebook.name, nodes)
    raise CodebookError(f"unknown format {fmt!r}; use csv, json or qdc")


def export_file(path: Path, version: CodebookVersion) -> None:
    path = Path(path)
    data = export_version(version, format_of(path))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
