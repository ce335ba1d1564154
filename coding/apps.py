from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_search_index(sender, using: str = "default", **kwargs) -> None:
    from django.db import connections

    from .search import ensure_search_index

    ensure_search_index(connections[using])


class CodingConfig(AppConfig):
    name = "coding"
    verbose_name = "Coding"

    def ready(self) -> None:
        post_migrate.connect(_ensure_search_index, sender=self)
        from . import (
            audit,  # noqa: F401  (connects the sign-in receivers)
            sessions,  # noqa: F401  (a deleted user's sessions go with them)
        )
