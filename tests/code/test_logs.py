import logging

from core.logs import get_logger
from core.msisdn import mask_msisdn


def test_masks_every_phone_number_and_nothing_else():
    assert mask_msisdn("caller 13812342343 asked") == "caller 138****2343 asked"
    assert mask_msisdn("13812342343,15900001111") == "138****2343,159****1111"
    assert mask_msisdn("order 2026010000042 and 123456") == "order 2026010000042 and 123456"


def test_logger_masks_arguments(caplog):
    log = get_logger("telcoml.test")
    with caplog.at_level(logging.INFO, logger="telcoml.test"):
        log.info("scored %s", "13812342343")
    assert "138****2343" in caplog.text and "13812342343" not in caplog.text
