"""Apache Spark for the scale-out path: a standalone cluster started by the project, and a session on it.

A province's platform brings its own cluster (``--master spark://host:7077``). On one machine,
and in the tests, the project starts a real standalone master and workers on 127.0.0.1 with the
launchers that ship inside the PySpark wheel (``spark-class org.apache.spark.deploy.master.Master``
and ``...worker.Worker``); Java 17 comes from the OS packages (``make system-deps``). PySpark is an
optional part (``scoring[spark]``): it is imported only here, and only when Spark is asked for.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scoring.errors import ScoringError

HOST = "127.0.0.1"
# columns up to which Spark generates code for a plan (its default, 100, is below a snapshot's width)
WIDE_ROWS = 2000


class SparkUnavailable(ScoringError, RuntimeError):
    """PySpark or Java is missing, or the cluster did not come up; the message says which."""

    code = "spark_unavailable"
    status = None
    title_zh = "Spark 不可用"


def spark_home() -> Path:
    """The Spark distribution inside the installed PySpark wheel (its bin/ and jars/)."""
    try:
        import pyspark
    except ImportError as exc:
        raise SparkUnavailable("PySpark is not installed: install the extra, `pip install scoring[spark]`") from exc
    return Path(pyspark.__file__).parent


def java_missing() -> str | None:
    """Why Java cannot run Spark here, or None when it can."""
    java = shutil.which("java")
    if java is None and not os.environ.get("JAVA_HOME"):
        return "no Java on PATH and no JAVA_HOME: install Java 17 (`make system-deps`)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A standalone Spark master and its workers, each a process of its own on 127.0.0.1."""

    workdir: Path
    master_url: str = ""
    processes: list[subprocess.Popen] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.processes.clear()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _launch(home: Path, workdir: Path, name: str, args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": HOST, "SPARK_LOG_DIR": str(workdir)}
    log = (workdir / f"{name}.log").open("wb")
    return subprocess.Popen([str(home / "bin" / "spark-class"), *args], stdout=log, stderr=subprocess.STDOUT, env=env)


def _wait_for(workdir: Path, name: str, text: str, proc: subprocess.Popen, timeout: float) -> None:
    log = workdir / f"{name}.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SparkUnavailable(f"the Spark {name} exited ({proc.returncode}): see {log}")
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.25)
    raise SparkUnavailable(f"the Spark {name} did not start within {timeout:.0f} s: see {log}")


def start_cluster(
    workdir: Path, *, workers: int = 2, cores: int = 1, memory: str = "1g", timeout: float = 120
) -> Cluster:
    """Start a standalone master and ``workers`` workers on 127.0.0.1; logs and scratch in ``workdir``."""
    why = java_missing()
    if why:
        raise SparkUnavailable(why)
    home = spark_home()
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    cluster = Cluster(workdir=workdir, master_url=f"spark://{HOST}:{port}")
    try:
        master = _launch(
            home,
            workdir,
            "master",
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                HOST,
                "--port",
                str(port),
                "--webui-port",
                str(_free_port()),
            ],
        )
        cluster.processes.append(master)
        _wait_for(workdir, "master", "I have been elected leader", master, timeout)
        for k in range(workers):
            name = f"worker{k + 1}"
            worker = _launch(
                home,
                workdir,
                name,
                [
                    "org.apache.spark.deploy.worker.Worker",
                    "--host",
                    HOST,
                    "--cores",
                    str(cores),
                    "--memory",
                    memory,
                    "--webui-port",
                    str(_free_port()),
                    "--work-dir",
                    str(workdir / name),
                    cluster.master_url,
                ],
            )
            cluster.processes.append(worker)
            _wait_for(workdir, name, "Successfully registered with master", worker, timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def session(
    master: str,
    *,
    app: str = "scoring",
    executor_memory: str = "768m",
    driver_memory: str = "1g",
    shuffle_partitions: int = 16,
) -> Any:
    """A SparkSession on ``master`` (a ``spark://`` URL, or ``local[N]``), quiet and with its UI off.

    The session's dates are in UTC and ANSI mode is on, so a cast that would lose a value fails
    instead of giving NULL, as it does in DuckDB. ``shuffle_partitions`` (Spark's default is 200)
    suits the few cores of one machine; a province's cluster sets about three per core.

    A snapshot's rows are wide (a column per feature), and two of Spark's defaults made its last
    stage, which joins the aggregates and writes the rows, run without compiled code (measured on
    the city, docs/benchmarks.md): whole-stage code generation is off above 100 columns
    (``spark.sql.codegen.maxFields``), and the JVM does not compile a method above 8,000 bytes of
    bytecode, which a wide projection's generated method is (``-XX:-DontCompileHugeMethods``).
    """
    spark_home()
    from pyspark.sql import SparkSession

    # the executors' Python workers run this Python (its packages, the project among them): a worker
    # started by a standalone Spark worker reads PYSPARK_PYTHON, not the session's spark.pyspark.python
    os.environ["PYSPARK_PYTHON"] = sys.executable

    spark = (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.driver.host", HOST)
        .config("spark.driver.bindAddress", HOST)
        .config("spark.driver.memory", driver_memory)
        .config("spark.executor.memory", executor_memory)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # our commands show their own progress
        .config("spark.pyspark.python", sys.executable)  # workers run this Python for Arrow batches
        .config("spark.executorEnv.PYSPARK_PYTHON", sys.executable)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.ansi.enabled", "true")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.codegen.maxFields", str(WIDE_ROWS))
        .config("spark.executor.extraJavaOptions", "-XX:-DontCompileHugeMethods")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextmanager
def spark_on(master: str, workdir: Path, *, workers: int = 2, memory: str = "1g") -> Iterator[Any]:
    """A session on ``master``: ``standalone`` starts a master and ``workers`` workers on 127.0.0.1 for
    the session's life (scratch in ``workdir``); a ``spark://`` URL or ``local[N]`` is used as it is."""
    if master != "standalone":
        spark = session(master)
        try:
            yield spark
        finally:
            spark.stop()
        return
    with start_cluster(workdir, workers=workers, cores=1, memory=memory) as cluster:
        spark = session(cluster.master_url)
        try:
            yield spark
        finally:
            spark.stop()
