from datetime import date

from bot.domain.types import AccountingSystem, Country
from commands.addcompany import parse
from commands.addcompany.ids import Field


def _values(**fields):
    values = {}
    for name, element in fields.items():
        field = Field[name.upper()]
        values[field.value] = {field.value: element}
    return values


def _select(value):
    return {"type": "static_select", "selected_option": {"value": value}}


def _text(value):
    return {"type": "plain_text_input", "value": value}


def test_company_step_accepts_a_valid_company():
    step, errors = parse.company_step(
        _values(
            system=_select("eaccounting"),
            name=_text("  Nordlys   Bakeri AS "),
            country=_select("NO"),
            org_number=_text("988 077 917"),
        )
    )
    assert errors == {}
    assert step is not None
    assert (step.system, step.name, step.country, step.org_number) == (
        AccountingSystem.EACCOUNTING,
        "Nordlys Bakeri AS",
        Country.NO,
        "988077917",
    )


def test_company_step_reports_every_bad_field_under_its_own_block():
    step, errors = parse.company_step(
        _values(system=_select("visma_erp"), name=_text("X"), country=_select("NO"), org_number=_text("988077918")),
        offered=(AccountingSystem.EACCOUNTING,),
    )
    assert step is None
    assert set(errors) == {Field.SYSTEM, Field.NAME, Field.ORG_NUMBER}
    assert "not set up for this firm" in errors[Field.SYSTEM]
    assert "check digit" in errors[Field.ORG_NUMBER]


def test_a_visma_net_tenant_id_is_checked_inline_or_left_to_the_approver():
    base = {"system": _select("visma_net"), "name": _text("Fjord Fisk AS"), "org_number": _text("988077917")}
    step, errors = parse.company_step(_values(**base, tenant_id=_text("not-a-uuid")))
    assert step is None
    assert "Tenant ID looks like" in errors[Field.TENANT_ID]
    step, _ = parse.company_step(_values(**base, tenant_id=_text(" 3FA85F64-5717-4562-B3FC-2C963F66AFA6 ")))
    assert step is not None
    assert step.external_id == "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    step, _ = parse.company_step(_values(**base))
    assert step is not None
    assert step.external_id is None


def test_settings_step_refuses_a_future_start_and_needs_a_responsible_user():
    step, errors = parse.settings_step(
        _values(reconciliation_start={"selected_date": "2031-01-01"}), today=date(2026, 11, 25)
    )
    assert step is None
    assert "future" in errors[Field.RECONCILIATION_START]
    assert Field.RESPONSIBLE in errors


def test_settings_step_reads_all_fields():
    step, errors = parse.settings_step(
        _values(
            period_type=_select("quarterly"),
            fy_start_month=_select("7"),
            reconciliation_start={"selected_date": "2026-01-01"},
            vat_frequency=_select("monthly"),
            responsible={"selected_user": "U0KARI"},
            modules={"selected_options": [{"value": "payroll"}, {"value": "vat"}]},
            comment=_text("Bakery, two shops"),
        ),
        today=date(2026, 11, 25),
    )
    assert errors == {}
    assert step is not None
    assert step.fiscal_year_start_month == 7
    assert step.modules == ["payroll", "vat"]
    assert step.responsible_user_id == "U0KARI"
    assert step.comment == "Bakery, two shops"


def test_approver_step_needs_a_slack_user_or_a_valid_email():
    assert parse.approver_step({})[1] == {Field.APPROVER_USER: parse.approver_step({})[1][Field.APPROVER_USER]}
    _, errors = parse.approver_step(_values(approver_email=_text("not-an-email")))
    assert Field.APPROVER_EMAIL in errors
    (user, email), errors = parse.approver_step(_values(approver_email=_text("Ola@NordlysBakeri.no")))
    assert (user, email, errors) == (None, "ola@nordlysbakeri.no", {})
    (user, email), errors = parse.approver_step(_values(approver_user={"selected_user": "U0OLA"}))
    assert (user, email, errors) == ("U0OLA", None, {})
