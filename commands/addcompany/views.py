"""Pure Block Kit builders for the three steps of the /addcompany modal."""

from __future__ import annotations

import calendar
from datetime import date
from functools import lru_cache
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    ConversationFilter,
    ConversationSelectElement,
    DatePickerElement,
    EmailInputElement,
    ExternalDataSelectElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
    UserSelectElement,
)
from slack_sdk.models.views import View

from bot.domain.orgnumber import FORMAT_HINT, display
from bot.domain.types import AccountingSystem, CompanyState, Country, Module, PeriodType, VatFrequency
from bot.slack_format import escape
from commands.addcompany.ids import Field, Step
from commands.addcompany.state import AddCompanyState
from commands.card.ids import ButtonRef, CardAction
from commands.firm.ids import FirmAction

TITLE = "Add a company"

APPROVER_NEEDS = {
    AccountingSystem.EACCOUNTING: "The client's approver needs *full program permission* in the company, and "
    "the company needs the *bookkeeping* module.",
    AccountingSystem.VISMA_NET: "The client's administrator gives a user *Integration Administrator* (App Store) "
    "and *API User* (ERP), integrates our app in the Visma App Store, and gives us the company's *Tenant ID*.",
    AccountingSystem.BUSINESS_NXT: "The client's system administrator activates our integration in Business "
    "NXT for the company (one access row per company); then it appears in the list below.",
    AccountingSystem.VISMA_ERP: "The client's approver signs in with Visma Connect (the *API User* role), picks "
    "the company and approves the scopes; give the Tenant ID if you have it, and the bot checks the one picked.",
}

ERP_VERBS = ("create", "update", "delete", "ui-extension")
_PERIOD_LABELS = {
    PeriodType.MONTHLY: "Monthly",
    PeriodType.BIMONTHLY: "Every two months",
    PeriodType.QUARTERLY: "Quarterly",
    PeriodType.YEARLY: "Yearly",
}
_VAT_LABELS = {
    VatFrequency.MONTHLY: "Monthly",
    VatFrequency.BIMONTHLY: "Every two months",
    VatFrequency.QUARTERLY: "Quarterly",
    VatFrequency.YEARLY: "Yearly",
    VatFrequency.NONE: "Not VAT registered",
}
# Payroll is reconciled from the ledger (salary, withholding and employer's contribution accounts). None of the
# Visma accounting APIs offers A07 reports (they come from Altinn), so the modal does not promise them.
_MODULE_LABELS = {Module.PAYROLL: "Payroll", Module.VAT: "VAT", Module.ASSETS: "Assets"}


def _option(value: str, label: str) -> Option:
    return Option(value=value, text=label)


def _system_option(system: AccountingSystem) -> Option:
    label = system.label if system.available else f"{system.label} (coming soon)"
    return _option(system.value, label)


def company_view(state: AddCompanyState, *, system: AccountingSystem | None = None) -> dict[str, Any]:
    """Step 1: the accounting system, then the company's name and organisation number."""
    chosen = system or (state.company.system if state.company else AccountingSystem.EACCOUNTING)
    # Opening this view is the hot path of /addcompany: only private_metadata differs between two users, so
    # the blocks are built (and checked against Slack's limits) once per system and reused.
    return {**_company_view(chosen), "private_metadata": state.dump()}


@lru_cache(maxsize=len(AccountingSystem))
def _company_view(chosen: AccountingSystem) -> dict[str, Any]:
    blocks = [
        InputBlock(
            block_id=Field.SYSTEM,
            label="Accounting system",
            dispatch_action=True,
            element=StaticSelectElement(
                action_id=Field.SYSTEM,
                options=[_system_option(item) for item in AccountingSystem],
                initial_option=_system_option(chosen),
            ),
        ),
        ContextBlock(elements=[MarkdownTextObject(text=APPROVER_NEEDS[chosen])]),
        InputBlock(
            block_id=Field.NAME,
            label="Company name",
            element=PlainTextInputElement(action_id=Field.NAME, placeholder="Nordlys Bakeri AS", max_length=120),
        ),
        InputBlock(
            block_id=Field.COUNTRY,
            label="Country",
            element=StaticSelectElement(
                action_id=Field.COUNTRY,
                options=[_option(country.value, country.label) for country in Country],
                initial_option=_option(Country.NO.value, Country.NO.label),
            ),
        ),
        InputBlock(
            block_id=Field.ORG_NUMBER,
            label="Organisation number",
            hint=FORMAT_HINT,
            element=PlainTextInputElement(action_id=Field.ORG_NUMBER, placeholder="988 077 917", max_length=20),
        ),
    ]
    if chosen is AccountingSystem.BUSINESS_NXT:
        # The list comes from the firm's Visma customer IDs: the first time, staff set them from here.
        blocks.insert(
            2,
            ActionsBlock(elements=[ButtonElement(text="Firm settings: Visma customer IDs", action_id=FirmAction.OPEN)]),
        )
        blocks.insert(
            2,
            InputBlock(
                block_id=Field.NXT_COMPANY,
                label="Company in Business NXT",
                optional=True,
                hint="The companies our integration can read for the firm's Visma customer IDs (Firm settings in "
                "App Home). Not in the list? Leave it empty: the client's system administrator gets the steps "
                "to activate it.",
                element=ExternalDataSelectElement(
                    action_id=Field.NXT_COMPANY, min_query_length=0, placeholder="Search the companies"
                ),
            ),
        )
    if chosen is AccountingSystem.VISMA_ERP:
        blocks += [
            InputBlock(
                block_id=Field.API_VERSION,
                label="API version",
                element=StaticSelectElement(
                    action_id=Field.API_VERSION,
                    options=[_option("v2", "API v2"), _option("v1", "API v1")],
                    initial_option=_option("v2", "API v2"),
                ),
            ),
            InputBlock(
                block_id=Field.ERP_SCOPES,
                label="Scopes to ask for besides reading",
                optional=True,
                hint="Reading is always asked for. The approver sees each scope and can leave one unticked; the "
                "bot then says which is missing.",
                element=CheckboxesElement(
                    action_id=Field.ERP_SCOPES,
                    options=[_option(f"vismanet_erp_interactive_api:{verb}", verb) for verb in ERP_VERBS],
                ),
            ),
        ]
    if chosen in (AccountingSystem.VISMA_NET, AccountingSystem.VISMA_ERP):
        blocks.append(
            InputBlock(
                block_id=Field.TENANT_ID,
                label="Tenant ID",
                optional=True,
                hint="From the company menu in the Visma App Store. Leave it empty and the approver gives it.",
                element=PlainTextInputElement(
                    action_id=Field.TENANT_ID, placeholder="3fa85f64-5717-4562-b3fc-2c963f66afa6", max_length=40
                ),
            )
        )
    view = View(type="modal", callback_id=Step.COMPANY, title=TITLE, submit="Next", close="Cancel", blocks=blocks)
    return view.to_dict()


def settings_view(state: AddCompanyState, *, requester: str, today: date) -> View:
    """Step 2: how the company is reconciled."""
    months = [_option(str(number), calendar.month_name[number]) for number in range(1, 13)]
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=_company_line(state))),
        InputBlock(
            block_id=Field.PERIOD_TYPE,
            label="Period type",
            element=StaticSelectElement(
                action_id=Field.PERIOD_TYPE,
                options=[_option(key.value, label) for key, label in _PERIOD_LABELS.items()],
                initial_option=_option(PeriodType.MONTHLY.value, _PERIOD_LABELS[PeriodType.MONTHLY]),
            ),
        ),
        InputBlock(
            block_id=Field.FY_START_MONTH,
            label="Financial year starts in",
            hint="Change it only when the company's financial year does not follow the calendar.",
            element=StaticSelectElement(action_id=Field.FY_START_MONTH, options=months, initial_option=months[0]),
        ),
        InputBlock(
            block_id=Field.RECONCILIATION_START,
            label="Reconcile from",
            hint="Vouchers and balances are fetched from this date.",
            element=DatePickerElement(
                action_id=Field.RECONCILIATION_START, initial_date=date(today.year, 1, 1).isoformat()
            ),
        ),
        InputBlock(
            block_id=Field.VAT_FREQUENCY,
            label="VAT reporting",
            element=StaticSelectElement(
                action_id=Field.VAT_FREQUENCY,
                options=[_option(key.value, label) for key, label in _VAT_LABELS.items()],
                initial_option=_option(VatFrequency.BIMONTHLY.value, _VAT_LABELS[VatFrequency.BIMONTHLY]),
            ),
        ),
        InputBlock(
            block_id=Field.RESPONSIBLE,
            label="Responsible for the reconciliation",
            element=UserSelectElement(action_id=Field.RESPONSIBLE, initial_user=requester),
        ),
        InputBlock(
            block_id=Field.CHANNEL,
            label="Team channel",
            optional=True,
            hint="Where its card and alerts go, for a team that looks after its own clients. Leave it empty for the "
            "firm's team channel. Invite the bot there first.",
            element=ConversationSelectElement(
                action_id=Field.CHANNEL,
                filter=ConversationFilter(include=["public", "private"], exclude_bot_users=True),
            ),
        ),
        InputBlock(
            block_id=Field.MODULES,
            label="Modules",
            optional=True,
            element=CheckboxesElement(
                action_id=Field.MODULES,
                options=[_option(key.value, label) for key, label in _MODULE_LABELS.items()],
            ),
        ),
        InputBlock(
            block_id=Field.COMMENT,
            label="Internal comment",
            optional=True,
            element=PlainTextInputElement(action_id=Field.COMMENT, multiline=True, max_length=1000),
        ),
    ]
    return View(
        type="modal",
        callback_id=Step.SETTINGS,
        title=TITLE,
        submit="Next",
        close="Back out",
        private_metadata=state.dump(),
        blocks=blocks,
    )


def approver_view(state: AddCompanyState) -> View:
    """Step 3: who at the client approves the connection."""
    blocks = [
        SectionBlock(text=MarkdownTextObject(text=_company_line(state))),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=APPROVER_NEEDS[state.company.system if state.company else AccountingSystem.EACCOUNTING]
                )
            ]
        ),
        *approver_inputs(),
    ]
    return View(
        type="modal",
        callback_id=Step.APPROVER,
        title=TITLE,
        submit="Send approval link",
        close="Back out",
        private_metadata=state.dump(),
        blocks=blocks,
    )


def approver_inputs() -> list[InputBlock]:
    """Who approves at the client: a person in Slack, or an e-mail (the modal's step 3, Change approver)."""
    return [
        InputBlock(
            block_id=Field.APPROVER_USER,
            label="Approver in Slack",
            optional=True,
            hint="They get the approval link by DM.",
            element=UserSelectElement(action_id=Field.APPROVER_USER),
        ),
        InputBlock(
            block_id=Field.APPROVER_EMAIL,
            label="…or the approver's e-mail",
            optional=True,
            hint="When they are not in Slack: you get the link to forward.",
            element=EmailInputElement(action_id=Field.APPROVER_EMAIL, placeholder="ola@nordlysbakeri.no"),
        ),
    ]


def _company_line(state: AddCompanyState) -> str:
    if state.company is None:
        return ""
    number = display(state.company.country, state.company.org_number)
    return f"*{escape(state.company.name)}* · {number} · {state.company.system.label}"


def existing_view(*, company_name: str, state: CompanyState, ref: ButtonRef) -> View:
    """Step 1 found the company already registered: say where it stands and offer what repairs it."""
    where = state.value.replace("_", " ")
    blocks: list[Any] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"*{escape(company_name)}* is already registered ({where}). Its card in the team channel "
                "shows where it stands."
            )
        )
    ]
    if state in (CompanyState.AWAITING_APPROVAL, CompanyState.PERMISSION_ERROR, CompanyState.DISCONNECTED):
        blocks += [
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text="If the approver never got the link, send a new one (earlier links stop working); "
                        "if someone else should approve, change the approver; or cancel the company."
                    )
                ]
            ),
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text="Resend link", action_id=CardAction.RESEND_LINK, value=ref.encode(), style="primary"
                    ),
                    ButtonElement(text="Change approver", action_id=CardAction.CHANGE_APPROVER, value=ref.encode()),
                    ButtonElement(text="Cancel company", action_id=CardAction.CANCEL, value=ref.encode()),
                ]
            ),
        ]
    return View(type="modal", title=TITLE, close="Close", blocks=blocks)
