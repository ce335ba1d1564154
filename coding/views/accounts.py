"""Sign-in with throttling of failed attempts (OWASP ASVS 2.2.1)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from .. import audit


def _client_ip(request: HttpRequest) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _keys(request: HttpRequest, username: str) -> tuple[str, str]:
    ip = _client_ip(request)
    return f"login-fail:ip:{ip}", f"login-fail:user:{username.strip().lower()[:150]}"


class ThrottledLoginView(auth_views.LoginView):
    """Refuses sign-in for a while after too many failures from one address or for one
    account, so passwords cannot be guessed at speed. Successful sign-in clears the count
    for that account."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        username = request.POST.get("username", "")
        keys = _keys(request, username)
        limit = settings.LOGIN_FAILURE_LIMIT
        if any((cache.get(k) or 0) >= limit for k in keys):
            minutes = max(1, settings.LOGIN_FAILURE_WINDOW // 60)
            # Unbound: validating the form would check the password all the same.
            form = self.get_form_class()(request, initial={"username": username})
            form.full_clean()
            form.cleaned_data = {}
            form.add_error(
                None,
                f"Too many failed sign-ins. Wait {minutes} minutes and try again, "
                "or ask the site's staff to reset your password.",
            )
            audit.record(request, audit.Action.SIGN_IN_FAILED, username=username, throttled=True)
            response = self.render_to_response(self.get_context_data(form=form))
            response.status_code = 429
            return response
        response = super().post(request, *args, **kwargs)
        if response.status_code == 200:  # the form came back: the sign-in failed
            for key in keys:
                cache.add(key, 0, settings.LOGIN_FAILURE_WINDOW)
                try:
                    cache.incr(key)
                except ValueError:
                    cache.set(key, 1, settings.LOGIN_FAILURE_WINDOW)
        else:
            cache.delete(keys[1])
        return response
