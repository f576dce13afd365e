"""`/ami create` without arguments: a form (modal) with a searchable instance picker.

- Opening: the command's route builds the view (pure) and the Slack handler opens it with
  `views.open` and the command's trigger id. No AWS call.
- The picker is an `external_select`: Slack asks amibot for its options while the person types and
  requires them *in the response* to that request, within 3 seconds. This is the one place amibot
  calls AWS before answering Slack: one DescribeInstances page (no paginating) from a client with
  short timeouts and no retries, under a hard deadline; any error or timeout answers an empty list.
- Submitting: the fields are checked by `bot.commands.create_from_form`, the converters and messages
  of `/ami create INSTANCE_ID …`; errors are shown on the fields. A valid form starts the same job
  (`Creating.request`) with the channel the command was used in (kept in the view's
  private_metadata); the answer goes to the person through that command's response URL, or a DM.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import Any

from bot import blocks as bk
from bot.aws.ec2 import Ec2, InstanceSummary
from bot.commands import CreateModal, FieldErrors, GrammarContext, create_from_form
from bot.context import Caller, Reply
from bot.creating import Creating, default_name
from bot.ids import CallbackId, OptionsId, new_token
from bot.messages import Delivery, OutboxItem
from bot.notices import in_account
from bot.store.outbox import OutboxStore

log = logging.getLogger(__name__)

OPEN_VIEW = "open_view"  # Reply.extra key: the handler opens this view with the trigger id
OPTIONS_DEADLINE_S = 2.0  # Slack gives up on the options after 3 s

# block ids (each input block's element has the same action id, except the picker's)
REGION = "region"
INSTANCE = "instance"
NAME = "name"
DESCRIPTION = "description"
REBOOT = "reboot"
TAGS = "tags"
_FIELD_BLOCKS = {
    "instance_id": INSTANCE,
    "region": REGION,
    "account": REGION,
    "name": NAME,
    "description": DESCRIPTION,
    "tags": TAGS,
}


@dataclass(frozen=True)
class Metadata:
    """What the form carries from the command to the submission (the view's private_metadata)."""

    channel: str = ""
    response_url: str = ""
    account: str | None = None
    region: str = ""

    def dump(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def load(cls, text: str | None) -> Metadata:
        try:
            data = json.loads(text or "{}")
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        account = data.get("account")
        return cls(
            channel=str(data.get("channel") or ""),
            response_url=str(data.get("response_url") or ""),
            account=str(account) if account else None,
            region=str(data.get("region") or ""),
        )


@dataclass(frozen=True)
class FormInput:
    """The fields of a submitted form, as Slack sent them."""

    metadata: str
    instance: str | None  # the picked option's value: "<instance id>@<region>[@<Name tag>]"
    region: str | None
    name: str | None
    description: str | None
    reboot: bool
    tags: str | None
    name_block: str = NAME  # where the name field is (its errors are shown there)


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:75]}


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": _plain(text), "value": value}


OPTION_VALUE_MAX = 150  # Slack's limit on an option's value


def option_value(instance_id: str, region: str, name: str = "") -> str:
    """`<instance id>@<region>[@<Name tag>]`: the Name tag lets the form prefill the default AMI
    name when the instance is picked, without another AWS call."""
    value = f"{instance_id}@{region}"
    return f"{value}@{name}"[:OPTION_VALUE_MAX] if name else value


def split_option(value: str | None) -> tuple[str | None, str | None]:
    """(instance id, the region it was listed in) of a picked option."""
    if not value:
        return None, None
    instance_id, _, rest = value.partition("@")
    region = rest.partition("@")[0]
    return instance_id or None, region or None


def picked_name(value: str | None) -> str | None:
    """The Name tag (else the instance id) a picked option carries; None for no instance."""
    instance_id, _ = split_option(value)
    if instance_id is None:
        return None
    parts = (value or "").split("@", 2)
    return parts[2] if len(parts) == 3 and parts[2] else instance_id


def instance_option(instance: InstanceSummary, region: str) -> dict[str, Any]:
    label = f"{instance.name} ({instance.instance_id})" if instance.name else instance.instance_id
    details = " · ".join(x for x in (instance.state, instance.instance_type) if x)
    text = f"{label} · {details}" if details else label
    value = option_value(instance.instance_id, region, instance.name or "")
    return _option(text if len(text) <= 75 else text[:74] + "…", value)


def _input(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    optional: bool = False,
    hint: str = "",
    dispatch: bool = False,
) -> Any:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label),
        "element": element,
        "optional": optional,
    }
    if dispatch:
        block["dispatch_action"] = True
    if hint:
        block["hint"] = {"type": "plain_text", "text": hint}
    return block


def name_block(initial: str | None = None, block_id: str = NAME) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": NAME,
        "max_length": 128,
        "placeholder": _plain("default: <Name tag or id>-<UTC yyyy-mm-dd-HHMM>"),
    }
    if initial:
        element["initial_value"] = initial
    block: dict[str, Any] = _input(block_id, "AMI name", element, optional=True)
    return block


def is_name_block(block_id: object) -> bool:
    """The name's block id is `name`, or `name:<instance>` once prefilled (a new block id, since
    Slack keeps what an input holds by block id and would not show a new initial value)."""
    return isinstance(block_id, str) and (block_id == NAME or block_id.startswith(NAME + ":"))


VIEW_FIELDS = ("type", "callback_id", "private_metadata", "title", "submit", "close", "blocks")


def prefilled(view: dict[str, Any], picked: str | None, now: float) -> dict[str, Any] | None:
    """The form again with the AMI name set to the default for the picked instance (for
    views.update), or None: nothing picked, or the person has typed a name of their own (pure)."""
    base = picked_name(picked)
    blocks = view.get("blocks")
    if base is None or not isinstance(blocks, list):
        return None
    current = next((b for b in blocks if isinstance(b, dict) and is_name_block(b.get("block_id"))), None)
    if current is None:
        return None
    shown = (current.get("element") or {}).get("initial_value") or None
    typed = _state_value(view, str(current["block_id"]), NAME).get("value") or None
    if typed is not None and typed != shown:
        return None  # the person's own name stays
    instance_id, _ = split_option(picked)
    new = name_block(default_name(base, now), f"{NAME}:{instance_id}")
    if new["block_id"] == current["block_id"]:
        return None  # the same instance again: already shown
    update = {k: view[k] for k in VIEW_FIELDS if k in view}
    update["blocks"] = [new if b is current else b for b in blocks]
    return update


def create_modal(
    *, regions: Sequence[str], region: str, account: str | None, metadata: Metadata
) -> dict[str, Any]:
    """The create form (pure)."""
    region_options = [_option(r, r) for r in regions]
    initial = next((o for o in region_options if o["value"] == region), region_options[0])
    where = f"<#{metadata.channel}>" if metadata.channel.startswith(("C", "G")) else "this conversation"
    intro = (
        f"Creates an AMI of an EC2 instance{in_account(account)} and posts in {where} when it is ready. "
        "Like `/ami create INSTANCE_ID`, it does not reboot the instance unless you ask."
    )
    blocks = [
        bk.section(intro),
        _input(
            REGION,
            "Region",
            {
                "type": "static_select",
                "action_id": REGION,
                "options": region_options,
                "initial_option": initial,
            },
            hint="Change the region before picking the instance.",
        ),
        _input(
            INSTANCE,
            "Instance",
            {
                "type": "external_select",
                "action_id": OptionsId.CREATE_INSTANCE,
                "min_query_length": 0,
                "placeholder": _plain("Search by Name tag or instance id"),
            },
            hint="Non-terminated instances in the region above.",
            dispatch=True,  # picking one prefills the AMI name
        ),
        name_block(),
        _input(
            DESCRIPTION,
            "Description",
            {"type": "plain_text_input", "action_id": DESCRIPTION, "max_length": 255},
            optional=True,
        ),
        _input(
            REBOOT,
            "Reboot",
            {
                "type": "checkboxes",
                "action_id": REBOOT,
                "options": [_option("Reboot the instance first (consistent file systems)", "reboot")],
            },
            optional=True,
        ),
        _input(
            TAGS,
            "Tags",
            {
                "type": "plain_text_input",
                "action_id": TAGS,
                "multiline": True,
                "placeholder": _plain("one KEY=VALUE per line, e.g. team=web"),
            },
            optional=True,
            hint="amibot adds amibot:requested-by and amibot:job itself.",
        ),
    ]
    return {
        "type": "modal",
        "callback_id": CallbackId.CREATE_MODAL,
        "private_metadata": metadata.dump(),
        "title": _plain("Create an AMI"),
        "submit": _plain("Create"),
        "close": _plain("Cancel"),
        "blocks": blocks,
    }


def _state_value(view: dict[str, Any], block_id: str, action_id: str) -> dict[str, Any]:
    values = (view.get("state") or {}).get("values") or {}
    element = (values.get(block_id) or {}).get(action_id) or {}
    return element if isinstance(element, dict) else {}


def _selected(view: dict[str, Any], block_id: str, action_id: str) -> str | None:
    option = _state_value(view, block_id, action_id).get("selected_option") or {}
    value = option.get("value") if isinstance(option, dict) else None
    return str(value) if value else None


def _text_value(view: dict[str, Any], block_id: str) -> str | None:
    value = _state_value(view, block_id, block_id).get("value")
    return str(value) if value else None


def read_form(view: dict[str, Any]) -> FormInput:
    """The fields of a submitted create form (anything missing or malformed reads as empty)."""
    reboot = _state_value(view, REBOOT, REBOOT).get("selected_options") or []
    values = (view.get("state") or {}).get("values") or {}
    where = next((b for b in values if is_name_block(b)), NAME) if isinstance(values, dict) else NAME
    name = _state_value(view, where, NAME).get("value")
    return FormInput(
        metadata=str(view.get("private_metadata") or ""),
        instance=_selected(view, INSTANCE, OptionsId.CREATE_INSTANCE),
        region=_selected(view, REGION, REGION),
        name=str(name) if name else None,
        description=_text_value(view, DESCRIPTION),
        reboot=bool(reboot),
        tags=_text_value(view, TAGS),
        name_block=where,
    )


def picker_region(view: dict[str, Any]) -> str | None:
    """The region chosen in the form when the picker asks for options (else the form's default)."""
    return (
        _selected(view, REGION, REGION)
        or Metadata.load(str(view.get("private_metadata") or "")).region
        or None
    )


class CreateForm:
    def __init__(
        self,
        grammar: GrammarContext,
        creating: Creating,
        ec2: Ec2,
        outbox: OutboxStore,
        *,
        options_deadline: float = OPTIONS_DEADLINE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._grammar = grammar
        self._creating = creating
        self._ec2 = ec2
        self._outbox = outbox
        self._deadline = options_deadline
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="amibot-options")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # the command: no AWS call --------------------------------------------------------------------

    def open(self, cmd: CreateModal, caller: Caller) -> Reply:
        """The route of `CreateModal`: a reply that asks the handler to open the form."""
        metadata = Metadata(
            channel=caller.channel, response_url=caller.response_url, account=cmd.account, region=cmd.region
        )
        view = create_modal(
            regions=self._grammar.regions_for(cmd.account),
            region=cmd.region,
            account=cmd.account,
            metadata=metadata,
        )
        return Reply("", extra={OPEN_VIEW: view})

    def prefill(self, view: dict[str, Any], picked: str | None) -> dict[str, Any] | None:
        """The form with the default AMI name of the picked instance, or None (see `prefilled`)."""
        return prefilled(view, picked, self._clock())

    # the picker: the one AWS call made before answering Slack --------------------------------------

    def instance_options(self, query: str, region: str | None, metadata: str) -> list[dict[str, Any]]:
        """Options for the instance picker; never raises, answers [] on any problem."""
        try:
            meta = Metadata.load(metadata)
            account = meta.account
            if account is not None and account not in self._grammar.accounts:
                return []
            region = (region or meta.region or "").strip().lower()
            if region not in self._grammar.regions_for(account):
                return []
            future = self._pool.submit(self._ec2.find_instances, account, region, (query or "")[:100])
            found = future.result(timeout=self._deadline)
            return [instance_option(instance, region) for instance in found]
        except FutureTimeout:
            log.warning("instance picker: AWS did not answer in time", extra={"region": region})
        except Exception as exc:  # the options request must never fail: Slack shows an empty list
            log.warning(
                "instance picker failed", extra={"error": getattr(exc, "message", type(exc).__name__)}
            )
        return []

    # the submission: Redis only ---------------------------------------------------------------------

    def submit(self, form: FormInput, caller: Caller) -> dict[str, str]:
        """Start the create job of a valid form; otherwise the errors by block id (nothing done)."""
        meta = Metadata.load(form.metadata)
        instance_id, listed_in = split_option(form.instance)
        try:
            cmd = create_from_form(
                self._grammar,
                instance_id=instance_id,
                region=form.region,
                account=meta.account,
                name=form.name,
                description=form.description,
                reboot=form.reboot,
                tags=form.tags,
            )
        except FieldErrors as exc:
            blocks = {**_FIELD_BLOCKS, "name": form.name_block}
            return {blocks.get(key, INSTANCE): text for key, text in exc.errors.items()}
        if listed_in and listed_in != cmd.region:
            return {
                INSTANCE: f"{instance_id} is in {listed_in}, not {cmd.region}: pick the instance again "
                "after changing the region"
            }
        asker = Caller(
            user=caller.user,
            channel=meta.channel or caller.user,
            team=caller.team,
            response_url=meta.response_url,
        )
        reply = self._creating.request(cmd, asker)
        self._outbox.enqueue(
            OutboxItem(
                id=f"form:{new_token()}",
                kind=Delivery.RESPOND,
                text=reply.text,
                blocks=reply.blocks,
                response_url=meta.response_url or None,
                fallback_user=caller.user,
            )
        )
        return {}
