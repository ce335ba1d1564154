"""Static file storages whose URLs are worked out once per file name.

Every page names its stylesheets and scripts with ``{% static %}``; the storage finds
each URL anew every time (with a manifest: cleaning the name, looking up its hashed
name, joining it to STATIC_URL). A name's URL does not change while a process runs
(the manifest is read when the storage starts), so each one is kept after the first.
"""

from __future__ import annotations

from django.contrib.staticfiles.storage import StaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage


class KeptUrls:
    def url(self, name, force=False):
        if force:
            return super().url(name, force)
        kept = self.__dict__.setdefault("_kept_urls", {})
        url = kept.get(name)
        if url is None:
            url = kept[name] = super().url(name)
        return url


class StaticStorage(KeptUrls, StaticFilesStorage):
    """Files from STATIC_ROOT (or, while developing, the apps' folders) as they are."""


class ManifestStaticStorage(KeptUrls, CompressedManifestStaticFilesStorage):
    """Hashed, compressed copies made by collectstatic (production)."""
