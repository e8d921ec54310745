"""The README stays true: every setting and command is documented, and nothing extra."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from app.cli import app
from app.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_settings_table_matches_settings() -> None:
    documented = set(re.findall(r"^\| `RECENGINE_([A-Z_]+)` \|", README, flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_every_setting_has_a_description() -> None:
    assert [n for n, f in Settings.model_fields.items() if not f.description] == []


def test_every_cli_command_is_in_the_readme() -> None:
    names = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert len(names) >= 9
    missing = [n for n in names if f"recengine {n}" not in README]
    assert missing == []


def test_quickstart_has_the_two_commands() -> None:
    assert "make demo" in README and "make test" in README
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, flags=re.MULTILINE) and re.search(r"^test:", makefile, flags=re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
