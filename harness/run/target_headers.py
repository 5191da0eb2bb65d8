"""Headers the load sends to an external system under test (`run --target-header`), for the
gateways that take their routing from each request: the open-source Portkey gateway reads its
whole config from `x-portkey-config`. A value `@FILE` is that file's content, so the config an
emitter wrote (`up --emit portkey FILE`) is sent as it is."""

from __future__ import annotations

import re
from pathlib import Path

Header = tuple[str, str]
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP field name (RFC 9110's token)."""


class HeaderError(ValueError):
    """A header the load cannot send as given (names which and why)."""


def parse_header(text: str) -> Header:
    """`NAME: VALUE` as (name, value template); the value may be `@FILE` and, with
    `--target-cmd`, hold that command's placeholders."""
    name, colon, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not colon or not name:
        raise HeaderError(f"--target-header {text!r}: write it as 'NAME: VALUE' (VALUE may be @FILE)")
    if not TOKEN.match(name):
        raise HeaderError(f"--target-header {text!r}: {name!r} is not an HTTP header name")
    return name, value


def resolve(header: Header) -> Header:
    """The header as sent: a `@FILE` value read from the file, surrounding whitespace dropped.
    A value may not span lines (HTTP forbids it): a config file must be written on one line."""
    name, value = header
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise HeaderError(f"--target-header {name}: cannot read {path}: {exc.strerror}") from None
    if "\n" in value or "\r" in value:
        raise HeaderError(f"--target-header {name}: the value spans lines; a header must be one line")
    return name, value


def headers_from(texts: tuple[str, ...], templated: bool) -> tuple[Header, ...]:
    """`--target-header` options as sent: parsed, and read now unless `templated` (a
    `--target-cmd`'s placeholders are filled in per stack, when it starts)."""
    headers = tuple(parse_header(text) for text in texts)
    return headers if templated else tuple(resolve(header) for header in headers)
