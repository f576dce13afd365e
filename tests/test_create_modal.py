"""`/ami create` without arguments: the form, its instance picker and its submission, through the real
handlers (signed requests), real Redis, moto and the fake Slack."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from bot.models import JobKind
from tests.interactions import (
    answer_to,
    command,
    post,
    submission_body,
    suggestion_body,
    view_action_body,
    with_values,
)
from tests.peers import free_port, wait_until
from tests.slack_requests import command_body

PICKER = "ami_create_instance"


def open_form(
    runtime: Any, slack: Any, text: str = "create", channel: str = "CGENERAL"
) -> tuple[dict[str, Any], str]:
    response, url = command(runtime, slack, text, channel=channel)
    assert response.body == ""  # nothing to show in the channel: the form opens
    views = slack.wait_for(lambda s: s.opened_views(), what="the form")
    return views[-1], url


def picked(view: dict[str, Any], region: str, **fields: Any) -> dict[str, Any]:
    """The form as Slack sends it on submit, with `fields` filled in."""
    values: dict[str, dict[str, Any]] = {
        "region": {"region": {"type": "static_select", "selected_option": {"value": region}}},
    }
    if "instance" in fields:
        values["instance"] = {
            PICKER: {"type": "external_select", "selected_option": {"value": fields["instance"]}}
        }
    for block in ("name", "description", "tags"):
        if block in fields:
            values[block] = {block: {"type": "plain_text_input", "value": fields[block]}}
    if fields.get("reboot"):
        values["reboot"] = {"reboot": {"type": "checkboxes", "selected_options": [{"value": "reboot"}]}}
    return with_values(view, values)


def options(runtime: Any, view: dict[str, Any], query: str) -> list[dict[str, Any]]:
    response = post(runtime, suggestion_body(view, PICKER, query))
    assert response.status == 200
    return list(json.loads(response.body)["options"])


def test_create_alone_opens_the_form_without_calling_aws(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot()
    view, url = open_form(runtime, slack, "create --region eu-west-1")
    assert view["callback_id"] == "ami_create_modal" and view["type"] == "modal"
    metadata = json.loads(view["private_metadata"])
    assert metadata == {"channel": "CGENERAL", "response_url": url, "account": None, "region": "eu-west-1"}
    by_block = {b.get("block_id"): b for b in view["blocks"]}
    region = by_block["region"]["element"]
    assert [o["value"] for o in region["options"]] == ["us-east-1", "eu-west-1", "ap-southeast-2"]
    assert region["initial_option"]["value"] == "eu-west-1"
    picker = by_block["instance"]["element"]
    assert picker["type"] == "external_select" and picker["action_id"] == PICKER
    assert picker["min_query_length"] == 0
    assert "default:" in by_block["name"]["element"]["placeholder"]["text"]
    assert by_block["reboot"]["element"]["type"] == "checkboxes"
    assert by_block["tags"]["element"]["multiline"] is True
    assert not [c for c in slack.calls() if c.method.startswith("chat.")]
    assert aws_calls(runtime) == 0


def aws_calls(runtime: Any) -> float:
    metric = runtime.services.metrics.aws_calls
    return sum(
        sample.value for m in metric.collect() for sample in m.samples if sample.name.endswith("_total")
    )


def test_options_offer_matching_instances_of_the_chosen_region(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot()
    ec2 = moto.client("ec2")

    def run(name: str) -> str:
        tags = [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}]
        reservation = ec2.run_instances(
            ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=tags
        )
        return str(reservation["Instances"][0]["InstanceId"])

    web, db, old = run("Web-Server"), run("db-primary"), run("web-old")
    ec2.terminate_instances(InstanceIds=[old])
    view, _ = open_form(runtime, slack)

    web_value, db_value = f"{web}@us-east-1@Web-Server", f"{db}@us-east-1@db-primary"  # id@region@Name
    everything = options(runtime, picked(view, "us-east-1"), "")
    assert {o["value"] for o in everything} == {web_value, db_value}  # not terminated
    found = options(runtime, picked(view, "us-east-1"), "web")  # the Name tag, any case
    assert [o["value"] for o in found] == [web_value]
    assert found[0]["text"]["text"].startswith(f"Web-Server ({web}) · running")
    assert [o["value"] for o in options(runtime, picked(view, "us-east-1"), db)] == [db_value]
    by_prefix = [o["value"] for o in options(runtime, picked(view, "us-east-1"), db[:6])]
    assert db_value in by_prefix and all(v.startswith(db[:6]) for v in by_prefix)
    assert options(runtime, picked(view, "eu-west-1"), "web") == []  # another region: its own instances
    assert options(runtime, picked(view, "sa-east-1"), "web") == []  # not an allowed region
    # no region in the state: the form's default region
    assert [o["value"] for o in options(runtime, with_values(view, {}), "db")] == [db_value]


def test_options_answer_an_empty_list_when_aws_fails(
    bot: Any, slack: Any, moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    runtime = bot()
    view, _ = open_form(runtime, slack)
    started = time.monotonic()
    assert options(runtime, picked(view, "us-east-1"), "web") == []
    assert time.monotonic() - started < 3.0  # Slack's limit for options


def test_submitting_shows_errors_on_the_fields_and_changes_nothing(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot()
    view, _ = open_form(runtime, slack)

    response = post(runtime, submission_body(picked(view, "us-east-1", name="x", tags="team=web\nnovalue")))
    assert response.status == 200
    body = json.loads(response.body)
    assert body["response_action"] == "errors"
    errors = body["errors"]
    assert set(errors) == {"instance", "name", "tags"}
    assert errors["instance"] == "choose an instance"
    assert "the AMI name “x” has 1 characters; a name has 3 to 128" in errors["name"]
    assert errors["tags"] == "line 2: --tag “novalue” is not KEY=VALUE"

    response = post(
        runtime,
        submission_body(
            picked(
                view,
                "us-east-1",
                instance="i-0123456789abcdef0@us-east-1",
                tags="amibot:job=mine",
                description="  ",
            )
        ),
    )
    assert json.loads(response.body)["errors"] == {
        "tags": "line 1: the tag key “amibot:job” is set by amibot itself"
    }

    # the instance was listed in another region than the one chosen now
    response = post(
        runtime, submission_body(picked(view, "eu-west-1", instance="i-0123456789abcdef0@us-east-1"))
    )
    assert "pick the instance again" in json.loads(response.body)["errors"]["instance"]
    assert runtime.jobs.active() == [] and runtime.jobs.recent() == []


def test_a_valid_form_starts_the_same_create_job(bot: Any, slack: Any, moto: Any, instance: str) -> None:
    runtime = bot()
    view, url = open_form(runtime, slack, channel="COPS")
    form = picked(
        view,
        "us-east-1",
        instance=f"{instance}@us-east-1",
        name="web golden 1",
        description="from the form",
        tags="team=web\n\nenv=prod\n",
        reboot=True,
    )
    response = post(runtime, submission_body(form, user="UFORM"))
    assert response.status == 200 and response.body == ""  # the form closes

    accepted = answer_to(slack, url, "creating an image of", what="the job's acceptance")
    assert f"creating an image of `{instance}` in us-east-1 (with a reboot)" in accepted
    job_id = accepted.split("`")[1]
    job = runtime.jobs.get(job_id)
    assert job.kind is JobKind.CREATE and job.requester == "UFORM" and job.channel == "COPS"
    assert job.params["name"] == "web golden 1" and job.params["reboot"] is True
    assert job.params["tags"] == [["team", "web"], ["env", "prod"]]

    ec2 = moto.client("ec2")
    images = wait_until(lambda: ec2.describe_images(Owners=["self"])["Images"], what="the image", timeout=10)
    assert images[0]["Name"] == "web golden 1" and images[0]["Description"] == "from the form"
    tags = {t["Key"]: t["Value"] for t in images[0]["Tags"]}
    assert tags == {"team": "web", "env": "prod", "amibot:requested-by": "UFORM", "amibot:job": job_id}
    notice = slack.wait_for(lambda s: s.posts("COPS"), what="the ready notice", timeout=10)
    assert images[0]["ImageId"] in notice[0].params["text"]


STAMP = r"\d{4}-\d\d-\d\d-\d{4}"


def name_field(view: dict[str, Any]) -> dict[str, Any]:
    (block,) = [b for b in view["blocks"] if str(b.get("block_id", "")).startswith("name")]
    return dict(block)


def test_picking_an_instance_prefills_its_default_name_and_the_form_submits_it(
    bot: Any, slack: Any, moto: Any
) -> None:
    runtime = bot()
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web-1"}]}]
    run = moto.client("ec2").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, TagSpecifications=tags
    )
    instance = run["Instances"][0]["InstanceId"]
    view, url = open_form(runtime, slack)
    assert view["blocks"][2]["dispatch_action"] is True  # the picker tells amibot what was picked
    (option,) = options(runtime, picked(view, "us-east-1"), "web")
    assert option["value"] == f"{instance}@us-east-1@web-1"  # the Name tag rides along: no AWS call

    calls = aws_calls(runtime)
    state = picked(view, "us-east-1", instance=option["value"])
    response = post(runtime, view_action_body(state, PICKER, option["value"], block_id="instance"))
    assert response.status == 200
    updated = slack.wait_for(
        lambda s: [v for v in s.opened_views() if name_field(v).get("block_id") != "name"],
        what="views.update",
    )[0]
    field = name_field(updated)
    assert field["block_id"] == f"name:{instance}"  # a new block id, so Slack shows the value
    assert re.fullmatch(f"web-1-{STAMP}", field["element"]["initial_value"]), field
    assert [b["block_id"] for b in updated["blocks"][1:]] == [
        "region",
        "instance",
        field["block_id"],
        *[b["block_id"] for b in view["blocks"][4:]],
    ]
    assert aws_calls(runtime) == calls

    # submitted as it stands: the prefilled name is the image's name
    form = with_values(
        updated,
        {
            "region": {"region": {"type": "static_select", "selected_option": {"value": "us-east-1"}}},
            "instance": {PICKER: {"type": "external_select", "selected_option": {"value": option["value"]}}},
            field["block_id"]: {
                "name": {"type": "plain_text_input", "value": field["element"]["initial_value"]}
            },
        },
    )
    assert post(runtime, submission_body(form)).body == ""
    accepted = answer_to(slack, url, "creating an image of", what="the job's acceptance")
    job = runtime.jobs.get(accepted.split("`")[1])
    assert job.params["name"] == field["element"]["initial_value"]

    # an error on the renamed field is shown on it
    bad = with_values(
        updated,
        {
            "region": {"region": {"type": "static_select", "selected_option": {"value": "us-east-1"}}},
            "instance": {PICKER: {"type": "external_select", "selected_option": {"value": option["value"]}}},
            field["block_id"]: {"name": {"type": "plain_text_input", "value": "ab"}},
        },
    )
    assert list(json.loads(post(runtime, submission_body(bad)).body)["errors"]) == [field["block_id"]]


def test_a_name_the_person_typed_is_not_replaced_when_they_pick_an_instance(
    bot: Any, slack: Any, moto: Any, instance: str
) -> None:
    runtime = bot()
    view, _ = open_form(runtime, slack)
    state = picked(view, "us-east-1", instance=f"{instance}@us-east-1@web", name="my own name")
    post(runtime, view_action_body(state, PICKER, f"{instance}@us-east-1@web", block_id="instance"))
    time.sleep(0.3)
    assert slack.calls("views.update") == []
    assert name_field(slack.opened_views()[-1])["block_id"] == "name"


def test_a_form_slack_will_not_open_gets_a_readable_answer(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot()
    trigger = slack.new_trigger_id()
    first = post(runtime, command_body("create", trigger_id=trigger, response_url=slack.new_response_url()))
    assert first.body == ""
    again = post(runtime, command_body("create", trigger_id=trigger, response_url=slack.new_response_url()))
    text = json.loads(again.body)["text"]
    assert "Slack did not open the form (exchanged_trigger_id)" in text
    assert "/ami create INSTANCE_ID" in text
