"""`amibot demo [--script FILE]`: set up the emulated world, run the real bot in it, talk to it.

The bot is built by the one composition root (`bot.app.build`) with a fakeredis client; AWS
is moto in this process (`bot.demo.aws`), Slack is `bot.fakeslack.FakeSlack` on 127.0.0.1.
Nothing here changes what the bot does; it only supplies the peers and the person.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from bot.demo.slack import ADMINS, APPROVERS, BOT_TOKEN, NOTIFY_CHANNEL, PEOPLE, TEAM_ID, Console

log = logging.getLogger(__name__)

START_CHANNEL = "CGENERAL"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
AVAILABLE_AFTER = 4.0  # seconds a new image stays pending
EXPECT_TIMEOUT = 20.0  # seconds `expect` waits for output
BUNDLED = {
    "example": "create.txt",
    "create": "create.txt",
    "deregister": "deregister.txt",
    "tour": "tour.txt",
    "prune": "prune.txt",
}
# The prune script needs the schedule on (every day at 03:00 UTC): its Keep notice, due 3 days
# (AMIBOT_PRUNE_NOTICE) ahead of the next run, then goes out as the demo starts.
DAILY_PRUNE = "0 3 * * *"
SCRIPT_PRUNE_SCHEDULE = {"prune.txt": DAILY_PRUNE}
_NOISY = ("botocore", "boto3", "urllib3", "apscheduler", "slack_bolt", "slack_sdk", "waitress", "moto")


def demo_settings(slack_api_url: str, signing_secret: str, prune_schedule: str | None = None) -> Any:
    """Every setting explicit, so nothing from the user's environment or files takes part."""
    from bot.config import Settings, load_settings

    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_app_token": None,
        "slack_signing_secret": signing_secret,
        "slack_api_url": slack_api_url,
        "redis_url": "redis://localhost:6379/0",  # unused: the demo passes its own client
        "amibot_key_prefix": "amibot:",
        "aws_default_region": REGIONS[0],
        "amibot_regions": ",".join(REGIONS),
        "amibot_accounts": {},
        "amibot_notify_channel": NOTIFY_CHANNEL,
        "amibot_approval_channel": None,
        "amibot_approvers": ",".join(APPROVERS),
        "amibot_admins": ",".join(ADMINS),
        "amibot_allowed_channels": [],
        "amibot_poll_interval": 1.0,
        "amibot_max_wait": "2h",
        "amibot_approval_ttl": "24h",
        "amibot_reminder_interval": "4h",
        "amibot_retention_days": 30,
        "amibot_keep_last": 3,
        "amibot_protect_tag": "amibot:keep",
        "amibot_prune_schedule": prune_schedule,
        "amibot_prune_notice": "3d",
        "amibot_allow_self_approval": False,
        "amibot_team_id": TEAM_ID,
        "amibot_lease": "3s",
        "amibot_notfound_grace": "30s",
        "amibot_workers": 2,
        "amibot_log_level": "WARNING",
    }
    for name, field in Settings.model_fields.items():  # settings added later: their defaults
        if name not in values:
            values[name] = field.get_default(call_default_factory=True)
    return load_settings(values, env_file=None)


@contextmanager
def quiet_logs(secret_values: Sequence[str]) -> Iterator[None]:
    """The bot's logs at WARNING, readable, on stderr; the previous logging restored after."""
    from bot import logs

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {name: logging.getLogger(name).level for name in _NOISY})
    logs.configure("WARNING", secret_values, json_output=False)
    logging.getLogger("moto").setLevel(logging.WARNING)
    # "skipped: maximum number of running instances reached" when a tick outlasts its interval
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    try:
        yield
    finally:
        handlers, level, levels = saved
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)


class Demo:
    """The emulated world and the bot in it: `start()` builds it, `stop()` tears it all down."""

    def __init__(
        self,
        console: Console,
        *,
        available_after: float,
        expect_timeout: float,
        prune_schedule: str | None = None,
    ) -> None:
        self.console = console
        self.available_after = available_after
        self.expect_timeout = expect_timeout
        self.prune_schedule = prune_schedule
        self._stack = ExitStack()

    def start(self) -> Any:
        import fakeredis

        from bot.app import build
        from bot.demo.aws import EmulatedAws, IsolatedEnv
        from bot.demo.seed import seed
        from bot.demo.session import Session
        from bot.demo.slack import Narrator, start_fake

        stack = self._stack
        try:
            secret = secrets.token_hex(16)
            stack.enter_context(quiet_logs([BOT_TOKEN, secret]))
            env = IsolatedEnv()
            env.start()
            stack.callback(env.stop)
            aws = EmulatedAws(self.available_after)
            aws.start()
            stack.callback(aws.stop)
            seeded = seed(aws)
            fake = start_fake()
            stack.callback(fake.stop)
            runtime = build(
                demo_settings(fake.api_url, secret, self.prune_schedule),
                redis_client=fakeredis.FakeRedis(decode_responses=True),
                verify_token=True,
            )
            stack.callback(runtime.stop)
            narrator = Narrator(fake, self.console, current_user=lambda: PEOPLE[0].id)
            stack.callback(fake.subscribe(narrator.on_call))
            session = Session(
                runtime=runtime,
                fake=fake,
                console=self.console,
                narrator=narrator,
                seeded=seeded,
                aws=aws,
                signing_secret=secret,
                regions=REGIONS,
                channel=START_CHANNEL,
                expect_timeout=self.expect_timeout,
            )
            narrator.current_user = lambda: session.user
            runtime.start_background()
        except BaseException:
            stack.close()
            raise
        self.session = session
        return session

    def stop(self) -> None:
        self._stack.close()


def load_script(ref: str) -> tuple[str, list[str]]:
    """A script file, or a bundled one by name (`example`, `create`, `deregister`, `tour`, `prune`).
    Raises OSError."""
    path = Path(ref)
    if not path.exists() and ref in BUNDLED:
        bundled = resources.files("bot.demo").joinpath("scripts", BUNDLED[ref])
        return BUNDLED[ref], bundled.read_text(encoding="utf-8").splitlines()
    return path.name, path.read_text(encoding="utf-8").splitlines()


def play(session: Any, console: Console, lines: Sequence[str], name: str) -> int:
    """Run a script; stop at the first failing step. 0 when every step passed, else 1."""
    steps = 0
    pending: tuple[int, str, str] | None = None  # a refused command not yet followed by expect-error
    failure: tuple[int, str, str] | None = None
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            console.say(line)
            continue
        word = line.split(maxsplit=1)[0].lower()
        if pending is not None and word not in ("expect", "expect-error"):
            failure = pending
            break
        console.say(session.prompt + line)
        steps += 1
        try:
            step = session.run(line)
        except Exception as exc:
            log.error("demo step failed", exc_info=True)
            failure = (number, line, f"{type(exc).__name__}: {exc}")
            break
        if word == "expect-error":
            pending = None
        if step.problem:
            failure = (number, line, step.problem)
            break
        if step.refused is not None:
            pending = (number, line, f"the bot refused it: {step.refused}")
        if step.quit:
            break
    if failure is None and pending is not None:
        failure = pending
    if failure is not None:
        number, line, problem = failure
        console.say(f"✗ {name} failed at line {number}: {line}\n  {problem}")
        return 1
    console.say(f"✓ {name}: all {steps} steps passed")
    return 0


def interactive(session: Any, console: Console, stdin: TextIO) -> int:
    """Read lines until `quit` or end of input. A terminal gets line editing and a live prompt."""
    tty = stdin is sys.stdin and stdin.isatty() and sys.stdout.isatty()
    if tty:
        try:
            import readline

            console.line_buffer = readline.get_line_buffer
        except ImportError:  # pragma: no cover (Windows)
            pass
    console.say(
        "amibot demo: the real bot, with Slack, AWS and Redis emulated in this process.\n"
        f"You are {session.person.name} in #general. `help` lists what you can type; "
        "`/ami help` is the bot's own help. Example instances:"
    )
    session.run("instances")
    while True:
        try:
            if tty:
                console.prompt = session.prompt
                try:
                    line = input(session.prompt)
                finally:
                    console.prompt = None
            else:
                raw = stdin.readline()
                if not raw:
                    raise EOFError
                line = raw.rstrip("\r\n")
                if line.strip():
                    console.say(session.prompt + line)
        except EOFError:
            if tty:
                console.say("")
            return 0
        try:
            step = session.run(line)
        except Exception as exc:
            log.error("demo step failed", exc_info=True)
            console.say(f"  ✗ {type(exc).__name__}: {exc}")
            continue
        if step.problem:
            console.say(f"  ✗ {step.problem}")
        if step.quit:
            return 0


def run_demo(
    script: str | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    available_after: float = AVAILABLE_AFTER,
    expect_timeout: float = EXPECT_TIMEOUT,
    prune_schedule: str | None = None,
) -> int:
    """`amibot demo`: interactive, or play `script` (a path, or `example`). Returns the exit code.
    `prune_schedule`: AMIBOT_PRUNE_SCHEDULE for the demo (default off; on for the prune script)."""
    out = stdout or sys.stdout
    lines: list[str] | None = None
    name = ""
    if script is not None:
        try:
            name, lines = load_script(script)
        except OSError as exc:
            print(f"amibot demo: cannot read the script {script!r}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    console = Console(out)
    schedule = prune_schedule or SCRIPT_PRUNE_SCHEDULE.get(name)
    try:
        demo = Demo(
            console, available_after=available_after, expect_timeout=expect_timeout, prune_schedule=schedule
        )
        try:
            session = demo.start()
        except Exception as exc:
            print(f"amibot demo: could not start: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
        try:
            if lines is not None:
                return play(session, console, lines, name)
            return interactive(session, console, stdin or sys.stdin)
        finally:
            demo.stop()
    except KeyboardInterrupt:
        console.say("\n(interrupted)")
        return 130
