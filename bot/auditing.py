"""`/ami audit [N]`: the last N entries of the audit log (admins only; Redis only)."""

from __future__ import annotations

from bot.commands import Audit
from bot.context import Caller, Reply
from bot.notices import when
from bot.store.audit import AuditLog


def line(entry: dict[str, str]) -> str:
    where = " ".join(x for x in (entry.get("account", ""), entry.get("region", "")) if x)
    who = entry.get("actor", "?")
    actor = f"<@{who}>" if who.startswith(("U", "W")) else who
    result = entry.get("result", "")
    outcome = "" if result in ("", "ok") else f" → {result}"
    detail = f" ({entry['detail']})" if entry.get("detail") else ""
    time_ = when(float(entry.get("time", "0") or 0))
    action = entry.get("action", "?")
    return f"`{time_}` {actor} {action} `{entry.get('target', '')}`{detail}{outcome} {where}".rstrip()


class Auditing:
    def __init__(self, log: AuditLog) -> None:
        self._log = log

    def show(self, cmd: Audit, caller: Caller) -> Reply:
        entries = self._log.last(cmd.n)
        if not entries:
            return Reply("The audit log is empty.")
        text = f"*Last {len(entries)} audit entries* (newest first)\n" + "\n".join(line(e) for e in entries)
        if len(text) > 3900:
            text = text[:3890] + "\n…"
        return Reply(text)
