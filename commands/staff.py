"""The staff gate: only members of STAFF_USERGROUP run /addcompany, press card buttons or see client companies.

Members come from `usergroups.users.list`, cached for a minute (refreshed in the background, so no request
waits for Slack once the cache is warm). A client's approver who is a guest in the workspace acts only
through their link. With no STAFF_USERGROUP every member counts as staff, and `serve` says so at start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from commands.addcompany.ids import COMMAND, Field, Step
from commands.card.ids import CardAction, CardView
from commands.firm.ids import FirmAction, FirmView

log = logging.getLogger(__name__)

FRESH_SECONDS = 60.0
RETRY_SECONDS = 10.0  # after a failed read, requests are refused without asking Slack again for this long
NOT_STAFF = (
    "Sorry — only the firm's staff can do that here. If you were sent an approval link, use the link in "
    "your message; nothing else is needed from you."
)
_GATED_ACTIONS = {*(action.value for action in CardAction), Field.SYSTEM.value, FirmAction.OPEN.value}
# Where a refused step shows the answer (a block that step has).
_GATED_VIEWS = {
    Step.COMPANY.value: Field.ORG_NUMBER,
    Step.SETTINGS.value: Field.RESPONSIBLE,
    Step.APPROVER.value: Field.APPROVER_USER,
    CardView.CHANGE_APPROVER.value: Field.APPROVER_USER,
    FirmView.SETTINGS.value: FirmView.NXT_CUSTOMER_IDS,
}


class StaffDirectory:
    """Who is staff, by Slack user group; everyone when no group is set."""

    def __init__(self, client: AsyncWebClient, usergroup: str | None) -> None:
        self._client = client
        self.usergroup = usergroup
        self._members: frozenset[str] | None = None
        self._fetched = 0.0
        self._refreshing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def warm(self) -> None:
        """Read the group once at start (a wrong group id is logged, and nobody counts as staff)."""
        if self.usergroup:
            await self._refresh()

    async def is_staff(self, user_id: str | None) -> bool:
        """Whether the user may act on client companies."""
        if not self.usergroup:
            return True
        if not user_id:
            return False
        since = time.monotonic() - self._fetched
        if self._members is None and since > RETRY_SECONDS:
            # Nothing known yet (or the last read failed a while ago): read now, and nobody passes meanwhile.
            await self._refresh()
        elif self._members is not None and since > FRESH_SECONDS and self._refreshing is None:
            self._refreshing = asyncio.create_task(self._refresh(), name="staff-refresh")
        return user_id in (self._members or frozenset())

    async def _refresh(self) -> None:
        assert self.usergroup is not None
        async with self._lock:
            try:
                answer = await self._client.usergroups_users_list(usergroup=self.usergroup)
                self._members = frozenset(str(user) for user in answer.get("users") or [])
                self._fetched = time.monotonic()
            except SlackApiError as exc:
                # Keep what we knew; with nothing known, nobody passes (closed, not open, on failure).
                log.warning("could not read STAFF_USERGROUP %s: %s", self.usergroup, exc.response.get("error"))
                if self._members is None:
                    self._fetched = time.monotonic()
            finally:
                self._refreshing = None


def gate(staff: StaffDirectory) -> Callable[..., Awaitable[BoltResponse | None]]:
    """A Bolt middleware that answers non-staff politely, with no data, before any listener runs."""

    async def staff_only(
        body: dict[str, Any], context: AsyncBoltContext, respond: Any, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        kind = body.get("type")
        gated = (
            body.get("command") == COMMAND
            or (kind == "block_actions" and any(a.get("action_id") in _GATED_ACTIONS for a in body.get("actions", [])))
            or (kind == "view_submission" and (body.get("view") or {}).get("callback_id") in _GATED_VIEWS)
            or kind == "block_suggestion"
        )
        user = context.user_id
        context["is_staff"] = await staff.is_staff(user)
        if not gated or context["is_staff"]:
            await next()
            return None
        log.info("refused a staff-only request from %s (%s)", user, kind or "command")
        if kind == "view_submission":
            field = _GATED_VIEWS[body["view"]["callback_id"]]
            answer = {"response_action": "errors", "errors": {field.value: NOT_STAFF}}
            return BoltResponse(status=200, body=json.dumps(answer), headers={"content-type": "application/json"})
        if kind == "block_suggestion":
            return BoltResponse(status=200, body='{"options": []}', headers={"content-type": "application/json"})
        if kind == "block_actions" and body.get("response_url"):
            # Answered after the acknowledgement, as any listener's reply.
            context["deps"].background.spawn(
                respond(text=NOT_STAFF, response_type="ephemeral", replace_original=False), name="not-staff"
            )
        # A slash command's answer body is shown to the person who typed it, and only to them.
        return BoltResponse(status=200, body=NOT_STAFF if kind is None else "")

    return staff_only
