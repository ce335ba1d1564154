"""The product's URLs plus the floor: a minimal view doing one insert."""

import time

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as product_urlpatterns

FLOOR_TABLE = "bench_floor"


@csrf_exempt
def floor(request: HttpRequest) -> HttpResponse:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {FLOOR_TABLE} (at) VALUES (%s)", [time.time()])  # noqa: S608
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench-floor/", floor), *product_urlpatterns]
