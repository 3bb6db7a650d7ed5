"""OpenTelemetry spans for enqueues and attempts, when the application traces.

Tracing is on when ``opentelemetry-api`` is installed (the ``otel`` extra), the application
has imported it and set a tracer provider (``trace.set_tracer_provider``). Otherwise every
function here answers None after a dictionary lookup and an ``isinstance``: nothing is
imported, no span is made and no trace context is stored.

What is traced follows OpenTelemetry's messaging semantic conventions:

- ``send {job}`` (kind PRODUCER) around an enqueue. Its context, as W3C ``traceparent`` and
  ``tracestate`` (`TraceContext`), is stored with each run it enqueues: a batch shares the
  one span, whose context is then every message's creation context.
- ``process {job}`` (kind CONSUMER) around every attempt, a child of the stored context, so
  one trace shows the enqueue and every attempt after it. Retries carry a Link to the first
  attempt's span (``hub_scheduler.link = first_attempt``): when a first attempt fails and a
  retry follows, the worker stores that span's context with the run (`AttemptTraces`) before
  settling. Where it is not stored (the first attempt stalled, the store refused) and for a
  run again after a stall, the link goes to the creation context instead (the conventions'
  "process spans SHOULD link to the creation context"), ``hub_scheduler.link = retry``.
  A dead-letter retry starts a trace of its own, linked to the dead run's creation context
  (``hub_scheduler.link = dead_letter_retry``). Runs a schedule fires (and runs an admin triggers)
  carry no context: each of their attempts starts a trace.

Attributes: ``messaging.system`` (``hub_scheduler``), ``messaging.operation.type`` and
``.name``, ``messaging.destination.name`` (the job), ``messaging.message.id`` (the run id),
``messaging.batch.message_count`` for a batch, and ``hub_scheduler.attempt``,
``.priority``, ``.trigger``, ``.worker``, ``.schedule_id``, ``.origin_run_id``,
``.outcome`` (``succeeded``, ``failed``, ``gave_up``, ``interrupted``, ``cancelled``) and
``.retry_delay_ms`` where they apply. A failed or interrupted attempt records an
``exception`` event (type, message, traceback as stored) and ends with status ERROR; one
cancelled on request ends with its status unset.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import timedelta
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from hub_scheduler.domain.errors import BackendUnavailableError
from hub_scheduler.domain.model import (
    TRACE_CONTEXT_LIMITS,
    Run,
    RunTrigger,
    stored_trace_context,
)
from hub_scheduler.domain.ports import (
    AttemptTraces,
    Claim,
    Enqueued,
    EnqueueRequest,
    Failed,
    Outcome,
)
from hub_scheduler.domain.retry import GiveUp

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

SYSTEM = "hub_scheduler"
logger = logging.getLogger("hub_scheduler.worker")
_TRACE_MODULE = "opentelemetry.trace"


@attrs.define
class _Otel:
    """The OpenTelemetry API, once the application has loaded it."""

    trace: ModuleType
    context: ModuleType
    propagator: Any
    #: The provider of `_tracer`, held so that a new provider is never taken for it.
    _provider: object = None
    _tracer: Tracer | None = None

    def tracer(self, provider: Any) -> Tracer:
        tracer = self._tracer
        if tracer is None or provider is not self._provider:
            tracer = provider.get_tracer(SYSTEM, _version())
            self._tracer, self._provider = tracer, provider
        return tracer


_otel: _Otel | None = None
_UNKNOWN = object()
#: Whether the environment names a provider for the API to load (read once, at import).
_PROVIDER_FROM_ENV = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ


def _version() -> str | None:
    try:
        return importlib.metadata.version("hub-scheduler")
    except importlib.metadata.PackageNotFoundError:
        return None


def _tracer() -> tuple[_Otel, Tracer] | None:
    """The API and a tracer when the application traces, else None (see the module doc)."""
    global _otel  # noqa: PLW0603 - loaded once, on first use by a tracing application
    trace = sys.modules.get(_TRACE_MODULE)
    if trace is None:  # nobody imported the API, so nobody set a provider
        return None
    # The fast path: the API's global, None until the application sets a provider (or one
    # named by OTEL_PYTHON_TRACER_PROVIDER is loaded); get_tracer_provider() reads the
    # environment on every call while none is set (~0.7 us), for each enqueue and attempt.
    provider = getattr(trace, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is None and not _PROVIDER_FROM_ENV:
        return None
    if provider is None or provider is _UNKNOWN:
        provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    if _otel is None:
        from opentelemetry import context  # noqa: PLC0415
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )

        _otel = _Otel(trace, context, TraceContextTextMapPropagator())
    return _otel, _otel.tracer(provider)


def _carrier(otel: _Otel, span: Span) -> dict[str, str] | None:
    """The W3C fields of `span`'s context, cut to what a run may store."""
    carrier: dict[str, str] = {}
    otel.propagator.inject(carrier, context=otel.trace.set_span_in_context(span))
    kept = {
        key: value
        for key, value in carrier.items()
        if key in TRACE_CONTEXT_LIMITS and len(value) <= TRACE_CONTEXT_LIMITS[key]
    }
    return stored_trace_context(kept)


@attrs.define
class SendTrace:
    """The ``send`` span of one enqueue call; use as a context manager around the store."""

    otel: _Otel
    span: Span
    #: The requests, each carrying the span's trace context.
    requests: list[EnqueueRequest]
    _token: object = None

    def __enter__(self) -> SendTrace:
        self._token = self.otel.context.attach(self.otel.trace.set_span_in_context(self.span))
        return self

    def answered(self, answers: Sequence[Enqueued]) -> None:
        """Record the run ids the store answered."""
        if len(answers) == 1:
            self.span.set_attribute("messaging.message.id", answers[0].run_id)
            if not answers[0].created:
                self.span.set_attribute("hub_scheduler.idempotent_repeat", value=True)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is not None:
                self.span.record_exception(exc)
                self.span.set_status(self.otel.trace.StatusCode.ERROR, f"{type(exc).__name__}")
        finally:
            self.otel.context.detach(self._token)
            self.span.end()


def start_send(requests: Sequence[EnqueueRequest]) -> SendTrace | None:
    """A ``send`` span for enqueueing `requests`, or None when the application does not
    trace (then nothing is added to them)."""
    found = _tracer()
    if found is None or not requests:
        return None
    otel, tracer = found
    jobs = {request.job for request in requests}
    job = next(iter(jobs)) if len(jobs) == 1 else None
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "enqueue",
    }
    if job is not None:
        attributes["messaging.destination.name"] = job
    if len(requests) > 1:
        attributes["messaging.batch.message_count"] = len(requests)
    else:
        attributes["hub_scheduler.priority"] = int(requests[0].priority)
    span = tracer.start_span(
        f"send {job}" if job else "send", kind=otel.trace.SpanKind.PRODUCER, attributes=attributes
    )
    carrier = _carrier(otel, span)
    traced = [attrs.evolve(request, trace_context=carrier) for request in requests]
    return SendTrace(otel, span, traced)


def _parent_and_links(otel: _Otel, run: Run) -> tuple[Context, list[Any]]:
    empty = otel.context.Context()
    if run.trace_context is None:
        return empty, []
    stored = otel.propagator.extract(dict(run.trace_context), context=empty)
    creation = otel.trace.get_current_span(stored).get_span_context()
    if not creation.is_valid:
        return empty, []
    if run.trigger is RunTrigger.DEAD_LETTER_RETRY:
        link = otel.trace.Link(creation, {"hub_scheduler.link": "dead_letter_retry"})
        return empty, [link]
    if run.attempt > 1 or run.stalls:
        first = _span_context(otel, run.first_attempt_trace) if run.attempt > 1 else None
        if first is not None:
            return stored, [otel.trace.Link(first, {"hub_scheduler.link": "first_attempt"})]
        return stored, [otel.trace.Link(creation, {"hub_scheduler.link": "retry"})]
    return stored, []


def _span_context(otel: _Otel, carrier: Mapping[str, str] | None) -> Any:
    """The valid span context `carrier` holds, else None."""
    if carrier is None:
        return None
    extracted = otel.propagator.extract(dict(carrier), context=otel.context.Context())
    context = otel.trace.get_current_span(extracted).get_span_context()
    return context if context.is_valid else None


#: The worker's own endings of an attempt (its `GiveUp(0)` outcomes), by error type: a stop
#: whose grace ran out, and a cancel request.
_ENDED_BY_WORKER = {"InterruptedError": "interrupted", "RunCancelledError": "cancelled"}
_MS = timedelta(milliseconds=1)


@attrs.define
class ProcessTrace:
    """The ``process`` span of one attempt; current while the handler runs, so spans the
    handler makes are its children."""

    otel: _Otel
    span: Span
    _token: object = None

    def __enter__(self) -> ProcessTrace:
        self._token = self.otel.context.attach(self.otel.trace.set_span_in_context(self.span))
        return self

    def outcome(self, outcome: Outcome) -> None:
        """Record how the attempt ended: status ERROR and an ``exception`` event if it failed."""
        span = self.span
        if not isinstance(outcome, Failed):
            span.set_attribute("hub_scheduler.outcome", "succeeded")
            span.set_status(self.otel.trace.StatusCode.OK)
            return
        error, decision = outcome.error, outcome.decision
        if isinstance(decision, GiveUp):
            ended = _ENDED_BY_WORKER.get(error.type) if decision.attempts == 0 else None
            span.set_attribute("hub_scheduler.outcome", ended or "gave_up")
            if ended == "cancelled":  # as asked: not an error of the attempt
                return
        else:
            span.set_attribute("hub_scheduler.outcome", "failed")
            span.set_attribute("hub_scheduler.retry_delay_ms", decision.delay // _MS)
        span.add_event(
            "exception",
            {
                "exception.type": error.type,
                "exception.message": error.message,
                "exception.stacktrace": error.traceback,
            },
        )
        span.set_status(self.otel.trace.StatusCode.ERROR, f"{error.type}: {error.message}")

    async def keep_for_retries(self, claim: Claim, outcome: Outcome, queue: object) -> None:
        """After a first attempt that failed and will be retried, store its span's context
        with the run (`AttemptTraces`) so the retries' spans link to it; before the outcome
        is settled, so no retry can start first. A store that cannot is logged, not raised:
        tracing never fails a job (the retries then link to the enqueue's context)."""
        if (
            claim.run.attempt != 1
            or not isinstance(outcome, Failed)
            or isinstance(outcome.decision, GiveUp)
            or not isinstance(queue, AttemptTraces)
        ):
            return
        context = _carrier(self.otel, self.span)
        if context is None:
            return
        try:
            await queue.keep_first_attempt_trace(claim, context)
        except BackendUnavailableError as exc:
            logger.warning("run %s: first attempt's trace not kept: %s", claim.run.id, exc)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is not None:  # the worker itself was cancelled or broke
                self.span.record_exception(exc)
                self.span.set_status(self.otel.trace.StatusCode.ERROR, type(exc).__name__)
        finally:
            self.otel.context.detach(self._token)
            self.span.end()


def start_process(run: Run) -> ProcessTrace | None:
    """A ``process`` span for the attempt of `run` about to start, or None when the
    application does not trace."""
    found = _tracer()
    if found is None:
        return None
    otel, tracer = found
    parent, links = _parent_and_links(otel, run)
    attributes: dict[str, Any] = {
        "messaging.system": SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": run.job,
        "messaging.message.id": run.id,
        "hub_scheduler.attempt": run.attempt,
        "hub_scheduler.priority": int(run.priority),
        "hub_scheduler.trigger": run.trigger.value,
    }
    optional: Mapping[str, str | None] = {
        "hub_scheduler.worker": run.worker,
        "hub_scheduler.schedule_id": run.schedule_id,
        "hub_scheduler.origin_run_id": run.origin_run_id,
    }
    attributes.update({key: value for key, value in optional.items() if value is not None})
    span = tracer.start_span(
        f"process {run.job}",
        context=parent,
        kind=otel.trace.SpanKind.CONSUMER,
        attributes=attributes,
        links=links,
    )
    return ProcessTrace(otel, span)
