"""Action IDs of the approver's DM."""

from enum import StrEnum


class ApprovalAction(StrEnum):
    """Buttons in the approval DM; the value is the approval request id."""

    OPEN_LINK = "approval_open_link"
    DECLINE = "approval_decline"
