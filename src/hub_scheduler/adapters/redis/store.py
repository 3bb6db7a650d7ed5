"""The queue, dead letters and run history on Redis (or fakeredis, for ``memory://``).

Every state change is one Lua script, so it is atomic and costs one round trip. Time comes
from the `Clock` port and is passed into the scripts, so leases, delays and retention follow
the fake clock in tests exactly as they follow real time in production.
"""

from __future__ import annotations

import builtins
import json
import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

import attrs
from redis.exceptions import RedisError

from hub_scheduler.adapters.redis.codec import (
    decode_run,
    encode_error,
    encode_trace_context,
    from_ms,
    loads,
    to_ms,
    to_text,
)
from hub_scheduler.adapters.redis.connection import Durability, RedisClient
from hub_scheduler.adapters.redis.keys import Keys
from hub_scheduler.adapters.redis.scripts import Scripts
from hub_scheduler.domain.errors import (
    BackendUnavailableError,
    DeadLetterNotFoundError,
    IllegalTransitionError,
    InvalidCursorError,
    NewerLayoutError,
    RunNotFoundError,
)
from hub_scheduler.domain.limits import JobLimits, OnDuplicate
from hub_scheduler.domain.model import (
    DEFAULT_PAYLOAD_LIMIT,
    FINAL_STATES,
    RARE_FINAL_STATES,
    Priority,
    Run,
    RunState,
    TraceContext,
    encode_payload,
    new_run_id,
)
from hub_scheduler.domain.ports import (
    Claim,
    Clock,
    Enqueued,
    EnqueueRequest,
    Exchange,
    Failed,
    Outcome,
    Page,
    QueueSnapshot,
)
from hub_scheduler.domain.retry import GiveUp

logger = logging.getLogger("hub_scheduler.redis")
#: Runs per enqueue script call: big batches amortise round trips, small ones keep Redis
#: responsive to other clients while a bulk enqueue is running.
ENQUEUE_BATCH = 500
#: The version of the data layout in Redis this code writes (keys.py `layout`); older
#: layouts are moved by the first process that uses the hub (lua/layout_begin.lua). Layout 3
#: archives finished runs (codec.py) and keeps job history entries short (lua/common.lua
#: index_run_in); it reads layout 2's data as it is, so nothing moves, but processes of
#: layout 2 would not read layout 3's: they refuse to start on it.
LAYOUT_VERSION = 3
#: Entries of an older layout's index moved per script call, and how long a process that
#: moves them may go silent before another takes the move over.
LAYOUT_MOVE_BATCH = 2000
LAYOUT_LOCK = timedelta(seconds=30)
#: Index entries looked at per clean script call.
CLEAN_BATCH = 500
_ENTRY_ID = re.compile(r"\d{1,16}-\d{1,20}")
_MS = timedelta(milliseconds=1)
#: What `cancel` accepts: waiting runs are cancelled, active ones get a cancel request.
_CANCELLABLE = frozenset(
    {RunState.QUEUED, RunState.DELAYED, RunState.RETRY_SCHEDULED, RunState.ACTIVE}
)


@attrs.define
class RedisStore:
    """What every Redis adapter of one hub shares: the client, key names, scripts, clock."""

    client: RedisClient
    clock: Clock
    keys: Keys = attrs.field(factory=Keys)
    retention: timedelta = timedelta(days=90)
    payload_limit: int = DEFAULT_PAYLOAD_LIMIT
    durability: Durability = attrs.field(factory=Durability)
    scripts: Scripts = attrs.field(init=False)
    _layout_ready: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        self.scripts = Scripts(self.client, self.durability)

    async def ensure_layout(self) -> None:
        """Bring the hub's keys to `LAYOUT_VERSION` once per process. The first process to
        find an older layout moves it, `LAYOUT_MOVE_BATCH` runs per script call (Redis
        answers others in between), while the others go on: new runs are indexed in the
        new layout meanwhile (lua/layout_begin.lua)."""
        if self._layout_ready:
            return
        try:
            await self._move_layout()
        except RedisError as exc:
            raise BackendUnavailableError("layout", type(exc).__name__) from exc
        self._layout_ready = True

    async def _move_layout(self) -> None:
        owner, lock_ms = secrets.token_hex(8), LAYOUT_LOCK // _MS

        async def call(script: str, *args: Any) -> Any:
            return await self.scripts(script, self.keys.history, self.keys.base, *args)

        begun = await call("layout_begin", LAYOUT_VERSION, owner, lock_ms)
        if to_text(begun[0]) == "newer":
            raise NewerLayoutError(
                f"Redis prefix {self.keys.prefix}", int(begun[1]), LAYOUT_VERSION
            )
        if to_text(begun[0]) != "move":
            return
        total, offset = int(begun[1]), 0
        logger.info("moving the history index of %d runs to data layout %d", total, LAYOUT_VERSION)
        while True:
            read = int(await call("layout_move", owner, lock_ms, offset, LAYOUT_MOVE_BATCH))
            if read < 0:
                return  # the lock expired and another process took the move over
            offset += read
            if read < LAYOUT_MOVE_BATCH:
                break
        if int(await call("layout_finish", owner, LAYOUT_VERSION)) > 0:
            logger.info("moved the history index of %d runs to data layout %d", offset,
                        LAYOUT_VERSION)  # fmt: skip

    def now_ms(self) -> int:
        """The clock's now, in epoch milliseconds."""
        return to_ms(self.clock.now())

    async def run(self, script: str, *args: Any) -> Any:
        """Run a script with the prefix as its first argument; Redis errors become domain ones."""
        if not self._layout_ready:
            await self.ensure_layout()
        try:
            return await self.scripts(script, self.keys.history, self.keys.base, *args)
        except RedisError as exc:
            raise BackendUnavailableError(script, type(exc).__name__) from exc

    async def load_run(self, run_id: str) -> tuple[Run, int] | None:
        """A run and its token, or None when there is no such run."""
        [flat] = await self.run("load_runs", run_id)
        return decode_run(run_id, flat_fields(flat)) if flat else None

    async def load_runs(self, run_ids: Sequence[str]) -> list[Run]:
        """The runs that still exist among `run_ids`, in the same order: one script call reads
        each from its hash or, once it ended, the archive (codec.py)."""
        if not run_ids:
            return []
        replies = await self.run("load_runs", *run_ids)
        return [
            decode_run(run_id, flat_fields(flat))[0]
            for run_id, flat in zip(run_ids, replies, strict=True)
            if flat
        ]

    async def page_desc(
        self, key: str, cursor: str | None, limit: int
    ) -> tuple[list[str], str | None]:
        """Members of sorted set `key`, highest score first, `limit` at a time.

        The cursor is ``"<score>:<members already returned at that score>"``, which stays
        correct when many members share a score (a bulk enqueue in one millisecond).
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        top, skip = "+inf", 0
        if cursor:
            score, _, seen = cursor.partition(":")
            # Scores are epoch milliseconds, counts fit a page: longer numbers were never
            # handed out (and would make Redis answer with an error, not a page).
            if not (
                score.lstrip("-").isdigit()
                and seen.isdigit()
                and len(score) <= 16
                and len(seen) <= 9
            ):
                raise InvalidCursorError(cursor)
            top, skip = score, int(seen)
        try:
            rows = cast(
                "list[tuple[bytes, float]]",
                await self.client.zrevrangebyscore(
                    key, top, "-inf", start=skip, num=limit + 1, withscores=True
                ),
            )
        except RedisError as exc:
            raise BackendUnavailableError("list", type(exc).__name__) from exc
        members = [to_text(member) for member, _ in rows[:limit]]
        if len(rows) <= limit:
            return members, None
        last_score = rows[limit - 1][1]
        same = sum(1 for _, score in rows[:limit] if score == last_score)
        if cursor and float(top) == last_score:
            same += skip
        return members, f"{last_score:.0f}:{same}"

    async def history_page(
        self, key: str, cursor: str | None, limit: int
    ) -> tuple[list[Run], str | None]:
        """The runs of history stream `key` that still exist, newest entry first, `limit`
        entries at a time, in one script call; the cursor is the id of the last entry read."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if cursor is not None and not _ENTRY_ID.fullmatch(cursor):
            raise InvalidCursorError(cursor)
        rows, last = await self.run("history_page", key, f"({cursor}" if cursor else "+", limit)
        runs = [decode_run(to_text(run_id), flat_fields(flat))[0] for run_id, flat in rows]
        return runs, to_text(last) if last else None


def flat_fields(flat: Sequence[bytes]) -> dict[str, str]:
    """A record's fields from a flat ``[name, value, ...]`` reply (lua/common.lua run_flat)."""
    return {to_text(flat[i]): to_text(flat[i + 1]) for i in range(0, len(flat), 2)}


def _outcome_args(claim: Claim, outcome: Outcome, now: datetime) -> list[str | int]:
    run_id, token = claim.run.id, str(claim.token)
    if not isinstance(outcome, Failed):
        return [run_id, token, "s", "", 0, 0]
    error = encode_error(outcome.error)
    if isinstance(outcome.decision, GiveUp):
        return [run_id, token, "d", error, 0, 0]
    due = to_ms(now + outcome.decision.delay)
    return [run_id, token, "r", error, due, outcome.decision.attempt]


def _claims(replies: Sequence[bytes], lease_until: datetime) -> list[Claim]:
    """Claims from the scripts' run records (one JSON object each, see ``run_json``)."""
    claims = []
    for text in replies:
        fields: dict[str, str] = loads(text)
        run, token = decode_run(fields.pop("id"), fields)
        claims.append(Claim(run, token, lease_until))
    return claims


@attrs.define
class RedisJobQueue:
    """`JobQueue` on Redis: priority lists, a lease sorted set and pause flags."""

    store: RedisStore

    async def enqueue(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """See `JobQueue.enqueue`; batches of `ENQUEUE_BATCH` runs per round trip."""
        now = self.store.now_ms()
        retention_ms = self.store.retention // timedelta(milliseconds=1)
        encoded: list[list[str]] = []
        for request in requests:
            payload = encode_payload(request.job, request.payload, self.store.payload_limit)
            key = request.idempotency_key or ""
            window = max(1, request.idempotency_window // timedelta(milliseconds=1))
            unique = {None: "", OnDuplicate.KEEP: "k", OnDuplicate.REPLACE: "r"}[
                request.on_duplicate
            ]
            run = [
                new_run_id(),
                request.job,
                str(int(request.priority)),
                str(to_ms(request.run_at)) if request.run_at else "0",
                request.trigger.value,
                payload,
                request.schedule_id or "",
                str(to_ms(request.slot)) if request.slot else "",
                key,
                str(window),
                request.origin_run_id or "",
                unique,
                encode_trace_context(request.trace_context),
            ]
            if request.workflow_id is not None:
                run += [request.workflow_id, request.workflow_step or ""]
            encoded.append(run)
        answers = [Enqueued(run[0]) for run in encoded]
        for start in range(0, len(encoded), ENQUEUE_BATCH):
            batch = json.dumps(encoded[start : start + ENQUEUE_BATCH], ensure_ascii=False)
            repeats = await self.store.run("enqueue", now, batch, retention_ms)
            for i in range(0, len(repeats), 2):
                answers[start + int(repeats[i])] = Enqueued(to_text(repeats[i + 1]), created=False)
        return answers

    async def exchange(
        self,
        worker: str,
        settled: Sequence[tuple[Claim, Outcome]],
        want: int,
        lease: timedelta,
    ) -> Exchange:
        """See `JobQueue.exchange`."""
        now = self.store.clock.now()
        args: list[str | int] = []
        for claim, outcome in settled:
            args.extend(_outcome_args(claim, outcome, now))
        lease_ms = lease // timedelta(milliseconds=1)
        retention_ms = self.store.retention // timedelta(milliseconds=1)
        applied, claimed, next_due = await self.store.run(
            "step", to_ms(now), lease_ms, worker, want, retention_ms, len(settled), *args
        )
        return Exchange(
            applied=tuple(bool(flag) for flag in applied),
            claims=tuple(_claims(claimed, now + lease)),
            next_due=from_ms(next_due) if next_due else None,
        )

    async def claim(self, worker: str, limit: int, lease: timedelta) -> list[Claim]:
        """See `JobQueue.claim`."""
        return list((await self.exchange(worker, (), limit, lease)).claims)

    async def keep_first_attempt_trace(self, claim: Claim, context: TraceContext) -> None:
        """See `AttemptTraces.keep_first_attempt_trace`."""
        text = encode_trace_context(context)
        await self.store.run("attempt_trace", claim.run.id, str(claim.token), text)

    async def finish(self, claim: Claim, outcome: Outcome) -> Run | None:
        """See `JobQueue.finish`."""
        result = await self.exchange(claim.run.worker or "", [(claim, outcome)], 0, timedelta(0))
        if not result.applied[0]:
            return None
        loaded = await self.store.load_run(claim.run.id)
        return loaded[0] if loaded else None

    async def renew(self, worker: str, claims: Sequence[Claim], lease: timedelta) -> list[str]:
        """See `JobQueue.renew`."""
        if not claims:
            return []
        args = [value for c in claims for value in (c.run.id, str(c.token))]
        lease_ms = lease // timedelta(milliseconds=1)
        lost = await self.store.run("renew", self.store.now_ms(), lease_ms, worker, *args)
        return [to_text(run_id) for run_id in lost]

    async def hand_back(self, claims: Sequence[Claim], *, interrupted: bool = False) -> None:
        """See `JobQueue.hand_back`."""
        if claims:
            args = [value for c in claims for value in (c.run.id, str(c.token))]
            flag = "1" if interrupted else "0"
            await self.store.run("hand_back", self.store.now_ms(), flag, *args)

    async def reap(
        self, max_stalls: int, lease: timedelta, limit: int = 100
    ) -> tuple[list[str], list[Claim]]:
        """Requeue runs whose lease expired; runs over `max_stalls` are returned as claims
        held by the reaper (fresh token and lease) for the caller to fail."""
        now = self.store.clock.now()
        lease_ms = lease // timedelta(milliseconds=1)
        requeued, held = await self.store.run("reap", to_ms(now), lease_ms, max_stalls, limit)
        return [to_text(r) for r in requeued], _claims(held, now + lease)

    async def cancel(self, run_id: str) -> Run:
        """See `JobQueue.cancel`."""
        before = to_text(await self.store.run("cancel", run_id, self.store.now_ms()))
        if not before:
            raise RunNotFoundError(run_id)
        if before not in _CANCELLABLE:
            raise IllegalTransitionError(run_id, before, RunState.CANCELLED.value)
        loaded = await self.store.load_run(run_id)
        if loaded is None:
            raise RunNotFoundError(run_id)
        return loaded[0]

    async def set_limits(self, limits: Mapping[str, JobLimits]) -> None:
        """See `JobQueue.set_limits`: per job, its max_running ('' for none) and its rate as
        ``"<count> <window ms> <payload field or nothing>"`` ('' for none)."""
        args: list[str] = []
        for job, limit in sorted(limits.items()):
            rate = limit.rate
            spec = "" if rate is None else (
                f"{rate.count} {rate.per // _MS} {rate.key or ''}".rstrip()
            )  # fmt: skip
            args += [job, str(limit.max_running or ""), spec]
        if args:
            await self.store.run("set_limits", *args)

    async def cancel_requests(self, claims: Sequence[Claim]) -> list[str]:
        """See `JobQueue.cancel_requests`."""
        if not claims:
            return []
        asked = await self.store.run("cancel_requests", *(c.run.id for c in claims))
        return [to_text(run_id) for run_id in asked]

    async def settle_cancelled(self, claim: Claim) -> Run | None:
        """See `JobQueue.settle_cancelled`."""
        done = await self.store.run(
            "settle_cancelled", self.store.now_ms(), claim.run.id, str(claim.token)
        )
        if not done:
            return None
        loaded = await self.store.load_run(claim.run.id)
        return loaded[0] if loaded else None

    async def pause(self, job: str | None = None) -> None:
        """See `JobQueue.pause`."""
        try:
            if job is None:
                await self.store.client.set(self.store.keys.paused, "1")
            else:
                await self.store.client.sadd(self.store.keys.paused_jobs, job)
        except RedisError as exc:
            raise BackendUnavailableError("pause", type(exc).__name__) from exc

    async def resume(self, job: str | None = None) -> None:
        """See `JobQueue.resume`."""
        if job is not None:
            await self.store.run("resume_job", job)
            return
        await self.store.run("resume_queue")

    async def paused_among(self, jobs: Sequence[str]) -> frozenset[str]:
        """See `JobQueue.paused_among`: one SMISMEMBER."""
        if not jobs:
            return frozenset()
        try:
            flags = await self.store.client.smismember(self.store.keys.paused_jobs, list(jobs))
        except RedisError as exc:
            raise BackendUnavailableError("paused jobs", type(exc).__name__) from exc
        return frozenset(job for job, flag in zip(jobs, flags, strict=True) if flag)

    async def snapshot(self) -> QueueSnapshot:
        """See `JobQueue.snapshot`."""
        now = self.store.clock.now()
        reply = await self.store.run("snapshot")
        depth, delayed, active, dead, paused, paused_jobs, parked, oldest, by_worker, done = reply
        succeeded, failed, gave_up = (int(n or 0) for n in done)
        return QueueSnapshot(
            depth={p: int(n) for p, n in zip(sorted(Priority), depth, strict=True)},
            delayed=int(delayed),
            active=int(active),
            dead=int(dead),
            paused=bool(paused),
            paused_jobs=frozenset(to_text(j) for j in paused_jobs),
            parked=int(parked),
            oldest_waiting=now - from_ms(oldest) if oldest else None,
            succeeded=succeeded,
            failed=failed + gave_up,
            gave_up=gave_up,
            active_by_worker={
                to_text(by_worker[i]): int(by_worker[i + 1]) for i in range(0, len(by_worker), 2)
            },
        )


@attrs.define
class RedisDeadLetters:
    """`DeadLetters` on Redis: a sorted set of dead run ids, scored by time of death."""

    store: RedisStore

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[Run]:
        """See `DeadLetters.list`."""
        ids, next_cursor = await self.store.page_desc(self.store.keys.dead, cursor, limit)
        return Page(tuple(await self.store.load_runs(ids)), next_cursor)

    async def get(self, run_id: str) -> Run:
        """See `DeadLetters.get`."""
        try:
            score = await self.store.client.zscore(self.store.keys.dead, run_id)
        except RedisError as exc:
            raise BackendUnavailableError("dead letter", type(exc).__name__) from exc
        loaded = await self.store.load_run(run_id) if score is not None else None
        if loaded is None:
            raise DeadLetterNotFoundError(run_id)
        return loaded[0]

    async def retry(self, run_id: str) -> str:
        """See `DeadLetters.retry`."""
        new_ids = await self._retry([run_id])
        if not new_ids[0]:
            raise DeadLetterNotFoundError(run_id)
        return new_ids[0]

    async def retry_all(self) -> builtins.list[str]:
        """See `DeadLetters.retry_all`."""
        new_ids: builtins.list[str] = []
        while True:
            ids = await self._oldest(ENQUEUE_BATCH)
            if not ids:
                return new_ids
            new_ids.extend(i for i in await self._retry(ids) if i)

    async def delete(self, run_id: str) -> None:
        """See `DeadLetters.delete`."""
        if not await self._delete([run_id]):
            raise DeadLetterNotFoundError(run_id)

    async def purge(self) -> int:
        """See `DeadLetters.purge`."""
        total = 0
        while ids := await self._oldest(ENQUEUE_BATCH):
            total += await self._delete(ids)
        return total

    async def _oldest(self, count: int) -> builtins.list[str]:
        try:
            ids = cast(
                "builtins.list[bytes]",
                await self.store.client.zrange(self.store.keys.dead, 0, count - 1),
            )
        except RedisError as exc:
            raise BackendUnavailableError("dead letters", type(exc).__name__) from exc
        return [to_text(i) for i in ids]

    async def _retry(self, run_ids: Sequence[str]) -> builtins.list[str]:
        args = [value for i in run_ids for value in (i, new_run_id())]
        reply = await self.store.run("dead_retry", self.store.now_ms(), *args)
        return [to_text(i) for i in reply]

    async def _delete(self, run_ids: Sequence[str]) -> int:
        return int(await self.store.run("dead_delete", *run_ids))


@attrs.define
class RedisRunHistory:
    """`RunHistory` on Redis: run hashes indexed by enqueue time, overall and per job."""

    store: RedisStore
    #: Pages of the index read at most per `list` call when filtering by state.
    max_scan_pages: int = 20

    async def get(self, run_id: str) -> Run:
        """See `RunHistory.get`."""
        loaded = await self.store.load_run(run_id)
        if loaded is None:
            raise RunNotFoundError(run_id)
        return loaded[0]

    async def list(
        self,
        *,
        job: str | None = None,
        states: frozenset[RunState] | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Run]:
        """See `RunHistory.list`. Newest first: by enqueue time, or, for ``dead`` or
        ``cancelled`` runs alone, by when they ended (their own index, so a few such runs
        among millions are found at once). Other `states` filter the history as it is read,
        at most `max_scan_pages` index pages per call; a short page with a cursor means "more
        may follow"."""
        keys = self.store.keys
        indexed = states is not None and len(states) == 1 and states <= RARE_FINAL_STATES
        if indexed:
            key = keys.state_history(next(iter(cast("frozenset[RunState]", states))).value)
        else:
            key = keys.job_history(job) if job else keys.history
        found: list[Run] = []
        for _ in range(self.max_scan_pages):
            runs, cursor = await self.store.history_page(key, cursor, limit - len(found))
            found.extend(
                r for r in runs
                if (states is None or r.state in states) and (job is None or r.job == job)
            )  # fmt: skip
            if cursor is None or len(found) >= limit:
                break
        return Page(tuple(found), cursor)

    async def latest(self, jobs: Sequence[str]) -> dict[str, Run]:
        """See `RunHistory.latest`: one script call."""
        if not jobs:
            return {}
        reply = await self.store.run("latest_runs", *jobs)
        found: dict[str, Run] = {}
        for job, (run_id, flat) in zip(jobs, reply, strict=True):
            if flat:
                found[job] = decode_run(to_text(run_id), flat_fields(flat))[0]
        return found

    async def clean(self, older_than: datetime, states: frozenset[RunState] | None = None) -> int:
        """See `RunHistory.clean`."""
        allowed = (states or FINAL_STATES) & FINAL_STATES
        csv = "," + ",".join(sorted(s.value for s in allowed)) + ","
        try:
            jobs = [to_text(j) for j in await self.store.client.smembers(self.store.keys.jobs)]
        except RedisError as exc:
            raise BackendUnavailableError("clean", type(exc).__name__) from exc
        cutoff = to_ms(older_than)
        removed = 0
        for job in sorted(jobs):
            after = "-"
            while True:
                gone, scanned, last = await self.store.run(
                    "clean", job, cutoff, CLEAN_BATCH, csv, after
                )
                removed += int(gone)
                if int(scanned) < CLEAN_BATCH:
                    break
                after = to_text(last)  # past the entries that stay
        for state in RARE_FINAL_STATES:
            after = "-"
            while True:
                _, scanned, last = await self.store.run(
                    "clean_states", state.value, cutoff, CLEAN_BATCH, after
                )
                if int(scanned) < CLEAN_BATCH:
                    break
                after = to_text(last)
        return removed
