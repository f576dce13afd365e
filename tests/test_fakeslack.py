"""The fake Slack Web API, driven by the real slack_sdk clients exactly as the bot drives Slack."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.client import RemoteDisconnected

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.webhook import WebhookClient

from bot.fakeslack import Call, FakeSlack

TOKEN = "xoxb-test"
MODAL = {
    "type": "modal",
    "callback_id": "ami_create_modal",
    "title": {"type": "plain_text", "text": "Create an AMI"},
    "submit": {"type": "plain_text", "text": "Create"},
    "blocks": [
        {
            "type": "input",
            "block_id": "name",
            "label": {"type": "plain_text", "text": "Name"},
            "element": {"type": "plain_text_input", "action_id": "name"},
        }
    ],
}
HOME = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Jobs*"}}]}


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(usergroups={"S_APPROVERS": ["UALICE", "UBOB"]}, hold_seconds=0.5) as server:
        yield server


QUICKLY = FixedValueRetryIntervalCalculator(0.01)


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    """A client without slack_sdk's default retry on connection errors: each call is one request."""
    return WebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[])


def api_error(call: Callable[[], object]) -> SlackApiError:
    """Run a client call that must fail; return its SlackApiError."""
    with pytest.raises(SlackApiError) as failure:
        call()
    return failure.value


# --- auth and routing


def test_auth_test_names_the_bot(client: WebClient) -> None:
    answer = client.auth_test()
    assert (answer["team_id"], answer["user_id"], answer["bot_id"]) == ("T0001", "UBOT", "BBOT")
    assert answer["url"].startswith("https://")


def test_wrong_or_missing_token_is_refused(fake: FakeSlack) -> None:
    wrong = api_error(WebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test)
    assert wrong.response["error"] == "invalid_auth"
    missing = api_error(WebClient(base_url=fake.api_url).auth_test)
    assert missing.response["error"] == "not_authed"
    assert fake.posts() == []


def test_token_is_never_recorded(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="COPS", text="hello")
    client.api_call("auth.test", params={"token": TOKEN})  # token in a form body
    for call in fake.calls():
        assert TOKEN not in repr(call)
        assert call.headers["Authorization"] == "(redacted)"


def test_json_body_token_counts_only_in_the_header(fake: FakeSlack) -> None:
    # Slack ignores a token inside a JSON body; slack_sdk moves it to the header, raw callers may not.
    client = WebClient(base_url=fake.api_url)
    answer = client.api_call("auth.test", json={"token": TOKEN})  # slack_sdk moves it to the header
    assert answer["ok"]
    request = urllib.request.Request(
        fake.api_url + "auth.test",
        data=b'{"token": "xoxb-test"}',
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert b'"not_authed"' in response.read()


def test_header_names_in_any_case(fake: FakeSlack) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    body = b'{"channel": "COPS", "text": "lower-case headers"}'
    connection.putrequest("POST", "/api/chat.postMessage")
    for name, value in (("content-type", "application/json"), ("authorization", f"Bearer {TOKEN}")):
        connection.putheader(name, value)
    connection.putheader("content-length", str(len(body)))
    connection.endheaders(body)
    assert b'"ok": true' in connection.getresponse().read()
    connection.close()
    assert [m.text for m in fake.messages("COPS")] == ["lower-case headers"]


def test_unknown_method(client: WebClient) -> None:
    assert api_error(lambda: client.api_call("chat.nonsense")).response["error"] == "unknown_method"


# --- messages


def test_post_then_update_keeps_the_history_of_versions(fake: FakeSlack, client: WebClient) -> None:
    blocks = [{"type": "section", "block_id": "b1", "text": {"type": "mrkdwn", "text": "*pending*"}}]
    first = client.chat_postMessage(channel="COPS", text="pending", blocks=blocks)
    second = client.chat_postMessage(channel="COPS", text="reminder", thread_ts=first["ts"])
    assert first["channel"] == "COPS"
    assert first["message"]["blocks"] == blocks
    assert first["message"]["bot_id"] == "BBOT" and first["message"]["user"] == "UBOT"
    assert second["message"]["thread_ts"] == first["ts"]
    assert float(second["ts"]) > float(first["ts"])

    updated = client.chat_update(channel="COPS", ts=first["ts"], text="approved", blocks=[])
    assert updated["ts"] == first["ts"] and updated["message"]["text"] == "approved"
    messages = fake.messages("COPS")
    assert [m.text for m in messages] == ["approved", "reminder"]
    assert messages[0].versions == [{"text": "pending", "blocks": blocks}]
    assert messages[0].edited_ts is not None
    assert [c.params["text"] for c in fake.posts("COPS")] == ["pending", "reminder"]

    missing = api_error(lambda: client.chat_update(channel="COPS", ts="1.000001", text="x"))
    assert missing.response["error"] == "message_not_found"


def test_timestamps_are_unique_and_increasing(client: WebClient) -> None:
    stamps = [client.chat_postMessage(channel="CGENERAL", text=str(i))["ts"] for i in range(20)]
    assert stamps == sorted(stamps, key=lambda ts: tuple(map(int, ts.split("."))))
    assert len(set(stamps)) == 20
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


def test_post_needs_text_or_blocks(client: WebClient) -> None:
    no_text = api_error(lambda: client.api_call("chat.postMessage", json={"channel": "COPS"}))
    assert no_text.response["error"] == "no_text"
    bad_blocks = api_error(
        lambda: client.chat_postMessage(channel="COPS", text="x", blocks=[{"text": "no type"}])
    )
    assert bad_blocks.response["error"] == "invalid_blocks"


def test_form_encoded_blocks_and_metadata_are_json_strings(fake: FakeSlack, client: WebClient) -> None:
    answer = client.api_call(
        "chat.postMessage",
        params={
            "channel": "COPS",
            "text": "via form",
            "blocks": '[{"type": "divider"}]',
            "metadata": '{"event_type": "ami_notice", "event_payload": {"job": "j-1"}}',
        },
    )
    assert answer["message"]["blocks"] == [{"type": "divider"}]
    assert fake.messages("COPS")[0].metadata == {"event_type": "ami_notice", "event_payload": {"job": "j-1"}}
    assert fake.calls("chat.postMessage")[0].headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_history_shows_metadata_only_when_asked(client: WebClient) -> None:
    metadata = {"event_type": "ami_notice", "event_payload": {"notice": "n-1"}}
    posted = client.chat_postMessage(channel="COPS", text="ready", metadata=metadata)
    assert posted["message"]["metadata"] == metadata
    plain = client.conversations_history(channel="COPS")["messages"]
    assert "metadata" not in plain[0]
    with_metadata = client.conversations_history(channel="COPS", include_all_metadata=True)["messages"]
    assert with_metadata[0]["metadata"] == metadata


def test_history_is_newest_first_within_bounds_and_pages(client: WebClient) -> None:
    stamps = [client.chat_postMessage(channel="COPS", text=f"m{i}")["ts"] for i in range(5)]
    reply = client.chat_postMessage(channel="COPS", text="in thread", thread_ts=stamps[0])

    everything = client.conversations_history(channel="COPS")
    assert [m["text"] for m in everything["messages"]] == ["m4", "m3", "m2", "m1", "m0"]
    parent = everything["messages"][-1]
    assert (parent["reply_count"], parent["latest_reply"]) == (1, reply["ts"])

    between = client.conversations_history(channel="COPS", oldest=stamps[1], latest=stamps[4])
    assert [m["text"] for m in between["messages"]] == ["m3", "m2"]
    inclusive = client.conversations_history(
        channel="COPS", oldest=stamps[1], latest=stamps[4], inclusive=True
    )
    assert [m["text"] for m in inclusive["messages"]] == ["m4", "m3", "m2", "m1"]

    first_page = client.conversations_history(channel="COPS", limit=3)
    assert first_page["has_more"] is True
    cursor = first_page["response_metadata"]["next_cursor"]
    rest = client.conversations_history(channel="COPS", limit=3, cursor=cursor)
    assert [m["text"] for m in rest["messages"]] == ["m1", "m0"] and rest["has_more"] is False

    thread = client.conversations_replies(channel="COPS", ts=stamps[0])
    assert [m["text"] for m in thread["messages"]] == ["m0", "in thread"]


def test_dm_by_user_id(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="UALICE", text="your AMI is ready")
    dm = posted["channel"]
    assert dm.startswith("D") and dm == fake.dm_channel_id("UALICE")
    assert client.conversations_open(users="UALICE")["channel"]["id"] == dm
    assert client.chat_postMessage(channel="UALICE", text="again")["channel"] == dm
    assert [m.text for m in fake.messages("UALICE")] == ["your AMI is ready", "again"]
    assert [m.text for m in fake.messages(dm)] == ["your AMI is ready", "again"]
    assert len(fake.posts("UALICE")) == 2
    assert client.conversations_history(channel=dm)["messages"][0]["text"] == "again"


def test_channels_the_bot_may_not_post_in(fake: FakeSlack, client: WebClient) -> None:
    public = api_error(lambda: client.chat_postMessage(channel="CRANDOM", text="x"))
    assert public.response["error"] == "not_in_channel"
    # Slack hides private channels (and other people's DMs) from a bot that is not in them.
    private = api_error(lambda: client.chat_postMessage(channel="CPRIVATE", text="x"))
    assert private.response["error"] == "channel_not_found"
    unknown = api_error(lambda: client.chat_postMessage(channel="C_NOPE", text="x"))
    assert unknown.response["error"] == "channel_not_found"
    history = api_error(lambda: client.conversations_history(channel="CRANDOM"))
    assert history.response["error"] == "not_in_channel"
    assert fake.posts() == [] and fake.messages("CRANDOM") == []

    fake.set_member("CPRIVATE")
    assert client.chat_postMessage(channel="CPRIVATE", text="now I can")["ok"]
    fake.add_channel("C_NEW", "new", member=False)
    assert (
        api_error(lambda: client.chat_postMessage(channel="C_NEW", text="x")).response["error"]
        == "not_in_channel"
    )


def test_ephemeral_and_delete(fake: FakeSlack, client: WebClient) -> None:
    answer = client.chat_postEphemeral(channel="COPS", user="UALICE", text="only you")
    assert answer["message_ts"]
    [ephemeral] = fake.ephemerals(user="UALICE")
    assert (ephemeral.channel, ephemeral.text, ephemeral.via) == ("COPS", "only you", "chat.postEphemeral")
    assert fake.messages("COPS") == []

    posted = client.chat_postMessage(channel="COPS", text="to delete")
    client.chat_delete(channel="COPS", ts=posted["ts"])
    assert fake.messages("COPS") == []
    assert client.conversations_history(channel="COPS")["messages"] == []


# --- faults


def test_ratelimited_carries_retry_after(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", "ratelimited", retry_after=7)
    error = api_error(lambda: client.chat_postMessage(channel="COPS", text="x"))
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    assert error.response["error"] == "ratelimited"
    assert fake.messages("COPS") == []
    assert client.chat_postMessage(channel="COPS", text="x")["ok"]  # consumed
    assert [(c.status, c.fault) for c in fake.calls("chat.postMessage")] == [
        (429, "ratelimited"),
        (200, None),
    ]


def test_rate_limit_retry_handler_succeeds_on_retry(fake: FakeSlack) -> None:
    client = WebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[RateLimitErrorRetryHandler()])
    fake.fail_next("chat.postMessage", "ratelimited", retry_after=0)
    assert client.chat_postMessage(channel="COPS", text="eventually")["ok"]
    assert [c.status for c in fake.calls("chat.postMessage")] == [429, 200]
    assert len(fake.messages("COPS")) == 1


def test_server_errors(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("*", "server_error")
    fake.fail_next("*", "server_error:503")
    assert api_error(client.auth_test).response.status_code == 500
    assert api_error(client.auth_test).response.status_code == 503
    assert client.auth_test()["ok"]

    retry = ServerErrorRetryHandler(interval_calculator=QUICKLY)
    retrying = WebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[retry])
    fake.fail_next("chat.postMessage", "server_error:503")
    assert retrying.chat_postMessage(channel="COPS", text="after one 503")["ok"]


def test_error_code_fault_and_order(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.update", "error:cant_update_message")
    fake.fail_next("*", "error:fatal_error")
    fake.fail_next("chat.update", "error:edit_window_closed")
    posted_error = api_error(lambda: client.chat_postMessage(channel="COPS", text="x"))
    assert posted_error.response.status_code == 200 and posted_error.response["error"] == "fatal_error"
    update = lambda: client.chat_update(channel="COPS", ts="1.1", text="x")  # noqa: E731
    assert api_error(update).response["error"] == "cant_update_message"
    assert api_error(update).response["error"] == "edit_window_closed"
    assert api_error(update).response["error"] == "message_not_found"  # faults used up


def test_unknown_fault_kind_is_refused(fake: FakeSlack) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fake.fail_next("chat.postMessage", "flaky")


def test_timeout_with_a_short_client_timeout(fake: FakeSlack) -> None:
    impatient = WebClient(token=TOKEN, base_url=fake.api_url, timeout=0.1)  # type: ignore[arg-type]
    fake.fail_next("chat.postMessage", "timeout", hold_seconds=1.0)
    with pytest.raises(TimeoutError):
        impatient.chat_postMessage(channel="COPS", text="slow")
    assert fake.messages("COPS") == []  # the client gave up while the fake still held the request
    # A slow Slack, not a lost request: the message lands once the hold is over.
    [message] = fake.wait_for(lambda f: f.messages("COPS"), timeout=3)
    assert message.text == "slow"
    assert fake.calls("chat.postMessage")[0].fault == "timeout"


def test_disconnect_and_the_connection_error_retry_handler(fake: FakeSlack) -> None:
    # A default WebClient has this handler (one retry, after a 0.5-1 s backoff).
    retry = ConnectionErrorRetryHandler(interval_calculator=QUICKLY)
    client = WebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[retry])
    fake.fail_next("auth.test", "disconnect")
    assert client.auth_test()["ok"]
    fake.fail_next("auth.test", "disconnect", times=2)
    with pytest.raises(RemoteDisconnected):
        client.auth_test()
    assert [c.status for c in fake.calls("auth.test")] == [0, 200, 0, 0]


def test_latency_applies_to_every_answer(fake: FakeSlack, client: WebClient) -> None:
    fake.latency = 0.15
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.15


def test_down_up_and_restart_on_the_same_port(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="COPS", text="before")
    fake.down()
    assert api_error(client.auth_test).response.status_code == 503
    fake.down(close=True)
    with pytest.raises(RemoteDisconnected):
        client.auth_test()
    fake.up()
    assert client.auth_test()["ok"]

    port = fake.port
    fake.stop()
    with pytest.raises(urllib.error.URLError):
        client.auth_test()
    fake.start()
    assert fake.port == port
    assert client.conversations_history(channel="COPS")["messages"][0]["text"] == "before"


def test_stop_leaves_no_threads_behind() -> None:
    before = set(threading.enumerate())
    fake = FakeSlack(hold_seconds=10).start()
    fake.fail_next("auth.test", "timeout")
    errors: list[Exception] = []

    def held_call() -> None:
        try:
            WebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[]).auth_test()
        except Exception as exc:
            errors.append(exc)

    caller = threading.Thread(target=held_call)
    caller.start()
    fake.wait_for(lambda f: f.pending_faults == 0, timeout=2, what="the request is held")
    started = time.monotonic()
    fake.stop()
    caller.join(timeout=5)
    assert time.monotonic() - started < 5  # the held request was dropped, not waited out
    assert [type(e) for e in errors] == [RemoteDisconnected]
    assert set(threading.enumerate()) == before


# --- views, user groups, users


def test_views_open_update_push(fake: FakeSlack, client: WebClient) -> None:
    trigger = fake.new_trigger_id()
    opened = client.views_open(trigger_id=trigger, view={**MODAL, "external_id": "create-1"})["view"]
    assert opened["id"].startswith("V") and opened["hash"] and opened["callback_id"] == "ami_create_modal"
    again = api_error(lambda: client.views_open(trigger_id=trigger, view=MODAL))
    assert again.response["error"] == "exchanged_trigger_id"

    stale = api_error(lambda: client.views_update(view_id=opened["id"], hash="0.stale", view=MODAL))
    assert stale.response["error"] == "hash_conflict"
    changed = {**MODAL, "title": {"type": "plain_text", "text": "Creating…"}}
    updated = client.views_update(external_id="create-1", view=changed, hash=opened["hash"])["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    assert api_error(lambda: client.views_update(view_id="V404", view=MODAL)).response["error"] == "not_found"

    pushed = client.views_push(trigger_id=fake.new_trigger_id(), view=MODAL)["view"]
    assert [v["id"] for v in fake.opened_views()] == [opened["id"], pushed["id"]]
    assert fake.opened_views()[0]["title"]["text"] == "Creating…"


def test_views_are_checked_like_slack_checks_them(fake: FakeSlack, client: WebClient) -> None:
    long_title = {**MODAL, "title": {"type": "plain_text", "text": "A title longer than 24 chars"}}
    error = api_error(lambda: client.views_open(trigger_id=fake.new_trigger_id(), view=long_title))
    assert error.response["error"] == "invalid_arguments"
    assert "title" in error.response["response_metadata"]["messages"][0]
    no_submit = {key: value for key, value in MODAL.items() if key != "submit"}
    error = api_error(lambda: client.views_open(trigger_id=fake.new_trigger_id(), view=no_submit))
    assert "submit" in error.response["response_metadata"]["messages"][0]
    assert fake.opened_views() == []


def test_views_publish_keeps_the_latest_home_per_user(fake: FakeSlack, client: WebClient) -> None:
    first = client.views_publish(user_id="UALICE", view=HOME)["view"]
    second_home = {"type": "home", "blocks": [{"type": "divider"}]}
    second = client.views_publish(user_id="UALICE", view=second_home)["view"]
    assert second["id"] == first["id"]
    home = fake.home_view("UALICE")
    assert home is not None and home["blocks"] == [{"type": "divider"}]
    assert fake.home_view("UBOB") is None
    wrong_type = api_error(lambda: client.views_publish(user_id="UBOB", view=MODAL))
    assert wrong_type.response["error"] == "invalid_arguments"


def test_usergroups_and_users(fake: FakeSlack, client: WebClient) -> None:
    assert client.usergroups_users_list(usergroup="S_APPROVERS")["users"] == ["UALICE", "UBOB"]
    fake.set_usergroup("S_APPROVERS", ["UCAROL"])
    assert client.usergroups_users_list(usergroup="S_APPROVERS")["users"] == ["UCAROL"]
    missing = api_error(lambda: client.usergroups_users_list(usergroup="S_NOPE"))
    assert missing.response["error"] == "no_such_subteam"

    fake.add_user("UALICE", "alice", tz="Europe/Amsterdam")
    user = client.users_info(user="UALICE")["user"]
    assert (user["id"], user["name"], user["tz"]) == ("UALICE", "alice", "Europe/Amsterdam")
    assert client.users_info(user="UBOT")["user"]["is_bot"] is True
    assert api_error(lambda: client.users_info(user="not-a-user")).response["error"] == "user_not_found"


# --- response URLs


def test_response_urls_record_and_answer_ok(fake: FakeSlack) -> None:
    url = fake.new_response_url(channel="COPS", user="UALICE")
    assert url.startswith(f"{fake.url}/response/")
    response = WebhookClient(url).send(text="job j-1a2b3c started", response_type="ephemeral")
    assert (response.status_code, response.body) == (200, "ok")
    [call] = fake.responses(url)
    assert call.method == "response_url" and call.params["text"] == "job j-1a2b3c started"
    assert call.url_token == url.rsplit("/", 1)[1]
    assert fake.response_url_uses(url) == 1
    assert fake.ephemerals(channel="COPS")[0].via == "response_url"

    unknown = WebhookClient(f"{fake.url}/response/nope").send(text="x")
    assert unknown.status_code == 404
    assert len(fake.responses()) == 2 and fake.responses("nope")[0].status == 404


def test_response_url_acts_on_its_message(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="COPS", text="approve?")
    url = fake.new_response_url(channel="COPS", message_ts=posted["ts"], user="UBOB")
    WebhookClient(url).send(text="approved by bob", replace_original=True)
    assert [m.text for m in fake.messages("COPS")] == ["approved by bob"]
    WebhookClient(url).send(text="for everyone", response_type="in_channel")
    assert [m.text for m in fake.messages("COPS")] == ["approved by bob", "for everyone"]
    WebhookClient(url).send_dict({"delete_original": True})
    assert [m.text for m in fake.messages("COPS")] == ["for everyone"]


def test_response_url_is_good_for_five_uses(fake: FakeSlack) -> None:
    url = fake.new_response_url()
    statuses = [WebhookClient(url).send(text=str(i)).status_code for i in range(6)]
    assert statuses == [200] * 5 + [404]
    assert fake.response_url_uses(url) == 6


def test_response_url_faults(fake: FakeSlack) -> None:
    url = fake.new_response_url(channel="COPS")
    fake.fail_next("response_url", "ratelimited", retry_after=3)
    limited = WebhookClient(url).send(text="x")
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
    assert WebhookClient(url).send(text="x").status_code == 200


# --- helpers


def test_wait_for_returns_the_value_once_true(fake: FakeSlack, client: WebClient) -> None:
    timer = threading.Timer(0.1, lambda: client.chat_postMessage(channel="COPS", text="later"))
    timer.start()
    try:
        [post] = fake.wait_for(lambda f: f.posts("COPS"), timeout=3)
    finally:
        timer.join()
    assert post.params["text"] == "later"


def test_wait_for_explains_what_did_not_happen(fake: FakeSlack, client: WebClient) -> None:
    client.auth_test()
    with pytest.raises(AssertionError) as failure:
        fake.wait_for(lambda f: f.posts("CGENERAL"), timeout=0.2, what="a post in #general")
    message = str(failure.value)
    assert "a post in #general" in message and "0.2s" in message and "auth.test" in message

    def predicate(f: FakeSlack) -> bool:
        assert f.posts(), "nothing posted yet"
        return True

    with pytest.raises(AssertionError, match="nothing posted yet"):
        fake.wait_for(predicate, timeout=0.1)


def test_subscribe_sees_each_call(fake: FakeSlack, client: WebClient) -> None:
    seen: list[Call] = []
    unsubscribe = fake.subscribe(seen.append)
    client.chat_postMessage(channel="COPS", text="one")
    unsubscribe()
    client.chat_postMessage(channel="COPS", text="two")
    assert [(c.method, c.params["text"], c.ok) for c in seen] == [("chat.postMessage", "one", True)]


def test_reset_forgets_calls_messages_and_faults(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="COPS", text="old")
    fake.fail_next("auth.test", "server_error")
    fake.reset()
    assert fake.calls() == [] and fake.messages("COPS") == []
    assert client.auth_test()["ok"]
    assert client.chat_postMessage(channel="COPS", text="new")["ok"]  # channels survive a reset
