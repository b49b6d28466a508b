"""The factories build rows the way the system would: users in their groups."""

from __future__ import annotations

import pytest

from testing.factories import AgentUserFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_agent_users_are_in_the_agents_group_and_not_staff():
    agent = AgentUserFactory.create(username="reviewer")
    assert list(agent.groups.values_list("name", flat=True)) == ["agents"]
    assert not agent.is_staff


def test_users_join_the_groups_they_are_given():
    user = UserFactory.create(groups=["approvers", "operators"])
    assert user.has_perm("ssot.approve_task") and user.has_perm("ssot.override_task")
