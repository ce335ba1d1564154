"""Codebooks: the reference page, the editor, version history and diffs, exports, and a
project's codebook upgrade."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import audit
from ..access import get_codebook_for_user, get_project_for_user, staff_required
from ..codebook import (
    OPERATIONS,
    CodebookError,
    Node,
    apply_edit,
    codings_by_code,
    diff_versions,
    nodes_of,
    pin_project,
    search_rows,
    tree_rows,
    upgrade_preview,
    upgrade_project,
)
from ..codebook_io import FORMATS, export_version, load_file
from ..models import Codebook, CodebookVersion, Membership, Post, Role

CONTENT_TYPES = {"csv": "text/csv", "json": "application/json", "qdc": "application/xml"}


@require_GET
@login_required
def codebook_list(request: HttpRequest) -> HttpResponse:
    codebooks = Codebook.objects.annotate(
        version_count=Count("versions", distinct=True), latest=Max("versions__number")
    ).order_by("name")
    return render(request, "coding/codebook_list.html", {"codebooks": codebooks})


@require_POST
@staff_required
def codebook_load(request: HttpRequest) -> HttpResponse:
    """Staff load a .csv, .json or .qdc file (a new codebook or a new version of one)."""
    upload = request.FILES.get("file")
    name = request.POST.get("name", "").strip() or None
    if upload is None:
        messages.error(request, "Choose a file to load.")
        return redirect("codebook_list")
    suffix = Path(upload.name).suffix.lower()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / (Path(upload.name).stem[:80] + suffix)
        with path.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        try:
            codebook, version, changed = load_file(path, name, user=request.user)
        except CodebookError as exc:
            messages.error(request, f"Nothing was loaded: {exc}")
            return redirect("codebook_list")
    state = f"loaded as version {version.number}" if changed else "unchanged"
    if changed:
        audit.record(request, audit.Action.CODEBOOK, version, op="load", file=upload.name)
    messages.success(request, f"{codebook.name}: {state}.")
    return redirect("codebook_detail", pk=codebook.pk)


@require_POST
@staff_required
def codebook_create(request: HttpRequest) -> HttpResponse:
    """Staff start an empty codebook and build it in the editor."""
    name = request.POST.get("name", "").strip()
    description = request.POST.get("description", "").strip()
    if not name or len(name) > 200:
        messages.error(request, "A codebook needs a name of at most 200 characters.")
        return redirect("codebook_list")
    codebook, created = Codebook.objects.get_or_create(
        name=name, defaults={"description": description, "created_by": request.user}
    )
    if not created:
        messages.error(request, f"A codebook named {name!r} already exists.")
        return redirect("codebook_list")
    audit.record(request, audit.Action.CODEBOOK, codebook, op="create")
    return redirect("codebook_editor", pk=codebook.pk)


def _small(value: str) -> bool:
    """A version or revision number as typed: decimal digits, short enough to be one."""
    return value.isdecimal() and len(value) < 10


def _version(codebook: Codebook, number: str | None) -> CodebookVersion:
    versions = codebook.versions.select_related("created_by")
    if number:
        wanted = int(number) if _small(number) else -1
        version = versions.filter(number=wanted).first()
    else:
        version = versions.order_by("-number").first()
    if version is None:
        raise Http404("No such version.")
    return version


@require_GET
@login_required
def codebook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The reference page annotators read: tree, definitions, examples, shortcuts, search."""
    codebook = get_codebook_for_user(request, pk)
    latest = codebook.latest_version()
    version = _version(codebook, request.GET["version"]) if request.GET.get("version") else latest
    query = request.GET.get("q", "").strip()[:200]
    rows = search_rows(tree_rows(nodes_of(version)), query) if version else []
    _attach_examples(rows)
    projects = Membership.objects.filter(
        user=request.user, project__codebook_version__codebook=codebook
    ).select_related("project__codebook_version")
    context = {
        "projects": projects,
        "admin_role": Role.ADMIN,
        "codebook": codebook,
        "version": version,
        "latest": latest,
        "rows": rows,
        "query": query,
        "formats": FORMATS,
    }
    template = "coding/codebook_detail.html"
    if request.htmx:
        template += "#code-tree"
    return render(request, template, context)


def _attach_examples(rows) -> None:
    """Each row's examples with the thread of a linked post (one query for all)."""
    ids = {e["post_id"] for r in rows for e in r.node.examples if isinstance(e.get("post_id"), int)}
    threads = dict(Post.objects.filter(pk__in=ids).values_list("pk", "thread_id")) if ids else {}
    for row in rows:
        row.examples = [
            {"text": e.get("text", ""), "thread_id": threads.get(e.get("post_id"))}
            for e in row.node.examples
        ]


def _examples_text(node: Node | None) -> str:
    if node is None:
        return ""
    return "\n".join(
        (f"post:{e['post_id']} " if e.get("post_id") else "") + e.get("text", "")
        for e in node.examples
    )


def _parse_examples(text: str) -> list[dict]:
    examples = []
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        if head.startswith("post:") and head[5:].isdecimal():
            examples.append({"text": rest.strip(), "post_id": int(head[5:])})
        else:
            examples.append({"text": line})
    return examples


def _edit_params(op: str, data) -> dict:
    """The operation's parameters from the submitted form (fields from an allow-list)."""
    key = data.get("key", "")
    if op == "add":
        return {
            "parent": data.get("parent") or None,
            "name": data.get("name", ""),
            "key": data.get("new_key", ""),
        }
    if op == "rename":
        return {"key": key, "name": data.get("name", "")}
    if op == "edit":
        return {
            "key": key,
            "definition": data.get("definition", "").strip(),
            "when_to_use": data.get("when_to_use", "").strip(),
            "when_not_to_use": data.get("when_not_to_use", "").strip(),
            "examples": _parse_examples(data.get("examples", "")),
            "color": data.get("color", "").strip(),
            "shortcut": data.get("shortcut", "").strip(),
            "codable": data.get("codable") == "on",
        }
    if op == "move":
        return {"key": key, "parent": data.get("parent") or None}
    if op == "merge":
        return {"keys": [key], "into": data.get("into", "")}
    if op == "split":
        return {"key": key, "names": data.get("names", "").splitlines()}
    if op == "deactivate":
        return {"key": key, "active": data.get("active") == "1"}
    raise CodebookError(f"unknown operation {op!r}")


def _selected_after(op: str, change: dict, fallback: str) -> str:
    if op == "add":
        return change.get("key", fallback)
    if op == "merge":
        return change.get("into", fallback)
    if op == "split":
        return (change.get("into") or [fallback])[0]
    return fallback


@require_http_methods(["GET", "POST"])
@login_required
def codebook_editor(request: HttpRequest, pk: int) -> HttpResponse:
    """Add, rename, move, merge, split, deactivate and edit codes; each edit is a version."""
    codebook = get_codebook_for_user(request, pk, edit=True)
    selected = request.GET.get("code") or request.POST.get("key") or ""
    error = notice = ""
    if request.method == "POST":
        op = request.POST.get("op", "")
        base = request.POST.get("base", "")
        try:
            if op not in OPERATIONS:
                raise CodebookError(f"unknown operation {op!r}")
            params = _edit_params(op, request.POST)
            version = apply_edit(
                codebook,
                op,
                base=int(base) if _small(base) else None,
                user=request.user,
                **params,
            )
        except CodebookError as exc:
            error = str(exc)
        else:
            audit.record(request, audit.Action.CODEBOOK, version, op=op, note=version.note)
            notice = f"Saved as version {version.number}: {version.note}."
            selected = _selected_after(op, version.changes[0], selected)
    latest = codebook.latest_version()
    rows = tree_rows(nodes_of(latest)) if latest else []
    current = next((r for r in rows if r.node.key == selected), None)
    blocked: set[str] = set()
    if current is not None:
        blocked = {current.node.key} | {
            r.node.key for r in rows if current.node.key in _ancestor_keys(r, rows)
        }
    context = {
        "codebook": codebook,
        "latest": latest,
        "rows": rows,
        "current": current,
        "targets": [r for r in rows if r.node.key not in blocked],
        "examples_text": _examples_text(current.node if current else None),
        "error": error,
        "notice": notice,
    }
    template = "coding/codebook_editor.html"
    if request.htmx:
        template += "#editor"
    return render(request, template, context)


def _ancestor_keys(row, rows) -> set[str]:
    by_key = {r.node.key: r.node for r in rows}
    out, parent = set(), row.node.parent
    while parent and parent not in out:
        out.add(parent)
        parent = by_key[parent].parent if parent in by_key else None
    return out


@require_GET
@login_required
def codebook_history(request: HttpRequest, pk: int) -> HttpResponse:
    """Every version with who, when and what; and a diff between any two of them."""
    codebook = get_codebook_for_user(request, pk)
    versions = list(codebook.versions.select_related("created_by").order_by("-number"))
    diff = None
    numbers = [v.number for v in versions]
    a_param, b_param = request.GET.get("a", ""), request.GET.get("b", "")
    if len(versions) >= 2 or (a_param and b_param):
        a_num = int(a_param) if _small(a_param) else (numbers[1] if len(numbers) > 1 else 0)
        b_num = int(b_param) if _small(b_param) else numbers[0]
        by_number = {v.number: v for v in versions}
        if a_num not in by_number or b_num not in by_number:
            raise Http404("No such version.")
        diff = diff_versions(by_number[a_num], by_number[b_num])
    context = {"codebook": codebook, "versions": versions, "diff": diff}
    template = "coding/codebook_history.html"
    if request.htmx:
        template += "#diff"
    return render(request, template, context)


@require_GET
@login_required
def codebook_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    codebook = get_codebook_for_user(request, pk)
    if fmt not in FORMATS:
        raise Http404("No such format.")
    version = _version(codebook, request.GET.get("version"))
    try:
        data = export_version(version, fmt)
    except CodebookError as exc:
        messages.error(request, f"Not exported: {exc}.")
        return redirect("codebook_detail", codebook.pk)
    filename = f"{slugify(codebook.name) or 'codebook'}-v{version.number}.{fmt}"
    return FileResponse(
        io.BytesIO(data), as_attachment=True, filename=filename, content_type=CONTENT_TYPES[fmt]
    )


@require_http_methods(["GET", "POST"])
@login_required
def project_codebook(request: HttpRequest, slug: str) -> HttpResponse:
    """A project admin pins a codebook version or upgrades to a newer one, after a preview."""
    project = get_project_for_user(request, slug, admin=True)
    current = project.codebook_version
    if request.method == "POST":
        return _project_codebook_post(request, project)
    newer, choices, preview, target = [], [], None, None
    if current is not None:
        newer = list(
            current.codebook.versions.filter(number__gt=current.number)
            .select_related("created_by")
            .order_by("-number")
        )
        wanted = request.GET.get("to", "")
        target = next((v for v in newer if str(v.number) == wanted), None)
        if target is not None:
            preview = upgrade_preview(project, target)
    else:
        choices = [b.latest_version() for b in Codebook.objects.all()]
        choices = [v for v in choices if v is not None]
    context = {
        "project": project,
        "current": current,
        "newer": newer,
        "choices": choices,
        "target": target,
        "preview": preview,
        "usage": codings_by_code(project),
        "upgrades": project.codebook_upgrades.select_related(
            "from_version", "to_version", "upgraded_by"
        ),
    }
    template = "coding/project_codebook.html"
    if request.htmx:
        template += "#preview"
    return render(request, template, context)


def _project_codebook_post(request: HttpRequest, project) -> HttpResponse:
    version_id = request.POST.get("version", "")
    version = CodebookVersion.objects.filter(
        pk=int(version_id) if version_id.isdecimal() and len(version_id) <= 18 else -1
    ).first()
    if version is None:
        messages.error(request, "Choose a codebook version.")
        return redirect("project_codebook", slug=project.slug)
    expected = request.POST.get("from", "")
    try:
        if request.POST.get("action") == "pin":
            pin_project(project, version, user=request.user)
            audit.record(request, audit.Action.CODEBOOK, version, op="pin", project=project)
            messages.success(request, f"The project now uses {version}.")
        else:
            upgrade_project(
                project,
                version,
                user=request.user,
                expected_from=int(expected) if _small(expected) else None,
            )
            audit.record(request, audit.Action.CODEBOOK, version, op="upgrade", project=project)
            messages.success(request, f"Upgraded to {version}; codings now read through it.")
    except CodebookError as exc:
        messages.error(request, f"Nothing changed: {exc}")
    return redirect("project_codebook", slug=project.slug)
