"""What the live-events benchmarks share: a fresh deployment (SQLite, local SSOT), servers, clients."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.setup import django_for_bench, percentile

ORIGIN = "http://127.0.0.1"


@dataclass
class Deployment:
    var: Path
    ssot_path: Path
    token: str
    prefix: str
    redis_url: str | None


def deployment(name: str, *, redis_url: str | None, hook_port: int | None = None) -> Deployment:
    """A fresh var/ directory, database, local SSOT (its hook posting to `hook_port`), a superuser's token."""
    os.environ.pop("DATABASE_URL", None)
    prefix = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    os.environ["CHANNEL_LAYER_PREFIX"] = prefix
    if redis_url:
        os.environ["REDIS_URL"] = redis_url
    else:
        os.environ.pop("REDIS_URL", None)
    os.environ["SSOT_BACKEND"] = "local"
    os.environ.pop("SSOT_LOCAL_PATH", None)
    var = django_for_bench(name)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework_simplejwt.tokens import AccessToken

    hook_url = f"http://127.0.0.1:{hook_port}/webhooks/github" if hook_port else settings.SSOT_HOOK_URL
    call_command("ssot_init", hook_url=hook_url, verbosity=0)
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", None)
    # Many sockets in one process: the clients of the fan-out.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return Deployment(
        var=var,
        ssot_path=Path(settings.SSOT_LOCAL_PATH),
        token=str(AccessToken.for_user(user)),
        prefix=prefix,
        redis_url=redis_url,
    )


def server_environment(deploy: Deployment, **extra: str) -> dict[str, str]:
    from testing.server import server_env

    return server_env(ssot_path=deploy.ssot_path, redis_url=deploy.redis_url, prefix=deploy.prefix, **extra)


async def next_event(client: Any, match: Any, timeout: float) -> dict[str, Any]:
    """The next event for which `match(event)` is true."""
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await client.recv())
            if match(event):
                return event


def figures(samples: list[float]) -> dict[str, float]:
    """p50 / p99 / max in milliseconds."""
    return {
        "n": len(samples),
        "p50_ms": round(percentile(samples, 0.50) * 1000, 1),
        "p99_ms": round(percentile(samples, 0.99) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


def save(name: str, results: dict[str, Any]) -> Path:
    out = Path(__file__).resolve().parent / "results" / f"{name}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return out
