"""The `scoring` command (typer + rich), one module per command group.

``root`` holds the root group and catches the error family once; ``data``, ``features``,
``models``, ``serve``, ``monitor``, ``demo`` and ``store`` hold the commands; ``output`` what they
print. Heavy imports (pandas, MLflow, DuckDB) stay inside the commands, so `scoring --help` is quick.
"""

from scoring.cli.monitor import MONITOR_RED
from scoring.cli.root import app

__all__ = ["MONITOR_RED", "app"]
