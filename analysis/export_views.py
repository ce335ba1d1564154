"""The exports page: downloads streamed straight from the database, and imports of
codings made elsewhere. No worker is involved, so nothing waits on a queue."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from coding import audit
from coding.access import get_project_for_user
from coding.importers.codings import CodingImportError, read_long_csv, read_qdpx, write_codings
from coding.models import Coding, Post, Unit

from .exports import ROW_SOURCES, ExportOptions, csv_lines

FORMATS = {
    "long": "Long: one row per unit, coder and code (input for the agreement command)",
    "wide": "Wide: one row per unit, a 0/1 column per code for each coder and for gold",
    "gold": "Gold: the adjudicated labels with rule, rationale and adjudicator",
    "agreement": "Agreement: the figures of the agreement page, per code and overall",
    "corpus": "Corpus: the sampled threads and posts as plain text",
    "qdpx": "REFI-QDA project (.qdpx) for ATLAS.ti, NVivo, MAXQDA, QualCoder",
}
MAX_UPLOAD = 64 * 1024 * 1024


def _options(request: HttpRequest) -> ExportOptions:
    flag = lambda name: request.GET.get(name) == "1"  # noqa: E731
    return ExportOptions(
        gold_only=flag("gold_only"),
        pseudonymize=flag("pseudonymize"),
        no_text=flag("no_text"),
        guard=not flag("no_formula_guard"),
    )


@require_GET
@login_required
def exports_page(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request, slug, admin=True)
    context = {
        "project": project,
        "formats": FORMATS,
        "codings": Coding.objects.filter(unit__project=project, status="submitted").count(),
        "units": Unit.objects.filter(project=project).count(),
    }
    return render(request, "analysis/exports.html", context)


@require_GET
@login_required
def export_download(request: HttpRequest, slug: str, fmt: str) -> HttpResponse:
    project = get_project_for_user(request, slug, admin=True)
    options = _options(request)
    if fmt == "qdpx" and options.no_text:
        from .refi import NO_TEXT

        messages.error(request, f"Not downloaded: {NO_TEXT}.")
        return redirect("exports", slug=project.slug)
    if fmt == "qdpx" or fmt in ROW_SOURCES:
        audit.record(request, audit.Action.EXPORT, project, format=fmt, query=request.GET.dict())
    if fmt == "qdpx":
        from .refi import write_qdpx

        fd, name = tempfile.mkstemp(suffix=".qdpx")
        os.close(fd)
        try:
            write_qdpx(project, Path(name), options)
            package = open(name, "rb")  # noqa: SIM115
        finally:
            os.unlink(name)  # the open handle keeps the data until the response is sent
        return FileResponse(
            package,
            as_attachment=True,
            filename=f"{project.slug}.qdpx",
            content_type="application/zip",
        )
    if fmt not in ROW_SOURCES:
        return render(request, "404.html", status=404)
    excel = request.GET.get("excel") == "1"
    lines = csv_lines(ROW_SOURCES[fmt](project, options), options, excel=excel)
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-{fmt}.csv"'
    return response


@require_GET
@login_required
def pseudonym_key(request: HttpRequest, slug: str) -> HttpResponse:
    """The mapping from pseudonyms back to names: for the project's admins only."""
    project = get_project_for_user(request, slug, admin=True)
    options = ExportOptions(pseudonymize=True, guard=True)
    for name in project.memberships.values_list("user__username", flat=True):
        options.name("coder", name, project)
    threads = Unit.objects.filter(project=project).values("thread_id")
    for author in (
        Post.objects.filter(thread_id__in=threads).values_list("author", flat=True).distinct()
    ):
        options.name("user", author, project)
    audit.record(request, audit.Action.EXPORT, project, format="pseudonym-key")
    response = HttpResponse(
        "".join(csv_lines(options.key_rows(), options)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{project.slug}-pseudonym-key.csv"'
    return response


@require_POST
@login_required
def import_upload(request: HttpRequest, slug: str) -> HttpResponse:
    project = get_project_for_user(request, slug, admin=True)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a file to import.")
        return redirect("exports", slug=project.slug)
    if upload.size > MAX_UPLOAD:
        messages.error(request, f"{upload.name} is larger than {MAX_UPLOAD // 2**20} MB.")
        return redirect("exports", slug=project.slug)
    data = upload.read()
    reader = read_qdpx if upload.name.lower().endswith(".qdpx") else read_long_csv
    try:
        records, problems = reader(project, data, upload.name)
        count = write_codings(project, records, request.user, problems)
    except CodingImportError as exc:
        return render(
            request,
            "analysis/exports.html",
            {
                "project": project,
                "formats": FORMATS,
                "problems": exc.problems[:200],
                "problem_count": len(exc.problems),
                "filename": upload.name,
            },
            status=400,
        )
    audit.record(request, audit.Action.IMPORT, project, file=upload.name, codings=count)
    messages.success(request, f"{upload.name}: {count} codings imported.")
    return redirect("exports", slug=project.slug)
