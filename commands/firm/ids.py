"""IDs of the firm settings modal."""

from enum import StrEnum


class FirmAction(StrEnum):
    """The button that opens the firm settings (App Home; /addcompany when Business NXT needs them)."""

    OPEN = "firm_settings_open"


class FirmView(StrEnum):
    """The firm settings modal and its fields."""

    SETTINGS = "firm_settings"
    NXT_CUSTOMER_IDS = "nxt_customer_ids"
    STAFF_GROUP = "staff_usergroup"


# The staff group option that keeps no group in the store, so the STAFF_USERGROUP setting applies.
USE_SETTING = "use_setting"
