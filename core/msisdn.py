"""Phone numbers (MSISDN): what a valid one looks like, and how one is shown to people.

The one place both rules live: the quality gate, bring-your-own-data, the service and
the monitoring records validate with ``MSISDN_PATTERN``; logs and records mask with
``mask_msisdn`` / ``mask_numbers`` (13812342343 -> 138****2343).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: A mainland mobile number: 11 ASCII digits, 13x-19x (``\d`` would admit other scripts' digits).
MSISDN_REGEX = r"1[3-9][0-9]{9}"
#: The whole string and nothing else: ``\Z``, not ``$``, which also matches before a final newline.
MSISDN_PATTERN = re.compile(rf"\A{MSISDN_REGEX}\Z")
#: What is masked in free text: any 11-digit run starting with 1 (a stricter rule would leave some shown).
_IN_TEXT = re.compile(r"(?<!\d)(1\d{2})\d{4}(\d{4})(?!\d)")


def is_msisdn(value) -> bool:
    """Whether ``value`` is a string holding one valid mobile number."""
    return isinstance(value, str) and MSISDN_PATTERN.match(value) is not None


def mask_msisdn(text) -> str:
    """Mask every 11-digit mobile number in ``text`` to its first three and last four digits."""
    return _IN_TEXT.sub(r"\1****\2", str(text))


def mask_numbers(msisdns) -> np.ndarray:
    """``138****2343`` for each 11-digit number, vectorised (anything else is masked whole)."""
    numbers = pd.Series(np.asarray(msisdns, dtype=object)).astype(str)
    masked = numbers.str[:3] + "****" + numbers.str[-4:]
    return np.where(numbers.str.len() == 11, masked, "***********").astype(object)
