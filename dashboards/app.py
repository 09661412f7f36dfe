"""The review console and control API: ``create_app(settings) -> FastAPI``.

Every page has a JSON twin (``/queue`` and ``/queue.json``); both get the same data from
:mod:`dashboards.views`. Every route needs a session except ``/signin``, ``/healthz`` and the static
files; state-changing routes also need the session's CSRF token (``X-CSRF-Token`` header) and are
refused cross-origin by :class:`dashboards.security.SameOriginMiddleware`.
"""

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from dashboards import auth, decisions, views
from dashboards.auth import Role, Session, User
from dashboards.control import ControlPlane
from dashboards.exceptions import DashboardsError
from dashboards.security import (
    SameOriginMiddleware,
    SecurityHeadersMiddleware,
    script_json,
    to_json,
)
from dashboards.settings import DashboardsSettings, get_settings
from dashboards.throttle import SignInThrottle
from ingest.warehouse import Warehouse

COOKIE = "dg_session"
PACKAGE = Path(str(resources.files("dashboards")))


class NotSignedIn(Exception):
    """No valid session: pages redirect to /signin, the API answers 401."""


class Forbidden(Exception):
    """Signed in, but the role or the CSRF token does not allow this."""


def json_response(data: Any, status: int = 200) -> Response:
    return Response(to_json(data), status_code=status, media_type="application/json")


class Target(BaseModel):
    kind: Literal["ring", "account"]
    id: str = Field(min_length=1, max_length=200)


class DecisionRequest(BaseModel):
    targets: list[Target] = Field(min_length=1, max_length=1000)
    action: str
    reason: str = Field(max_length=decisions.MAX_REASON)


class ClaimRequest(BaseModel):
    targets: list[Target] = Field(min_length=1, max_length=1000)
    release: bool = False


class NewUser(BaseModel):
    username: str
    role: str
    password: str | None = None


def create_app(
    settings: DashboardsSettings | None = None, control: ControlPlane | None = None
) -> FastAPI:
    """The console. Pass ``control`` to share one control plane (tests); else one is opened."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        plane = control or ControlPlane(settings)
        app.state.control = plane
        if settings.background:
            plane.start()
        try:
            yield
        finally:
            plane.stop()
            if control is None:
                plane.close()

    app = FastAPI(title="distillguard console", lifespan=lifespan, docs_url=None, redoc_url=None)
    if control is not None:
        app.state.control = control
    app.add_middleware(SameOriginMiddleware, allowed_origins=settings.allowed_origins)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: refusals get the headers too
    templates = Jinja2Templates(directory=str(PACKAGE / "templates"))
    throttle = SignInThrottle(settings.signin_max_failures, settings.signin_window_s)
    app.state.signin_throttle = throttle
    app.mount("/static", StaticFiles(directory=str(PACKAGE / "static")), name="static")

    # -- plumbing ----------------------------------------------------------------------------
    def plane(request: Request) -> ControlPlane:
        return request.app.state.control

    def warehouse(request: Request) -> Iterator[Warehouse]:
        with plane(request).cursor() as wh:
            yield wh

    Wh = Annotated[Warehouse, Depends(warehouse)]

    def session(request: Request, wh: Wh) -> Session:
        token = request.cookies.get(COOKIE)
        found = auth.find_session(wh, token) if token else None
        if found is None:
            raise NotSignedIn()
        return found

    Sess = Annotated[Session, Depends(session)]

    def role(required: Role) -> Callable[[Session], User]:
        def check(s: Sess) -> User:
            if not s.user.can(required):
                raise Forbidden(
                    f"this needs the {required} role; {s.user.username} is a {s.user.role}"
                )
            return s.user

        return check

    def csrf(request: Request, s: Sess) -> Session:
        sent = request.headers.get("x-csrf-token", "")
        if not secrets.compare_digest(sent.encode(), s.csrf_token.encode()):
            raise Forbidden("missing or wrong CSRF token")
        return s

    Viewer = Annotated[User, Depends(role("viewer"))]
    Reviewer = Annotated[User, Depends(role("reviewer"))]
    Admin = Annotated[User, Depends(role("admin"))]
    Csrf = Annotated[Session, Depends(csrf)]

    def page(request: Request, name: str, data: dict[str, Any], s: Session | None) -> Response:
        return templates.TemplateResponse(
            request,
            name,
            {
                "data": data,
                "data_json": script_json(data),
                "user": s.user if s else None,
                "csrf": s.csrf_token if s else "",
            },
        )

    def twin(request: Request, name: str, data: dict[str, Any], s: Session) -> Response:
        """The page, or its JSON twin when the path ends in ``.json``."""
        return json_response(data) if _format(request) == "json" else page(request, name, data, s)

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        path = request.url.path
        data_format = path.endswith((".json", ".csv", ".parquet"))
        if request.method == "GET" and not data_format and not path.startswith("/api/"):
            return RedirectResponse(f"/signin?next={quote(path)}", status_code=303)
        return json_response({"error": "sign in first"}, 401)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return json_response({"error": str(exc)}, 403)

    @app.exception_handler(DashboardsError)
    async def _refused(request: Request, exc: DashboardsError) -> Response:
        return json_response({"error": str(exc), **exc.details()}, exc.status_code)

    # -- public --------------------------------------------------------------------------------
    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"ok": True})

    @app.get("/signin")
    def signin_page(request: Request, next: str = "/") -> Response:
        return page(request, "signin.html", {"page": "signin", "next": _local(next)}, None)

    @app.post("/signin")
    def signin(
        request: Request,
        wh: Wh,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=1024)],
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        address = request.client.host if request.client else ""
        wait = throttle.retry_after(username, address)
        if wait:
            message = f"too many failed sign-ins: try again in {wait} s"
            data = {"page": "signin", "next": _local(next), "error": message}
            response = page(request, "signin.html", data, None)
            response.status_code = 429
            response.headers["retry-after"] = str(wait)
            return response
        user = auth.authenticate(wh, username, password)
        if user is None:
            throttle.failed(username, address)
            data = {"page": "signin", "next": _local(next), "error": "wrong username or password"}
            response = page(request, "signin.html", data, None)
            response.status_code = 401
            return response
        throttle.succeeded(username)
        token, _ = auth.open_session(wh, user, settings.session_ttl_s)
        response = RedirectResponse(_local(next), status_code=303)
        secure = settings.cookie_secure == "always" or (
            settings.cookie_secure == "auto" and request.url.scheme == "https"
        )
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(settings.session_ttl_s),
            httponly=True,
            samesite="strict",
            secure=secure,
            path="/",
        )
        return response

    @app.post("/signout")
    def signout(request: Request, wh: Wh, s: Csrf) -> Response:
        auth.close_session(wh, request.cookies.get(COOKIE, ""))
        response = json_response({"signed_out": s.user.username})
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- pages and their JSON twins ------------------------------------------------------------
    @app.get("/")
    def home() -> Response:
        return RedirectResponse("/overview", status_code=303)

    @app.get("/overview.json")
    @app.get("/overview")
    def overview(request: Request, wh: Wh, user: Viewer, s: Sess) -> Response:
        return twin(request, "overview.html", views.overview(wh, user), s)

    def queue_filter(
        kind: Literal["all", "ring", "account"] = "all",
        min_score: Annotated[float, Query(ge=0, le=1)] = 0.0,
        min_size: Annotated[int, Query(ge=0)] = 0,
        detector: str | None = None,
        max_age_days: Annotated[float | None, Query(ge=0)] = None,
        status: Literal["open", "claimed", "decided", "dismissed", "all"] = "open",
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int | None, Query(ge=1, le=1000)] = None,
    ) -> views.QueueFilter:
        return views.QueueFilter(
            kind,
            min_score,
            min_size,
            detector or None,
            max_age_days,
            status,
            page,
            per_page or settings.page_size,
        )

    Filter = Annotated[views.QueueFilter, Depends(queue_filter)]

    @app.get("/queue.{fmt}")
    @app.get("/queue")
    def queue(
        request: Request,
        wh: Wh,
        user: Viewer,
        f: Filter,
        s: Sess,
        fmt: str = "html",
    ) -> Response:
        c = plane(request)
        if fmt in ("csv", "parquet"):
            items = views.filtered_items(wh, f, c.policy, settings.dismiss_margin)
            body = views.export_bytes(views.export_table(items), fmt)  # type: ignore[arg-type]
            media = "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"
            return Response(
                body,
                media_type=media,
                headers={"content-disposition": f'attachment; filename="queue.{fmt}"'},
            )
        if fmt not in ("html", "json"):
            return json_response(
                {"error": f"unknown format {fmt!r}: use json, csv or parquet"}, 404
            )
        data = views.queue(wh, user, f, c.policy, settings.dismiss_margin)
        return twin(request, "queue.html", data, s)

    @app.get("/rings/{ring_id}")  # registered second: the .json route must match first
    @app.get("/rings/{ring_id}.json")
    def ring(
        request: Request,
        ring_id: str,
        wh: Wh,
        user: Viewer,
        s: Sess,
    ) -> Response:
        c = plane(request)
        data = views.ring_page(wh, user, ring_id, settings, c.store, c.prompts)
        return twin(request, "ring.html", data, s)

    @app.get("/accounts/{account_id}")  # registered second: the .json route must match first
    @app.get("/accounts/{account_id}.json")
    def account(
        request: Request,
        account_id: str,
        wh: Wh,
        user: Viewer,
        s: Sess,
    ) -> Response:
        data = views.account_page(wh, user, account_id, plane(request).store)
        return twin(request, "account.html", data, s)

    @app.get("/clusters.json")
    @app.get("/clusters")
    def clusters(
        request: Request,
        wh: Wh,
        user: Viewer,
        s: Sess,
        kind: str | None = None,
        sample: Annotated[int, Query(ge=0, le=20000)] = 2000,
    ) -> Response:
        c = plane(request)
        data = views.clusters_page(wh, user, kind, sample, c.maps, c.prompts)
        return twin(request, "clusters.html", data, s)

    @app.get("/audit.json")
    @app.get("/audit")
    def audit(
        request: Request,
        wh: Wh,
        user: Admin,
        s: Sess,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 500,
    ) -> Response:
        data = {
            "page": "audit",
            "decisions": decisions.audit_log(wh, limit),
            "broken": decisions.verify_audit_log(wh),
        }
        return twin(request, "audit.html", data, s)

    @app.get("/audit/{decision_id}.json")
    def audit_evidence(decision_id: int, wh: Wh, user: Admin) -> Response:
        return json_response(decisions.decision_evidence(wh, decision_id))

    @app.get("/users.json")
    @app.get("/users")
    def users(request: Request, wh: Wh, user: Admin, s: Sess) -> Response:
        return twin(request, "users.html", {"page": "users", "users": auth.list_users(wh)}, s)

    # -- the control API -----------------------------------------------------------------------
    @app.get("/api/session")
    def whoami(s: Sess) -> Response:
        """The signed-in user and the CSRF token for scripts (same-origin readable only)."""
        return json_response(
            {
                "username": s.user.username,
                "role": s.user.role,
                "csrf_token": s.csrf_token,
                "expires_at": s.expires_at,
            }
        )

    @app.get("/api/status")
    def status(request: Request, user: Viewer) -> Response:
        return json_response(plane(request).status)

    @app.post("/api/detect")
    def detect(request: Request, user: Reviewer, s: Csrf) -> Response:
        plane(request).request_detection()
        return json_response({"requested": True}, 202)

    @app.post("/api/decisions")
    def decide(
        request: Request, body: DecisionRequest, wh: Wh, user: Reviewer, s: Csrf
    ) -> Response:
        targets = [(t.kind, t.id) for t in body.targets]
        done = decisions.decide_many(
            wh, plane(request).store, user, targets, body.action, body.reason
        )
        return json_response({"decisions": done}, 201)

    @app.post("/api/decisions/{decision_id}/republish")
    def republish(request: Request, decision_id: int, wh: Wh, user: Reviewer, s: Csrf) -> Response:
        """Publish a recorded decision to the gateways again (after a publish failure)."""
        done = decisions.republish(wh, plane(request).store, user, decision_id)
        return json_response({"republished": done})

    @app.post("/api/claims")
    def claim(body: ClaimRequest, wh: Wh, user: Reviewer, s: Csrf) -> Response:
        targets = [(t.kind, t.id) for t in body.targets]
        if body.release:
            decisions.release(wh, user, targets)
        else:
            decisions.claim(wh, user, targets)
        return json_response({"claimed": not body.release, "targets": targets})

    @app.post("/api/users")
    def add_user(body: NewUser, wh: Wh, user: Admin, s: Csrf) -> Response:
        password = body.password or auth.generate_password()
        created = auth.create_user(wh, body.username, body.role, password)
        shown = None if body.password else password
        return json_response(
            {"username": created.username, "role": created.role, "password": shown}, 201
        )

    return app


def _format(request: Request) -> str:
    return "json" if request.url.path.endswith(".json") else "html"


def _local(target: str) -> str:
    """Only same-site paths as redirect targets (no ``//host`` or ``scheme:`` open redirects)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
