"""Plain enums of the domain: accounting systems, company states, choices in the forms."""

from __future__ import annotations

from enum import StrEnum


class AccountingSystem(StrEnum):
    """The Visma systems a client company's books can live in."""

    EACCOUNTING = "eaccounting"
    VISMA_NET = "visma_net"
    BUSINESS_NXT = "business_nxt"
    VISMA_ERP = "visma_erp"

    @property
    def label(self) -> str:
        """The name people know the system by."""
        return _SYSTEM_LABELS[self]

    @property
    def available(self) -> bool:
        """Whether onboarding through this system is built yet."""
        return True


_SYSTEM_LABELS = {
    AccountingSystem.EACCOUNTING: "Visma eAccounting / eEkonomi",
    AccountingSystem.VISMA_NET: "Visma.net Financials",
    AccountingSystem.BUSINESS_NXT: "Visma Business NXT",
    AccountingSystem.VISMA_ERP: "Visma ERP",
}


class CompanyState(StrEnum):
    """A company's life: draft -> awaiting approval -> connected -> syncing <-> healthy, plus side states."""

    DRAFT = "draft"
    AWAITING_APPROVAL = "awaiting_approval"
    CONNECTED = "connected"
    # No longer entered: a live, leased sync run says "syncing" (a state only a successful run could leave
    # stranded companies). Kept so that audit entries written before migration 0002 still read.
    SYNCING = "syncing"
    HEALTHY = "healthy"
    PERMISSION_ERROR = "permission_error"
    DISCONNECTED = "disconnected"
    DEACTIVATED = "deactivated"


class ApprovalStatus(StrEnum):
    """Where an approval link stands."""

    PENDING = "pending"
    COMPLETED = "completed"
    DECLINED = "declined"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"


class Country(StrEnum):
    """Countries whose organisation numbers we can check."""

    NO = "NO"
    SE = "SE"
    DK = "DK"
    FI = "FI"

    @property
    def label(self) -> str:
        """The country's English name."""
        return {"NO": "Norway", "SE": "Sweden", "DK": "Denmark", "FI": "Finland"}[self.value]

    @property
    def adjective(self) -> str:
        """The country's adjective, as in 'a Norwegian organisation number'."""
        return {"NO": "Norwegian", "SE": "Swedish", "DK": "Danish", "FI": "Finnish"}[self.value]


class PeriodType(StrEnum):
    """How often the company's books are reconciled."""

    MONTHLY = "monthly"
    BIMONTHLY = "bimonthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


class VatFrequency(StrEnum):
    """How often the company reports VAT."""

    MONTHLY = "monthly"
    BIMONTHLY = "bimonthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"
    NONE = "none"


class Module(StrEnum):
    """Reconciliation modules staff can switch on for a company."""

    PAYROLL = "payroll"
    VAT = "vat"
    ASSETS = "assets"


class SyncStatus(StrEnum):
    """Outcome of one sync run."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    # Stopped at a page boundary by a shutdown; the next run resumes from its checkpoints.
    INTERRUPTED = "interrupted"
    # Its process vanished (a crash, kill -9) and its lease ran out; closed by whoever noticed.
    ABANDONED = "abandoned"
