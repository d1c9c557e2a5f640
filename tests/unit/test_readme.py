"""The README is the operator's manual: it must name every setting and the one-command workflows."""

import re
from dataclasses import fields, is_dataclass
from pathlib import Path

from eventpipe.settings import Settings, setting_names

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`(EVENTPIPE_[A-Z0-9_]+)`", README))
    assert documented == setting_names()


def test_settings_are_grouped_as_the_code_groups_them() -> None:
    settings = README.split("## Settings", 1)[1].split("\n## ", 1)[0]
    tables = [
        set(re.findall(r"^\| `(EVENTPIPE_[A-Z0-9_]+)`", table, flags=re.MULTILINE))
        for table in settings.split("\n### ")[1:]
    ]
    # A section is a dataclass Settings inherits from; Settings' own fields make one more.
    sections: list[set[str]] = []
    declared: set[str] = set()
    for section in reversed(Settings.__mro__):
        if is_dataclass(section):
            names = {f"EVENTPIPE_{f.name.upper()}" for f in fields(section)} - declared
            sections.append(names)
            declared |= names
    assert sorted(map(sorted, tables)) == sorted(map(sorted, sections))


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
