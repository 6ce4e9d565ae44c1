"""Command-line options derived from the pydantic models.

Names, defaults, choices and help text live once, in the models' fields (as ``run_glue.py``
derives its command line from dataclasses with ``HfArgumentParser``). A field ``max_length``
becomes ``--max-length``; a field name that several models share (``seed``) is prefixed with
its group (``--data-seed``, ``--train-seed``). Only options given on the command line are set,
so a model's own defaults (and the profile's data settings) apply to the rest. Lists and
nested models (the grid) are not command-line options: use ``--grid`` or a deployment.
"""

import argparse
import types
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from sentiment_lora.errors import UserError


class OptionError(UserError):
    """A command-line value the models reject; the message starts with the option's flag."""


def _scalar_type(annotation: Any) -> tuple[type | None, tuple[Any, ...] | None]:
    """(argparse type, choices) of a field annotation; (None, None) when not a scalar."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _scalar_type(members[0]) if len(members) == 1 else (None, None)
    if origin is Literal:
        choices = get_args(annotation)
        return type(choices[0]), choices
    if annotation in (int, float, str, bool):
        return annotation, None
    return None, None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class ModelOptions:
    """The options of several pydantic models on one parser, grouped by model."""

    def __init__(self, models: Mapping[str, type[BaseModel]], *, only: Iterable[str] = ()) -> None:
        """``models`` maps a group name (``data``) to its model; ``only`` limits the fields."""
        self.models = dict(models)
        self.only = set(only)
        names = [n for m in self.models.values() for n in self._fields(m)]
        shared = {n for n in names if names.count(n) > 1}
        self.flags: dict[tuple[str, str], str] = {
            (group, name): _flag(f"{group}_{name}" if name in shared else name)
            for group, model in self.models.items()
            for name in self._fields(model)
        }

    def field_names(self, model: type[BaseModel]) -> list[str]:
        """The fields of ``model`` that are options (scalars, within ``only``)."""
        return self._fields(model)

    def _fields(self, model: type[BaseModel]) -> list[str]:
        return [
            name
            for name, field in model.model_fields.items()
            if _scalar_type(field.annotation)[0] is not None
            and (not self.only or name in self.only)
        ]

    def add_to(self, parser: argparse.ArgumentParser, *, rename: Mapping[str, str] = {}) -> None:
        """Add one option per field (``rename`` maps a field name to another flag)."""
        for group, model in self.models.items():
            section = parser.add_argument_group(model.__name__, (model.__doc__ or "").strip())
            for name in self._fields(model):
                field = model.model_fields[name]
                if name in rename:
                    self.flags[group, name] = rename[name]
                kind, choices = _scalar_type(field.annotation)
                default = field.get_default(call_default_factory=True)
                kwargs: dict[str, Any] = {
                    "dest": f"{group}.{name}",
                    "default": argparse.SUPPRESS,
                    "help": f"{field.description or ''} (default: {default})".strip(),
                }
                if kind is bool:
                    kwargs["action"] = argparse.BooleanOptionalAction
                else:
                    kwargs.update(type=kind, choices=choices)
                    if choices is None:
                        kwargs["metavar"] = name.upper()
                section.add_argument(self.flags[group, name], **kwargs)

    def values(self, args: argparse.Namespace, group: str) -> dict[str, Any]:
        """The options of ``group`` given on the command line, by field name."""
        prefix = f"{group}."
        return {k[len(prefix) :]: v for k, v in vars(args).items() if k.startswith(prefix)}

    def build(self, args: argparse.Namespace, group: str, **extra: Any) -> BaseModel:
        """Validate ``group``'s options (plus ``extra`` fields) into its model.

        Raises :class:`OptionError` naming the flag of the first rejected field.
        """
        model = self.models[group]
        try:
            return model.model_validate({**extra, **self.values(args, group)})
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else ""
            flag = self.flags.get((group, name), f"{group}.{name}" if name else group)
            value = f" (got {error['input']!r})" if name else ""
            raise OptionError(f"{flag}: {error['msg']}{value}") from None
