from __future__ import annotations

import re
import shlex
import typing
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands import (
    MAX_INPUT_CHARS,
    MAX_USER_TAGS,
    SUBCOMMANDS,
    USAGE,
    Audit,
    Command,
    Copy,
    Create,
    CreateModal,
    Deregister,
    Describe,
    GrammarContext,
    Help,
    List,
    Protect,
    Prune,
    PruneSchedule,
    Status,
    Unprotect,
    help_text,
    parse,
    tokenize,
)
from bot.errors import UserError
from bot.regions import known_regions

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
CTX = GrammarContext(allowed_regions=REGIONS, accounts=frozenset({"prod", "staging"}))
NO_ACCOUNTS = GrammarContext(allowed_regions=REGIONS)
COMMAND_TYPES = typing.get_args(Command)

I8 = "i-0123abcd"
I17 = "i-0123456789abcdef0"
A8 = "ami-0123abcd"
A17 = "ami-0123456789abcdef0"


def err(text: str, ctx: GrammarContext = CTX) -> UserError:
    with pytest.raises(UserError) as info:
        parse(text, ctx)
    return info.value


# --------------------------------------------------------------------------- regions


def test_known_regions_cover_the_three_partitions() -> None:
    regions = known_regions()
    assert {"us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"} <= regions
    assert "us-iso-east-1" not in regions
    assert all(re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", r) for r in regions)
    assert known_regions() is regions  # cached


def test_context_defaults_to_botocore_regions_and_needs_a_region() -> None:
    assert CTX.known_regions == known_regions()
    assert CTX.default_region == "us-east-1"
    with pytest.raises(ValueError):
        GrammarContext(allowed_regions=())


# --------------------------------------------------------------------------- usage lines and help

SPEC_LINES = [
    "/ami help [SUBCOMMAND]",
    "/ami create INSTANCE_ID [--name NAME] [--description TEXT] [--reboot] [--tag KEY=VALUE]... "
    "[--region REGION] [--account ALIAS]",
    "/ami copy AMI_ID --to REGION[,REGION...] [--from REGION] [--name NAME] [--encrypted [--kms-key KEY]] "
    "[--account ALIAS]",
    "/ami deregister AMI_ID [--region REGION] [--keep-snapshots] [--reason TEXT] [--account ALIAS]",
    "/ami prune [--region REGION] [--older-than DURATION] [--keep-last N] [--dry-run] [--account ALIAS]",
    "/ami list [--region REGION] [--older-than DURATION] [--name PATTERN] [--tag KEY=VALUE] "
    "[--account ALIAS]",
    "/ami describe AMI_ID [--region REGION] [--account ALIAS]",
    "/ami status [JOB_ID]",
    "/ami prune schedule",
    "/ami audit [N]",
]


def test_usage_lines_are_the_specs() -> None:
    assert sorted(USAGE.values()) == sorted(
        [
            *SPEC_LINES,
            *(f"/ami {s} AMI_ID [--region REGION] [--account ALIAS]" for s in ("protect", "unprotect")),
        ]
    )
    assert set(USAGE) == set(SUBCOMMANDS)
    assert all(line.startswith(f"/ami {name}") for name, line in USAGE.items())


def test_help_overview_has_one_line_per_subcommand() -> None:
    text = help_text(None)
    for line in USAGE.values():
        assert sum(line in row for row in text.splitlines()) == 1


CLASS_OF_TOPIC: dict[str, tuple[type, ...]] = {
    "help": (Help,),
    "create": (Create, CreateModal),
    "copy": (Copy,),
    "deregister": (Deregister,),
    "prune": (Prune,),
    "prune schedule": (PruneSchedule,),
    "list": (List,),
    "describe": (Describe,),
    "status": (Status,),
    "protect": (Protect,),
    "unprotect": (Unprotect,),
    "audit": (Audit,),
}


@pytest.mark.parametrize("topic", SUBCOMMANDS)
def test_help_on_a_topic_has_usage_and_examples_that_parse(topic: str) -> None:
    text = help_text(topic)
    assert USAGE[topic] in text
    examples = re.findall(r"`(/ami [^`]*)`", text.split("Examples:")[1])
    assert 1 <= len(examples) <= 2
    for example in examples:
        command = parse(example.removeprefix("/ami "), CTX)
        assert isinstance(command, CLASS_OF_TOPIC[topic])
        assert topic == command.SUBCOMMAND


def test_help_topic_is_case_and_space_insensitive() -> None:
    assert help_text(" Prune   SCHEDULE ") == help_text("prune schedule")


def test_help_on_unknown_topic_is_a_user_error() -> None:
    with pytest.raises(UserError) as info:
        help_text("frobnicate")
    assert "frobnicate" in info.value.message and "create" in info.value.message
    assert info.value.usage == USAGE["help"]


# --------------------------------------------------------------------------- valid commands

VALID: list[tuple[str, Command]] = [
    # help
    ("", Help(None)),
    ("   \t\n ", Help(None)),
    ("help", Help(None)),
    ("HELP create", Help("create")),
    ("help prune schedule", Help("prune schedule")),
    ("--help", Help(None)),
    ("create --help", Help("create")),
    ("copy ami-x —help", Help("copy")),
    # create
    (f"create {I17}", Create(I17, None, None, False, (), "us-east-1", None)),
    (f"create {I8} --reboot", Create(I8, None, None, True, (), "us-east-1", None)),
    (
        f"create {I17} --name 'web golden (v2) [x]./-@_' --description \"the web image\" "
        "--tag team=web --tag env= --region eu-west-1 --account prod",
        Create(
            I17,
            "web golden (v2) [x]./-@_",
            "the web image",
            False,
            (("team", "web"), ("env", "")),
            "eu-west-1",
            "prod",
        ),
    ),
    (f'create --name "Bob\'s image" {I8}', Create(I8, "Bob's image", None, False, (), "us-east-1", None)),
    (f"create {I8} --tag a=b=c", Create(I8, None, None, False, (("a", "b=c"),), "us-east-1", None)),
    (f"create {I8} --tag Name=x", Create(I8, None, None, False, (("Name", "x"),), "us-east-1", None)),
    (f"create {I8} --name -web-", Create(I8, "-web-", None, False, (), "us-east-1", None)),
    (f"create {I8} --description ' padded '", Create(I8, None, "padded", False, (), "us-east-1", None)),
    ("create", CreateModal("us-east-1", None)),
    ("create --region eu-west-1 --account staging", CreateModal("eu-west-1", "staging")),
    # copy
    (f"copy {A17} --to eu-west-1", Copy(A17, ("eu-west-1",), "us-east-1")),
    (
        f"copy {A8} --to 'eu-west-1, ap-southeast-2' --from us-east-1 --name copy-1 --encrypted "
        "--kms-key alias/amis --account prod",
        Copy(A8, ("eu-west-1", "ap-southeast-2"), "us-east-1", "copy-1", True, "alias/amis", "prod"),
    ),
    (f"copy {A8} --from eu-west-1 --to us-east-1", Copy(A8, ("us-east-1",), "eu-west-1")),
    (f"copy {A8} --to eu-west-1 --encrypted", Copy(A8, ("eu-west-1",), "us-east-1", encrypted=True)),
    (
        f"copy {A8} --to eu-west-1 --encrypted --kms-key 1234abcd-12ab-34cd-56ef-1234567890ab",
        Copy(A8, ("eu-west-1",), "us-east-1", None, True, "1234abcd-12ab-34cd-56ef-1234567890ab"),
    ),
    (
        f"copy {A8} --to eu-west-1 --encrypted "
        "--kms-key arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        Copy(
            A8,
            ("eu-west-1",),
            "us-east-1",
            None,
            True,
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        ),
    ),
    (
        f"copy {A8} --to eu-west-1 --encrypted --kms-key mrk-1234abcd12ab34cd56ef1234567890ab",
        Copy(A8, ("eu-west-1",), "us-east-1", None, True, "mrk-1234abcd12ab34cd56ef1234567890ab"),
    ),
    # deregister
    (f"deregister {A17}", Deregister(A17, "us-east-1")),
    (
        f"deregister {A8} --region ap-southeast-2 --keep-snapshots --reason 'replaced by v2' --account prod",
        Deregister(A8, "ap-southeast-2", True, "replaced by v2", "prod"),
    ),
    # prune
    ("prune", Prune()),
    ("prune --dry-run", Prune(dry_run=True)),
    (
        "prune --region eu-west-1 --older-than 90d --keep-last 5 --dry-run --account staging",
        Prune("eu-west-1", timedelta(days=90), 5, True, "staging"),
    ),
    ("prune --keep-last 0 --older-than 12h", Prune(older_than=timedelta(hours=12), keep_last=0)),
    ("prune --keep-last 100 --older-than 6w", Prune(older_than=timedelta(weeks=6), keep_last=100)),
    ("prune schedule", PruneSchedule()),
    ("Prune Schedule", PruneSchedule()),
    # list
    ("list", List("us-east-1")),
    (
        "list --region eu-west-1 --older-than 90m --name 'web-*-v?' --tag team=web --tag amibot:job=j-7f3a9c "
        "--account prod",
        List(
            "eu-west-1",
            timedelta(minutes=90),
            "web-*-v?",
            (("team", "web"), ("amibot:job", "j-7f3a9c")),
            "prod",
        ),
    ),
    (
        "list --tag aws:cloudformation:stack-name=web",
        List("us-east-1", tags=(("aws:cloudformation:stack-name", "web"),)),
    ),
    ("list --name *", List("us-east-1", name_pattern="*")),
    # describe, status, protect, unprotect, audit
    (f"describe {A17}", Describe(A17, "us-east-1")),
    (f"describe {A8} --region eu-west-1 --account prod", Describe(A8, "eu-west-1", "prod")),
    ("status", Status(None)),
    ("status j-7f3a9c", Status("j-7f3a9c")),
    (f"protect {A8}", Protect(A8, "us-east-1")),
    (f"protect {A8} --region eu-west-1 --account prod", Protect(A8, "eu-west-1", "prod")),
    (f"unprotect {A17}", Unprotect(A17, "us-east-1")),
    (
        f"unprotect {A17} --account staging --region ap-southeast-2",
        Unprotect(A17, "ap-southeast-2", "staging"),
    ),
    ("audit", Audit(20)),
    ("audit 1", Audit(1)),
    ("audit 500", Audit(500)),
    ("audit 007", Audit(7)),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_commands(text: str, expected: Command) -> None:
    command = parse(text, CTX)
    assert command == expected
    assert type(command) is type(expected)


def test_every_subcommand_class_has_its_name() -> None:
    names = {cls.SUBCOMMAND for cls in COMMAND_TYPES}
    assert names == set(SUBCOMMANDS)
    assert {type(expected) for _, expected in VALID} == set(COMMAND_TYPES)


# --------------------------------------------------------------------------- what Slack does to text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # curly quotes, as Slack and macOS/iOS type them
        (f"create {I8} --name “web golden”", Create(I8, "web golden", None, False, (), "us-east-1")),
        (f"create {I8} --name ‘web golden’", Create(I8, "web golden", None, False, (), "us-east-1")),
        (f"create {I8} --name „web golden“", Create(I8, "web golden", None, False, (), "us-east-1")),
        (f"create {I8} --name «web golden»", Create(I8, "web golden", None, False, (), "us-east-1")),
        (f"create {I8} --description “Bob’s image”", Create(I8, None, "Bob's image", False, (), "us-east-1")),
        # smart dashes
        (f"create {I8} —name web —reboot", Create(I8, "web", None, True, (), "us-east-1")),
        (f"create {I8} –name web –reboot", Create(I8, "web", None, True, (), "us-east-1")),
        (f"create {I8} —-name web", Create(I8, "web", None, False, (), "us-east-1")),
        (f"create {I8} -name web", Create(I8, "web", None, False, (), "us-east-1")),
        (f"create {I8} --description —web", Create(I8, None, "—web", False, (), "us-east-1")),
        (f"create {I8} --description '-f is bad'", Create(I8, None, "-f is bad", False, (), "us-east-1")),
        # --opt=value
        (
            f"create {I8} --name=web --tag=team=web",
            Create(I8, "web", None, False, (("team", "web"),), "us-east-1"),
        ),
        (f"create {I8} —name=“web 1”", Create(I8, "web 1", None, False, (), "us-east-1")),
        (f"create {I8} --description=--reboot", Create(I8, None, "--reboot", False, (), "us-east-1")),
        # Slack's HTML escaping
        (
            f"create {I8} --tag team=R&amp;D --description '&lt;b&gt; &amp;amp;'",
            Create(I8, None, "<b> &amp;", False, (("team", "R&D"),), "us-east-1"),
        ),
        # links Slack may have wrapped
        (
            f"create {I8} --name <http://web.example.com|web.example.com>",
            Create(I8, "web.example.com", None, False, (), "us-east-1"),
        ),
        (
            f"create {I8} --tag owner=<mailto:a@b.io|a@b.io>",
            Create(I8, None, None, False, (("owner", "a@b.io"),), "us-east-1"),
        ),
        # whitespace, case
        (f"  CREATE\t{I8}\n\n--Name   web  ", Create(I8, "web", None, False, (), "us-east-1")),
        (f"create\u00a0{I8}\u00a0--reboot", Create(I8, None, None, True, (), "us-east-1")),
        (f"create {I8}\u200b --region EU-West-1", Create(I8, None, None, False, (), "eu-west-1")),
        # hash is not a comment
        (
            f"create {I8} --tag channel=#ops",
            Create(I8, None, None, False, (("channel", "#ops"),), "us-east-1"),
        ),
    ],
)
def test_slack_text_forms(text: str, expected: Command) -> None:
    assert parse(text, CTX) == expected


def test_tokenize() -> None:
    assert tokenize(" a  “b c”\t'd e'\n f\\ g ") == ["a", "b c", "d e", "f g"]
    assert tokenize("") == []


# --------------------------------------------------------------------------- invalid commands

LONG = "x" * 200

INVALID: list[tuple[str, str | None, str]] = [
    # (text, usage key or None, a fragment the message must contain)
    ("frobnicate", None, "“frobnicate”"),
    ("crate i-0123abcd", None, "did you mean create"),
    ("help frob", "help", "“frob”"),
    ("help create now", "help", "“create now”"),
    # tokenizing
    (f"create {I8} --name 'web", "create", "unbalanced quote"),
    (f"create {I8} --name “web", "create", "unbalanced quote"),
    ('"create', None, "unbalanced quote"),
    (f"create {I8} \\", "create", "backslash"),
    # create: ids, names, descriptions
    ("create i-0123", "create", "“i-0123”"),
    ("create i-0123ABCD", "create", "“i-0123ABCD”"),
    ("create i-0123456789abcdef", "create", "“i-0123456789abcdef”"),
    (f"create {A8}", "create", f"“{A8}” is not an instance id"),
    (f"create {I8} --name ab", "create", "“ab”"),
    (f"create {I8} --name ''", "create", "“”"),
    (f"create {I8} --name {'n' * 129}", "create", "129 characters"),
    (f"create {I8} --name 'a#b'", "create", "“#”"),
    (f"create {I8} --name 'web:golden'", "create", "“:”"),
    (f"create {I8} --name 'wéb'", "create", "“é”"),
    (f"create {I8} --description {'d' * 256}", "create", "256 characters"),
    (f"create {I8} --description ''", "create", "--description needs a value"),
    (f"create {I8} --description '   '", "create", "--description needs a value"),
    # create: tags
    (f"create {I8} --tag team", "create", "“team” is not KEY=VALUE"),
    (f"create {I8} --tag =web", "create", "“=web” has an empty key"),
    (f"create {I8} --tag aws:cloudformation=x", "create", "“aws:cloudformation”"),
    (f"create {I8} --tag AWS:Name=x", "create", "“AWS:Name”"),
    (f"create {I8} --tag amibot:job=j-123456", "create", "“amibot:job”"),
    (f"create {I8} --tag amibot:requested-by=U1", "create", "“amibot:requested-by”"),
    (f"create {I8} --tag {'k' * 129}=v", "create", "129 characters"),
    (f"create {I8} --tag k={'v' * 257}", "create", "257 characters"),
    (f"create {I8} --tag a=1 --tag a=2", "create", "“a” is given twice"),
    (f"create {I8} " + " ".join(f"--tag k{n}=v" for n in range(MAX_USER_TAGS + 1)), "create", "49 tags"),
    # create: options in general
    (f"create {I8} --nmae web", "create", "“--nmae”"),
    (f"create {I8} --nmae web", "create", "did you mean --name"),
    (f"create {I8} --to eu-west-1", "create", "“--to”"),
    (f"create {I8} --name", "create", "--name needs a value"),
    (f"create {I8} --name --reboot", "create", "--name needs a value"),
    (f"create {I8} --name a-b --name c-d", "create", "--name may be given only once"),
    (f"create {I8} --reboot --reboot", "create", "--reboot may be given only once"),
    (f"create {I8} --reboot=yes", "create", "“yes”"),
    (f"create {I8} extra", "create", "unexpected argument “extra”"),
    (f"create {I8} eu-west-1", "create", "--region"),
    ("create --name web", "create", "missing INSTANCE_ID"),
    ("create --reboot", "create", "missing INSTANCE_ID (--reboot needs it"),
    ("create --tag a=b --region eu-west-1", "create", "missing INSTANCE_ID (--tag needs it"),
    # regions and accounts
    (f"create {I8} --region mars-1", "create", "“mars-1” is not an AWS region"),
    (f"create {I8} --region us-west-2", "create", "“us-west-2” is not one of the regions amibot may use"),
    (f"create {I8} --region ''", "create", "“” is not an AWS region"),
    (f"create {I8} --account nope", "create", "“nope” is not a configured account"),
    (f"describe {A8} --account Prod", "describe", "“Prod”"),
    # copy
    (f"copy {A8}", "copy", "--to is required"),
    (f"copy {A8} --to us-east-1", "copy", "“us-east-1” is the source region"),
    (f"copy {A8} --from eu-west-1 --to eu-west-1", "copy", "“eu-west-1” is the source region"),
    (f"copy {A8} --to eu-west-1,eu-west-1", "copy", "“eu-west-1” twice"),
    (f"copy {A8} --to eu-west-1,,ap-southeast-2", "copy", "empty region"),
    (f"copy {A8} --to eu-west-1,", "copy", "empty region"),
    (f"copy {A8} --to a,b,c,d", "copy", "4 regions"),
    (f"copy {A8} --to eu-west-1,mars-1", "copy", "“mars-1” is not an AWS region"),
    (f"copy {A8} --to us-west-2", "copy", "“us-west-2” is not one of the regions"),
    (f"copy {A8} --to eu-west-1 --from mars-1", "copy", "“mars-1”"),
    (f"copy {A8} --to eu-west-1 --to ap-southeast-2", "copy", "--to may be given only once"),
    (f"copy {A8} eu-west-1", "copy", "--to"),
    (f"copy {A8} --to eu-west-1 --kms-key alias/amis", "copy", "--kms-key “alias/amis” needs --encrypted"),
    (f"copy {A8} --to eu-west-1 --encrypted --kms-key 'my key'", "copy", "“my key” is not a KMS key"),
    (f"copy {A8} --to eu-west-1 --name x", "copy", "“x”"),
    (f"copy {A8} --to eu-west-1 --region eu-west-1", "copy", "“--region”"),
    ("copy ami-xyz --to eu-west-1", "copy", "“ami-xyz” is not an AMI id"),
    ("copy --to eu-west-1", "copy", "missing AMI_ID"),
    # deregister
    ("deregister", "deregister", "missing AMI_ID"),
    ("deregister ami-0123", "deregister", "“ami-0123”"),
    (f"deregister {A8} {A17}", "deregister", f"unexpected argument “{A17}”"),
    (f"deregister {A8} --reason ''", "deregister", "--reason needs a value"),
    (f"deregister {A8} --reason {'r' * 501}", "deregister", "501 characters"),
    (f"deregister {A8} --keep-snapshots=1", "deregister", "“1”"),
    (f"deregister {A8} --region", "deregister", "--region needs a value"),
    # prune
    ("prune --older-than 5y", "prune", "“5y”"),
    ("prune --older-than 0d", "prune", "“0d”"),
    ("prune --older-than 1.5h", "prune", "“1.5h”"),
    ("prune --older-than 30", "prune", "90m, 12h, 30d or 6w"),
    ("prune --older-than 99999w", "prune", "too long"),
    ("prune --keep-last 101", "prune", "“101”"),
    ("prune --keep-last -1", "prune", "“-1”"),
    ("prune --keep-last x", "prune", "“x”"),
    ("prune --keep-last 1.5", "prune", "“1.5”"),
    ("prune --keep-last", "prune", "--keep-last needs a value"),
    ("prune --region mars-1", "prune", "“mars-1”"),
    ("prune everything", "prune", "unexpected argument “everything”"),
    ("prune --dry-run schedule", "prune", "prune schedule"),
    ("prune schedule now", "prune schedule", "“now”"),
    ("prune schedule --region eu-west-1", "prune schedule", "“--region eu-west-1”"),
    # list
    ("list --name ''", "list", "“”"),
    ("list --name 'web#1'", "list", "“#”"),
    (f"list --name {'p' * 129}", "list", "129 characters"),
    ("list --tag team", "list", "“team” is not KEY=VALUE"),
    ("list --older-than soon", "list", "“soon”"),
    ("list ami-0123abcd", "list", "unexpected argument “ami-0123abcd”"),
    ("list --region us-west-2", "list", "“us-west-2”"),
    ("list " + " ".join(f"--tag k{n}=v" for n in range(51)), "list", "51 tags"),
    # describe, status, protect, unprotect, audit
    ("describe", "describe", "missing AMI_ID"),
    ("describe ami-1", "describe", "“ami-1”"),
    (f"describe {A8} --older-than 1d", "describe", "“--older-than”"),
    ("status j-12345", "status", "“j-12345” is not a job id"),
    ("status j-ABCDEF", "status", "“j-ABCDEF”"),
    ("status a-19bd02", "status", "approval id"),
    ("status j-7f3a9c j-7f3a9d", "status", "unexpected argument “j-7f3a9d”"),
    ("status --all", "status", "takes no options"),
    ("protect", "protect", "missing AMI_ID"),
    ("protect i-0123abcd", "protect", "“i-0123abcd” is not an AMI id"),
    (f"protect {A8} --region us-west-2", "protect", "“us-west-2”"),
    (f"unprotect {A8} --reason x", "unprotect", "“--reason”"),
    ("unprotect ami-", "unprotect", "“ami-”"),
    ("audit 0", "audit", "“0”"),
    ("audit 501", "audit", "“501”"),
    ("audit -5", "audit", "“-5”"),
    ("audit x", "audit", "“x”"),
    ("audit 1.5", "audit", "“1.5”"),
    ("audit ٥", "audit", "“٥”"),
    ("audit 99999999999999999999999999", "audit", "from 1 to 500"),
    ("audit 1 2", "audit", "unexpected argument “2”"),
]


@pytest.mark.parametrize(("text", "usage", "fragment"), INVALID)
def test_invalid_commands(text: str, usage: str | None, fragment: str) -> None:
    error = err(text)
    assert fragment in error.message
    assert error.usage == (USAGE[usage] if usage else None)


def test_unknown_subcommand_lists_the_subcommands() -> None:
    message = err("frobnicate").message
    assert all(name in message for name in SUBCOMMANDS)


def test_account_without_configured_accounts() -> None:
    error = err(f"create {I8} --account prod", NO_ACCOUNTS)
    assert error.message == "--account “prod”: no other accounts are configured"
    assert error.usage == USAGE["create"]


def test_one_allowed_region_leaves_nowhere_to_copy() -> None:
    ctx = GrammarContext(allowed_regions=("eu-west-1",))
    assert "source region" in err(f"copy {A8} --to eu-west-1", ctx).message
    assert parse(f"create {I8}", ctx) == Create(I8, None, None, False, (), "eu-west-1")
    assert parse("prune", ctx) == Prune()


def test_long_values_are_truncated_in_messages() -> None:
    error = err(f"create {I8} --name '{'n' * 3000}'")
    assert "…" in error.message and len(error.message) < 300


def test_invisible_characters_are_shown_escaped() -> None:
    error = err(f"create {I8} --name 'web\x07golden'")
    assert "\\x07" in error.message and "\x07" not in error.message


def test_input_length_is_capped() -> None:
    text = f"create {I8} --description '{'d' * MAX_INPUT_CHARS}'"
    error = err(text)
    assert "too long" in error.message and str(MAX_INPUT_CHARS) in error.message


def test_commands_are_frozen() -> None:
    command = parse(f"create {I8}", CTX)
    with pytest.raises(AttributeError):
        command.region = "eu-west-1"  # type: ignore[misc, union-attr]


# --------------------------------------------------------------------------- properties


def _check_outcome(text: str, ctx: GrammarContext = CTX) -> Command | None:
    try:
        command = parse(text, ctx)
    except UserError as error:
        assert error.message.strip()
        assert error.usage is None or error.usage in USAGE.values()
        return None
    assert isinstance(command, COMMAND_TYPES)
    return command


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_any_text_gives_a_command_or_a_user_error(text: str) -> None:
    _check_outcome(text)


_OPTIONS = sorted(
    {
        "--name",
        "--description",
        "--reboot",
        "--tag",
        "--region",
        "--account",
        "--to",
        "--from",
        "--encrypted",
        "--kms-key",
        "--keep-snapshots",
        "--reason",
        "--older-than",
        "--keep-last",
        "--dry-run",
        "--help",
        "--nope",
    }
)
_WORDS = [
    *SUBCOMMANDS,
    "schedule",
    "CREATE",
    I8,
    I17,
    A8,
    A17,
    "j-7f3a9c",
    "a-19bd02",
    *REGIONS,
    "us-west-2",
    "mars-1",
    "eu-west-1,ap-southeast-2",
    "eu-west-1,,",
    "30d",
    "0d",
    "90m",
    "6w",
    "5y",
    "0",
    "20",
    "500",
    "-1",
    "team=web",
    "aws:x=1",
    "amibot:job=1",
    "=",
    "k=",
    "alias/amis",
    "prod",
    "web golden",
    "web-*",
    "",
    "'",
    '"',
    "“",
    "’",
    "\\",
    "&amp;",
    "&lt;",
    "<http://a.io|a.io>",
    "—",
    "–",
    "#",
]


@st.composite
def near_valid_lines(draw: st.DrawFn) -> str:
    def token() -> str:
        kind = draw(st.integers(0, 4))
        if kind == 0:
            return draw(st.sampled_from(_WORDS))
        if kind == 1:
            return draw(st.sampled_from(["", "—", "–", "-"])) + draw(st.sampled_from(_OPTIONS)).lstrip("-")
        if kind == 2:
            return draw(st.sampled_from(_OPTIONS)) + "=" + draw(st.sampled_from(_WORDS))
        if kind == 3:
            quote = draw(st.sampled_from(['"', "'", "“", "‘"]))
            return quote + draw(st.sampled_from(_WORDS)) + draw(st.sampled_from([quote, "”", "’", ""]))
        return draw(st.text(max_size=8))

    words = [draw(st.sampled_from([*SUBCOMMANDS, "prune schedule", "Create", "nope"]))]
    words += [token() for _ in range(draw(st.integers(0, 10)))]
    separators = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0"])
    return "".join(word + draw(separators) for word in words)


@settings(max_examples=600)
@given(near_valid_lines())
def test_near_valid_lines_give_a_command_or_a_user_error(line: str) -> None:
    _check_outcome(line)
    _check_outcome(line, NO_ACCOUNTS)


_PLAIN = st.characters(
    codec="utf-8",
    exclude_categories=("Cc", "Cf", "Cs", "Co", "Zl", "Zp", "Zs"),
    exclude_characters="“”„‟«»‘’‚‛",
)
_NAME = st.text(alphabet=sorted(set("abcXYZ019 ()[]./-'@_")), min_size=3, max_size=128)
_DESCRIPTION = st.text(alphabet=_PLAIN | st.just(" "), min_size=1, max_size=255).filter(
    lambda d: d == d.strip() and d[0] not in "-—–"
)
_TAG_KEY = st.text(alphabet=_PLAIN.filter(lambda c: c != "="), min_size=1, max_size=128).filter(
    lambda k: (
        not k.lower().startswith("aws:")
        and k not in {"amibot:job", "amibot:requested-by"}
        and k[0] not in "-—–"
    )
)
_TAG_VALUE = st.text(alphabet=_PLAIN | st.just(" "), max_size=256)


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@settings(max_examples=200)
@given(
    instance_id=st.from_regex(r"\Ai-([0-9a-f]{8}|[0-9a-f]{17})\Z"),
    name=st.none() | _NAME,
    description=st.none() | _DESCRIPTION,
    reboot=st.booleans(),
    tags=st.lists(st.tuples(_TAG_KEY, _TAG_VALUE), max_size=5, unique_by=lambda kv: kv[0]),
    region=st.none() | st.sampled_from(REGIONS),
    account=st.none() | st.sampled_from(["prod", "staging"]),
    data=st.data(),
)
def test_create_round_trip(
    instance_id: str,
    name: str | None,
    description: str | None,
    reboot: bool,
    tags: list[tuple[str, str]],
    region: str | None,
    account: str | None,
    data: st.DataObject,
) -> None:
    options: list[tuple[str, str | None]] = []
    if name is not None:
        options.append(("name", name))
    if description is not None:
        options.append(("description", description))
    if reboot:
        options.append(("reboot", None))
    if region is not None:
        options.append(("region", region))
    if account is not None:
        options.append(("account", account))
    options = data.draw(st.permutations(options))
    # --tag keeps its order; the other options go anywhere around it
    after = 0
    for key, tag_value in tags:
        after = data.draw(st.integers(after, len(options)))
        options.insert(after, ("tag", f"{key}={tag_value}"))
        after += 1
    groups: list[list[str]] = []
    for option, value in options:
        dash = data.draw(st.sampled_from(["--", "—", "–"]))
        if value is None:
            groups.append([dash + option])
        elif data.draw(st.booleans()):
            groups.append([f"{dash}{option}={shlex.quote(value)}"])
        else:
            groups.append([dash + option, shlex.quote(value)])
    groups.insert(data.draw(st.integers(0, len(groups))), [instance_id])  # the id goes anywhere
    words = [word for group in groups for word in group]
    line = "create " + " ".join(words)
    command = parse(_slack_escape(line), CTX)
    assert command == Create(
        instance_id=instance_id,
        name=name,
        description=description,
        reboot=reboot,
        tags=tuple(tags),
        region=region or "us-east-1",
        account=account,
    )
