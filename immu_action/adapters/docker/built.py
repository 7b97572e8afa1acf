"""What a build produces, shared by the BuildKit and the legacy builder; importable without
docker-py (``immu run`` launches buildx before it imports docker-py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from immu_action.errors import BadInput

LogSink = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class BuiltImage:
    """An image the engine built: its ID (``sha256:...``) and the labels it carries."""

    image_id: str
    labels: Mapping[str, str]


class BuildFailed(BadInput):
    """The Dockerfile itself failed (a RUN step, a missing file): the user's to fix (exit 2)."""
