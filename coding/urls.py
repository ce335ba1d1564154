from django.urls import path

from .views import adjudication, code, codebooks, corpus, imports, open_coding, projects, site

urlpatterns = [
    # The coding screen first: it is requested more than every other page together, and
    # URLs are tried in order (no pattern below matches its paths).
    path("projects/<slug:slug>/units/<int:unit_id>/code/", code.code_unit, name="code_unit"),
    path(
        "projects/<slug:slug>/units/<int:unit_id>/history/",
        code.coding_history,
        name="coding_history",
    ),
    path("projects/<slug:slug>/next/", code.code_next, name="code_next"),
    path("", site.home, name="home"),
    path("healthz", site.healthz, name="healthz"),
    # Imports (staff)
    path("imports/", imports.imports, name="imports"),
    path("imports/<int:pk>/", imports.import_detail, name="import_detail"),
    path("imports/<int:pk>/cancel/", imports.import_cancel, name="import_cancel"),
    path("imports/<int:pk>/resume/", imports.import_resume, name="import_resume"),
    # Corpus
    path("corpus/", corpus.corpus_list, name="corpus_list"),
    path("threads/<int:pk>/", corpus.thread_detail, name="thread_detail"),
    # Codebooks
    path("codebooks/", codebooks.codebook_list, name="codebook_list"),
    path("codebooks/load/", codebooks.codebook_load, name="codebook_load"),
    path("codebooks/new/", codebooks.codebook_create, name="codebook_create"),
    path("codebooks/<int:pk>/", codebooks.codebook_detail, name="codebook_detail"),
    path("codebooks/<int:pk>/edit/", codebooks.codebook_editor, name="codebook_editor"),
    path("codebooks/<int:pk>/history/", codebooks.codebook_history, name="codebook_history"),
    path(
        "codebooks/<int:pk>/export/<str:fmt>/",
        codebooks.codebook_export,
        name="codebook_export",
    ),
    path("projects/<slug:slug>/codebook/", codebooks.project_codebook, name="project_codebook"),
    # Projects
    path("projects/", projects.project_list, name="project_list"),
    path("projects/new/", projects.project_create, name="project_create"),
    path(
        "projects/new/matching/",
        projects.project_selection_count,
        name="project_selection_count",
    ),
    path("projects/<slug:slug>/", projects.project_detail, name="project_detail"),
    path(
        "projects/<slug:slug>/sample-size/",
        projects.project_sample_size,
        name="project_sample_size",
    ),
    path("projects/<slug:slug>/sample/", projects.project_sample, name="project_sample"),
    path("projects/<slug:slug>/assign/", projects.project_assign, name="project_assign"),
    path("projects/<slug:slug>/members/", projects.project_members, name="project_members"),
    path(
        "projects/<slug:slug>/members/<int:user_id>/remove/",
        projects.member_remove,
        name="member_remove",
    ),
    path("projects/<slug:slug>/units/", projects.project_units, name="project_units"),
    path(
        "projects/<slug:slug>/units/<int:unit_id>/reassign/",
        projects.unit_reassign,
        name="unit_reassign",
    ),
    # Adjudication (project admins)
    path(
        "projects/<slug:slug>/adjudicate/",
        adjudication.adjudication_queue,
        name="adjudication_queue",
    ),
    path(
        "projects/<slug:slug>/adjudicate/close/",
        adjudication.adjudication_close,
        name="adjudication_close",
    ),
    path(
        "projects/<slug:slug>/adjudicate/accept/",
        adjudication.adjudication_bulk_accept,
        name="adjudication_bulk_accept",
    ),
    path(
        "projects/<slug:slug>/adjudicate/<int:unit_id>/",
        adjudication.adjudicate_unit,
        name="adjudicate_unit",
    ),
    # Open coding and the affinity board (board: project admins)
    path(
        "projects/<slug:slug>/units/<int:unit_id>/open/",
        open_coding.open_code_unit,
        name="open_code_unit",
    ),
    path("projects/<slug:slug>/open/next/", open_coding.open_code_next, name="open_code_next"),
    path("projects/<slug:slug>/board/", open_coding.affinity_board, name="affinity_board"),
    path("projects/<slug:slug>/board/act/", open_coding.board_action, name="board_action"),
    path("projects/<slug:slug>/board/codebook/", open_coding.board_codebook, name="board_codebook"),
    path(
        "projects/<slug:slug>/board/provisional/",
        open_coding.open_provisional,
        name="open_provisional",
    ),
    path(
        "projects/<slug:slug>/board/open-codes.csv",
        open_coding.open_codes_csv,
        name="open_codes_csv",
    ),
    path(
        "projects/<slug:slug>/board/mapping.csv",
        open_coding.open_mapping_csv,
        name="open_mapping_csv",
    ),
    path("projects/<slug:slug>/board/image.<str:fmt>", open_coding.board_image, name="board_image"),
]
