"""Citizens' phone numbers and WeChat openids, masked wherever they would be written to a log.

`mask` rewrites any text: a mainland mobile number keeps its first three and last four digits
(13912341234 -> 139****1234, +8613912341234 -> +86139****1234), any other international
number (+...) its first three and last four digits, and an openid (28 characters starting
with "o") its first four (oXyz****). `install_log_masking` applies it to every log record of
the process, whichever logger made it, once: through the log record factory, so that no
handler or logger can be added without it. Code that logs a recipient also masks it itself
(`mask_recipient`), so the message is safe even where the factory is not installed.
"""

from __future__ import annotations

import logging
import re

_MOBILE = re.compile(r"(?<![\d])(\+?86)?(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_INTERNATIONAL = re.compile(r"(?<![\w+])\+(\d{3})\d{1,8}(\d{4})(?!\d)")
_OPENID = re.compile(r"(?<![A-Za-z0-9_-])(o[A-Za-z0-9_-]{3})[A-Za-z0-9_-]{24}(?![A-Za-z0-9_-])")


def mask(text: str) -> str:
    text = _MOBILE.sub(lambda m: f"{m.group(1) or ''}{m.group(2)}****{m.group(3)}", text)
    text = _INTERNATIONAL.sub(r"+\1****\2", text)
    return _OPENID.sub(r"\1****", text)


def mask_recipient(recipient: object) -> str:
    """A phone number or an openid as a log may show it."""
    text = str(recipient)
    masked = mask(text)
    if masked == text and len(text) > 6:  # a form the patterns do not know: keep its ends
        return text[:3] + "****" + text[-2:]
    return masked


_installed = False


def install_log_masking() -> None:
    """Mask every log record of this process from now on (idempotent)."""
    global _installed
    if _installed:
        return
    make = logging.getLogRecordFactory()

    def masked_record(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: logging reports it later
            return record
        safe = mask(message)
        if safe != message:
            record.msg, record.args = safe, ()
        return record

    logging.setLogRecordFactory(masked_record)
    _installed = True
