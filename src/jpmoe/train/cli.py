"""Run arguments for apps: an `Args` dataclass filled from defaults < `--config run.toml` < `--flag value`.

Unknown keys, in the TOML file or on the command line, are an error naming the key and the known ones. A list
flag may be repeated (`--model a --model b` is `--model a,b`); a bool flag given alone (`--resume`) means true. `-h` /
`--help` prints the app's docstring and every flag with its type and default. Parsing the process's own command
line (argv None), a bad flag or config prints `error: ...` and exits with status 2 instead of a traceback.
"""

from __future__ import annotations

import dataclasses
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def _convert(name: str, kind: Any, value: Any) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kinds = [k for k in typing.get_args(kind) if k is not type(None)]
        if value in (None, "none", "None"):
            return None
        kind = kinds[0]
    if kind is bool and isinstance(value, str):
        if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
            raise ValueError(f"--{name}: expected true/false, got {value!r}")
        return value.lower() in ("1", "true", "yes")
    if typing.get_origin(kind) in (list, tuple):
        items = value.split(",") if isinstance(value, str) else list(value)
        inner = (typing.get_args(kind) or (str,))[0]
        return typing.get_origin(kind)(_convert(name, inner, v) for v in items)
    if kind in (int, float, bool) and not isinstance(value, str) and (
            isinstance(value, bool) != (kind is bool) or (kind is int and value != int(value))):
        # a TOML value of the wrong type: int(3.7) would silently train on 3, int(true) on 1
        raise ValueError(f"--{name}: expected {kind.__name__}, got {value!r}")
    try:
        return kind(value) if kind in (int, float, str) else value
    except (TypeError, ValueError) as e:
        raise ValueError(f"--{name}: cannot read {value!r} as {kind.__name__}") from e


def usage(cls: type) -> str:
    """The app's docstring (the `__main__` module's), then every flag with its type and default."""
    doc = getattr(sys.modules.get("__main__"), "__doc__", None) or ""
    hints = typing.get_type_hints(cls)
    lines = [doc.strip(), "", "flags (each also a key of --config FILE.toml):"]
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")
        hint = hints[f.name]
        kind = str(hint).replace("typing.", "") if typing.get_args(hint) else hint.__name__
        lines.append(f"  --{f.name} {kind} (default: {default!r})")
    return "\n".join(lines).lstrip("\n")


def parse_args(cls: type[T], argv: list[str] | None = None) -> T:
    """Build `cls` (a dataclass) from its defaults, then `--config FILE.toml`, then `--key value` flags."""
    own = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(usage(cls))
        raise SystemExit(0)
    try:
        return _parse(cls, argv)
    except (ValueError, OSError) as e:  # tomllib.TOMLDecodeError is a ValueError
        if not own:
            raise
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def _parse(cls: type[T], argv: list[str]) -> T:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    flags: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if not tok.startswith("--"):
            raise ValueError(f"unexpected argument {tok!r}; use --key value")
        key, eq, val = tok[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            bare = i >= len(argv) or argv[i].startswith("--")
            if bare and key in hints and hints[key] is bool:  # `--resume` alone means `--resume true`
                val = "true"
            elif bare:
                raise ValueError(f"--{key} needs a value")
            else:
                val, i = argv[i], i + 1
        if key in flags and key in hints and typing.get_origin(hints[key]) in (list, tuple):
            # a repeated list flag adds items: --model a --model b == --model a,b
            prev = flags[key]
            flags[key] = (prev if isinstance(prev, list) else prev.split(",")) + val.split(",")
        else:
            flags[key] = val
    config = flags.pop("config", None)
    if config is not None:
        with Path(config).open("rb") as f:
            table = tomllib.load(f)
        bad = sorted(set(table) - set(fields))
        if bad:
            raise ValueError(f"{config}: unknown keys {bad}; known: {sorted(fields)}")
        values.update({k: _convert(k, hints[k], v) for k, v in table.items()})
    bad = sorted(set(flags) - set(fields))
    if bad:
        raise ValueError(f"unknown flags {['--' + b for b in bad]}; known: {sorted(fields)}")
    values.update({k: _convert(k, hints[k], v) for k, v in flags.items()})
    if config is not None and "config" in fields:
        values["config"] = config
    return cls(**values)
