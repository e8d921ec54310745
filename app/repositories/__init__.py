"""Repositories: one class per aggregate over an AsyncSession; all SQL lives here."""
