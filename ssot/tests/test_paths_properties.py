"""Which SSOT paths the mirror reads (SPEC section 4), for any path an agent may push: message and ack
files flat or in dated sub-folders, nothing else under those folders (issue 16)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ssot.models import SsotFile
from ssot.paths import dated_message_path, kind_of, stem

SEGMENT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=0, max_size=12)
DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=5)
SHARDED = re.compile(r"^(?:[0-9]{4}/[0-9]{2}/[0-9]{2}/)?[^/]*\.json$")


@given(
    folder=st.sampled_from(["messages/", "acks/", "tasks/", "heartbeats/"]),
    parts=st.lists(st.one_of(SEGMENT, DIGITS), min_size=1, max_size=5),
    suffix=st.sampled_from([".json", ".jsonl", "", ".JSON"]),
)
def test_a_path_is_read_only_flat_or_in_a_dated_sub_folder(
    folder: str, parts: list[str], suffix: str
) -> None:
    rest = "/".join(parts) + suffix
    path = folder + rest
    kind = kind_of(path)
    if len(path) > 300 or (not path.isascii() and any(0xD800 <= ord(c) <= 0xDFFF for c in path)):
        assert kind is None
        return
    sharded = folder in ("messages/", "acks/")
    readable = bool(SHARDED.fullmatch(rest)) if sharded else ("/" not in rest and rest.endswith(".json"))
    assert (kind is not None) == readable
    if kind is not None:
        assert (
            kind
            == {"messages/": "message", "acks/": "ack", "tasks/": "task", "heartbeats/": "heartbeat"}[folder]
        )
        assert stem(path) == parts[-1]


@given(
    msg_id=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,40}\Z"), day=st.datetimes(timezones=st.timezones())
)
def test_the_dated_path_the_control_plane_writes_is_read_as_that_message(msg_id, day) -> None:
    path = dated_message_path(msg_id, day)
    assert kind_of(path) == SsotFile.Kind.MESSAGE
    assert stem(path) == msg_id
