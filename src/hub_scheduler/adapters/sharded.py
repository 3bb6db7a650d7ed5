"""One hub over several backends: `ShardedBackend`, the whole `Backend` port on N shards.

A hub on Redis keeps all its keys under one hash tag, so on a Redis Cluster one hub is one
slot, served by one master. ``?shards=N`` on any backend URL (``redis+cluster://h1:7000?
shards=6``, ``memory://?shards=3``, ``postgresql://...?shards=2``) opens N inner backends of
that URL under the prefixes `shard_prefixes` names, and this module bundles them into one
backend, written against the ports only, so the worker, the scheduler, the admin service,
the API and the CLI get sharding from the URL and nothing else.

Placement (`shard_of`): a job's runs, schedules, statistics and pause flag live on shard
``crc32(job) % N``, the same in every process. The audit log, presence and shared values live
on shard 0, the home shard. Operations by run or schedule id ask every shard at once and take
the answer of the one that has it. Listings across shards are merged newest first under a
composite cursor (`MergedListing`). What does not hold across shards: one claim takes runs from the
shards in turn (rotating the first each call), so priority and FIFO order hold within a
shard (and so within a job), not between jobs on different shards.

Changing N moves jobs between shards and renames the shards themselves: drain the queue and
pause the schedules first (runs stored under the old N stay where they are, unseen).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import itertools
import json
import zlib
from collections import OrderedDict, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, cast

import attrs

from hub_scheduler.domain.errors import (
    DeadLetterNotFoundError,
    InvalidBackendUrlError,
    InvalidCursorError,
    InvalidScheduleError,
    NotFoundError,
    RunNotFoundError,
    ScheduleExistsError,
    ScheduleNotFoundError,
)
from hub_scheduler.domain.limits import JobLimits
from hub_scheduler.domain.model import (
    Priority,
    Progress,
    Run,
    RunState,
    StoredResult,
    TraceContext,
    encode_payload,
)
from hub_scheduler.domain.ports import (
    AttemptTraces,
    AuditLog,
    Backend,
    BackendConfig,
    BackendVitals,
    Claim,
    DeadLetters,
    Enqueued,
    EnqueueRequest,
    Exchange,
    HasVitals,
    JobQueue,
    JobStats,
    Migratable,
    Outcome,
    Page,
    PlannedFire,
    Presence,
    QueueSnapshot,
    ResultStore,
    RunHistory,
    ScheduleState,
    ScheduleStore,
    SharedStore,
    Signals,
    SlotRecord,
    Stats,
    TransactionalEnqueue,
    Workflows,
)
from hub_scheduler.domain.schedule import Schedule, SlotDecision
from hub_scheduler.domain.urls import redacted
from hub_scheduler.domain.workflow import Workflow

T = TypeVar("T")

#: The URL query argument that asks for shards, and the most it accepts.
SHARDS_ARGUMENT = "shards"
MAX_SHARDS = 256

#: Redis Cluster's hash slots (CRC16 of the hash tag, modulo this).
CLUSTER_SLOTS = 16384


# --- placement --------------------------------------------------------------------------------


def shard_of(job: str, count: int) -> int:
    """The shard of `job` among `count`: ``crc32(job) % count``, stable across processes
    and Python versions (unlike `hash`)."""
    return zlib.crc32(job.encode()) % count


def cluster_slot(tag: str) -> int:
    """The Redis Cluster hash slot of a key whose hash tag is `tag` (CRC16/XMODEM)."""
    return binascii.crc_hqx(tag.encode(), 0) % CLUSTER_SLOTS


def shard_prefixes(prefix: str, count: int) -> list[str]:
    """The prefixes of `count` shards of the hub `prefix`: ``prefix.i``, or ``prefix.i-k``
    with the smallest k > 0 that puts it where ``prefix.i`` is not, in the middle of the i-th
    of `count` equal ranges of Cluster slots.

    On Redis the prefix is the hash tag, and a Cluster built by ``redis-cli --cluster
    create`` gives its masters equal ranges of consecutive slots: so the shards spread over
    the masters as evenly as `count` allows (3 shards on 3 masters: one each), where N
    arbitrary tags would often share a master. Other backends only see distinct names.
    """
    width = CLUSTER_SLOTS / count
    names = []
    for i in range(count):
        centre = (i + 0.5) * width
        for k in itertools.count():
            name = f"{prefix}.{i}" if k == 0 else f"{prefix}.{i}-{k}"
            if abs(cluster_slot(name) - centre) <= width / 4:
                names.append(name)
                break
    return names


def split_shards(url: str) -> tuple[str, int]:
    """`url` without its ``shards`` query argument, and the number it gave (1 without one).

    The rest of the URL is kept as written. Raises `InvalidBackendUrlError` (never quoting
    the URL, which may hold a password) for a count that is not a whole number from 1 to
    `MAX_SHARDS`, or given twice.
    """
    base, mark, query = url.partition("?")
    if not mark:
        return url, 1
    query, hash_mark, fragment = query.partition("#")
    kept, counts = [], []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == SHARDS_ARGUMENT:
            counts.append(value)
        elif part:
            kept.append(part)
    if not counts:
        return url, 1
    if len(counts) > 1 or not counts[0].isdigit() or not 1 <= int(counts[0]) <= MAX_SHARDS:
        raise InvalidBackendUrlError(
            f"{SHARDS_ARGUMENT}= takes one whole number from 1 to {MAX_SHARDS}"
        )
    rest = base + ("?" + "&".join(kept) if kept else "") + hash_mark + fragment
    return rest, int(counts[0])


# --- calling several shards ---------------------------------------------------------------


async def _all(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Every call's result, in order; once all have ended, the first error is raised (so no
    call is left running behind an error)."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


async def _first(calls: Sequence[Awaitable[T]], missing: type[NotFoundError]) -> T:
    """The answer of the one shard that has what is asked for by id (every other raises
    `missing`). An id lives on one shard: its answer wins, be it a result or another error;
    when no shard has it, the first other error (a shard unreachable), else `missing`."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if not isinstance(result, BaseException):
            return result
    errors = cast("list[BaseException]", results)
    for error in errors:
        if not isinstance(error, missing):
            raise error
    raise errors[0]


def _grouped(items: Sequence[T], shard: Callable[[T], int]) -> dict[int, list[int]]:
    """Shard -> the indexes of `items` that go there, in their order."""
    groups: dict[int, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        groups[shard(item)].append(index)
    return groups


def _jobs_by_shard(jobs: Sequence[str], count: int) -> dict[int, list[str]]:
    """Shard -> the distinct names of `jobs` whose home it is, in their order."""
    groups: dict[int, list[str]] = defaultdict(list)
    for job in dict.fromkeys(jobs):
        groups[shard_of(job, count)].append(job)
    return groups


# --- merged listings ------------------------------------------------------------------------

_CURSOR_MARK = "s1."
#: How often `MergedListing` asks again a shard whose page came back empty with a cursor (a
#: filtered listing scans a bounded stretch per call) before answering a short page.
_MAX_EMPTY_ROUNDS = 10
#: How many pages `MergedListing` reads to find the precise cursor after the items it took.
_MAX_ADVANCE = 50

#: Per shard: None (not begun), an inner cursor, or False (exhausted).
_State = str | bool | None


def _encode_cursor(states: Sequence[_State]) -> str:
    text = json.dumps(list(states), separators=(",", ":"))
    return _CURSOR_MARK + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None, count: int) -> list[_State]:
    if cursor is None:
        return [None] * count
    body = cursor.removeprefix(_CURSOR_MARK)
    try:
        states = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidCursorError(cursor) from exc
    if (
        body == cursor
        or not isinstance(states, list)
        or len(states) != count
        or not all(s is None or s is False or (isinstance(s, str) and s) for s in states)
        or all(s is False for s in states)
    ):
        raise InvalidCursorError(cursor)
    return states


@attrs.frozen
class MergedListing(Generic[T]):
    """Newest-first pages over every shard, merged by the key the shards order by.

    The composite cursor holds each shard's own cursor. A page asks each shard not yet
    exhausted for `limit` items, takes the newest `limit` of them in merged order (ties by
    shard index), but never an item older than what a shard that has more may still hold
    (its last item returned); then it moves each shard's cursor past exactly the items taken
    from it (asking that shard again when it gave more than were taken), so no item is
    skipped or repeated from one page to the next.

    Attributes:
        fetch: a page of one shard: (shard, its cursor, limit).
        key: what the shards order by (newest first).
        ident: an item's identity within its shard.
    """

    fetch: Callable[[int, str | None, int], Awaitable[Page[T]]]
    count: int
    key: Callable[[T], datetime]
    ident: Callable[[T], Hashable]

    async def page(self, cursor: str | None, limit: int) -> Page[T]:
        """One merged page. Raises `InvalidCursorError` for a cursor not handed out here
        (or one a shard refuses), `ValueError` for a limit below 1."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        states = _decode_cursor(cursor, self.count)
        try:
            return await self._page(states, limit)
        except InvalidCursorError as exc:
            raise InvalidCursorError(cursor or "") from exc

    async def _page(self, states: list[_State], limit: int) -> Page[T]:
        pages: dict[int, Page[T]] = {}
        for _ in range(_MAX_EMPTY_ROUNDS):
            asked = [i for i, s in enumerate(states) if s is not False and i not in pages]
            if not asked:
                break
            answers = await _all([self.fetch(i, _inner(states[i]), limit) for i in asked])
            for i, answer in zip(asked, answers, strict=True):
                if answer.items:
                    pages[i] = answer
                elif answer.next_cursor is None:
                    states[i] = False
                else:  # scanned past items that do not match: nothing consumed, go on
                    states[i] = answer.next_cursor
        # Shards with more to give bound what may be taken: nothing older than their last
        # item returned; a shard that returned nothing yet (still scanning) bounds everything.
        blocked = any(s is not False and i not in pages for i, s in enumerate(states))
        bounds = [(self.key(p.items[-1]), i) for i, p in pages.items() if p.next_cursor is not None]
        merged = sorted(
            ((self.key(item), i, pos, item) for i, p in pages.items() for pos, item in
             enumerate(p.items)),
            key=lambda e: (e[0], -e[1], -e[2]),
            reverse=True,
        )  # fmt: skip
        taken: list[tuple[int, T]] = []
        for key, shard, _, item in merged:
            if blocked or len(taken) == limit:
                break
            if any(key < k or (key == k and shard > s) for k, s in bounds if s != shard):
                break
            taken.append((shard, item))
        moves = []
        for i, answer in pages.items():
            mine = [item for shard, item in taken if shard == i]
            if len(mine) == len(answer.items):
                states[i] = answer.next_cursor or False
            elif mine:
                moves.append(self._advance(i, states, mine))
        await _all(moves)
        more = any(s is not False for s in states)
        return Page(tuple(item for _, item in taken), _encode_cursor(states) if more else None)

    async def _advance(self, shard: int, states: list[_State], taken: list[T]) -> None:
        """Move `shard`'s cursor to just after the last of `taken`, the first items its page
        gave: ask it again for that many from its cursor and check the page ends with it;
        items added meanwhile above a first page, or removed, are stepped over by key."""
        cursor, want = _inner(states[shard]), len(taken)
        target, edge = self.ident(taken[-1]), self.key(taken[-1])
        for _ in range(_MAX_ADVANCE):
            answer = await self.fetch(shard, cursor, want)
            ids = [self.ident(item) for item in answer.items]
            if target in ids:
                at = ids.index(target)
                if at == len(ids) - 1:
                    states[shard] = answer.next_cursor or False
                    return
                want = at + 1
                continue
            older = [n for n, item in enumerate(answer.items) if self.key(item) < edge]
            if older:  # the last item taken is gone: stop before the first one older than it
                if older[0] == 0:
                    break
                want = older[0]
                continue
            if answer.next_cursor is None:
                states[shard] = False
                return
            cursor, want = answer.next_cursor, max(1, want - len(ids))
        states[shard] = cursor if cursor is not None else states[shard]


def _inner(state: _State) -> str | None:
    return state if isinstance(state, str) else None


def _enqueued_key(run: Run) -> datetime:
    return run.enqueued_at


def _dead_key(run: Run) -> datetime:
    return run.finished_at or run.enqueued_at


def _run_id(run: Run) -> Hashable:
    return run.id


# --- the ports --------------------------------------------------------------------------------


@attrs.define
class ShardedJobQueue:
    """`JobQueue` over the shards' queues; a run lives on its job's shard."""

    queues: tuple[JobQueue, ...]
    payload_limit: int
    #: Where the next claim starts (one shard further each call).
    turn: int = 0

    def _of(self, job: str) -> int:
        return shard_of(job, len(self.queues))

    def _claim_shard(self, claim: Claim) -> int:
        return self._of(claim.run.job)

    async def enqueue(self, requests: Sequence[EnqueueRequest]) -> list[Enqueued]:
        """See `JobQueue.enqueue`: requests go to their jobs' shards at once, answers come
        back in request order. Every payload is checked first, so a bad one stores nothing
        on any shard (as on one backend)."""
        for request in requests:
            encode_payload(request.job, request.payload, self.payload_limit)
        groups = _grouped(requests, lambda r: self._of(r.job))
        answers: list[Enqueued | None] = [None] * len(requests)
        replies = await _all(
            [self.queues[s].enqueue([requests[i] for i in idx]) for s, idx in groups.items()]
        )
        for idx, reply in zip(groups.values(), replies, strict=True):
            for i, answer in zip(idx, reply, strict=True):
                answers[i] = answer
        return [a for a in answers if a is not None]

    async def claim(self, worker: str, limit: int, lease: timedelta) -> list[Claim]:
        """See `JobQueue.claim`: filled from the shards in turn (see `exchange`)."""
        return list((await self.exchange(worker, (), limit, lease)).claims)

    async def keep_first_attempt_trace(self, claim: Claim, context: TraceContext) -> None:
        """See `AttemptTraces.keep_first_attempt_trace`: on the run's shard, when it can."""
        queue = self.queues[self._claim_shard(claim)]
        if isinstance(queue, AttemptTraces):
            await queue.keep_first_attempt_trace(claim, context)

    async def exchange(
        self,
        worker: str,
        settled: Sequence[tuple[Claim, Outcome]],
        want: int,
        lease: timedelta,
    ) -> Exchange:
        """See `JobQueue.exchange`. Outcomes are settled on their claims' shards. Claims
        come from the shards in turn, starting one further each call: the first shard is
        asked for `want`, the next for what is still missing, and so on; shards left with
        only outcomes to settle are settled at once, together. Priority and FIFO order hold
        within each shard, not across them. `next_due` is the earliest of the shards asked."""
        count = len(self.queues)
        start, self.turn = self.turn % count, (self.turn + 1) % count
        order = [(start + k) % count for k in range(count)]
        groups = _grouped(settled, lambda pair: self._claim_shard(pair[0]))
        applied: list[bool] = [False] * len(settled)
        claims: list[Claim] = []
        dues: list[datetime] = []

        def record(shard: int, result: Exchange) -> None:
            for i, flag in zip(groups.get(shard, ()), result.applied, strict=True):
                applied[i] = flag
            claims.extend(result.claims)
            if result.next_due is not None:
                dues.append(result.next_due)

        def outcomes(shard: int) -> list[tuple[Claim, Outcome]]:
            return [settled[i] for i in groups.get(shard, ())]

        rest = []
        for shard in order:
            missing = want - len(claims)
            if missing > 0:
                record(shard, await self.queues[shard].exchange(
                    worker, outcomes(shard), missing, lease
                ))  # fmt: skip
            elif shard in groups:
                rest.append(shard)
        results = await _all([self.queues[s].exchange(worker, outcomes(s), 0, lease) for s in rest])
        for shard, result in zip(rest, results, strict=True):
            record(shard, result)
        return Exchange(tuple(applied), tuple(claims), min(dues, default=None))

    async def renew(self, worker: str, claims: Sequence[Claim], lease: timedelta) -> list[str]:
        """See `JobQueue.renew`."""
        groups = _grouped(claims, self._claim_shard)
        lost = await _all(
            [self.queues[s].renew(worker, [claims[i] for i in idx], lease)
             for s, idx in groups.items()]
        )  # fmt: skip
        return [run_id for ids in lost for run_id in ids]

    async def finish(self, claim: Claim, outcome: Outcome) -> Run | None:
        """See `JobQueue.finish`."""
        return await self.queues[self._claim_shard(claim)].finish(claim, outcome)

    async def hand_back(self, claims: Sequence[Claim], *, interrupted: bool = False) -> None:
        """See `JobQueue.hand_back` (the order given is kept within each shard)."""
        groups = _grouped(claims, self._claim_shard)
        await _all(
            [self.queues[s].hand_back([claims[i] for i in idx], interrupted=interrupted)
             for s, idx in groups.items()]
        )  # fmt: skip

    async def reap(
        self, max_stalls: int, lease: timedelta, limit: int = 100
    ) -> tuple[list[str], list[Claim]]:
        """See `JobQueue.reap`: every shard, up to `limit` runs each."""
        results = await _all([q.reap(max_stalls, lease, limit) for q in self.queues])
        return (
            [run_id for requeued, _ in results for run_id in requeued],
            [claim for _, held in results for claim in held],
        )

    async def cancel(self, run_id: str) -> Run:
        """See `JobQueue.cancel` (asked of every shard; the one holding the run answers)."""
        return await _first([q.cancel(run_id) for q in self.queues], RunNotFoundError)

    async def set_limits(self, limits: Mapping[str, JobLimits]) -> None:
        """See `JobQueue.set_limits`: each job's limits are kept by its shard."""
        groups: dict[int, dict[str, JobLimits]] = {}
        for job, limit in limits.items():
            groups.setdefault(self._of(job), {})[job] = limit
        await _all([self.queues[s].set_limits(part) for s, part in groups.items()])

    async def cancel_requests(self, claims: Sequence[Claim]) -> list[str]:
        """See `JobQueue.cancel_requests`: each claim asked of its shard."""
        groups = _grouped(claims, self._claim_shard)
        asked = await _all(
            [self.queues[s].cancel_requests([claims[i] for i in idx])
             for s, idx in groups.items()]
        )  # fmt: skip
        return [run_id for ids in asked for run_id in ids]

    async def settle_cancelled(self, claim: Claim) -> Run | None:
        """See `JobQueue.settle_cancelled`."""
        return await self.queues[self._claim_shard(claim)].settle_cancelled(claim)

    async def pause(self, job: str | None = None) -> None:
        """See `JobQueue.pause`: the whole queue is every shard; a job, its shard."""
        if job is not None:
            await self.queues[self._of(job)].pause(job)
        else:
            await _all([q.pause() for q in self.queues])

    async def resume(self, job: str | None = None) -> None:
        """See `JobQueue.resume`."""
        if job is not None:
            await self.queues[self._of(job)].resume(job)
        else:
            await _all([q.resume() for q in self.queues])

    async def paused_among(self, jobs: Sequence[str]) -> frozenset[str]:
        """See `JobQueue.paused_among`: each job's shard, asked concurrently."""
        groups = _jobs_by_shard(jobs, len(self.queues))
        parts = await _all([self.queues[n].paused_among(names) for n, names in groups.items()])
        return frozenset().union(*parts)

    async def snapshot(self) -> QueueSnapshot:
        """See `JobQueue.snapshot`: counts summed, the longest wait, paused when any shard
        is (a queue pause half applied is not running), the paused jobs together."""
        parts = await _all([q.snapshot() for q in self.queues])
        by_worker: dict[str, int] = defaultdict(int)
        for part in parts:
            for worker, active in part.active_by_worker.items():
                by_worker[worker] += active
        waits = [p.oldest_waiting for p in parts if p.oldest_waiting is not None]
        return QueueSnapshot(
            depth={p: sum(part.depth.get(p, 0) for part in parts) for p in Priority},
            delayed=sum(p.delayed for p in parts),
            active=sum(p.active for p in parts),
            dead=sum(p.dead for p in parts),
            paused=any(p.paused for p in parts),
            paused_jobs=frozenset().union(*(p.paused_jobs for p in parts)),
            parked=sum(p.parked for p in parts),
            oldest_waiting=max(waits, default=None),
            succeeded=sum(p.succeeded for p in parts),
            failed=sum(p.failed for p in parts),
            gave_up=sum(p.gave_up for p in parts),
            active_by_worker=dict(by_worker),
        )


@attrs.define
class ShardedTransactionalQueue(ShardedJobQueue):
    """A `ShardedJobQueue` whose shards' queues all enqueue in the application's transaction
    (PostgreSQL: the shards are schemas of one database, so one connection reaches all)."""

    async def enqueue_in(
        self, connection: object, requests: Sequence[EnqueueRequest]
    ) -> list[Enqueued]:
        """See `TransactionalEnqueue.enqueue_in`: one shard after the other on `connection`
        (a connection runs one statement at a time), inside its transaction."""
        for request in requests:
            encode_payload(request.job, request.payload, self.payload_limit)
        answers: list[Enqueued | None] = [None] * len(requests)
        for shard, idx in _grouped(requests, lambda r: self._of(r.job)).items():
            queue = cast("TransactionalEnqueue", self.queues[shard])  # checked at open
            reply = await queue.enqueue_in(connection, [requests[i] for i in idx])
            for i, answer in zip(idx, reply, strict=True):
                answers[i] = answer
        return [a for a in answers if a is not None]


@attrs.define
class ShardedDeadLetters:
    """`DeadLetters` over the shards."""

    shards: tuple[DeadLetters, ...]

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[Run]:
        """See `DeadLetters.list`: merged newest first (by time of death) over the shards,
        under a cursor of this backend's own."""

        async def fetch(shard: int, inner: str | None, n: int) -> Page[Run]:
            return await self.shards[shard].list(inner, n)

        return await MergedListing(fetch, len(self.shards), _dead_key, _run_id).page(cursor, limit)

    async def get(self, run_id: str) -> Run:
        """See `DeadLetters.get`."""
        return await _first([d.get(run_id) for d in self.shards], DeadLetterNotFoundError)

    async def retry(self, run_id: str) -> str:
        """See `DeadLetters.retry` (the new run is on the same shard: same job)."""
        return await _first([d.retry(run_id) for d in self.shards], DeadLetterNotFoundError)

    async def retry_all(self) -> builtins.list[str]:
        """See `DeadLetters.retry_all`: oldest first within each shard, shard after shard."""
        new_ids = await _all([d.retry_all() for d in self.shards])
        return [run_id for ids in new_ids for run_id in ids]

    async def delete(self, run_id: str) -> None:
        """See `DeadLetters.delete`."""
        await _first([d.delete(run_id) for d in self.shards], DeadLetterNotFoundError)

    async def purge(self) -> int:
        """See `DeadLetters.purge`."""
        return sum(await _all([d.purge() for d in self.shards]))


@attrs.define
class ShardedRunHistory:
    """`RunHistory` over the shards."""

    shards: tuple[RunHistory, ...]

    async def get(self, run_id: str) -> Run:
        """See `RunHistory.get`."""
        return await _first([h.get(run_id) for h in self.shards], RunNotFoundError)

    async def list(
        self,
        *,
        job: str | None = None,
        states: frozenset[RunState] | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page[Run]:
        """See `RunHistory.list`. One job's runs are its shard's listing (its cursor as it
        is); all runs are merged newest first (by enqueue time) under a cursor of this
        backend's own. With `states`, a short page with a cursor means "more may follow"."""
        if job is not None:
            shard = self.shards[shard_of(job, len(self.shards))]
            return await shard.list(job=job, states=states, cursor=cursor, limit=limit)

        async def fetch(shard: int, inner: str | None, n: int) -> Page[Run]:
            return await self.shards[shard].list(states=states, cursor=inner, limit=n)

        return await MergedListing(fetch, len(self.shards), _enqueued_key, _run_id).page(
            cursor, limit
        )

    async def latest(self, jobs: Sequence[str]) -> dict[str, Run]:
        """See `RunHistory.latest`: each job's shard, asked concurrently."""
        groups = _jobs_by_shard(jobs, len(self.shards))
        parts = await _all([self.shards[n].latest(names) for n, names in groups.items()])
        return {job: run for part in parts for job, run in part.items()}

    async def clean(self, older_than: datetime, states: frozenset[RunState] | None = None) -> int:
        """See `RunHistory.clean`."""
        return sum(await _all([h.clean(older_than, states) for h in self.shards]))


#: Runs whose shard `ShardedResults` remembers (the most recent ones).
_OWNERS_KEPT = 4096


@attrs.define
class ShardedResults:
    """`ResultStore` over the shards: a run's result and progress live on its run's shard
    (found by asking every shard's history, as a lookup by id does, then remembered: a run
    never changes shard, and a handler reporting progress repeatedly should not cost every
    shard a read each time)."""

    histories: tuple[RunHistory, ...]
    shards: tuple[ResultStore, ...]
    _owners: OrderedDict[str, int] = attrs.field(factory=OrderedDict, init=False)

    async def _shard(self, run_id: str) -> ResultStore:
        owner = self._owners.get(run_id)
        if owner is None:
            owner = await _first(
                [_index(i, h.get(run_id)) for i, h in enumerate(self.histories)],
                RunNotFoundError,
            )
            self._owners[run_id] = owner
            if len(self._owners) > _OWNERS_KEPT:
                self._owners.popitem(last=False)
        return self.shards[owner]

    async def set_result(self, run_id: str, value: Any) -> None:
        """See `ResultStore.set_result`."""
        await (await self._shard(run_id)).set_result(run_id, value)

    async def result(self, run_id: str) -> StoredResult | None:
        """See `ResultStore.result`; None for a run no shard has."""
        try:
            return await (await self._shard(run_id)).result(run_id)
        except RunNotFoundError:
            return None

    async def set_progress(self, run_id: str, progress: Progress) -> None:
        """See `ResultStore.set_progress`."""
        await (await self._shard(run_id)).set_progress(run_id, progress)

    async def progress(self, run_id: str) -> Progress | None:
        """See `ResultStore.progress`; None for a run no shard has."""
        try:
            return await (await self._shard(run_id)).progress(run_id)
        except RunNotFoundError:
            return None


async def _index(index: int, call: Awaitable[object]) -> int:
    """`index` once `call` answers (it raises when the shard lacks what was asked)."""
    await call
    return index


@attrs.define
class ShardedWorkflows:
    """`Workflows` over the shards: documents on the home shard, events on every shard."""

    home: Workflows
    shards: tuple[Workflows, ...]

    async def create(self, workflow: Workflow, now: datetime) -> None:
        """See `Workflows.create` (on the home shard, with its event)."""
        await self.home.create(workflow, now)

    async def get(self, workflow_id: str) -> tuple[Workflow, int]:
        """See `Workflows.get`."""
        return await self.home.get(workflow_id)

    async def save(self, workflow: Workflow, version: int) -> bool:
        """See `Workflows.save`."""
        return await self.home.save(workflow, version)

    async def list(self, cursor: str | None = None, limit: int = 50) -> Page[Workflow]:
        """See `Workflows.list`."""
        return await self.home.list(cursor, limit)

    async def events(self, before: datetime, limit: int = 100) -> builtins.list[str]:
        """See `Workflows.events`: up to `limit` from each shard, the shards in order."""
        found = await _all([s.events(before, limit) for s in self.shards])
        return [event for events in found for event in events][:limit]

    async def ack(self, events: Sequence[str]) -> None:
        """See `Workflows.ack` (each shard forgets the ones it has)."""
        if events:
            await _all([s.ack(events) for s in self.shards])


@attrs.define
class ShardedScheduleStore:
    """`ScheduleStore` over the shards; a schedule lives on its job's shard, so firing
    enqueues its runs in the same atomic step."""

    shards: tuple[ScheduleStore, ...]

    def _of(self, job: str) -> ScheduleStore:
        return self.shards[shard_of(job, len(self.shards))]

    async def sync_declared(self, schedules: Sequence[Schedule], now: datetime) -> None:
        """See `ScheduleStore.sync_declared`: every shard gets its jobs' schedules (maybe
        none), so declared schedules gone from code are removed wherever they are."""
        groups = _grouped(schedules, lambda s: shard_of(s.job, len(self.shards)))
        await _all(
            [store.sync_declared([schedules[i] for i in groups.get(n, ())], now)
             for n, store in enumerate(self.shards)]
        )  # fmt: skip

    async def create(self, schedule: Schedule, now: datetime) -> ScheduleState:
        """See `ScheduleStore.create`. An id taken on another shard (by a schedule of
        another job) is refused too; two creates of one id racing on two shards are not."""
        home = self._of(schedule.job)
        others = [s for s in self.shards if s is not home]
        found = await asyncio.gather(*(s.get(schedule.id) for s in others), return_exceptions=True)
        for state in found:
            if isinstance(state, ScheduleState):
                raise ScheduleExistsError(schedule.id, declared=state.declared)
            if not isinstance(state, ScheduleNotFoundError):
                raise state
        return await home.create(schedule, now)

    async def update(self, schedule: Schedule, now: datetime) -> ScheduleState:
        """See `ScheduleStore.update`. Also raises `InvalidScheduleError` for a change of job
        that would move the schedule to another shard (its runtime state and ledger cannot
        move with it: delete it and create it anew)."""
        current = await self.get(schedule.id)
        if self._of(schedule.job) is not self._of(current.schedule.job):
            raise InvalidScheduleError(
                "job",
                f"{schedule.job!r} is on another shard than {current.schedule.job!r}; "
                "delete the schedule and create it for the new job",
            )
        return await self._of(schedule.job).update(schedule, now)

    async def delete(self, schedule_id: str) -> None:
        """See `ScheduleStore.delete`."""
        await _first([s.delete(schedule_id) for s in self.shards], ScheduleNotFoundError)

    async def get(self, schedule_id: str) -> ScheduleState:
        """See `ScheduleStore.get`."""
        return await _first([s.get(schedule_id) for s in self.shards], ScheduleNotFoundError)

    async def list(self, job: str | None = None) -> builtins.list[ScheduleState]:
        """See `ScheduleStore.list`."""
        if job is not None:
            return builtins.list(await self._of(job).list(job))
        parts = await _all([s.list() for s in self.shards])
        return sorted((state for part in parts for state in part), key=lambda s: s.schedule.id)

    async def list_after(self, cursor: str | None = None, limit: int = 100) -> Page[ScheduleState]:
        """See `ScheduleStore.list_after`: every shard's page after the same id, asked
        concurrently, merged by id; the first `limit` of them (an id is a cursor on every
        shard)."""
        parts = await _all([s.list_after(cursor, limit) for s in self.shards])
        merged = sorted((state for part in parts for state in part.items),
                        key=lambda s: s.schedule.id)  # fmt: skip
        taken = merged[:limit]
        more = len(merged) > limit or any(part.next_cursor for part in parts)
        return Page(tuple(taken), taken[-1].schedule.id if more and taken else None)

    async def of_jobs(self, jobs: Sequence[str]) -> dict[str, builtins.list[ScheduleState]]:
        """See `ScheduleStore.of_jobs`: each job's shard, asked concurrently."""
        groups = _jobs_by_shard(jobs, len(self.shards))
        parts = await _all([self.shards[n].of_jobs(names) for n, names in groups.items()])
        found = {job: builtins.list(states) for part in parts for job, states in part.items()}
        return {job: found.get(job, []) for job in jobs}

    async def set_paused(self, schedule_id: str, *, paused: bool) -> ScheduleState:
        """See `ScheduleStore.set_paused`."""
        return await _first(
            [s.set_paused(schedule_id, paused=paused) for s in self.shards], ScheduleNotFoundError
        )

    async def due(self, now: datetime, limit: int = 100) -> builtins.list[ScheduleState]:
        """See `ScheduleStore.due`: the earliest `limit` of the shards' due schedules."""
        parts = await _all([s.due(now, limit) for s in self.shards])
        states = [state for part in parts for state in part]
        states.sort(key=lambda s: (s.next_fire or now, s.schedule.id))
        return states[:limit]

    async def next_due_at(self) -> datetime | None:
        """See `ScheduleStore.next_due_at`."""
        instants = await _all([s.next_due_at() for s in self.shards])
        return min((i for i in instants if i is not None), default=None)

    async def fire(
        self,
        state: ScheduleState,
        decisions: Sequence[SlotDecision],
        requests: Sequence[EnqueueRequest],
        next_fire: datetime | None,
        now: datetime,
        *,
        bulk_missed: int = 0,
    ) -> Sequence[Enqueued] | None:
        """See `ScheduleStore.fire` (on the schedule's shard, with its job's runs)."""
        store = self._of(state.schedule.job)
        return await store.fire(state, decisions, requests, next_fire, now, bulk_missed=bulk_missed)

    async def claim_due(
        self, now: datetime, limit: int = 100, lease: timedelta = timedelta(seconds=5)
    ) -> builtins.list[ScheduleState]:
        """See `ScheduleStore.claim_due`: a share of `limit` from every shard, earliest
        first."""
        share = max(1, limit // len(self.shards))
        parts = await _all([s.claim_due(now, share, lease) for s in self.shards])
        states = [state for part in parts for state in part]
        states.sort(key=lambda s: (s.next_fire or now, s.schedule.id))
        return states

    async def fire_many(
        self, fires: Sequence[PlannedFire], now: datetime
    ) -> builtins.list[Sequence[Enqueued] | None]:
        """See `ScheduleStore.fire_many`: one batch per shard, the shards concurrently."""
        groups = _grouped(fires, lambda f: shard_of(f.state.schedule.job, len(self.shards)))
        order = sorted(groups)
        parts = await _all(
            [self.shards[n].fire_many([fires[i] for i in groups[n]], now) for n in order]
        )
        answers: builtins.list[Sequence[Enqueued] | None] = [None] * len(fires)
        for n, part in zip(order, parts, strict=True):
            for i, answer in zip(groups[n], part, strict=True):
                answers[i] = answer
        return answers

    async def slots(
        self, schedule_id: str, cursor: str | None = None, limit: int = 50
    ) -> Page[SlotRecord]:
        """See `ScheduleStore.slots`: merged newest slot first over the shards (a ledger is
        kept after its schedule is deleted, and an id may be reused for a job elsewhere)."""

        async def fetch(shard: int, inner: str | None, n: int) -> Page[SlotRecord]:
            return await self.shards[shard].slots(schedule_id, inner, n)

        def ident(record: SlotRecord) -> Hashable:
            return record.slot

        merge = MergedListing(fetch, len(self.shards), lambda r: r.slot, ident)
        return await merge.page(cursor, limit)


@attrs.define
class ShardedStats:
    """`Stats` over the shards: a job's statistics are its shard's."""

    shards: tuple[Stats, ...]

    async def job(
        self,
        job: str,
        now: datetime,
        windows: Sequence[str] = ("1h", "24h", "7d", "90d"),
        *,
        trend_hours: int = 24,
    ) -> JobStats:
        """See `Stats.job`."""
        shard = self.shards[shard_of(job, len(self.shards))]
        return await shard.job(job, now, windows, trend_hours=trend_hours)

    async def jobs(
        self,
        jobs: Sequence[str],
        now: datetime,
        windows: Sequence[str] = ("1h", "24h", "7d", "90d"),
        *,
        trend_hours: int = 24,
    ) -> builtins.list[JobStats]:
        """See `Stats.jobs`: each job's shard, asked concurrently, answers in order."""
        groups = _jobs_by_shard(jobs, len(self.shards))
        parts = await _all(
            [self.shards[n].jobs(names, now, windows, trend_hours=trend_hours)
             for n, names in groups.items()]
        )  # fmt: skip
        found = {stats.job: stats for part in parts for stats in part}
        if not jobs:  # the windows are still checked, as on one shard
            await self.shards[0].jobs([], now, windows, trend_hours=trend_hours)
        return [found[job] for job in jobs]


async def _merged(sources: Sequence[Callable[[], AsyncIterator[bool]]]) -> AsyncIterator[bool]:
    """Every item of every source's iterator, as each comes, but for their first items (each
    says that source is subscribed): one False once all of them are. The first error of any
    ends the merge (and closes them all)."""
    iterators = [source() for source in sources]
    unsubscribed = len(iterators)
    inbox: asyncio.Queue[tuple[bool, BaseException | None]] = asyncio.Queue()

    async def pump(iterator: AsyncIterator[bool]) -> None:
        nonlocal unsubscribed
        first = True
        try:
            async for item in iterator:
                if first:
                    first, unsubscribed = False, unsubscribed - 1
                    if unsubscribed:
                        continue
                await inbox.put((item, None))
        except Exception as exc:  # handed to the reader, which raises it
            await inbox.put((False, exc))

    tasks = [asyncio.create_task(pump(it)) for it in iterators]
    try:
        while True:
            item, error = await inbox.get()
            if error is not None:
                raise error
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for iterator in iterators:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()


@attrs.define
class ShardedSignals:
    """`Signals` over the shards: a signal of any shard is a signal."""

    shards: tuple[Signals, ...]

    def wakeups(self) -> AsyncIterator[bool]:
        """See `Signals.wakeups`."""
        return _merged([s.wakeups for s in self.shards])

    def schedule_changes(self) -> AsyncIterator[bool]:
        """See `Signals.schedule_changes`."""
        return _merged([s.schedule_changes for s in self.shards])


def _backends(shards: Sequence[Backend]) -> tuple[Backend, ...]:
    return tuple(shards)


@attrs.define(eq=False)
class ShardedBackend:
    """The whole `Backend` port over N inner backends (see the module's docstring).

    Attributes:
        shards: the inner backends; shard i of `shard_of`.
        url: what it was opened with (passwords masked); by default the first shard's.
        config: the hub's configuration (its prefix is the hub's, not a shard's).
    """

    shards: tuple[Backend, ...] = attrs.field(
        converter=_backends, validator=attrs.validators.min_len(1)
    )
    url: str = attrs.field(
        kw_only=True,
        default=attrs.Factory(lambda self: self.shards[0].url, takes_self=True),
        converter=redacted,
    )
    config: BackendConfig = attrs.field(
        kw_only=True, default=attrs.Factory(lambda self: self.shards[0].config, takes_self=True)
    )
    queue: ShardedJobQueue = attrs.field(init=False, repr=False)
    dead_letters: ShardedDeadLetters = attrs.field(init=False, repr=False)
    history: ShardedRunHistory = attrs.field(init=False, repr=False)
    schedules: ShardedScheduleStore = attrs.field(init=False, repr=False)
    stats: ShardedStats = attrs.field(init=False, repr=False)
    results: ShardedResults = attrs.field(init=False, repr=False)
    signals: ShardedSignals | None = attrs.field(init=False, repr=False)
    #: Documents on the home shard; events from every shard (a step's run lives on its
    #: job's shard, which records the event as it ends the run).
    workflows: ShardedWorkflows = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        queues = tuple(s.queue for s in self.shards)
        transactional = all(isinstance(q, TransactionalEnqueue) for q in queues)
        kind = ShardedTransactionalQueue if transactional else ShardedJobQueue
        self.queue = kind(queues, self.config.payload_limit)
        self.dead_letters = ShardedDeadLetters(tuple(s.dead_letters for s in self.shards))
        self.history = ShardedRunHistory(tuple(s.history for s in self.shards))
        self.schedules = ShardedScheduleStore(tuple(s.schedules for s in self.shards))
        self.stats = ShardedStats(tuple(s.stats for s in self.shards))
        self.workflows = ShardedWorkflows(
            self.shards[0].workflows, tuple(s.workflows for s in self.shards)
        )
        self.results = ShardedResults(
            tuple(s.history for s in self.shards), tuple(s.results for s in self.shards)
        )
        signals = [s.signals for s in self.shards]
        self.signals = (
            ShardedSignals(tuple(s for s in signals if s is not None))
            if all(s is not None for s in signals)
            else None
        )

    @property
    def home(self) -> Backend:
        """Shard 0: where the audit log, presence and shared values live."""
        return self.shards[0]

    @property
    def audit(self) -> AuditLog:
        """The home shard's audit log."""
        return self.home.audit

    @property
    def presence(self) -> Presence:
        """The home shard's presence."""
        return self.home.presence

    @property
    def shared(self) -> SharedStore | None:
        """The home shard's shared values."""
        return self.home.shared

    async def vitals(self) -> BackendVitals | None:
        """See `HasVitals.vitals`, over the shards. Shards share one server (or, on a
        Cluster, each is one slot's master), so nothing of the server's is summed: the
        figures are the home shard's, or the fullest shard's when one has a memory limit
        (the first to fill up); the eviction policy is the first unsafe one any shard
        reports; the table sizes are summed per table over the shards' schemas. None when
        the home shard reports none."""
        home = self.home
        if not isinstance(home, HasVitals):
            return None
        shards = [s for s in self.shards if isinstance(s, HasVitals)]
        readings = [v for v in await _all([s.vitals() for s in shards]) if v is not None]
        if not readings:
            return None
        limited = [v for v in readings if v.memory_ratio is not None]
        base = max(limited, key=lambda v: v.memory_ratio or 0.0) if limited else readings[0]
        unsafe = [v.eviction_policy for v in readings if v.problems]
        tables: defaultdict[str, int] = defaultdict(int)
        for reading in readings:
            for name, size in reading.table_bytes.items():
                tables[name] += size
        return attrs.evolve(
            base,
            eviction_policy=unsafe[0] if unsafe else base.eviction_policy,
            table_bytes=dict(tables),
        )

    async def ping(self) -> None:
        """See `Backend.ping`: every shard answers."""
        await _all([s.ping() for s in self.shards])

    async def aclose(self) -> None:
        """See `Backend.aclose`: every shard is closed, even when one fails to close."""
        await _all([s.aclose() for s in self.shards])


@attrs.define(eq=False)
class MigratableShardedBackend(ShardedBackend):
    """A `ShardedBackend` whose shards have schemas (PostgreSQL: one schema per shard)."""

    async def migrate(self) -> builtins.list[str]:
        """See `Migratable.migrate`: every shard; each name applied is given with the
        shard's prefix (``hub.0/0001_initial``)."""
        applied: builtins.list[str] = []
        for shard in self.shards:
            names = await cast("Migratable", shard).migrate()  # checked at open
            applied.extend(f"{shard.config.prefix}/{name}" for name in names)
        return applied


def open_sharded(
    url: str, count: int, config: BackendConfig, open_shard: Callable[[BackendConfig], Backend]
) -> ShardedBackend:
    """`count` shards opened by `open_shard` (with `config` under each `shard_prefixes`
    prefix), as one backend named `url` (opening connects lazily, so a shard that fails to
    open, such as one whose prefix grew too long, leaves nothing open behind)."""
    shards = [
        open_shard(attrs.evolve(config, prefix=prefix))
        for prefix in shard_prefixes(config.prefix, count)
    ]
    kind = (
        MigratableShardedBackend
        if all(isinstance(s, Migratable) for s in shards)
        else ShardedBackend
    )
    return kind(shards, url=url, config=config)


__all__ = [
    "MAX_SHARDS",
    "SHARDS_ARGUMENT",
    "MigratableShardedBackend",
    "ShardedBackend",
    "cluster_slot",
    "open_sharded",
    "shard_of",
    "shard_prefixes",
    "split_shards",
]
