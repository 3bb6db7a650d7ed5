"""OpenTelemetry end to end, read back from the SDK's in-memory exporter: an enqueue's
``send`` span, one ``process`` span per attempt in the same trace, retries and dead-letter
retries linked, errors recorded; on memory://, a real Redis and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, StatusCode
from opentelemetry.util._once import Once

from hub_scheduler import RetryPolicy, RunState
from hub_scheduler.domain.errors import PayloadError
from hub_scheduler.domain.registry import Job, JobContext
from hub_scheduler.hub import Hub
from hub_scheduler.testing import FakeClock, hub_for_tests, run_until_idle, wait_for_state
from tests.conftest import drop_keys, fresh_prefix

POSTGRES_URL_ENV = "HUB_SCHEDULER_TEST_POSTGRES_URL"


def _reset_global_provider() -> None:
    # The API lets a process set its provider once; tests put theirs in and take it out.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """An SDK tracer provider set globally for the test, exporting to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _reset_global_provider()
    trace.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()
        _reset_global_provider()


@pytest.fixture(params=["memory", "redis", "postgres"])
async def hub(request: pytest.FixtureRequest) -> AsyncIterator[Hub]:
    """An empty hub on each backend: memory on a fake clock, the real ones (when
    configured) on the real clock."""
    if request.param == "memory":
        async with hub_for_tests(Hub()) as memory:
            yield memory
        return
    if request.param == "redis":
        url = str(request.getfixturevalue("redis_url"))
        async with Hub(url, prefix=fresh_prefix()) as on_redis:
            try:
                yield on_redis
            finally:
                await drop_keys(on_redis)
        return
    url = os.environ.get(POSTGRES_URL_ENV, "")
    if not url:
        pytest.skip(f"{POSTGRES_URL_ENV} is not set; PostgreSQL tests skipped")
    from hub_scheduler.adapters.postgres import drop_schema, migrate  # noqa: PLC0415

    prefix = fresh_prefix()
    await migrate(url, prefix)
    try:
        async with Hub(url, prefix=prefix) as on_postgres:
            yield on_postgres
    finally:
        await drop_schema(url, prefix)


def _context(span: ReadableSpan) -> SpanContext:
    context = span.get_span_context()
    assert context is not None
    return context


def _named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def _work(hub: Hub, run_id: str, state: RunState) -> None:
    """Run a worker until run `run_id` ends in `state` (moving a fake clock)."""
    if isinstance(hub.clock, FakeClock):
        await run_until_idle(hub)
        assert (await hub.history.get(run_id)).state is state
        return
    async with hub.worker():
        await wait_for_state(hub, run_id, state, timeout=10)


def _flaky(hub: Hub, failures: int) -> None:
    calls = {"n": 0}
    # Short real waits for the real backends; the fake clock skips them on memory://.
    retry = RetryPolicy(max_retries=3, base_delay=timedelta(milliseconds=20))

    @hub.job("flaky", retry=retry)
    async def flaky(ctx: JobContext) -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise ValueError(f"attempt {ctx.attempt} broke")
        return "ok"


async def test_enqueue_and_its_attempts_make_one_trace(
    hub: Hub, spans: InMemorySpanExporter
) -> None:
    """A run failing twice, then succeeding: one ``send`` span and three ``process`` spans
    in its trace, children of the send, the failures with status ERROR and their exception,
    the retries linked to the first attempt's span."""
    _flaky(hub, failures=2)
    run_id = await hub.enqueue("flaky", {"x": 1})
    await _work(hub, run_id, RunState.SUCCEEDED)

    [send] = _named(spans, "send flaky")
    assert send.kind is SpanKind.PRODUCER
    assert send.attributes is not None
    assert dict(send.attributes) == {
        "messaging.system": "hub_scheduler",
        "messaging.operation.type": "send",
        "messaging.operation.name": "enqueue",
        "messaging.destination.name": "flaky",
        "messaging.message.id": run_id,
        "hub_scheduler.priority": 10,
    }
    created = _context(send)
    process = sorted(_named(spans, "process flaky"), key=lambda s: s.start_time or 0)
    assert [s.attributes["hub_scheduler.attempt"] for s in process if s.attributes] == [1, 2, 3]
    for span in process:
        assert span.kind is SpanKind.CONSUMER
        assert span.parent is not None
        assert _context(span).trace_id == created.trace_id
        assert span.parent.span_id == created.span_id
        assert span.attributes is not None
        assert span.attributes["messaging.system"] == "hub_scheduler"
        assert span.attributes["messaging.operation.type"] == "process"
        assert span.attributes["messaging.destination.name"] == "flaky"
        assert span.attributes["messaging.message.id"] == run_id
    assert [s.status.status_code for s in process] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.OK,
    ]
    assert [s.attributes["hub_scheduler.outcome"] for s in process if s.attributes] == [
        "failed",
        "failed",
        "succeeded",
    ]
    events = [(e.name, dict(e.attributes or {})) for e in process[1].events]
    assert [(name, a["exception.type"], a["exception.message"]) for name, a in events] == [
        ("exception", "ValueError", "attempt 2 broke")
    ]
    assert process[0].links == ()
    first = _context(process[0])
    for retry in process[1:]:
        [link] = retry.links
        assert (link.context.span_id, dict(link.attributes or {})) == (
            first.span_id,
            {"hub_scheduler.link": "first_attempt"},
        )


async def test_a_dead_letter_retry_starts_a_trace_linked_to_its_origin(
    hub: Hub, spans: InMemorySpanExporter
) -> None:
    """A dead run retried from the dead-letter queue: its attempt is a new trace whose
    ``process`` span links to the dead run's creation context and names the origin run."""

    @hub.job("doomed", retry=RetryPolicy(max_retries=0))
    async def doomed(ctx: JobContext) -> None:
        raise RuntimeError("never works")

    origin = await hub.enqueue("doomed")
    await _work(hub, origin, RunState.DEAD)
    [gave_up] = _named(spans, "process doomed")
    assert gave_up.attributes is not None
    assert (gave_up.attributes["hub_scheduler.outcome"], gave_up.status.status_code) == (
        "gave_up",
        StatusCode.ERROR,
    )
    spans.clear()
    retried = await hub.dead_letters.retry(origin)
    await _work(hub, retried, RunState.DEAD)
    [again] = _named(spans, "process doomed")
    assert again.attributes is not None
    assert (again.attributes["messaging.message.id"], again.parent) == (retried, None)
    assert again.attributes["hub_scheduler.origin_run_id"] == origin
    assert again.attributes["hub_scheduler.trigger"] == "dead_letter_retry"
    [link] = again.links
    assert gave_up.parent is not None
    assert link.context.span_id == gave_up.parent.span_id
    assert link.context.trace_id != _context(again).trace_id
    assert dict(link.attributes or {}) == {"hub_scheduler.link": "dead_letter_retry"}


async def test_spans_a_handler_makes_are_children_of_its_attempt(
    spans: InMemorySpanExporter,
) -> None:
    """The ``process`` span is current while the handler runs (sync handlers too, in their
    thread), and the enqueue continues the caller's own trace."""
    hub = hub_for_tests(Hub())
    tracer = trace.get_tracer("app")

    @hub.job("inner")
    async def inner(ctx: JobContext) -> None:
        with tracer.start_as_current_span("inside async"):
            pass

    @hub.job("inner_sync")
    def inner_sync(ctx: JobContext) -> None:
        with tracer.start_as_current_span("inside sync"):
            pass

    with tracer.start_as_current_span("request") as request:
        await hub.enqueue("inner")
        await hub.enqueue("inner_sync")
    await run_until_idle(hub)
    await hub.aclose()
    by_name = {s.name: s for s in spans.get_finished_spans()}
    for send in ("send inner", "send inner_sync"):
        parent = by_name[send].parent
        assert parent is not None
        assert parent.span_id == request.get_span_context().span_id
    for child, attempt in (
        ("inside async", "process inner"),
        ("inside sync", "process inner_sync"),
    ):
        parent = by_name[child].parent
        assert parent is not None
        assert parent.span_id == _context(by_name[attempt]).span_id


async def test_a_cancelled_attempt_is_not_an_error(spans: InMemorySpanExporter) -> None:
    """An attempt stopped by a cancel request ends its span with outcome ``cancelled``, its
    status unset and no exception recorded."""
    hub = hub_for_tests(Hub())
    started = asyncio.Event()

    @hub.job("export")
    async def export(ctx: JobContext) -> None:
        started.set()
        await ctx.cancelled.wait()
        await ctx.check_cancelled()

    run_id = await hub.enqueue("export")
    async with hub.worker():
        await asyncio.wait_for(started.wait(), 5)
        await hub.cancel(run_id)
        await wait_for_state(hub, run_id, RunState.CANCELLED)
    await hub.aclose()
    [span] = _named(spans, "process export")
    assert span.attributes is not None
    assert (span.attributes["hub_scheduler.outcome"], span.status.status_code, span.events) == (
        "cancelled",
        StatusCode.UNSET,
        (),
    )


async def test_a_batch_shares_one_send_span(spans: InMemorySpanExporter) -> None:
    """enqueue_many makes one ``send`` span with the batch size; every run in it carries its
    context; an idempotent repeat's span names the first run."""
    hub = hub_for_tests(Hub())

    @hub.job("step")
    async def step(ctx: JobContext) -> None:
        pass

    ids = await hub.enqueue_many([Job("step", {"i": i}) for i in range(3)])
    [batch] = _named(spans, "send step")
    assert batch.attributes is not None
    assert batch.attributes["messaging.batch.message_count"] == 3
    runs = [await hub.history.get(run_id) for run_id in ids]
    parents = {run.trace_context["traceparent"] for run in runs if run.trace_context}
    context = _context(batch)
    assert parents == {
        f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    }
    spans.clear()
    first = await hub.enqueue("step", idempotency_key="k")
    assert await hub.enqueue("step", idempotency_key="k") == first
    repeat = _named(spans, "send step")[-1]
    assert repeat.attributes is not None
    assert repeat.attributes["messaging.message.id"] == first
    assert repeat.attributes["hub_scheduler.idempotent_repeat"] is True
    await hub.aclose()


async def test_a_refused_enqueue_ends_its_span_with_an_error(spans: InMemorySpanExporter) -> None:
    """A payload the store refuses: the ``send`` span records the error, nothing is stored."""
    hub = hub_for_tests(Hub())

    @hub.job("strict")
    async def strict(ctx: JobContext) -> None:
        pass

    with pytest.raises(PayloadError):
        await hub.enqueue("strict", {"bad": {1, 2}})
    [send] = _named(spans, "send strict")
    assert (await hub.history.list()).items == ()
    assert send.status.status_code is StatusCode.ERROR
    assert [e.name for e in send.events] == ["exception"]
    await hub.aclose()


async def test_without_a_tracer_provider_nothing_is_traced_or_stored() -> None:
    """With OpenTelemetry installed but no provider set, runs store no trace context and
    run as always."""
    _reset_global_provider()
    hub = hub_for_tests(Hub())
    _flaky(hub, failures=1)
    run_id = await hub.enqueue("flaky")
    [run] = await run_until_idle(hub)
    assert (run.id, run.state, run.attempt, run.trace_context) == (
        run_id,
        RunState.SUCCEEDED,
        2,
        None,
    )
    await hub.aclose()


#: Enqueue and run a job on memory://, then print its outcome, its trace context and whether
#: hub_scheduler went past its first check (a provider is set) and loaded any of the API.
PROBE = """
import asyncio
from hub_scheduler import Hub
from hub_scheduler.runtime import tracing
from hub_scheduler.testing import hub_for_tests, run_until_idle

async def main():
    hub = hub_for_tests(Hub())

    @hub.job("greet")
    async def greet(ctx):
        return "hi"

    await hub.enqueue("greet")
    [run] = await run_until_idle(hub)
    print(run.state.value, run.trace_context, tracing._otel)

asyncio.run(main())
"""


def test_an_application_that_does_not_trace_pays_one_check() -> None:
    """In a fresh process with no provider set, enqueueing and working store no trace context
    and never get past the provider check (hub_scheduler loads nothing of OpenTelemetry)."""
    done = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "succeeded None None\n", done.stderr
