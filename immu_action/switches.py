"""The tri-state switches of ``immu run`` (``--push``, ``--promote``) and the action."""

from __future__ import annotations

from typing import Literal

Switch = Literal["auto", "true", "false"]
SWITCHES: tuple[Switch, ...] = ("auto", "true", "false")
