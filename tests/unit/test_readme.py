"""The README introduces eventpipe in a page a newcomer reads; the reference lives in docs/. Every
setting is documented there as the code groups them, and every link between the documents lands."""

import re
from dataclasses import fields, is_dataclass
from pathlib import Path

from eventpipe.settings import Settings, setting_names

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()
DOCUMENTS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 250


def test_every_setting_is_documented() -> None:
    documented = set(re.findall(r"`(EVENTPIPE_[A-Z0-9_]+)`", CONFIGURATION))
    assert documented == setting_names()


def test_settings_are_grouped_as_the_code_groups_them() -> None:
    settings = CONFIGURATION.split("## Settings", 1)[1].split("\n## ", 1)[0]
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


def test_the_readme_is_a_short_introduction() -> None:
    # What it is and how to start come first, then how it works and the API; the rest is linked.
    headings = re.findall(r"^## (.+)$", README, flags=re.MULTILINE)
    assert headings == [
        "Quick start",
        "Concepts and the request path",
        "The API",
        "Documentation",
        "Development",
    ]
    assert len(README.splitlines()) <= README_MAX_LINES


def test_the_readme_links_every_document() -> None:
    linked = set(re.findall(r"\]\(((?:docs/)?[\w-]+\.md)\)", README))
    documents = {f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")} | {"CHANGELOG.md"}
    assert documents - linked == set()


def test_every_file_the_readme_names_exists() -> None:
    named = set(re.findall(r"\b((?:docs|deploy|tests)/[\w./*-]*\w)", README))
    named |= set(re.findall(r"\b([A-Z]+\.md)\b", README))
    # A pattern such as tests/integration/test_delivery_*.py must match at least one file.
    missing = sorted(path for path in named if not any(ROOT.glob(path)))
    assert missing == []


def anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_the_documents_lands() -> None:
    broken = []
    for document in DOCUMENTS:
        text = document.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, fragment = target.partition("#")
            linked = (document.parent / path).resolve() if path else document
            if not linked.exists():
                broken.append(f"{document.name}: {target}")
            elif fragment and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.MULTILINE)
                if fragment not in {anchor(heading) for heading in headings}:
                    broken.append(f"{document.name}: {target}")
    assert broken == []
