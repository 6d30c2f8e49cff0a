"""Logging that never shows a whole phone number: 13812342343 -> 138****2343."""

from __future__ import annotations

import logging

from core.msisdn import mask_msisdn


class MaskingFilter(logging.Filter):
    """A logging filter that masks phone numbers in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_msisdn(record.getMessage())
        record.args = ()
        return True


def get_logger(name: str, level: int | None = None) -> logging.Logger:
    """A project logger whose messages have phone numbers masked.

    With ``level``, the logger also writes to stderr itself (servers whose root logger
    is not configured for it).
    """
    logger = logging.getLogger(name)
    if not any(isinstance(f, MaskingFilter) for f in logger.filters):
        logger.addFilter(MaskingFilter())
    if level is not None:
        logger.setLevel(level)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] [%(name)s] %(message)s"))
            logger.addHandler(handler)
            logger.propagate = False
    return logger
