"""IDs of the /addcompany modal: its three steps and each field (block id and action id alike)."""

from enum import StrEnum

COMMAND = "/addcompany"


class Step(StrEnum):
    """The modal's callback ids, one per step."""

    COMPANY = "addcompany_company"
    SETTINGS = "addcompany_settings"
    APPROVER = "addcompany_approver"


class Field(StrEnum):
    """Input fields; each value is both the block id and the element's action id."""

    SYSTEM = "system"
    NAME = "company_name"
    COUNTRY = "country"
    ORG_NUMBER = "org_number"
    TENANT_ID = "tenant_id"
    NXT_COMPANY = "nxt_company"
    API_VERSION = "api_version"
    ERP_SCOPES = "erp_scopes"
    PERIOD_TYPE = "period_type"
    FY_START_MONTH = "fy_start_month"
    RECONCILIATION_START = "reconciliation_start"
    VAT_FREQUENCY = "vat_frequency"
    RESPONSIBLE = "responsible_user"
    MODULES = "modules"
    COMMENT = "comment"
    CHANNEL = "team_channel"
    APPROVER_USER = "approver_user"
    APPROVER_EMAIL = "approver_email"
