"""The dashboard's session, CSRF and rendering, and the dependencies built on them.

Sign-in takes an API token and keeps it in an HttpOnly, SameSite=Strict cookie scoped to the
dashboard. Every action is a POST carrying an ``X-Hub-CSRF`` header whose value is an HMAC of
the session (htmx adds it from the page); a cross-site form can neither read nor send it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
import jinja2
from litestar import MediaType, Request, Response
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.params import SkipValidation
from litestar.response import Redirect
from markupsafe import escape

from hub_scheduler.domain.admin import Actor
from hub_scheduler.domain.errors import HubSchedulerError
from hub_scheduler.entrypoints.api import problems
from hub_scheduler.entrypoints.api.auditing import actor_of, note_refusal
from hub_scheduler.entrypoints.api.dashboard import formatting
from hub_scheduler.entrypoints.api.security import ADMIN, ROLES, Principal, decode_principal

logger = logging.getLogger("hub_scheduler.api")
COOKIE = "hub_session"
CSRF_HEADER = "x-hub-csrf"
CHANNEL = "dashboard"
SIGN_IN_FIRST = "sign in at the dashboard first"
#: The dashboard's static files: vendored htmx and uPlot, its scripts, styles and icon.
ASSETS = Path(str(resources.files(__package__) / "static"))


@functools.cache
def asset(name: str) -> str:
    """The path of the static file `name` below the dashboard, with a hash of its content:
    a new release's file gets a new URL, so browsers may cache each one for a year."""
    digest = hashlib.sha256((ASSETS / name).read_bytes()).hexdigest()[:12]
    return f"static/{name}?v={digest}"


_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(resources.files(__package__) / "templates")),
    autoescape=True,
)
_templates.filters.update(when=formatting.when, duration=formatting.duration)
_templates.globals.update(between=formatting.between, asset=asset)


@attrs.frozen
class Session:
    """A signed-in dashboard user, the token they signed in with, and their CSRF value."""

    user: Principal
    token: str
    csrf: str

    @property
    def can_act(self) -> bool:
        """Whether the user may change anything (the page shows buttons only then)."""
        return ADMIN in self.user.roles


@attrs.frozen
class Site:
    """One mounted dashboard: where it lives and the secret its sessions are signed with."""

    secret: str
    path: str

    def url(self, relative: str) -> str:
        """An absolute path inside the dashboard."""
        return f"{self.path}{relative}"

    def render(self, template: str, **context: Any) -> Response[str]:
        """An HTML page or fragment."""
        html = _templates.get_template(template).render(prefix=self.path, **context)
        return Response(html, media_type=MediaType.HTML)

    def principal(self, token: str) -> Principal | None:
        """Who a token names, if it is valid, unexpired and signed by us."""
        return decode_principal(token, self.secret)

    def cookie_principal(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
        """Who the session cookie names (what the rate limits count a request as)."""
        token = connection.cookies.get(COOKIE)
        return self.principal(token) if token else None

    def csrf_for(self, token: str) -> str:
        """The CSRF value of a session."""
        return hmac.new(self.secret.encode(), token.encode(), hashlib.sha256).hexdigest()

    def session_of(self, request: Request[Any, Any, Any]) -> Session | None:
        """The request's session: a valid token with an admin role in the cookie."""
        token = request.cookies.get(COOKIE)
        user = self.principal(token) if token else None
        if user is None or token is None or not set(user.roles) & set(ROLES):
            return None
        return Session(user, token, self.csrf_for(token))

    def error(self, request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        """Any error as an alert fragment (escaped, never problem+json), with the error's
        headers (Retry-After on a 429); a signed-out page load goes to the sign-in page
        instead. A refusal is noted for `RefusalAudit`."""
        headers: dict[str, str] = {}
        if isinstance(exc, HubSchedulerError):
            status, text = problems.domain_status(exc)
        elif isinstance(exc, HTTPException):
            status, text = exc.status_code, exc.detail
            headers.update(exc.headers or {})
            note_refusal(request, exc)
        else:
            logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
            status, text = 500, "unexpected error"
        if status == 401 and request.method == "GET" and "hx-request" not in request.headers:
            return Redirect(self.url("/login"))
        if status == 503:
            headers = {**problems.UNAVAILABLE_RETRY_AFTER, **headers}
        return Response(
            f"<p role='alert'>{escape(text)}</p>",
            status_code=status,
            media_type=MediaType.HTML,
            headers=headers or None,
        )


# --- dependencies --------------------------------------------------------------------------

SiteDep = NamedDependency[SkipValidation[Site]]
SessionDep = NamedDependency[SkipValidation[Session | None]]
"""The request's session, None when not signed in."""
ViewerDep = NamedDependency[SkipValidation[Session]]
"""The request's session; 401 when not signed in."""


def current_session(request: Request[Any, Any, Any], site: SiteDep) -> Session | None:
    """Dependency: the request's session, if signed in."""
    return site.session_of(request)


def signed_in(session: SessionDep) -> Session:
    """Dependency for reads: the session, or 401 (the page sends the browser to sign in)."""
    if session is None:
        raise NotAuthorizedException(SIGN_IN_FIRST)
    return session


def _refusal(request: Request[Any, Any, Any], session: Session | None) -> HTTPException | None:
    """Why an action may not proceed, if it may not."""
    if session is None:
        return NotAuthorizedException(SIGN_IN_FIRST)
    if not hmac.compare_digest(request.headers.get(CSRF_HEADER, ""), session.csrf):
        return PermissionDeniedException("missing or wrong CSRF header")
    if not session.can_act:
        return PermissionDeniedException(f"the {ADMIN} role is required")
    return None


def dashboard_actor(request: Request[Any, Any, Any], session: SessionDep) -> Actor:
    """Dependency for actions: the signed-in admin who sent the right CSRF header.

    Anything else is refused (401 without a session, 403 for a wrong or missing CSRF header
    or a role that may not act); `RefusalAudit` audits the refusal.
    """
    refusal = _refusal(request, session)
    if refusal is not None:
        raise refusal
    assert session is not None  # a request without a session was refused above
    return actor_of(request, CHANNEL, session.user)
