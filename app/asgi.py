"""The review app as an ASGI app: `app/main.py` behind security headers. `aiaudit app` serves this.

The policy allows only this origin: no external scripts, styles, fonts or connections, no framing. Streamlit's
own frontend needs inline scripts and styles and `eval` (its charts compile expressions), so those stay allowed.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
                               "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
                               "connect-src 'self' ws: wss:; worker-src 'self' blob:; frame-ancestors 'none'; "
                               "object-src 'none'; base-uri 'self'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):  # noqa: ANN001, ANN201 - Starlette's signature
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers[name] = value
        return response


app = st.App(str(Path(__file__).with_name("main.py")), middleware=[Middleware(SecurityHeaders)])
