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
