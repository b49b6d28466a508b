"""The Procfile under honcho, as `make run` starts it: daphne and the worker serve, and Ctrl-C stops both.

Real processes: `honcho start` in its own process group (a terminal's foreground group), the Procfile's
`web` and `worker` in sessions of their own (honcho starts them so), on this run's database.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from testing.procstat import alive_in
from testing.server import free_port, server_env

ROOT = Path(__file__).resolve().parents[2]
START_SEC = 60
STOP_SEC = 5  # the promise: Ctrl-C stops the web and the worker within 5 s
TOKEN = "xcode-token-in-the-url-" + uuid.uuid4().hex
# Loopback only: a proxy from the environment must never see these requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

pytestmark = pytest.mark.django_db(transaction=True)


class Honcho:
    """`python -m honcho start` in the repository root, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.port = int(env["PORT"])
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "honcho", "start"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def sessions(self) -> dict[str, int]:
        """The session of each Procfile process (honcho prints `web.1 started (pid=N)`; N leads it)."""
        return {name: int(pid) for name, pid in re.findall(r"(\w+)\.1 started \(pid=(\d+)\)", self.output())}

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with _OPENER.open(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_serving(self) -> None:
        """Until /healthz answers 200 and the worker's cluster says it is running."""
        deadline = time.monotonic() + START_SEC
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"honcho exited while starting:\n{self.output()}"
            if "Q Cluster" in self.output() and " running." in self.output():
                try:
                    if self.get("/healthz")[0] == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise AssertionError(f"not serving within {START_SEC} s:\n{self.output()}")


def kill_sessions(sessions: set[int]) -> None:
    for pid in alive_in(sessions):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def procfile_env(ssot_path: Path) -> dict[str, str]:
    """This run's database, secrets and SSOT, a free PORT, the interpreter's folder first on PATH."""
    return server_env(
        ssot_path=ssot_path,
        redis_url=os.environ.get("REDIS_URL") or None,
        # Its own queue and channel names: a worker on a shared Redis must not take other tests' tasks.
        prefix=f"procfile_{uuid.uuid4().hex[:8]}",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        PORT=str(free_port()),
        AGENTOS_VAR_DIR=str(settings.VAR_DIR),
        XCODE_WEBHOOK_SECRET=TOKEN,
        Q_WORKERS="1",
    )


@pytest.fixture
def honcho(store, ssot_path: Path, tmp_path: Path) -> Iterator[Honcho]:
    env = procfile_env(ssot_path)
    env.pop("SERVE_STATIC", None)
    server = Honcho(env, tmp_path / "honcho.log")
    try:
        yield server
    finally:
        print(f"--- honcho\n{server.output()}")  # shown by pytest when the test failed
        kill_sessions({server.process.pid, *server.sessions().values()})
        server.process.wait(timeout=10)


def test_ctrl_c_stops_the_web_and_the_worker_within_5_s(honcho):
    honcho.wait_serving()
    sessions = honcho.sessions()
    assert set(sessions) == {"web", "worker"}
    assert alive_in(set(sessions.values()))

    stopped_at = time.monotonic()
    os.killpg(honcho.process.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground group
    honcho.process.wait(timeout=STOP_SEC)
    while alive_in(set(sessions.values())) and time.monotonic() - stopped_at < STOP_SEC:
        time.sleep(0.02)
    took = time.monotonic() - stopped_at

    assert not alive_in(set(sessions.values())), f"still running {took:.1f} s after Ctrl-C"
    assert took < STOP_SEC
    assert "SIGINT received" in honcho.output()
    assert "web.1 stopped" in honcho.output() and "worker.1 stopped" in honcho.output()


def test_the_web_process_serves_static_files_and_logs_no_request_line(honcho):
    honcho.wait_serving()
    status, _ = honcho.get("/static/admin/css/base.css")
    assert status == 200
    # The token form of the Xcode Cloud URL must never reach a log: daphne runs without an access log.
    status, _ = honcho.get(f"/webhooks/xcode/{TOKEN}")
    assert status == 405
    os.killpg(honcho.process.pid, signal.SIGINT)
    honcho.process.wait(timeout=STOP_SEC)
    assert TOKEN not in honcho.output()
    assert "/static/admin/css/base.css" not in honcho.output()


def test_a_killed_worker_process_takes_its_cluster_with_it(store, ssot_path: Path, tmp_path: Path):
    """honcho's last resort is SIGKILL to the worker's group; the cluster, in a group of its own, follows."""
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        relay = subprocess.Popen(
            [sys.executable, "-m", "agentos_site.worker"],
            cwd=ROOT,
            env=procfile_env(ssot_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_SEC
        while " running." not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline and relay.poll() is None, log.read_text(errors="replace")
            time.sleep(0.1)
        cluster = [pid for pid in alive_in({relay.pid}) if pid != relay.pid]
        assert cluster, "qcluster runs in the relay's session"

        relay.kill()
        relay.wait(timeout=STOP_SEC)
        deadline = time.monotonic() + 30
        while alive_in({relay.pid}) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive_in({relay.pid}), log.read_text(errors="replace")
        assert "has stopped." in log.read_text(errors="replace")  # the cluster's own, orderly stop
    finally:
        kill_sessions({relay.pid})
