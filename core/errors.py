"""The project's own exceptions: each message names the file, column, row or customer."""


class TelcomlError(Exception):
    """Base class for errors a user can meet; the CLI prints them without a traceback."""


class DataQualityError(TelcomlError):
    """Input data was rejected by the quality gate; nothing was written."""

    def __init__(self, problems: list["object"]):
        self.problems = problems
        lines = [f"  - {p}" for p in problems[:20]]
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(
            f"{len(problems)} data problem(s); nothing was ingested:\n" + "\n".join(lines) + more
        )


class ConfigurationError(TelcomlError):
    """A setting or configuration file is invalid."""


class NotReadyError(TelcomlError):
    """A step was asked for before the step it depends on has run."""
