"""`python -m scoring.cli`, the same as the `scoring` script."""

from scoring.cli import app

app()
