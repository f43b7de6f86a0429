"""Pure Block Kit builders for the approver's DM and the requester's confirmation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.domain.orgnumber import display
from bot.domain.types import AccountingSystem, Country
from bot.slack_format import day, escape, link, when
from commands.approval.ids import ApprovalAction

NEEDS = {
    AccountingSystem.EACCOUNTING: "You need *full program permission* in the company, and the company needs "
    "the *bookkeeping* module.",
    AccountingSystem.VISMA_NET: "You need the *Integration Administrator* role (App Store) and *API User* "
    "(ERP) for the company.",
    AccountingSystem.BUSINESS_NXT: "The *system administrator* of Business NXT activates the integration.",
    AccountingSystem.VISMA_ERP: "You need the *Integration Administrator* role for the tenant.",
}


@dataclass(frozen=True, slots=True)
class ApprovalAsk:
    """What the approver is asked for."""

    request_id: int
    requester_name: str
    firm_name: str
    company_name: str
    org_number: str
    country: Country
    system: AccountingSystem
    link: str
    expires_at: datetime


def dm_text(ask: ApprovalAsk) -> str:
    """The DM's one-line fallback (Slack parses it too, so it is escaped like the blocks)."""
    return (
        f"{escape(ask.requester_name)} at {escape(ask.firm_name)} asks you to connect {escape(ask.company_name)} "
        f"in {ask.system.label}"
    )


def dm_blocks(ask: ApprovalAsk) -> list[Block]:
    """The approver's DM: who asks for what, the link, when it expires, and a way to say no."""
    number = display(ask.country, ask.org_number)
    return [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"{escape(ask.requester_name)} at {escape(ask.firm_name)} asks you to connect "
                f"*{escape(ask.company_name)}* ({number}) in {ask.system.label} so its books can be "
                f"reconciled. It takes two minutes. {NEEDS[ask.system]}"
            )
        ),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Review and approve",
                    action_id=ApprovalAction.OPEN_LINK,
                    url=ask.link,
                    style="primary",
                ),
                ButtonElement(
                    text="Not me / decline",
                    action_id=ApprovalAction.DECLINE,
                    value=str(ask.request_id),
                    confirm=ConfirmObject(
                        title="Decline this request?",
                        text=f"The link stops working and {escape(ask.requester_name)} is told. "
                        "Nothing in Visma changes.",
                        confirm="Decline",
                        deny="Keep it",
                    ),
                ),
            ]
        ),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"The link works until {day(ask.expires_at)}, or until the company is connected."
                )
            ]
        ),
    ]


def dm_closed_blocks(*, company_name: str, why: str) -> list[Block]:
    """The DM of a link that no longer works (a newer one was sent, or the company was cancelled)."""
    return [SectionBlock(text=MarkdownTextObject(text=f"*{escape(company_name)}*: {why}"))]


def dm_approved_blocks(*, company_name: str, at: datetime) -> list[Block]:
    """The DM after approval, edited in place."""
    return [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"✅ *{escape(company_name)}* approved on {when(at)} — thank you. Nothing more to do."
            )
        )
    ]


def dm_declined_blocks(*, company_name: str, requester_name: str) -> list[Block]:
    """The DM after the approver declined."""
    return [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"You declined connecting *{escape(company_name)}*. We told {escape(requester_name)}; "
                "the link no longer works."
            )
        )
    ]


def requester_blocks(
    *,
    company_name: str,
    approver: str,
    card_link: str | None,
    forward_link: str | None,
    expires_at: datetime,
    in_slack: bool = True,
) -> list[Block]:
    """The requester's confirmation (with the link to forward when the approver could not be reached by DM).
    `approver` is already mrkdwn (a mention, or an escaped e-mail)."""
    card = f" {link(card_link, 'See its card')}." if card_link else ""
    if forward_link:
        text = (
            f"*{escape(company_name)}* is saved and waits for approval. {approver} "
            f"{'could not be reached by DM' if in_slack else 'is not in Slack'}: "
            f"forward them this link. It works until {day(expires_at)}, or until the company is connected: "
            f"<{forward_link}>{card}"
        )
    else:
        text = f"*{escape(company_name)}* is saved; the approval link went to {approver} by DM.{card}"
    return [SectionBlock(text=MarkdownTextObject(text=text))]
