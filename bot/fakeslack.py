"""A fake Slack Web API server: a faithful local peer for the tests and for `amibot demo`.

It speaks HTTP on 127.0.0.1 the way slack.com does, so the real `slack_sdk.WebClient(base_url=
fake.api_url)` and `slack_sdk.webhook.WebhookClient(response_url)` work against it unchanged:

- `POST /api/<method>` with the token in `Authorization: Bearer`, params in a JSON body
  (slack_sdk uses JSON for chat.*, views.*) or a form body (everything else, booleans as "1"/"0")
  or the query string; the answer is HTTP 200 with `{"ok": true, ...}` or `{"ok": false, "error"}`.
- `POST /response/<token>` for the URLs made by `new_response_url()`: answered 200 "ok".
- Socket Mode: `apps.connections.open` (with the app-level token) answers a one-time
  `ws://127.0.0.1:<port>/link/?ticket=…` URL, and the fake speaks WebSocket there; a test
  pushes envelopes and reads the acks through `socket_mode` (see `bot.fakesocketmode`).

Everything is recorded (`calls()`, `messages()`, `posts()`, ...) and faults can be injected
(`fail_next()`, `down()`, `latency`). Where Slack's behaviour is subtle the fake copies it:
a private channel or DM the bot is not in is `channel_not_found` (Slack does not reveal it), a
public one is `not_in_channel`; metadata appears in history only with `include_all_metadata`;
thread replies are not in `conversations.history`; a trigger id is good for one view.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from bot.fakesocketmode import SocketModeHub

log = logging.getLogger(__name__)

T = TypeVar("T")
JsonDict = dict[str, Any]

APP_ID = "A0FAKESLACK"
APP_TOKEN = "xapp-1-A0FAKESLACK-1-fake"  # the app-level token apps.connections.open expects
MAX_TEXT = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_VIEW_TEXT = 24  # modal title, submit and close labels


class ApiError(Exception):
    """A Slack API error: `error` is the code, `messages` the details Slack adds for bad arguments."""

    def __init__(self, error: str, *messages: str) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages

    def to_api(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": list(self.messages)}
        return body


@dataclass
class Channel:
    id: str
    name: str = ""
    is_private: bool = False
    is_member: bool = True
    is_im: bool = False
    is_mpim: bool = False
    user: str | None = None  # the other side of a DM

    @property
    def hidden_unless_member(self) -> bool:
        return self.is_private or self.is_im or self.is_mpim

    def to_api(self) -> JsonDict:
        public = not self.hidden_unless_member
        data: JsonDict = {
            "id": self.id,
            "name": self.name,
            "is_channel": public,
            "is_group": self.is_private and not (self.is_im or self.is_mpim),
            "is_im": self.is_im,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private,
            "is_member": self.is_member,
            "is_archived": False,
        }
        if self.user:
            data["user"] = self.user
        return data


def default_channels() -> list[Channel]:
    return [
        Channel("CGENERAL", "general"),
        Channel("COPS", "ops"),
        Channel("CRANDOM", "random", is_member=False),
        Channel("CPRIVATE", "private", is_private=True, is_member=False),
    ]


@dataclass
class Message:
    """A message as the channel holds it now; `versions` are its earlier contents, oldest first."""

    channel: str
    ts: str
    text: str
    blocks: list[JsonDict]
    user: str
    bot_id: str
    thread_ts: str | None = None
    reply_broadcast: bool = False
    metadata: JsonDict | None = None
    edited_ts: str | None = None
    deleted: bool = False
    versions: list[JsonDict] = field(default_factory=list)

    @property
    def top_level(self) -> bool:
        return self.thread_ts in (None, self.ts) or self.reply_broadcast

    def to_api(self, team_id: str, *, include_metadata: bool = True) -> JsonDict:
        data: JsonDict = {
            "type": "message",
            "user": self.user,
            "bot_id": self.bot_id,
            "app_id": APP_ID,
            "team": team_id,
            "text": self.text,
            "blocks": self.blocks,
            "ts": self.ts,
        }
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.edited_ts:
            data["edited"] = {"user": self.user, "ts": self.edited_ts}
        if include_metadata and self.metadata is not None:
            data["metadata"] = self.metadata
        return data


@dataclass(frozen=True)
class Ephemeral:
    channel: str | None
    user: str | None
    ts: str
    text: str
    blocks: list[JsonDict]
    via: str  # "chat.postEphemeral" or "response_url"


@dataclass(frozen=True)
class Call:
    """One request as the fake saw it. `status` 0: the connection was closed without an answer."""

    method: str  # the API method, or "response_url"
    params: JsonDict  # never holds the token
    headers: dict[str, str]  # Authorization redacted
    time: float
    status: int
    response: JsonDict | str | None
    fault: str | None = None
    url_token: str | None = None  # for response_url calls

    @property
    def ok(self) -> bool:
        if self.status != 200:
            return False
        if isinstance(self.response, dict):
            return bool(self.response.get("ok"))
        return self.response == "ok"

    @property
    def error(self) -> str | None:
        if isinstance(self.response, dict):
            return self.response.get("error")
        return None if self.ok else self.response


@dataclass
class ResponseUrl:
    token: str
    channel: str | None
    message_ts: str | None
    user: str | None
    uses: int = 0


# --- parameters --------------------------------------------------------------------------


def _text(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true") if value is not None else False


def _structured(params: Mapping[str, Any], name: str, error: str) -> Any:
    """A JSON parameter: a value in a JSON body, a JSON-encoded string in a form body."""
    value = params.get(name)
    if not isinstance(value, str):
        return value
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise ApiError(error) from None


def _blocks(params: Mapping[str, Any], limit: int = MAX_MESSAGE_BLOCKS) -> list[JsonDict]:
    blocks = _structured(params, "blocks", "invalid_blocks_format")
    if blocks is None:
        return []
    if not isinstance(blocks, list) or not all(
        isinstance(block, dict) and isinstance(block.get("type"), str) for block in blocks
    ):
        raise ApiError(
            "invalid_blocks", "[ERROR] each block must be an object with a type [json-pointer:/blocks]"
        )
    if len(blocks) > limit:
        raise ApiError("invalid_blocks", f"[ERROR] no more than {limit} items allowed [json-pointer:/blocks]")
    block_ids = [block["block_id"] for block in blocks if "block_id" in block]
    if len(block_ids) != len(set(block_ids)):
        raise ApiError("invalid_blocks", "[ERROR] duplicate block_id [json-pointer:/blocks]")
    return blocks


def _metadata(params: Mapping[str, Any]) -> JsonDict | None:
    metadata = _structured(params, "metadata", "invalid_metadata_format")
    if metadata is None:
        return None
    if not (
        isinstance(metadata, dict)
        and isinstance(metadata.get("event_type"), str)
        and isinstance(metadata.get("event_payload"), dict)
    ):
        raise ApiError("invalid_metadata_format")
    return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}


def _plain_text_problem(view: JsonDict, name: str, *, required: bool) -> str | None:
    value = view.get(name)
    if value is None:
        return f"[ERROR] missing required field: {name} [json-pointer:/view]" if required else None
    text = value.get("text") if isinstance(value, dict) else None
    if not isinstance(value, dict) or value.get("type") != "plain_text" or not isinstance(text, str):
        return f"[ERROR] must be a plain_text object [json-pointer:/view/{name}]"
    if not 0 < len(text) <= MAX_VIEW_TEXT:
        return f"[ERROR] must be between 1 and {MAX_VIEW_TEXT} characters [json-pointer:/view/{name}/text]"
    return None


def _view(params: Mapping[str, Any], types: Sequence[str]) -> JsonDict:
    """The `view` argument, checked the way Slack checks the usual mistakes."""
    view = _structured(params, "view", "invalid_arguments")
    if not isinstance(view, dict):
        raise ApiError("invalid_arguments", "[ERROR] missing required field: view")
    if view.get("type") not in types:
        raise ApiError("invalid_arguments", f"[ERROR] must be one of {list(types)} [json-pointer:/view/type]")
    blocks = view.get("blocks")
    problems = []
    if not isinstance(blocks, list):
        problems.append("[ERROR] missing required field: blocks [json-pointer:/view]")
    elif len(blocks) > MAX_VIEW_BLOCKS:
        problems.append(f"[ERROR] no more than {MAX_VIEW_BLOCKS} items allowed [json-pointer:/view/blocks]")
    if view["type"] == "modal":
        problems += [
            problem
            for name, required in (("title", True), ("submit", False), ("close", False))
            if (problem := _plain_text_problem(view, name, required=required))
        ]
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and "submit" not in view:
            problems.append(
                "[ERROR] must provide a submit property when using input blocks [json-pointer:/view]"
            )
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("[ERROR] must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("[ERROR] must be less than 256 characters [json-pointer:/view/callback_id]")
    if problems:
        raise ApiError("invalid_arguments", *problems)
    return view


def _ts_micros(value: str) -> int:
    seconds, _, fraction = value.partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(value)
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def _bound(params: Mapping[str, Any], name: str, default: int) -> int:
    value = _text(params, name)
    if value is None:
        return default
    try:
        return _ts_micros(value)
    except ValueError:
        raise ApiError(f"invalid_ts_{name}") from None


def _page(params: Mapping[str, Any]) -> tuple[int, int]:
    """(offset, limit) from `cursor` and `limit`; Slack's default limit is 100, its maximum 999."""
    try:
        limit = int(params.get("limit") or 100)
    except ValueError:
        raise ApiError("invalid_limit") from None
    cursor = _text(params, "cursor")
    if cursor is None:
        return 0, min(max(limit, 1), 999)
    try:
        prefix, _, offset = base64.b64decode(cursor).decode().partition(":")
        if prefix != "offset":
            raise ValueError(cursor)
        return int(offset), min(max(limit, 1), 999)
    except ValueError:
        raise ApiError("invalid_cursor") from None


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


# --- the workspace -----------------------------------------------------------------------


class Workspace:
    """The state of the fake workspace and the API methods over it. Not thread-safe: FakeSlack
    calls it under its lock."""

    def __init__(
        self,
        *,
        team_id: str,
        bot_user_id: str,
        bot_id: str,
        channels: Iterable[Channel],
        users: Mapping[str, str],
        usergroups: Mapping[str, Sequence[str]],
        response_url_max_uses: int,
    ) -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.channels: dict[str, Channel] = {channel.id: channel for channel in channels}
        self.users: dict[str, JsonDict] = {}
        for user_id, name in {bot_user_id: "amibot", **users}.items():
            self.add_user(user_id, name)
        self.usergroups: dict[str, list[str]] = {group: list(ids) for group, ids in usergroups.items()}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.response_url_max_uses = response_url_max_uses
        self._serial = itertools.count(1)
        self._last_ts = 0
        self.reset()
        self.methods: dict[str, Callable[[JsonDict], JsonDict]] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.delete": self.chat_delete,
            "conversations.history": self.conversations_history,
            "conversations.replies": self.conversations_replies,
            "conversations.open": self.conversations_open,
            "conversations.info": self.conversations_info,
            "views.open": self.views_open,
            "views.push": self.views_push,
            "views.update": self.views_update,
            "views.publish": self.views_publish,
            "usergroups.users.list": self.usergroups_users_list,
            "users.info": self.users_info,
        }

    def reset(self) -> None:
        """Forget messages and views; keep channels, users, user groups and response URLs."""
        self.messages: dict[str, list[Message]] = {}
        self._by_ts: dict[tuple[str, str], Message] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: dict[str, JsonDict] = {}
        self.opened: list[str] = []
        self.homes: dict[str, str] = {}
        self._external_ids: dict[str, str] = {}
        self._used_triggers: set[str] = set()
        for hook in self.response_urls.values():
            hook.uses = 0

    # --- directory

    def add_user(self, user_id: str, name: str | None = None, tz: str = "UTC") -> None:
        self.users[user_id] = {"id": user_id, "name": name or user_id.lower(), "tz": tz}

    def user(self, user_id: str | None) -> JsonDict:
        """Any U…/W… id is a user (named after its id) unless added with a name."""
        if not user_id:
            raise ApiError("user_not_found")
        if user_id not in self.users:
            if user_id[0] not in "UW":
                raise ApiError("user_not_found")
            self.add_user(user_id)
        return self.users[user_id]

    def dm_channel_id(self, user_id: str) -> str:
        return "D" + (user_id[1:] if user_id.startswith("U") else user_id)

    def open_dm(self, user_id: str) -> tuple[Channel, bool]:
        """The DM between the bot and `user_id`, and whether it was open already."""
        self.user(user_id)
        channel_id = self.dm_channel_id(user_id)
        existing = self.channels.get(channel_id)
        if existing is not None:
            return existing, True
        channel = Channel(channel_id, user_id, is_private=True, is_im=True, user=user_id)
        self.channels[channel_id] = channel
        return channel, False

    def visible(self, channel_id: str | None) -> Channel:
        """A channel the bot may see: public ones, and private ones and DMs it is in."""
        channel = self.channels.get(channel_id or "")
        if channel is None or (channel.hidden_unless_member and not channel.is_member):
            raise ApiError("channel_not_found")
        return channel

    def joined(self, channel_id: str | None) -> Channel:
        channel = self.visible(channel_id)
        if not channel.is_member:
            raise ApiError("not_in_channel")
        return channel

    def destination(self, channel_id: str | None) -> Channel:
        """Where a message goes: a user id means the DM between the bot and that user."""
        if channel_id and channel_id[0] in "UW":
            return self.open_dm(channel_id)[0]
        return self.joined(channel_id)

    # --- messages

    def next_ts(self) -> str:
        """Unique, increasing timestamps in Slack's "seconds.micros" format."""
        self._last_ts = max(time.time_ns() // 1000, self._last_ts + 1)
        seconds, micros = divmod(self._last_ts, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def message(self, channel_id: str, ts: str | None) -> Message:
        message = self._by_ts.get((channel_id, ts or ""))
        if message is None or message.deleted:
            raise ApiError("message_not_found")
        return message

    def add_message(self, channel_id: str, text: str, blocks: list[JsonDict], **extra: Any) -> Message:
        message = Message(channel_id, self.next_ts(), text, blocks, self.bot_user_id, self.bot_id, **extra)
        self.messages.setdefault(channel_id, []).append(message)
        self._by_ts[channel_id, message.ts] = message
        return message

    @staticmethod
    def content(params: Mapping[str, Any]) -> tuple[str, list[JsonDict]]:
        text = _text(params, "text") or _text(params, "markdown_text") or ""
        blocks = _blocks(params)
        if not text and not blocks and not params.get("attachments"):
            raise ApiError("no_text")
        if len(text) > MAX_TEXT:
            raise ApiError("msg_too_long")
        return text, blocks

    @staticmethod
    def revise(message: Message, text: str, blocks: list[JsonDict], edited_ts: str) -> None:
        message.versions.append({"text": message.text, "blocks": message.blocks})
        message.text, message.blocks, message.edited_ts = text, blocks, edited_ts

    # --- API methods: each returns the answer without "ok", or raises ApiError

    def auth_test(self, params: JsonDict) -> JsonDict:
        return {
            "url": "https://fake-workspace.slack.com/",
            "team": "Fake Workspace",
            "user": self.users[self.bot_user_id]["name"],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def chat_post_message(self, params: JsonDict) -> JsonDict:
        channel = self.destination(_text(params, "channel"))
        text, blocks = self.content(params)
        message = self.add_message(
            channel.id,
            text,
            blocks,
            thread_ts=_text(params, "thread_ts"),
            reply_broadcast=_flag(params, "reply_broadcast"),
            metadata=_metadata(params),
        )
        return {"channel": channel.id, "ts": message.ts, "message": message.to_api(self.team_id)}

    def chat_update(self, params: JsonDict) -> JsonDict:
        channel = self.visible(_text(params, "channel"))
        message = self.message(channel.id, _text(params, "ts"))
        text, blocks = self.content(params)
        metadata = _metadata(params)
        self.revise(message, text, blocks, self.next_ts())
        if metadata is not None:
            message.metadata = metadata
        return {
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": message.to_api(self.team_id),
        }

    def chat_post_ephemeral(self, params: JsonDict) -> JsonDict:
        channel = self.joined(_text(params, "channel"))
        user = self.user(_text(params, "user"))["id"]
        text, blocks = self.content(params)
        ephemeral = Ephemeral(channel.id, user, self.next_ts(), text, blocks, "chat.postEphemeral")
        self.ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.ts}

    def chat_delete(self, params: JsonDict) -> JsonDict:
        channel = self.visible(_text(params, "channel"))
        message = self.message(channel.id, _text(params, "ts"))
        message.deleted = True
        return {"channel": channel.id, "ts": message.ts}

    def _thread_index(self, channel_id: str) -> dict[str, list[str]]:
        """Thread parent ts → the ts of its replies, oldest first."""
        replies: dict[str, list[str]] = {}
        for message in self.messages.get(channel_id, []):
            if message.thread_ts and message.thread_ts != message.ts and not message.deleted:
                replies.setdefault(message.thread_ts, []).append(message.ts)
        return replies

    def _listing(self, channel_id: str, messages: list[Message], params: JsonDict) -> JsonDict:
        offset, limit = _page(params)
        include_metadata = _flag(params, "include_all_metadata")
        threads = self._thread_index(channel_id)
        answers = []
        for message in messages[offset : offset + limit]:
            answer = message.to_api(self.team_id, include_metadata=include_metadata)
            if replies := threads.get(message.ts):
                answer.update(thread_ts=message.ts, reply_count=len(replies), latest_reply=replies[-1])
            answers.append(answer)
        has_more = len(messages) > offset + limit
        return {
            "messages": answers,
            "has_more": has_more,
            "response_metadata": {"next_cursor": _cursor(offset + limit) if has_more else ""},
        }

    def conversations_history(self, params: JsonDict) -> JsonDict:
        """Top-level messages (and broadcast replies), newest first, oldest < ts < latest."""
        channel = self.joined(_text(params, "channel"))
        oldest = _bound(params, "oldest", 0)
        latest = _bound(params, "latest", 1 << 62)
        inclusive = _flag(params, "inclusive")

        def in_range(ts: int) -> bool:
            return oldest <= ts <= latest if inclusive else oldest < ts < latest

        newest_first = [
            message
            for message in reversed(self.messages.get(channel.id, []))
            if not message.deleted and message.top_level and in_range(_ts_micros(message.ts))
        ]
        return {"pin_count": 0, **self._listing(channel.id, newest_first, params)}

    def conversations_replies(self, params: JsonDict) -> JsonDict:
        """A thread: its parent, then its replies, oldest first."""
        channel = self.joined(_text(params, "channel"))
        parent = self._by_ts.get((channel.id, _text(params, "ts") or ""))
        if parent is None or parent.deleted:
            raise ApiError("thread_not_found")
        thread = [
            message
            for message in self.messages[channel.id]
            if not message.deleted and (message is parent or message.thread_ts == parent.ts)
        ]
        return self._listing(channel.id, thread, params)

    def conversations_open(self, params: JsonDict) -> JsonDict:
        if channel_id := _text(params, "channel"):
            return {"channel": self.visible(channel_id).to_api()}
        users = params.get("users") or []
        ids = [u.strip() for u in (users.split(",") if isinstance(users, str) else users) if u.strip()]
        if not ids:
            raise ApiError("users_list_not_supplied")
        if len(ids) == 1:
            channel, existed = self.open_dm(ids[0])
        else:
            for user_id in ids:
                self.user(user_id)
            digest = hashlib.sha1(",".join(sorted(ids)).encode()).hexdigest()[:10].upper()
            channel = self.channels.setdefault(
                "G" + digest,
                Channel("G" + digest, "mpdm-" + "--".join(sorted(ids)), is_private=True, is_mpim=True),
            )
            existed = False
        answer: JsonDict = {"channel": channel.to_api() if _flag(params, "return_im") else {"id": channel.id}}
        if existed:
            answer.update(no_op=True, already_open=True)
        return answer

    def conversations_info(self, params: JsonDict) -> JsonDict:
        return {"channel": self.visible(_text(params, "channel")).to_api()}

    # --- views

    def _consume_trigger(self, params: JsonDict) -> None:
        trigger = _text(params, "trigger_id") or _text(params, "interactivity_pointer")
        if trigger is None:
            raise ApiError("invalid_arguments", "[ERROR] missing required field: trigger_id")
        if trigger in self._used_triggers:
            raise ApiError("exchanged_trigger_id")
        self._used_triggers.add(trigger)

    def _store_view(self, spec: JsonDict, view_id: str, *, root: str | None = None) -> JsonDict:
        external_id = str(spec.get("external_id") or "")
        if external_id and self._external_ids.get(external_id, view_id) != view_id:
            raise ApiError("duplicate_external_id")
        view = {
            **spec,
            "id": view_id,
            "team_id": self.team_id,
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "private_metadata": str(spec.get("private_metadata", "")),
            "callback_id": str(spec.get("callback_id", "")),
            "external_id": external_id,
            "root_view_id": root or view_id,
            "previous_view_id": None,
            "app_id": APP_ID,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        if external_id:
            self._external_ids[external_id] = view_id
        self.views[view_id] = view
        return view

    def _new_view_id(self) -> str:
        return f"V{next(self._serial):09d}"

    def views_open(self, params: JsonDict) -> JsonDict:
        spec = _view(params, ("modal",))
        self._consume_trigger(params)
        view = self._store_view(spec, self._new_view_id())
        self.opened.append(view["id"])
        return {"view": view}

    def views_push(self, params: JsonDict) -> JsonDict:
        return self.views_open(params)

    def views_update(self, params: JsonDict) -> JsonDict:
        view_id = _text(params, "view_id")
        external_id = _text(params, "external_id")
        if view_id is None and external_id is None:
            raise ApiError("invalid_arguments", "[ERROR] either view_id or external_id is required")
        current = self.views.get(view_id or self._external_ids.get(external_id or "", ""))
        if current is None:
            raise ApiError("not_found")
        expected = _text(params, "hash")
        if expected is not None and expected != current["hash"]:
            raise ApiError("hash_conflict")
        spec = {"external_id": current["external_id"], **_view(params, (current["type"],))}
        return {"view": self._store_view(spec, current["id"], root=current["root_view_id"])}

    def views_publish(self, params: JsonDict) -> JsonDict:
        user_id = self.user(_text(params, "user_id"))["id"]
        spec = _view(params, ("home",))
        view_id = self.homes.get(user_id)
        expected = _text(params, "hash")
        if view_id is not None and expected is not None and expected != self.views[view_id]["hash"]:
            raise ApiError("hash_conflict")
        view = self._store_view(spec, view_id or self._new_view_id())
        self.homes[user_id] = view["id"]
        return {"view": view}

    # --- directory methods

    def usergroups_users_list(self, params: JsonDict) -> JsonDict:
        group = _text(params, "usergroup")
        if group is None or group not in self.usergroups:
            raise ApiError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def users_info(self, params: JsonDict) -> JsonDict:
        user = self.user(_text(params, "user"))
        return {
            "user": {
                **user,
                "team_id": self.team_id,
                "real_name": user["name"],
                "tz_offset": 0,
                "deleted": False,
                "is_bot": user["id"] == self.bot_user_id,
                "profile": {"real_name": user["name"], "display_name": user["name"]},
            }
        }

    # --- response URLs

    def respond(self, hook: ResponseUrl, payload: Any) -> None:
        """What a POST to a response URL does; raises ApiError (sent as a 4xx text body)."""
        if not isinstance(payload, dict):
            raise ApiError("invalid_payload")
        original = self._by_ts.get((hook.channel or "", hook.message_ts or ""))
        if _flag(payload, "delete_original"):
            if original is not None:
                original.deleted = True
            return
        text, blocks = self.content(payload)
        if _flag(payload, "replace_original") and original is not None and not original.deleted:
            self.revise(original, text, blocks, self.next_ts())
        elif payload.get("response_type") == "in_channel" and hook.channel:
            # Slack posts this even where the bot is not a member: the user ran the command there.
            self.add_message(hook.channel, text, blocks, thread_ts=_text(payload, "thread_ts"))
        else:
            self.ephemerals.append(
                Ephemeral(hook.channel, hook.user, self.next_ts(), text, blocks, "response_url")
            )


# --- HTTP -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    method: str  # API method or "response_url"
    params: JsonDict
    headers: dict[str, str]
    bearer: str | None
    form_token: str | None
    is_json: bool
    parse_error: str | None = None
    url_token: str | None = None


@dataclass(frozen=True)
class _Reply:
    status: int
    data: JsonDict | str
    headers: tuple[tuple[str, str], ...] = ()

    def body(self) -> tuple[bytes, str]:
        if isinstance(self.data, str):
            return self.data.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.data).encode(), "application/json; charset=utf-8"


def _parse_request(path: str, headers: Mapping[str, str], body: bytes) -> _Request | None:
    route, _, query = path.partition("?")
    if route.startswith("/api/"):
        method, url_token = route[len("/api/") :], None
    elif route.startswith("/response/"):
        method, url_token = "response_url", route[len("/response/") :]
    else:
        return None
    params: JsonDict = dict(parse_qsl(query, keep_blank_values=True))
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    is_json = content_type == "application/json"
    parse_error = None
    try:
        if is_json:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("not an object")
            params.update(data)
        elif content_type.startswith("multipart/"):
            parse_error = "invalid_form_data"
        elif body:
            params.update(parse_qsl(body.decode(), keep_blank_values=True))
    except ValueError:
        parse_error = "invalid_json" if is_json else "invalid_form_data"
    if url_token is not None and not is_json and "payload" in params:
        try:
            params = json.loads(params["payload"])
        except ValueError:
            parse_error = "invalid_payload"
    authorization = headers.get("Authorization", "")
    bearer = authorization[len("Bearer ") :].strip() if authorization.startswith("Bearer ") else None
    form_token = params.pop("token", None) if isinstance(params, dict) else None
    safe_headers = {k: "(redacted)" if k.lower() == "authorization" else v for k, v in headers.items()}
    return _Request(method, params, safe_headers, bearer, form_token, is_json, parse_error, url_token)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing idles at shutdown
    disable_nagle_algorithm = True
    timeout = 30
    server_version = "FakeSlack/1.0"

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        if self.path.startswith("/link/"):
            self.server.fake._accept_socket(self)
            return
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name.title(): value for name, value in self.headers.items()}  # any client's casing
        request = _parse_request(self.path, headers, body)
        if request is None:
            reply: _Reply | None = _Reply(404, "not_found")
        else:
            try:
                reply = self.server.fake._handle(request)
            except Exception:
                log.exception("fake slack: error answering %s", request.method)
                reply = _Reply(500, {"ok": False, "error": "internal_error"})
        if reply is None:
            self.close_connection = True
            return
        payload, content_type = reply.body()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout was shorter than our hold)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # paths hold response URL tokens; the fake's record is the log


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], fake: FakeSlack) -> None:
        self.fake = fake
        self.active = 0
        self.idle = threading.Condition()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.idle:
            self.active += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self) -> None:
        with self.idle:
            self.active -= 1
            if self.active == 0:
                self.idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self.idle:
            self.idle.wait_for(lambda: self.active == 0, timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("fake slack: connection error", exc_info=True)


# --- faults ---------------------------------------------------------------------------------


@dataclass
class _Fault:
    method: str
    kind: str  # ratelimited | server_error | timeout | disconnect | error
    remaining: int
    retry_after: int
    hold_seconds: float | None
    status: int = 200
    error: str = ""

    @classmethod
    def parse(cls, method: str, kind: str, times: int, retry_after: int, hold: float | None) -> _Fault:
        name, _, argument = kind.partition(":")
        if name == "error" and argument:
            return cls(method, "error", times, retry_after, hold, error=argument)
        if name == "server_error" and argument in ("", "500", "502", "503", "504"):
            return cls(method, "server_error", times, retry_after, hold, status=int(argument or 500))
        if name in ("ratelimited", "timeout", "disconnect") and not argument:
            return cls(method, name, times, retry_after, hold)
        raise ValueError(
            f"unknown fault {kind!r}: expected ratelimited, server_error[:5xx], timeout, disconnect"
            " or error:<code>"
        )

    def reply(self, hook: bool) -> _Reply | None:
        if self.kind == "disconnect":
            return None
        if self.kind == "ratelimited":
            data: JsonDict | str = "rate_limited" if hook else {"ok": False, "error": "ratelimited"}
            return _Reply(429, data, (("Retry-After", str(self.retry_after)),))
        if self.kind == "server_error":
            error = "service_unavailable" if self.status == 503 else "internal_error"
            return _Reply(self.status, error if hook else {"ok": False, "error": error})
        return _Reply(400, self.error) if hook else _Reply(200, {"ok": False, "error": self.error})


_UNAVAILABLE = _Fault("*", "server_error", 1, 0, None, status=503)  # while down()


# --- the server -----------------------------------------------------------------------------


class FakeSlack:
    """A fake Slack Web API on 127.0.0.1. Use as a context manager, or `start()` / `stop()`.

    Every public method is thread-safe. Messages and views are returned as copies.
    """

    def __init__(
        self,
        *,
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        token: str = "xoxb-test",
        app_token: str = APP_TOKEN,
        channels: Iterable[Channel] | None = None,
        users: Mapping[str, str] | None = None,
        usergroups: Mapping[str, Sequence[str]] | None = None,
        port: int = 0,
        latency: float = 0.0,
        hold_seconds: float = 3.0,
        response_url_max_uses: int = 5,
        max_calls: int | None = 100_000,
    ) -> None:
        self.token = token
        self.app_token = app_token
        self.latency = latency  # seconds added to every answer (benchmarks)
        self.hold_seconds = hold_seconds  # how long a "timeout" fault holds a request
        self.workspace = Workspace(
            team_id=team_id,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            channels=default_channels() if channels is None else channels,
            users=users or {},
            usergroups=usergroups or {},
            response_url_max_uses=response_url_max_uses,
        )
        self._lock = threading.RLock()  # guards the workspace, the record and the faults
        self._changed = threading.Condition()
        self._calls: deque[Call] = deque(maxlen=max_calls)
        self._faults: list[_Fault] = []
        self._subscribers: list[Callable[[Call], None]] = []
        self._down: str | None = None
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.socket_mode = SocketModeHub(APP_ID, on_change=self._wake)

    # --- lifecycle

    def start(self, port: int | None = None) -> FakeSlack:
        """Listen on `port` (default: the port given before, or a free one). Returns self."""
        if self._server is not None:
            raise RuntimeError("fake slack is already running")
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._port if port is None else port), self)
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fakeslack-{self._port}",
            daemon=True,
        )
        self._server = server
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; requests held by faults or latency are dropped. State is kept."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = self._thread = None
        self._stopping.set()
        self.socket_mode.close_all()
        server.shutdown()
        server.server_close()
        thread.join()
        server.wait_idle(timeout=5.0)

    def down(self, *, close: bool = False) -> None:
        """Fail every request until `up()`: HTTP 503, or with `close` drop the connection unanswered."""
        self._down = "close" if close else "unavailable"

    def up(self) -> None:
        self._down = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> FakeSlack:
        return self if self.running else self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("fake slack has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """The value for SLACK_API_URL / WebClient(base_url=...)."""
        return f"{self.url}/api/"

    # --- setup

    def add_channel(
        self, channel_id: str, name: str | None = None, *, private: bool = False, member: bool = True
    ) -> Channel:
        channel = Channel(channel_id, name or channel_id.lower(), is_private=private, is_member=member)
        with self._lock:
            self.workspace.channels[channel_id] = channel
        return replace(channel)

    def set_member(self, channel_id: str, member: bool = True) -> None:
        """The bot joins (or leaves) a channel."""
        with self._lock:
            self.workspace.channels[channel_id].is_member = member

    def add_user(self, user_id: str, name: str | None = None, *, tz: str = "UTC") -> None:
        with self._lock:
            self.workspace.add_user(user_id, name, tz)

    def set_usergroup(self, group_id: str, users: Sequence[str]) -> None:
        with self._lock:
            self.workspace.usergroups[group_id] = list(users)

    def dm_channel_id(self, user_id: str) -> str:
        """The id of the DM between the bot and `user_id` (stable; D + the id without its U)."""
        return self.workspace.dm_channel_id(user_id)

    def new_response_url(
        self, *, channel: str | None = None, message_ts: str | None = None, user: str | None = None
    ) -> str:
        """A fresh response_url. With `channel` + `message_ts` it belongs to that message
        (replace_original / delete_original act on it); `in_channel` responses post to `channel`."""
        token = secrets.token_urlsafe(12)
        with self._lock:
            self.workspace.response_urls[token] = ResponseUrl(token, channel, message_ts, user)
        return f"{self.url}/response/{token}"

    @staticmethod
    def new_trigger_id() -> str:
        return f"{int(time.time())}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"

    # --- faults

    def fail_next(
        self,
        method: str,
        kind: str,
        times: int = 1,
        retry_after: int = 1,
        *,
        hold_seconds: float | None = None,
    ) -> None:
        """Make the next `times` requests to `method` fail. `method` is an API method,
        "response_url" (posts to response URLs) or "*" (any request, response URLs included).

        `kind`: "ratelimited" (429 + Retry-After), "server_error" (500) or "server_error:503",
        "timeout" (held `hold_seconds`, then answered and applied as usual: a slow Slack, not a
        lost request), "disconnect" (closed unanswered, not applied) or "error:<code>" (200 with
        ok false; 400 for response URLs). Faults are used in the order they were added.
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        fault = _Fault.parse(method, kind, times, retry_after, hold_seconds)
        with self._lock:
            self._faults.append(fault)

    @property
    def pending_faults(self) -> int:
        """How many injected faults are still to be used."""
        with self._lock:
            return sum(fault.remaining for fault in self._faults)

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in ("*", method):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # --- serving

    def _handle(self, request: _Request) -> _Reply | None:
        """Answer one request (in a server thread). None: close the connection unanswered."""
        hook = request.method == "response_url"
        if self._down:
            return self._finish(request, None if self._down == "close" else _UNAVAILABLE.reply(hook), "down")
        fault = self._take_fault(request.method)
        if fault is not None and fault.kind != "timeout":
            return self._finish(request, fault.reply(hook), fault.kind)
        delay = self.latency + ((fault.hold_seconds or self.hold_seconds) if fault else 0.0)
        if delay > 0 and self._stopping.wait(delay):
            return None  # stopping: drop what we hold
        with self._lock:  # the effect and its record in one step, so calls() is in effect order
            reply = self._answer_hook(request) if hook else self._answer_api(request)
            call = self._record(request, reply, fault.kind if fault else None)
        self._notify(call)
        return reply

    def _finish(self, request: _Request, reply: _Reply | None, fault: str) -> _Reply | None:
        with self._lock:
            call = self._record(request, reply, fault)
        self._notify(call)
        return reply

    def _answer_api(self, request: _Request) -> _Reply:
        if request.method == "apps.connections.open" and not request.parse_error:
            return self._open_connection(request)
        method = self.workspace.methods.get(request.method)
        if method is None:
            return _Reply(200, {"ok": False, "error": "unknown_method"})
        if request.parse_error:
            return _Reply(200, {"ok": False, "error": request.parse_error})
        # With a JSON body Slack only takes the token from the Authorization header.
        token = request.bearer or (None if request.is_json else request.form_token)
        if not token:
            return _Reply(200, {"ok": False, "error": "not_authed"})
        if token != self.token:
            return _Reply(200, {"ok": False, "error": "invalid_auth"})
        try:
            return _Reply(200, {"ok": True, **method(request.params)})
        except ApiError as exc:
            return _Reply(200, exc.to_api())

    def _open_connection(self, request: _Request) -> _Reply:
        """apps.connections.open: only an app-level token will do, as on Slack."""
        token = request.bearer or (None if request.is_json else request.form_token)
        if not token:
            error = "not_authed"
        elif not token.startswith("xapp-"):
            error = "not_allowed_token_type"
        elif token != self.app_token:
            error = "invalid_auth"
        else:
            ticket = self.socket_mode.issue_ticket()
            return _Reply(200, {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}"})
        return _Reply(200, {"ok": False, "error": error})

    def _accept_socket(self, handler: _Handler) -> None:
        """`GET /link/?ticket=…`: a Socket Mode WebSocket (refused with 503 while `down()`)."""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        if self._down:
            handler.close_connection = True
            handler.send_error(503)
            return
        self.socket_mode.accept(handler.path, headers, handler.connection, handler.rfile)

    def _answer_hook(self, request: _Request) -> _Reply:
        hook = self.workspace.response_urls.get(request.url_token or "")
        if hook is None:
            return _Reply(404, "no_active_hooks")
        hook.uses += 1
        if hook.uses > self.workspace.response_url_max_uses:
            return _Reply(404, "used_url")
        if request.parse_error:
            return _Reply(400, request.parse_error)
        try:
            self.workspace.respond(hook, request.params)
        except ApiError as exc:
            return _Reply(400, exc.error)
        return _Reply(200, "ok")

    def _record(self, request: _Request, reply: _Reply | None, fault: str | None) -> Call:
        call = Call(
            method=request.method,
            params=request.params,
            headers=request.headers,
            time=time.time(),
            status=reply.status if reply else 0,
            response=reply.data if reply else None,
            fault=fault,
            url_token=request.url_token,
        )
        self._calls.append(call)
        return call

    def _wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _notify(self, call: Call) -> None:
        self._wake()
        for callback in list(self._subscribers):
            try:
                callback(call)
            except Exception:
                log.exception("fake slack: subscriber failed")

    def subscribe(self, callback: Callable[[Call], None]) -> Callable[[], None]:
        """Call `callback(call)` after each recorded request (in the server thread). Returns an
        unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # --- inspection

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [call for call in self._calls if method is None or call.method == method]

    def posts(self, channel: str | None = None) -> list[Call]:
        """chat.postMessage calls that succeeded, optionally to one channel (a user id: their DM)."""
        posts = [call for call in self.calls("chat.postMessage") if call.ok]
        if channel is None:
            return posts
        target = self._channel_id(channel)
        return [
            call for call in posts if isinstance(call.response, dict) and call.response["channel"] == target
        ]

    def messages(self, channel: str) -> list[Message]:
        """The messages in `channel` now (deleted ones left out), thread replies too, in post order."""
        with self._lock:
            return [
                replace(m, blocks=list(m.blocks), versions=list(m.versions))
                for m in self.workspace.messages.get(self._channel_id(channel), [])
                if not m.deleted
            ]

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        with self._lock:
            return [
                e
                for e in self.workspace.ephemerals
                if (channel is None or e.channel == channel) and (user is None or e.user == user)
            ]

    def responses(self, url_or_token: str | None = None) -> list[Call]:
        """Posts to response URLs (all, or to one), failed ones included: check `call.ok`."""
        token = url_or_token.rsplit("/", 1)[-1] if url_or_token else None
        return [call for call in self.calls("response_url") if token is None or call.url_token == token]

    def response_url_uses(self, url_or_token: str) -> int:
        with self._lock:
            hook = self.workspace.response_urls.get(url_or_token.rsplit("/", 1)[-1])
            return hook.uses if hook else 0

    def home_view(self, user: str) -> JsonDict | None:
        """The App Home view last published for `user`."""
        with self._lock:
            view_id = self.workspace.homes.get(user)
            return json.loads(json.dumps(self.workspace.views[view_id])) if view_id else None

    def opened_views(self) -> list[JsonDict]:
        """Modals opened or pushed, in order, as they are now (after views.update)."""
        with self._lock:
            return [json.loads(json.dumps(self.workspace.views[v])) for v in self.workspace.opened]

    def _channel_id(self, channel: str) -> str:
        return self.workspace.dm_channel_id(channel) if channel[:1] in ("U", "W") else channel

    def wait_for(self, predicate: Callable[[FakeSlack], T], timeout: float = 5.0, *, what: str = "") -> T:
        """Poll `predicate(self)` until it returns something truthy, and return that. A predicate
        may also raise AssertionError while not yet true. Raises AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = predicate(self)
                if value:
                    return value
                detail = f"last value {value!r}"
            except AssertionError as exc:
                detail = f"last error: {exc}"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            with self._changed:
                self._changed.wait(min(remaining, 0.05))
        recent = [f"{c.method}→{c.status}{' ' + c.error if c.error else ''}" for c in self.calls()[-10:]]
        label = what or getattr(predicate, "__qualname__", "predicate")
        raise AssertionError(
            f"fake slack: {label} not true within {timeout}s ({detail}); recent calls: {recent}"
        )

    def reset(self) -> None:
        """Forget recorded calls, messages, views and pending faults; keep channels and users."""
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self.workspace.reset()
        self.socket_mode.reset()
