import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings

from coding.models import Membership, Project

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_accounts_and_project_and_is_idempotent(tmp_path, settings):
    settings.DEBUG = True
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "creds"
    call_command("seed_demo")
    first = (tmp_path / "creds").read_text()
    call_command("seed_demo")

    assert (tmp_path / "creds").read_text() == first
    User = get_user_model()
    assert set(User.objects.values_list("username", flat=True)) == {
        "admin",
        "alice",
        "bob",
        "carol",
    }
    assert User.objects.get(username="admin").is_staff
    assert not User.objects.get(username="alice").is_staff
    assert Project.objects.count() == 1
    assert Membership.objects.filter(role="annotator").count() == 3
    passwords = dict(line.split(" ") for line in first.splitlines() if not line.startswith("#"))
    for name, password in passwords.items():
        assert User.objects.get(username=name).check_password(password)


def test_seed_demo_refuses_to_run_with_debug_off_unless_forced(tmp_path, settings):
    settings.DEMO_CREDENTIALS_FILE = tmp_path / "creds"
    with override_settings(DEBUG=False):
        with pytest.raises(CommandError, match="--force"):
            call_command("seed_demo")
        assert not get_user_model().objects.exists()
        call_command("seed_demo", "--force")
    assert get_user_model().objects.count() == 4
    assert not (tmp_path / "creds").exists()
