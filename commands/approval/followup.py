"""What becomes of a link, told to the people around it: the requester hears when it is approved, declined,
expired or failed; the approver is reminded once before it runs out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from bot.domain.problems import Problem
from bot.slack_format import escape, fill, link, when


def _with_card(text: str, card_link: str | None) -> list[Block]:
    if card_link:
        text += f" {link(card_link, 'Open its card')}"
    return [SectionBlock(text=MarkdownTextObject(text=text))]


def requester_note(
    *, event: str, company_name: str, approver: str, facts: Mapping[str, Any], card_link: str | None
) -> tuple[list[Block], str]:
    """The requester's DM about their link: its blocks and fallback text. `approver` is already mrkdwn."""
    name = f"*{escape(company_name)}*"
    if event == "approved":
        by = escape(str(facts.get("approver") or "the approver"))
        text = f"✅ {name} was approved in Visma by {by}; the first sync is starting."
        fallback = f"{escape(company_name)} was approved"
    elif event == "declined":
        text = (
            f"⛔ {approver} declined connecting {name}. Check who should approve, then press *Resend link* or "
            "*Change approver* on its card."
        )
        fallback = f"{escape(company_name)}: the approver declined"
    elif event == "expired":
        text = (
            f"⏰ The approval link for {name} you sent to {approver} expired unused. Press *Resend link* on its "
            "card if it is still needed, or *Change approver*."
        )
        fallback = f"{escape(company_name)}: the approval link expired"
    else:
        problem = Problem.from_facts(facts["problem"]) if facts.get("problem") else None
        what = fill(problem.what, problem.values) if problem else "something went wrong"
        text = (
            f"⚠️ The approval of {name} did not complete: Visma says {what}. The alert in its card's thread says "
            "who can fix it and how."
        )
        fallback = f"{escape(company_name)}: the approval did not complete"
    return _with_card(text, card_link), fallback


def reminder(
    *, to_approver: bool, company_name: str, approver: str, requester_name: str, expires_at: datetime
) -> tuple[list[Block], str]:
    """The one reminder before a link runs out: to the approver in their DM, else to whoever sent it."""
    name = f"*{escape(company_name)}*"
    if to_approver:
        text = (
            f"⏰ Reminder: the link to connect {name} to {escape(requester_name)} runs out {when(expires_at)}. "
            "Use *Review and approve* in the message above; if it is not for you, press *Decline*."
        )
    else:
        text = (
            f"⏰ The approval link for {name} you sent to {approver} runs out {when(expires_at)} and has not been "
            "used. Remind them, or press *Resend link* or *Change approver* on its card."
        )
    return [
        SectionBlock(text=MarkdownTextObject(text=text))
    ], f"{escape(company_name)}: the approval link runs out soon"
