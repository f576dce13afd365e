"""Tasks: short AWS work a command needs before it can answer (list, describe, checks before an
approval, tagging). The ack path records the task and its due work in one Redis transaction and
answers "working on it"; a worker runs it and the answer goes back through the outbox (the
command's response_url, or a DM to the person when that no longer works).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.context import Caller
from bot.errors import AmibotError, AwsError
from bot.ids import new_token
from bot.messages import Delivery, OutboxItem
from bot.notices import in_account
from bot.store.effects import Effects
from bot.store.work import WorkStore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
SCHEDULER = "amibot"  # the requester of work amibot starts on its own


def is_person(user: str) -> bool:
    return user.startswith(("U", "W"))


@dataclass(frozen=True)
class Task:
    id: str
    kind: str
    user: str
    channel: str
    team: str
    response_url: str
    payload: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    attempts: int = 0

    @property
    def caller(self) -> Caller:
        return Caller(user=self.user, channel=self.channel, team=self.team, response_url=self.response_url)

    @property
    def account_note(self) -> str:
        return in_account(self.payload.get("account"))

    def answer(
        self, text: str, blocks: list[dict[str, Any]] | None = None, *, key: str = "answer"
    ) -> OutboxItem:
        """The task's reply to the person who asked (ephemeral; a DM if the response URL is dead).

        Tasks amibot starts itself (the prune schedule) have no person: they answer in their channel.
        """
        if not self.response_url and not is_person(self.user):
            return OutboxItem(
                id=f"task:{self.id}:{key}", kind=Delivery.POST, text=text, blocks=blocks, channel=self.channel
            )
        return OutboxItem(
            id=f"task:{self.id}:{key}",
            kind=Delivery.RESPOND,
            text=text,
            blocks=blocks,
            response_url=self.response_url or None,
            fallback_user=self.user,
        )


# A task handler returns what to write when the task is done (its answer and any other effects).
TaskHandler = Callable[[Task], Effects]


class Tasks:
    def __init__(self, work: WorkStore, *, clock: Callable[[], float] = time.time) -> None:
        self._work = work
        self._clock = clock
        self._handlers: dict[str, TaskHandler] = {}

    def register(self, kind: str, handler: TaskHandler) -> None:
        self._handlers[kind] = handler

    @property
    def kinds(self) -> Mapping[str, TaskHandler]:
        return self._handlers

    def submit(
        self, kind: str, caller: Caller, payload: Mapping[str, Any], effects: Effects | None = None
    ) -> Task:
        """Record a task (ack path: Redis only); `effects` are written with it (e.g. audit)."""
        if kind not in self._handlers:
            raise KeyError(kind)
        now = self._clock()
        task = Task(
            id=f"t-{new_token()}",
            kind=kind,
            user=caller.user,
            channel=caller.channel,
            team=caller.team,
            response_url=caller.response_url,
            payload=dict(payload),
            created_at=now,
        )
        self._work.put_task(
            task.id, asdict(task), Effects(work=[(f"task:{task.id}", now)]) + (effects or Effects())
        )
        return task

    def run(self, task_id: str) -> float | None:
        """The runner's handler for `task:<id>` work items."""
        data = self._work.get_task(task_id)
        if data is None:
            return None  # finished (or expired) already
        task = Task(**data)
        handler = self._handlers.get(task.kind)
        if handler is None:
            self._work.finish_task(
                task_id, Effects(notices=[task.answer(f"❌ amibot cannot do `{task.kind}`")])
            )
            return None
        try:
            effects = handler(task)
        except AwsError as exc:
            if exc.retryable and task.attempts + 1 < MAX_ATTEMPTS:
                self._work.put_task(task_id, {**data, "attempts": task.attempts + 1}, Effects())
                return self._clock() + min(60.0, 2.0 ** (task.attempts + 1))
            effects = Effects(notices=[task.answer(f"❌ {exc.message}{task.account_note}")])
        except AmibotError as exc:
            effects = Effects(notices=[task.answer(f"⚠️ {exc.message}{task.account_note}")])
        self._work.finish_task(task_id, effects)
        return None
