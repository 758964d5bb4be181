"""Apache Airflow 3.3, standalone with the LocalExecutor on SQLite, as the orchestrator bench's peer.

Run by benches/orchestrator.rs with the peers venv's Python:

    python airflow_bench.py --home DIR --tasks 1000 --samples 5 --form mapped --parts latency,dag

Sets everything up in the scratch AIRFLOW_HOME `DIR` with the settings that peers.md found fair and fast
(SQLite, LocalExecutor, parallelism 32, a 5 s DAG refresh, a 0.1 s scheduler idle sleep), writes two
DAGs, runs `airflow db migrate`, starts `airflow api-server`, `airflow scheduler --skip-serve-logs` and
`airflow dag-processor`, then:

- latency: one throwaway run, then `--samples` sequential runs of a one-task DAG whose BashOperator
  writes `date +%s%N` to a file: trigger (REST `POST /api/v2/dags/{dag}/dagRuns`) → the bash command's
  start, → the task instance's `start_date`, → the DAG run's `end_date`, in ms;
- dag: one run of `--tasks` independent `true` tasks (`--form mapped`: one BashOperator with
  `.partial().expand()`, peers.md's fairer form; `classic`: one operator per task), max 32 at a time:
  trigger → the DAG run's `end_date` and → the first task instance's `start_date`, in seconds.

Start and end times come from the SQLite metadata DB. The three Airflow processes run in process groups of
their own and are stopped by those ids at the end, whatever happens. Progress goes to stderr; the last
stdout line is the JSON result: `{"skipped": why}` when Airflow is not installed, `{"error": what}` when
it failed, else the figures.
"""

import argparse
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path

LATENCY_DAG = "plinth_bench_latency"
BULK_DAG = "plinth_bench_dag"
CONCURRENCY = 32
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def log(message):
    print(f"airflow bench: {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nanos(value):
    """A metadata DB datetime (naive UTC text, or with an offset) as ns since the epoch."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return (parsed - EPOCH) // timedelta(microseconds=1) * 1000


def write_dags(dags_dir, stamp_file, tasks, form):
    dags_dir.mkdir(parents=True, exist_ok=True)
    (dags_dir / f"{LATENCY_DAG}.py").write_text(
        f"""from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("{LATENCY_DAG}", schedule=None, catchup=False, max_active_runs=1):
    BashOperator(task_id="stamp", bash_command={json.dumps(f"date +%s%N > {stamp_file}")})
"""
    )
    if form == "mapped":
        body = f'    BashOperator.partial(task_id="t").expand(bash_command=["true"] * {tasks})\n'
    else:
        body = f'    for i in range({tasks}):\n        BashOperator(task_id=f"t{{i:05}}", bash_command="true")\n'
    (dags_dir / f"{BULK_DAG}.py").write_text(
        f"""from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG("{BULK_DAG}", schedule=None, catchup=False, max_active_runs=1, max_active_tasks={CONCURRENCY}):
{body}"""
    )


class Airflow:
    """The three Airflow processes and a REST client for them."""

    def __init__(self, home, tasks):
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.bin = Path(sys.executable).with_name("airflow")
        self.db = home / "airflow.db"
        self.processes = []
        self.token = None
        self.env = dict(
            os.environ,
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM=str(CONCURRENCY),
            AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=str(CONCURRENCY),
            AIRFLOW__CORE__MAX_MAP_LENGTH=str(max(1024, tasks)),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(self.port),
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{self.base}/execution/",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.1",
            AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY="512",
        )

    def migrate(self):
        started = time.monotonic()
        with open(self.home / "db-migrate.log", "wb") as out:
            done = subprocess.run(
                [str(self.bin), "db", "migrate"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=600,
            )
        if done.returncode != 0:
            raise RuntimeError(f"`airflow db migrate` failed:\n{self.tail('db-migrate.log')}")
        log(f"db migrate took {time.monotonic() - started:.1f} s")

    def start(self):
        for name, args in [
            ("api-server", ["api-server"]),
            ("scheduler", ["scheduler", "--skip-serve-logs"]),
            ("dag-processor", ["dag-processor"]),
        ]:
            out = open(self.home / f"{name}.log", "wb")
            self.processes.append(
                (
                    name,
                    subprocess.Popen(
                        [str(self.bin), *args],
                        env=self.env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    ),
                )
            )
            out.close()

    def stop(self):
        """Stops the process groups this script started, by their ids."""
        for _, process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 20
        for _, process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                # Whatever is left in the group (LocalExecutor workers, task supervisors).
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def tail(self, name, lines=30):
        path = self.home / name
        if not path.exists():
            return f"({name}: no log)"
        text = path.read_text(errors="replace").splitlines()
        return "\n".join(f"{name}: {line}" for line in text[-lines:])

    def check_alive(self):
        for name, process in self.processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"airflow {name} exited with {process.returncode}:\n{self.tail(name + '.log')}"
                )

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=60) as answer:
            text = answer.read()
            return json.loads(text) if text else None

    def wait_for(self, what, probe, timeout):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                result = probe()
                if result:
                    return result
            except (urllib.error.URLError, ConnectionError, OSError, sqlite3.Error) as err:
                last = err
            time.sleep(0.5)
        raise RuntimeError(f"{what} not within {timeout} s (last error: {last})")

    def ready(self):
        started = time.monotonic()
        self.wait_for("the API server answering", lambda: self.request("GET", "/api/v2/version"), 300)
        try:
            self.token = self.request("GET", "/auth/token")["access_token"]
        except (urllib.error.URLError, KeyError, TypeError) as err:
            log(f"no token from GET /auth/token ({err}); going on without one")
        log(f"API server up after {time.monotonic() - started:.1f} s")
        for dag in (LATENCY_DAG, BULK_DAG):
            self.wait_for(f"DAG {dag} parsed", lambda dag=dag: self.request("GET", f"/api/v2/dags/{dag}"), 300)
        log(f"DAGs parsed after {time.monotonic() - started:.1f} s")

    def trigger(self, dag):
        """Triggers a run; returns (ns when the request was sent, run id)."""
        sent = time.time_ns()
        answer = self.request("POST", f"/api/v2/dags/{dag}/dagRuns", {"logical_date": None})
        return sent, answer["dag_run_id"]

    def query(self, sql, params):
        connection = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def wait_run(self, dag, run_id, timeout, poll):
        """Waits until the run ends; returns its end_date in ns."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.query(
                "SELECT state, end_date FROM dag_run WHERE dag_id = ? AND run_id = ?", (dag, run_id)
            )
            if rows and rows[0][0] in ("success", "failed"):
                if rows[0][0] != "success":
                    raise RuntimeError(f"run {run_id} of {dag} ended {rows[0][0]}:\n{self.tail('scheduler.log')}")
                return nanos(rows[0][1])
            self.check_alive()
            time.sleep(poll)
        raise RuntimeError(f"run {run_id} of {dag} did not end within {timeout} s")

    def task_instances(self, dag, run_id):
        return self.query(
            "SELECT state, start_date, end_date FROM task_instance WHERE dag_id = ? AND run_id = ?",
            (dag, run_id),
        )


def measure_latency(airflow, stamp_file, samples):
    result = {"command_start_ms": [], "ti_start_ms": [], "run_end_ms": []}
    for sample in range(samples + 1):
        stamp_file.unlink(missing_ok=True)
        sent, run_id = airflow.trigger(LATENCY_DAG)
        end = airflow.wait_run(LATENCY_DAG, run_id, timeout=300, poll=0.02)
        command_start = int(stamp_file.read_text().strip())
        ti_start = min(nanos(row[1]) for row in airflow.task_instances(LATENCY_DAG, run_id) if row[1])
        if sample == 0:
            log(f"throwaway run: the command started {(command_start - sent) / 1e6:.0f} ms after the trigger")
            continue
        result["command_start_ms"].append((command_start - sent) / 1e6)
        result["ti_start_ms"].append((ti_start - sent) / 1e6)
        result["run_end_ms"].append((end - sent) / 1e6)
        log(f"latency run {sample}: command started {(command_start - sent) / 1e6:.0f} ms after the trigger")
    return result


def measure_dag(airflow, tasks):
    started = time.monotonic()
    sent, run_id = airflow.trigger(BULK_DAG)
    log(f"triggered {tasks} tasks as {run_id}")
    end = airflow.wait_run(BULK_DAG, run_id, timeout=3600, poll=0.5)
    rows = airflow.task_instances(BULK_DAG, run_id)
    succeeded = sum(1 for row in rows if row[0] == "success")
    if succeeded != tasks:
        raise RuntimeError(f"{succeeded} of {tasks} task instances succeeded ({len(rows)} rows)")
    first_start = min(nanos(row[1]) for row in rows if row[1])
    last_end = max(nanos(row[2]) for row in rows if row[2])
    log(f"{tasks} tasks done in {time.monotonic() - started:.1f} s")
    return {
        "tasks": tasks,
        "wall_s": (end - sent) / 1e9,
        "first_start_s": (first_start - sent) / 1e9,
        "last_task_end_s": (last_end - sent) / 1e9,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--form", choices=["mapped", "classic"], default="mapped")
    parser.add_argument("--parts", default="latency,dag")
    args = parser.parse_args()
    try:
        version = metadata.version("apache-airflow")
    except metadata.PackageNotFoundError:
        print(json.dumps({"skipped": f"apache-airflow is not installed in {sys.prefix} (run `bash deploy/scripts/tools.sh peers`)"}))
        return 0
    parts = set(args.parts.split(","))
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    stamp_file = home / "stamp"
    write_dags(home / "dags", stamp_file, args.tasks, args.form)
    airflow = Airflow(home, args.tasks)
    result = {"version": version, "form": args.form}
    try:
        airflow.migrate()
        airflow.start()
        airflow.ready()
        result["latency"] = measure_latency(airflow, stamp_file, args.samples if "latency" in parts else 0)
        if "dag" in parts:
            result["dag"] = measure_dag(airflow, args.tasks)
    except Exception as err:  # every failure becomes the JSON answer, with the logs' tails
        for name in ("scheduler.log", "dag-processor.log", "api-server.log"):
            log(airflow.tail(name, 15))
        print(json.dumps({"error": f"{type(err).__name__}: {err}", "version": version}))
        return 0
    finally:
        airflow.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
