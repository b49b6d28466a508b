"""ssot_init [--demo]: create the SSOT (local: a bare repository with its post-receive hook) and mirror it."""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.errors import SsotUnavailable
from ssot.demo import demo_files
from ssot.stores.base import StoreError
from ssot.stores.factory import get_store, reset_store, webhook_repo_name
from ssot.sync import sync

LAYOUT = {
    "README.md": b"# AgentOS SSOT\n\nTasks, AMP/1.0 messages, acknowledgements, heartbeats, audit log.\n",
    "tasks/.gitkeep": b"",
    "messages/.gitkeep": b"",
    "acks/.gitkeep": b"",
    "heartbeats/.gitkeep": b"",
    "audit/.gitkeep": b"",
}


def hook_secret_file() -> Path:
    """A file holding the webhook secret for the hook to read (the generated one, or the configured one)."""
    generated = settings.VAR_DIR / "webhook_secret"
    first = settings.GITHUB_WEBHOOK_SECRETS[0]
    if generated.exists() and generated.read_text().strip().split(",")[0] == first:
        return generated
    # Nothing else creates var/ when the database is PostgreSQL and every secret comes from the environment.
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = settings.VAR_DIR / "hook_secret"
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(first + "\n")
    return path


class Command(BaseCommand):
    help = "Create the SSOT layout (and the local store's post-receive hook), optionally with demo tasks."

    def add_arguments(self, parser):
        parser.add_argument("--demo", action="store_true", help="add demo tasks and messages (once)")
        parser.add_argument(
            "--hook-url", default=None, help="where the post-receive hook posts (SSOT_HOOK_URL)"
        )

    def handle(self, *args, demo: bool, hook_url: str | None, **options):
        if settings.SSOT_BACKEND == "local":
            from ssot.stores.hook import install_post_receive_hook
            from ssot.stores.local import LocalStore

            LocalStore.create(settings.SSOT_LOCAL_PATH)
            reset_store()
            install_post_receive_hook(
                settings.SSOT_LOCAL_PATH,
                python=sys.executable,
                hook_url=hook_url or settings.SSOT_HOOK_URL,
                secret_file=hook_secret_file(),
                repo_full_name=webhook_repo_name(),
                branch=settings.SSOT_BRANCH_LOCAL,
            )
            self.stdout.write(f"local SSOT at {settings.SSOT_LOCAL_PATH} (post-receive hook installed)")
        store = get_store()
        try:
            head = store.head()
            if head is None:
                head = store.commit(parent=None, writes=LAYOUT, message="SSOT layout", author="system")
                self.stdout.write("created the SSOT layout")
            if demo:
                if store.list(head, "tasks/") and any(
                    e.path.endswith(".json") for e in store.list(head, "tasks/")
                ):
                    self.stdout.write("demo skipped: the SSOT already has tasks")
                else:
                    store.commit(
                        parent=head,
                        writes=demo_files(),
                        message="demo tasks and messages",
                        author="coordinator",
                    )
                    self.stdout.write("added demo tasks and messages")
            report = sync()
        except (StoreError, SsotUnavailable) as exc:
            raise CommandError(f"SSOT unavailable: {exc}") from exc
        self.stdout.write(f"mirrored {report.files_read} files at {(report.head or '')[:10]}")
