"""Fixtures of the listener tests."""

from __future__ import annotations

import pytest

QUOTA_ADMIN = "UADMIN1"


@pytest.fixture
def admins(fake_slack):
    """users.info says QUOTA_ADMIN is a workspace admin; everyone else is a plain member."""
    fake_slack.users[QUOTA_ADMIN] = {"is_admin": True}
    return fake_slack
