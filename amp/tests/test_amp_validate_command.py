"""`manage.py amp_validate FILE...`: one verdict per file, exit 1 unless every file is valid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from amp.tests.messages import DISPATCH, with_payload

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"


def run(*files: Path | str) -> tuple[str, CommandError | None]:
    """Run the command; return its output and the CommandError it raised, if any."""
    out = StringIO()
    try:
        call_command("amp_validate", *map(str, files), stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.json"
    path.write_text(json.dumps(DISPATCH), encoding="utf-8")
    return path


def test_a_valid_file_is_ok(good: Path) -> None:
    output, error = run(good)
    assert output == f"OK  {good}\n"
    assert error is None


def test_an_invalid_file_lists_every_violation_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(with_payload(DISPATCH, branch="main", acceptance_criteria=[])), encoding="utf-8"
    )
    output, error = run(bad)
    assert output == (
        f"INVALID  {bad}\n"
        "  - payload.branch: BRANCH VIOLATION: work is never dispatched to 'main'; use a task branch\n"
        "  - payload.acceptance_criteria: must not be empty\n"
    )
    assert error is not None
    assert error.returncode == 1
    assert str(error) == "1 of 1 files are not valid AMP/1.0"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not json at all", "$: not valid JSON: Expecting value at line 1 column 1"),
        (b'["a", "list"]', "$: must be a JSON object, not an array"),
        (b'"a string"', "$: must be a JSON object, not a string"),
        (b"\xff\xfe\x00{", "$: UTF-16 text (a byte order mark at the start): JSON must be UTF-8"),
        (b"", "$: empty: a JSON object is expected"),
    ],
)
def test_an_undecodable_file_is_invalid_with_a_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "message.json"
    path.write_bytes(content)
    output, error = run(path)
    assert output == f"INVALID  {path}\n  - {reason}\n"
    assert error is not None
    assert error.returncode == 1


def test_a_missing_file_is_invalid(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    output, error = run(missing)
    assert output == f"INVALID  {missing}\n  - $: cannot read file: No such file or directory\n"
    assert error is not None


def test_a_directory_is_invalid(tmp_path: Path) -> None:
    output, error = run(tmp_path)
    assert output == f"INVALID  {tmp_path}\n  - $: cannot read file: Is a directory\n"
    assert error is not None


def test_every_file_gets_a_verdict_in_order(good: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    output, error = run(good, missing, good)
    assert output.splitlines() == [
        f"OK  {good}",
        f"INVALID  {missing}",
        "  - $: cannot read file: No such file or directory",
        f"OK  {good}",
    ]
    assert str(error) == "1 of 3 files are not valid AMP/1.0"


def test_the_whole_corpus_gets_the_expected_verdicts() -> None:
    good_files = sorted((CORPUS / "good").glob("*.json"))
    bad_files = sorted((CORPUS / "bad").glob("*.json"))
    output, error = run(*good_files)
    assert error is None
    assert output.splitlines() == [f"OK  {path}" for path in good_files]
    output, error = run(*bad_files)
    assert str(error) == f"{len(bad_files)} of {len(bad_files)} files are not valid AMP/1.0"
    assert [line for line in output.splitlines() if not line.startswith("  - ")] == [
        f"INVALID  {path}" for path in bad_files
    ]


def test_at_least_one_file_is_required() -> None:
    with pytest.raises(CommandError, match="the following arguments are required: FILE"):
        call_command("amp_validate")


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    # The settings module pytest-django configured (the `settings` object may be a test's override,
    # whose SETTINGS_MODULE is None).
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "django", "amp_validate", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_process_exits_0_when_all_files_are_valid(good: Path) -> None:
    result = _manage(str(good))
    assert (result.returncode, result.stdout) == (0, f"OK  {good}\n")


def test_the_process_exits_1_when_a_file_is_invalid(good: Path, tmp_path: Path) -> None:
    result = _manage(str(good), str(tmp_path / "missing.json"))
    assert result.returncode == 1
    assert result.stdout.splitlines()[1] == f"INVALID  {tmp_path / 'missing.json'}"
    assert "1 of 2 files are not valid AMP/1.0" in result.stderr
