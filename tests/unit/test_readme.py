"""The README is the operator's manual: it must name every setting and the one-command workflows."""

import re
from pathlib import Path

from eventpipe.settings import setting_names

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`(EVENTPIPE_[A-Z0-9_]+)`", README))
    assert documented == setting_names()


def test_quick_start_is_make_run_and_make_test() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "make run" in quick_start
    assert "make test" in quick_start


def test_sections_follow_the_user_documentation_outline() -> None:
    # What it is and how to start come first; benchmarks and development notes last.
    headings = re.findall(r"^## (.+)$", README, flags=re.MULTILINE)
    outline = [
        "Quick start",
        "Concepts and the request path",
        "Exporting event logs",
        "Settings",
        "Security",
        "Production topology",
        "Benchmarks",
        "Development",
    ]
    assert [heading for heading in headings if heading in outline] == outline


def test_every_file_the_readme_names_exists() -> None:
    root = Path(__file__).parents[2]
    named = set(re.findall(r"\b((?:docs|deploy|tests)/[\w./*-]*\w)", README))
    named |= set(re.findall(r"\b([A-Z]+\.md)\b", README))
    # A pattern such as tests/integration/test_delivery_*.py must match at least one file.
    missing = sorted(path for path in named if not any(root.glob(path)))
    assert missing == []
