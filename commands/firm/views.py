"""Pure Block Kit builders for the firm settings modal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.slack_format import escape
from commands.firm.ids import USE_SETTING, FirmView

MAX_OPTIONS = 100  # Slack's limit for a static select


@dataclass(frozen=True, slots=True)
class UserGroup:
    """A user group of the workspace, as usergroups.list gives it."""

    id: str
    name: str
    handle: str

    @property
    def label(self) -> str:
        """The option's text, e.g. Accountants (@accountants), within Slack's 75 characters."""
        text = f"{self.name} (@{self.handle})" if self.handle else self.name
        return text if len(text) <= 75 else text[:74] + "…"


def staff_options(groups: Sequence[UserGroup], *, setting: str | None) -> list[Option]:
    """The choice of staff group: the STAFF_USERGROUP setting (or nobody's group), then the workspace's groups."""
    named = {group.id: group for group in groups}
    if setting:
        known = named.get(setting)
        first = f"The STAFF_USERGROUP setting: {known.label if known else setting}"
    else:
        first = "No group: everyone in the workspace"
    options = [Option(value=USE_SETTING, text=first[:75])]
    options += [Option(value=group.id, text=group.label) for group in groups[: MAX_OPTIONS - 1]]
    return options


def settings_view(
    *,
    customer_ids: list[int],
    groups: Sequence[UserGroup] | None = None,
    staff_group: str | None = None,
    setting: str | None = None,
    groups_error: str | None = None,
    private_metadata: str = "",
) -> View:
    """The firm's settings: the Visma customer IDs Business NXT companies are listed under, and who is staff.

    `groups` is None when Slack could not list the user groups: the staff group is then left as it is."""
    blocks: list[Block] = [
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
    ]
    if groups is None:
        why = f" ({escape(groups_error)})" if groups_error else ""
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"Slack could not list the workspace's user groups{why}, so the staff group cannot be "
                        "changed now; it stays as it is."
                    )
                ]
            )
        )
    else:
        options = staff_options(groups, setting=setting)
        chosen = next((option for option in options if option.value == (staff_group or USE_SETTING)), None)
        blocks.append(
            InputBlock(
                block_id=FirmView.STAFF_GROUP,
                label="Staff group",
                optional=True,
                hint="Only its members add companies, press the buttons on cards and alerts, and see the companies "
                "in App Home. You must be in the group you choose.",
                element=StaticSelectElement(
                    action_id=FirmView.STAFF_GROUP,
                    placeholder="Choose a user group",
                    options=options,
                    initial_option=chosen,
                ),
            )
        )
    return View(
        type="modal",
        callback_id=FirmView.SETTINGS,
        title="Firm settings",
        submit="Save",
        close="Cancel",
        private_metadata=private_metadata,
        blocks=blocks,
    )
