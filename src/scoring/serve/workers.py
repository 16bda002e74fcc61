"""Several server processes on one port, each with a listening socket of its own (``SO_REUSEPORT``).

uvicorn's ``--workers`` shares one listening socket among its processes, and whichever process
wakes first accepts a whole burst of new connections: of 64 connections opened at once by wrk, the
two workers held 64 and 0, 54 and 10, 49 and 15 (three tries on this machine). A bank's keep-alive
connections then load one core while the other idles, and one worker's admission limit refuses
what the other could answer. With a socket per process, the kernel spreads new connections over
the sockets by a hash of their addresses, so each process gets its share. uvicorn has no option for
it (it binds once, in the supervisor), hence this small supervisor: it starts the processes,
restarts one that dies, and stops them all on SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from typing import Any

from scoring.errors import ScoringError

log = logging.getLogger(__name__)

APP = "scoring.serve.app:create_app"
BACKLOG = 2048


class WorkersFailed(ScoringError):
    """A server process ended while starting (a port in use, a broken home)."""

    code = "workers_failed"
    status = None
    title_zh = "服务进程启动失败"


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound with ``SO_REUSEPORT`` to ``host:port`` and listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def _worker(host: str, port: int, options: dict[str, Any], started: EventType) -> None:
    """One server process: its own socket, then uvicorn serving the app on it until told to stop;
    ``started`` is set once uvicorn has started (the app's start-up done, the socket served)."""
    import uvicorn

    sock = listening_socket(host, port)
    server = uvicorn.Server(uvicorn.Config(APP, factory=True, **options))

    def tell() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            started.set()

    threading.Thread(target=tell, name="started", daemon=True).start()
    server.run(sockets=[sock])


def run_workers(host: str, port: int, workers: int, **options: Any) -> None:
    """Serve with ``workers`` processes on ``host:port`` until SIGTERM or SIGINT; ``options`` go to
    ``uvicorn.Config``.

    Raises:
        WorkersFailed: a process ended within its start-up (the others are stopped first).
    """
    context = mp.get_context("spawn")  # a fresh interpreter per worker, as uvicorn's own supervisor
    stop = threading.Event()

    def start() -> tuple[BaseProcess, EventType]:
        started = context.Event()
        process = context.Process(target=_worker, args=(host, port, options, started), name="scoring-worker")
        process.start()
        return process, started

    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    running = [start() for _ in range(workers)]
    failed: str | None = None
    try:
        while not stop.wait(0.5):
            for k, (process, started) in enumerate(running):
                if process.is_alive():
                    continue
                if not started.is_set():  # it never served: a port in use, a broken home; no loop on it
                    failed = f"server process {process.pid} ended while starting (exit code {process.exitcode})"
                    stop.set()
                    break
                log.error("server process %s ended (exit code %s): starting another", process.pid, process.exitcode)
                running[k] = start()
    finally:
        for process, _ in running:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in hand, then the lifespan
        for process, _ in running:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if failed:
        raise WorkersFailed(failed)
