"""The staff gate: only the staff's user group runs /addcompany, presses card buttons or sees client companies.

The group is the one staff chose in Firm settings (kept in the store), else the STAFF_USERGROUP setting. It
and its members (`usergroups.users.list`) are cached for a minute and refreshed in the background, so no
request waits for Slack or the store once the cache is warm. A client's approver who is a guest in the
workspace acts only through their link. With no group anywhere every member counts as staff, and `serve`
says so at start.
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
from sqlalchemy.exc import SQLAlchemyError

from bot.services import firm
from bot.store.engine import Store
from commands.addcompany.ids import COMMAND, Field, Step
from commands.card.ids import CardAction, CardView
from commands.firm.ids import FirmAction, FirmView
from commands.home.ids import HomeAction, HomeView

log = logging.getLogger(__name__)

FRESH_SECONDS = 60.0
RETRY_SECONDS = 10.0  # after a failed read, requests are refused without asking Slack again for this long
NOT_STAFF = (
    "Sorry — only the firm's staff can do that here. If you were sent an approval link, use the link in "
    "your message; nothing else is needed from you."
)
_GATED_ACTIONS = {
    *(action.value for action in CardAction),
    *(action.value for action in HomeAction),
    Field.SYSTEM.value,
    FirmAction.OPEN.value,
}
# Where a refused step shows the answer (a block that step has).
_GATED_VIEWS = {
    Step.COMPANY.value: Field.ORG_NUMBER,
    Step.SETTINGS.value: Field.RESPONSIBLE,
    Step.APPROVER.value: Field.APPROVER_USER,
    CardView.CHANGE_APPROVER.value: Field.APPROVER_USER,
    FirmView.SETTINGS.value: FirmView.NXT_CUSTOMER_IDS,
    HomeView.SEARCH.value: HomeView.QUERY,
}


class StaffDirectory:
    """Who is staff, by Slack user group; everyone when no group is set."""

    def __init__(self, client: AsyncWebClient, usergroup: str | None, *, store: Store | None = None) -> None:
        self._client = client
        self._setting = usergroup
        self._store = store
        # The group in force: the one kept in Firm settings, else the setting.
        self.usergroup = usergroup
        self._members: frozenset[str] | None = None
        self._fetched = 0.0
        self._refreshing: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def warm(self) -> None:
        """Read the group once at start (a wrong group id is logged, and nobody counts as staff)."""
        if self._setting or self._store is not None:
            await self._refresh()

    async def reload(self) -> None:
        """Read the group and its members again now (after Firm settings changed the group)."""
        await self._refresh()

    async def is_staff(self, user_id: str | None) -> bool:
        """Whether the user may act on client companies."""
        if self._store is None and not self._setting:
            return True
        since = time.monotonic() - self._fetched
        if self._members is None and since > RETRY_SECONDS:
            # Nothing known yet (or the last read failed a while ago): read now, and nobody passes meanwhile.
            await self._refresh()
        elif self._members is not None and since > FRESH_SECONDS and self._refreshing is None:
            self._refreshing = asyncio.create_task(self._refresh(), name="staff-refresh")
        if self._members is None:
            return False
        if self.usergroup is None:
            return True
        return bool(user_id) and user_id in self._members

    async def members_of(self, usergroup: str) -> frozenset[str]:
        """The members of a user group, asked of Slack now (raises SlackApiError when Slack cannot say)."""
        answer = await self._client.usergroups_users_list(usergroup=usergroup)
        return frozenset(str(user) for user in answer.get("users") or [])

    async def _refresh(self) -> None:
        async with self._lock:
            try:
                group = self._setting
                if self._store is not None:
                    async with self._store.session() as session:
                        group = await firm.stored_staff_usergroup(session) or self._setting
                if group != self.usergroup:
                    self._members = None  # the members of another group say nothing about this one
                self.usergroup = group
                self._members = await self.members_of(group) if group else frozenset()
                self._fetched = time.monotonic()
            except (SlackApiError, SQLAlchemyError) as exc:
                # Keep what we knew; with nothing known, nobody passes (closed, not open, on failure).
                why = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
                log.warning("could not read the staff user group %s: %s", self.usergroup, why)
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
        context["staff"] = staff
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
