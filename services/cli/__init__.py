"""The `hotline` command-line tool (`hotline ...` or `python -m services.cli ...`)."""

from services.cli.main import main

__all__ = ["main"]
