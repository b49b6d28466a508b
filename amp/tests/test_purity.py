"""amp is pure Python: usable without Django, without settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
import amp, amp.ack, amp.builders, amp.jsonschema, amp.spec, amp.validation
message = amp.build_escalation(
    task_id="T-1", escalation_type="ack_timeout", severity="info", triggered_by="ack_monitor", description="x"
)
assert amp.validate(message).sender == "system"
assert amp.jsonschema.build_schema()["title"] == "AMP/1.0 message"
assert "django" not in sys.modules, sorted(m for m in sys.modules if m.startswith("django"))
print("pure")
"""


def test_amp_imports_and_validates_without_django() -> None:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pure"
