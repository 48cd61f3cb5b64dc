"""What one outbound channel must do for the outbox (services/outbound/outbox.py), as Rasa's
OutputChannel does for a bot: a name, how long one message may be, whether it is set up, and
how to send one message. Everything the channels share (storing each message, idempotency,
consent, "not configured", statuses, retries) is the outbox's, done once for all of them.

    class TwilioSms(Sender):   services/outbound/twilio_sender.py
    class WeChatCustomerService(Sender):   services/outbound/wechat_client.py
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass
class Sent:
    """What the provider did with one message; `passing` when a later try may succeed."""

    status: str
    sid: str | None = None
    provider_status: str | None = None
    error: str | None = None
    passing: bool = False


class InvalidRecipient(ValueError):
    """Not an address a message can be sent to on that channel (e.g. not a phone number)."""


class Sender:
    """One channel's way out. Subclasses set `name` and implement `configured` and
    `send_part`; the rest has defaults."""

    # the channel as stored in outbound_messages.channel, and as callers of Outbox.send name it
    name: ClassVar[str]
    # how log lines name one message ("SMS", "WeChat message") and why it may not go out
    label: ClassVar[str]
    unconfigured: ClassVar[str] = "not configured"
    # recipients may opt out (sms_consent_events): nothing goes to them until they opt in again
    consent: ClassVar[bool] = False
    # what the consent record says when the provider reports that the recipient opted out
    consent_keyword: ClassVar[str | None] = None
    # failures the provider calls passing are sent again by the outbox's retry job
    retries: ClassVar[bool] = False
    # the longest message; a longer text goes out as several numbered parts
    max_chars: int = 300

    @property
    def configured(self) -> bool:
        raise NotImplementedError

    def recipient(self, to: str) -> str:
        """The recipient as stored and sent to; raises InvalidRecipient for one that is not."""
        return to

    def segments(self, text: str) -> int | None:
        """What one message costs on the provider's side (SMS segments), if it counts them."""
        return None

    async def send_part(self, recipient: str, text: str) -> Sent:
        """Send one message; never raises for what the provider or the network does."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close connections to the provider."""
