"""telcoml: customer evaluations for a mobile operator's customer service."""

__version__ = "0.1.0"
