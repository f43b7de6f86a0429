"""The Slack side of the outbox: renders each message from the current state and delivers it after commit."""

from commands.delivery.worker import Deliverer

__all__ = ["Deliverer"]
