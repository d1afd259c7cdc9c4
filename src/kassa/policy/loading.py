"""Loading policies: TOML files, shipped presets, and overrides — with errors a human can act on.

Design
------
* A policy file is TOML (read with the standard library's ``tomllib``). Either it is a whole
  policy, or it starts with ``extends = "<preset>"`` and lists only the parameters a deployment
  changes; tables merge key by key, lists and values replace.
* Presets are TOML files shipped inside the package (``kassa/policy/presets/*.toml``) and read
  through ``importlib.resources``, so they work from a wheel or a zip as well as from a checkout.
* Every problem becomes one `InvalidPolicy` (code ``invalid_policy``) naming the file, the key
  (``refund.minimum``, ``account_states[1].reason``) and what is wrong; all problems of a file are
  reported at once, not one per attempt.
"""

from __future__ import annotations

import tomllib
import typing
from collections.abc import Mapping
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from kassa.errors import KassaError
from kassa.policy.model import Policy

__all__ = [
    "InvalidPolicy",
    "load_policy",
    "load_preset",
    "parse_policy",
    "preset_names",
    "with_overrides",
]

_PRESET_DIR = "presets"


class InvalidPolicy(KassaError):
    """A policy file, preset name or override is unusable. ``problems`` lists each one."""

    code: ClassVar[str] = "invalid_policy"
    title: ClassVar[str] = "Invalid policy"

    def __init__(self, detail: str, *, source: str, problems: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.source = source
        self.problems = problems or (detail,)


# --------------------------------------------------------------------------- public


def preset_names() -> tuple[str, ...]:
    """Names of the presets shipped with Kassa, sorted."""
    folder = resources.files("kassa.policy").joinpath(_PRESET_DIR)
    return tuple(
        sorted(
            entry.name.removesuffix(".toml")
            for entry in folder.iterdir()
            if entry.is_file() and entry.name.endswith(".toml")
        )
    )


def load_preset(name: str) -> Policy:
    """The shipped preset ``name`` (``default``, ``codexkey``, …)."""
    known = preset_names()
    if name not in known:
        raise InvalidPolicy(
            f"unknown policy preset {name!r}; the presets are: {', '.join(known)}",
            source=f"preset {name!r}",
        )
    entry = resources.files("kassa.policy").joinpath(_PRESET_DIR, f"{name}.toml")
    source = f"preset {name!r}"
    # Presets are whole policies: ``extends`` is not allowed in them (it fails as an unknown key).
    return _validate(_parse_toml(entry.read_text(encoding="utf-8"), source), source)


def load_policy(path: str | PathLike[str]) -> Policy:
    """Read a policy file (a whole policy, or ``extends = "<preset>"`` plus overrides)."""
    source = f"policy file {Path(path)}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidPolicy(
            f"{source} cannot be read: {exc.strerror or exc}", source=source
        ) from None
    except UnicodeDecodeError:
        raise InvalidPolicy(f"{source} is not UTF-8 text", source=source) from None
    return parse_policy(text, source=source)


def parse_policy(text: str, *, source: str = "policy text") -> Policy:
    """Like `load_policy`, from TOML text; ``source`` names it in error messages."""
    data = _parse_toml(text, source)
    base_name = data.pop("extends", None)
    if base_name is None:
        return _validate(data, source)
    if not isinstance(base_name, str) or base_name not in preset_names():
        problem = (
            f"extends: unknown preset {base_name!r}; the presets are: {', '.join(preset_names())}"
        )
        raise InvalidPolicy(f"{source} is invalid: {problem}", source=source, problems=(problem,))
    return _validate(_merge(load_preset(base_name).to_data(), data), source)


def with_overrides(policy: Policy, overrides: Mapping[str, Any]) -> Policy:
    """``policy`` with some parameters changed, validated like a file.

    ``overrides`` has the file's shape: ``{"withdrawal": {"minimum": "25.00"}}``. Tables merge
    key by key; any other value (lists included) replaces. ``None`` or ``"none"`` switches an
    optional limit off.
    """
    source = f"overrides of policy {policy.name!r}"
    if not isinstance(overrides, Mapping):
        raise InvalidPolicy(
            f"{source} must be a table of parameters, got {type(overrides).__name__}",
            source=source,
        )
    return _validate(_merge(policy.to_data(), overrides), source)


# --------------------------------------------------------------------------- internals


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidPolicy(f"{source} is not valid TOML: {exc}", source=source) from None


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


def _validate(data: Mapping[str, Any], source: str) -> Policy:
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = tuple(_problem(error) for error in exc.errors(include_url=False))
        raise InvalidPolicy(
            f"{source} is invalid: {'; '.join(problems)}", source=source, problems=problems
        ) from None


def _problem(error: Mapping[str, Any]) -> str:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    kind = error["type"]
    if loc and loc[-1] == "[key]":
        # A bad key of a table such as [refund.clauses]: name the key, not pydantic's marker.
        loc = loc[:-1]
    key = _key_text(loc)
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        hint = f" (known keys: {', '.join(known)})" if known else ""
        message = f"unknown key{hint}"
    elif kind == "missing":
        message = "required key is missing"
    elif kind in ("value_error", "assertion_error"):
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    else:
        message = f"{error['msg']} (got {_short(error.get('input'))})"
    return f"{key}: {message}" if key else message


def _key_text(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _known_keys(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    """The keys allowed at ``loc`` (a path of the policy), for "unknown key" hints."""
    model: type[BaseModel] | None = Policy
    for part in loc:
        if isinstance(part, int) or model is None:
            continue  # a list index keeps the item's model
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return tuple(model.model_fields) if model is not None else ()


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
