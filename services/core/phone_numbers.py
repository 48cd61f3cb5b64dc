"""Phone numbers between the providers (E.164, "+8613859901234") and the rest of the service
(the form citizens write and `nlu.entities` finds: "13859901234", "059588123456").

One canonical form per person matters: `citizens.phone` links a caller, a texter and a web
citizen who typed their number only if all three spell it the same way. Validity and the
split between mobile and landline are libphonenumber's (`phonenumbers`, through `nlu.phones`,
which also reads numbers out of citizens' messages).
"""

from __future__ import annotations

import phonenumbers

from nlu import phones

# What Twilio puts in From when the caller withholds the number.
_WITHHELD = {"+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253"}


def canonical(raw: str | None) -> str | None:
    """The canonical form of a number, or None for what is not a phone number (Twilio's
    "anonymous", a withheld number, "client:alice", a SIP address)."""
    if not raw:
        return None
    text = raw.strip().removeprefix("tel:")
    if any(ch.isalpha() for ch in text) or "@" in text:
        return None  # "anonymous", "client:alice", "sip:…@…": letters are never a number
    compact = "".join(ch for ch in text if ch not in " ()-.")
    if compact in _WITHHELD:
        return None
    number = phones.parse(compact)
    return phones.canonical_of(number) if number is not None else None


def to_e164(phone: str) -> str:
    """The number as Twilio wants it."""
    number = phones.parse(phone)
    if number is None:
        return phone if phone.startswith("+") else "+86" + phone.removeprefix("0")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
