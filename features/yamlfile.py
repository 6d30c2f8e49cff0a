"""YAML configuration files read with their line numbers, validated by pydantic.

Province files and data mappings are written by people; a mistake must point at the
file and line (``GD.yaml:12: unknown indicator 'infuence'; valid: ...``). The loader
keeps the line of every mapping key and list item, and ``validate`` turns pydantic's
error locations back into those lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from core.errors import ConfigurationError

Model = TypeVar("Model", bound=BaseModel)
Location = tuple[object, ...]


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records the line (1-based) where each value starts."""

    def __init__(self, stream):
        super().__init__(stream)
        self.lines: dict[Location, int] = {}

    def construct_document(self, node):
        self._record(node, ())
        return super().construct_document(node)

    def _record(self, node, at: Location) -> None:
        self.lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag.endswith((":int", ":float")):
                    key = self.construct_object(key_node)  # `5:` is the number 5 to the model
                self.lines[(*at, key)] = key_node.start_mark.line + 1
                self._record(value_node, (*at, key))
        elif isinstance(node, yaml.SequenceNode):
            for k, item in enumerate(node.value):
                self._record(item, (*at, k))


class YamlFile:
    """One configuration file: its data and where each value was written."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(f"{self.path}: file not found") from None
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigurationError(f"{self.path}: cannot read ({err})") from None
        loader = _LineLoader(text)
        try:
            self.data = loader.get_single_data()
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = mark.line + 1 if mark else 1
            raise ConfigurationError(f"{self.path}:{line}: not valid YAML: {err.problem or err}") from None
        except yaml.YAMLError as err:
            raise ConfigurationError(f"{self.path}:1: not valid YAML: {err}") from None
        finally:
            loader.dispose()
        self.lines = loader.lines
        if self.data is None:
            self.data = {}

    def line(self, at: Location) -> int:
        """The line of the longest prefix of ``at`` that was written in the file."""
        at = tuple(at)
        while at and at not in self.lines:
            at = at[:-1]
        return self.lines.get(at, 1)

    def error(self, at: Location, message: str) -> ConfigurationError:
        return ConfigurationError(f"{self.path}:{self.line(at)}: {message}")

    def validate(self, model: type[Model], **context) -> Model:
        """The file's content as ``model``; every error names the file and line."""
        if not isinstance(self.data, dict):
            raise self.error((), "expected a mapping of keys to values at the top of the file")
        try:
            return model.model_validate(self.data, context={"file": self, **context})
        except ValidationError as err:
            messages = []
            for e in err.errors():
                where = ".".join(str(p) for p in e["loc"])
                text = e["msg"].removeprefix("Value error, ")
                if e["type"] == "extra_forbidden":
                    text = f"unknown key {e['loc'][-1]!r}"
                elif e["type"] == "missing":
                    text = f"missing required key {e['loc'][-1]!r}"
                messages.append(
                    f"{self.path}:{self.line(e['loc'])}: {where}: {text}"
                    if where
                    else f"{self.path}:{self.line(())}: {text}"
                )
            raise ConfigurationError("\n".join(messages)) from None


__all__ = ["YamlFile"]
