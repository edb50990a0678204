"""Presets shipped with cypher: TOML files, one folder per kind (flows, fx, voices, styles,
controllers, live, verses).

Loading validates nothing but the TOML itself; each kind's dataclass checks its keys.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).parent


class PresetError(ValueError):
    """A preset that does not exist or does not parse; the text says what is valid."""


def user_dir() -> Path:
    """Where presets a user saves live ($CYPHER_HOME, else ~/.config/cypher); they win over shipped ones."""
    return Path(os.environ.get("CYPHER_HOME") or Path.home() / ".config" / "cypher")


def names(kind: str) -> list[str]:
    """Names of the presets of one kind (shipped and the user's), sorted."""
    return sorted({p.stem for folder in (ROOT / kind, user_dir() / kind) for p in folder.glob("*.toml")})


def load(kind: str, name: str) -> dict:
    """The parsed TOML of preset `name` of `kind`, or a path to a .toml file of that kind."""
    if name.endswith(".toml"):
        path = Path(name)
    else:
        mine = user_dir() / kind / f"{name}.toml"
        path = mine if mine.is_file() else ROOT / kind / f"{name}.toml"
    if not path.is_file():
        valid = ", ".join(names(kind)) or "(none)"
        label = "live preset" if kind == "live" else kind[:-1] if kind.endswith("s") else kind
        raise PresetError(f"unknown {label} {name!r}; valid names: {valid} (or a path to a .toml file)")
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise PresetError(f"{path}: not valid TOML: {e}") from None
