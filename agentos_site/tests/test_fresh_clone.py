"""A fresh clone in each configuration the README documents: every command creates the folders it writes into.

On a fresh clone `var/` does not exist. The embedded default creates it (the SQLite file and the generated
secrets live there), but a deployment with PostgreSQL, every secret in the environment and the SSOT elsewhere
never does, and a SQLite file named outside `var/` lives in a folder nothing else creates either.
"""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from ssot.stores.factory import reset_store
from testing.server import database_url

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "DJANGO_SECRET_KEY": "fresh-clone-secret-key-" + "k" * 40,
    "GITHUB_WEBHOOK_SECRET": "fresh-clone-webhook-secret",
    "XCODE_WEBHOOK_SECRET": "fresh-clone-xcode-secret",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`manage.py ARGS` as a deployer runs it: only what the environment says, nothing generated before."""
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", *SECRETS)}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **SECRETS, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def no_var_yet(tmp_path, settings):
    """A var/ folder that does not exist, a configured webhook secret and an SSOT outside var/."""
    settings.VAR_DIR = tmp_path / "clone" / "var"
    settings.GITHUB_WEBHOOK_SECRETS = [SECRETS["GITHUB_WEBHOOK_SECRET"]]
    settings.SSOT_BACKEND = "local"
    settings.SSOT_LOCAL_PATH = tmp_path / "srv" / "ssot.git"
    reset_store()
    yield settings.VAR_DIR
    reset_store()


@pytest.mark.django_db
def test_ssot_init_creates_var_for_the_hook_secret_when_nothing_else_did(no_var_yet):
    call_command("ssot_init", stdout=io.StringIO())
    secret = no_var_yet / "hook_secret"
    assert secret.read_text().strip() == SECRETS["GITHUB_WEBHOOK_SECRET"]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


@pytest.mark.django_db(transaction=True)
def test_a_deployers_first_ssot_init_on_a_fresh_clone_succeeds(tmp_path):
    """Every secret set, the SSOT outside var/, the database of this run (PostgreSQL on the server runs)."""
    var = tmp_path / "var"
    result = manage(
        "ssot_init",
        DATABASE_URL=database_url(connection.settings_dict),
        AGENTOS_VAR_DIR=str(var),
        SSOT_LOCAL_PATH=str(tmp_path / "srv" / "ssot.git"),
    )
    assert result.returncode == 0, result.stderr
    assert "post-receive hook installed" in result.stdout
    assert (var / "hook_secret").read_text().strip() == SECRETS["GITHUB_WEBHOOK_SECRET"]


def test_migrate_creates_the_folder_of_a_sqlite_database_named_outside_var(tmp_path):
    database = tmp_path / "data" / "db" / "agentos.sqlite3"
    result = manage(
        "migrate", "--noinput", DATABASE_URL=f"sqlite:///{database}", AGENTOS_VAR_DIR=str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert database.is_file()
