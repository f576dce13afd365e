"""Slack for the demo: the fake workspace, the console that shows what the bot says, and the
signed requests a person's typing turns into.

The bot talks to `bot.fakeslack.FakeSlack` over HTTP exactly as it talks to slack.com. Every
call the fake records is rendered as it arrives (`Narrator`); buttons get numbers so that
`click N` can send the `block_actions` payload Slack would send. Requests into the bot are
signed with the demo's signing secret and go through `App.dispatch`, as in HTTP mode.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.demo import render
from bot.fakeslack import APP_ID, Call, Channel, FakeSlack, default_channels
from bot.ids import COMMAND

TEAM_ID = "T0DEMO"
BOT_TOKEN = "xoxb-amibot-demo"
VERIFICATION_TOKEN = "demo-verification-token"
NOTIFY_CHANNEL = "CAMIBOT"
# How amibot starts a refusal or an error (the ack of a refused command, an ephemeral "no").
REFUSALS = ("⚠️", "❌", "⛔", "🚫")


@dataclass(frozen=True)
class Person:
    name: str
    id: str
    role: str


PEOPLE: tuple[Person, ...] = (
    Person("alice", "UALICE", "requester"),
    Person("bob", "UBOB", "approver"),
    Person("carol", "UCAROL", "admin"),
    Person("dave", "UDAVE", "no role"),
)
APPROVERS = ("UBOB", "UCAROL")
ADMINS = ("UCAROL",)


def demo_channels() -> list[Channel]:
    return [*default_channels(), Channel(NOTIFY_CHANNEL, "amibot")]


def start_fake() -> FakeSlack:
    fake = FakeSlack(
        team_id=TEAM_ID,
        token=BOT_TOKEN,
        channels=demo_channels(),
        users={p.id: p.name for p in PEOPLE},
        max_calls=10_000,
    )
    return fake.start()


# --- the console --------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """One thing the bot said, as shown."""

    text: str  # header and body
    body: str  # the message alone
    private: bool  # only visible to one person (an ack, an ephemeral, a response_url answer)

    @property
    def refusal(self) -> bool:
        return self.private and self.body.lstrip().startswith(REFUSALS)


@dataclass(frozen=True)
class Button:
    number: int
    block_id: str
    element: Mapping[str, Any]
    container: str  # "message", "ephemeral" or "view"
    channel: str | None = None
    ts: str | None = None
    view: Mapping[str, Any] | None = None

    @property
    def label(self) -> str:
        text = self.element.get("text")
        return str(text.get("text", "")) if isinstance(text, Mapping) else ""


class Console:
    """Where the demo writes. Bot output is kept (for `expect`) and can be held back while a
    request is dispatched, so the acknowledgement is shown before what the bot did after it."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._held = 0
        self._pending: list[Callable[[], Output | None]] = []
        self.outputs: list[Output] = []
        self.buttons: dict[int, Button] = {}
        self.stale: set[int] = set()
        self._next_button = 1
        self.prompt: str | None = None  # set while a person is typing at a terminal
        self.line_buffer: Callable[[], str] = lambda: ""

    # writing

    def say(self, text: str) -> None:
        """A line from the demo itself (echo, notes); not bot output."""
        with self._lock:
            self._write(text)

    def bot(self, make: Callable[[], Output | None]) -> None:
        """Bot output; `make` renders it (numbering its buttons) when it is shown."""
        with self._lock:
            if self._held:
                self._pending.append(make)
            else:
                self._show(make)

    def _show(self, make: Callable[[], Output | None]) -> None:
        output = make()
        if output is None:
            return
        self.outputs.append(output)
        self._write(output.text)
        self._changed.notify_all()

    def _write(self, text: str) -> None:
        if self.prompt is not None:  # a person is typing: print above their line, then restore it
            self._out.write("\r\x1b[K" + text + "\n" + self.prompt + self.line_buffer())
        else:
            self._out.write(text + "\n")
        self._out.flush()

    def hold(self) -> None:
        with self._lock:
            self._held += 1

    def release(self, first: Callable[[], Output | None] | None = None) -> None:
        """Show `first`, then what arrived while held."""
        with self._lock:
            self._held -= 1
            if self._held:
                if first is not None:
                    self._pending.insert(0, first)
                return
            pending, self._pending = self._pending, []
            for make in [first, *pending] if first is not None else pending:
                self._show(make)

    # buttons

    def numberer(
        self,
        container: str,
        *,
        channel: str | None = None,
        ts: str | None = None,
        view: Mapping[str, Any] | None = None,
    ) -> render.NumberButton:
        def number(block_id: str, element: Mapping[str, Any]) -> int:
            with self._lock:
                n = self._next_button
                self._next_button += 1
                self.buttons[n] = Button(n, block_id, dict(element), container, channel, ts, view)
                return n

        return number

    def retire(
        self, *, channel: str | None = None, ts: str | None = None, view_id: str | None = None
    ) -> None:
        """The buttons of a message or view that was replaced are no longer shown."""
        with self._lock:
            for n, button in self.buttons.items():
                same_message = ts is not None and (button.channel, button.ts) == (channel, ts)
                same_view = view_id is not None and button.view and button.view.get("id") == view_id
                if same_message or same_view:
                    self.stale.add(n)

    # reading

    def mark(self) -> int:
        with self._lock:
            return len(self.outputs)

    def since(self, mark: int) -> list[Output]:
        with self._lock:
            return list(self.outputs[mark:])

    def wait_for(self, mark: int, predicate: Callable[[Output], bool], timeout: float) -> Output | None:
        """The first output since `mark` that satisfies `predicate`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for output in self.outputs[mark:]:
                    if predicate(output):
                        return output
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(min(remaining, 0.2))


# --- what the bot sends to Slack, shown --------------------------------------------------


@dataclass(frozen=True)
class Hook:
    user: str
    channel: str
    message_ts: str | None = None


@dataclass
class Narrator:
    """Renders each call the fake Slack records; subscribe `on_call` to the fake."""

    fake: FakeSlack
    console: Console
    current_user: Callable[[], str]
    hooks: dict[str, Hook] = field(default_factory=dict)  # response_url token -> who may see it
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # names

    def user_name(self, user_id: str) -> str:
        user = self.fake.workspace.users.get(user_id)
        return str(user["name"]) if user else user_id

    def channel_name(self, channel_id: str) -> str:
        channel = self.fake.workspace.channels.get(channel_id)
        if channel is None:
            if channel_id[:1] in ("U", "W"):
                return "@" + self.user_name(channel_id) + " (DM)"
            return channel_id
        if channel.is_im and channel.user:
            return "@" + self.user_name(channel.user) + " (DM)"
        return "#" + channel.name

    def names(self, ident: str) -> str:
        if ident[:1] in ("U", "W", "B"):
            return self.user_name(ident)
        name = self.channel_name(ident)
        return name.removeprefix("#")

    def visible_to(self, user: str | None) -> str:
        if user is None:
            return " (only visible to one person)"
        if user == self.current_user():
            return " (only visible to you)"
        return f" (only visible to {self.user_name(user)})"

    def response_url(self, *, user: str, channel: str, message_ts: str | None = None) -> str:
        url = self.fake.new_response_url(channel=channel, message_ts=message_ts, user=user)
        with self._lock:
            self.hooks[url.rsplit("/", 1)[-1]] = Hook(user, channel, message_ts)
        return url

    # rendering

    def output(
        self,
        header: str,
        text: str | None,
        blocks: Any,
        number: render.NumberButton,
        *,
        private: bool,
    ) -> Output:
        blocks = _json_list(blocks)
        lines = render.message_lines(text, blocks, number, self.names)
        body = "\n".join(line.strip() for line in lines)
        shown = f"{header} {lines[0].strip()}" if len(lines) == 1 else "\n".join([header, *lines])
        return Output(shown, body, private)

    def ack(self, payload: Mapping[str, Any], channel: str) -> Callable[[], Output | None]:
        """The acknowledgement of a command or click (the HTTP answer to Slack)."""

        def make() -> Output | None:
            if not payload.get("text") and not payload.get("blocks"):
                return None
            private = payload.get("response_type") != "in_channel"
            suffix = self.visible_to(self.current_user()) if private else ""
            header = f"[{self.channel_name(channel)}] amibot{suffix}:"
            number = self.console.numberer("ephemeral" if private else "message", channel=channel)
            return self.output(header, payload.get("text"), payload.get("blocks"), number, private=private)

        return make

    def on_call(self, call: Call) -> None:
        """Called by the fake (in its server thread) after each request."""
        make = self._renderer(call)
        if make is not None:
            self.console.bot(make)

    def _renderer(self, call: Call) -> Callable[[], Output | None] | None:
        if not call.ok:
            if call.method.startswith(("chat.", "views.")) or call.method == "response_url":
                where = call.params.get("channel")
                to = f" in {self.channel_name(str(where))}" if where else ""
                note = f"  · (Slack answered {call.method}{to}: {call.error or call.status})"
                return lambda: Output(note, note, private=False)
            return None
        response = call.response if isinstance(call.response, dict) else {}
        params = call.params
        if call.method == "chat.postMessage":
            return self._message(response, params, edited=False)
        if call.method == "chat.update":
            return self._message(response, params, edited=True)
        if call.method == "chat.postEphemeral":
            channel, user = str(params.get("channel")), str(params.get("user"))

            def ephemeral() -> Output:
                header = f"[{self.channel_name(channel)}] amibot{self.visible_to(user)}:"
                number = self.console.numberer("ephemeral", channel=channel)
                return self.output(header, params.get("text"), params.get("blocks"), number, private=True)

            return ephemeral
        if call.method == "response_url":
            return self._response(call)
        if call.method in ("views.open", "views.push", "views.update", "views.publish"):
            return self._view(call.method, response.get("view") or {}, params)
        return None

    def _message(
        self, response: Mapping[str, Any], params: Mapping[str, Any], *, edited: bool
    ) -> Callable[[], Output]:
        channel, ts = str(response.get("channel")), str(response.get("ts"))
        message = response.get("message") or {}
        text = message.get("text", params.get("text"))
        blocks = message.get("blocks", params.get("blocks"))
        thread = params.get("thread_ts")

        def make() -> Output:
            if edited:
                self.console.retire(channel=channel, ts=ts)
            where = self.channel_name(channel) + (", in a thread" if thread else "")
            header = f"[{where}] amibot{' (edited its message)' if edited else ''}:"
            number = self.console.numberer("message", channel=channel, ts=ts)
            return self.output(header, text, blocks, number, private=False)

        return make

    def _response(self, call: Call) -> Callable[[], Output]:
        payload = call.params
        with self._lock:
            hook = self.hooks.get(call.url_token or "")
        user = hook.user if hook else None
        channel = hook.channel if hook else None
        message_ts = hook.message_ts if hook else None
        where = self.channel_name(channel) if channel else "?"

        def make() -> Output:
            if payload.get("delete_original"):
                text = f"[{where}] amibot deleted the message"
                return Output(text, text, private=False)
            in_channel = payload.get("response_type") == "in_channel"
            replaces = bool(payload.get("replace_original")) and message_ts is not None
            if replaces:
                self.console.retire(channel=channel, ts=message_ts)
                header = f"[{where}] amibot (edited its message):"
                number = self.console.numberer("message", channel=channel, ts=message_ts)
                private = False
            elif in_channel:
                header = f"[{where}] amibot:"
                number = self.console.numberer("message", channel=channel)
                private = False
            else:
                header = f"[{where}] amibot{self.visible_to(user)}:"
                number = self.console.numberer("ephemeral", channel=channel)
                private = True
            return self.output(header, payload.get("text"), payload.get("blocks"), number, private=private)

        return make

    def _view(self, method: str, view: Mapping[str, Any], params: Mapping[str, Any]) -> Callable[[], Output]:
        def make() -> Output:
            view_id = str(view.get("id") or "")
            if view_id:
                self.console.retire(view_id=view_id)
            if method == "views.publish":
                what = f"App Home of {self.user_name(str(params.get('user_id')))}"
            else:
                what = {"views.open": "modal opened", "views.push": "modal pushed"}.get(
                    method, "modal updated"
                )
            number = self.console.numberer("view", view=view)
            lines = render.view_lines(view, number, self.names)
            text = "\n".join([f"[{what}]", *lines])
            return Output(text, "\n".join(line.strip() for line in lines), private=True)

        return make


def _json_list(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [b for b in value if isinstance(b, dict)] if isinstance(value, list) else []


# --- requests into the bot, as Slack sends them --------------------------------------------


FORM = "application/x-www-form-urlencoded"  # slash commands and interactions
JSON = "application/json"  # Events API callbacks


def signed(body: str, secret: str, content_type: str = FORM) -> dict[str, str | Sequence[str]]:
    """Headers of a request signed the way Slack signs it."""
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {
        "content-type": content_type,
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": signature or "",
    }


def slash_command_body(
    text: str, *, user: Person | str, user_name: str, channel: str, channel_name: str, response_url: str
) -> str:
    """The form body of a `/ami` request. Slack escapes &, < and > in the text."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return urlencode(
        {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "team_domain": "amibot-demo",
            "channel_id": channel,
            "channel_name": channel_name,
            "user_id": user if isinstance(user, str) else user.id,
            "user_name": user_name,
            "command": COMMAND,
            "text": escaped,
            "api_app_id": APP_ID,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": FakeSlack.new_trigger_id(),
        }
    )


def block_actions_body(
    button: Button,
    *,
    user: str,
    user_name: str,
    channel_name: str | None,
    message: Mapping[str, Any] | None,
    response_url: str | None,
) -> str:
    """The form body of a button click (`payload=` + the JSON Slack sends)."""
    element = button.element
    action: dict[str, Any] = {
        "type": "button",
        "action_id": element.get("action_id"),
        "block_id": button.block_id,
        "text": element.get("text"),
        "value": element.get("value"),
        "action_ts": f"{time.time():.6f}",
    }
    if element.get("style"):
        action["style"] = element["style"]
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "api_app_id": APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": FakeSlack.new_trigger_id(),
        "team": {"id": TEAM_ID, "domain": "amibot-demo"},
        "enterprise": None,
        "is_enterprise_install": False,
        "state": {"values": {}},
        "actions": [action],
    }
    if button.container == "view" and button.view is not None:
        payload["container"] = {"type": "view", "view_id": button.view.get("id")}
        payload["view"] = dict(button.view)
    else:
        payload["container"] = {
            "type": "message",
            "message_ts": button.ts or f"{time.time():.6f}",
            "channel_id": button.channel,
            "is_ephemeral": button.container == "ephemeral",
        }
        payload["channel"] = {"id": button.channel, "name": channel_name or ""}
        if message is not None:
            payload["message"] = dict(message)
        if response_url:
            payload["response_url"] = response_url
    return urlencode({"payload": json.dumps(payload)})


def app_home_opened_body(*, user: str, bot_user: str, view: Mapping[str, Any] | None) -> str:
    """The JSON body of the `app_home_opened` event Slack sends when `user` opens the Home tab
    (`view`: the Home view last published for them, which Slack includes when there is one)."""
    now = time.time()
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user,
        "channel": "D" + user.removeprefix("U"),
        "tab": "home",
        "event_ts": f"{now:.6f}",
    }
    if view is not None:
        event["view"] = dict(view)
    return json.dumps(
        {
            "token": VERIFICATION_TOKEN,
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{int(now * 1000):X}",
            "event_time": int(now),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": bot_user,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
    )
