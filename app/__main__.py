"""`python -m app` runs the `recengine` command line."""

from app.cli import app

app()
