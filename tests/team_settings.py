"""The product's settings with the collected static files in a folder the test chooses, so
a test can run collectstatic and gunicorn without touching the checkout's staticfiles/."""

import os

from config.settings import *  # noqa: F403

STATIC_ROOT = os.environ["TEAM_TEST_STATIC_ROOT"]
