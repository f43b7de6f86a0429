"""Pure Block Kit builders for the firm settings modal."""

from __future__ import annotations

from slack_sdk.models.blocks import ContextBlock, InputBlock, MarkdownTextObject, PlainTextInputElement
from slack_sdk.models.views import View

from commands.firm.ids import FirmView


def settings_view(*, customer_ids: list[int]) -> View:
    """The firm's settings: the Visma customer IDs Business NXT companies are listed under."""
    return View(
        type="modal",
        callback_id=FirmView.SETTINGS,
        title="Firm settings",
        submit="Save",
        close="Cancel",
        blocks=[
            InputBlock(
                block_id=FirmView.NXT_CUSTOMER_IDS,
                label="Visma customer IDs for Business NXT",
                optional=True,
                hint="Digits, several separated by commas. /addcompany lists the Business NXT companies of these "
                "customers.",
                element=PlainTextInputElement(
                    action_id=FirmView.NXT_CUSTOMER_IDS,
                    initial_value=", ".join(str(number) for number in customer_ids) or None,
                    placeholder="1234567, 7654321",
                    max_length=500,
                ),
            ),
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text="Your customer IDs are in the Visma.net Admin (the contract that holds your licences)."
                    )
                ]
            ),
        ],
    )
