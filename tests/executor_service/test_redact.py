"""redact_trace on hand-made trace zips: every form of a secret goes, and doubt means no trace."""

from __future__ import annotations

import base64
import json
import zipfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from executor_service.redact import MASK, masked, redact_trace, secret_forms

SECRET = 'pa55 "w0rd"&<me>/+'


def make_trace(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def read(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_every_form_of_the_secret_is_masked_and_the_trace_stays_valid(tmp_path: Path) -> None:
    action = json.dumps({"type": "before", "method": "fill", "params": {"selector": "#pw", "value": SECRET}})
    snapshot = json.dumps({"type": "frame-snapshot", "html": f'<input __playwright_value_="{SECRET}">'})
    network = json.dumps({"request": {"postData": {"text": "token=" + quote_plus(SECRET)}}})
    picture = b"\xff\xd8\xff" + SECRET.encode()  # an image is left as it is
    trace = make_trace(
        tmp_path / "trace.zip",
        {
            "trace.trace": f"{action}\n{snapshot}\n".encode(),
            "trace.network": f"{network}\n".encode(),
            "resources/page.html": f"<p>{SECRET}</p><p>{SECRET.replace('&', '&amp;')}</p>".encode(),
            "resources/shot.jpeg": picture,
        },
    )

    assert redact_trace(trace, [SECRET]) is None
    entries = read(trace)
    for name in ("trace.trace", "trace.network", "resources/page.html"):
        assert all(form not in entries[name] for form in secret_forms(SECRET)), name
        assert MASK.encode() in entries[name]
    for line in (entries["trace.trace"] + entries["trace.network"]).splitlines():
        json.loads(line)
    assert json.loads(entries["trace.trace"].splitlines()[0])["params"]["value"] == MASK
    assert entries["resources/shot.jpeg"] == picture


def test_a_secret_base64_encoded_whole_is_masked_in_text() -> None:
    # A page that sends btoa(secret) in a query string: the failed-request line quotes it.
    raw = SECRET.encode()
    standard, urlsafe = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    line = f"GET /collect?b64={quote(standard, safe='')}&u={urlsafe.rstrip('=')}&plain={standard} — HTTP 404"
    assert masked(line, [SECRET]) == "GET /collect?b64=***&u=***&plain=*** — HTTP 404"


def test_a_secret_left_base64_encoded_means_no_trace(tmp_path: Path) -> None:
    body = base64.b64encode(b"prefix:" + SECRET.encode() + b":suffix")
    trace = make_trace(tmp_path / "trace.zip", {"trace.trace": b"{}\n", "resources/body.bin": body})

    reason = redact_trace(trace, [SECRET])

    assert reason == "a secret value is still in trace entry 'resources/body.bin' after masking"
    assert SECRET not in reason


def test_masking_that_would_break_the_trace_means_no_trace(tmp_path: Path) -> None:
    # A "secret" that is also a piece of the trace's own JSON syntax.
    trace = make_trace(tmp_path / "trace.zip", {"trace.trace": b'{"type": "before", "x": 1}\n'})
    assert redact_trace(trace, ['", "x']) == "masking secret values broke trace entry 'trace.trace'"


def test_a_short_secret_or_an_unreadable_trace_means_no_trace(tmp_path: Path) -> None:
    trace = make_trace(tmp_path / "trace.zip", {"trace.trace": b"{}\n"})
    assert redact_trace(trace, ["abc"]) == "a secret value is shorter than 4 characters, too short to find and mask"
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"not a zip")
    assert redact_trace(broken, [SECRET]) == "the trace could not be read for masking (BadZipFile)"
    assert redact_trace(trace, []) is None and read(trace) == {"trace.trace": b"{}\n"}


@pytest.mark.parametrize(
    ("secret", "seen"),
    [
        # What a page's script makes of the value it was given, as Node's JavaScript makes it.
        ("p@ss w0rd/&é+Q", "escape(v)=p@ss%20w0rd/%26%E9+Q"),
        ("p@ss w0rd/&é+Q", "encodeURI(v)=p@ss%20w0rd/&%C3%A9+Q"),
        ("p@ss w0rd/&é+Q", "encodeURIComponent(v)=p%40ss%20w0rd%2F%26%C3%A9%2BQ"),
        ("p@ss!word", "encodeURIComponent(v)=p%40ss!word"),  # `!*'()` stay as they are
        ("a b~c*d(e)", "encodeURIComponent(v)=a%20b~c*d(e)"),
        ("a b~c*d(e)", "new URLSearchParams({v}).toString()=v=a+b%7Ec*d%28e%29"),
        ("日本😀 x", "escape(v)=%u65E5%u672C%uD83D%uDE00%20x"),
        ("hunter2 pässword", "login failed for password: hunter2%20p%E4ssword"),
        ("p@ss w0rd/&é+Q", "hex=7040737320773072642f26c3a92b51"),
        ("p@ss w0rd/&é+Q", "HEX=7040737320773072642F26C3A92B51"),
        ("p@ss w0rd/&é+Q", "upper=P@SS W0RD/&É+Q"),
        ("p@ss w0rd/&é+Q", "uncaught Error: boom p@ss w0rd/&é+q"),
    ],
)
def test_a_secret_a_page_encoded_as_javascript_does_is_masked(secret: str, seen: str) -> None:
    said = masked(seen, [secret])
    assert said.endswith("***") and "***" in said, said
    assert secret not in said and secret.lower() not in said
