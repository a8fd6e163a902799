"""How the dashboard writes durations, costs and message bodies (web/figures.py)."""

from __future__ import annotations

import json

from agentmark_gateway.web.figures import Message, cost, duration, messages, readable


def test_durations_and_costs_read_at_a_glance():
    assert [duration(v) for v in (0.25, 840, 1250, 185_000)] == [
        "0.25 ms",
        "840 ms",
        "1.25 s",
        "3 min 5 s",
    ]
    assert [cost(v) for v in (0, 0.000036, 0.5, 12.3456)] == ["$0", "$0.000036", "$0.5", "$12.35"]


def test_a_chat_input_becomes_messages_and_anything_else_stays_text():
    chat = json.dumps(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        ]
    )
    assert messages(chat) == [Message("system", "Be brief."), Message("user", "Hi")]
    for other in (None, "", "plain words", '{"prompt": "hi"}', "[1, 2]", "[not json"):
        assert messages(other) is None
    assert readable('{"a":1}') == '{\n  "a": 1\n}'
    assert readable("[not json") == "[not json"
