"""Several server processes on one port: the supervisor accepts each connection and hands it to the
processes in turn.

How connections are spread decides the latency: a worker's requests share one interpreter, so a
worker holding three of four connections answers each of them about three times slower than one
holding one. uvicorn's ``--workers`` shares one listening socket, and whichever process wakes first
accepts a whole burst (of 64 connections opened at once by wrk, 64/0, 54/10, 49/15 in three tries on
this machine). A socket per process (``SO_REUSEPORT``) lets the kernel choose by a hash of the
addresses: 38/26 of 64, and of 4 connections 3/1 or 4/0 more often than 2/2 (with 3/1, the p50 at 4
connections was 7.6 ms against 4 ms for two on a worker). So the supervisor accepts on the one
listening socket and passes each connection (its descriptor, over a Unix socket pair) to the next
process in turn, as Node's cluster module does by default on Linux; a worker's event loop takes it up
as uvicorn would have accepted it. It costs a hand-off per connection, not per request: a bank's
connections are kept alive. The supervisor also restarts a process that dies and stops them all on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing as mp
import signal
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from typing import Any

import uvicorn

from scoring.errors import ScoringError

log = logging.getLogger(__name__)

APP = "scoring.serve.app:create_app"
BACKLOG = 2048


class WorkersFailed(ScoringError):
    """The server could not start: its port is taken, or a process ended while starting (a broken home)."""

    code = "workers_failed"
    status = None
    title_zh = "服务进程启动失败"


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening.

    Raises:
        WorkersFailed: the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise WorkersFailed(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(BACKLOG)
    return sock


class HandedServer(uvicorn.Server):
    """uvicorn serving the connections its supervisor hands it over ``channel``, instead of a socket
    it listens on. Each is taken up exactly as uvicorn takes an accepted one (its HTTP protocol on
    the loop's transport), so keep-alive, limits and the graceful shutdown are uvicorn's own."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket):
        super().__init__(config)
        self.channel = channel
        self._taking: set[asyncio.Task[Any]] = set()  # held until done: the loop keeps only weak references

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app's start-up; no listening socket
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._take)

    def _take(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, fds, _, _ = socket.recv_fds(self.channel, 1, 1)
        except BlockingIOError:
            return
        if not fds:  # the supervisor has gone: nothing more comes
            loop.remove_reader(self.channel.fileno())
            self.should_exit = True
            return
        sock = socket.socket(fileno=fds[0])
        task = loop.create_task(loop.connect_accepted_socket(self._protocol, sock))
        self._taking.add(task)
        task.add_done_callback(self._taking.discard)

    def _protocol(self) -> asyncio.Protocol:
        # what uvicorn's own startup builds for each connection it accepts
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )
        return protocol

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets)


def _worker(channel: socket.socket, options: dict[str, Any], started: EventType) -> None:
    """One server process: uvicorn serving the connections handed over ``channel`` until told to
    stop; ``started`` is set once uvicorn has started (the app's start-up done)."""
    server = HandedServer(uvicorn.Config(APP, factory=True, **options), channel)

    def tell() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            started.set()

    threading.Thread(target=tell, name="started", daemon=True).start()
    server.run()


@dataclass
class _Process:
    process: BaseProcess
    started: EventType
    channel: socket.socket  # the supervisor's end of the socket pair


def _start(context: Any, options: dict[str, Any]) -> _Process:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    started = context.Event()
    process = context.Process(target=_worker, args=(theirs, options, started), name="scoring-worker")
    process.start()
    theirs.close()  # the process holds its own copy: when it dies, handing to it fails at once
    return _Process(process, started, ours)


def _hand_out(listener: socket.socket, running: list[_Process], stop: threading.Event) -> None:
    """Accept connections and hand each to the next started process in turn (a dead one is skipped).
    Until a process has started, connections wait in the listening socket's backlog."""
    turns = itertools.count()
    while not stop.is_set():
        if not any(w.started.is_set() for w in running):
            time.sleep(0.05)
            continue
        try:
            conn, _ = listener.accept()
        except OSError:  # the listener was shut: stopping
            return
        with conn:  # handed over (the process has its own descriptor) or, with no process serving, closed
            for _ in range(len(running)):
                target = running[next(turns) % len(running)]
                if not target.started.is_set():
                    continue
                try:
                    socket.send_fds(target.channel, [b"c"], [conn.fileno()])
                    break
                except OSError:  # that process died; its replacement is on its way
                    continue


def run_workers(host: str, port: int, workers: int, **options: Any) -> None:
    """Serve with ``workers`` processes on ``host:port`` until SIGTERM or SIGINT; ``options`` go to
    ``uvicorn.Config``.

    Raises:
        WorkersFailed: the port cannot be listened on, or a process ended within its start-up (the
            others are stopped first).
    """
    listener = listening_socket(host, port)
    context = mp.get_context("spawn")  # a fresh interpreter per worker, as uvicorn's own supervisor
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    running = [_start(context, options) for _ in range(workers)]
    handing = threading.Thread(target=_hand_out, args=(listener, running, stop), name="hand-out", daemon=True)
    handing.start()
    failed: str | None = None
    try:
        failed = _supervise(context, options, running, stop)
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone does not, on Linux)
        listener.close()
        _stop_all(running)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if failed:
        raise WorkersFailed(failed)


def _supervise(context: Any, options: dict[str, Any], running: list[_Process], stop: threading.Event) -> str | None:
    """Replace a process that dies after starting, until ``stop``; why the server failed, if it did."""
    while not stop.wait(0.5):
        for k, worker in enumerate(running):
            if worker.process.is_alive():
                continue
            if not worker.started.is_set():  # it never served: a broken home; no loop on it
                stop.set()
                return f"server process {worker.process.pid} ended while starting (exit code {worker.process.exitcode})"
            log.error(
                "server process %s ended (exit code %s): starting another", worker.process.pid, worker.process.exitcode
            )
            worker.channel.close()
            running[k] = _start(context, options)
    return None


def _stop_all(running: list[_Process]) -> None:
    for worker in running:
        if worker.process.is_alive():
            worker.process.terminate()  # SIGTERM: uvicorn finishes the requests in hand, then the lifespan
    for worker in running:
        worker.process.join(timeout=30)
        if worker.process.is_alive():
            worker.process.kill()
        worker.channel.close()
