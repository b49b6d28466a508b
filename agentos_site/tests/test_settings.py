"""Settings from the environment: embedded defaults, generated secrets, and a production that refuses them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "DJANGO_SECRET_KEY": "k" * 20 + "production-secret-key-with-enough-entropy-0123456789",
    "GITHUB_WEBHOOK_SECRET": "hook-secret-one-" + "1" * 20 + ",hook-secret-two-" + "2" * 20,
    "XCODE_WEBHOOK_SECRET": "xcode-secret-" + "x" * 24,
    "JWT_SECRET": "jwt-secret-" + "j" * 30,
}
WEAK = {
    "DJANGO_SECRET_KEY": ("k" * 49, 50),
    "JWT_SECRET": ("j" * 31, 32),
    "GITHUB_WEBHOOK_SECRET": ("hook-secret-one-" + "1" * 20 + ",short-second-secret", 32),
    "XCODE_WEBHOOK_SECRET": ("x" * 31, 32),
}


def manage(*args: str, var: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in SECRETS and k not in ("ENVIRONMENT", "DATABASE_URL")
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "AGENTOS_VAR_DIR": str(var), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embedded_default_generates_its_secrets_once_and_privately(tmp_path):
    first = manage("check", var=tmp_path)
    assert first.returncode == 0, first.stderr
    secret = (tmp_path / "secret_key").read_text()
    for name in ("secret_key", "webhook_secret", "xcode_secret"):
        assert oct((tmp_path / name).stat().st_mode & 0o777) == "0o600"
    assert manage("check", var=tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text() == secret
    assert secret.strip() not in first.stdout + first.stderr


def test_production_refuses_generated_secrets(tmp_path):
    result = manage("check", var=tmp_path, ENVIRONMENT="production")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when ENVIRONMENT=production" in result.stderr
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize("missing", ["GITHUB_WEBHOOK_SECRET", "XCODE_WEBHOOK_SECRET"])
def test_production_refuses_each_missing_webhook_secret(tmp_path, missing):
    env = {k: v for k, v in SECRETS.items() if k != missing}
    result = manage("check", var=tmp_path, ENVIRONMENT="production", **env)
    assert result.returncode != 0
    assert f"{missing} must be set" in result.stderr
    for value in env.values():
        assert value not in result.stderr


@pytest.mark.parametrize("variable", sorted(WEAK))
def test_production_refuses_each_weak_secret_naming_it(tmp_path, variable):
    value, minimum = WEAK[variable]
    result = manage("check", var=tmp_path, ENVIRONMENT="production", **{**SECRETS, variable: value})
    assert result.returncode != 0
    assert f"{variable} is too short for ENVIRONMENT=production" in result.stderr
    assert f"at least {minimum}" in result.stderr
    assert value not in result.stderr


def test_development_accepts_a_short_secret(tmp_path):
    result = manage("check", var=tmp_path, DJANGO_SECRET_KEY="short", JWT_SECRET="short")
    assert result.returncode == 0, result.stderr


def test_production_passes_check_deploy_with_no_warning(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        var=tmp_path,
        ENVIRONMENT="production",
        ALLOWED_HOSTS="agentos.example.com",
        PUBLIC_URL="https://agentos.example.com",
        **SECRETS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_a_plain_http_public_url(tmp_path):
    result = manage(
        "check",
        "--deploy",
        var=tmp_path,
        ENVIRONMENT="production",
        ALLOWED_HOSTS="agentos.example.com",
        PUBLIC_URL="http://agentos.example.com",
        **SECRETS,
    )
    assert result.returncode != 0
    assert "PUBLIC_URL must be https:// when ENVIRONMENT=production" in result.stderr


def test_production_ignores_debug(tmp_path):
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        var=tmp_path,
        ENVIRONMENT="production",
        DJANGO_DEBUG="true",
        **SECRETS,
    )
    assert result.stdout.strip().endswith("False"), result.stderr
