"""What amibot knows about AMIs and where they are used: plain data, no AWS types.

`bot.aws` turns AWS responses into these; the planner, the renderers and the
deregistration checks read only these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: str
    size_gib: int
    device: str = ""


@dataclass(frozen=True)
class Image:
    image_id: str
    name: str
    state: str
    creation_date: datetime  # timezone-aware UTC
    region: str
    owner_id: str = ""
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    snapshots: tuple[Snapshot, ...] = ()
    deregistration_protection: bool = False
    deprecation_time: datetime | None = None
    last_launched: datetime | None = None
    public: bool = False

    @property
    def size_gib(self) -> int:
        return sum(s.size_gib for s in self.snapshots)


class UseKind(StrEnum):
    INSTANCE = "instance"
    LAUNCH_TEMPLATE = "launch template"
    LAUNCH_CONFIGURATION = "launch configuration"
    AUTO_SCALING_GROUP = "auto scaling group"


@dataclass(frozen=True)
class Use:
    """One place an AMI is used. `ref` names it (i-…, lt-… v3, a launch configuration or ASG name)."""

    kind: UseKind
    ref: str
    detail: str = ""  # e.g. the instance state, "$Default" for a template version

    def describe(self) -> str:
        text = f"{self.kind} {self.ref}"
        return f"{text} ({self.detail})" if self.detail else text


# AMI id -> every place it is used (absent or empty: not in use)
InUse = Mapping[str, tuple[Use, ...]]
