"""The trace context a run may carry: small, W3C fields only, checked at enqueue, and never a
reason for a stored run to be unreadable."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub_scheduler.adapters.redis.codec import decode_run, encode_trace_context
from hub_scheduler.domain.errors import InvalidJobError
from hub_scheduler.domain.model import stored_trace_context, validate_trace_context
from hub_scheduler.domain.ports import EnqueueRequest

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize(
    "context",
    [
        {"traceparent": TRACEPARENT},
        {"traceparent": TRACEPARENT, "tracestate": "congo=t61rcWkgMzE"},
        {"traceparent": TRACEPARENT, "tracestate": "k=" + "v" * 510},
    ],
)
def test_w3c_contexts_are_accepted(context: dict[str, str]) -> None:
    """A traceparent, with or without a tracestate of up to 512 characters, is stored as is."""
    assert EnqueueRequest("job", trace_context=context).trace_context == context


@pytest.mark.parametrize(
    ("context", "reason"),
    [
        ({}, "it needs a traceparent"),
        ({"tracestate": "a=b"}, "it needs a traceparent"),
        (
            {"traceparent": TRACEPARENT, "baggage": "user=1"},
            "'baggage' is not one of traceparent, tracestate",
        ),
        ({"traceparent": ""}, "traceparent must be 1 to 128 characters, got 0"),
        ({"traceparent": "0" * 129}, "traceparent must be 1 to 128 characters, got 129"),
        (
            {"traceparent": TRACEPARENT, "tracestate": "k=" + "v" * 511},
            "tracestate must be 1 to 512 characters, got 513",
        ),
        ({"traceparent": "00-ü"}, "traceparent must be printable ASCII text"),
        (
            {"traceparent": "00-abc-def-01"},
            "traceparent is not version-traceid-parentid-flags in lowercase hex",
        ),
        (
            {"traceparent": TRACEPARENT.upper()},
            "traceparent is not version-traceid-parentid-flags in lowercase hex",
        ),
        ({"traceparent": "00\n01"}, "traceparent must be printable ASCII text"),
        ({"traceparent": 7}, "traceparent must be printable ASCII text"),
        ("00-abc", "it must be a mapping of strings, not str"),
    ],
)
def test_other_contexts_are_refused_at_enqueue(context: Any, reason: str) -> None:
    """Anything but small W3C fields is refused with the reason, before it reaches a store."""
    with pytest.raises(InvalidJobError) as caught:
        EnqueueRequest("job", trace_context=context)
    assert (caught.value.field, caught.value.reason) == ("trace_context", reason)
    assert stored_trace_context(context) is None


def test_no_context_is_none() -> None:
    """An untraced enqueue stores nothing; a bare traceparent is stored bare (it fits a
    Redis listpack value), one with a tracestate as JSON."""
    assert validate_trace_context(None) is None
    assert EnqueueRequest("job").trace_context is None
    assert encode_trace_context(None) == ""
    assert encode_trace_context({"traceparent": TRACEPARENT}) == TRACEPARENT
    with_state = {"traceparent": TRACEPARENT, "tracestate": "a=b"}
    assert encode_trace_context(with_state) == json.dumps(with_state, separators=(",", ":"))


_STORED = {"v": "1", "job": "job", "st": "queued", "enq": "0", "pri": "10"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),  # a run stored before trace contexts were
        ({"tc": TRACEPARENT}, {"traceparent": TRACEPARENT}),
        ({"tc": '{"traceparent":"' + TRACEPARENT + '"}'}, {"traceparent": TRACEPARENT}),
        (
            {"tc": '{"traceparent":"' + TRACEPARENT + '","tracestate":"a=b"}'},
            {"traceparent": TRACEPARENT, "tracestate": "a=b"},
        ),
        ({"tca": "x" * 200}, None),
        ({"tc": "{not json"}, None),
        ({"tc": '{"baggage":"x"}'}, None),
        ({"tc": '["a"]'}, None),
    ],
)
def test_a_stored_run_reads_whatever_its_trace_field_holds(
    fields: dict[str, str], expected: dict[str, str] | None
) -> None:
    """A Redis run hash with no ``tc`` field, or one that does not parse, reads as untraced."""
    run, _ = decode_run("r1", _STORED | fields)
    assert (run.id, run.trace_context if "tc" in fields else run.first_attempt_trace) == (
        "r1",
        expected,
    )
