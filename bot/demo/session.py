"""The demo's language: one line at a time, from a person at the prompt or from a script.

See `bot.demo` for the syntax. Every `/ami` line and every click becomes the request Slack
would send (signed, through `App.dispatch`); the rest are the demo's own words.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from slack_bolt.request import BoltRequest

from bot.demo.render import mrkdwn
from bot.demo.slack import (
    FORM,
    JSON,
    PEOPLE,
    REFUSALS,
    TEAM_ID,
    Button,
    Console,
    Narrator,
    Output,
    Person,
    app_home_opened_body,
    block_actions_body,
    signed,
    slash_command_body,
)
from bot.models import JobState

if TYPE_CHECKING:
    from bot.app import Runtime
    from bot.demo.aws import EmulatedAws
    from bot.demo.seed import Seeded
    from bot.fakeslack import FakeSlack

WORDS = (
    "help",
    "quit",
    "exit",
    "as",
    "in",
    "click",
    "home",
    "wait",
    "instances",
    "images",
    "expect",
    "expect-error",
    "set",
)
_VARIABLE = re.compile(r"\$\{([^{}\s]*)\}")
_JOB_ID = re.compile(r"\bj-[0-9a-f]{6}\b")
_AMI_ID = re.compile(r"\bami-[0-9a-f]{8,17}\b")
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s?$")
WAIT_AT_MOST = 60.0
QUIET = 0.3  # `wait`: no Slack call for this long

HELP = """\
Type what you would type in Slack, and the demo's own words:
  /ami SUBCOMMAND ...   a slash command (the leading /ami is optional: `create ...` works too)
  click N | LABEL       click button [N], or the last button shown with that label
  home                  open amibot's App Home tab (shown as text; `click Refresh` refreshes it)
  as USER               act as another person: {people}
  in CHANNEL            type in another channel: {channels}
  instances             the example instances and their ids (${{web-1}} stands for the id of web-1)
  images [REGION]       the AMIs in the emulated AWS account (${{web-golden-16d}} stands for one)
  wait [SECONDS]        let background work run (no number: until no job is in flight)
  expect TEXT           check that the bot said TEXT since the last command (waits for it)
  expect-error TEXT     check that the last command was refused with TEXT
  set available-after SECONDS | set expect-timeout SECONDS
  help [SUBCOMMAND], quit   (help with a subcommand is `/ami help SUBCOMMAND`)
${{job}} and ${{ami}} are the last job id and AMI id the bot mentioned.
New images stay pending for {after:g} s, then become available."""


@dataclass(frozen=True)
class Step:
    """What one line did. `problem`: why it failed; `refused`: the bot refused the command."""

    problem: str | None = None
    refused: str | None = None
    interacted: bool = False  # a command or click: `expect` looks at output from here on
    quit: bool = False


class Session:
    def __init__(
        self,
        *,
        runtime: Runtime,
        fake: FakeSlack,
        console: Console,
        narrator: Narrator,
        seeded: Seeded,
        aws: EmulatedAws,
        signing_secret: str,
        regions: Sequence[str],
        channel: str,
        expect_timeout: float,
    ) -> None:
        self.runtime = runtime
        self.fake = fake
        self.console = console
        self.narrator = narrator
        self.seeded = seeded
        self.aws = aws
        self.signing_secret = signing_secret
        self.regions = tuple(regions)
        self.person: Person = PEOPLE[0]
        self.channel = channel
        self.expect_timeout = expect_timeout
        self.mark = console.mark()
        self.last: Step | None = None  # the last command or click

    @property
    def user(self) -> str:
        return self.person.id

    @property
    def prompt(self) -> str:
        return f"{self.person.name}@{self.narrator.channel_name(self.channel)}> "

    # --- one line --------------------------------------------------------------------

    def run(self, line: str) -> Step:
        line = line.strip()
        if not line or line.startswith("#"):
            return Step()
        try:
            line = self.expand(line)
        except KeyError as exc:
            return Step(problem=str(exc.args[0]))
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word == "/ami" or word.lower() not in WORDS:
            if word.startswith("/") and word != "/ami":
                return Step(problem=f"{word} is not a command of this app; the command is /ami")
            text = rest if word == "/ami" else line
            step = self.command(text)
        else:
            step = self.word(word.lower(), rest)
        if step.interacted:
            self.last = step
        return step

    def word(self, word: str, rest: str) -> Step:
        if word in ("quit", "exit"):
            return Step(quit=True)
        if word == "help":
            if rest:  # `help create`: the bot's help on a subcommand
                return self.command(f"help {rest}")
            self.help()
            return Step()
        if word == "as":
            return self.act_as(rest)
        if word == "in":
            return self.go_to(rest)
        if word == "click":
            return self.click(rest)
        if word == "home":
            return self.home()
        if word == "wait":
            return self.wait(rest)
        if word == "instances":
            return self.instances()
        if word == "images":
            return self.images(rest)
        if word == "expect":
            return self.expect(_unquote(rest))
        if word == "expect-error":
            return self.expect_error(_unquote(rest))
        return self.set(rest)

    def expand(self, line: str) -> str:
        """`${web-1}` → the id of instance web-1; `${job}`, `${ami}` → the last ones mentioned."""

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in self.seeded.instances:
                return self.seeded.instances[name].id
            if name in self.seeded.images:
                return self.seeded.images[name]
            if name in ("job", "ami"):
                found = self.last_mentioned(_JOB_ID if name == "job" else _AMI_ID)
                if found is None:
                    what = "an AMI" if name == "ami" else "a job"
                    raise KeyError(f"${{{name}}}: the bot has not mentioned {what} id yet")
                return found
            known = ", ".join([*self.seeded.instances, "job", "ami"])
            raise KeyError(f"${{{name}}} is not known; known: {known}, and the image names `images` shows")

        return _VARIABLE.sub(value, line)

    def last_mentioned(self, pattern: re.Pattern[str]) -> str | None:
        for output in reversed(self.console.since(0)):
            found = pattern.findall(output.text)
            if found:
                return str(found[-1])
        return None

    # --- into the bot ----------------------------------------------------------------

    def command(self, text: str) -> Step:
        self.mark = self.console.mark()
        url = self.narrator.response_url(user=self.user, channel=self.channel)
        body = slash_command_body(
            text,
            user=self.person,
            user_name=self.person.name,
            channel=self.channel,
            channel_name=self.narrator.channel_name(self.channel).removeprefix("#"),
            response_url=url,
        )
        status, payload = self.dispatch(body)
        if status != 200:
            return Step(problem=f"the bot answered HTTP {status}: {payload.get('text', '')}", interacted=True)
        text_out = str(payload.get("text") or "")
        refused = text_out if text_out.lstrip().startswith(REFUSALS) else None
        return Step(refused=refused, interacted=True)

    def click(self, arg: str) -> Step:
        ref = _unquote(arg).lstrip("[").rstrip("]").strip()
        button = self.find_button(ref)
        if button is None:
            recent = sorted(self.console.buttons)[-6:]
            shown = " ".join(f"[{n} {self.console.buttons[n].label}]" for n in recent) or "none yet"
            named = f"[{ref}]" if ref.isdigit() else f"“{ref}”"
            return Step(problem=f"there is no button {named} (the last ones shown: {shown})")
        number = button.number
        self.mark = self.console.mark()
        if button.number in self.console.stale:
            self.console.say(
                f"  (button [{number}] is no longer shown, its message changed; clicking it anyway)"
            )
        confirm = button.element.get("confirm")
        if isinstance(confirm, Mapping):
            text = mrkdwn(_plain(confirm.get("text")), self.narrator.names)
            self.console.say(
                f"  (confirm: “{_plain(confirm.get('title'))}” — {text} "
                f"→ {_plain(confirm.get('confirm')) or 'Confirm'})"
            )
        message = None
        if button.container == "message" and button.channel and button.ts:
            found = [m for m in self.fake.messages(button.channel) if m.ts == button.ts]
            if not found:
                return Step(problem=f"the message of button [{number}] was deleted", interacted=True)
            message = found[0].to_api(TEAM_ID)
        url = None
        if button.container != "view" and button.channel:
            ts = button.ts if button.container == "message" else None
            url = self.narrator.response_url(user=self.user, channel=button.channel, message_ts=ts)
        body = block_actions_body(
            button,
            user=self.user,
            user_name=self.person.name,
            channel_name=self.narrator.channel_name(button.channel).removeprefix("#")
            if button.channel
            else None,
            message=message,
            response_url=url,
        )
        status, payload = self.dispatch(body, channel=button.channel)
        if status != 200:
            detail = payload.get("text") or "no listener took it"
            return Step(
                problem=f"the bot answered HTTP {status} to the click on [{number}]: {detail}",
                interacted=True,
            )
        text_out = str(payload.get("text") or "")
        refused = text_out if text_out.lstrip().startswith(REFUSALS) else None
        return Step(refused=refused, interacted=True)

    def home(self) -> Step:
        """Open the App Home tab: the `app_home_opened` event Slack sends, through Bolt. The view
        the bot publishes in answer is shown as it arrives, its buttons numbered."""
        self.mark = self.console.mark()
        body = app_home_opened_body(
            user=self.user, bot_user=self.fake.workspace.bot_user_id, view=self.fake.home_view(self.user)
        )
        status, payload = self.dispatch(body, content_type=JSON)
        if status != 200:
            detail = payload.get("text") or "no listener took it"
            return Step(
                problem=f"the bot answered HTTP {status} to app_home_opened: {detail}", interacted=True
            )
        return Step(interacted=True)

    def find_button(self, ref: str) -> Button | None:
        """Button N, or the last one shown (and still shown) with that label."""
        if ref.isdigit():
            return self.console.buttons.get(int(ref))
        for number in sorted(self.console.buttons, reverse=True):
            button = self.console.buttons[number]
            if number not in self.console.stale and button.label.lower() == ref.lower():
                return button
        return None

    def dispatch(
        self, body: str, channel: str | None = None, content_type: str = FORM
    ) -> tuple[int, dict[str, Any]]:
        """Send a signed request through Bolt as HTTP mode does; show the acknowledgement first."""
        request = BoltRequest(body=body, headers=signed(body, self.signing_secret, content_type))
        self.console.hold()
        ack = None
        try:
            response = self.runtime.bolt.dispatch(request)
            payload = _payload(response.body)
            if response.status == 200:
                ack = self.narrator.ack(payload, channel or self.channel)
            return response.status, payload
        finally:
            self.console.release(ack)

    # --- the demo's own words ---------------------------------------------------------

    def help(self) -> None:
        people = ", ".join(f"{p.name} ({p.role})" for p in PEOPLE)
        channels = ", ".join(
            "#" + c.name for c in self.fake.workspace.channels.values() if not (c.is_im or c.is_mpim)
        )
        self.console.say(HELP.format(people=people, channels=channels, after=self.aws.available_after))

    def act_as(self, who: str) -> Step:
        name = who.strip().lstrip("@").lower()
        for person in PEOPLE:
            if name in (person.name, person.id.lower()):
                self.person = person
                self.console.say(f"  (now acting as {person.name}, {person.role})")
                return Step()
        known = ", ".join(p.name for p in PEOPLE)
        return Step(problem=f"as: {who!r} is nobody here; people: {known}")

    def go_to(self, where: str) -> Step:
        wanted = where.strip().lstrip("#")
        for channel in self.fake.workspace.channels.values():
            if not (channel.is_im or channel.is_mpim) and wanted in (channel.name, channel.id):
                self.channel = channel.id
                note = "" if channel.is_member else " (amibot is not a member of it)"
                self.console.say(f"  (now in #{channel.name}{note})")
                return Step()
        return Step(problem=f"in: there is no channel {where!r}; `help` lists them")

    def wait(self, arg: str) -> Step:
        if arg:
            match = _SECONDS.match(arg.strip())
            if not match:
                return Step(problem=f"wait: expected a number of seconds, got {arg!r}")
            time.sleep(float(match.group(1)))
            return Step()
        started = time.monotonic()
        busy: list[str] = []
        quiet = False
        while time.monotonic() - started < WAIT_AT_MOST:
            busy = [
                job.id
                for job in self.runtime.jobs.active(limit=1000)
                if job.state in (JobState.QUEUED, JobState.TRACKING)
            ]
            outbox = self.runtime.services.metrics.registry.get_sample_value("amibot_outbox_pending")
            calls = self.fake.calls()
            quiet = not calls or time.time() - calls[-1].time >= QUIET
            if not busy and not outbox and quiet:
                break
            time.sleep(0.1)
        took = time.monotonic() - started
        if busy:
            self.console.say(f"  (waited {took:.0f} s; still in flight: {', '.join(busy)})")
        elif not quiet:
            self.console.say(f"  (waited {took:.0f} s; amibot is still sending messages)")
        else:
            self.console.say(f"  (waited {took:.1f} s; nothing in flight)")
        return Step()

    def instances(self) -> Step:
        by_region: dict[str, dict[str, str]] = {}
        for region in sorted({i.region for i in self.seeded.instances.values()}):
            ec2 = boto3.client("ec2", region_name=region)
            states: dict[str, str] = {}
            for reservation in ec2.describe_instances()["Reservations"]:
                for instance in reservation["Instances"]:
                    states[instance["InstanceId"]] = instance["State"]["Name"]
            by_region[region] = states
        rows = [("NAME", "INSTANCE ID", "REGION", "TYPE", "STATE", "LAUNCHED FROM")]
        for inst in self.seeded.instances.values():
            state = by_region.get(inst.region, {}).get(inst.id, "gone")
            image = self.seeded.image_names.get(inst.image_id, inst.image_id)
            rows.append((inst.name, inst.id, inst.region, inst.instance_type, state, image))
        self.console.say(_table(rows))
        self.console.say("  (in a script, ${NAME} stands for the id, e.g. /ami create ${web-1})")
        return Step()

    def images(self, arg: str) -> Step:
        regions = [arg.strip()] if arg.strip() else list(self.regions)
        unknown = [r for r in regions if r not in self.regions]
        if unknown:
            return Step(
                problem=f"images: {unknown[0]} is not one of the demo's regions ({', '.join(self.regions)})"
            )
        refs = {image_id: "${" + key + "}" for key, image_id in self.seeded.images.items()}
        rows = [("AMI ID", "NAME", "REGION", "STATE", "CREATED", "IN SCRIPTS")]
        now = datetime.now(UTC)
        for region in regions:
            images = boto3.client("ec2", region_name=region).describe_images(Owners=["self"])["Images"]
            for image in sorted(images, key=lambda i: str(i.get("CreationDate", ""))):
                created = _age(str(image.get("CreationDate", "")), now)
                image_id = image["ImageId"]
                row = (
                    image_id,
                    image.get("Name", ""),
                    region,
                    image["State"],
                    created,
                    refs.get(image_id, ""),
                )
                rows.append(row)
        self.console.say(_table(rows) if len(rows) > 1 else "  (no images)")
        return Step()

    def expect(self, text: str) -> Step:
        if not text:
            return Step(problem="expect: what text?")
        found = self.console.wait_for(self.mark, lambda o: text in o.text, self.expect_timeout)
        if found is None:
            return Step(problem=f"expected “{text}” in the bot's output within {self.expect_timeout:g} s")
        self.console.say(f"  ✓ saw “{text}”")
        return Step()

    def expect_error(self, text: str) -> Step:
        last = self.last
        if last is None:
            return Step(problem="expect-error: no command before it")
        if last.refused is not None:
            if text in last.refused:
                self.console.say(f"  ✓ refused with “{text}”")
                return Step()
            return Step(problem=f"the command was refused, but not with “{text}”: {last.refused}")

        def refusal(output: Output) -> bool:
            return output.refusal and text in output.text

        if self.console.wait_for(self.mark, refusal, self.expect_timeout) is not None:
            self.console.say(f"  ✓ refused with “{text}”")
            return Step()
        return Step(problem=f"expected the command to be refused with “{text}”, but it was not")

    def set(self, rest: str) -> Step:
        name, _, value = rest.partition(" ")
        match = _SECONDS.match(value.strip())
        if name not in ("available-after", "expect-timeout") or not match:
            return Step(problem="set: expected `set available-after SECONDS` or `set expect-timeout SECONDS`")
        seconds = float(match.group(1))
        if name == "available-after":
            self.aws.available_after = seconds
        else:
            self.expect_timeout = seconds
        self.console.say(f"  ({name} = {seconds:g} s)")
        return Step()


def _payload(body: str) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        return {"text": body}
    return data if isinstance(data, dict) else {"text": body}


def _plain(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return str(obj.get("text", ""))
    return str(obj or "")


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        try:
            return shlex.split(text)[0]
        except ValueError:
            return text
    return text


def _age(stamp: str, now: datetime) -> str:
    try:
        created = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    days = (now - created).total_seconds() / 86400
    when = f"{created:%Y-%m-%d %H:%M}"
    return f"{when} (today)" if days < 1 else f"{when} ({days:.0f} d ago)"


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
