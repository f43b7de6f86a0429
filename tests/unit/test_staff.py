"""The staff gate's directory: read once, kept a minute, closed (not open) when Slack cannot say."""

from __future__ import annotations

from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from commands.staff import StaffDirectory


class Groups:
    """A stand-in for the Web API client's usergroups.users.list."""

    def __init__(self, members: list[str] | None) -> None:
        self.members = members
        self.calls = 0

    async def usergroups_users_list(self, *, usergroup: str) -> dict[str, Any]:
        self.calls += 1
        if self.members is None:
            response = AsyncSlackResponse(
                client=None,
                http_verb="GET",
                api_url="",
                req_args={},
                data={"ok": False, "error": "no_such_subteam"},
                headers={},
                status_code=200,
            )
            raise SlackApiError("no_such_subteam", response)
        return {"ok": True, "users": self.members}


async def test_without_a_group_everyone_is_staff():
    directory = StaffDirectory(Groups(None), None)  # type: ignore[arg-type]
    assert await directory.is_staff("U0GUEST")


async def test_members_are_read_once_and_kept():
    groups = Groups(["U0KARI"])
    directory = StaffDirectory(groups, "S0STAFF")  # type: ignore[arg-type]
    await directory.warm()
    assert await directory.is_staff("U0KARI")
    assert not await directory.is_staff("U0GUEST")
    assert not await directory.is_staff(None)
    assert groups.calls == 1


async def test_a_group_slack_cannot_read_lets_nobody_in_and_is_not_asked_on_every_request():
    groups = Groups(None)
    directory = StaffDirectory(groups, "S0WRONG")  # type: ignore[arg-type]
    await directory.warm()
    assert not await directory.is_staff("U0KARI")
    assert not await directory.is_staff("U0KARI")
    assert groups.calls == 1
