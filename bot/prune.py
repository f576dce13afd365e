"""The prune planner: which AMIs a prune may deregister, and why every other one is kept.

Pure code: no AWS, no Redis, no clock. The caller lists the images and where they are
used (`bot.images`), passes the policy and the current time, and gets a `Plan` back.

Family
------
`family_of(image)` groups the AMIs that are versions of one image:

1. If the image has the tag `amibot:family` (`Policy.family_tag`) and its value, with
   surrounding white space removed, is not empty, that value is the family.
2. Otherwise the name is split into words at runs of the separators ``-``, ``_``, ``.`` and
   space. A *version word* is an optional ``v``, digits, optionally ``T`` and digits, and
   optionally a final ``Z`` (letters in any case): ``2026``, ``0930``, ``v1``, ``27T09``,
   ``00Z``, ``20261127T093000Z``. The family is the name without its longest run of trailing
   version words and the separators before and after them:
   ``web-golden-2026-11-27-0930`` → ``web-golden``, ``api-v1.4.2`` → ``api``,
   ``base_2026_11_27`` → ``base``, ``app-2026-11-27T09-30-00Z`` → ``app``,
   ``nightly-build-42`` → ``nightly-build``, ``ubuntu-22.04-base-2026-11-27`` →
   ``ubuntu-22.04-base`` (only the end of the name is looked at), ``golden`` → ``golden``.
3. A family is never empty: if nothing would be left (the name is only a version, such as
   ``2026-11-27``) the family is the whole name; an image without a name is its own family
   (its image id).

Families are compared per region: images of one family in two regions are two groups.

Rules
-----
An image is pruned only if no keep rule applies. It is kept if

- it is in use (instance, launch template version, launch configuration, auto scaling group);
- it has the protect tag (`amibot:keep`, any value), or deregistration protection is on;
- it is one of the newest `keep_last` *available* images of its family (newest by
  creation date; equal dates are ranked by image id, smaller first). Images that are not
  available (pending, failed, ...) are not counted and never push an available one out;
- it is younger than the retention (``now - creation_date < retention``);
- its state is neither ``available`` nor ``failed``/``error``: a ``pending`` image is being
  created, and any other state (``transient``, ``deregistered``, ``disabled``, ``invalid``,
  unknown) is kept because deleting what the planner does not understand is never right.

Every rule that applies is listed, in that order, as a human-readable reason; a pruned image
has one reason saying why it may go. The result does not depend on the order of the input.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.images import Image, InUse, Snapshot, Use, UseKind

__all__ = [
    "Plan",
    "PlanItem",
    "Policy",
    "ReasonKind",
    "Verdict",
    "family_of",
    "format_duration",
    "plan",
    "reason_kind",
]

DEFAULT_FAMILY_TAG = "amibot:family"
DEFAULT_PROTECT_TAG = "amibot:keep"
PLAN_FORMAT = 1  # version of the `Plan.to_dict` layout

_SEPARATORS = re.compile(r"([-_. ]+)")
_VERSION_WORD = re.compile(r"v?\d+(?:t\d+)?z?", re.IGNORECASE)

AVAILABLE = "available"
_PRUNABLE_STATES = frozenset({AVAILABLE, "failed", "error"})
_MAX_USES_SHOWN = 3


# --- family ---------------------------------------------------------------------------------


def family_of(image: Image, family_tag: str = DEFAULT_FAMILY_TAG) -> str:
    """The family of `image`; see the module docstring for the rule."""
    tagged = image.tags.get(family_tag, "").strip()
    if tagged:
        return tagged
    return _strip_version(image.name) or image.image_id


def _strip_version(name: str) -> str:
    """`name` without its trailing version words; `name` itself if nothing would be left."""
    parts = _SEPARATORS.split(name)  # word, separator, word, ..., word (linear, no backtracking)
    end = len(parts)
    while end > 0 and (parts[end - 1] == "" or _VERSION_WORD.fullmatch(parts[end - 1])):
        end -= 2  # drop the word (possibly empty) and the separator before it
    stem = "".join(parts[: max(end, 0)])
    return stem or name


# --- policy and results ---------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    retention: timedelta
    keep_last: int
    protect_tag: str = DEFAULT_PROTECT_TAG
    family_tag: str = DEFAULT_FAMILY_TAG
    price_per_gib_month: float = 0.05

    def __post_init__(self) -> None:
        if self.retention < timedelta(0):
            raise ValueError(f"retention must not be negative, got {self.retention}")
        if self.keep_last < 0:
            raise ValueError(f"keep_last must not be negative, got {self.keep_last}")
        if not self.protect_tag or not self.family_tag:
            raise ValueError("protect_tag and family_tag must not be empty")
        if self.price_per_gib_month < 0:
            raise ValueError(f"price_per_gib_month must not be negative, got {self.price_per_gib_month}")


class Verdict(StrEnum):
    PRUNE = "prune"
    KEEP = "keep"


class ReasonKind(StrEnum):
    """What kind of rule a reason states; `Plan.counts()` counts items by these."""

    IN_USE = "in_use"
    PROTECTED = "protected"
    DEREGISTRATION_PROTECTION = "deregistration_protection"
    KEEP_LAST = "keep_last"
    RETENTION = "retention"
    NOT_AVAILABLE = "not_available"
    PRUNABLE = "prunable"


# Every reason text starts with the prefix of its kind; `reason_kind` relies on it.
_PREFIXES: tuple[tuple[ReasonKind, str], ...] = (
    (ReasonKind.IN_USE, "in use by "),
    (ReasonKind.PROTECTED, "protected (tag "),
    (ReasonKind.DEREGISTRATION_PROTECTION, "deregistration protection on"),
    (ReasonKind.KEEP_LAST, "newest "),
    (ReasonKind.RETENTION, "younger than "),
    (ReasonKind.NOT_AVAILABLE, "not available ("),
    (ReasonKind.PRUNABLE, "older than "),
)
_KEEP_KINDS = tuple(kind for kind, _ in _PREFIXES if kind is not ReasonKind.PRUNABLE)
_BY_FIRST_WORD = {prefix.split(" ", 1)[0]: (kind, prefix) for kind, prefix in _PREFIXES}
assert len(_BY_FIRST_WORD) == len(_PREFIXES), "reason prefixes must differ in their first word"


def reason_kind(reason: str) -> ReasonKind:
    """The kind of a reason text produced by `plan` (ValueError for any other text)."""
    kind, prefix = _BY_FIRST_WORD.get(reason.split(" ", 1)[0], (None, ""))
    if kind is None or not reason.startswith(prefix):
        raise ValueError(f"not a prune reason: {reason!r}")
    return kind


@dataclass(frozen=True)
class PlanItem:
    """One image's verdict. `reasons`: every keep rule that applies, in the module's order
    (an "in use by" reason names at most three uses, then "and N more"); a PRUNE item has
    one reason, e.g. `older than 30d, not in use` (`..., failed` for a failed image)."""

    image: Image
    family: str
    verdict: Verdict
    reasons: tuple[str, ...]

    @property
    def kinds(self) -> tuple[ReasonKind, ...]:
        return tuple(reason_kind(r) for r in self.reasons)


@dataclass(frozen=True)
class Plan:
    items: tuple[PlanItem, ...]  # prune first, then by family, newest first, then image id
    policy: Policy
    now: datetime

    @property
    def to_prune(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.verdict is Verdict.PRUNE)

    @property
    def to_keep(self) -> tuple[PlanItem, ...]:
        return tuple(i for i in self.items if i.verdict is Verdict.KEEP)

    def counts(self) -> dict[str, int]:
        """Items by verdict (`prune`, `keep`), then kept items by each keep-reason kind.

        The keys are always all present, in this order; an item kept for several reasons
        counts once under each of them.
        """
        counts = {str(v): 0 for v in Verdict} | {str(k): 0 for k in _KEEP_KINDS}
        for item in self.items:
            counts[item.verdict] += 1
            for kind in set(item.kinds) - {ReasonKind.PRUNABLE}:
                counts[kind] += 1
        return counts

    @property
    def freed_gib(self) -> int:
        """GiB of the snapshots pruning deletes: each snapshot once, none a kept image uses."""
        kept: set[str] = set()
        pruned: dict[str, int] = {}
        for item in self.items:
            if item.verdict is Verdict.KEEP:
                kept.update(s.snapshot_id for s in item.image.snapshots)
            else:
                for snap in item.image.snapshots:
                    pruned.setdefault(snap.snapshot_id, snap.size_gib)
        return sum(size for snapshot_id, size in pruned.items() if snapshot_id not in kept)

    @property
    def monthly_saving(self) -> float:
        """Estimated saving per month (the snapshot price times `freed_gib`)."""
        return self.freed_gib * self.policy.price_per_gib_month

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible data; `Plan.from_dict` gives an equal plan back."""
        return {
            "format": PLAN_FORMAT,
            "now": self.now.isoformat(),
            "policy": _policy_to_dict(self.policy),
            "items": [_item_to_dict(item) for item in self.items],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """The plan `to_dict` described; ValueError if `data` is not such a description."""
        try:
            if data["format"] != PLAN_FORMAT:
                raise ValueError(f"unknown plan format {data['format']!r}")
            return cls(
                items=tuple(_item_from_dict(d) for d in data["items"]),
                policy=_policy_from_dict(data["policy"]),
                now=datetime.fromisoformat(data["now"]),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a stored plan: {exc!r}") from exc


# --- planning -------------------------------------------------------------------------------


def plan(images: Iterable[Image], in_use: InUse, policy: Policy, now: datetime) -> Plan:
    """Decide, for every image, whether a prune under `policy` at `now` deregisters it."""
    unique = _unique(images)
    families = {image.image_id: family_of(image, policy.family_tag) for image in unique}
    newest = _keep_last_ids(unique, families, policy.keep_last)
    items = [_judge(image, families[image.image_id], in_use, newest, policy, now) for image in unique]
    return Plan(items=_sorted_items(items), policy=policy, now=now)


def _unique(images: Iterable[Image]) -> list[Image]:
    """The images, each id once; ValueError if one id is given for two different images."""
    by_id: dict[str, Image] = {}
    for image in images:
        seen = by_id.setdefault(image.image_id, image)
        if seen is not image and seen != image:
            raise ValueError(f"image {image.image_id} is listed twice with different data")
    return list(by_id.values())


def _by_newest(images: Iterable[Image]) -> list[Image]:
    """Newest first; equal creation dates by image id (smaller first)."""
    ranked = sorted(images, key=lambda i: i.image_id)
    ranked.sort(key=lambda i: i.creation_date, reverse=True)  # stable: keeps the id order
    return ranked


def _keep_last_ids(images: Sequence[Image], families: Mapping[str, str], keep_last: int) -> set[str]:
    """Ids of the newest `keep_last` available images of each family in each region."""
    groups: dict[tuple[str, str], list[Image]] = defaultdict(list)
    for image in images:
        if _state(image) == AVAILABLE:
            groups[(image.region, families[image.image_id])].append(image)
    return {image.image_id for group in groups.values() for image in _by_newest(group)[:keep_last]}


def _judge(
    image: Image, family: str, in_use: InUse, newest: set[str], policy: Policy, now: datetime
) -> PlanItem:
    reasons = _keep_reasons(image, family, in_use.get(image.image_id, ()), newest, policy, now)
    if reasons:
        return PlanItem(image, family, Verdict.KEEP, reasons)
    return PlanItem(image, family, Verdict.PRUNE, (_prunable_reason(image, policy),))


def _keep_reasons(
    image: Image, family: str, uses: Sequence[Use], newest: set[str], policy: Policy, now: datetime
) -> tuple[str, ...]:
    reasons: list[str] = []
    if uses:
        reasons.append(_in_use_reason(uses))
    if policy.protect_tag in image.tags:
        reasons.append(f"protected (tag {policy.protect_tag})")
    if image.deregistration_protection:
        reasons.append("deregistration protection on")
    if image.image_id in newest:
        reasons.append(f"newest {policy.keep_last} of family {family}")
    if now - image.creation_date < policy.retention:
        reasons.append(f"younger than {format_duration(policy.retention)}")
    if _state(image) not in _PRUNABLE_STATES:
        reasons.append(f"not available ({image.state})")
    return tuple(reasons)


_KIND_ORDER = {kind: n for n, kind in enumerate(UseKind)}


def _in_use_reason(uses: Sequence[Use]) -> str:
    ordered = sorted(uses, key=lambda u: (_KIND_ORDER.get(u.kind, len(_KIND_ORDER)), u.ref, u.detail))
    shown = ", ".join(u.describe() for u in ordered[:_MAX_USES_SHOWN])
    more = len(ordered) - _MAX_USES_SHOWN
    return f"in use by {shown}" + (f" and {more} more" if more > 0 else "")


def _prunable_reason(image: Image, policy: Policy) -> str:
    text = f"older than {format_duration(policy.retention)}, not in use"
    return text if _state(image) == AVAILABLE else f"{text}, {image.state}"


def _state(image: Image) -> str:
    return image.state.lower()


def _sorted_items(items: Iterable[PlanItem]) -> tuple[PlanItem, ...]:
    """Prune first, then by family, newest first, then image id (stable sorts, finest first)."""
    ordered = sorted(items, key=lambda i: i.image.image_id)
    ordered.sort(key=lambda i: i.image.creation_date, reverse=True)
    ordered.sort(key=lambda i: (i.verdict is not Verdict.PRUNE, i.family))
    return tuple(ordered)


_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


@functools.lru_cache(maxsize=64)
def format_duration(duration: timedelta) -> str:
    """Compact form in the largest whole unit: 90m, 12h, 30d, 6w (0 is `0d`; rounds to seconds)."""
    seconds = round(duration.total_seconds())
    if seconds == 0:
        return "0d"
    for suffix, size in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{suffix}"
    raise AssertionError("unreachable: every whole number of seconds is a multiple of 1")


# --- storage (to_dict / from_dict) ----------------------------------------------------------


def _policy_to_dict(policy: Policy) -> dict[str, Any]:
    return {
        "retention_seconds": policy.retention.total_seconds(),
        "keep_last": policy.keep_last,
        "protect_tag": policy.protect_tag,
        "family_tag": policy.family_tag,
        "price_per_gib_month": policy.price_per_gib_month,
    }


def _policy_from_dict(data: Mapping[str, Any]) -> Policy:
    return Policy(
        retention=timedelta(seconds=data["retention_seconds"]),
        keep_last=int(data["keep_last"]),
        protect_tag=str(data["protect_tag"]),
        family_tag=str(data["family_tag"]),
        price_per_gib_month=float(data["price_per_gib_month"]),
    )


def _item_to_dict(item: PlanItem) -> dict[str, Any]:
    return {
        "image": _image_to_dict(item.image),
        "family": item.family,
        "verdict": str(item.verdict),
        "reasons": list(item.reasons),
    }


def _item_from_dict(data: Mapping[str, Any]) -> PlanItem:
    return PlanItem(
        image=_image_from_dict(data["image"]),
        family=str(data["family"]),
        verdict=Verdict(data["verdict"]),
        reasons=tuple(str(r) for r in data["reasons"]),
    )


def _image_to_dict(image: Image) -> dict[str, Any]:
    return {
        "image_id": image.image_id,
        "name": image.name,
        "state": image.state,
        "creation_date": image.creation_date.isoformat(),
        "region": image.region,
        "owner_id": image.owner_id,
        "description": image.description,
        "tags": dict(image.tags),
        "snapshots": [
            {"snapshot_id": s.snapshot_id, "size_gib": s.size_gib, "device": s.device}
            for s in image.snapshots
        ],
        "deregistration_protection": image.deregistration_protection,
        "deprecation_time": _iso(image.deprecation_time),
        "last_launched": _iso(image.last_launched),
        "public": image.public,
    }


def _image_from_dict(data: Mapping[str, Any]) -> Image:
    return Image(
        image_id=str(data["image_id"]),
        name=str(data["name"]),
        state=str(data["state"]),
        creation_date=datetime.fromisoformat(data["creation_date"]),
        region=str(data["region"]),
        owner_id=str(data["owner_id"]),
        description=str(data["description"]),
        tags={str(k): str(v) for k, v in data["tags"].items()},
        snapshots=tuple(
            Snapshot(snapshot_id=str(s["snapshot_id"]), size_gib=int(s["size_gib"]), device=str(s["device"]))
            for s in data["snapshots"]
        ),
        deregistration_protection=bool(data["deregistration_protection"]),
        deprecation_time=_from_iso(data["deprecation_time"]),
        last_launched=_from_iso(data["last_launched"]),
        public=bool(data["public"]),
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _from_iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)
