"""Stored or user-entered text reaches pages only escaped, or through one audited filter."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUDITED = {ROOT / "coding" / "templatetags" / "stored_html.py"}
SKIP_DIRS = {".venv", "node_modules", ".git", "staticfiles", "tests"}


def _files(suffixes: tuple[str, ...]):
    for path in ROOT.rglob("*"):
        if path.suffix in suffixes and not SKIP_DIRS.intersection(path.relative_to(ROOT).parts):
            yield path


def test_no_template_uses_the_safe_filter_or_autoescape_off():
    offenders = []
    for path in _files((".html", ".txt", ".xml", ".svg")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(r"\|\s*safe\b|\{%\s*autoescape\s+off", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_mark_safe_appears_only_in_the_audited_filter():
    offenders = []
    for path in _files((".py",)):
        if path in AUDITED:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(r"\bmark_safe\b|\bSafeString\(|\bformat_html\(.*\{\}.*\|safe", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
