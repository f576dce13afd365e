"""Jobs and their targets: plain data, lifecycle states and the transitions allowed between them.

A job is one tracked AWS operation (`j-7f3a9c`). Create has one target (the region it runs
in); copy has one target per destination region; deregister and prune have none (their
progress is in `result`). Jobs are stored as JSON in Redis by `bot.store`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any


class JobKind(StrEnum):
    CREATE = "create"
    COPY = "copy"
    DEREGISTER = "deregister"
    PRUNE = "prune"


class JobState(StrEnum):
    QUEUED = "queued"  # recorded; its AWS calls are not all made yet
    TRACKING = "tracking"  # waiting for images to become available
    RUNNING = "running"  # deregistration or prune executing
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "still pending"  # tracked until AMIBOT_MAX_WAIT; `/ami status JOB_ID` re-tracks
    CANCELLED = "cancelled"


class TargetState(StrEnum):
    REQUESTED = "requested"  # CreateImage/CopyImage not made yet
    QUEUED = "queued"  # AWS refused for a concurrency limit; tried again later
    PENDING = "pending"
    AVAILABLE = "available"
    FAILED = "failed"
    TIMED_OUT = "still pending"


FINISHED = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT, JobState.CANCELLED})
TARGET_DONE = frozenset({TargetState.AVAILABLE, TargetState.FAILED, TargetState.TIMED_OUT})

JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset(
        {JobState.TRACKING, JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.TRACKING: frozenset({JobState.QUEUED, JobState.SUCCEEDED, JobState.FAILED, JobState.TIMED_OUT}),
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED}),
    JobState.TIMED_OUT: frozenset({JobState.TRACKING}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}

TARGET_TRANSITIONS: dict[TargetState, frozenset[TargetState]] = {
    TargetState.REQUESTED: frozenset({TargetState.PENDING, TargetState.QUEUED, TargetState.FAILED}),
    TargetState.QUEUED: frozenset({TargetState.REQUESTED, TargetState.PENDING, TargetState.FAILED}),
    TargetState.PENDING: frozenset({TargetState.AVAILABLE, TargetState.FAILED, TargetState.TIMED_OUT}),
    TargetState.TIMED_OUT: frozenset({TargetState.PENDING, TargetState.AVAILABLE, TargetState.FAILED}),
    TargetState.AVAILABLE: frozenset(),
    TargetState.FAILED: frozenset(),
}


class InvalidTransition(Exception):
    """A state change the lifecycle does not allow (a bug or a lost race; nothing is written)."""


@dataclass(frozen=True)
class Target:
    region: str
    state: TargetState = TargetState.REQUESTED
    image_id: str | None = None
    started_at: float | None = None  # when the image id became known
    finished_at: float | None = None
    error: str | None = None
    missing_since: float | None = None  # DescribeImages did not return it yet (eventual consistency)

    @property
    def done(self) -> bool:
        return self.state in TARGET_DONE

    def to(self, state: TargetState, **changes: Any) -> Target:
        if state != self.state and state not in TARGET_TRANSITIONS[self.state]:
            raise InvalidTransition(f"target {self.region}: {self.state} -> {state}")
        return replace(self, state=state, **changes)


@dataclass(frozen=True)
class Job:
    id: str
    kind: JobKind
    requester: str
    channel: str
    region: str
    created_at: float
    state: JobState = JobState.QUEUED
    team: str = ""
    account: str | None = None
    response_url: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    targets: tuple[Target, ...] = ()
    deadline: float = 0.0  # tracking gives up ("still pending") after this time
    updated_at: float = 0.0
    finished_at: float | None = None
    error: str | None = None
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def target(self, region: str) -> Target:
        for target in self.targets:
            if target.region == region:
                return target
        raise KeyError(region)

    def with_target(self, target: Target) -> Job:
        return replace(self, targets=tuple(target if t.region == target.region else t for t in self.targets))

    def to(self, state: JobState, **changes: Any) -> Job:
        if state != self.state and state not in JOB_TRANSITIONS[self.state]:
            raise InvalidTransition(f"job {self.id}: {self.state} -> {state}")
        return replace(self, state=state, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON data (by hand: dataclasses.asdict deep-copies and is a hot spot of the ack path)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["targets"] = [{f.name: getattr(t, f.name) for f in fields(t)} for t in self.targets]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        targets = tuple(Target(**{**t, "state": TargetState(t["state"])}) for t in data.get("targets", ()))
        return cls(
            **{
                **data,
                "kind": JobKind(data["kind"]),
                "state": JobState(data["state"]),
                "targets": targets,
            }
        )
