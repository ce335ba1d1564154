from django.urls import path

from .views import corpus, projects, site

urlpatterns = [
    path("", site.home, name="home"),
    path("healthz", site.healthz, name="healthz"),
    # Corpus
    path("threads/<int:pk>/", corpus.thread_detail, name="thread_detail"),
    # Projects
    path("projects/", projects.project_list, name="project_list"),
    path("projects/new/", projects.project_create, name="project_create"),
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
]
