"""What went wrong with a company's Visma access, in words its people can act on.

Classifies Visma's answers (eAccounting ErrorCodes, OAuth errors, a wrong company) into a Problem that says
what happened, who can fix it and how, and which button moves things on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Fix(StrEnum):
    """The one action that moves a problem on."""

    NEW_LINK = "new_link"
    RETRY = "retry"
    WAIT = "wait"


class ProblemKind(StrEnum):
    """Kinds of problem; each has one explanation."""

    WRONG_COMPANY = "wrong_company"
    NO_FULL_PERMISSION = "no_full_permission"
    NO_BOOKKEEPING = "no_bookkeeping"
    PRODUCT_VARIANT = "product_variant"
    SCOPE_MISSING = "scope_missing"
    NO_USER_ACCESS = "no_user_access"
    LICENCE_NOT_ACCEPTED = "licence_not_accepted"
    STARTUP_GUIDE = "startup_guide"
    COMPANY_INACTIVE = "company_inactive"
    CONSENT_REVOKED = "consent_revoked"
    RATE_LIMITED = "rate_limited"
    OUTAGE = "outage"
    UNKNOWN = "unknown"
    TENANT_NOT_APPROVED = "tenant_not_approved"
    CUSTOMER_TENANT = "customer_tenant"
    NO_LICENCE = "no_licence"
    NXT_NOT_ACTIVATED = "nxt_not_activated"
    NXT_SERVICE_REFUSED = "nxt_service_refused"
    ERP_NO_API_USER = "erp_no_api_user"
    WRONG_TENANT = "wrong_tenant"


@dataclass(frozen=True, slots=True)
class Problem:
    """A classified problem: what happened, who can fix it, the steps, and the fixing action.

    `what`, `who` and `steps` are mrkdwn templates written here; names that come from a person or from Visma
    stay in `values` and are put in by the renderer (escaped for Slack, plain for logs), never pasted in.
    """

    kind: ProblemKind
    what: str
    who: str
    steps: tuple[str, ...]
    fix: Fix
    code: str
    values: Mapping[str, str] = field(default_factory=dict)

    def plain(self, template: str) -> str:
        """A template with its values put in as they are and the emphasis dropped (logs, state reasons)."""
        return template.replace("*", "").format_map(dict(self.values))

    @property
    def summary(self) -> str:
        """What happened, as plain text."""
        return self.plain(self.what)

    def facts(self) -> dict[str, Any]:
        """The problem as plain JSON (an alert in the outbox keeps it to render and re-render)."""
        return {
            "kind": self.kind.value,
            "what": self.what,
            "who": self.who,
            "steps": list(self.steps),
            "fix": self.fix.value,
            "code": self.code,
            "values": dict(self.values),
        }

    @classmethod
    def from_facts(cls, facts: Mapping[str, Any]) -> Problem:
        """The problem back from `facts()`."""
        return cls(
            kind=ProblemKind(facts["kind"]),
            what=str(facts["what"]),
            who=str(facts["who"]),
            steps=tuple(str(step) for step in facts["steps"]),
            fix=Fix(facts["fix"]),
            code=str(facts["code"]),
            values={str(k): str(v) for k, v in dict(facts.get("values") or {}).items()},
        )

    @property
    def is_permission(self) -> bool:
        """Whether a person at the client must act (as opposed to waiting or retrying)."""
        return self.fix is Fix.NEW_LINK or self.kind in _PERSON_FIXES


_FULL = "someone with *full program permission* in {company} (Settings → Permissions in eAccounting)"

_EACCOUNTING: dict[int, tuple[ProblemKind, str, str, tuple[str, ...], Fix]] = {
    4007: (
        ProblemKind.NO_FULL_PERMISSION,
        "the user who approved does not have full program permission in the company",
        _FULL,
        (
            "In eAccounting open Settings → Permissions and give the approving user *Full* program "
            "permission, or let a user who has it approve instead.",
            "Press *Send new approval link* and have that person approve again.",
        ),
        Fix.NEW_LINK,
    ),
    4002: (
        ProblemKind.NO_BOOKKEEPING,
        "the company has no bookkeeping module in eAccounting, so its books cannot be read",
        "the company's administrator in eAccounting, or Visma if the subscription must change",
        (
            "Add the bookkeeping module to the company's eAccounting subscription.",
            "Press *Retry now* once it is active.",
        ),
        Fix.RETRY,
    ),
    4009: (
        ProblemKind.PRODUCT_VARIANT,
        "the company's eAccounting variant (e.g. Invoicing only) does not include bookkeeping",
        "the company's administrator in eAccounting, or Visma if the subscription must change",
        (
            "Upgrade the company to an eAccounting variant with bookkeeping.",
            "Press *Retry now* once it is active.",
        ),
        Fix.RETRY,
    ),
    4006: (
        ProblemKind.SCOPE_MISSING,
        "our access does not include reading the accounting data (a scope is missing)",
        _FULL,
        ("Press *Send new approval link* and approve all the access asked for.",),
        Fix.NEW_LINK,
    ),
    4011: (
        ProblemKind.NO_USER_ACCESS,
        "the user who approved no longer has access to the company",
        _FULL,
        (
            "Give the approving user access to the company again, or let another user with full program "
            "permission approve.",
            "Press *Send new approval link*.",
        ),
        Fix.NEW_LINK,
    ),
    4012: (
        ProblemKind.LICENCE_NOT_ACCEPTED,
        "the user who approved has not accepted eAccounting's licence agreement",
        "the approving user",
        ("Log in to eAccounting once in a browser and accept the licence agreement.", "Press *Retry now*."),
        Fix.RETRY,
    ),
    4003: (
        ProblemKind.STARTUP_GUIDE,
        "the company has not finished eAccounting's start-up guide, so its books cannot be read yet",
        "the company's administrator in eAccounting",
        ("Log in to eAccounting and complete the start-up guide for the company.", "Press *Retry now*."),
        Fix.RETRY,
    ),
    4004: (
        ProblemKind.COMPANY_INACTIVE,
        "the company is no longer active in eAccounting",
        "the company's administrator in eAccounting, or Visma if the subscription has ended",
        (
            "Reactivate the company's eAccounting subscription, or deactivate the company here if it has left.",
            "Press *Retry now* once it is active.",
        ),
        Fix.RETRY,
    ),
}

_PERSON_FIXES = {
    ProblemKind.NO_BOOKKEEPING,
    ProblemKind.PRODUCT_VARIANT,
    ProblemKind.LICENCE_NOT_ACCEPTED,
    ProblemKind.STARTUP_GUIDE,
    ProblemKind.COMPANY_INACTIVE,
    ProblemKind.NO_LICENCE,
}


def from_eaccounting(*, status: int, error_code: int | None, company: str) -> Problem:
    """Classify an eAccounting API error answer."""
    if error_code in _EACCOUNTING:
        kind, what, who, steps, fix = _EACCOUNTING[error_code]
        return Problem(kind, what, who, steps, fix, f"eAccounting {error_code}", {"company": company})
    if status == 401:
        return consent_revoked(company=company, code="eAccounting 401")
    if status == 429 or error_code == 4010:
        return Problem(
            ProblemKind.RATE_LIMITED,
            "Visma asked us to slow down (600 requests a minute)",
            "nobody: the bot retries by itself",
            ("Nothing to do; the next sync continues from where this one stopped.",),
            Fix.WAIT,
            "eAccounting 4010",
        )
    if status >= 500:
        return Problem(
            ProblemKind.OUTAGE,
            f"Visma eAccounting answered {status}",
            "nobody at the client: Visma is having trouble",
            ("Nothing to do unless it lasts; the bot retries on its own schedule.",),
            Fix.WAIT,
            f"eAccounting {error_code or status}",
        )
    return Problem(
        ProblemKind.UNKNOWN,
        f"Visma eAccounting refused the request (HTTP {status}, code {error_code})",
        "our team: this is unexpected",
        ("Press *Retry now*; if it happens again, check the bot's log for the error id.",),
        Fix.RETRY,
        f"eAccounting {error_code or status}",
    )


def consent_revoked(*, company: str, code: str = "invalid_grant") -> Problem:
    """The approval was withdrawn or the refresh token has expired."""
    return Problem(
        ProblemKind.CONSENT_REVOKED,
        "our access was withdrawn in Visma or has expired",
        _FULL,
        ("Press *Send new approval link* and approve the connection again.",),
        Fix.NEW_LINK,
        code,
        {"company": company},
    )


def not_a_tenant_id() -> Problem:
    """What the approver typed is not a Tenant ID (a UUID)."""
    return Problem(
        ProblemKind.UNKNOWN,
        "that is not a Tenant ID: a Tenant ID looks like 8bdf18fd-21cc-11e9-b307-0aa512338dd6",
        "the client's administrator",
        (
            "In the Visma App Store (appstore.visma.net), click the company menu at the top right (the name or flag).",
            "Copy the whole Tenant ID shown under the company name and paste it here.",
        ),
        Fix.RETRY,
        "not a tenant id",
    )


def wrong_company(*, asked_for: str, got_name: str, got_number: str) -> Problem:
    """The approver connected another company than the one asked for (the default-company pitfall)."""
    return Problem(
        ProblemKind.WRONG_COMPANY,
        "the approver connected *{got_name}* ({got_number}) instead of *{asked_for}*. Visma picks the "
        "user's *default company* without asking",
        "the approver",
        (
            "In Visma eAccounting open the menu at the top right → *Choose company* → *Choose default "
            "company* and clear the default (the blue star).",
            "Open the approval link again (or press *Send new approval link*) and pick the right company.",
        ),
        Fix.NEW_LINK,
        "wrong company",
        {"got_name": got_name, "got_number": got_number, "asked_for": asked_for},
    )


_NXT_ADMIN = (
    "the client's *system administrator* in Visma Business NXT (roles Application access and System supervisor)"
)
# Status names of Business NXT errors that pass by themselves (the sync retries them).
_NXT_PASSING = {"InternalError", "Timeout", "CompanyUnavailable", "ServiceUnavailable"}


def from_business_nxt(*, status_name: str | None, status: int, company: str, client_id: str = "") -> Problem:
    """Classify a Business NXT answer: an error inside HTTP 200 (by its status_name) or the HTTP status."""
    if status_name == "AccessDenied":
        # The service can get a token, but NXT lets it into a company only after the client's system
        # administrator has mapped our client_id to an NXT user and given it an access row for that company.
        return Problem(
            ProblemKind.NXT_NOT_ACTIVATED,
            "our integration is not activated for {company} in Visma Business NXT",
            _NXT_ADMIN,
            (
                "In Business NXT open the *User* table, show the *Connect application* column and add a user "
                "named exactly `{client_id}` with *Connect application* ticked; save.",
                "Open the *Connect Application Access* table and add one row for that user per company to "
                "share, with the company's number in *Column no.* and an access group that may read the "
                "general ledger; save.",
                "Press *Send new approval link* if the approval page is gone, then *Check again* on it.",
            ),
            Fix.NEW_LINK,
            "NXT AccessDenied",
            {"company": company, "client_id": client_id or "our client ID"},
        )
    if status == 401 or status_name in {"invalid_client", "Unauthorized"}:
        return Problem(
            ProblemKind.NXT_SERVICE_REFUSED,
            "Visma Business NXT refused our service token while reading {company}",
            "our team: the firm's app registration in the Visma Developer Portal",
            (
                "Check that the Business NXT GraphQL integration (read-only service scope) of our app is approved "
                "in the Visma Developer Portal and that the client ID and secret in the settings are current.",
                "Press *Retry now* once it is fixed.",
            ),
            Fix.RETRY,
            f"NXT {status_name or status}",
            {"company": company},
        )
    if status >= 500 or status_name in _NXT_PASSING:
        return Problem(
            ProblemKind.OUTAGE,
            f"Visma Business NXT answered {status_name or status}",
            "nobody at the client: Visma is having trouble",
            ("Nothing to do unless it lasts; the bot retries on its own schedule.",),
            Fix.WAIT,
            f"NXT {status_name or status}",
        )
    return Problem(
        ProblemKind.UNKNOWN,
        f"Visma Business NXT refused the request ({status_name or f'HTTP {status}'})",
        "our team: this is unexpected",
        ("Press *Retry now*; if it happens again, check the bot's log.",),
        Fix.RETRY,
        f"NXT {status_name or status}",
    )


# ----------------------------------------------------------------------------------------------- Visma.net

_VNET_ADMIN = "the client's *Customer administrator* in Visma.net (who gives users their roles) for {company}"
_VNET_ROLES = (
    "In Visma.net Admin (signin.visma.net → Visma.net Financials → *Admin* → *Users and roles*) the Customer "
    "administrator opens the user who will integrate our app and, on the row of the company, gives the role "
    "*Integration Administrator* in the *App Store* column and *API User* under the ERP (*Add access* first if "
    "the company is not listed), then *Save and close*. It can take 10–15 minutes before Visma sees it."
)
_VNET_LINK = (
    "Open the approval link (or press *Send new approval link*) and enter the company's Tenant ID: in the App "
    "Store, the company menu at the top right shows it under the company's name."
)

_VISMA_NET: dict[str, tuple[ProblemKind, str, str, tuple[str, ...], Fix]] = {
    "invalid_tenant": (
        ProblemKind.TENANT_NOT_APPROVED,
        "Visma Connect will not let us into the company (invalid_tenant): our app is not integrated for it in "
        "the Visma App Store (each company on its own, a company created later too), or the user who "
        "integrated it lacks the *API User* role",
        _VNET_ADMIN,
        (
            _VNET_ROLES,
            "That user signs in at appstore.visma.net, finds our app under *Apps*, presses *Integrate*, turns on "
            "the read scope and accepts.",
            _VNET_LINK,
        ),
        Fix.NEW_LINK,
    ),
    "401": (
        ProblemKind.CUSTOMER_TENANT,
        "the Tenant ID we were given is the Visma *customer's*, not the company's: Visma gives us a token, but "
        "the ERP refuses every request with it (HTTP 401)",
        "the client's *Integration Administrator* in Visma.net for {company}",
        (
            "In the Visma App Store open the company menu at the top right, choose *Change organization* and pick "
            "the company itself (not the customer above it); its Tenant ID is under its name. In Visma.net Admin "
            "it is under Company → the company → Edit → Configuration → *Tenant id*.",
            "Open the approval link (or press *Send new approval link*) and enter that Tenant ID.",
        ),
        Fix.NEW_LINK,
    ),
    "403": (
        ProblemKind.SCOPE_MISSING,
        "our app's read access was switched off for the company in the Visma App Store",
        "the client's *Integration Administrator* in Visma.net for {company}",
        (
            "In the Visma App Store open *My apps*, press *Manage* on our integration and turn the read scope on.",
            "Open the approval link (or press *Send new approval link*) to check the access again.",
        ),
        Fix.NEW_LINK,
    ),
    "12027": (
        ProblemKind.NO_LICENCE,
        "Visma.net answers *No license for this company* (IPPException 12027): the company's Visma.net "
        "Financials licence has expired, or the integrating user lacks *API User*, or the Tenant ID is the "
        "customer's",
        "the client's *Customer administrator* in Visma.net for {company}, or Visma if the licence has ended",
        (
            "Check with Visma that the company's Visma.net Financials subscription is active.",
            _VNET_ROLES,
            "Press *Retry now* once it is fixed.",
        ),
        Fix.RETRY,
    ),
}


def from_visma_net(*, status: int, code: str | None, company: str) -> Problem:
    """Classify a Visma.net answer: a Visma Connect error code, an IPP fault code, or an HTTP status."""
    # Visma's own code first (an OAuth error, an IPP fault code); the HTTP status only when it said nothing more.
    key = code if code in _VISMA_NET else str(status) if code in {None, str(status)} else None
    key = key if key in _VISMA_NET else None
    if key is not None:
        kind, what, who, steps, fix = _VISMA_NET[key]
        return Problem(kind, what, who, steps, fix, f"Visma.net {key}", {"company": company})
    if code == "invalid_grant":
        return consent_revoked(company=company, code="Visma.net invalid_grant")
    if code in {"invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type"}:
        return Problem(
            ProblemKind.UNKNOWN,
            f"Visma Connect refused the firm's own app registration ({code})",
            "our team: the app's client id, secret or scopes in the Visma Developer Portal",
            ("Check the Visma.net client settings of the bot, then press *Retry now*.",),
            Fix.RETRY,
            f"Visma.net {code}",
        )
    if status == 429 or code == "429":
        return Problem(
            ProblemKind.RATE_LIMITED,
            "Visma.net's hourly request limit for the company is used up",
            "nobody: the bot waits for the next hour by itself",
            ("Nothing to do; the next sync continues from where this one stopped.",),
            Fix.WAIT,
            "Visma.net 429",
        )
    if status >= 500 or status == 0:
        return Problem(
            ProblemKind.OUTAGE,
            f"Visma.net did not answer properly (HTTP {status})" if status else "Visma Connect did not answer",
            "nobody at the client: Visma is having trouble",
            ("Nothing to do unless it lasts; the bot retries on its own schedule.",),
            Fix.WAIT,
            f"Visma.net {code or status}",
        )
    return Problem(
        ProblemKind.UNKNOWN,
        "Visma.net refused the request (HTTP {status}, code {code})",
        "our team: this is unexpected",
        ("Press *Retry now*; if it happens again, check the bot's log.",),
        Fix.RETRY,
        f"Visma.net {code or status}",
        {"status": str(status), "code": str(code)},
    )


# ----------------------------------------------------------------------------------------------- Visma ERP

_ERP_APPROVER = "the approver at {company} (a Visma.net user with the *API User* role in the company)"
_ERP_AGAIN = "Open the approval link again (or press *Send new approval link*) and sign in to Visma once more."

_VISMA_ERP: dict[str, tuple[ProblemKind, str, str, tuple[str, ...], Fix]] = {
    "invalid_tenant": (
        ProblemKind.ERP_NO_API_USER,
        "Visma Connect refused the sign-in for the company picked (invalid_tenant): the user who approved does "
        "not have the *API User* role in it",
        "the client's *Customer administrator* in Visma.net for {company}",
        (
            "In Visma.net Admin (*Users and roles*) give the approving user *API User* under the ERP on the "
            "company's row, then *Save and close*. It can take 10–15 minutes before Visma sees it.",
            _ERP_AGAIN,
        ),
        Fix.NEW_LINK,
    ),
    "401": (
        ProblemKind.CUSTOMER_TENANT,
        "the approver picked the Visma *customer* (the contract) instead of the company when signing in: Visma "
        "gives us a token, but the ERP refuses every request with it (HTTP 401)",
        _ERP_APPROVER,
        (
            "Open the approval link again and, on Visma's *Choose organisation* page, pick the company itself, "
            "not the customer above it (shown with *(customer)*).",
        ),
        Fix.NEW_LINK,
    ),
    "403": (
        ProblemKind.SCOPE_MISSING,
        "our access does not include reading the company's books: the read permission was not granted",
        _ERP_APPROVER,
        (_ERP_AGAIN + " On Visma's *Allow access* page leave every permission ticked before accepting.",),
        Fix.NEW_LINK,
    ),
    "scope_missing": (
        ProblemKind.SCOPE_MISSING,
        "the approver did not grant everything asked for: {missing} is missing",
        _ERP_APPROVER,
        (_ERP_AGAIN + " On Visma's *Allow access* page leave every permission ticked before accepting.",),
        Fix.NEW_LINK,
    ),
    "wrong_tenant": (
        ProblemKind.WRONG_TENANT,
        "the approver signed in to another Visma organisation (Tenant ID {got}) than the one asked for "
        "(Tenant ID {asked})",
        _ERP_APPROVER,
        (
            "Open the approval link again and, on Visma's *Choose organisation* page, pick the company whose "
            "Tenant ID is {asked} (the App Store's company menu shows each company's Tenant ID).",
        ),
        Fix.NEW_LINK,
    ),
    "invalid_grant": (
        ProblemKind.CONSENT_REVOKED,
        "our access was withdrawn in Visma or has expired (Visma Connect refused the refresh token)",
        _ERP_APPROVER,
        (_ERP_AGAIN,),
        Fix.NEW_LINK,
    ),
    "12027": (
        ProblemKind.NO_LICENCE,
        "Visma.net answers *No license for this company* (IPPException 12027): the company's licence has "
        "expired, or the approving user lacks *API User*",
        "the client's *Customer administrator* in Visma.net for {company}, or Visma if the licence has ended",
        (
            "Check with Visma that the company's subscription is active, and that the approving user has *API "
            "User* in the company (Visma.net Admin → *Users and roles*).",
            "Press *Retry now* once it is fixed.",
        ),
        Fix.RETRY,
    ),
}


def from_visma_erp(
    *, status: int, code: str | None, company: str, missing: str = "", got: str = "", asked: str = ""
) -> Problem:
    """Classify a Visma ERP answer (a consent-based Visma.net ERP connection): the failures of its consent in its
    own words, the rest as Visma.net's (`missing`: scopes not granted; `got`/`asked`: the tenants)."""
    key = code if code in _VISMA_ERP else str(status) if code in {None, str(status)} else None
    if key in _VISMA_ERP:
        kind, what, who, steps, fix = _VISMA_ERP[key]
        values = {"company": company, "missing": missing, "got": got, "asked": asked}
        return Problem(kind, what, who, steps, fix, f"Visma ERP {key}", values)
    problem = from_visma_net(status=status, code=code, company=company)
    return Problem(
        problem.kind,
        problem.what.replace("Visma.net", "Visma ERP"),
        problem.who,
        problem.steps,
        problem.fix,
        problem.code.replace("Visma.net", "Visma ERP", 1),
        problem.values,
    )
