"""Test set-up shared by every test module.

The database under test is the one in DATABASE_URL (PostgreSQL in CI) or a SQLite
file. Tests marked ``postgres`` (or ``sqlite``) are deselected, not skipped, on the
other database; with
REQUIRE_POSTGRES_TESTS=1 the run fails unless they ran and passed.
"""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

import pytest

_postgres_passed: list[str] = []


def _on_postgres() -> bool:
    from django.conf import settings

    return settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    other = "sqlite" if _on_postgres() else "postgres"
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker(other) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and "postgres" in report.keywords:
        _postgres_passed.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("REQUIRE_POSTGRES_TESTS") != "1":
        return
    workerinput = getattr(session.config, "workerinput", None)
    if workerinput is not None:
        return
    if not _on_postgres():
        print("\nREQUIRE_POSTGRES_TESTS=1 but the database is not PostgreSQL")
        session.exitstatus = 1
    elif not _postgres_passed:
        print("\nREQUIRE_POSTGRES_TESTS=1 but no PostgreSQL-only test passed")
        session.exitstatus = 1
    else:
        print(f"\nPostgreSQL-only tests passed: {len(_postgres_passed)}")


@pytest.fixture
def users(db):
    """An admin, two annotators and an outsider: the roles every permission test covers."""
    from tests.factories import make_user

    return {
        "staff": make_user("staff", is_staff=True),
        "admin": make_user("padmin"),
        "alice": make_user("alice"),
        "bob": make_user("bob"),
        "outsider": make_user("outsider"),
    }
