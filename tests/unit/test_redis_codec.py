"""The Redis codec reads stored JSON the same whichever parser is installed."""

from __future__ import annotations

import json

import pytest

from hub_scheduler.adapters.redis import codec


@pytest.mark.parametrize(
    "value",
    [
        {"n": 1, "s": "é ✓", "f": 0.1, "l": [None, True, False], "o": {}},
        {"big": 2**70, "neg": -(2**64)},  # past 64 bits: orjson refuses, the stdlib reads it
        {"deep": [[[[{"x": 1.5e300}]]]]},
        [],
    ],
)
def test_loads_reads_what_json_wrote(value: object) -> None:
    """`codec.loads` returns what `json.loads` returns, from str and from bytes alike."""
    text = json.dumps(value, ensure_ascii=False)
    assert (codec.loads(text), codec.loads(text.encode())) == (value, value)


def test_loads_refuses_what_is_not_json() -> None:
    """Text that is not JSON raises ValueError, as with the stdlib."""
    with pytest.raises(ValueError, match=r"^Expecting property name"):
        codec.loads("{not json")
