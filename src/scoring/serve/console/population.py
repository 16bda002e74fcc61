"""The population the supervision and alert pages grade: every enterprise under the served champion.

Built once per model version and snapshot, in the background after start-up and after each swap
where ``console_warm`` is on; the previous one is served while a new one builds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from scoring.domain.models import ModelSet
from scoring.domain.policy import SupervisionPolicy, load_supervision_policy
from scoring.serve.state import Service
from scoring.serve.supervision import Population, PopulationCache, build_population
from scoring.settings import Settings


class Console:
    """The console's own state in one app: the supervision policy and the population cache."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.populations = PopulationCache()

    @functools.cached_property
    def policy(self) -> SupervisionPolicy:
        """The supervision policy, read once on first use; a fault in the file is raised on the page that
        needs it, and not kept, so a mended file is read again."""
        return load_supervision_policy(self.settings.model_spec_path("supervision_policy"))

    def served(self, service: Service) -> tuple[str, Callable[[], Population]] | None:
        """The label and the builder of the population of what is served now (one read of models and snapshot)."""
        models, online = service.models, service.online
        if models is None or online is None:
            return None
        label = f"{models.evaluation.name} v{models.evaluation.version} @ {online.as_of}"
        exceptions = service.exceptions

        def build() -> Population:
            not_counted = {
                str(r["record_id"])
                for rows in exceptions.values()
                for r in rows
                if r.get("table") == "penalties" and not r.get("counts", False)
            }
            return build_population(
                service.settings.warehouse_path,
                models.evaluation,
                self.policy,
                as_of=online.as_of,
                not_counted=not_counted,
            )

        return label, build

    def warm(self, service: Service, _models: ModelSet) -> None:
        """Start building the population of what is served now (a swap hook)."""
        now = self.served(service)
        if now is not None:
            self.populations.warm(*now)


async def get_console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


ConsoleDep = Annotated[Console, Depends(get_console)]
