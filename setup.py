"""Packaging beyond what pyproject.toml can say: alembic/ and migrations/ ship inside the `app` package.

The repository keeps them at the top level (alembic.ini and `alembic upgrade head` work from a
checkout); an installed wheel carries them as app/_alembic and app/_migrations, found by app/migrate.py.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["app", "app.*"]), "app._alembic", "app._migrations"],
    package_dir={"app._alembic": "alembic", "app._migrations": "migrations"},
    package_data={
        "app._alembic": ["*.mako"],
        "app.explorer": ["static/*.html", "static/*.css", "static/js/*.js", "static/js/views/*.js"],
    },
)
