"""Small helpers the settings use to read the environment and keep generated secrets under var/."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def generated_secret(var_dir: Path, name: str, *, production: bool, variable: str) -> str:
    """The secret stored in var/<name>, created once (mode 0600) on first use; refused in production."""
    if production:
        raise ImproperlyConfigured(f"{variable} must be set when ENVIRONMENT=production")
    var_dir.mkdir(parents=True, exist_ok=True)
    path = var_dir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if value:
            return value
        raise ImproperlyConfigured(f"{path} is empty; delete it to generate a new secret") from None
    with os.fdopen(fd, "w") as handle:
        value = secrets.token_urlsafe(48)
        handle.write(value + "\n")
    return value


def strong_secret(value: str, *, variable: str, minimum: int, production: bool) -> str:
    """`value`, refused in production when shorter than `minimum` characters (the message names the
    variable and the length, never the value)."""
    if production and len(value) < minimum:
        raise ImproperlyConfigured(
            f"{variable} is too short for ENVIRONMENT=production: {len(value)} characters, at least "
            f"{minimum} (python -c 'import secrets; print(secrets.token_urlsafe(48))' makes one)"
        )
    return value


def csv(value: str) -> list[str]:
    """A comma-separated list with blanks removed."""
    return [item.strip() for item in value.split(",") if item.strip()]
