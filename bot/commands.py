"""The grammar of `/ami`: the text of a slash command in, a typed `Command` out.

`parse(text, ctx)` returns one of the frozen command dataclasses below or raises `UserError`
whose message says what is wrong (quoting the offending value) and whose `usage` is the usage
line of the subcommand. It does no I/O and never raises anything else, whatever the text.

Each subcommand is a small declarative `_Grammar` (positional arguments and options, each with a
converter that validates and converts one value); one generic parser runs them all.

Reading the text like a shell, but forgiving what Slack and phones do to it:
* Slack's HTML escaping (`&amp;` `&lt;` `&gt;`) is undone, and links Slack may have wrapped in
  `<...|...>` are unwrapped;
* curly quotes (“ ” ‘ ’ „ ‟ ‚ ‛ « ») count as straight quotes;
* non-breaking and other Unicode spaces separate words like a space;
* an option may start with `--`, `-`, `—` or `–` (smart dashes): `—name` is `--name`;
  option names, subcommand names and regions are case-insensitive;
* `--opt value` and `--opt=value` are the same.
"""

from __future__ import annotations

import difflib
import re
import shlex
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any, ClassVar, TypeAlias

from bot import regions
from bot.durations import parse_user_duration
from bot.errors import UserError

__all__ = [
    "DEFAULT_AUDIT_ENTRIES",
    "MAX_INPUT_CHARS",
    "MAX_USER_TAGS",
    "RESERVED_TAG_KEYS",
    "SUBCOMMANDS",
    "USAGE",
    "Audit",
    "Command",
    "Copy",
    "Create",
    "CreateModal",
    "Deregister",
    "Describe",
    "FieldErrors",
    "GrammarContext",
    "Help",
    "List",
    "Protect",
    "Prune",
    "PruneSchedule",
    "Status",
    "Unprotect",
    "create_from_form",
    "help_text",
    "parse",
    "tokenize",
]

MAX_INPUT_CHARS = 4000
#: AWS allows 50 tags per image and amibot adds two of its own (`RESERVED_TAG_KEYS`).
MAX_USER_TAGS = 48
MAX_FILTER_TAGS = 50
RESERVED_TAG_KEYS = frozenset({"amibot:requested-by", "amibot:job"})
DEFAULT_AUDIT_ENTRIES = 20
MAX_AUDIT_ENTRIES = 500
MAX_KEEP_LAST = 100
MAX_DESCRIPTION = 255
MAX_REASON = 500


# --------------------------------------------------------------------------- context and commands


@dataclass(frozen=True)
class GrammarContext:
    """What the grammar needs from the configuration."""

    allowed_regions: tuple[str, ...]  # AMIBOT_REGIONS; the first is the default region
    accounts: frozenset[str] = frozenset()  # aliases of other accounts (AMIBOT_ACCOUNTS)
    known_regions: frozenset[str] = field(default_factory=regions.known_regions)
    # alias -> the only regions amibot may use in that account (its `regions:`; absent: all allowed)
    account_regions: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_regions", tuple(self.allowed_regions))
        object.__setattr__(self, "accounts", frozenset(self.accounts))
        object.__setattr__(self, "known_regions", frozenset(self.known_regions))
        object.__setattr__(
            self,
            "account_regions",
            MappingProxyType({alias: tuple(rs) for alias, rs in self.account_regions.items() if rs}),
        )
        if not self.allowed_regions:
            raise ValueError("GrammarContext needs at least one allowed region")

    @property
    def default_region(self) -> str:
        return self.allowed_regions[0]

    def regions_for(self, account: str | None) -> tuple[str, ...]:
        """The regions amibot may use in an account (its own list within AMIBOT_REGIONS); the first
        is that account's default region."""
        own = self.account_regions.get(account or "")
        if not own:
            return self.allowed_regions
        return tuple(r for r in own if r in self.allowed_regions)  # empty: the account is unusable


@dataclass(frozen=True)
class Help:
    SUBCOMMAND: ClassVar[str] = "help"
    topic: str | None = None  # a key of USAGE, or None for the overview


@dataclass(frozen=True)
class Create:
    SUBCOMMAND: ClassVar[str] = "create"
    instance_id: str
    name: str | None
    description: str | None
    reboot: bool
    tags: tuple[tuple[str, str], ...]
    region: str
    account: str | None = None


@dataclass(frozen=True)
class CreateModal:
    """`/ami create` without an instance id: open the form."""

    SUBCOMMAND: ClassVar[str] = "create"
    region: str
    account: str | None = None


@dataclass(frozen=True)
class Copy:
    SUBCOMMAND: ClassVar[str] = "copy"
    ami_id: str
    to_regions: tuple[str, ...]
    from_region: str
    name: str | None = None
    encrypted: bool = False
    kms_key: str | None = None
    account: str | None = None


@dataclass(frozen=True)
class Deregister:
    SUBCOMMAND: ClassVar[str] = "deregister"
    ami_id: str
    region: str
    keep_snapshots: bool = False
    reason: str | None = None
    account: str | None = None


@dataclass(frozen=True)
class Prune:
    SUBCOMMAND: ClassVar[str] = "prune"
    region: str | None = None  # None: every allowed region
    older_than: timedelta | None = None  # None: AMIBOT_RETENTION_DAYS
    keep_last: int | None = None  # None: AMIBOT_KEEP_LAST
    dry_run: bool = False
    account: str | None = None


@dataclass(frozen=True)
class PruneSchedule:
    SUBCOMMAND: ClassVar[str] = "prune schedule"


@dataclass(frozen=True)
class List:
    SUBCOMMAND: ClassVar[str] = "list"
    region: str
    older_than: timedelta | None = None
    name_pattern: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    account: str | None = None


@dataclass(frozen=True)
class Describe:
    SUBCOMMAND: ClassVar[str] = "describe"
    ami_id: str
    region: str
    account: str | None = None


@dataclass(frozen=True)
class Status:
    SUBCOMMAND: ClassVar[str] = "status"
    job_id: str | None = None  # None: in-flight jobs and pending approvals


@dataclass(frozen=True)
class Protect:
    SUBCOMMAND: ClassVar[str] = "protect"
    ami_id: str
    region: str
    account: str | None = None


@dataclass(frozen=True)
class Unprotect:
    SUBCOMMAND: ClassVar[str] = "unprotect"
    ami_id: str
    region: str
    account: str | None = None


@dataclass(frozen=True)
class Audit:
    SUBCOMMAND: ClassVar[str] = "audit"
    n: int = DEFAULT_AUDIT_ENTRIES


Command: TypeAlias = (
    Help
    | Create
    | CreateModal
    | Copy
    | Deregister
    | Prune
    | PruneSchedule
    | List
    | Describe
    | Status
    | Protect
    | Unprotect
    | Audit
)

# --------------------------------------------------------------------------- usage and help

USAGE: Mapping[str, str] = MappingProxyType(
    {
        "help": "/ami help [SUBCOMMAND]",
        "create": "/ami create INSTANCE_ID [--name NAME] [--description TEXT] [--reboot] "
        "[--tag KEY=VALUE]... [--region REGION] [--account ALIAS]",
        "copy": "/ami copy AMI_ID --to REGION[,REGION...] [--from REGION] [--name NAME] "
        "[--encrypted [--kms-key KEY]] [--account ALIAS]",
        "deregister": "/ami deregister AMI_ID [--region REGION] [--keep-snapshots] [--reason TEXT] "
        "[--account ALIAS]",
        "prune": "/ami prune [--region REGION] [--older-than DURATION] [--keep-last N] [--dry-run] "
        "[--account ALIAS]",
        "prune schedule": "/ami prune schedule",
        "list": "/ami list [--region REGION] [--older-than DURATION] [--name PATTERN] [--tag KEY=VALUE] "
        "[--account ALIAS]",
        "describe": "/ami describe AMI_ID [--region REGION] [--account ALIAS]",
        "status": "/ami status [JOB_ID]",
        "protect": "/ami protect AMI_ID [--region REGION] [--account ALIAS]",
        "unprotect": "/ami unprotect AMI_ID [--region REGION] [--account ALIAS]",
        "audit": "/ami audit [N]",
    }
)

#: Every help topic, in the order of the overview.
SUBCOMMANDS: tuple[str, ...] = tuple(USAGE)

_SUMMARY: Mapping[str, str] = {
    "help": "this overview, or help on one subcommand",
    "create": "create an AMI from an instance; posts when it is ready (no arguments: a form)",
    "copy": "copy an AMI to other regions; posts when each copy is ready",
    "deregister": "deregister an AMI and delete its snapshots, after an approver approves",
    "prune": "plan the removal of old AMIs for approval (--dry-run: only show the plan)",
    "prune schedule": "the prune schedule and its next run",
    "list": "list AMIs",
    "describe": "show one AMI, its snapshots and where it is used",
    "status": "one job, or every job in flight and every pending approval",
    "protect": "protect an AMI from deregistration and pruning (adds the protect tag)",
    "unprotect": "remove the protect tag from an AMI",
    "audit": "the last N audit entries (admins; default 20, at most 500)",
}

_DETAILS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "help": (
        "Shows every subcommand, or the usage, an explanation and examples of one.",
        ("/ami help", "/ami help copy"),
    ),
    "create": (
        "Creates an AMI from an EC2 instance without rebooting it (--reboot asks for a reboot), "
        "tracks it until it is available and posts a notice here and in the notify channel. "
        "The default name is <instance Name tag or id>-<UTC yyyy-mm-dd-HHMM>. --tag may be repeated. "
        "Without arguments, /ami create opens a form with an instance picker. "
        "--region defaults to the first of AMIBOT_REGIONS.",
        (
            "/ami create i-0123456789abcdef0",
            '/ami create i-0123456789abcdef0 --name "web golden 2026-11-27" --tag team=web --reboot',
        ),
    ),
    "copy": (
        "Copies an AMI from --from (default: the first of AMIBOT_REGIONS) to each region of --to "
        "(comma separated) and posts when each copy is available. --encrypted encrypts the copies, "
        "with --kms-key (key id, ARN or alias/NAME) or the default EBS key.",
        (
            "/ami copy ami-0123456789abcdef0 --to eu-west-1",
            "/ami copy ami-0123456789abcdef0 --from us-east-1 --to eu-west-1,ap-southeast-2 "
            "--encrypted --kms-key alias/amis",
        ),
    ),
    "deregister": (
        "Asks an approver to approve, then deregisters the AMI and deletes its snapshots "
        "(unless --keep-snapshots). AMIs in use or protected are refused.",
        ("/ami deregister ami-0123456789abcdef0 --reason 'replaced by the 2026-12 image'",),
    ),
    "prune": (
        "Plans the deregistration of AMIs older than --older-than (default: AMIBOT_RETENTION_DAYS), "
        "keeping the newest --keep-last of each family and everything in use or protected, and "
        "posts the plan for approval. Without --region, every region amibot may use. "
        "DURATION is a whole number with m, h, d or w: 90m, 12h, 30d, 6w.",
        ("/ami prune --dry-run", "/ami prune --region eu-west-1 --older-than 90d --keep-last 5"),
    ),
    "prune schedule": (
        "Shows the prune schedule (AMIBOT_PRUNE_SCHEDULE) and when it runs next.",
        ("/ami prune schedule",),
    ),
    "list": (
        "Lists the account's AMIs in a region. --name takes a pattern with * and ? wildcards; "
        "--tag KEY=VALUE filters by tag and may be repeated (all must match).",
        ("/ami list", "/ami list --region eu-west-1 --older-than 30d --name 'web-*' --tag team=web"),
    ),
    "describe": (
        "Shows one AMI: state, age, snapshots and size, tags, and what uses it.",
        ("/ami describe ami-0123456789abcdef0 --region eu-west-1",),
    ),
    "status": (
        "With a job id (like j-7f3a9c), that job, tracking it again if it had stopped waiting; "
        "without, the jobs in flight and the pending approvals.",
        ("/ami status", "/ami status j-7f3a9c"),
    ),
    "protect": (
        "Adds the protect tag, so the AMI is never deregistered or pruned until unprotected.",
        ("/ami protect ami-0123456789abcdef0",),
    ),
    "unprotect": (
        "Removes the protect tag.",
        ("/ami unprotect ami-0123456789abcdef0 --region eu-west-1",),
    ),
    "audit": (
        "For admins: the last N entries of the audit log (who, what, when, result).",
        ("/ami audit", "/ami audit 100"),
    ),
}


def _normalize_topic(topic: str) -> str:
    return " ".join(topic.lower().split())


def help_text(topic: str | None = None) -> str:
    """The overview of every subcommand, or the usage, explanation and examples of one."""
    if topic is None:
        lines = ["*amibot* — AMIs from Slack. Subcommands:"]
        lines += [f"`{USAGE[name]}` — {_SUMMARY[name]}" for name in SUBCOMMANDS]
        lines.append("`/ami help SUBCOMMAND` shows details and examples.")
        return "\n".join(lines)
    key = _normalize_topic(topic)
    if key not in USAGE:
        raise UserError(f"there is no help on {_show(topic)}; {_subcommand_list()}", usage=USAGE["help"])
    explanation, examples = _DETAILS[key]
    lines = [f"`{USAGE[key]}`", explanation, "Examples:"]
    lines += [f"`{example}`" for example in examples]
    return "\n".join(lines)


def _subcommand_list() -> str:
    return "subcommands: " + ", ".join(SUBCOMMANDS)


# --------------------------------------------------------------------------- tokenizing

_QUOTES = str.maketrans(
    {
        "“": '"',
        "”": '"',
        "„": '"',
        "‟": '"',
        "«": '"',
        "»": '"',
        "‘": "'",
        "’": "'",
        "‚": "'",
        "‛": "'",
    }
)
_UNICODE_SPACE = re.compile("[\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_INVISIBLE = re.compile("[\u200b\u2060\ufeff]")
_HTML_ESCAPE = re.compile("&(amp|lt|gt);")
_HTML_CHARS = {"amp": "&", "lt": "<", "gt": ">"}
# What Slack sends for an auto-linked URL or e-mail address when it escapes links: <url|label> or <url>.
_SLACK_LINK = re.compile(r"<(?:https?://|mailto:)([^<>|]*)(?:\|([^<>]*))?>")


def _unlink(match: re.Match[str]) -> str:
    label = match.group(2)
    if label is not None:
        return label
    whole = match.group(0)[1:-1]
    return whole.removeprefix("mailto:")


def tokenize(text: str) -> list[str]:
    """Split the text of a slash command into words, like a POSIX shell, after undoing Slack's
    escaping and reading curly quotes as straight ones. Raises `UserError` on an unbalanced quote."""
    text = _SLACK_LINK.sub(_unlink, text)
    text = _HTML_ESCAPE.sub(lambda m: _HTML_CHARS[m.group(1)], text)
    text = _UNICODE_SPACE.sub(" ", _INVISIBLE.sub("", text)).translate(_QUOTES)
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError as exc:
        first = text.split(maxsplit=1)[0].lower() if text.strip() else ""
        usage = USAGE.get(first)
        if "escaped" in str(exc):
            raise UserError("the command ends with a lone backslash (\\)", usage=usage) from None
        raise UserError(
            "unbalanced quote: an opening \" or ' has no closing one (curly quotes count too); "
            'to put an apostrophe in a value, wrap the value in double quotes: --name "Bob\'s image"',
            usage=usage,
        ) from None


# --------------------------------------------------------------------------- value converters


class _Bad(Exception):
    """A validation failure inside one subcommand; `parse` adds the usage line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _show(value: str, limit: int = 60) -> str:
    """A value quoted for a message: truncated when long, invisible characters made visible."""
    short = value if len(value) <= limit else value[:limit] + "…"
    return "“" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in short) + "”"


Convert = Callable[[str, GrammarContext], Any]

_INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_AMI_ID = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_JOB_ID = re.compile(r"j-[0-9a-f]{6}")
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + " ()[]./-'@_")
_NAME_CHARS_TEXT = "letters, digits, spaces and ( ) [ ] . / - ' @ _"
_PATTERN_CHARS = _NAME_CHARS | {"*", "?"}
_KMS_KEY = re.compile(
    r"(?:arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(?:key|alias)/[A-Za-z0-9/_+=,.@-]+"
    r"|alias/[A-Za-z0-9/_-]+"
    r"|(?:mrk-)?[0-9a-fA-F-]{32,36})"
)
_WHOLE_NUMBER = re.compile(r"[0-9]{1,6}")


def _instance_id(value: str, ctx: GrammarContext) -> str:
    if not _INSTANCE_ID.fullmatch(value):
        raise _Bad(
            f"{_show(value)} is not an instance id: expected i- and 8 or 17 lowercase hex digits, "
            "like i-0123456789abcdef0"
        )
    return value


def _ami_id(value: str, ctx: GrammarContext) -> str:
    if not _AMI_ID.fullmatch(value):
        raise _Bad(
            f"{_show(value)} is not an AMI id: expected ami- and 8 or 17 lowercase hex digits, "
            "like ami-0123456789abcdef0"
        )
    return value


def _job_id(value: str, ctx: GrammarContext) -> str:
    if not _JOB_ID.fullmatch(value):
        hint = " (that is an approval id)" if re.fullmatch(r"a-[0-9a-f]{6}", value) else ""
        raise _Bad(f"{_show(value)} is not a job id{hint}: expected j- and 6 hex digits, like j-7f3a9c")
    return value


def _region(value: str, ctx: GrammarContext) -> str:
    region = value.strip().lower()
    if region not in ctx.known_regions:
        raise _Bad(f"{_show(value)} is not an AWS region")
    if region not in ctx.allowed_regions:
        raise _Bad(
            f"{_show(value)} is not one of the regions amibot may use: {', '.join(ctx.allowed_regions)}"
        )
    return region


def _regions(value: str, ctx: GrammarContext) -> tuple[str, ...]:
    items = [item.strip() for item in value.split(",")]
    if len(items) > len(ctx.allowed_regions):
        raise _Bad(
            f"--to lists {len(items)} regions ({_show(value)}); amibot may use only "
            f"{len(ctx.allowed_regions)}: {', '.join(ctx.allowed_regions)}"
        )
    if any(not item for item in items):
        raise _Bad(f"--to {_show(value)} has an empty region; separate regions with single commas")
    result: list[str] = []
    for item in items:
        region = _region(item, ctx)
        if region in result:
            raise _Bad(f"--to names {_show(region)} twice")
        result.append(region)
    return tuple(result)


def _account(value: str, ctx: GrammarContext) -> str:
    if not ctx.accounts:
        raise _Bad(f"--account {_show(value)}: no other accounts are configured")
    if value not in ctx.accounts:
        raise _Bad(f"{_show(value)} is not a configured account; accounts: {', '.join(sorted(ctx.accounts))}")
    return value


def _ami_name(value: str, ctx: GrammarContext) -> str:
    if not 3 <= len(value) <= 128:
        raise _Bad(f"the AMI name {_show(value)} has {len(value)} characters; a name has 3 to 128")
    bad = next((c for c in value if c not in _NAME_CHARS), None)
    if bad is not None:
        raise _Bad(
            f"the AMI name {_show(value)} contains {_show(bad)}; a name may only contain {_NAME_CHARS_TEXT}"
        )
    return value


def _name_pattern(value: str, ctx: GrammarContext) -> str:
    if not 1 <= len(value) <= 128:
        raise _Bad(f"the name pattern {_show(value)} has {len(value)} characters; a pattern has 1 to 128")
    bad = next((c for c in value if c not in _PATTERN_CHARS), None)
    if bad is not None:
        raise _Bad(
            f"the name pattern {_show(value)} contains {_show(bad)}; a pattern may only contain "
            f"{_NAME_CHARS_TEXT} and the wildcards * and ?"
        )
    return value


def _text(option: str, limit: int) -> Convert:
    def convert(value: str, ctx: GrammarContext) -> str:
        text = value.strip()
        if not text:
            raise _Bad(f"{option} needs a value (it is empty)")
        if len(text) > limit:
            raise _Bad(f"{option} {_show(text, 40)} is too long: {len(text)} characters, at most {limit}")
        return text

    return convert


def _key_value(value: str) -> tuple[str, str]:
    key, eq, tag_value = value.partition("=")
    if not eq:
        raise _Bad(f"--tag {_show(value)} is not KEY=VALUE")
    if not key.strip():
        raise _Bad(f"--tag {_show(value)} has an empty key")
    if len(key) > 128:
        raise _Bad(f"the tag key {_show(key, 40)} is too long: {len(key)} characters, at most 128")
    if len(tag_value) > 256:
        raise _Bad(f"the value of tag {_show(key, 40)} is too long: {len(tag_value)} characters, at most 256")
    return key, tag_value


def _image_tag(value: str, ctx: GrammarContext) -> tuple[str, str]:
    """A tag to put on a new image."""
    key, tag_value = _key_value(value)
    if key.lower().startswith("aws:"):
        raise _Bad(f"the tag key {_show(key, 40)} starts with aws:, which is reserved by AWS")
    if key in RESERVED_TAG_KEYS:
        raise _Bad(f"the tag key {_show(key)} is set by amibot itself")
    return key, tag_value


def _filter_tag(value: str, ctx: GrammarContext) -> tuple[str, str]:
    """A tag to filter by: any key may be matched, amibot's and AWS's own included."""
    return _key_value(value)


def _check_tags(tags: tuple[tuple[str, str], ...], limit: int) -> None:
    if len(tags) > limit:
        raise _Bad(f"{len(tags)} tags given; at most {limit}")
    seen: set[str] = set()
    for key, _ in tags:
        if key in seen:
            raise _Bad(f"the tag key {_show(key)} is given twice")
        seen.add(key)


def _kms_key(value: str, ctx: GrammarContext) -> str:
    if not _KMS_KEY.fullmatch(value):
        raise _Bad(f"{_show(value)} is not a KMS key: give a key id, a key ARN, an alias ARN or alias/NAME")
    return value


def _older_than(value: str, ctx: GrammarContext) -> timedelta:
    try:
        return parse_user_duration(value)
    except ValueError as exc:
        raise _Bad(f"--older-than: {exc}") from None


def _bounded_int(what: str, low: int, high: int) -> Convert:
    def convert(value: str, ctx: GrammarContext) -> int:
        if _WHOLE_NUMBER.fullmatch(value) and low <= int(value) <= high:
            return int(value)
        raise _Bad(f"{what} must be a whole number from {low} to {high}, not {_show(value)}")

    return convert


def _first_region(ctx: GrammarContext) -> str:
    return ctx.default_region


# --------------------------------------------------------------------------- grammars


@dataclass(frozen=True)
class _Arg:
    """A positional argument."""

    metavar: str
    dest: str
    convert: Convert
    required: bool = True
    default: Any = None


@dataclass(frozen=True)
class _Opt:
    """An option. Without a converter it is a flag (takes no value)."""

    name: str  # "--name"
    dest: str  # the field of the command
    convert: Convert | None = None
    repeatable: bool = False
    default: Callable[[GrammarContext], Any] | None = None

    def initial(self, ctx: GrammarContext) -> Any:
        if self.convert is None:
            return False
        if self.repeatable:
            return ()
        return None if self.default is None else self.default(ctx)


Finish = Callable[[dict[str, Any], GrammarContext], Command]


@dataclass(frozen=True)
class _Grammar:
    name: str
    make: Finish
    args: tuple[_Arg, ...] = ()
    opts: tuple[_Opt, ...] = ()

    def option(self, name: str) -> _Opt | None:
        return next((opt for opt in self.opts if opt.name == name), None)


def _build(cls: Callable[..., Command]) -> Finish:
    return lambda values, ctx: cls(**values)


# The options of create that make no sense without an instance id (a form asks for them).
_CREATE_DETAILS = (
    ("--name", "name"),
    ("--description", "description"),
    ("--reboot", "reboot"),
    ("--tag", "tags"),
)


def _finish_create(values: dict[str, Any], ctx: GrammarContext) -> Command:
    _check_tags(values["tags"], MAX_USER_TAGS)
    if values["instance_id"] is not None:
        return Create(**values)
    given = [option for option, dest in _CREATE_DETAILS if values[dest]]
    if given:
        raise _Bad(f"missing INSTANCE_ID ({given[0]} needs it; /ami create alone opens a form)")
    return CreateModal(region=values["region"], account=values["account"])


def _finish_copy(values: dict[str, Any], ctx: GrammarContext) -> Command:
    if values["to_regions"] is None:
        raise _Bad("--to is required: the region or comma-separated regions to copy to")
    if values["from_region"] in values["to_regions"]:
        raise _Bad(
            f"--to {_show(values['from_region'])} is the source region (--from); copy to other regions"
        )
    if values["kms_key"] is not None and not values["encrypted"]:
        raise _Bad(f"--kms-key {_show(values['kms_key'])} needs --encrypted")
    return Copy(**values)


def _finish_list(values: dict[str, Any], ctx: GrammarContext) -> Command:
    _check_tags(values["tags"], MAX_FILTER_TAGS)
    return List(**values)


_REGION = _Opt("--region", "region", _region, default=_first_region)
_ACCOUNT = _Opt("--account", "account", _account)
_OLDER_THAN = _Opt("--older-than", "older_than", _older_than)
_AMI = _Arg("AMI_ID", "ami_id", _ami_id)

_GRAMMARS: Mapping[str, _Grammar] = {
    g.name: g
    for g in (
        _Grammar(
            "create",
            _finish_create,
            args=(_Arg("INSTANCE_ID", "instance_id", _instance_id, required=False),),
            opts=(
                _Opt("--name", "name", _ami_name),
                _Opt("--description", "description", _text("--description", MAX_DESCRIPTION)),
                _Opt("--reboot", "reboot"),
                _Opt("--tag", "tags", _image_tag, repeatable=True),
                _REGION,
                _ACCOUNT,
            ),
        ),
        _Grammar(
            "copy",
            _finish_copy,
            args=(_AMI,),
            opts=(
                _Opt("--to", "to_regions", _regions),
                _Opt("--from", "from_region", _region, default=_first_region),
                _Opt("--name", "name", _ami_name),
                _Opt("--encrypted", "encrypted"),
                _Opt("--kms-key", "kms_key", _kms_key),
                _ACCOUNT,
            ),
        ),
        _Grammar(
            "deregister",
            _build(Deregister),
            args=(_AMI,),
            opts=(
                _REGION,
                _Opt("--keep-snapshots", "keep_snapshots"),
                _Opt("--reason", "reason", _text("--reason", MAX_REASON)),
                _ACCOUNT,
            ),
        ),
        _Grammar(
            "prune",
            _build(Prune),
            opts=(
                _Opt("--region", "region", _region),  # no default: every allowed region
                _OLDER_THAN,
                _Opt("--keep-last", "keep_last", _bounded_int("--keep-last", 0, MAX_KEEP_LAST)),
                _Opt("--dry-run", "dry_run"),
                _ACCOUNT,
            ),
        ),
        _Grammar(
            "list",
            _finish_list,
            opts=(
                _REGION,
                _OLDER_THAN,
                _Opt("--name", "name_pattern", _name_pattern),
                _Opt("--tag", "tags", _filter_tag, repeatable=True),
                _ACCOUNT,
            ),
        ),
        _Grammar("describe", _build(Describe), args=(_AMI,), opts=(_REGION, _ACCOUNT)),
        _Grammar("status", _build(Status), args=(_Arg("JOB_ID", "job_id", _job_id, required=False),)),
        _Grammar("protect", _build(Protect), args=(_AMI,), opts=(_REGION, _ACCOUNT)),
        _Grammar("unprotect", _build(Unprotect), args=(_AMI,), opts=(_REGION, _ACCOUNT)),
        _Grammar(
            "audit",
            _build(Audit),
            args=(
                _Arg(
                    "N",
                    "n",
                    _bounded_int("N", 1, MAX_AUDIT_ENTRIES),
                    required=False,
                    default=DEFAULT_AUDIT_ENTRIES,
                ),
            ),
        ),
    )
}

# An option: `--name`, `-name`, `—name`, `–name`, `—-name` (smart dashes), with `=value` or not.
_OPTION = re.compile(r"(?:--?|[—–]-?)(?=[A-Za-z])")
# After an option that takes a value, only these forms of a known option mean "the value is missing";
# `--reason -f` or `--name -web` take the single-dash word as the value.
_LONG_OPTION = re.compile(r"(?:--|[—–])(?=[A-Za-z])")


def _split_option(token: str) -> tuple[str, str | None] | None:
    """(`--name`, inline value or None) if the token is an option, else None."""
    prefix = _OPTION.match(token)
    if prefix is None:
        return None
    name, eq, value = token[prefix.end() :].partition("=")
    return "--" + name.lower(), (value if eq else None)


def _is_known_long_option(grammar: _Grammar, token: str) -> bool:
    split = _split_option(token)
    return (
        split is not None and _LONG_OPTION.match(token) is not None and grammar.option(split[0]) is not None
    )


def _unknown_option(grammar: _Grammar, name: str) -> _Bad:
    names = [opt.name for opt in grammar.opts]
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    if names:
        return _Bad(
            f"unknown option {_show(name)} for /ami {grammar.name}{hint}; options: {', '.join(names)}"
        )
    return _Bad(f"/ami {grammar.name} takes no options, not {_show(name)}")


def _unexpected(grammar: _Grammar, token: str, ctx: GrammarContext) -> _Bad:
    hint = ""
    if grammar.name == "copy" and token.lower() in ctx.known_regions:
        hint = " (target regions go after --to, separated by commas)"
    elif grammar.option("--region") and token.lower() in ctx.known_regions:
        hint = " (a region goes after --region)"
    elif grammar.name == "prune" and token.lower() == "schedule":
        hint = " (/ami prune schedule takes nothing else)"
    return _Bad(f"unexpected argument {_show(token)}{hint}")


def _run(grammar: _Grammar, tokens: list[str], ctx: GrammarContext) -> Command:
    values: dict[str, Any] = {arg.dest: arg.default for arg in grammar.args}
    values.update({opt.dest: opt.initial(ctx) for opt in grammar.opts})
    given: set[str] = set()
    positionals: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        split = _split_option(token)
        if split is None:
            positionals.append(token)
            continue
        name, inline = split
        opt = grammar.option(name)
        if opt is None:
            raise _unknown_option(grammar, name)
        if opt.name in given and not opt.repeatable:
            raise _Bad(f"{opt.name} may be given only once")
        given.add(opt.name)
        if opt.convert is None:
            if inline is not None:
                raise _Bad(f"{opt.name} takes no value, not {_show(inline)}")
            values[opt.dest] = True
            continue
        if inline is None:
            if i >= len(tokens) or _is_known_long_option(grammar, tokens[i]):
                raise _Bad(f"{opt.name} needs a value")
            inline = tokens[i]
            i += 1
        value = opt.convert(inline, ctx)
        values[opt.dest] = values[opt.dest] + (value,) if opt.repeatable else value
    if len(positionals) > len(grammar.args):
        raise _unexpected(grammar, positionals[len(grammar.args)], ctx)
    for arg, token in zip(grammar.args, positionals, strict=False):
        values[arg.dest] = arg.convert(token, ctx)
    missing = [arg.metavar for arg in grammar.args[len(positionals) :] if arg.required]
    if missing:
        raise _Bad(f"missing {missing[0]}")
    _account_regions(values, given, ctx)
    return grammar.make(values, ctx)


# Options naming the one region a command acts in (the account's first region when not given).
_REGION_OPTIONS = (("--region", "region"), ("--from", "from_region"))


def _account_regions(values: dict[str, Any], given: set[str], ctx: GrammarContext) -> None:
    """With --account, every region must be one of that account's (its `regions:` in the
    configuration); a region that was not given becomes the account's first."""
    account = values.get("account")
    if not account or account not in ctx.account_regions:
        return
    for option, dest in _REGION_OPTIONS:
        if dest not in values:
            continue
        if option in given:
            _in_account(values[dest], account, ctx)
        elif values[dest] is not None:  # a default region; None means "every region" (prune)
            values[dest] = _in_account(None, account, ctx)
    for region in values.get("to_regions") or ():
        _in_account(region, account, ctx)


def _in_account(region: str | None, account: str, ctx: GrammarContext) -> str:
    """`region` if the account may be used there (None: the account's default region)."""
    allowed = ctx.regions_for(account)
    if not allowed:
        raise _Bad(
            f"account {_show(account)} has no region amibot may use: its regions are not in AMIBOT_REGIONS"
        )
    if region is None:
        return allowed[0]
    if region not in allowed:
        raise _Bad(
            f"account {_show(account)} may only be used in {', '.join(allowed)}, not in {_show(region)}"
        )
    return region


def _parse_help(tokens: list[str]) -> Help:
    if not tokens:
        return Help(None)
    topic = _normalize_topic(" ".join(tokens))
    if topic not in USAGE:
        raise UserError(f"there is no help on {_show(' '.join(tokens))}; {_subcommand_list()}", USAGE["help"])
    return Help(topic)


def parse(text: str, ctx: GrammarContext) -> Command:
    """Parse the text of `/ami` (without `/ami`). Raises `UserError` and nothing else."""
    if len(text) > MAX_INPUT_CHARS:
        raise UserError(f"the command is too long: {len(text)} characters, at most {MAX_INPUT_CHARS}")
    tokens = tokenize(text)
    if not tokens:
        return Help(None)
    head, rest = tokens[0].lower(), tokens[1:]
    if head in ("help", "--help", "-h", "—help", "–help"):
        return _parse_help(rest)
    if head == "prune" and rest and rest[0].lower() == "schedule":
        if len(rest) > 1:
            raise UserError(
                f"/ami prune schedule takes nothing else, not {_show(' '.join(rest[1:]))}",
                USAGE["prune schedule"],
            )
        return PruneSchedule()
    grammar = _GRAMMARS.get(head)
    if grammar is None:
        close = difflib.get_close_matches(head, SUBCOMMANDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise UserError(f"unknown subcommand {_show(tokens[0])}{hint}; {_subcommand_list()}")
    if any(_LONG_OPTION.match(token) and token.lower().lstrip("-—–") == "help" for token in rest):
        return Help(grammar.name)
    try:
        return _run(grammar, rest, ctx)
    except _Bad as bad:
        raise UserError(bad.message, USAGE[grammar.name]) from None


# --------------------------------------------------------------------------- forms


class FieldErrors(UserError):
    """A form with invalid fields: field -> what is wrong, in the words `parse` uses."""

    def __init__(self, errors: Mapping[str, str], usage: str | None = None) -> None:
        super().__init__("; ".join(errors.values()), usage)
        self.errors = dict(errors)


def create_from_form(
    ctx: GrammarContext,
    *,
    instance_id: str | None,
    region: str | None,
    account: str | None,
    name: str | None,
    description: str | None,
    reboot: bool,
    tags: str | None,
) -> Create:
    """The `Create` that the create form describes, checked exactly like `/ami create INSTANCE_ID …`
    (the same converters and messages). `tags` is one KEY=VALUE per line. Raises `FieldErrors`
    keyed by "instance_id", "region", "account", "name", "description" or "tags"."""
    errors: dict[str, str] = {}

    def check(key: str, convert: Callable[[], Any]) -> Any:
        try:
            return convert()
        except _Bad as bad:
            errors.setdefault(key, bad.message)
            return None

    chosen_account = check("account", lambda: _account(account, ctx)) if account else None
    if not instance_id:
        errors["instance_id"] = "choose an instance"
    else:
        check("instance_id", lambda: _instance_id(instance_id, ctx))
    if not region:
        errors["region"] = "choose a region"
    else:
        chosen = check("region", lambda: _region(region, ctx))
        if chosen and chosen_account:
            check("region", lambda: _in_account(chosen, chosen_account, ctx))
    ami_name = check("name", lambda: _ami_name(name.strip(), ctx)) if name and name.strip() else None
    text = (
        check("description", lambda: _text("--description", MAX_DESCRIPTION)(description, ctx))
        if description and description.strip()
        else None
    )
    pairs: list[tuple[str, str]] = []
    try:
        for number, line in enumerate((tags or "").splitlines(), start=1):
            if line.strip():
                try:
                    pairs.append(_image_tag(line.strip(), ctx))
                except _Bad as bad:
                    raise _Bad(f"line {number}: {bad.message}") from None
        _check_tags(tuple(pairs), MAX_USER_TAGS)
    except _Bad as bad:
        errors["tags"] = bad.message
    if errors:
        raise FieldErrors(errors, USAGE["create"])
    return Create(
        instance_id=str(instance_id),
        name=ami_name,
        description=text,
        reboot=reboot,
        tags=tuple(pairs),
        region=str(region).strip().lower(),
        account=chosen_account,
    )
