"""Phone numbers between the providers (E.164, "+8613859901234") and the rest of the service
(the form citizens write and `nlu.entities` finds: "13859901234", "059588123456").

One canonical form per person matters: `citizens.phone` links a caller, a texter and a web
citizen who typed their number only if all three spell it the same way.
"""

from __future__ import annotations

import re

# The same shapes `nlu.entities` accepts, as whole numbers.
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# What Twilio puts in From when the caller withholds the number.
_WITHHELD = {"+266696687", "+7378742833", "+2562533", "+8656696", "+86282452253"}


def canonical(raw: str | None) -> str | None:
    """The canonical form of a number, or None for what is not a phone number (Twilio's
    "anonymous", a withheld number, "client:alice", a SIP address)."""
    if not raw:
        return None
    compact = re.sub(r"[\s()-]", "", raw.strip().removeprefix("tel:"))
    if compact in _WITHHELD:
        return None
    if compact.startswith("+86"):
        national = compact[3:]
        if not national.startswith("1"):
            national = "0" + national  # a landline: the trunk 0 comes back
    elif compact.startswith("+"):
        return compact if _E164.match(compact) else None
    else:
        national = compact
    if _MOBILE.match(national) or _LANDLINE.match(national):
        return national
    return None


def to_e164(phone: str) -> str:
    """The number as Twilio wants it."""
    if phone.startswith("+"):
        return phone
    if phone.startswith("0"):  # a landline with its area code: drop the trunk 0
        return "+86" + phone[1:]
    return "+86" + phone
