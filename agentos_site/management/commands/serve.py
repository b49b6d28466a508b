"""serve: daphne and the django-q2 worker side by side; Ctrl-C stops both."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the control plane with daphne and run the qcluster worker beside it."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, bind: str, port: int, **options):
        names = ["daphne", "qcluster"]
        children = [
            # No access log: a request line may carry a secret (the token form of the Xcode Cloud URL).
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "daphne",
                    "-v",
                    "0",
                    "-b",
                    bind,
                    "-p",
                    str(port),
                    "agentos_site.asgi:application",
                ]
            ),
            subprocess.Popen([sys.executable, "manage.py", "qcluster"]),
        ]
        self.stdout.write(
            f"AgentOS control plane on http://{bind}:{port}/ (admin: /admin/, dashboard: /dashboard/)"
        )
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 10
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [
            name
            for name, child in zip(names, children, strict=True)
            if not stopping and child.returncode not in (0, None)
        ]
        if failed:
            self.stderr.write(f"stopped because {', '.join(failed)} exited")
            sys.exit(1)
