"""Pre-credit requests decided together: the requests that arrive while a batch is being decided
wait for the next one, and each batch costs one consent query, one TreeSHAP pass per model and one
audit transaction instead of one of each per request.

One thread per server process decides; the event loop only parses requests and sends answers, so
no request holds a thread of the pool while it waits. A batch is whatever is queued when the
thread is free, up to ``max_batch``: under light load a batch is one request and nothing waits
for company; under load the batches grow by themselves, which is what keeps the latency bounded.
Each request's future is settled only after its batch's audit rows are committed
(:func:`scoring.serve.flow.pre_credit_many`), so "stored before answered" holds as it did for one.

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
from scoring.serve.schemas import PreCreditResponse
from scoring.serve.state import Service

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
        future.set_exception(answer)
    else:
        future.set_result(answer)


class Decider:
    """The process's batching thread for pre-credit decisions; started and stopped with the app."""

    def __init__(self, service: Service, *, max_batch: int = MAX_BATCH):
        self.service, self.max_batch = service, max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="decider", daemon=True)
        self.batches = 0
        self.decided = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    async def pre_credit(self, ask: flow.PreCreditAsk) -> PreCreditResponse:
        """The answer to one request, decided with whatever else is waiting."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[PreCreditResponse] = loop.create_future()
        self._queue.put(_Job(ask=ask, future=future, loop=loop))
        return await future

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            while len(jobs) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)  # stop after this batch
                    break
                jobs.append(job)
            self._decide(jobs)

    def _decide(self, jobs: list[_Job]) -> None:
        answers: list[PreCreditResponse | BaseException]
        try:
            answers = list(flow.pre_credit_many(self.service, [j.ask for j in jobs]))
        except Exception as exc:  # the batch as a whole (a 503 not ready, a store fault): each gets the error
            if not getattr(exc, "status", None):
                log.exception("a batch of %d pre-credit requests failed", len(jobs))
            answers = [exc] * len(jobs)
        self.batches += 1
        self.decided += len(jobs)
        for job, answer in zip(jobs, answers, strict=True):
            job.loop.call_soon_threadsafe(_settle, job.future, answer)
