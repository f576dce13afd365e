"""Other AWS accounts: `--account ALIAS` reaches the account through STS AssumeRole (moto gives each
assumed role's account its own backend), the alias shows in the messages, an account's own `regions`
narrow where it may be used, and assumed credentials are refreshed before they expire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bot.aws.clients import AwsClients
from bot.commands import GrammarContext, List, parse
from bot.config import Account, load_settings
from bot.errors import AwsError, ConfigError, UserError
from bot.models import JobState
from tests.interactions import (
    ack_text,
    answer_to,
    command,
    post,
    submission_body,
    suggestion_body,
    with_values,
)
from tests.peers import wait_until

PROD = "111111111111"
STAGE = "222222222222"
PROD_ARN = f"arn:aws:iam::{PROD}:role/amibot"
ACCOUNTS = {
    "amibot_accounts": {
        "prod": {"role_arn": PROD_ARN, "external_id": "ext-123", "regions": ["eu-west-1"]},
        "stage": {"role_arn": f"arn:aws:iam::{STAGE}:role/amibot"},
    },
    "amibot_approvers": "UAPPROVER",
}


def client_in(moto: Any, account_id: str, service: str, region: str) -> Any:
    """A client of another account of moto (through AssumeRole, as amibot gets there)."""
    credentials = moto.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/test-setup", RoleSessionName="test-setup"
    )["Credentials"]
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=moto.url,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def prod_instance(moto: Any, name: str = "prod-web") -> str:
    ec2 = client_in(moto, PROD, "ec2", "eu-west-1")
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}]
    reservation = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=tags)
    return str(reservation["Instances"][0]["InstanceId"])


def test_create_in_another_account_lands_in_that_account(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot(**ACCOUNTS, amibot_notify_channel="COPS")
    instance = prod_instance(moto)
    response, url = command(runtime, slack, f"create {instance} --account prod")
    ack = ack_text(response)
    assert "in eu-west-1" in ack and "· account prod" in ack  # the account's region is its default
    started = answer_to(slack, url, "CreateImage started")
    assert "eu-west-1 · account prod" in started
    job_id = started.split("`")[1]
    job = wait_until(
        lambda: (j := runtime.jobs.get(job_id)) and j.finished and j, what="job done", timeout=10
    )
    assert job.state is JobState.SUCCEEDED and job.account == "prod"
    image_id = job.targets[0].image_id

    prod_amis = moto.backend("eu-west-1", PROD).amis
    assert image_id in prod_amis  # made with the assumed role, in account 111111111111
    assert image_id not in moto.backend("eu-west-1").amis  # not in amibot's own account
    assert prod_amis[image_id].owner_id == PROD
    notices = slack.wait_for(lambda s: len(s.posts()) == 2 and s.posts(), what="two notices")
    for notice in notices:
        assert image_id in notice.params["text"] and "· account prod" in notice.params["text"]


def test_list_describe_and_protect_use_the_account(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot(**ACCOUNTS)
    ec2 = client_in(moto, PROD, "ec2", "eu-west-1")
    image_id = ec2.create_image(InstanceId=prod_instance(moto), Name="prod-golden-1")["ImageId"]
    user = ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]

    _, url = command(runtime, slack, "list --account prod")
    listed = answer_to(slack, url, "AMI")
    assert "in eu-west-1 · account prod" in listed and image_id in listed and "▶ in use" in listed
    _, url = command(runtime, slack, "list --region eu-west-1")
    assert answer_to(slack, url, "No AMIs") == "No AMIs owned by this account in eu-west-1."

    _, url = command(runtime, slack, f"describe {image_id} --account prod")
    described = answer_to(slack, url, "Used by")
    assert "eu-west-1 · account prod" in described and f"instance {user} (running)" in described

    _, url = command(runtime, slack, f"protect {image_id} --account prod", user="UAPPROVER")
    assert "· account prod is protected" in answer_to(slack, url, "protected")
    tags = {t["Key"]: t["Value"] for t in ec2.describe_images(ImageIds=[image_id])["Images"][0]["Tags"]}
    assert tags["amibot:keep"] == "UAPPROVER"

    _, url = command(runtime, slack, f"deregister {image_id} --account prod")
    refused = answer_to(slack, url, "Not deregistering")
    assert (
        f"Not deregistering `{image_id}` in eu-west-1 · account prod: it carries the protect tag" in refused
    )


def test_an_accounts_regions_are_checked_on_the_ack_path(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot(**ACCOUNTS)
    for text in (
        "list --account prod --region us-east-1",
        "describe ami-0123456789abcdef0 --account prod --region ap-southeast-2",
        "create i-0123456789abcdef0 --region us-east-1 --account prod",
        "copy ami-0123456789abcdef0 --account prod --from eu-west-1 --to us-east-1",
    ):
        response, _ = command(runtime, slack, text)
        reply = ack_text(response)
        assert "account “prod” may only be used in eu-west-1, not in “" in reply, text
        assert "Usage: `/ami " in reply
    assert runtime.jobs.active() == []
    # an account without its own regions may use every region amibot may use
    response, _ = command(
        runtime, slack, "describe ami-0123456789abcdef0 --account stage --region ap-southeast-2"
    )
    assert "Looking up" in ack_text(response) and "· account stage" in ack_text(response)


def test_the_create_form_of_an_account_offers_its_regions_and_instances(
    bot: Any, slack: Any, moto: Any
) -> None:
    runtime = bot(**ACCOUNTS)
    instance = prod_instance(moto, "prod-api")
    response, _ = command(runtime, slack, "create --account prod")
    assert response.body == ""
    view = slack.wait_for(lambda s: s.opened_views(), what="form")[-1]
    assert json.loads(view["private_metadata"])["account"] == "prod"
    region = next(b for b in view["blocks"] if b.get("block_id") == "region")["element"]
    assert [o["value"] for o in region["options"]] == ["eu-west-1"]
    assert "account prod" in view["blocks"][0]["text"]["text"]

    state = {"region": {"region": {"type": "static_select", "selected_option": {"value": "eu-west-1"}}}}
    answer = post(runtime, suggestion_body(with_values(view, state), "ami_create_instance", "api"))
    assert [o["value"] for o in json.loads(answer.body)["options"]] == [f"{instance}@eu-west-1@prod-api"]

    forged = {
        "region": {"region": {"type": "static_select", "selected_option": {"value": "us-east-1"}}},
        "instance": {"ami_create_instance": {"selected_option": {"value": f"{instance}@us-east-1"}}},
    }
    errors = json.loads(post(runtime, submission_body(with_values(view, forged))).body)["errors"]
    assert errors == {"region": "account “prod” may only be used in eu-west-1, not in “us-east-1”"}


# ---------------------------------------------------------------------------------------------------
# pure and unit-level


def test_the_grammar_defaults_to_the_accounts_first_region() -> None:
    ctx = GrammarContext(
        allowed_regions=("us-east-1", "eu-west-1", "eu-central-1"),
        accounts=frozenset({"prod", "stage"}),
        account_regions={"prod": ("eu-central-1", "eu-west-1")},
    )
    assert parse("list --account prod", ctx) == List(region="eu-central-1", account="prod")
    assert parse("list --account stage", ctx) == List(region="us-east-1", account="stage")
    assert parse("list", ctx) == List(region="us-east-1")
    assert parse("prune --account prod", ctx).region is None  # type: ignore[union-attr]
    with pytest.raises(UserError, match="may only be used in eu-central-1, eu-west-1, not in “us-east-1”"):
        parse("list --account prod --region us-east-1", ctx)


def test_an_accounts_regions_must_be_among_amibot_regions() -> None:
    base = {"amibot_regions": "us-east-1,eu-west-1"}
    with pytest.raises(
        ConfigError, match=r"AMIBOT_ACCOUNTS.prod.regions='ap-south-1': not in AMIBOT_REGIONS"
    ):
        load_settings(
            {**base, "amibot_accounts": {"prod": {"role_arn": PROD_ARN, "regions": ["ap-south-1"]}}},
            env_file=None,
        )
    with pytest.raises(ConfigError, match=r"AMIBOT_ACCOUNTS.prod.regions=\[\]: list at least one region"):
        load_settings(
            {**base, "amibot_accounts": {"prod": {"role_arn": PROD_ARN, "regions": []}}}, env_file=None
        )


def _credentials(key: str, expires: datetime) -> dict[str, Any]:
    return {
        "Credentials": {
            "AccessKeyId": key,
            "SecretAccessKey": f"secret-{key}",
            "SessionToken": f"token-{key}",
            "Expiration": expires,
        }
    }


class _StsOnly:
    """The session factory's product as `_assumed_session` uses it: only an STS client is asked for."""

    def __init__(self, sts: Any) -> None:
        self.sts = sts

    def client(self, service: str, **_: Any) -> Any:
        assert service == "sts"
        return self.sts


def _aws_with_stubbed_sts() -> tuple[AwsClients, Stubber]:
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="x")
    accounts = {"prod": Account(role_arn=PROD_ARN, external_id="ext-123", regions=["eu-west-1"])}
    return AwsClients(accounts, session_factory=lambda: _StsOnly(sts)), Stubber(sts)  # type: ignore[arg-type,return-value]


def test_assumed_credentials_are_refreshed_before_they_expire() -> None:
    aws, stub = _aws_with_stubbed_sts()
    now = datetime.now(UTC)
    request = {"RoleArn": PROD_ARN, "RoleSessionName": "amibot-prod", "ExternalId": "ext-123"}
    stub.add_response("assume_role", _credentials("ASIAFIRSTKEY00001", now + timedelta(minutes=5)), request)
    stub.add_response("assume_role", _credentials("ASIASECONDKEY0002", now + timedelta(hours=1)), request)
    with stub:
        ec2 = aws.ec2("prod", "eu-west-1")
        credentials = ec2._request_signer._credentials
        assert credentials.method == "sts-assume-role"
        assert credentials._access_key == "ASIAFIRSTKEY00001"
        # 5 minutes left is inside botocore's refresh window: the next use assumes the role again
        frozen = credentials.get_frozen_credentials()
        assert (frozen.access_key, frozen.token) == ("ASIASECONDKEY0002", "token-ASIASECONDKEY0002")
        assert credentials.get_frozen_credentials().access_key == "ASIASECONDKEY0002"  # an hour left: cached
        assert aws.autoscaling("prod", "eu-west-1")._request_signer._credentials is credentials  # one session
        stub.assert_no_pending_responses()


def test_a_role_that_cannot_be_assumed_is_one_readable_line() -> None:
    aws, stub = _aws_with_stubbed_sts()
    stub.add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:AssumeRole")
    with stub, pytest.raises(AwsError) as raised:
        aws.ec2("prod", "eu-west-1")
    assert (
        raised.value.message
        == "amibot's AWS role is not allowed to assume the role of account prod in sts (AccessDenied)"
    )


def test_the_prune_schedule_plans_and_warns_for_every_account(bot: Any, slack: Any, moto: Any) -> None:
    """The schedule covers the own account and each configured one: a plan (and a Keep notice)
    per account, in the account, naming it."""
    ec2 = client_in(moto, PROD, "ec2", "eu-west-1")
    old = ec2.create_image(InstanceId=prod_instance(moto), Name="prod-web-2026-01-01-0930")["ImageId"]
    created = datetime.now(UTC) - timedelta(days=200)
    moto.backend("eu-west-1", PROD).amis[old].creation_date = created.replace(tzinfo=None)
    schedule = {"amibot_prune_schedule": "0 6 * * 1", "amibot_prune_notice": "8d", "amibot_keep_last": 0}
    runtime = bot(**ACCOUNTS, **schedule, amibot_approval_channel="COPS")

    notice = slack.wait_for(
        lambda s: [p for p in s.posts("COPS") if "would deregister" in p.params["text"]],
        timeout=20,
        what="the Keep notice",
    )
    assert len(notice) == 1 and "account prod" in notice[0].params["text"]  # only prod has one due
    assert old in str(notice[0].params["blocks"])

    runtime.scheduler.wake("prune")

    def requested() -> list[str] | None:
        found = [e["account"] for e in runtime.audit.last(50) if e["action"] == "prune.requested"]
        return found if len(found) == 3 else None

    accounts = wait_until(requested, timeout=20, what="a plan requested for each account")
    assert sorted(accounts) == ["", "prod", "stage"]
    plan = slack.wait_for(
        lambda s: [p for p in s.posts("COPS") if "asks to prune AMIs" in p.params["text"]],
        timeout=20,
        what="the prod plan for approval",
    )
    assert len(plan) == 1 and "account prod" in plan[0].params["text"]  # the others have nothing to prune
    assert old in str(plan[0].params["blocks"])
