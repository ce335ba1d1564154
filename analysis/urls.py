from django.urls import path

from . import trends_views

urlpatterns: list = [
    # Forum vs Hub trends
    path("trends/", trends_views.trends_page, name="trends"),
    path("trends/charts/<slug:name>.<str:fmt>", trends_views.trends_chart, name="trends_chart"),
    path("trends/tables/<slug:name>.csv", trends_views.trends_table, name="trends_table"),
    path("trends/review/", trends_views.review, name="trends_review"),
    path("trends/import/", trends_views.import_hub_dump, name="trends_import"),
]
