"""Pure Block Kit builders for the App Home tab and its search modal.

Slack allows 100 blocks in a view and 3,000 characters in a section's text: the companies come a page at a
time (two blocks each), names and Visma's texts are clipped before they are escaped, and the lists of pending
approvals and open alerts stop at what fits, saying how many more there are.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    InteractiveElement,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain.types import AccountingSystem, CompanyState
from bot.services.overview import OpenAlert, PendingApproval, StateGroup
from bot.services.status import Card
from bot.slack_format import day, escape, when
from commands.card.views import approver, card_blocks, status_line
from commands.firm.ids import FirmAction
from commands.home.ids import ALL_SYSTEMS, HomeAction, HomeView
from commands.home.state import MAX_QUERY, HomeState

MAX_BLOCKS = 100
MAX_SECTION = 3000
PAGE_SIZE = 25
NAME_CHARS = 80  # a company name is clipped to this before it is escaped (an escaped character takes up to 5)
SUMMARY_CHARS = 160
SHOWN_PENDING = 15
SHOWN_ALERTS = 15

GROUPS: tuple[tuple[str, str, StateGroup], ...] = (
    ("🔴", "needs action", StateGroup.NEEDS_ACTION),
    ("🟡", "awaiting approval", StateGroup.AWAITING_APPROVAL),
    ("🟢", "healthy", StateGroup.HEALTHY),
    ("⚪", "deactivated", StateGroup.DEACTIVATED),
)
_WORDS = {
    CompanyState.DRAFT: "⚪ Not finished in /addcompany",
    CompanyState.AWAITING_APPROVAL: "🟡 Awaiting approval",
    CompanyState.CONNECTED: "🟢 Connected",
    CompanyState.SYNCING: "🔄 Syncing",
    CompanyState.HEALTHY: "🟢 Healthy",
    CompanyState.PERMISSION_ERROR: "🔴 Needs action: Visma refuses access",
    CompanyState.DISCONNECTED: "🔴 Needs action: disconnected",
    CompanyState.DEACTIVATED: "⚪ Deactivated",
}
_NEXT_STEP = {
    CompanyState.PERMISSION_ERROR: "someone at the client must approve again: *Send new approval link* (the alert in "
    "the card's thread says who and how)",
    CompanyState.DISCONNECTED: "the connection is gone: *Send new approval link*, or *Change approver*",
    CompanyState.AWAITING_APPROVAL: "waiting for the approver; *Resend link* if they lost it",
    CompanyState.DRAFT: "finish `/addcompany`",
    CompanyState.DEACTIVATED: "nothing; *Activate* to sync it again",
}
_USERGROUP_ID = re.compile(r"S[A-Z0-9]{2,20}")


@dataclass(frozen=True, slots=True)
class HomeRow:
    """One company on the home tab: its card's facts give the state in words, the next step and the buttons."""

    name: str
    state: CompanyState
    permalink: str | None
    card: Card | None = None


def clip(text: str, limit: int) -> str:
    """Text cut to `limit` characters, with an ellipsis when cut (before escaping, never after)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_link(name: str, permalink: str | None) -> str:
    """A company's name, linked to its card when the card is in the channel."""
    label = escape(clip(name, NAME_CHARS))
    return f"<{permalink}|{label}>" if permalink else label


def next_step(state: CompanyState, card: Card | None) -> str:
    """What happens next, and who does it."""
    if state in (CompanyState.HEALTHY, CompanyState.CONNECTED, CompanyState.SYNCING):
        if card is not None and (card.syncing or state is CompanyState.SYNCING):
            return "nothing; a sync is running"
        if card is not None and card.next_sync_at is not None:
            return f"nothing; next sync {when(card.next_sync_at)}"
        return "nothing; it syncs on its schedule"
    return _NEXT_STEP[state]


def card_buttons(card: Card) -> list[Block]:
    """The card's own buttons for the company as it stands (same action ids, same values, same confirmations),
    so a press here is handled exactly as one on the card."""
    for block in card_blocks(card):
        if isinstance(block, ActionsBlock):
            buttons = [element for element in block.elements if isinstance(element, InteractiveElement)]
            return [ActionsBlock(block_id=f"home_company_{card.company_id}", elements=buttons)]
    return []


def _shown(card: Card) -> Card:
    # Everything the status line puts in from people or Visma, clipped so one section stays within Slack's limit.
    def cut(value: str | None, limit: int) -> str | None:
        return clip(value, limit) if value else value

    return dataclasses.replace(
        card,
        name=clip(card.name, NAME_CHARS),
        state_reason=cut(card.state_reason, SUMMARY_CHARS),
        approver_email=cut(card.approver_email, NAME_CHARS),
        connected_by=cut(card.connected_by, NAME_CHARS),
    )


def company_blocks(row: HomeRow) -> list[Block]:
    """A company: name (linked to its card), system, state in words and next step; then the card's buttons."""
    if row.card is None:
        text = f"*{card_link(row.name, row.permalink)}*\n{_WORDS[row.state]}\n_Next:_ {next_step(row.state, None)}"
        return [SectionBlock(text=MarkdownTextObject(text=text))]
    card = _shown(row.card)
    text = (
        f"*{card_link(row.name, row.permalink)}* · {card.system.label}\n{status_line(card)}\n"
        f"_Next:_ {next_step(row.state, card)}"
    )
    return [SectionBlock(text=MarkdownTextObject(text=text)), *card_buttons(card)]


def _option(value: str, label: str) -> Option:
    return Option(value=value, text=clip(label, 75))


def filter_row(state: HomeState, counts: Mapping[CompanyState, int]) -> ActionsBlock:
    """State group, system, and the search."""
    groups = [
        _option(group.value, f"{icon} {label.capitalize()} ({_count(counts, group)})") for icon, label, group in GROUPS
    ]
    groups.append(_option(StateGroup.ALL.value, f"All companies ({sum(counts.values())})"))
    chosen_group = next(option for option in groups if option.value == state.group.value)
    systems = [_option(ALL_SYSTEMS, "All systems")] + [
        _option(system.value, system.label) for system in AccountingSystem
    ]
    chosen_system = next(option for option in systems if option.value == (state.system or ALL_SYSTEMS))
    elements: list[ButtonElement | StaticSelectElement] = [
        StaticSelectElement(
            action_id=HomeAction.STATE, placeholder="State", options=groups, initial_option=chosen_group
        ),
        StaticSelectElement(
            action_id=HomeAction.SYSTEM, placeholder="System", options=systems, initial_option=chosen_system
        ),
        ButtonElement(
            text=clip(f"🔍 “{state.query}”", 75) if state.query else "🔍 Search",
            action_id=HomeAction.SEARCH,
            value="search",
        ),
    ]
    if state.query:
        elements.append(ButtonElement(text="Clear search", action_id=HomeAction.CLEAR_SEARCH, value="clear"))
    return ActionsBlock(block_id="home_filters", elements=elements)


def _count(counts: Mapping[CompanyState, int], group: StateGroup) -> int:
    return sum(counts.get(state, 0) for state in group.states)


def counts_line(counts: Mapping[CompanyState, int]) -> str:
    """🔴 2 needs action · 🟡 1 awaiting approval · 🟢 12 healthy · ⚪ 0 deactivated."""
    return " · ".join(f"{icon} {_count(counts, group)} {label}" for icon, label, group in GROUPS)


def _staff_line(staff_group: str | None) -> str:
    if staff_group is None:
        who = "Every member of the workspace counts as staff (no staff group is set)"
    elif _USERGROUP_ID.fullmatch(staff_group):
        who = f"Staff are the members of <!subteam^{staff_group}>"
    else:
        who = f"Staff are the members of user group {escape(staff_group)}"
    return f"{who} · add a company with `/addcompany`"


def _lines_within(title: str, lines: Sequence[str], total: int) -> str:
    """A titled list that stops before Slack's section limit, saying how many more there are."""
    text, shown = title, 0
    reserve = len(f"\n…and {total} more")
    for line in lines:
        if len(text) + 1 + len(line) + reserve > MAX_SECTION:
            break
        text += "\n" + line
        shown += 1
    if total > shown:
        text += f"\n…and {total - shown} more"
    return text


def pending_section(pending: Sequence[PendingApproval], total: int, links: Mapping[int, str]) -> SectionBlock:
    """Approval links out and unused: approver, sent, expires."""
    if not pending:
        return SectionBlock(text=MarkdownTextObject(text="*Pending approvals*\nNone: no approval link is out."))
    lines = [
        f"• {card_link(item.company_name, links.get(item.company_id))} — "
        f"{approver(item.approver_user_id, clip(item.approver_email or '', NAME_CHARS) or None)}, "
        f"sent {day(item.sent_at)}, expires {when(item.expires_at)}"
        for item in pending
    ]
    return SectionBlock(text=MarkdownTextObject(text=_lines_within(f"*Pending approvals ({total})*", lines, total)))


def alerts_section(alerts: Sequence[OpenAlert], total: int, links: Mapping[int, str]) -> SectionBlock:
    """Alerts not yet resolved: company, what Visma said, since when, how often."""
    if not alerts:
        return SectionBlock(text=MarkdownTextObject(text="*Open alerts*\nNone: nothing is waiting for a person."))
    lines = []
    for item in alerts:
        seen = f" · seen {item.count} times" if item.count > 1 else ""
        snoozed = f" · 😴 snoozed until {when(item.snoozed_until)}" if item.snoozed_until else ""
        what = escape(clip(item.summary, SUMMARY_CHARS))
        name = card_link(item.company_name, links.get(item.company_id))
        lines.append(f"• {name} — {what} · since {when(item.since)}{seen}{snoozed}")
    return SectionBlock(text=MarkdownTextObject(text=_lines_within(f"*Open alerts ({total})*", lines, total)))


def _listing_title(state: HomeState, total: int, first: int, shown: int) -> str:
    label = next((label for _, label, group in GROUPS if group is state.group), "all companies")
    where = f" in {state.system.label}" if state.system else ""
    matching = f" matching “{escape(state.query)}”" if state.query else ""
    span = f" — {first + 1}–{first + shown} of {total}" if shown else ""
    return f"*{label.capitalize()}{where}{matching}*{span}"


def paging(state: HomeState, total: int) -> ActionsBlock | None:
    """Previous and next page, when the list is longer than a page."""
    pages = max(1, -(-total // PAGE_SIZE))
    buttons = []
    if state.page > 0:
        buttons.append(
            ButtonElement(text="◀ Previous page", action_id=HomeAction.PREVIOUS_PAGE, value=str(state.page - 1))
        )
    if state.page + 1 < pages:
        buttons.append(ButtonElement(text="Next page ▶", action_id=HomeAction.NEXT_PAGE, value=str(state.page + 1)))
    return ActionsBlock(block_id="home_paging", elements=buttons) if buttons else None


def home_view(
    rows: Sequence[HomeRow],
    counts: Mapping[CompanyState, int],
    *,
    state: HomeState | None = None,
    total: int | None = None,
    pending: Sequence[PendingApproval] = (),
    pending_total: int | None = None,
    alerts: Sequence[OpenAlert] = (),
    alerts_total: int | None = None,
    links: Mapping[int, str] | None = None,
    notice: str | None = None,
    staff_group: str | None = None,
) -> View:
    """The staff's home tab: settings, counts, the filter, one page of companies with the card's buttons, then
    pending approvals and open alerts. `rows` is the page (at most PAGE_SIZE); `total` how many match."""
    state = state or HomeState()
    total = len(rows) if total is None else total
    links = links or {}
    rows = list(rows)[:PAGE_SIZE]
    blocks: list[Block] = [
        HeaderBlock(text="Company onboarding"),
        # First on the tab: the demo and people look for the settings button here.
        ActionsBlock(
            block_id="home_tools", elements=[ButtonElement(text="⚙️ Firm settings", action_id=FirmAction.OPEN)]
        ),
        ContextBlock(elements=[MarkdownTextObject(text=_staff_line(staff_group))]),
    ]
    if notice:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"ℹ️ {clip(notice, MAX_SECTION - 10)}")))
    blocks += [
        SectionBlock(text=MarkdownTextObject(text=counts_line(counts))),
        filter_row(state, counts),
        DividerBlock(),
    ]
    first = state.page * PAGE_SIZE
    blocks.append(SectionBlock(text=MarkdownTextObject(text=_listing_title(state, total, first, len(rows)))))
    if not rows:
        empty = "No companies match this filter." if sum(counts.values()) else "No companies yet."
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=empty)]))
    for row in rows:
        blocks += company_blocks(row)
    more = paging(state, total)
    if more is not None:
        pages = -(-total // PAGE_SIZE)
        blocks += [ContextBlock(elements=[MarkdownTextObject(text=f"Page {state.page + 1} of {pages}")]), more]
    blocks += [
        DividerBlock(),
        pending_section(pending, len(pending) if pending_total is None else pending_total, links),
        DividerBlock(),
        alerts_section(alerts, len(alerts) if alerts_total is None else alerts_total, links),
    ]
    assert len(blocks) <= MAX_BLOCKS, len(blocks)
    return View(type="home", blocks=blocks, private_metadata=state.dump())


def search_view(state: HomeState) -> View:
    """Search the companies by name or organisation number (the home tab's filter stays as it is)."""
    return View(
        type="modal",
        callback_id=HomeView.SEARCH,
        title="Search companies",
        submit="Search",
        close="Cancel",
        private_metadata=state.dump(),
        blocks=[
            InputBlock(
                block_id=HomeView.QUERY,
                label="Name or organisation number",
                optional=True,
                hint="Part of the name is enough. Leave it empty to list every company again.",
                element=PlainTextInputElement(
                    action_id=HomeView.QUERY,
                    initial_value=state.query or None,
                    placeholder="Nordlys, or 988 077 917",
                    max_length=MAX_QUERY,
                ),
            )
        ],
    )


def guest_view() -> View:
    """The home tab for someone who is not the firm's staff: what the bot is, and no client data."""
    text = (
        "This app connects client companies' Visma books to the firm. If you were asked to approve a "
        "connection, use the link in your message; there is nothing else to do here."
    )
    return View(type="home", blocks=[HeaderBlock(text="Company onboarding"), SectionBlock(text=text)])
