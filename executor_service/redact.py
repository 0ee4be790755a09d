"""Take every secret value out of a Playwright trace, or say why that cannot be done.

A trace records what the test did and what the page held (a page may show a secret header's value
that its server echoed back): `fill` arguments in the action log
(`*.trace`, JSON lines), input values in the DOM snapshots, request bodies in the network log and
its resources. `redact_trace` rewrites the zip with every secret value replaced by `***`, in each
form a trace stores it: as typed, JSON-escaped, HTML-escaped and URL-encoded.

It refuses (returns the reason; the caller then keeps no trace) when it cannot be sure:
- a secret is shorter than `MIN_SECRET_CHARS`: replacing it everywhere would mangle the trace;
- after the rewrite a secret is still found, in any of those forms or base64-encoded, in any entry
  (a compressed or binary body it could not rewrite, say);
- the rewrite broke the trace's JSON (a secret that is also a piece of the trace's own syntax).
Screenshots (screencast frames) are pictures and cannot be searched: a job with secret values is
traced without them (`tracing.start(screenshots=False)`), so the only images are the page's own.
"""

from __future__ import annotations

import base64
import html
import json
import os
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "MIN_SECRET_CHARS", "masked", "masked_bytes", "redact_trace", "secret_forms", "secret_texts"]

MASK = "***"
#: Shorter secrets cannot be told apart from the rest of the trace.
MIN_SECRET_CHARS = 4
#: Entries that are pictures: never text, never searched.
_IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".webp", ".gif", ".ico", ".avif")
#: The trace's own logs, one JSON document per line.
_JSON_LINES_SUFFIXES = (".trace", ".network", ".stacks")


#: What JavaScript's `escape()` leaves as it is; `encodeURI()` and `encodeURIComponent()`, besides
#: letters and digits (Python's `quote` keeps `_.-~` always).
_JS_ESCAPE_SAFE = frozenset("@*_+-./")
_ENCODE_URI_SAFE = ";,/?:@&=+$-_.!~*'()#"
_ENCODE_URI_COMPONENT_SAFE = "-_.!~*'()"


def _form_encoded(text: str) -> str:
    """`URLSearchParams` / an HTML form's encoding of `text` (WHATWG urlencoded): `*-._` and
    letters and digits kept, a space as `+`, all else percent-encoded (`~` too)."""
    return quote(text, safe="*").replace("~", "%7E").replace("%20", "+")


def _js_escape(text: str) -> str:
    """JavaScript's `escape(text)`: `%XX` for other Latin-1 characters, `%uXXXX` above them (per
    UTF-16 code unit)."""
    units = text.encode("utf-16-le")
    out = []
    for i in range(0, len(units), 2):
        code = units[i] | units[i + 1] << 8
        char = chr(code)
        if char.isascii() and (char.isalnum() or char in _JS_ESCAPE_SAFE):
            out.append(char)
        else:
            out.append(f"%{code:02X}" if code < 256 else f"%u{code:04X}")
    return "".join(out)


def secret_texts(secret: str) -> list[str]:
    """The ways `secret` can appear in text — a trace, a server's answer, an error message, a page's
    console: as given, upper- and lower-cased, JSON-, Python-, HTML-escaped, URL-encoded (Python's and
    JavaScript's `encodeURIComponent`, `encodeURI`, `escape`), hex-encoded (either case), and
    base64-encoded whole (standard and URL-safe, padded or not, the padding URL-encoded too: a page
    that sends `btoa(secret)` in a query) — longest first (so no form is cut by another). A part of a
    secret, or a form not listed, is not found: the README says so."""
    raw = secret.encode()
    forms = {
        secret,
        secret.upper(),
        secret.lower(),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        html.escape(secret, quote=True),
        html.escape(secret, quote=False),
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        quote(secret, safe=_ENCODE_URI_SAFE),
        quote(secret, safe=_ENCODE_URI_COMPONENT_SAFE),
        _form_encoded(secret),
        _js_escape(secret),
        raw.hex(),
        raw.hex().upper(),
    }
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms |= {encoded, encoded.rstrip("="), quote(encoded, safe="")}
    return sorted((f for f in forms if f), key=len, reverse=True)


def secret_forms(secret: str) -> list[bytes]:
    """`secret_texts` as bytes, longest first."""
    return [form.encode() for form in secret_texts(secret)]


def masked(text: str, secrets: Iterable[str]) -> str:
    """`text` with every form of every secret (`secret_texts`) replaced by MASK. Mask before cutting
    a text short: a secret cut in two is no longer found."""
    for form in sorted({f for s in secrets if s for f in secret_texts(s)}, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def masked_bytes(data: bytes, secrets: Iterable[str]) -> bytes:
    """`masked` for bytes (a response body)."""
    return _scrub(data, sorted({f for s in secrets if s for f in secret_forms(s)}, key=len, reverse=True))


def _base64_cores(secret: str) -> list[bytes]:
    """The part of base64(… secret …) that does not depend on what surrounds it, for each of the
    three alignments the secret can have inside a longer encoded body."""
    raw = secret.encode()
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        # Only characters whose 6 bits all lie inside the secret's bytes are the same whatever
        # surrounds it: bits [8·offset, 8·(offset + n)) are the secret's.
        start = (offset * 8 + 5) // 6
        end = ((offset + len(raw)) * 8) // 6
        core = encoded[start:end]
        if len(core) >= MIN_SECRET_CHARS:
            cores.append(core)
    return cores


def _scrub(data: bytes, forms: Iterable[bytes]) -> bytes:
    for form in forms:
        data = data.replace(form, MASK.encode())
    return data


def _still_there(data: bytes, forms: Sequence[bytes]) -> bool:
    return any(form in data for form in forms)


def redact_trace(path: Path, secrets: Sequence[str]) -> str | None:
    """Rewrite the trace zip at `path` without any of `secrets`.

    Returns:
        None when the trace at `path` is now free of every secret; otherwise why it could not be
        made so (the caller must then delete it). Never includes a secret in the reason.
    """
    wanted = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not wanted:
        return None
    if any(len(s) < MIN_SECRET_CHARS for s in wanted):
        return f"a secret value is shorter than {MIN_SECRET_CHARS} characters, too short to find and mask"
    forms = sorted({f for s in wanted for f in secret_forms(s)}, key=len, reverse=True)
    search = forms + [core for s in wanted for core in _base64_cores(s)]
    tmp = path.with_name(path.name + ".redacting")
    try:
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                data = src.read(info)
                name = info.filename
                if not name.lower().endswith(_IMAGE_SUFFIXES):
                    data = _scrub(data, forms)
                    if _still_there(data, search):
                        return f"a secret value is still in trace entry {name!r} after masking"
                    if name.endswith(_JSON_LINES_SUFFIXES) and not _json_lines_ok(data):
                        return f"masking secret values broke trace entry {name!r}"
                dst.writestr(info, data)
        os.replace(tmp, path)
        return None
    except (OSError, zipfile.BadZipFile) as exc:
        return f"the trace could not be read for masking ({type(exc).__name__})"
    finally:
        tmp.unlink(missing_ok=True)


def _json_lines_ok(data: bytes) -> bool:
    try:
        for line in data.splitlines():
            if line.strip():
                json.loads(line)
    except ValueError:
        return False
    return True
