"""Secrets never leave the process: one masking function for URLs in text, and its walk over JSON-like data.

Every path by which a source URL leaves mtmc goes through :func:`mask_text`
(log lines, error messages, ``mtmc config``) or :func:`redact` (the config dumps
in ``summary.json`` / ``trajectories.json`` and every line of ``events.jsonl``,
via the JSON writers). Masked:

* the user info of a URL: ``rtsp://admin:Secret9@host/s`` → ``rtsp://***:***@host/s``;
* query (or ``;`` matrix) parameters whose name holds one of :data:`SECRET_WORDS`,
  case-insensitive: ``?user=a&password=X`` → ``?user=a&password=***``
  (``access_token``, ``X-Amz-Signature``, ``apikey`` … are caught too).
"""

from __future__ import annotations

import re
from typing import Any

SECRET_WORDS = ("password", "passwd", "pass", "pwd", "token", "key", "secret", "auth", "signature", "credential")
MASK = "***"

_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"]*@")
_PARAM = re.compile(r"([?&;])([^=&;#?\s'\"/]+)=([^&;#\s'\"]*)")


def _param(m: re.Match[str]) -> str:
    name = m.group(2)
    if any(w in name.lower() for w in SECRET_WORDS) and m.group(3):
        return f"{m.group(1)}{name}={MASK}"
    return m.group(0)


def mask_text(text: str) -> str:
    """``text`` with the secrets of every URL inside it masked (module docstring).

    Works on a bare URL and on messages that quote one (FFmpeg, GStreamer
    errors); the user info runs to the last ``@`` before the URL's path, so a
    password holding ``@`` is masked whole. Text without a URL is returned as is.
    """
    if "@" in text:
        text = _USERINFO.sub(rf"\1{MASK}:{MASK}@", text)
    if "=" in text:
        text = _PARAM.sub(_param, text)
    return text


def redact(data: Any) -> Any:
    """A copy of JSON-like ``data`` (dicts, lists, tuples, scalars) with :func:`mask_text` applied to every string.

    Dict keys are kept as they are (config keys, camera ids); numbers, booleans and
    ``None`` are returned unchanged.
    """
    if isinstance(data, str):
        return mask_text(data)
    if isinstance(data, dict):
        return {k: redact(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact(v) for v in data]
    return data
