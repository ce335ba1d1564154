from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from coding.views import audit as audit_views
from coding.views.accounts import ThrottledLoginView

urlpatterns = [
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("admin/", admin.site.urls),
    path("audit/", audit_views.audit_log, name="audit_log"),
    path("projects/<slug:slug>/audit/", audit_views.project_audit_log, name="project_audit_log"),
    path("", include("coding.urls")),
    path("", include("analysis.urls")),
]

handler403 = "coding.views.site.permission_denied"
handler404 = "coding.views.site.page_not_found"
handler500 = "coding.views.site.server_error"
