"""The notice ahead of a scheduled prune: the AMIs the next run would prune, each with a Keep
button (`ami_keep`) that sets the protect tag. Approvers and admins may keep."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot import blocks as bk
from bot import prune
from bot.context import Caller
from bot.errors import PermissionDenied, UserError
from bot.ids import ActionId, new_token
from bot.messages import Delivery, OutboxItem
from bot.notices import in_account, when
from bot.protecting import TASK as PROTECT_TASK
from bot.pruning import Pruning
from bot.roles import RoleDirectory
from bot.store.effects import AuditEntry, Effects
from bot.store.offers import OfferStore
from bot.tasks import Task, Tasks

NOTICE_TASK = "prune-notice"
WITH_BUTTONS = 40  # Slack allows 50 blocks a message
_TOKEN = re.compile(r"^k-[0-9a-f]{16}$")


@dataclass(frozen=True)
class KeepSettings:
    lead_s: float  # AMIBOT_PRUNE_NOTICE
    channel: str | None


class Keeping:
    def __init__(
        self,
        tasks: Tasks,
        offers: OfferStore,
        pruning: Pruning,
        roles: RoleDirectory,
        settings: KeepSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tasks = tasks
        self._offers = offers
        self._pruning = pruning
        self._roles = roles
        self._settings = settings
        self._clock = clock
        tasks.register(NOTICE_TASK, self.notice_task)

    def notice_task(self, task: Task) -> Effects:
        """Worker: plan as of the next run and list what it would prune, with Keep buttons."""
        run_at = datetime.fromisoformat(task.payload["run_at"])
        account = task.payload.get("account")
        policy = self._pruning.policy()
        regions = self._pruning.regions_for(account, None)
        upcoming: list[prune.PlanItem] = []
        for region in regions:
            images, usage = self._pruning.inventory(account, region)
            if usage.unresolved:
                continue  # unresolved references: nothing in this region will be pruned
            upcoming.extend(prune.plan(images, usage.uses, policy, run_at).to_prune)
        if not upcoming:
            return Effects()
        offers = {
            f"k-{new_token()}": {"account": account, "region": i.image.region, "image_id": i.image.image_id}
            for i in upcoming
        }
        self._offers.put(offers, self._settings.lead_s + 86400)
        blocks: list[dict[str, Any]] = [
            bk.section(
                f"🧹 The scheduled prune on {when(run_at.timestamp())}{in_account(account)} would deregister "
                f"these {len(upcoming)} AMIs. Click *Keep* to protect one (sets the protect tag)."
            )
        ]
        for token, planned in list(zip(offers, upcoming, strict=True))[:WITH_BUTTONS]:
            image = planned.image
            label = f"`{image.image_id}` {image.name or '(no name)'} · {image.region} · {planned.reasons[0]}"
            blocks.append(bk.section(label, accessory=bk.button("Keep", ActionId.KEEP, token)))
        rest = [
            f"`{i.image.image_id}` {i.image.name or '(no name)'} · {i.image.region}"
            for i in upcoming[WITH_BUTTONS:]
        ]
        if rest:
            blocks.append(
                bk.context(f"… and {len(rest)} more (listed in the thread; `/ami protect AMI_ID` keeps one)")
            )
        notice = OutboxItem(
            id=f"task:{task.id}:prune-notice@{task.channel}",
            kind=Delivery.POST,
            text=f"The scheduled prune would deregister {len(upcoming)} AMIs{in_account(account)}",
            blocks=blocks,
            channel=task.channel,
            followups=tuple("\n".join(rest[i : i + 40]) for i in range(0, len(rest), 40)),
        )
        return Effects(notices=[notice])

    def keep(self, token: str, caller: Caller) -> None:
        """The Keep button (ack path: Redis, and Slack to resolve user groups)."""
        if not _TOKEN.match(token or ""):
            raise UserError("that button does not name an AMI to keep")
        if not self._roles.is_approver(caller.user):
            raise PermissionDenied("only approvers and admins can keep an AMI from pruning")
        offer = self._offers.get(token)
        if offer is None:
            raise UserError("this notice has expired; use `/ami protect AMI_ID` instead")
        payload = {**offer, "protect": True}
        audit = AuditEntry(
            actor=caller.user,
            action="prune.keep",
            target=offer["image_id"],
            account=offer.get("account") or "",
            region=offer["region"],
        )
        self._tasks.submit(PROTECT_TASK, caller, payload, Effects(audit=[audit]))
