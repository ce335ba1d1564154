from django.urls import path

from . import export_views, report_views, trends_views
from . import views as agreement_views

urlpatterns: list = [
    # Agreement (project admins)
    path("projects/<slug:slug>/agreement/", agreement_views.agreement_page, name="agreement"),
    path(
        "projects/<slug:slug>/agreement/chart/",
        agreement_views.agreement_chart,
        name="agreement_chart",
    ),
    # Exports and imports of coded data
    path("projects/<slug:slug>/exports/", export_views.exports_page, name="exports"),
    path(
        "projects/<slug:slug>/exports/pseudonym-key.csv",
        export_views.pseudonym_key,
        name="export_pseudonym_key",
    ),
    path("projects/<slug:slug>/exports/import/", export_views.import_upload, name="import_codings"),
    path(
        "projects/<slug:slug>/exports/<str:fmt>/",
        export_views.export_download,
        name="export_download",
    ),
    # Reports: frequency, trends and co-occurrence, with the table behind each chart
    path("projects/<slug:slug>/reports/", report_views.report, name="report"),
    path(
        "projects/<slug:slug>/reports/<slug:kind>/chart/",
        report_views.report_chart,
        name="report_chart",
    ),
    path(
        "projects/<slug:slug>/reports/<slug:kind>/table.csv",
        report_views.report_csv,
        name="report_csv",
    ),
    # Forum vs Hub trends
    path("trends/", trends_views.trends_page, name="trends"),
    path("trends/charts/<slug:name>.<str:fmt>", trends_views.trends_chart, name="trends_chart"),
    path("trends/tables/<slug:name>.csv", trends_views.trends_table, name="trends_table"),
    path("trends/review/", trends_views.review, name="trends_review"),
    path("trends/import/", trends_views.import_hub_dump, name="trends_import"),
    path("trends/hub-import/", trends_views.start_hub_run, name="trends_hub_import"),
]
