"""The one composition root: builds every service from Settings and wires them together.

Nothing else constructs clients or stores. Tests and `amibot demo` pass their own peers
(a Redis client, a Slack WebClient, AWS clients) and get exactly the production wiring.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot import store
from bot.access import Access
from bot.approval_messages import deregister_summary
from bot.approving import ApprovalSettings, Approving
from bot.auditing import Auditing
from bot.aws.clients import AwsClients
from bot.aws.ec2 import Ec2
from bot.commands import (
    Audit,
    Copy,
    Create,
    CreateModal,
    Deregister,
    Describe,
    GrammarContext,
    List,
    Protect,
    Prune,
    PruneSchedule,
    Status,
    Unprotect,
)
from bot.config import Settings
from bot.context import Caller, Reply
from bot.copying import Copying, CopySettings
from bot.create_form import CreateForm
from bot.creating import CreateSettings, Creating
from bot.deregistering import Deregistering, DeregisterSettings
from bot.describing import Describing
from bot.dispatch import CommandService, Route
from bot.home import HomeService
from bot.ids import new_token
from bot.keeping import NOTICE_TASK, Keeping, KeepSettings
from bot.keys import Keys
from bot.listing import Listing
from bot.messages import OutboxItem
from bot.metrics import Metrics
from bot.models import JobKind
from bot.outbox import Outbox
from bot.protecting import Protecting
from bot.pruning import PruneSettings, Pruning, next_run, prune_summary, schedule_text
from bot.request_guard import RequestGuard
from bot.roles import REFRESH_S, RoleDirectory
from bot.runner import Runner
from bot.scheduler import Scheduler
from bot.status import StatusService
from bot.store.approvals import ApprovalStore
from bot.store.audit import AuditLog
from bot.store.effects import EffectWriter
from bot.store.groups import GroupCache
from bot.store.jobs import JobStore
from bot.store.leases import Leases
from bot.store.offers import OfferStore
from bot.store.outbox import OutboxStore
from bot.store.wakeups import Wakeups
from bot.store.work import WorkStore
from bot.tasks import SCHEDULER, Tasks
from bot.tracker import Tracker, TrackPolicy
from bot.worker import TRIM_AFTER_JOBS, release_freed_memory

log = logging.getLogger(__name__)


@dataclass
class Services:
    """What the Slack handlers may call."""

    settings: Settings
    commands: CommandService
    approving: Approving
    access: Access
    metrics: Metrics
    healthy: Callable[[], bool]
    create_form: CreateForm
    home: HomeService
    keeping: Keeping
    requests: RequestGuard


@dataclass
class Runtime:
    """The built bot: the Bolt app, its services, and the background work of this process."""

    bolt: App
    services: Services
    scheduler: Scheduler
    runner: Runner
    tracker: Tracker
    outbox: Outbox
    jobs: JobStore
    audit: AuditLog
    redis: Any
    pruning: Pruning
    wakeups: Wakeups
    _stops: list[Callable[[], None]] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start_background(self) -> None:
        """Start this process's recurring work (and listen for wake-ups from other processes)."""
        self.scheduler.start()
        self.wakeups.listen(self.scheduler.wake, self._stopping)

    def stop(self) -> None:
        self._stopping.set()
        self.scheduler.shutdown()
        self.runner.shutdown(wait=True)
        for stop in self._stops:
            try:
                stop()
            except Exception:  # best effort on the way out
                log.debug("stop hook failed", exc_info=True)


def slack_client(settings: Settings, *, retries: bool, timeout: int = 10) -> WebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    handlers = (
        [RateLimitErrorRetryHandler(max_retry_count=2), ConnectionErrorRetryHandler()] if retries else []
    )
    return WebClient(token=token, base_url=settings.slack_api_url, timeout=timeout, retry_handlers=handlers)


def build(
    settings: Settings,
    *,
    redis_client: Any = None,
    aws_clients: AwsClients | None = None,
    clock: Callable[[], float] = time.time,
    verify_token: bool = True,
) -> Runtime:
    metrics = Metrics()
    keys = Keys(settings.amibot_key_prefix)
    redis = redis_client if redis_client is not None else store.connect(settings.redis_url)
    scheduler = Scheduler()
    effects = EffectWriter(
        redis, keys, on_notices=lambda: scheduler.wake("outbox"), on_work=lambda: scheduler.wake("work")
    )
    jobs = JobStore(redis, keys, effects)
    work = WorkStore(redis, keys, effects)
    audit = AuditLog(redis, keys, effects)
    leases = Leases(redis, keys)
    outbox_store = OutboxStore(redis, keys, effects)
    aws = aws_clients or AwsClients(settings.amibot_accounts, on_call=metrics.aws_call)
    ec2 = Ec2(aws)
    lease_s = settings.amibot_lease.total_seconds()
    poll_s = settings.amibot_poll_interval

    creating = Creating(
        jobs, ec2, CreateSettings(max_wait=settings.amibot_max_wait.total_seconds()), clock=clock
    )
    track_policy = TrackPolicy(settings.amibot_notfound_grace.total_seconds(), settings.amibot_notify_channel)
    tracker = Tracker(jobs, ec2, track_policy, clock=clock)
    copying = Copying(
        jobs,
        ec2,
        CopySettings(max_wait=settings.amibot_max_wait.total_seconds(), retry_base=poll_s),
        track_policy,
        clock=clock,
    )
    approvals = ApprovalStore(redis, keys, effects)
    status = StatusService(jobs, approvals, max_wait=settings.amibot_max_wait.total_seconds(), clock=clock)
    tasks = Tasks(work, clock=clock)
    roles = RoleDirectory(
        settings.amibot_approvers,
        settings.amibot_admins,
        allow_self_approval=settings.amibot_allow_self_approval,
        cache=GroupCache(redis, keys),
        # looked up on the ack path of a click: fail fast (the scheduled refresh keeps it warm)
        slack=slack_client(settings, retries=False, timeout=1),
        clock=clock,
    )
    deregistering = Deregistering(
        tasks,
        approvals,
        jobs,
        ec2,
        DeregisterSettings(
            approval_channel=settings.approval_channel,
            approval_ttl=settings.amibot_approval_ttl.total_seconds(),
            protect_tag=settings.amibot_protect_tag,
        ),
        clock=clock,
    )
    protecting = Protecting(tasks, ec2, settings.amibot_protect_tag)
    prune_channel = settings.approval_channel
    pruning = Pruning(
        tasks,
        approvals,
        jobs,
        ec2,
        PruneSettings(
            regions=settings.regions,
            account_regions={alias: tuple(a.regions or ()) for alias, a in settings.amibot_accounts.items()},
            retention=settings.retention,
            keep_last=settings.amibot_keep_last,
            protect_tag=settings.amibot_protect_tag,
            price_per_gib_month=settings.amibot_price_per_gib_month,
            approval_channel=prune_channel,
            approval_ttl=settings.amibot_approval_ttl.total_seconds(),
        ),
        clock=clock,
    )
    keeping = Keeping(
        tasks,
        OfferStore(redis, keys),
        pruning,
        roles,
        KeepSettings(lead_s=settings.amibot_prune_notice.total_seconds(), channel=prune_channel),
        clock=clock,
    )
    approving = Approving(
        approvals,
        outbox_store,
        roles,
        summaries={"deregister": deregister_summary, "prune": prune_summary},
        executors={"deregister": deregistering.job_for, "prune": pruning.job_for},
        settings=ApprovalSettings(reminder_interval=settings.amibot_reminder_interval.total_seconds()),
        clock=clock,
    )

    def on_delivered(item: OutboxItem, now: float) -> None:
        if item.created_at:
            metrics.notice_delay.observe(max(0.0, now - item.created_at))

    outbox = Outbox(
        outbox_store,
        leases,
        slack_client(settings, retries=False),
        lease_s=lease_s,
        clock=clock,
        on_slack_call=metrics.slack_call,
        on_delivered=on_delivered,
        hooks={"approval": approving.message_landed},
    )

    def run_job(job_id: str) -> float | None:
        job = jobs.get(job_id)
        if job is None:
            return None
        if job.kind is JobKind.CREATE:
            return creating.start(job)
        if job.kind is JobKind.COPY:
            return copying.start(job)
        if job.kind is JobKind.DEREGISTER:
            return deregistering.execute(job)
        if job.kind is JobKind.PRUNE:
            return pruning.execute(job)
        log.error("no runner for job kind", extra={"job": job_id, "kind": str(job.kind)})
        return None

    runner = Runner(
        work,
        leases,
        {"job": run_job, "task": tasks.run},
        workers=settings.amibot_workers,
        lease_s=lease_s,
        clock=clock,
    )

    grammar = GrammarContext(
        allowed_regions=settings.regions,
        accounts=frozenset(settings.amibot_accounts),
        account_regions={alias: tuple(a.regions or ()) for alias, a in settings.amibot_accounts.items()},
    )
    auditing = Auditing(audit)
    listing = Listing(tasks, ec2, clock=clock)
    describing = Describing(tasks, ec2, settings.amibot_protect_tag, clock=clock)
    create_form = CreateForm(grammar, creating, ec2, outbox_store, clock=clock)
    routes: dict[type, Route] = {
        Create: creating.request,
        Copy: copying.request,
        Status: status.show,
        Deregister: deregistering.request,
        Protect: protecting.request,
        Unprotect: protecting.request,
        Audit: auditing.show,
        List: listing.request,
        Describe: describing.request,
        CreateModal: create_form.open,
        Prune: pruning.request,
        PruneSchedule: lambda cmd, caller: Reply(
            schedule_text(
                settings.amibot_prune_schedule,
                settings.amibot_prune_notice,
                datetime.now(UTC),
                pruning.policy(),
                channel=prune_channel,
            )
        ),
    }
    commands = CommandService(grammar, routes, roles)
    services = Services(
        settings=settings,
        commands=commands,
        approving=approving,
        access=Access(settings.amibot_team_id, frozenset(settings.amibot_allowed_channels)),
        metrics=metrics,
        healthy=lambda: store.ping(redis),
        create_form=create_form,
        home=HomeService(jobs, approvals, clock=clock),
        keeping=keeping,
        requests=RequestGuard(
            settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None,
            leases.once,
        ),
    )
    metrics.watch("amibot_jobs", "Jobs by kind and state", ["kind", "state"], jobs.counts)
    metrics.watch(
        "amibot_outbox_pending", "Messages waiting in the outbox", [], lambda: {(): outbox_store.size()}
    )
    metrics.watch(
        "amibot_approvals_pending",
        "Approvals waiting for a decision",
        [],
        lambda: {(): approvals.pending_count()},
    )
    metrics.watch("amibot_work_due", "Work items waiting for a worker", [], lambda: {(): work.count()})

    tracker_token = new_token()
    tracker_lease_s = max(lease_s, 3 * poll_s)

    def poll_if_leader() -> None:
        if leases.hold("tracker", tracker_token, tracker_lease_s):
            metrics.polls.inc()
            if tracker.poll().jobs >= TRIM_AFTER_JOBS:
                release_freed_memory()  # a poll of many jobs is a large, short-lived allocation

    scheduler.every("work", min(0.5, poll_s), runner.run_due)
    scheduler.every("heartbeat", max(0.05, lease_s / 3), runner.renew)
    scheduler.every("tracker", poll_s, poll_if_leader, first_in=min(1.0, poll_s))
    scheduler.every("outbox", min(1.0, poll_s), outbox.drain)
    sweep_token = new_token()
    reminder_s = settings.amibot_reminder_interval.total_seconds()
    sweep_s = min(60.0, max(0.2, min(reminder_s, settings.amibot_approval_ttl.total_seconds()) / 4))

    def sweep_if_leader() -> None:
        if leases.hold("approvals-sweep", sweep_token, max(lease_s, 2 * sweep_s)):
            approving.sweep()

    scheduler.every("approvals", sweep_s, sweep_if_leader, first_in=sweep_s)
    scheduler.every("user-groups", REFRESH_S, roles.refresh)
    crontab = settings.amibot_prune_schedule
    if crontab and prune_channel:
        schedule_prune(
            scheduler,
            leases,
            tasks,
            pruning,
            crontab,
            prune_channel,
            settings.amibot_prune_notice,
            accounts=[None, *settings.amibot_accounts],
        )
    elif crontab:
        log.error("AMIBOT_PRUNE_SCHEDULE is set but no approval or notify channel is: scheduled prune is off")

    bolt = build_bolt(settings, services, verify_token=verify_token)
    runtime = Runtime(
        bolt=bolt,
        services=services,
        scheduler=scheduler,
        runner=runner,
        tracker=tracker,
        outbox=outbox,
        jobs=jobs,
        audit=audit,
        redis=redis,
        pruning=pruning,
        wakeups=Wakeups(redis, keys),
    )

    def release_tracker() -> None:
        leases.release("tracker", tracker_token)

    runtime._stops.append(release_tracker)
    runtime._stops.append(create_form.close)
    return runtime


def build_bolt(settings: Settings, services: Services, *, verify_token: bool) -> App:
    from handlers import register_all

    # HTTP mode's RequestGuard (bot/server.py) verifies signatures before Bolt; Socket Mode has none
    app = App(
        client=slack_client(settings, retries=True),
        signing_secret="",
        request_verification_enabled=False,
        token_verification_enabled=verify_token,
        process_before_response=True,
        logger=logging.getLogger("amibot.bolt"),
    )
    register_all(app, services)
    return app


def schedule_prune(
    scheduler: Scheduler,
    leases: Leases,
    tasks: Tasks,
    pruning: Pruning,
    crontab: str,
    channel: str,
    notice: timedelta,
    *,
    accounts: Sequence[str | None] = (None,),
) -> None:
    """The scheduled prune and its notice, for the own account and every configured one (a plan
    and a notice each), each claimed once per tick across replicas."""
    amibot = Caller(user=SCHEDULER, channel=channel)

    def run(fire: datetime) -> None:
        for account in accounts:
            if leases.once("prune-tick", f"{fire.isoformat()}|{account or ''}", ttl_s=86400):
                pruning.submit(amibot, account, None, None, None, dry_run=False)

    def warn() -> None:
        now = datetime.now(UTC)
        nxt = next_run(crontab, now)
        if nxt is None or now < nxt - notice:
            return
        for account in accounts:
            claim = f"{nxt.isoformat()}|{account or ''}"
            if leases.once("prune-notice", claim, notice.total_seconds() + 86400):
                tasks.submit(NOTICE_TASK, amibot, {"run_at": nxt.isoformat(), "account": account})

    scheduler.cron("prune", crontab, run)
    scheduler.every("prune-notice", min(3600.0, max(0.2, notice.total_seconds() / 4)), warn)
