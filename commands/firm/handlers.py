"""The firm settings modal: open it, save it (errors inline, nothing saved until they are fixed)."""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.runtime import Deps
from bot.services import firm
from bot.services.firm import InvalidCustomerIds, parse_customer_ids
from commands.firm.ids import USE_SETTING, FirmView
from commands.firm.views import UserGroup, settings_view
from commands.home import handlers as home
from commands.home.state import HomeState
from commands.staff import StaffDirectory


async def user_groups(client: AsyncWebClient) -> tuple[list[UserGroup] | None, str | None]:
    """The workspace's user groups by name (None, and Slack's error, when Slack cannot list them)."""
    try:
        answer = await client.usergroups_list(include_disabled=False)
    except SlackApiError as exc:
        return None, str(exc.response.get("error"))
    groups = [
        UserGroup(
            id=str(group["id"]), name=str(group.get("name") or group["id"]), handle=str(group.get("handle") or "")
        )
        for group in answer.get("usergroups") or []
        if group.get("id") and not group.get("date_delete")
    ]
    return sorted(groups, key=lambda group: group.name.lower()), None


async def open_settings(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
    """Show the firm's settings as they are (pushed on top when pressed inside a modal)."""
    await ack()
    deps: Deps = context["deps"]
    async with deps.store.session() as session:
        row = await firm.settings(session)
        ids, staff_group = firm.customer_ids(row), row.staff_usergroup_id
        await session.commit()
    groups, problem = await user_groups(client)
    opened_in = body.get("view") or {}
    # From the home tab the modal carries the tab's filter, so the tab is drawn again as it was after a save.
    home_state = HomeState.load(opened_in.get("private_metadata")).dump() if opened_in.get("type") == "home" else ""
    view = settings_view(
        customer_ids=ids,
        groups=groups,
        staff_group=staff_group,
        setting=deps.settings.staff_usergroup,
        groups_error=problem,
        private_metadata=home_state,
    )
    if opened_in.get("type") == "modal":
        await client.views_push(trigger_id=body["trigger_id"], view=view)
    else:
        await client.views_open(trigger_id=body["trigger_id"], view=view)


async def _lockout(staff: StaffDirectory, *, group: str | None, setting: str | None, user: str) -> str | None:
    """Why the user may not choose this group (it would lock them out), or None."""
    effective = group or setting
    if effective is None:
        return None  # no group anywhere: everyone is staff
    try:
        members = await staff.members_of(effective)
    except SlackApiError as exc:
        return f"Slack could not list this group's members ({exc.response.get('error')}); nothing was saved."
    if user in members:
        return None
    return (
        "You are not in this group, so saving it would lock you out of the bot. Add yourself to the group in "
        "Slack first, or choose a group you are in."
    )


async def settings_submitted(
    ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Keep the settings, or say inline what is wrong."""
    deps: Deps = context["deps"]
    staff: StaffDirectory = context["staff"]
    actor = context.user_id or ""
    values = view["state"]["values"]
    errors: dict[str, str] = {}
    raw = values.get(FirmView.NXT_CUSTOMER_IDS, {}).get(FirmView.NXT_CUSTOMER_IDS, {})
    try:
        ids = parse_customer_ids(str(raw.get("value") or ""))
    except InvalidCustomerIds as exc:
        errors[FirmView.NXT_CUSTOMER_IDS.value] = str(exc)
    picked = (values.get(FirmView.STAFF_GROUP, {}).get(FirmView.STAFF_GROUP, {}).get("selected_option") or {}).get(
        "value"
    )
    # The new staff group, when it changes: (None,) puts the STAFF_USERGROUP setting back in force.
    change: tuple[str | None] | None = None
    if picked:
        chosen = None if picked == USE_SETTING else str(picked)
        async with deps.store.session() as session:
            if chosen != await firm.stored_staff_usergroup(session):
                change = (chosen,)
    if change is not None:
        # Slack is asked before the answer, so a refusal shows under the field (Slack waits 3 s for it).
        refused = await _lockout(staff, group=change[0], setting=deps.settings.staff_usergroup, user=actor)
        if refused:
            errors[FirmView.STAFF_GROUP.value] = refused
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    async with deps.store.session() as session:
        await firm.set_customer_ids(session, ids=ids, actor=actor, now=deps.clock())
        if change is not None:
            await firm.set_staff_usergroup(session, group=change[0], actor=actor, now=deps.clock())
        await session.commit()
    await ack()
    if change is not None:
        await staff.reload()
    if view.get("private_metadata"):
        state = HomeState.load(str(view["private_metadata"]))
        await home.publish(context, client, user_id=actor, state=state, notice="Firm settings saved.")
