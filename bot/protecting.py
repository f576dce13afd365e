"""`/ami protect` and `/ami unprotect`: set or remove the protect tag (approvers and admins)."""

from __future__ import annotations

from bot.aws.ec2 import Ec2
from bot.commands import Protect, Unprotect
from bot.context import Caller, Reply
from bot.notices import in_account
from bot.store.effects import AuditEntry, Effects
from bot.tasks import Task, Tasks

TASK = "protect"


class Protecting:
    def __init__(self, tasks: Tasks, ec2: Ec2, protect_tag: str) -> None:
        self._tasks = tasks
        self._ec2 = ec2
        self._tag = protect_tag
        tasks.register(TASK, self.run)

    def request(self, cmd: Protect | Unprotect, caller: Caller) -> Reply:
        protect = isinstance(cmd, Protect)
        payload = {"image_id": cmd.ami_id, "region": cmd.region, "account": cmd.account, "protect": protect}
        self._tasks.submit(TASK, caller, payload)
        where = f"{cmd.region}{in_account(cmd.account)}"
        return Reply(
            f"🔒 Protecting `{cmd.ami_id}` in {where}…"
            if protect
            else f"🔓 Unprotecting `{cmd.ami_id}` in {where}…"
        )

    def run(self, task: Task) -> Effects:
        p = task.payload
        image_id, region, account, protect = p["image_id"], p["region"], p.get("account"), bool(p["protect"])
        image = self._ec2.own_image(account, region, image_id)
        if image is None:
            return Effects(
                notices=[
                    task.answer(
                        f"⚠️ image {image_id} not found in {region}{in_account(account)}, "
                        "or not owned by this account"
                    )
                ]
            )
        self._ec2.tag_image(account, region, image_id, self._tag, task.user if protect else None)
        action = "protect" if protect else "unprotect"
        text = (
            f"🔒 `{image_id}` ({image.name}) in {region}{in_account(account)} is protected: "
            f"tag `{self._tag}` set; prune and deregister will skip it."
            if protect
            else f"🔓 `{image_id}` ({image.name}) in {region}{in_account(account)} is no longer protected: "
            f"tag `{self._tag}` removed."
        )
        audit = AuditEntry(
            actor=task.user, action=f"image.{action}", target=image_id, account=account or "", region=region
        )
        return Effects(notices=[task.answer(text)], audit=[audit])
