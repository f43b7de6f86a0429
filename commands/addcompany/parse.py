"""Reading each step's submitted values into typed data, or into inline errors keyed by block id."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection
from datetime import date
from typing import Any

from bot.domain.orgnumber import InvalidOrgNumber, normalise
from bot.domain.types import AccountingSystem, Country, Module, PeriodType, VatFrequency
from bot.services.companies import CompanyIdentity, ReconciliationSettings
from commands.addcompany.ids import Field

Values = dict[str, dict[str, dict[str, Any]]]
Errors = dict[str, str]

# Good enough to catch typos; the approver's inbox is the real check.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EARLIEST_START = date(2000, 1, 1)


# A public or private channel's id (a DM starts with D, a person with U or W).
_CHANNEL = re.compile(r"[CG][A-Z0-9]{2,}")


def _element(values: Values, field: Field) -> dict[str, Any]:
    return values.get(field.value, {}).get(field.value, {})


def _text(values: Values, field: Field) -> str:
    return str(_element(values, field).get("value") or "").strip()


def _selected(values: Values, field: Field) -> str | None:
    option = _element(values, field).get("selected_option")
    return str(option["value"]) if option else None


def selected_system(values: Values) -> AccountingSystem | None:
    """The accounting system picked in step 1, if any."""
    raw = _selected(values, Field.SYSTEM)
    try:
        return AccountingSystem(raw) if raw else None
    except ValueError:
        return None


def company_step(
    values: Values, *, offered: Collection[AccountingSystem] = tuple(AccountingSystem)
) -> tuple[CompanyIdentity | None, Errors]:
    """Step 1 values, or errors for each field that is wrong (`offered`: the systems this firm has set up)."""
    errors: Errors = {}
    system = selected_system(values)
    if system is None:
        errors[Field.SYSTEM] = "Choose the company's accounting system."
    elif not system.available:
        errors[Field.SYSTEM] = f"{system.label} is not available yet."
    elif system not in offered:
        errors[Field.SYSTEM] = f"{system.label} is not set up for this firm yet: see README, Configuration."
    name = " ".join(_text(values, Field.NAME).split())
    if len(name) < 2:
        errors[Field.NAME] = "Enter the company's name as registered."
    country = Country(_selected(values, Field.COUNTRY) or Country.NO.value)
    org_number = ""
    try:
        org_number = normalise(country, _text(values, Field.ORG_NUMBER))
    except InvalidOrgNumber as exc:
        errors[Field.ORG_NUMBER] = str(exc)
    tenant = _text(values, Field.TENANT_ID)
    external_id = None
    if system in (AccountingSystem.VISMA_NET, AccountingSystem.VISMA_ERP) and tenant:
        try:
            external_id = str(uuid.UUID(tenant))
        except ValueError:
            errors[Field.TENANT_ID] = (
                "A Tenant ID looks like 3fa85f64-5717-4562-b3fc-2c963f66afa6: copy it from the company menu in "
                "the Visma App Store, or leave it empty for the approver."
            )
    if system is AccountingSystem.BUSINESS_NXT:
        picked = _selected(values, Field.NXT_COMPANY)
        external_id = picked if picked and picked.isdigit() else None
    options: dict[str, Any] = {}
    if system is AccountingSystem.VISMA_ERP:
        version = _selected(values, Field.API_VERSION) or "v2"
        extra = [str(option["value"]) for option in _element(values, Field.ERP_SCOPES).get("selected_options") or []]
        options = {"api_version": version if version in ("v1", "v2") else "v2", "scopes": extra}
    if errors or system is None:
        return None, errors
    identity = CompanyIdentity(
        system=system, name=name, country=country, org_number=org_number, external_id=external_id, options=options
    )
    return identity, {}


def settings_step(values: Values, *, today: date) -> tuple[ReconciliationSettings | None, Errors]:
    """Step 2 values, or errors for each field that is wrong."""
    errors: Errors = {}
    raw_start = _element(values, Field.RECONCILIATION_START).get("selected_date")
    start = date.fromisoformat(raw_start) if raw_start else None
    if start is None:
        errors[Field.RECONCILIATION_START] = "Choose the date to reconcile from."
    elif start > today:
        errors[Field.RECONCILIATION_START] = "The start date cannot be in the future."
    elif start < EARLIEST_START:
        errors[Field.RECONCILIATION_START] = "Choose a date in 2000 or later."
    responsible = _element(values, Field.RESPONSIBLE).get("selected_user")
    if not responsible:
        errors[Field.RESPONSIBLE] = "Choose who is responsible for the reconciliation."
    modules = [str(option["value"]) for option in _element(values, Field.MODULES).get("selected_options") or []]
    channel = _element(values, Field.CHANNEL).get("selected_conversation")
    if channel is not None and not _CHANNEL.fullmatch(str(channel)):
        errors[Field.CHANNEL] = "Choose a channel (not a person or a direct message), or leave it empty."
    if errors or start is None:
        return None, errors
    return (
        ReconciliationSettings(
            period_type=PeriodType(_selected(values, Field.PERIOD_TYPE) or PeriodType.MONTHLY).value,
            fiscal_year_start_month=int(_selected(values, Field.FY_START_MONTH) or 1),
            reconciliation_start=start,
            vat_frequency=VatFrequency(_selected(values, Field.VAT_FREQUENCY) or VatFrequency.BIMONTHLY).value,
            responsible_user_id=str(responsible),
            modules=[Module(module).value for module in modules],
            comment=_text(values, Field.COMMENT) or None,
            channel=str(channel) if channel else None,
        ),
        {},
    )


def approver_step(values: Values) -> tuple[tuple[str | None, str | None], Errors]:
    """Step 3: (Slack user id, e-mail); exactly one way to reach the approver is needed."""
    user = _element(values, Field.APPROVER_USER).get("selected_user")
    email = _text(values, Field.APPROVER_EMAIL).lower()
    if email and not _EMAIL.match(email):
        return (None, None), {Field.APPROVER_EMAIL: "That does not look like an e-mail address."}
    if not user and not email:
        return (None, None), {Field.APPROVER_USER: "Choose the approver in Slack, or enter their e-mail below."}
    return (str(user) if user else None, None if user else email), {}
