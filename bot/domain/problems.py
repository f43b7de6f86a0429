"""What went wrong with a company's Visma access, in words its people can act on.

Classifies Visma's answers (eAccounting ErrorCodes, OAuth errors, a wrong company) into a Problem that says
what happened, who can fix it and how, and which button moves things on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from bot.i18n import N_, Language, lookup


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

    `what`, `who` and `steps` are mrkdwn templates written here, in English; names that come from a person or
    from Visma stay in `values` and are put in by the renderer (escaped for Slack, plain for logs), never pasted
    in. The English templates are also the keys of their translations (bot/i18n): `text`, `plain` and
    `in_language` give them in Norwegian or Swedish, a Problem read back from the outbox included.
    """

    kind: ProblemKind
    what: str
    who: str
    steps: tuple[str, ...]
    fix: Fix
    code: str
    values: Mapping[str, str] = field(default_factory=dict)

    def text(self, template: str, language: Language = Language.EN) -> str:
        """One of this problem's templates (`what`, `who` or a step) in a language, its `{values}` and
        *emphasis* still in: for `fill` (Slack) or `plain`."""
        return lookup(language, template)

    def plain(self, template: str, language: Language = Language.EN) -> str:
        """A template in a language (English unless told), with its values put in as they are and the emphasis
        dropped (pages, logs, state reasons)."""
        return self.text(template, language).replace("*", "").format_map(dict(self.values))

    def in_language(self, language: Language) -> Problem:
        """The same problem with `what`, `who` and `steps` in a language, for drawing it (`fill(p.what,
        p.values)` as before). Store and compare the English one: its templates are the translations' keys."""
        if language is Language.EN:
            return self
        return replace(
            self,
            what=self.text(self.what, language),
            who=self.text(self.who, language),
            steps=tuple(self.text(step, language) for step in self.steps),
        )

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


_FULL = N_("someone with *full program permission* in {company} (Settings → Permissions in eAccounting)")

_EACCOUNTING: dict[int, tuple[ProblemKind, str, str, tuple[str, ...], Fix]] = {
    4007: (
        ProblemKind.NO_FULL_PERMISSION,
        N_("the user who approved does not have full program permission in the company"),
        _FULL,
        (
            N_(
                "In eAccounting open Settings → Permissions and give the approving user *Full* program "
                "permission, or let a user who has it approve instead."
            ),
            N_("Press *Send new approval link* and have that person approve again."),
        ),
        Fix.NEW_LINK,
    ),
    4002: (
        ProblemKind.NO_BOOKKEEPING,
        N_("the company has no bookkeeping module in eAccounting, so its books cannot be read"),
        N_("the company's administrator in eAccounting, or Visma if the subscription must change"),
        (
            N_("Add the bookkeeping module to the company's eAccounting subscription."),
            N_("Press *Retry now* once it is active."),
        ),
        Fix.RETRY,
    ),
    4009: (
        ProblemKind.PRODUCT_VARIANT,
        N_("the company's eAccounting variant (e.g. Invoicing only) does not include bookkeeping"),
        N_("the company's administrator in eAccounting, or Visma if the subscription must change"),
        (
            N_("Upgrade the company to an eAccounting variant with bookkeeping."),
            N_("Press *Retry now* once it is active."),
        ),
        Fix.RETRY,
    ),
    4006: (
        ProblemKind.SCOPE_MISSING,
        N_("our access does not include reading the accounting data (a scope is missing)"),
        _FULL,
        (N_("Press *Send new approval link* and approve all the access asked for."),),
        Fix.NEW_LINK,
    ),
    4011: (
        ProblemKind.NO_USER_ACCESS,
        N_("the user who approved no longer has access to the company"),
        _FULL,
        (
            N_(
                "Give the approving user access to the company again, or let another user with full program "
                "permission approve."
            ),
            N_("Press *Send new approval link*."),
        ),
        Fix.NEW_LINK,
    ),
    4012: (
        ProblemKind.LICENCE_NOT_ACCEPTED,
        N_("the user who approved has not accepted eAccounting's licence agreement"),
        N_("the approving user"),
        (
            N_("Log in to eAccounting once in a browser and accept the licence agreement."),
            N_("Press *Retry now*."),
        ),
        Fix.RETRY,
    ),
    4003: (
        ProblemKind.STARTUP_GUIDE,
        N_("the company has not finished eAccounting's start-up guide, so its books cannot be read yet"),
        N_("the company's administrator in eAccounting"),
        (
            N_("Log in to eAccounting and complete the start-up guide for the company."),
            N_("Press *Retry now*."),
        ),
        Fix.RETRY,
    ),
    4004: (
        ProblemKind.COMPANY_INACTIVE,
        N_("the company is no longer active in eAccounting"),
        N_("the company's administrator in eAccounting, or Visma if the subscription has ended"),
        (
            N_("Reactivate the company's eAccounting subscription, or deactivate the company here if it has left."),
            N_("Press *Retry now* once it is active."),
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

_NOBODY_AT_CLIENT = N_("nobody at the client: Visma is having trouble")
_WAIT_FOR_IT = N_("Nothing to do unless it lasts; the bot retries on its own schedule.")
_UNEXPECTED = N_("our team: this is unexpected")
_CONTINUES = N_("Nothing to do; the next sync continues from where this one stopped.")


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
            N_("Visma asked us to slow down (600 requests a minute)"),
            N_("nobody: the bot retries by itself"),
            (_CONTINUES,),
            Fix.WAIT,
            "eAccounting 4010",
        )
    if status >= 500:
        return Problem(
            ProblemKind.OUTAGE,
            N_("Visma eAccounting answered {status}"),
            _NOBODY_AT_CLIENT,
            (_WAIT_FOR_IT,),
            Fix.WAIT,
            f"eAccounting {error_code or status}",
            {"status": str(status)},
        )
    return Problem(
        ProblemKind.UNKNOWN,
        N_("Visma eAccounting refused the request (HTTP {status}, code {code})"),
        _UNEXPECTED,
        (N_("Press *Retry now*; if it happens again, check the bot's log for the error id."),),
        Fix.RETRY,
        f"eAccounting {error_code or status}",
        {"status": str(status), "code": str(error_code)},
    )


def consent_revoked(*, company: str, code: str = "invalid_grant") -> Problem:
    """The approval was withdrawn or the refresh token has expired."""
    return Problem(
        ProblemKind.CONSENT_REVOKED,
        N_("our access was withdrawn in Visma or has expired"),
        _FULL,
        (N_("Press *Send new approval link* and approve the connection again."),),
        Fix.NEW_LINK,
        code,
        {"company": company},
    )


def not_a_tenant_id() -> Problem:
    """What the approver typed is not a Tenant ID (a UUID)."""
    return Problem(
        ProblemKind.UNKNOWN,
        N_("that is not a Tenant ID: a Tenant ID looks like 8bdf18fd-21cc-11e9-b307-0aa512338dd6"),
        N_("the client's administrator"),
        (
            N_(
                "In the Visma App Store (appstore.visma.net), click the company menu at the top right (the name or "
                "flag)."
            ),
            N_("Copy the whole Tenant ID shown under the company name and paste it here."),
        ),
        Fix.RETRY,
        "not a tenant id",
    )


def wrong_company(*, asked_for: str, got_name: str, got_number: str) -> Problem:
    """The approver connected another company than the one asked for (the default-company pitfall)."""
    return Problem(
        ProblemKind.WRONG_COMPANY,
        N_(
            "the approver connected *{got_name}* ({got_number}) instead of *{asked_for}*. Visma picks the "
            "user's *default company* without asking"
        ),
        N_("the approver"),
        (
            N_(
                "In Visma eAccounting open the menu at the top right → *Choose company* → *Choose default "
                "company* and clear the default (the blue star)."
            ),
            N_("Open the approval link again (or press *Send new approval link*) and pick the right company."),
        ),
        Fix.NEW_LINK,
        "wrong company",
        {"got_name": got_name, "got_number": got_number, "asked_for": asked_for},
    )


def another_company(*, asked_for: str, got_name: str, got_number: str) -> Problem:
    """The approver picked another company than the one asked for in a system without a default company (Visma
    ERP): most often the right one was not in their list, because they have no access to it yet."""
    return Problem(
        ProblemKind.WRONG_COMPANY,
        N_("the approver picked *{got_name}* ({got_number}) instead of *{asked_for}*"),
        N_(
            "the approver, and, if *{asked_for}* is not in their list of companies, its *Customer administrator* "
            "in Visma.net"
        ),
        (
            N_(
                "If *{asked_for}* is not in the approver's list, its Customer administrator gives them access in "
                "Visma.net (*Add access*, with the *API User* role) first."
            ),
            N_("Open the approval link again (or press *Send new approval link*) and pick *{asked_for}*."),
        ),
        Fix.NEW_LINK,
        "another company",
        {"got_name": got_name, "got_number": got_number, "asked_for": asked_for},
    )


_NXT_ADMIN = N_(
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
            N_("our integration is not activated for {company} in Visma Business NXT"),
            _NXT_ADMIN,
            (
                N_(
                    "In Business NXT open the *User* table, show the *Connect application* column and add a user "
                    "named exactly `{client_id}` with *Connect application* ticked; save."
                ),
                N_(
                    "Open the *Connect Application Access* table and add one row for that user per company to "
                    "share, with the company's number in *Column no.* and an access group that may read the "
                    "general ledger; save."
                ),
                N_("Press *Send new approval link* if the approval page is gone, then *Check again* on it."),
            ),
            Fix.NEW_LINK,
            "NXT AccessDenied",
            {"company": company, "client_id": client_id or "our client ID"},
        )
    if status == 401 or status_name in {"invalid_client", "Unauthorized"}:
        return Problem(
            ProblemKind.NXT_SERVICE_REFUSED,
            N_("Visma Business NXT refused our service token while reading {company}"),
            N_("our team: the firm's app registration in the Visma Developer Portal"),
            (
                N_(
                    "Check that the Business NXT GraphQL integration (read-only service scope) of our app is "
                    "approved in the Visma Developer Portal and that the client ID and secret in the settings are "
                    "current."
                ),
                N_("Press *Retry now* once it is fixed."),
            ),
            Fix.RETRY,
            f"NXT {status_name or status}",
            {"company": company},
        )
    if status >= 500 or status_name in _NXT_PASSING:
        return Problem(
            ProblemKind.OUTAGE,
            N_("Visma Business NXT answered {status}"),
            _NOBODY_AT_CLIENT,
            (_WAIT_FOR_IT,),
            Fix.WAIT,
            f"NXT {status_name or status}",
            {"status": str(status_name or status)},
        )
    return Problem(
        ProblemKind.UNKNOWN,
        N_("Visma Business NXT refused the request ({status})"),
        _UNEXPECTED,
        (N_("Press *Retry now*; if it happens again, check the bot's log."),),
        Fix.RETRY,
        f"NXT {status_name or status}",
        {"status": status_name or f"HTTP {status}"},
    )


# ----------------------------------------------------------------------------------------------- Visma.net

_VNET_ADMIN = N_("the client's *Customer administrator* in Visma.net (who gives users their roles) for {company}")
_VNET_INTEGRATOR = N_("the client's *Integration Administrator* in Visma.net for {company}")
_VNET_ROLES = N_(
    "In Visma.net Admin (signin.visma.net → Visma.net Financials → *Admin* → *Users and roles*) the Customer "
    "administrator opens the user who will integrate our app and, on the row of the company, gives the role "
    "*Integration Administrator* in the *App Store* column and *API User* under the ERP (*Add access* first if "
    "the company is not listed), then *Save and close*. It can take 10–15 minutes before Visma sees it."
)
_VNET_LINK = N_(
    "Open the approval link (or press *Send new approval link*) and enter the company's Tenant ID: in the App "
    "Store, the company menu at the top right shows it under the company's name."
)
_LICENCE_WHO = N_("the client's *Customer administrator* in Visma.net for {company}, or Visma if the licence has ended")
_FIXED_RETRY = N_("Press *Retry now* once it is fixed.")

_VISMA_NET: dict[str, tuple[ProblemKind, str, str, tuple[str, ...], Fix]] = {
    "invalid_tenant": (
        ProblemKind.TENANT_NOT_APPROVED,
        N_(
            "Visma Connect will not let us into the company (invalid_tenant): our app is not integrated for it in "
            "the Visma App Store (each company on its own, a company created later too), or the user who "
            "integrated it lacks the *API User* role"
        ),
        _VNET_ADMIN,
        (
            _VNET_ROLES,
            N_(
                "That user signs in at appstore.visma.net, finds our app under *Apps*, presses *Integrate*, turns "
                "on the read scope and accepts."
            ),
            _VNET_LINK,
        ),
        Fix.NEW_LINK,
    ),
    "401": (
        ProblemKind.CUSTOMER_TENANT,
        N_(
            "the Tenant ID we were given is the Visma *customer's*, not the company's: Visma gives us a token, but "
            "the ERP refuses every request with it (HTTP 401)"
        ),
        _VNET_INTEGRATOR,
        (
            N_(
                "In the Visma App Store open the company menu at the top right, choose *Change organization* and "
                "pick the company itself (not the customer above it); its Tenant ID is under its name. In Visma.net "
                "Admin it is under Company → the company → Edit → Configuration → *Tenant id*."
            ),
            N_("Open the approval link (or press *Send new approval link*) and enter that Tenant ID."),
        ),
        Fix.NEW_LINK,
    ),
    "403": (
        ProblemKind.SCOPE_MISSING,
        N_("our app's read access was switched off for the company in the Visma App Store"),
        _VNET_INTEGRATOR,
        (
            N_("In the Visma App Store open *My apps*, press *Manage* on our integration and turn the read scope on."),
            N_("Open the approval link (or press *Send new approval link*) to check the access again."),
        ),
        Fix.NEW_LINK,
    ),
    "12027": (
        ProblemKind.NO_LICENCE,
        N_(
            "Visma.net answers *No license for this company* (IPPException 12027): the company's Visma.net "
            "Financials licence has expired, or the integrating user lacks *API User*, or the Tenant ID is the "
            "customer's"
        ),
        _LICENCE_WHO,
        (
            N_("Check with Visma that the company's Visma.net Financials subscription is active."),
            _VNET_ROLES,
            _FIXED_RETRY,
        ),
        Fix.RETRY,
    ),
}


def from_visma_net(*, status: int, code: str | None, company: str, system: str = "Visma.net") -> Problem:
    """Classify a Visma.net answer: a Visma Connect error code, an IPP fault code, or an HTTP status (`system`:
    the name its general answers give, "Visma ERP" for a consent-based connection)."""
    # Visma's own code first (an OAuth error, an IPP fault code); the HTTP status only when it said nothing more.
    key = code if code in _VISMA_NET else str(status) if code in {None, str(status)} else None
    key = key if key in _VISMA_NET else None
    if key is not None:
        kind, what, who, steps, fix = _VISMA_NET[key]
        return Problem(kind, what, who, steps, fix, f"{system} {key}", {"company": company})
    if code == "invalid_grant":
        return consent_revoked(company=company, code=f"{system} invalid_grant")
    if code in {"invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type"}:
        return Problem(
            ProblemKind.UNKNOWN,
            N_("Visma Connect refused the firm's own app registration ({code})"),
            N_("our team: the app's client id, secret or scopes in the Visma Developer Portal"),
            (N_("Check the Visma.net client settings of the bot, then press *Retry now*."),),
            Fix.RETRY,
            f"{system} {code}",
            {"code": code},
        )
    if status == 429 or code == "429":
        return Problem(
            ProblemKind.RATE_LIMITED,
            N_("{system}'s hourly request limit for the company is used up"),
            N_("nobody: the bot waits for the next hour by itself"),
            (_CONTINUES,),
            Fix.WAIT,
            f"{system} 429",
            {"system": system},
        )
    if status >= 500 or status == 0:
        return Problem(
            ProblemKind.OUTAGE,
            N_("{system} did not answer properly (HTTP {status})") if status else N_("Visma Connect did not answer"),
            _NOBODY_AT_CLIENT,
            (_WAIT_FOR_IT,),
            Fix.WAIT,
            f"{system} {code or status}",
            {"system": system, "status": str(status)},
        )
    return Problem(
        ProblemKind.UNKNOWN,
        N_("{system} refused the request (HTTP {status}, code {code})"),
        _UNEXPECTED,
        (N_("Press *Retry now*; if it happens again, check the bot's log."),),
        Fix.RETRY,
        f"{system} {code or status}",
        {"system": system, "status": str(status), "code": str(code)},
    )


# ----------------------------------------------------------------------------------------------- Visma ERP

_ERP_APPROVER = N_("the approver at {company} (a Visma.net user with the *API User* role in the company)")
_ERP_AGAIN = N_("Open the approval link again (or press *Send new approval link*) and sign in to Visma once more.")
_ERP_TICKED = N_(
    "Open the approval link again (or press *Send new approval link*) and sign in to Visma once more. On Visma's "
    "*Allow access* page leave every permission ticked before accepting."
)

_VISMA_ERP: dict[str, tuple[ProblemKind, str, str, tuple[str, ...], Fix]] = {
    "invalid_tenant": (
        ProblemKind.ERP_NO_API_USER,
        N_(
            "Visma Connect refused the sign-in for the company picked (invalid_tenant): the user who approved does "
            "not have the *API User* role in it"
        ),
        N_("the client's *Customer administrator* in Visma.net for {company}"),
        (
            N_(
                "In Visma.net Admin (*Users and roles*) give the approving user *API User* under the ERP on the "
                "company's row, then *Save and close*. It can take 10–15 minutes before Visma sees it."
            ),
            _ERP_AGAIN,
        ),
        Fix.NEW_LINK,
    ),
    "401": (
        ProblemKind.CUSTOMER_TENANT,
        N_(
            "the approver picked the Visma *customer* (the contract) instead of the company when signing in: Visma "
            "gives us a token, but the ERP refuses every request with it (HTTP 401)"
        ),
        _ERP_APPROVER,
        (
            N_(
                "Open the approval link again and, on Visma's *Choose organisation* page, pick the company itself, "
                "not the customer above it (shown with *(customer)*)."
            ),
        ),
        Fix.NEW_LINK,
    ),
    "403": (
        ProblemKind.SCOPE_MISSING,
        N_("our access does not include reading the company's books: the read permission was not granted"),
        _ERP_APPROVER,
        (_ERP_TICKED,),
        Fix.NEW_LINK,
    ),
    "scope_missing": (
        ProblemKind.SCOPE_MISSING,
        N_("the approver did not grant everything asked for: {missing} is missing"),
        _ERP_APPROVER,
        (_ERP_TICKED,),
        Fix.NEW_LINK,
    ),
    "wrong_tenant": (
        ProblemKind.WRONG_TENANT,
        N_(
            "the approver signed in to another Visma organisation (Tenant ID {got}) than the one asked for "
            "(Tenant ID {asked})"
        ),
        _ERP_APPROVER,
        (
            N_(
                "Open the approval link again and, on Visma's *Choose organisation* page, pick the company whose "
                "Tenant ID is {asked} (the App Store's company menu shows each company's Tenant ID)."
            ),
        ),
        Fix.NEW_LINK,
    ),
    "invalid_grant": (
        ProblemKind.CONSENT_REVOKED,
        N_("our access was withdrawn in Visma or has expired (Visma Connect refused the refresh token)"),
        _ERP_APPROVER,
        (_ERP_AGAIN,),
        Fix.NEW_LINK,
    ),
    "12027": (
        ProblemKind.NO_LICENCE,
        N_(
            "Visma.net answers *No license for this company* (IPPException 12027): the company's licence has "
            "expired, or the approving user lacks *API User*"
        ),
        _LICENCE_WHO,
        (
            N_(
                "Check with Visma that the company's subscription is active, and that the approving user has *API "
                "User* in the company (Visma.net Admin → *Users and roles*)."
            ),
            _FIXED_RETRY,
        ),
        Fix.RETRY,
    ),
}


def from_visma_erp(
    *, status: int, code: str | None, company: str, missing: str = "", got: str = "", asked: str = ""
) -> Problem:
    """Classify a Visma ERP answer (a consent-based Visma.net ERP connection): the failures of its consent in its
    own words, the rest as Visma.net's, named Visma ERP (`missing`: scopes not granted; `got`/`asked`: the
    tenants)."""
    key = code if code in _VISMA_ERP else str(status) if code in {None, str(status)} else None
    if key in _VISMA_ERP:
        kind, what, who, steps, fix = _VISMA_ERP[key]
        values = {"company": company, "missing": missing, "got": got, "asked": asked}
        return Problem(kind, what, who, steps, fix, f"Visma ERP {key}", values)
    return from_visma_net(status=status, code=code, company=company, system="Visma ERP")
