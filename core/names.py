"""The fixed names the command line offers as choices, in a module that imports nothing.

``telcoml`` builds every command's options when it starts, for ``--help`` and for each TAB of
shell completion; reading these names from their declarations would import pandas and the
model stack first (0.5 s became 4.5 s here). The province codes are declared here; the task,
evaluation, purpose and store names are declared with the objects they name, and
tests/code/test_cli_choices.py fails when a list here differs from its declaration.
"""

#: The 31 provincial companies by their ISO 3166-2:CN codes (the generator's four first).
PROVINCES = (
    "GD",
    "SC",
    "HE",
    "ZJ",
    "JS",
    "SD",
    "HA",
    "HB",
    "HN",
    "FJ",
    "BJ",
    "TJ",
    "SX",
    "NM",
    "LN",
    "JL",
    "HL",
    "SH",
    "AH",
    "JX",
    "GX",
    "HI",
    "CQ",
    "GZ",
    "YN",
    "XZ",
    "SN",
    "GS",
    "QH",
    "NX",
    "XJ",
)
#: An API key's scope for every province (the group's keys).
ALL_PROVINCES = "*"
#: The models, ``core.tasks.TASKS``.
TASKS = ("credit_grade", "tariff_sensitivity", "complaint_sensitivity", "churn", "channel_preference")
#: The evaluations whose feature contracts group the indicators, ``core.indicators.EVALUATIONS``.
EVALUATIONS = ("credit_grade", "sensitivity", "churn", "channel_preference")
#: A campaign's purposes, ``serving.campaign_config.PURPOSES``.
CAMPAIGN_PURPOSES = ("retention", "care", "tariff_communication", "cross_sell", "dunning")
#: The online stores ``core.settings.Settings.online_store`` accepts.
ONLINE_STORES = ("sqlite", "redis")
