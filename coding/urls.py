from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("threads/<int:pk>/", views.thread_detail, name="thread_detail"),
    path("healthz", views.healthz, name="healthz"),
]
