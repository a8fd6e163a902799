"""Request ids (observability/request_id.py) and log lines (observability/logs.py)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmark_gateway.observability import request_id
from agentmark_gateway.observability.logs import (
    _SECRETS,
    REDACTED,
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    redact,
)

KEY = "sk_agentmark_" + "A1b2C3d4" * 4 + "Zz9Yy8"


def _headers(*values: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"gw"), *((b"x-request-id", value) for value in values)]


@pytest.mark.parametrize(
    "sent", [b"abc", b"0f8fad5b-d9cb-469f-a165-70867728950e", b"!~" * 64, b"req:42/a.b_c"]
)
def test_a_sane_incoming_request_id_is_kept(sent):
    assert request_id.from_headers(_headers(sent)) == sent


@pytest.mark.parametrize(
    "sent",
    [b"", b"a" * 129, b"has space", b"new\nline", b"tab\there", "caf\u00e9".encode(), b"\x00"],
)
def test_an_unfit_incoming_request_id_is_replaced(sent):
    made = request_id.from_headers(_headers(sent))
    assert made != sent
    assert made.isascii() and made.isalnum() and len(made) <= request_id.MAX_LENGTH


def test_only_the_first_incoming_request_id_counts():
    assert request_id.from_headers(_headers(b"first", b"second")) == b"first"


def test_made_ids_are_unique():
    made = {request_id.from_headers(_headers()) for _ in range(1000)}
    assert len(made) == 1000


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"refused {KEY} for app_1", KEY),
        ("session ses_Q2xhdWRlIGlzIG5vdCBoZXJlIGF0IGFsbA expired", "Q2xhdWRlIGlzIG5vdCBoZXJl"),
        ('"GET /setup/Zm9vYmFyYmF6cXV4cXV1eA HTTP/1.1" 200', "Zm9vYmFyYmF6cXV4cXV1eA"),
        ('"POST /invite/abc-DEF_123 HTTP/1.1" 303', "abc-DEF_123"),
        ("Authorization: Bearer mytoken.with-dots", "mytoken.with-dots"),
    ],
)
def test_redact_masks_keys_session_tokens_and_link_tokens(text, secret):
    masked = redact(text)
    assert secret not in masked
    assert "[redacted]" in masked


@given(
    st.lists(
        st.sampled_from(["sk_agentmark_", "ses_", "/setup/", "/invite/", "Bearer ", "bearer\t"])
        | st.text(max_size=12),
        max_size=6,
    ).map("".join)
)
def test_redact_skips_the_pattern_only_where_it_cannot_match(text):
    """The shortcut for lines with none of the prefixes never changes an answer."""
    assert redact(text) == _SECRETS.sub(lambda match: match["keep"] + REDACTED, text)


def test_redact_leaves_ordinary_text_alone():
    text = "GET /v1/traces/abc123?limit=5 200 in 3 ms (app_12)"
    assert redact(text) == text


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(f"bad value {KEY}\nsecond line")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord(
        "agentmark_gateway.x", logging.WARNING, __file__, 1, message, args, exc_info
    )
    RequestIdFilter().filter(record)
    return record


def test_a_json_line_is_one_object_with_the_request_id():
    token = request_id.REQUEST_ID.set(b"req-7")
    try:
        record = _record("stored %d spans for %s", 3, KEY, exc=True)
    finally:
        request_id.REQUEST_ID.reset(token)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "req-7"
    assert entry["level"] == "warning"
    assert entry["logger"] == "agentmark_gateway.x"
    assert entry["message"] == "stored 3 spans for sk_agentmark_[redacted]"
    assert "ValueError" in entry["exception"] and KEY not in entry["exception"]
    assert entry["time"].endswith("Z")


def test_lines_outside_a_request_have_no_request_id():
    entry = json.loads(JsonFormatter().format(_record("started")))
    assert "request_id" not in entry
    assert TextFormatter().format(_record("started")).split()[4] == "[-]"


def test_the_server_configuration_makes_every_line_json(tmp_path):
    """dict_config as a server applies it: its own loggers and the servers' propagate
    to one handler; a fresh interpreter, so this process's logging stays as it is."""
    script = textwrap.dedent(
        f"""
        import logging
        from agentmark_gateway.observability import logs, request_id
        from agentmark_gateway.settings import Settings

        logs.configure(Settings(data_dir={str(tmp_path)!r}, log_format="json"))
        logging.getLogger("uvicorn.error").info("Started server process")
        token = request_id.REQUEST_ID.set(b"abc-1")
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/setup/secret-token", "1.1", 200
        )
        logging.getLogger("agentmark_gateway.runtime").warning("multi\\nline")
        request_id.REQUEST_ID.reset(token)
        logging.getLogger("agentmark_gateway.db").debug("not at info")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stderr.splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["logger"] for e in entries] == [
        "uvicorn.error",
        "uvicorn.access",
        "agentmark_gateway.runtime",
    ]
    assert "request_id" not in entries[0]
    assert entries[1]["request_id"] == "abc-1" and entries[2]["request_id"] == "abc-1"
    assert "secret-token" not in done.stderr
    assert entries[2]["message"] == "multi\nline"
