"""A database that stops answering (a restart, a failover) gets a clear "try again"."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader

RETRY_AFTER_SECONDS = 5
MESSAGE = (
    "The database did not answer, so this was not saved. Your changes are kept in this "
    "browser; try again in a moment (the coding screen retries by itself)."
)


class DatabaseUnavailableMiddleware:
    """Answers 503 with a retry message, as JSON to the coding screen's saves."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        if request.content_type == "application/json":
            response = JsonResponse({"error": MESSAGE, "retry": True}, status=503)
        else:
            # No context processors: they may need the database that just failed.
            response = HttpResponse(loader.get_template("503.html").render(), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
