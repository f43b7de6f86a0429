"""Pure Block Kit builders for the approver's DM (in their language: bot/i18n) and the requester's confirmation
(in English, the firm's staff's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

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
from bot.i18n import N_, Language, format_date, format_datetime, system_label, translate
from bot.slack_format import day, escape, link, when
from commands.approval.ids import ApprovalAction

# What the approver needs, by system (mrkdwn).
NEEDS = {
    AccountingSystem.EACCOUNTING: N_(
        "You need *full program permission* in the company, and the company needs the *bookkeeping* module."
    ),
    AccountingSystem.VISMA_NET: N_(
        "You need the *Integration Administrator* role (App Store) and *API User* (ERP) for the company."
    ),
    AccountingSystem.BUSINESS_NXT: N_("The *system administrator* of Business NXT activates the integration."),
    AccountingSystem.VISMA_ERP: N_("You need the *API User* role for the company in Visma.net."),
}


class Ended(StrEnum):
    """What became of the link in an approver's DM."""

    APPROVED = "approved"
    DECLINED = "declined"
    EXPIRED = "expired"
    REPLACED = "replaced"


# Why a DM's link no longer works, said after the company's name.
_CLOSED = {
    Ended.EXPIRED: N_("this link expired unused; ask the person who sent it for a new one if it is still needed."),
    Ended.REPLACED: N_("this request was replaced by a newer one, or withdrawn; the link in it no longer works."),
}


@dataclass(frozen=True, slots=True)
class ApprovalAsk:
    """What the approver is asked for, and in which language (and time zone) they read it."""

    request_id: int
    requester_name: str
    firm_name: str
    company_name: str
    org_number: str
    country: Country
    system: AccountingSystem
    link: str
    expires_at: datetime
    language: Language = Language.EN
    tz: str | None = None


def _requester(ask: ApprovalAsk) -> str:
    return escape(ask.requester_name or translate(ask.language, "Your accountant"))


def _day(moment: datetime, language: Language, tz: str | None) -> str:
    """A date in a DM: English as Slack's date token (each reader's own time zone and way of writing dates);
    Norwegian and Swedish written out by us, since Slack writes its tokens in its own languages only."""
    return day(moment) if language is Language.EN else format_date(moment, language, tz=tz)


def _moment(moment: datetime, language: Language, tz: str | None) -> str:
    return when(moment) if language is Language.EN else format_datetime(moment, language, tz=tz)


def dm_text(ask: ApprovalAsk) -> str:
    """The DM's one-line fallback (Slack parses it too, so it is escaped like the blocks)."""
    return translate(
        ask.language,
        "{requester} at {firm} asks you to connect {company} in {system}",
        requester=_requester(ask),
        firm=escape(ask.firm_name),
        company=escape(ask.company_name),
        system=system_label(ask.system, ask.language),
    )


def dm_blocks(ask: ApprovalAsk) -> list[Block]:
    """The approver's DM: who asks for what, the link, when it expires, and a way to say no."""
    language = ask.language
    number = display(ask.country, ask.org_number)
    return [
        SectionBlock(
            text=MarkdownTextObject(
                text=translate(
                    language,
                    "{requester} at {firm} asks you to connect *{company}* ({number}) in {system} so its books can "
                    "be reconciled. It takes two minutes. {needs}",
                    requester=_requester(ask),
                    firm=escape(ask.firm_name),
                    company=escape(ask.company_name),
                    number=number,
                    system=system_label(ask.system, language),
                    needs=translate(language, NEEDS[ask.system]),
                )
            )
        ),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text=translate(language, "Review and approve"),
                    action_id=ApprovalAction.OPEN_LINK,
                    url=ask.link,
                    style="primary",
                ),
                ButtonElement(
                    text=translate(language, "Not me / decline"),
                    action_id=ApprovalAction.DECLINE,
                    value=str(ask.request_id),
                    confirm=ConfirmObject(
                        title=translate(language, "Decline this request?"),
                        text=translate(
                            language,
                            "The link stops working and {requester} is told. Nothing in Visma changes.",
                            requester=_requester(ask),
                        ),
                        confirm=translate(language, "Decline"),
                        deny=translate(language, "Keep it"),
                    ),
                ),
            ]
        ),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=translate(
                        language,
                        "The link works until {date}, or until the company is connected.",
                        date=_day(ask.expires_at, language, ask.tz),
                    )
                )
            ]
        ),
    ]


def dm_ended_text(ended: Ended, *, company_name: str, language: Language = Language.EN) -> str:
    """The one-line fallback of a DM whose link no longer works."""
    company = escape(company_name)
    if ended is Ended.APPROVED:
        return translate(language, "{company} approved — thank you", company=company)
    if ended is Ended.DECLINED:
        return translate(language, "You declined connecting {company}", company=company)
    if ended is Ended.EXPIRED:
        return translate(language, "{company}: link expired", company=company)
    return translate(language, "{company}: link replaced", company=company)


def dm_closed_blocks(*, company_name: str, why: Ended | str, language: Language = Language.EN) -> list[Block]:
    """The DM of a link that no longer works (it expired, a newer one was sent, or the company was cancelled)."""
    said = translate(language, _CLOSED[Ended(why)])
    return [SectionBlock(text=MarkdownTextObject(text=f"*{escape(company_name)}*: {said}"))]


def dm_approved_blocks(
    *, company_name: str, at: datetime, language: Language = Language.EN, tz: str | None = None
) -> list[Block]:
    """The DM after approval, edited in place."""
    return [
        SectionBlock(
            text=MarkdownTextObject(
                text=translate(
                    language,
                    "✅ *{company}* approved on {when} — thank you. Nothing more to do.",
                    company=escape(company_name),
                    when=_moment(at, language, tz),
                )
            )
        )
    ]


def dm_declined_blocks(*, company_name: str, requester_name: str, language: Language = Language.EN) -> list[Block]:
    """The DM after the approver declined."""
    requester = requester_name or translate(language, "the person who sent the link")
    return [
        SectionBlock(
            text=MarkdownTextObject(
                text=translate(
                    language,
                    "You declined connecting *{company}*. We told {requester}; the link no longer works.",
                    company=escape(company_name),
                    requester=escape(requester),
                )
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
