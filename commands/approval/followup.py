"""What becomes of a link, told to the people around it: the requester hears when it is approved, declined,
expired or failed; the approver is reminded once before it runs out. Each in the reader's language."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from bot.domain.problems import Problem
from bot.i18n import Language, translate
from bot.slack_format import escape, fill, link, when


def _with_card(text: str, card_link: str | None, language: Language) -> list[Block]:
    if card_link:
        text += " " + link(card_link, translate(language, "Open its card"))
    return [SectionBlock(text=MarkdownTextObject(text=text))]


def requester_note(
    *,
    event: str,
    company_name: str,
    approver: str,
    facts: Mapping[str, Any],
    card_link: str | None,
    language: Language = Language.EN,
) -> tuple[list[Block], str]:
    """The requester's DM about their link: its blocks and fallback text. `approver` is already mrkdwn."""
    name, plain = f"*{escape(company_name)}*", escape(company_name)
    if event == "approved":
        by = escape(str(facts.get("approver") or translate(language, "the approver")))
        text = "✅ " + translate(
            language,
            "{company} was approved in Visma by {approver}; the first sync is starting.",
            company=name,
            approver=by,
        )
        fallback = translate(language, "{company} was approved", company=plain)
    elif event == "declined":
        text = "⛔ " + translate(
            language,
            "{approver} declined connecting {company}. Check who should approve, then press *Resend link* or "
            "*Change approver* on its card.",
            approver=approver,
            company=name,
        )
        fallback = translate(language, "{company}: the approver declined", company=plain)
    elif event == "expired":
        text = "⏰ " + translate(
            language,
            "The approval link for {company} you sent to {approver} expired unused. Press *Resend link* on its "
            "card if it is still needed, or *Change approver*.",
            company=name,
            approver=approver,
        )
        fallback = translate(language, "{company}: the approval link expired", company=plain)
    else:
        problem = Problem.from_facts(facts["problem"]).in_language(language) if facts.get("problem") else None
        what = fill(problem.what, problem.values) if problem else translate(language, "something went wrong")
        text = "⚠️ " + translate(
            language,
            "The approval of {company} did not complete. Visma says: {what}. The alert in its card's thread says "
            "who can fix it and how.",
            company=name,
            what=what,
        )
        fallback = translate(language, "{company}: the approval did not complete", company=plain)
    return _with_card(text, card_link, language), fallback


def reminder(
    *,
    to_approver: bool,
    company_name: str,
    approver: str,
    requester_name: str,
    expires_at: datetime,
    language: Language = Language.EN,
) -> tuple[list[Block], str]:
    """The one reminder before a link runs out: to the approver in their DM, else to whoever sent it."""
    name = f"*{escape(company_name)}*"
    if to_approver:
        text = "⏰ " + translate(
            language,
            "Reminder: the link to connect {company} to {requester} runs out {when}. Use the button in the message "
            "above; if it is not for you, decline there.",
            company=name,
            requester=escape(requester_name),
            when=when(expires_at),
        )
    else:
        text = "⏰ " + translate(
            language,
            "The approval link for {company} you sent to {approver} runs out {when} and has not been used. Remind "
            "them, or press *Resend link* or *Change approver* on its card.",
            company=name,
            approver=approver,
            when=when(expires_at),
        )
    fallback = translate(language, "{company}: the approval link runs out soon", company=escape(company_name))
    return [SectionBlock(text=MarkdownTextObject(text=text))], fallback
