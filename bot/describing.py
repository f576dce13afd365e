"""`/ami describe AMI_ID`: one AMI in detail, and everything in the account that uses it.

1. ack path: record a task (Redis only) and answer "looking it up".
2. worker: DescribeImages for the id (shared and public images too, not only the account's own),
   then `find_uses` (instances, every launch template version, launch configurations, auto scaling
   groups; every list call paginated) and the answer through the outbox.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from bot import blocks as bk
from bot.aws.ec2 import Ec2
from bot.commands import Describe
from bot.context import Caller, Reply
from bot.errors import AwsError
from bot.images import Image, Use
from bot.listing import age
from bot.notices import in_account
from bot.store.effects import Effects
from bot.tasks import Task, Tasks

TASK = "describe"
SHOW_USES = 20
SHOW_TAGS = 50


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def deprecation_text(image: Image, now: float) -> str:
    if image.deprecation_time is None:
        return "not set"
    if image.deprecation_time.timestamp() <= now:
        return f"deprecated since {_when(image.deprecation_time)}"
    return f"deprecates at {_when(image.deprecation_time)}"


def protect_tag_text(image: Image, protect_tag: str) -> str:
    if protect_tag not in image.tags:
        return f"`{protect_tag}` not set"
    value = image.tags[protect_tag]
    by = f" by <@{value}>" if value[:1] in ("U", "W") and value.isalnum() else f" ({value})" if value else ""
    return f"`{protect_tag}` set{by}: prune and deregister skip it"


def uses_text(uses: Sequence[Use], unresolved: Sequence[str], error: str | None) -> str:
    if error is not None:
        return f"⚠️ could not check where it is used: {error}"
    lines = [f"• {use.describe()}" for use in uses[:SHOW_USES]]
    if len(uses) > SHOW_USES:
        lines.append(f"… and {len(uses) - SHOW_USES} more")
    if not uses:
        lines.append(
            "Not in use: no instance, launch template version, launch configuration "
            "or auto scaling group uses it."
        )
    lines += [f"⚠️ unresolved: {ref}" for ref in unresolved[:5]]
    return "\n".join(lines)


def render_image(
    image: Image,
    *,
    account: str | None,
    uses: Sequence[Use],
    unresolved: Sequence[str],
    uses_error: str | None,
    protect_tag: str,
    now: float,
) -> tuple[str, list[dict[str, Any]]]:
    """The answer to `/ami describe` (pure)."""
    where = f"{image.region}{in_account(account)}"
    head = f"*`{image.image_id}`* {image.name or '(no name)'} — {image.state} in {where}"
    created = f"{_when(image.creation_date)} ({age(now - image.creation_date.timestamp())} ago)"
    facts = [
        ("Created", created),
        ("Size", f"{image.size_gib} GiB in {len(image.snapshots)} snapshot(s)"),
        ("Deprecation", deprecation_text(image, now)),
        ("Deregistration protection", "enabled" if image.deregistration_protection else "disabled"),
        ("Protect tag", protect_tag_text(image, protect_tag)),
        ("Owner", image.owner_id + (" (public)" if image.public else "")),
        ("Last launched", _when(image.last_launched) if image.last_launched else "not reported"),
    ]
    if image.description:
        facts.append(("Description", image.description[:500]))
    snapshots = (
        "\n".join(f"• `{s.device or '?'}` `{s.snapshot_id}` {s.size_gib} GiB" for s in image.snapshots)
        or "none (instance-store or no EBS volumes)"
    )
    tag_lines = [f"• `{key}` = {value or '(empty)'}" for key, value in sorted(image.tags.items())]
    if len(tag_lines) > SHOW_TAGS:
        tag_lines = [*tag_lines[:SHOW_TAGS], f"… and {len(tag_lines) - SHOW_TAGS} more"]
    tags = "\n".join(tag_lines) or "none"
    used = uses_text(uses, unresolved, uses_error)
    blocks = [
        bk.section(head),
        bk.fields(*facts),
        bk.section(f"*Snapshots*\n{snapshots}"),
        bk.section(f"*Tags*\n{tags}"),
        bk.section(f"*Where it is used*\n{used}"),
    ]
    lines = [head, *(f"{k}: {v}" for k, v in facts), "Snapshots:", snapshots, "Tags:", tags, "Used by:", used]
    return "\n".join(lines), blocks


class Describing:
    def __init__(
        self, tasks: Tasks, ec2: Ec2, protect_tag: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._tasks = tasks
        self._ec2 = ec2
        self._protect_tag = protect_tag
        self._clock = clock
        tasks.register(TASK, self.run)

    def request(self, cmd: Describe, caller: Caller) -> Reply:
        payload = {"image_id": cmd.ami_id, "region": cmd.region, "account": cmd.account}
        self._tasks.submit(TASK, caller, payload)
        return Reply(f"🔎 Looking up `{cmd.ami_id}` in {cmd.region}{in_account(cmd.account)}…")

    def run(self, task: Task) -> Effects:
        p = task.payload
        image_id, region, account = p["image_id"], p["region"], p.get("account")
        image = self._ec2.images(account, region, [image_id]).get(image_id)
        if image is None:
            text = f"⚠️ image {image_id} not found in {region}{in_account(account)}"
            return Effects(notices=[task.answer(text)])
        uses: Sequence[Use] = ()
        unresolved: Sequence[str] = ()
        error = None
        try:
            usage = self._ec2.uses(account, region, [image_id])
            uses, unresolved = usage.uses.get(image_id, ()), usage.unresolved
        except AwsError as exc:
            if exc.retryable:
                raise  # the task is tried again later
            error = exc.message  # e.g. not allowed to list auto scaling groups: show the rest
        text, blocks = render_image(
            image,
            account=account,
            uses=uses,
            unresolved=unresolved,
            uses_error=error,
            protect_tag=self._protect_tag,
            now=self._clock(),
        )
        return Effects(notices=[task.answer(text, blocks)])
