"""Pre-credit requests decided together: the requests that arrive while a batch is being decided
wait for the next one, and each batch costs one consent query, one TreeSHAP pass per model and one
audit transaction instead of one of each per request.

Two threads per server process: one decides (:func:`scoring.serve.flow.decide_pre_credit`), one
commits what was decided and only then settles the requests' futures, so "stored before answered"
holds as it did for one request, and the next batch is decided while the last one's commit waits
for the disk (a synchronous commit is a few milliseconds of fsync). The event loop only parses
requests and sends answers; no request holds a thread of the pool while it waits. A batch is
whatever is queued when the deciding thread is free, up to ``max_batch``: under light load a batch
is one request and nothing waits for company; under load the batches grow by themselves, which is
what keeps the latency bounded. The committing thread writes every batch waiting for it in one
transaction.

(No library here batches calls for an asyncio server: MLServer's adaptive batching lives inside
its own server and its request types.)
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass

from scoring.serve import flow
from scoring.serve.middleware import Metrics
from scoring.serve.schemas import PreCreditResponse
from scoring.serve.state import Service
from scoring.store import append_each, unavailable

log = logging.getLogger(__name__)

MAX_BATCH = 64  # the concurrency a bank's burst reaches per process; a larger batch only adds latency


@dataclass(frozen=True)
class _Job:
    ask: flow.PreCreditAsk
    future: asyncio.Future[PreCreditResponse]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[PreCreditResponse], answer: PreCreditResponse | BaseException) -> None:
    if future.done():  # the client went away and its request was cancelled: the decision is stored anyway
        return
    if isinstance(answer, BaseException):
        future.set_exception(unavailable(answer) or answer)
    else:
        future.set_result(answer)


class Decider:
    """The process's threads for pre-credit decisions; started and stopped with the app."""

    def __init__(self, service: Service, metrics: Metrics, *, max_batch: int = MAX_BATCH):
        self.service, self.metrics, self.max_batch = service, metrics, max_batch
        self._asks: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._decided: queue.SimpleQueue[tuple[list[_Job], flow.Decided] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._deciding, name="decider", daemon=True),
            threading.Thread(target=self._committing, name="decider-commit", daemon=True),
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Decide and commit what is queued, then end both threads."""
        self._asks.put(None)
        for t in self._threads:
            t.join(timeout=30)

    async def pre_credit(self, ask: flow.PreCreditAsk) -> PreCreditResponse:
        """The answer to one request, decided with whatever else is waiting, once it is stored."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[PreCreditResponse] = loop.create_future()
        self._asks.put(_Job(ask=ask, future=future, loop=loop))
        return await future

    def _deciding(self) -> None:
        while (jobs := _take(self._asks, self.max_batch)) is not None:
            try:
                decided = flow.decide_pre_credit(self.service, [j.ask for j in jobs])
            except Exception as exc:  # the batch as a whole (a 503 not ready, a fault): each gets the error
                _log_unexpected(exc, len(jobs))
                _settle_all(jobs, [exc] * len(jobs))
                continue
            self.metrics.decided_together.observe(len(jobs))
            self._decided.put((jobs, decided))
        self._decided.put(None)

    def _committing(self) -> None:
        while (waiting := _take(self._decided, self.max_batch)) is not None:
            groups = [d.groups() for _, d in waiting]
            try:
                outcomes = append_each(self.service.engine, [g for each in groups for g in each])
            except Exception as exc:  # append_each reports a group's fault as its outcome: never expected
                _log_unexpected(exc, sum(len(jobs) for jobs, _ in waiting))
                outcomes = [exc] * sum(len(g) for g in groups)
            told = iter(outcomes)
            for (jobs, decided), mine in zip(waiting, groups, strict=True):
                _settle_all(jobs, decided.answers([next(told) for _ in mine]))


def _take(source: queue.SimpleQueue, most: int) -> list | None:
    """The next items of ``source``: at least one (waiting for it), then whatever else is queued, up
    to ``most``; None once the end (a None) is reached with nothing before it."""
    first = source.get()
    if first is None:
        return None
    items = [first]
    while len(items) < most:
        try:
            item = source.get_nowait()
        except queue.Empty:
            break
        if item is None:
            source.put(None)  # the end, after these
            break
        items.append(item)
    return items


def _settle_all(jobs: list[_Job], answers: list[PreCreditResponse | Exception]) -> None:
    for job, answer in zip(jobs, answers, strict=True):
        try:
            job.loop.call_soon_threadsafe(_settle, job.future, answer)
        except RuntimeError:  # the server's loop is closed (shut down): nobody waits for this answer
            log.warning("an answer after the server stopped: %s", job.ask.uscc)


def _log_unexpected(exc: Exception, n: int) -> None:
    if unavailable(exc) is not None:  # answered 503 store_unavailable; the driver's words kept here
        log.warning("%d pre-credit requests refused: the decision store is unavailable: %s", n, exc)
    elif not getattr(exc, "status", None):  # an ApiError (a 503) is an answer, not a fault
        log.error("a batch of %d pre-credit requests failed", n, exc_info=exc)
