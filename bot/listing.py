"""`/ami list`: the account's AMIs in one region, newest first, one compact line each, capped.

1. ack path: record a task (Redis only) and answer "listing".
2. worker: DescribeImages through the paginator (every page; `--name` and `--tag` become EC2's
   `name` and `tag:KEY` filters, so AWS does the matching), `--older-than` applied to CreationDate,
   newest first. The in-use marker comes from one paginated DescribeInstances sweep (instances only:
   launch templates, launch configurations and auto scaling groups would cost several more list
   calls per region, so they are left to `/ami describe`, which checks every kind of use).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from bot import blocks as bk
from bot.aws.ec2 import Ec2
from bot.commands import List
from bot.context import Caller, Reply
from bot.durations import format_duration
from bot.images import Image
from bot.notices import in_account
from bot.store.effects import Effects
from bot.tasks import Task, Tasks

TASK = "list"
SHOW_AT_MOST = 25
ROWS_PER_SECTION = 10  # keeps each section under Slack's 3,000 characters
IN_USE = "▶ in use"


def age(seconds: float) -> str:
    """Coarse and short: 45m, 30h, 12d."""
    seconds = max(0.0, seconds)
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def ec2_name_filter(pattern: str | None) -> str | None:
    """A pattern without wildcards matches names that contain it; with * or ?, EC2's own matching."""
    if not pattern:
        return None
    return pattern if any(c in pattern for c in "*?") else f"*{pattern}*"


def describe_filters(payload: dict[str, Any]) -> str:
    """The filters of a list request in words ("" when none)."""
    parts = []
    pattern = payload.get("name_pattern")
    if pattern:
        verb = "matches" if any(c in pattern for c in "*?") else "contains"
        parts.append(f"name {verb} “{pattern}”")
    parts += [f"tag {key}={value}" for key, value in payload.get("tags", [])]
    if payload.get("older_than_s"):
        parts.append(f"older than {format_duration(timedelta(seconds=payload['older_than_s']))}")
    return ", ".join(parts)


def image_row(image: Image, in_use: bool, now: float) -> str:
    name = image.name if len(image.name) <= 60 else image.name[:59] + "…"
    row = (
        f"`{image.image_id}` {name or '(no name)'} · {age(now - image.creation_date.timestamp())} · "
        f"{image.state} · {image.size_gib} GiB"
    )
    return row + (f" · *{IN_USE}*" if in_use else "")


def render_list(
    images: Sequence[Image],
    in_use: set[str],
    *,
    region: str,
    account: str | None,
    filters: str,
    now: float,
    limit: int = SHOW_AT_MOST,
) -> tuple[str, list[dict[str, Any]]]:
    """The answer to `/ami list` (pure): header, one row per image (newest first), a footer."""
    where = f"{region}{in_account(account)}" + (f" ({filters})" if filters else "")
    if not images:
        text = f"No AMIs owned by this account in {where}."
        return text, [bk.section(text)]
    shown = list(images[:limit])
    total_gib = sum(i.size_gib for i in images)
    noun = "AMI" if len(images) == 1 else "AMIs"
    head = f"*{len(images)} {noun}* in {where}, newest first · {total_gib} GiB of snapshots"
    rows = [image_row(image, image.image_id in in_use, now) for image in shown]
    notes = []
    if len(images) > limit:
        notes.append(f"{len(images) - limit} more — narrow with --name, --older-than or --tag")
    notes.append(
        f"{IN_USE}: a non-terminated instance runs it (launch templates and auto scaling groups "
        "are not checked here; `/ami describe AMI_ID` shows every use)"
    )
    blocks = [bk.section(head)]
    for start in range(0, len(rows), ROWS_PER_SECTION):
        blocks.append(bk.section("\n".join(rows[start : start + ROWS_PER_SECTION])))
    blocks.append(bk.context(*notes))
    return "\n".join([head, *rows, *notes]), blocks


class Listing:
    def __init__(
        self,
        tasks: Tasks,
        ec2: Ec2,
        *,
        clock: Callable[[], float] = time.time,
        limit: int = SHOW_AT_MOST,
    ) -> None:
        self._tasks = tasks
        self._ec2 = ec2
        self._clock = clock
        self._limit = limit
        tasks.register(TASK, self.run)

    def request(self, cmd: List, caller: Caller) -> Reply:
        payload = {
            "region": cmd.region,
            "account": cmd.account,
            "name_pattern": cmd.name_pattern,
            "tags": [list(pair) for pair in cmd.tags],
            "older_than_s": cmd.older_than.total_seconds() if cmd.older_than else None,
        }
        self._tasks.submit(TASK, caller, payload)
        return Reply(f"🔎 Listing AMIs in {cmd.region}{in_account(cmd.account)}…")

    def run(self, task: Task) -> Effects:
        p = task.payload
        region, account = p["region"], p.get("account")
        images = self._ec2.own_images(
            account,
            region,
            name_pattern=ec2_name_filter(p.get("name_pattern")),
            tags=[(key, value) for key, value in p.get("tags", [])],
        )
        now = self._clock()
        if p.get("older_than_s"):
            cutoff = now - float(p["older_than_s"])
            images = [image for image in images if image.creation_date.timestamp() <= cutoff]
        images.sort(key=lambda image: (image.creation_date, image.image_id), reverse=True)
        in_use = self._ec2.instance_image_ids(account, region) if images else set()
        text, blocks = render_list(
            images,
            in_use,
            region=region,
            account=account,
            filters=describe_filters(p),
            now=now,
            limit=self._limit,
        )
        return Effects(notices=[task.answer(text, blocks)])
