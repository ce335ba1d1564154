from django.urls import path

from .views import corpus, site

urlpatterns = [
    path("", site.home, name="home"),
    path("healthz", site.healthz, name="healthz"),
    # Corpus
    path("threads/<int:pk>/", corpus.thread_detail, name="thread_detail"),
]
