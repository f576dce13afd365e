"""The prune planner: examples for each rule, and properties over generated inventories."""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bot.images import Image, InUse, Snapshot, Use, UseKind
from bot.prune import (
    Plan,
    PlanItem,
    Policy,
    ReasonKind,
    Verdict,
    family_of,
    format_duration,
    plan,
    reason_kind,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
REGION = "us-east-1"
POLICY = Policy(retention=timedelta(days=30), keep_last=3)


def img(
    image_id: str,
    name: str = "web-2026-01-01",
    *,
    age: timedelta = timedelta(days=100),
    state: str = "available",
    tags: dict[str, str] | None = None,
    snapshots: Sequence[tuple[str, int]] = (),
    protection: bool = False,
    region: str = REGION,
) -> Image:
    return Image(
        image_id=image_id,
        name=name,
        state=state,
        creation_date=NOW - age,
        region=region,
        tags=tags or {},
        snapshots=tuple(Snapshot(sid, size) for sid, size in snapshots),
        deregistration_protection=protection,
    )


def days(n: float) -> timedelta:
    return timedelta(days=n)


def verdicts(p: Plan) -> dict[str, Verdict]:
    return {item.image.image_id: item.verdict for item in p.items}


def item_of(p: Plan, image_id: str) -> PlanItem:
    return next(item for item in p.items if item.image.image_id == image_id)


def filler(n: int, family: str = "web", start_age: int = 1) -> list[Image]:
    """`n` young available images of `family`, newer than anything an example puts next to them."""
    return [
        img(f"ami-f{family}{i}", f"{family}-{i}", age=days(start_age) + timedelta(minutes=i))
        for i in range(n)
    ]


# --- family_of ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("web-golden-2026-11-27-0930", "web-golden"),
        ("web-golden-20261127", "web-golden"),
        ("api-v1.4.2", "api"),
        ("api-1.4.2", "api"),
        ("base_2026_11_27", "base"),
        ("ubuntu-22.04-base-2026-11-27", "ubuntu-22.04-base"),
        ("nightly-build-42", "nightly-build"),
        ("golden", "golden"),
        ("app-2026-11-27T09-30-00Z", "app"),
        ("app-20261127T093000Z", "app"),
        ("app 2026 11 27", "app"),
        ("web-golden-V2", "web-golden"),
        ("web-golden-", "web-golden"),
        ("centos7", "centos7"),  # a version needs a separator before it
        ("api-v", "api-v"),  # `v` alone is not a version
        ("web-rc1", "web-rc1"),
        ("2026-11-27", "2026-11-27"),  # only a date: the whole name, never empty
        ("20261127", "20261127"),
        ("v1.2", "v1.2"),
    ],
)
def test_family_from_name(name: str, family: str) -> None:
    assert family_of(img("ami-1", name)) == family


def test_family_tag_wins_and_blank_tag_is_ignored() -> None:
    assert family_of(img("ami-1", "web-2026-11-27", tags={"amibot:family": "frontend"})) == "frontend"
    assert family_of(img("ami-1", "web-2026-11-27", tags={"amibot:family": " frontend "})) == "frontend"
    assert family_of(img("ami-1", "web-2026-11-27", tags={"amibot:family": "  "})) == "web"
    assert family_of(img("ami-1", "web-2026-11-27", tags={"team": "x"}), family_tag="team") == "x"


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("- " * 64 + "x", "- " * 64 + "x"),
        ("-1" * 63 + "x", "-1" * 63 + "x"),
        ("x" + "-1" * 63, "x"),
        ("1-" * 64, "1-" * 64),
    ],
)
def test_family_of_long_pathological_names_is_quick(name: str, family: str) -> None:
    start = time.perf_counter()
    for _ in range(100):
        assert family_of(img("ami-1", name)) == family
    assert time.perf_counter() - start < 0.5  # linear: about 10 µs a call; backtracking takes seconds


def test_image_without_name_is_its_own_family() -> None:
    assert family_of(img("ami-0abc", "")) == "ami-0abc"


# --- format_duration, Policy ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(minutes=90), "90m"),
        (timedelta(hours=12), "12h"),
        (timedelta(days=30), "30d"),
        (timedelta(weeks=6), "6w"),
        (timedelta(days=1), "1d"),
        (timedelta(hours=26), "26h"),
        (timedelta(seconds=90), "90s"),
        (timedelta(0), "0d"),
    ],
)
def test_format_duration(duration: timedelta, text: str) -> None:
    assert format_duration(duration) == text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"retention": days(-1), "keep_last": 3},
        {"retention": days(30), "keep_last": -1},
        {"retention": days(30), "keep_last": 3, "protect_tag": ""},
        {"retention": days(30), "keep_last": 3, "price_per_gib_month": -0.01},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Policy(**kwargs)  # type: ignore[arg-type]


# --- one rule at a time ---------------------------------------------------------------------


def test_old_unused_image_outside_keep_last_is_pruned_with_its_reason() -> None:
    p = plan([*filler(3), img("ami-old")], {}, POLICY, NOW)
    item = item_of(p, "ami-old")
    assert item.verdict is Verdict.PRUNE
    assert item.reasons == ("older than 30d, not in use",)
    assert item.family == "web"


def test_in_use_is_kept_and_named() -> None:
    uses: InUse = {"ami-old": (Use(UseKind.INSTANCE, "i-0abc", "stopped"),)}
    item = item_of(plan([*filler(3), img("ami-old")], uses, POLICY, NOW), "ami-old")
    assert item.verdict is Verdict.KEEP
    assert item.reasons == ("in use by instance i-0abc (stopped)",)


def test_empty_use_tuple_means_not_in_use() -> None:
    p = plan([*filler(3), img("ami-old")], {"ami-old": ()}, POLICY, NOW)
    assert verdicts(p)["ami-old"] is Verdict.PRUNE


def test_many_uses_are_listed_in_a_stable_order_and_summarised() -> None:
    uses = (
        Use(UseKind.AUTO_SCALING_GROUP, "web-asg"),
        Use(UseKind.INSTANCE, "i-2", "running"),
        Use(UseKind.LAUNCH_TEMPLATE, "lt-1 v3", "$Default"),
        Use(UseKind.INSTANCE, "i-1", "running"),
        Use(UseKind.LAUNCH_CONFIGURATION, "web-lc"),
    )
    for order in (uses, tuple(reversed(uses))):
        item = item_of(plan([*filler(3), img("ami-old")], {"ami-old": order}, POLICY, NOW), "ami-old")
        assert item.reasons == (
            "in use by instance i-1 (running), instance i-2 (running), launch template lt-1 v3 ($Default)"
            " and 2 more",
        )


@pytest.mark.parametrize("value", ["", "yes"])
def test_protect_tag_with_any_value_keeps(value: str) -> None:
    item = item_of(
        plan([*filler(3), img("ami-old", tags={"amibot:keep": value})], {}, POLICY, NOW), "ami-old"
    )
    assert (item.verdict, item.reasons) == (Verdict.KEEP, ("protected (tag amibot:keep)",))


def test_custom_protect_tag() -> None:
    policy = Policy(retention=days(30), keep_last=0, protect_tag="do-not-delete")
    p = plan(
        [img("ami-a", tags={"do-not-delete": "1"}), img("ami-b", tags={"amibot:keep": "1"})], {}, policy, NOW
    )
    assert item_of(p, "ami-a").reasons == ("protected (tag do-not-delete)",)
    assert verdicts(p)["ami-b"] is Verdict.PRUNE


def test_deregistration_protection_keeps() -> None:
    item = item_of(plan([*filler(3), img("ami-old", protection=True)], {}, POLICY, NOW), "ami-old")
    assert (item.verdict, item.reasons) == (Verdict.KEEP, ("deregistration protection on",))


def test_keep_last_keeps_the_newest_n_available_of_each_family() -> None:
    images = [img(f"ami-w{i}", f"web-{i}", age=days(40 + i)) for i in range(5)]
    images += [img(f"ami-a{i}", f"api-{i}", age=days(40 + i)) for i in range(2)]
    p = plan(images, {}, POLICY, NOW)
    assert item_of(p, "ami-w0").reasons == ("newest 3 of family web",)
    assert {i.image.image_id for i in p.to_keep} == {"ami-w0", "ami-w1", "ami-w2", "ami-a0", "ami-a1"}
    assert {i.image.image_id for i in p.to_prune} == {"ami-w3", "ami-w4"}
    assert item_of(p, "ami-a1").reasons == ("newest 3 of family api",)


def test_keep_last_zero_keeps_nothing_for_recency() -> None:
    p = plan([img("ami-a"), img("ami-b")], {}, Policy(retention=days(30), keep_last=0), NOW)
    assert all(i.verdict is Verdict.PRUNE for i in p.items)


def test_keep_last_ties_are_broken_by_image_id() -> None:
    images = [img(i, age=days(40)) for i in ("ami-c", "ami-a", "ami-b")]
    policy = Policy(retention=days(30), keep_last=2)
    for order in (images, images[::-1]):
        assert {i.image.image_id for i in plan(order, {}, policy, NOW).to_keep} == {"ami-a", "ami-b"}


def test_failed_and_pending_images_never_push_a_good_image_out() -> None:
    good = img("ami-good", age=days(60))
    newer_bad = [
        img("ami-failed", age=days(40), state="failed"),
        img("ami-error", age=days(41), state="error"),
        img("ami-pending", age=days(42), state="pending"),
    ]
    p = plan([good, *newer_bad], {}, Policy(retention=days(30), keep_last=1), NOW)
    assert item_of(p, "ami-good").reasons == ("newest 1 of family web",)
    assert item_of(p, "ami-failed").reasons == ("older than 30d, not in use, failed",)
    assert item_of(p, "ami-error").verdict is Verdict.PRUNE
    assert item_of(p, "ami-pending").reasons == ("not available (pending)",)


@pytest.mark.parametrize("state", ["pending", "transient", "deregistered", "disabled", "invalid", "weird"])
def test_states_other_than_available_failed_error_are_kept(state: str) -> None:
    item = item_of(plan([img("ami-x", state=state)], {}, Policy(days(30), 0), NOW), "ami-x")
    assert (item.verdict, item.reasons) == (Verdict.KEEP, (f"not available ({state})",))


def test_young_image_is_kept_and_the_boundary_is_exclusive() -> None:
    images = [*filler(3, start_age=10), img("ami-young", age=days(29)), img("ami-exact", age=days(30))]
    p = plan(images, {}, POLICY, NOW)
    assert item_of(p, "ami-young").reasons == ("younger than 30d",)
    assert item_of(p, "ami-exact").verdict is Verdict.PRUNE  # now - created == retention: not younger


def test_image_from_the_future_counts_as_young() -> None:
    item = item_of(plan([img("ami-x", age=-days(1))], {}, Policy(days(30), 0), NOW), "ami-x")
    assert item.reasons == ("younger than 30d",)


def test_young_failed_image_is_kept() -> None:
    item = item_of(plan([img("ami-x", age=days(2), state="failed")], {}, POLICY, NOW), "ami-x")
    assert (item.verdict, item.reasons) == (Verdict.KEEP, ("younger than 30d",))


def test_every_reason_that_applies_in_a_fixed_order() -> None:
    image = img("ami-x", age=timedelta(hours=1), tags={"amibot:keep": ""}, protection=True)
    uses: InUse = {"ami-x": (Use(UseKind.LAUNCH_TEMPLATE, "lt-9 v2"),)}
    item = item_of(plan([image], uses, Policy(timedelta(minutes=90), 3), NOW), "ami-x")
    assert item.reasons == (
        "in use by launch template lt-9 v2",
        "protected (tag amibot:keep)",
        "deregistration protection on",
        "newest 3 of family web",
        "younger than 90m",
    )
    assert item.kinds == (
        ReasonKind.IN_USE,
        ReasonKind.PROTECTED,
        ReasonKind.DEREGISTRATION_PROTECTION,
        ReasonKind.KEEP_LAST,
        ReasonKind.RETENTION,
    )
    pending = img("ami-p", age=timedelta(minutes=5), state="pending", protection=True)
    assert item_of(plan([pending], {}, POLICY, NOW), "ami-p").reasons == (
        "deregistration protection on",
        "younger than 30d",
        "not available (pending)",
    )


def test_families_are_grouped_per_region() -> None:
    images = [img("ami-e", region="us-east-1", age=days(50)), img("ami-w", region="eu-west-1", age=days(60))]
    p = plan(images, {}, Policy(days(30), 1), NOW)
    assert all(i.verdict is Verdict.KEEP for i in p.items)


def test_family_tag_groups_images_with_different_names() -> None:
    tag = {"amibot:family": "front"}
    images = [img("ami-a", "web-1", tags=tag, age=days(40)), img("ami-b", "www-2", tags=tag, age=days(50))]
    p = plan(images, {}, Policy(days(30), 1), NOW)
    assert verdicts(p) == {"ami-a": Verdict.KEEP, "ami-b": Verdict.PRUNE}
    assert item_of(p, "ami-a").reasons == ("newest 1 of family front",)


def test_duplicate_ids_are_merged_when_equal_and_refused_when_not() -> None:
    a = img("ami-a")
    assert len(plan([a, a, img("ami-a")], {}, POLICY, NOW).items) == 1
    with pytest.raises(ValueError, match="ami-a"):
        plan([a, img("ami-a", state="failed")], {}, POLICY, NOW)


def test_empty_inventory() -> None:
    p = plan([], {}, POLICY, NOW)
    assert p.items == ()
    assert p.freed_gib == 0
    assert p.monthly_saving == 0
    assert p.counts()["prune"] == 0


# --- the plan as a whole --------------------------------------------------------------------


def test_items_order_prune_first_then_family_newest_first_then_id() -> None:
    images = [
        img("ami-k1", "web-1", age=days(1)),
        img("ami-k2", "api-1", age=days(2)),
        img("ami-p2", "web-2", age=days(50)),
        img("ami-p1", "web-3", age=days(40)),
        img("ami-p0", "web-4", age=days(40)),
        img("ami-p3", "api-2", age=days(70)),
    ]
    p = plan(images, {}, Policy(days(30), 1), NOW)
    assert [i.image.image_id for i in p.items] == ["ami-p3", "ami-p0", "ami-p1", "ami-p2", "ami-k2", "ami-k1"]


def test_counts_are_stable_and_count_every_reason_kind() -> None:
    images = [
        img("ami-new", age=days(1)),
        img("ami-used", age=days(40), protection=True),
        img("ami-tag", age=days(41), tags={"amibot:keep": "1"}),
        img("ami-pend", age=days(42), state="pending"),
        img("ami-gone", age=days(43)),
    ]
    p = plan(images, {"ami-used": (Use(UseKind.INSTANCE, "i-1", "running"),)}, Policy(days(30), 1), NOW)
    counts = p.counts()
    assert list(counts) == [
        "prune",
        "keep",
        "in_use",
        "protected",
        "deregistration_protection",
        "keep_last",
        "retention",
        "not_available",
    ]
    assert counts == {
        "prune": 1,
        "keep": 4,
        "in_use": 1,
        "protected": 1,
        "deregistration_protection": 1,
        "keep_last": 1,
        "retention": 1,
        "not_available": 1,
    }
    assert len(p.to_prune) == 1
    assert len(p.to_keep) == 4


def test_freed_gib_counts_shared_snapshots_once_and_skips_those_a_kept_image_uses() -> None:
    images = [
        img("ami-keep", age=days(1), snapshots=[("snap-shared-kept", 100), ("snap-k", 7)]),
        img("ami-a", age=days(40), snapshots=[("snap-a", 8), ("snap-ab", 20), ("snap-shared-kept", 100)]),
        img("ami-b", age=days(50), snapshots=[("snap-ab", 20), ("snap-b", 30)]),
    ]
    policy = Policy(days(30), 0, price_per_gib_month=0.05)
    p = plan(images, {}, policy, NOW)
    assert [i.image.image_id for i in p.to_prune] == ["ami-a", "ami-b"]
    assert p.freed_gib == 8 + 20 + 30
    assert p.monthly_saving == pytest.approx(58 * 0.05)


def test_round_trip_through_json() -> None:
    image = Image(
        image_id="ami-1",
        name="web-1",
        state="available",
        creation_date=NOW - days(40),
        region=REGION,
        owner_id="123456789012",
        description="golden",
        tags={"a": "b", "amibot:keep": ""},
        snapshots=(Snapshot("snap-1", 8, "/dev/xvda"),),
        deregistration_protection=True,
        deprecation_time=NOW + days(3),
        last_launched=NOW - days(2),
        public=True,
    )
    p = plan([image, img("ami-2")], {"ami-2": (Use(UseKind.INSTANCE, "i-1"),)}, POLICY, NOW)
    data = json.loads(json.dumps(p.to_dict()))
    assert data["now"] == "2026-11-27T12:00:00+00:00"
    assert Plan.from_dict(data) == p


@pytest.mark.parametrize(
    "data",
    [{}, {"format": 99, "items": [], "policy": {}, "now": "x"}, {"format": 1, "items": [{}], "policy": {}}],
)
def test_from_dict_refuses_what_is_not_a_plan(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Plan.from_dict(data)


def test_reason_kind_refuses_unknown_text() -> None:
    assert reason_kind("older than 30d, not in use") is ReasonKind.PRUNABLE
    with pytest.raises(ValueError):
        reason_kind("because")


# --- properties -----------------------------------------------------------------------------

SNAPSHOT_POOL = [Snapshot(f"snap-{n}", 8 + n) for n in range(8)]
STATES = ["available", "available", "available", "available", "pending", "failed", "error", "transient"]


NAME_STYLES = ["{base}-{created:%Y-%m-%d-%H%M}", "{base}_{created:%Y%m%d}", "{base}-v1.{n}", "{base}"]
TAG_SETS: list[dict[str, str]] = [
    *[{}] * 9,
    {"amibot:keep": ""},
    {"amibot:keep": "1"},
    {"amibot:family": "fam-a"},
    {"amibot:family": "web"},
    {"amibot:family": " "},
    {"amibot:keep": "1", "amibot:family": "fam-a"},
]
# strategies built once: building them inside the loop costs more than drawing from them
AGE_DAYS = st.one_of(st.integers(-1, 120), st.sampled_from([20, 45, 60]))  # whole days: many ties, boundaries
BASES = st.sampled_from(["web", "api", "base_img", "web-golden"])
STYLES = st.sampled_from(NAME_STYLES)
TAGS = st.sampled_from(TAG_SETS)
ID_SALT = st.integers(0, 0xFFFF)  # ids are not in input order, so id tie-breaks are exercised
STATE = st.sampled_from(STATES)
REGIONS = st.sampled_from([REGION, REGION, REGION, "eu-west-1"])
SNAPSHOTS = st.lists(st.sampled_from(SNAPSHOT_POOL), max_size=3, unique=True)
FLAGS = st.integers(0, 49)  # % 10 == 0: deregistration protection; // 10 == 0: in use
RETENTIONS = st.sampled_from([timedelta(0), timedelta(hours=12), days(7), days(30), days(45)])


@st.composite
def inventories(draw: st.DrawFn) -> tuple[list[Image], dict[str, tuple[Use, ...]], Policy]:
    images: list[Image] = []
    in_use: dict[str, tuple[Use, ...]] = {}
    for n in range(draw(st.integers(0, 24))):
        created = NOW - days(draw(AGE_DAYS))
        image_id = f"ami-{draw(ID_SALT):04x}{n:04x}"
        flags = draw(FLAGS)
        images.append(
            Image(
                image_id=image_id,
                name=draw(STYLES).format(base=draw(BASES), created=created, n=n),
                state=draw(STATE),
                creation_date=created,
                region=draw(REGIONS),
                tags=draw(TAGS),
                snapshots=tuple(draw(SNAPSHOTS)),
                deregistration_protection=flags % 10 == 0,
            )
        )
        if flags // 10 == 0:
            in_use[image_id] = (Use(UseKind.INSTANCE, f"i-{n}", "running"),)
    policy = Policy(retention=draw(RETENTIONS), keep_last=draw(st.integers(0, 4)))
    return images, in_use, policy


Inventory = tuple[list[Image], dict[str, tuple[Use, ...]], Policy]
# No explain phase: it re-runs every draw of a failing inventory and would take minutes here.
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)


def oracle_kinds(image: Image, images: list[Image], in_use: InUse, policy: Policy) -> set[ReasonKind]:
    """The keep rules that apply to `image`, computed the slow, obvious way."""
    kinds: set[ReasonKind] = set()
    if in_use.get(image.image_id):
        kinds.add(ReasonKind.IN_USE)
    if policy.protect_tag in image.tags:
        kinds.add(ReasonKind.PROTECTED)
    if image.deregistration_protection:
        kinds.add(ReasonKind.DEREGISTRATION_PROTECTION)
    if image.state == "available":
        family = family_of(image)
        newer = [
            other
            for other in images
            if other.state == "available"
            and other.region == image.region
            and family_of(other) == family
            and (other.creation_date, image.image_id) > (image.creation_date, other.image_id)
        ]
        if len(newer) < policy.keep_last:
            kinds.add(ReasonKind.KEEP_LAST)
    if NOW - image.creation_date < policy.retention:
        kinds.add(ReasonKind.RETENTION)
    if image.state not in ("available", "failed", "error"):
        kinds.add(ReasonKind.NOT_AVAILABLE)
    return kinds


@PROPERTY
@given(inventories())
def test_property_nothing_protected_is_ever_pruned(inv: Inventory) -> None:
    images, in_use, policy = inv
    for item in plan(images, in_use, policy, NOW).to_prune:
        image = item.image
        assert not in_use.get(image.image_id)
        assert policy.protect_tag not in image.tags
        assert not image.deregistration_protection
        assert image.state in ("available", "failed", "error")
        assert NOW - image.creation_date >= policy.retention


@PROPERTY
@given(inventories())
def test_property_keeps_the_last_good_images_of_every_family(inv: Inventory) -> None:
    images, in_use, policy = inv
    p = plan(images, in_use, policy, NOW)
    available: dict[str, int] = defaultdict(int)
    kept: dict[str, int] = defaultdict(int)
    for item in p.items:
        if item.image.state == "available":
            available[item.family] += 1
            kept[item.family] += item.verdict is Verdict.KEEP
    for family, total in available.items():
        assert kept[family] >= min(policy.keep_last, total), family


@PROPERTY
@given(inventories())
def test_property_verdicts_and_reasons_are_exactly_the_rules(inv: Inventory) -> None:
    """Completeness and soundness: kept iff some rule applies, and every applying rule is named."""
    images, in_use, policy = inv
    p = plan(images, in_use, policy, NOW)
    assert sorted(i.image.image_id for i in p.items) == sorted(i.image_id for i in images)
    for item in p.items:
        expected = oracle_kinds(item.image, images, in_use, policy)
        if expected:
            assert item.verdict is Verdict.KEEP
            assert set(item.kinds) == expected
            assert list(item.kinds) == sorted(item.kinds, key=list(ReasonKind).index)
        else:
            assert item.verdict is Verdict.PRUNE
            assert item.kinds == (ReasonKind.PRUNABLE,)


@PROPERTY
@given(inventories(), st.randoms(use_true_random=False))
def test_property_input_order_does_not_matter(inv: Inventory, rnd: random.Random) -> None:
    images, in_use, policy = inv
    shuffled = list(images)
    rnd.shuffle(shuffled)
    shuffled_uses = dict(rnd.sample(sorted(in_use.items()), len(in_use)))
    assert plan(shuffled, shuffled_uses, policy, NOW) == plan(images, in_use, policy, NOW)


@PROPERTY
@given(inventories())
def test_property_items_are_in_the_documented_order(inv: Inventory) -> None:
    images, in_use, policy = inv
    items = plan(images, in_use, policy, NOW).items
    keys = [
        (i.verdict is not Verdict.PRUNE, i.family, NOW - i.image.creation_date, i.image.image_id)
        for i in items
    ]
    assert keys == sorted(keys)


@PROPERTY
@given(inventories())
def test_property_round_trip(inv: Inventory) -> None:
    images, in_use, policy = inv
    p = plan(images, in_use, policy, NOW)
    assert Plan.from_dict(json.loads(json.dumps(p.to_dict()))) == p


@PROPERTY
@given(inventories())
def test_property_freed_gib_and_counts(inv: Inventory) -> None:
    images, in_use, policy = inv
    p = plan(images, in_use, policy, NOW)
    kept_snaps = {s.snapshot_id for i in p.to_keep for s in i.image.snapshots}
    pruned_snaps = {s.snapshot_id: s.size_gib for i in p.to_prune for s in i.image.snapshots}
    assert p.freed_gib == sum(size for sid, size in pruned_snaps.items() if sid not in kept_snaps)
    assert p.monthly_saving == pytest.approx(p.freed_gib * policy.price_per_gib_month)
    counts = p.counts()
    assert (counts["prune"], counts["keep"]) == (len(p.to_prune), len(p.to_keep))
    for kind in ReasonKind:
        if kind is not ReasonKind.PRUNABLE:
            assert counts[kind] == sum(kind in i.kinds for i in p.items)


# --- performance ----------------------------------------------------------------------------


def big_inventory(count: int = 10_000, used: int = 3_000) -> tuple[list[Image], dict[str, tuple[Use, ...]]]:
    rnd = random.Random(7)
    families = [f"svc{n}" for n in range(200)]
    images = []
    for n in range(count):
        created = NOW - timedelta(minutes=rnd.randrange(0, 60 * 24 * 400))
        images.append(
            Image(
                image_id=f"ami-{n:017x}",
                name=f"{rnd.choice(families)}-{created:%Y-%m-%d-%H%M}",
                state=rnd.choice(STATES),
                creation_date=created,
                region=REGION,
                tags={"amibot:keep": "1"} if rnd.random() < 0.02 else {},
                snapshots=(Snapshot(f"snap-{n}", 8), Snapshot(f"snap-{rnd.randrange(count)}", 8)),
                deregistration_protection=rnd.random() < 0.01,
            )
        )
    in_use: dict[str, tuple[Use, ...]] = {
        images[i].image_id: (Use(UseKind.INSTANCE, f"i-{i:x}", "running"),)
        for i in rnd.sample(range(count), used)
    }
    return images, in_use


def test_plan_for_10000_images_covers_every_image() -> None:
    """A large account plans completely (its CPU time is measured by bench/prune_scale.py, not here)."""
    images, in_use = big_inventory()
    p = plan(images, in_use, POLICY, NOW)
    assert len(p.items) == 10_000
    assert p.to_prune and p.to_keep
    assert not {i.image.image_id for i in p.to_prune} & set(in_use)
