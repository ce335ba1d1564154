"""Settings for benchmarks only: the product's settings, served over plain HTTP on loopback,
with one extra URL (the floor) that no product URLconf contains."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.coding_urls"
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "coding.storage.StaticStorage"},
}
# Static files straight from the source folders, so no collectstatic is needed to bench.
WHITENOISE_USE_FINDERS = True
