"""Pure Block Kit builder for the App Home tab."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain.types import CompanyState
from bot.slack_format import escape
from commands.firm.ids import FirmAction

GROUPS: tuple[tuple[str, str, tuple[CompanyState, ...]], ...] = (
    ("🔴", "needs action", (CompanyState.PERMISSION_ERROR, CompanyState.DISCONNECTED)),
    ("🟡", "awaiting approval", (CompanyState.AWAITING_APPROVAL, CompanyState.DRAFT)),
    ("🟢", "healthy", (CompanyState.HEALTHY, CompanyState.CONNECTED, CompanyState.SYNCING)),
    ("⚪", "deactivated", (CompanyState.DEACTIVATED,)),
)
NEXT_STEP = {
    CompanyState.PERMISSION_ERROR: "see the alert in its thread",
    CompanyState.DISCONNECTED: "send a new approval link",
    CompanyState.AWAITING_APPROVAL: "waiting for the approver",
    CompanyState.DRAFT: "finish /addcompany",
}
SHOWN_PER_GROUP = 20


@dataclass(frozen=True, slots=True)
class HomeRow:
    """One company on the home tab."""

    name: str
    state: CompanyState
    permalink: str | None


def home_view(rows: Sequence[HomeRow], counts: Mapping[CompanyState, int]) -> View:
    """Counts per state, then the companies that need a person first."""
    totals = " · ".join(
        f"{icon} {sum(counts.get(state, 0) for state in states)} {label}" for icon, label, states in GROUPS
    )
    blocks: list[object] = [HeaderBlock(text="Company onboarding"), SectionBlock(text=totals)]
    for icon, label, states in GROUPS[:3]:
        members = [row for row in rows if row.state in states]
        if not members:
            continue
        blocks.append(DividerBlock())
        lines = [_line(row) for row in members[:SHOWN_PER_GROUP]]
        more = len(members) - SHOWN_PER_GROUP
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"{icon} *{label.capitalize()}*\n" + "\n".join(lines))))
        if more > 0:
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"…and {more} more")]))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text="Add a company with `/addcompany`.")]))
    blocks.append(ActionsBlock(elements=[ButtonElement(text="Firm settings", action_id=FirmAction.OPEN)]))
    return View(type="home", blocks=blocks)  # type: ignore[arg-type]


def _line(row: HomeRow) -> str:
    name = f"<{row.permalink}|{escape(row.name)}>" if row.permalink else escape(row.name)
    step = NEXT_STEP.get(row.state)
    return f"• {name}" + (f" — {step}" if step else "")


def guest_view() -> View:
    """The home tab for someone who is not the firm's staff: what the bot is, and no client data."""
    text = (
        "This app connects client companies' Visma books to the firm. If you were asked to approve a "
        "connection, use the link in your message; there is nothing else to do here."
    )
    return View(type="home", blocks=[HeaderBlock(text="Company onboarding"), SectionBlock(text=text)])
