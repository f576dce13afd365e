"""The App Home tab, through the real handlers: published on app_home_opened and on Refresh, from Redis
only (real Redis, moto, fake Slack)."""

from __future__ import annotations

import json
import re
from typing import Any

from bot.home import home_view
from bot.models import Job, JobKind, Target
from tests.conftest import set_image_state
from tests.interactions import ack_text, answer_to, command, home_button_body, home_opened_body, post
from tests.peers import free_port, wait_until

APPROVERS = {"amibot_approvers": "UAPPROVER", "amibot_approval_channel": "COPS"}


def open_home(runtime: Any, user: str, tab: str = "home") -> None:
    response = post(runtime, home_opened_body(user, tab), content_type="application/json")
    assert response.status == 200


def home_text(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def aws_calls(runtime: Any) -> float:
    metric = runtime.services.metrics.aws_calls
    return sum(s.value for m in metric.collect() for s in m.samples if s.name.endswith("_total"))


def job_of(text: str) -> str:
    match = re.search(r"j-[0-9a-f]{6}", text)
    assert match, text
    return match.group(0)


def approval_of(text: str) -> str:
    match = re.search(r"a-[0-9a-f]{6}", text)
    assert match, text
    return match.group(0)


def test_home_shows_my_jobs_all_approvals_and_my_completions_then_refreshes(
    bot: Any, slack: Any, pending_images: Any, instance: str
) -> None:
    runtime = bot(**APPROVERS)
    ec2 = pending_images.client("ec2")
    # mine: one create in flight, one finished; someone else's create in flight
    mine = job_of(ack_text(command(runtime, slack, f"create {instance} --name mine-in-flight")[0]))
    done = job_of(ack_text(command(runtime, slack, f"create {instance} --name mine-done")[0]))
    theirs = job_of(ack_text(command(runtime, slack, f"create {instance} --name theirs", user="UOTHER")[0]))
    jobs = [
        wait_until(lambda j=j: (x := runtime.jobs.get(j)) and x.targets[0].image_id and x)
        for j in (mine, done)
    ]
    set_image_state(pending_images, "us-east-1", jobs[1].targets[0].image_id, "available")
    wait_until(lambda: runtime.jobs.get(done).finished, what="finished job")
    # approvals: one asked by me, one by someone else
    image_a = ec2.create_image(InstanceId=instance, Name="old-a")["ImageId"]
    image_b = ec2.create_image(InstanceId=instance, Name="old-b")["ImageId"]
    set_image_state(pending_images, "us-east-1", image_a, "available")
    set_image_state(pending_images, "us-east-1", image_b, "available")
    _, url_a = command(runtime, slack, f"deregister {image_a}")
    _, url_b = command(runtime, slack, f"deregister {image_b}", user="UOTHER")
    mine_approval = approval_of(answer_to(slack, url_a, "Approval `"))
    their_approval = approval_of(answer_to(slack, url_b, "Approval `"))

    calls = aws_calls(runtime)
    open_home(runtime, "UASKER")
    view = slack.wait_for(lambda s: s.home_view("UASKER"), what="home published")
    text = home_text(view)
    assert view["type"] == "home"
    in_flight = text.split("Your jobs in flight")[1].split("Pending approvals")[0]
    assert mine in in_flight and theirs not in in_flight and done not in in_flight
    approvals = text.split("Pending approvals")[1].split("Your recent completions")[0]
    assert mine_approval in approvals and their_approval in approvals
    assert re.search(rf"{mine_approval}[^\\]*?\*yours\*", approvals)
    assert not re.search(rf"{their_approval}[^\\]*?\*yours\*", approvals)
    assert done in text.split("Your recent completions")[1]
    buttons = [e for b in view["blocks"] for e in b.get("elements", []) if e.get("type") == "button"]
    assert [b["action_id"] for b in buttons] == ["ami_home_refresh"]

    # the first in-flight job finishes; Refresh shows it among the completions
    set_image_state(pending_images, "us-east-1", jobs[0].targets[0].image_id, "available")
    wait_until(lambda: runtime.jobs.get(mine).finished, what="second job finished")
    response = post(runtime, home_button_body("ami_home_refresh", user="UASKER"))
    assert response.status == 200
    slack.wait_for(lambda s: len(s.calls("views.publish")) == 2, what="published again")
    text = home_text(slack.home_view("UASKER"))
    assert mine not in text.split("Your jobs in flight")[1].split("Pending approvals")[0]
    assert mine in text.split("Your recent completions")[1]
    assert aws_calls(runtime) - calls <= 2  # only the tracker's polls, nothing for the home tab


def test_the_messages_tab_publishes_nothing(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot()
    open_home(runtime, "UASKER", tab="messages")
    open_home(runtime, "UNEW")
    slack.wait_for(lambda s: s.home_view("UNEW"), what="home of UNEW")
    assert slack.home_view("UASKER") is None
    text = home_text(slack.home_view("UNEW"))
    assert text.count("_none_") == 3


def test_home_when_the_state_store_is_down_says_so(bot: Any, slack: Any, moto: Any) -> None:
    runtime = bot(start=False, redis_url=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    open_home(runtime, "UASKER")
    view = slack.wait_for(lambda s: s.home_view("UASKER"), what="home published")
    assert "state store unavailable" in home_text(view)
    assert [b["action_id"] for b in view["blocks"][1]["elements"]] == ["ami_home_refresh"]


def test_home_view_lists_at_most_twenty_of_a_kind() -> None:
    jobs = [
        Job(
            id=f"j-{n:06x}",
            kind=JobKind.CREATE,
            requester="U1",
            channel="C1",
            region="us-east-1",
            created_at=0,
            targets=(Target("us-east-1"),),
        )
        for n in range(25)
    ]
    text = home_text(home_view("U1", jobs, [], [], now=60))
    assert "j-000013" in text and "j-000014" not in text and "… and 5 more" in text
