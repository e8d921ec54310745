"""The wheel the image installs (non-editable) carries the migrations and runs them from site-packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from app import migrate
from tests.conftest import fresh_database

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "alembic", "migrations", "app")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the project's wheel from a copy of the sources (the checkout stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), "."]
    subprocess.run(command, cwd=source, check=True, capture_output=True, timeout=300)
    (built,) = out.glob("recengine-*.whl")
    return built


def test_wheel_carries_alembic_env_and_every_revision(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"app/_alembic/env.py", "app/_alembic/script.py.mako"} <= names
    revisions = {p.name for p in (ROOT / "migrations").glob("*.py")}
    assert revisions and {f"app/_migrations/{name}" for name in revisions} <= names
    assert not [n for n in names if n.startswith(("alembic/", "migrations/"))], "nothing outside the package"


def test_wheel_carries_every_explorer_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    static = ROOT / "app" / "explorer" / "static"
    files = {p.relative_to(ROOT).as_posix() for p in static.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert len(files) >= 9 and files <= names, sorted(files - names)


def test_installed_copy_migrates_a_database_from_anywhere(wheel: Path, pg_uri: str, tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(site)
    url = fresh_database(pg_uri, "recengine_wheel")
    migrate.downgrade(url, "base")
    script = (
        "from app import migrate\n"
        "import sys\n"
        "folders = migrate.script_folders()\n"
        "assert all(str(f).startswith(sys.argv[2]) for f in folders), folders\n"
        "migrate.upgrade(sys.argv[1])\n"
        "print(migrate.head_revision(sys.argv[1]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", script, url, str(site)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == migrate.head_revision(url)
    assert migrate.pending_revisions(url) == []


def test_checkout_uses_the_repository_folders_and_alembic_ini() -> None:
    environment, revisions = migrate.script_folders()
    assert environment == ROOT / "alembic" and revisions == ROOT / "migrations"
    config = migrate.alembic_config("postgresql+asyncpg://u@h/d")
    assert config.config_file_name == str(ROOT / "alembic.ini")
