"""YAML configuration files read with their line numbers, validated by pydantic.

Province files and data mappings are written by people; a mistake must point at the
file and line (``GD.yaml:12: unknown indicator 'infuence'; valid: ...``). The loader
keeps the line of every mapping key and list item, and ``validate`` turns pydantic's
error locations back into those lines.

A configuration file is small: the loader refuses, with the file and line, anything
bigger than the limits below before it costs time or memory (a 300-byte file of
nested aliases otherwise expands to a billion values).
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from core.errors import ConfigurationError

Model = TypeVar("Model", bound=BaseModel)
Location = tuple[object, ...]

#: The largest configuration file, in bytes. A province file is about 3 KB and the data
#: mapping example 2 KB; 256 KB is a hundred times that and reads in well under a second.
MAX_FILE_BYTES = 256 * 1024
#: The most keys and values a file may hold, counting each use of an alias (``*name``) as
#: the values it repeats. A province file holds a few hundred; the pure-Python loader
#: reads about 20,000 a second, so this bounds the time to read or refuse any file.
MAX_VALUES = 10_000
#: The most aliases (``*name``) in a file: configuration has little to repeat.
MAX_ALIASES = 50
#: The deepest nesting of mappings and lists (a province file nests 4 deep).
MAX_DEPTH = 20


class _Refused(Exception):
    """A file beyond one of the limits, at a line (1-based)."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records the line (1-based) where each value starts, within the limits."""

    def __init__(self, stream):
        super().__init__(stream)
        self.lines: dict[Location, int] = {}
        self._values = 0
        self._aliases = 0
        self._depth = 0

    # -- composing: count values and aliases, and nesting, as the parser meets them
    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(
                    event.start_mark.line + 1,
                    f"more than {MAX_ALIASES} aliases (*name); a configuration file may repeat "
                    f"an anchored part (&name) at most {MAX_ALIASES} times",
                )
        else:
            self._values += 1
            if self._values > MAX_VALUES:
                raise _Refused(
                    event.start_mark.line + 1,
                    f"more than {MAX_VALUES:,} keys and values; "
                    f"a configuration file may hold at most {MAX_VALUES:,}",
                )
        return super().compose_node(parent, index)

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Refused(
                self.peek_event().start_mark.line + 1,
                f"nested more than {MAX_DEPTH} levels deep; "
                f"a configuration file may nest mappings and lists at most {MAX_DEPTH} deep",
            )

    def compose_sequence_node(self, anchor):
        self._enter()
        try:
            return super().compose_sequence_node(anchor)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor):
        self._enter()
        try:
            return super().compose_mapping_node(anchor)
        finally:
            self._depth -= 1

    # -- lines: walk the document as the model will see it (aliases expanded), within the limits
    def construct_document(self, node):
        self._expanded = 0
        self._record(node, (), 1)
        return super().construct_document(node)

    def _record(self, node, at: Location, depth: int) -> None:
        self._expanded += 1
        if self._expanded > MAX_VALUES:
            raise _Refused(
                node.start_mark.line + 1,
                f"its aliases (*name) repeat parts of the file into more than {MAX_VALUES:,} keys and "
                f"values; a configuration file may hold at most {MAX_VALUES:,}",
            )
        if depth > MAX_DEPTH and isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            raise _Refused(
                node.start_mark.line + 1,
                f"its aliases (*name) nest parts of the file more than {MAX_DEPTH} levels deep; "
                f"a configuration file may nest mappings and lists at most {MAX_DEPTH} deep",
            )
        self.lines.setdefault(at, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # a list or mapping as a key: construction refuses it at its line
                key = key_node.value
                if key_node.tag.endswith((":int", ":float")):
                    key = self.construct_object(key_node)  # `5:` is the number 5 to the model
                self._expanded += 1
                self.lines[(*at, key)] = key_node.start_mark.line + 1
                self._record(value_node, (*at, key), depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for k, item in enumerate(node.value):
                self._record(item, (*at, k), depth + 1)


def _read_text(path: Path) -> str:
    """The file's text, refused unknown, unreadable, not a plain file or over ``MAX_FILE_BYTES``."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(f"{path}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise ConfigurationError(_too_big(path, info.st_size))
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat
        if len(data) > MAX_FILE_BYTES:
            raise ConfigurationError(_too_big(path, len(data)))
        return data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigurationError(f"{path}: cannot read ({err})") from None


def _too_big(path: Path, size: int) -> str:
    return (
        f"{path}: the file is {size:,} bytes; a configuration file may be at most "
        f"{MAX_FILE_BYTES:,} bytes ({MAX_FILE_BYTES // 1024} KB)"
    )


class YamlFile:
    """One configuration file: its data and where each value was written."""

    def __init__(self, path: Path):
        self.path = Path(path)
        text = _read_text(self.path)
        loader = _LineLoader(text)
        try:
            self.data = loader.get_single_data()
        except _Refused as err:
            raise ConfigurationError(f"{self.path}:{err.line}: {err.message}") from None
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = mark.line + 1 if mark else 1
            raise ConfigurationError(f"{self.path}:{line}: not valid YAML: {err.problem or err}") from None
        except (yaml.YAMLError, ValueError, OverflowError) as err:
            # ValueError: a date such as 2025-13-45, an integer of more than 4,300 digits
            raise ConfigurationError(f"{self.path}:1: not valid YAML: {err}") from None
        except RecursionError:  # not expected within MAX_DEPTH; never a traceback
            raise ConfigurationError(
                f"{self.path}:1: nested too deeply; a configuration file may nest mappings and lists "
                f"at most {MAX_DEPTH} deep"
            ) from None
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


__all__ = ["YamlFile", "MAX_FILE_BYTES", "MAX_VALUES", "MAX_ALIASES", "MAX_DEPTH"]
