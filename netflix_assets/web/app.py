"""The viewer web app (FastAPI): pages, playback authorization, the origin and /v1/events.

Pages are server-rendered (Jinja2); the player page runs hls.js (npm, installed by the
bootstrap) and reports viewing events in batches. Routes:

- `/signin`, `/signout`, `/profiles`: sign-in with an account's e-mail and argon2id password,
  then a profile; the session is a signed HttpOnly SameSite cookie (session.py).
- `/`, `/title/{id}`, `/watch/{id}`: home rows, title page, player.
- `POST /v1/playback`: checks maturity, plan and the concurrent-stream limit, and answers a
  master playlist with only the variants the browser can play, every URI signed for the edge.
- `POST /v1/playback/{stream}/keepalive|stop`: the stream's lease.
- `GET /v1/playback/authorize`: the edge's auth_request: is this token good for this object.
- `GET /origin/{key}`: the delivery area, for the edge only.
- `POST /v1/events`: viewing events to Kafka (events.py).
- `GET /metrics`: Prometheus metrics (metrics.py), unless the app is made without them.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import psycopg
from fastapi import Body, FastAPI, Form, Header, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import StringConstraints
from starlette.responses import FileResponse

from netflix_assets import settings
from netflix_assets.web import catalog, origin, rows, tokens, viewers
from netflix_assets.web.config import WebConfig
from netflix_assets.web.events import (
    BatchRefused,
    EventSink,
    KafkaDeliveryFailed,
    check_events,
    parse_batch,
)
from netflix_assets.web.metrics import RequestTimer, WebMetrics
from netflix_assets.web.session import COOKIE, MAX_AGE_S, Session, Sessions
from schema import tables

HERE = Path(__file__).resolve().parent
HLS_JS = settings.REPO_ROOT / "node_modules" / "hls.js" / "dist" / "hls.min.js"
MAX_CODECS = 32
CodecsString = Annotated[str, StringConstraints(max_length=200)]


def create_app(config: WebConfig, sink: EventSink | None = None, metrics: bool = True) -> FastAPI:
    """The app; `sink` produces the events (None: /v1/events answers 503); `metrics=False`
    leaves out /metrics and every measurement (the benchmark's baseline)."""
    sessions = Sessions(config.signing_key)
    templates = Jinja2Templates(directory=HERE / "templates")
    store_root = Path(config.object_store_root)
    edge_key = tokens.origin_key(config.signing_key)
    top = rows.TopInCountry(str(store_root / tables.GOLD_TITLE_COUNTRY_DAILY.key))
    recs_client = httpx.Client(timeout=1.0)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        recs_client.close()
        if sink is not None:
            sink.close()

    app = FastAPI(title="netflix-assets web", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def db() -> psycopg.Connection:
        return psycopg.connect(config.postgres_dsn, connect_timeout=10)

    meters = WebMetrics(db) if metrics else None
    if meters is not None:
        app.add_middleware(RequestTimer, histogram=meters.request_seconds, routes=app.routes)

        @app.get("/metrics", include_in_schema=False)
        def prometheus_metrics() -> Response:
            return Response(generate_latest(meters.registry), media_type=CONTENT_TYPE_LATEST)

    def playback_refused(status: int, reason: str, kind: str) -> HTTPException:
        if meters is not None:
            meters.refused(kind)
        return HTTPException(status, reason)

    def session_of(request: Request) -> Session | None:
        return sessions.load(request.cookies.get(COOKIE))

    def viewer_of(request: Request) -> viewers.Profile:
        """The signed-in profile of an API call, else 401 naming what is missing."""
        session = session_of(request)
        if session is None:
            raise HTTPException(401, "not signed in (missing, expired or forged session cookie)")
        if session.profile is None:
            raise HTTPException(401, "no profile picked: choose one at /profiles")
        return session.profile

    def set_session(response: Response, session: Session) -> Response:
        response.set_cookie(
            COOKIE,
            sessions.dump(session),
            max_age=MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=config.secure_cookies,
            path="/",
        )
        return response

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status)

    def require_page_viewer(request: Request) -> viewers.Profile | RedirectResponse:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/signin", 303)
        if session.profile is None:
            return RedirectResponse("/profiles", 303)
        return session.profile

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/vendor/hls.min.js", include_in_schema=False)
    def hls_js() -> FileResponse:
        if not HLS_JS.is_file():
            raise HTTPException(500, "hls.js is not installed: run `make bootstrap` (npm ci)")
        return FileResponse(HLS_JS, media_type="text/javascript")

    @app.get("/signin", response_class=HTMLResponse)
    def signin_form(request: Request) -> HTMLResponse:
        return page(request, "signin.html", error=None)

    @app.post("/signin")
    def signin(
        request: Request, email: Annotated[str, Form()], password: Annotated[str, Form()]
    ) -> Response:
        try:
            with db() as conn:
                account_id = viewers.sign_in(conn, email, password)
        except viewers.SignInFailed as exc:
            return page(request, "signin.html", status=401, error=str(exc))
        return set_session(RedirectResponse("/profiles", 303), Session(account_id))

    @app.post("/signout")
    def signout() -> Response:
        response = RedirectResponse("/signin", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/profiles", response_class=HTMLResponse)
    def profiles(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/signin", 303)
        with db() as conn:
            found = viewers.profiles(conn, session.account_id)
        return page(request, "profiles.html", profiles=found)

    @app.post("/profiles/{profile_id}")
    def pick_profile(request: Request, profile_id: str) -> Response:
        session = session_of(request)
        if session is None:
            return RedirectResponse("/signin", 303)
        with db() as conn:
            chosen = viewers.profile(conn, session.account_id, profile_id)
        if chosen is None:
            raise HTTPException(404, "no such profile on this account")
        return set_session(RedirectResponse("/", 303), Session(session.account_id, chosen))

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request) -> Response:
        viewer = require_page_viewer(request)
        if isinstance(viewer, Response):
            return viewer
        found = [
            rows.recommended(recs_client, config.recs_url, config.recs_api_key, viewer.account_id),
            top(viewer.country),
        ]
        with db() as conn:
            found.insert(0, rows.continue_watching(conn, viewer.profile_id))
            wanted = sorted({t for row in found for t in row.title_ids})
            known = catalog.titles_by_id(conn, wanted, viewer.maturity_level)
            latest = rows.Row("New on netflix-assets")
            latest_titles = catalog.titles(conn, viewer.maturity_level, limit=20)
        latest.title_ids = [t.title_id for t in latest_titles]
        known.update({t.title_id: t for t in latest_titles})
        shown = []
        for row in [*found, latest]:
            items = [known[t] for t in row.title_ids if t in known]
            note = row.note
            if not items and not note and row.title_ids:
                note = "none of these titles is published in this catalog"
            shown.append({"name": row.name, "titles": items, "note": note})
        return page(request, "home.html", viewer=viewer, rows=shown)

    def title_for_page(
        request: Request, title_id: str
    ) -> tuple[viewers.Profile, catalog.Title, viewers.Plan | None] | Response:
        """The signed-in profile, the title if it may see it and the plan, else the page
        to answer instead (sign-in, profile choice, or 404)."""
        viewer = require_page_viewer(request)
        if isinstance(viewer, Response):
            return viewer
        with db() as conn:
            found = catalog.title(conn, title_id, viewer.maturity_level)
            plan = viewers.current_plan(conn, viewer.account_id)
        if found is None:
            return page(request, "missing.html", status=404, viewer=viewer, title_id=title_id)
        return viewer, found, plan

    @app.get("/title/{title_id}", response_class=HTMLResponse)
    def title_page(request: Request, title_id: str) -> Response:
        answer = title_for_page(request, title_id)
        if isinstance(answer, Response):
            return answer
        viewer, found, plan = answer
        return page(request, "title.html", viewer=viewer, title=found, plan=plan)

    @app.get("/watch/{title_id}", response_class=HTMLResponse)
    def watch_page(request: Request, title_id: str) -> Response:
        answer = title_for_page(request, title_id)
        if isinstance(answer, Response):
            return answer
        viewer, found, _ = answer
        try:
            codecs = catalog.variant_codecs(store_root, found)
        except FileNotFoundError:
            codecs = []  # the player then shows the app's refusal, which names the cause
        return page(
            request, "player.html", viewer=viewer, title=found, codecs=codecs, cdn=config.cdn
        )

    @app.post("/v1/playback")
    def start_playback(
        request: Request,
        title_id: Annotated[str, Body(max_length=128)],
        codecs: Annotated[list[CodecsString], Body(max_length=MAX_CODECS)],
    ) -> JSONResponse:
        viewer = viewer_of(request)
        with db() as conn:
            found = catalog.title(conn, title_id, viewer.maturity_level)
            if found is None:
                if catalog.exists(conn, title_id):
                    raise playback_refused(
                        403,
                        f"{title_id!r} is rated above what the profile {viewer.name!r} "
                        f"({viewer.maturity_level}) may watch",
                        "maturity",
                    )
                raise playback_refused(404, f"no published title {title_id!r}", "not_found")
            try:
                stream_id, plan = viewers.start_stream(
                    conn, viewer, title_id, config.stream_lease_s
                )
            except viewers.NotEntitled as exc:
                raise playback_refused(409, str(exc), exc.reason) from None
            expires = int(time.time()) + config.playback_ttl_s
            grant = tokens.PlaybackGrant(found.prefix, viewer.profile_id, stream_id, expires)
            media_base = (
                f"{config.edge_url.rstrip('/')}/t/{tokens.sign(config.signing_key, grant)}/"
            )
            try:
                master = catalog.playable_master(
                    store_root,
                    found,
                    set(codecs),
                    viewers.MAX_HEIGHT[plan.max_resolution],
                    media_base,
                )
            except catalog.NothingPlayable as exc:
                conn.rollback()
                raise playback_refused(409, str(exc), "nothing_playable") from None
            except FileNotFoundError:
                conn.rollback()
                reason = f"{title_id!r} has no master playlist in the delivery area"
                raise playback_refused(409, reason, "no_master") from None
        if meters is not None:
            meters.granted()
        return JSONResponse(
            {
                "stream_id": stream_id,
                "session_id": stream_id,
                "expires_at": expires,
                "media_base": media_base,
                "master": master,
                "plan": plan.plan_id,
            }
        )

    @app.post("/v1/playback/{stream_id}/keepalive", status_code=204)
    def keepalive(request: Request, stream_id: str) -> Response:
        viewer = viewer_of(request)
        with db() as conn:
            if not viewers.renew_stream(conn, viewer, stream_id, config.stream_lease_s):
                raise HTTPException(410, "this stream has ended or is not this profile's")
        return Response(status_code=204)

    @app.post("/v1/playback/{stream_id}/stop", status_code=204)
    def stop(request: Request, stream_id: str) -> Response:
        viewer = viewer_of(request)
        with db() as conn:
            viewers.end_stream(conn, viewer, stream_id)
        return Response(status_code=204)

    @app.get("/v1/playback/authorize", status_code=204)
    def authorize(
        x_playback_token: Annotated[str | None, Header()] = None,
        x_playback_object: Annotated[str | None, Header()] = None,
    ) -> Response:
        # The edge shows the reason to the player (X-Denied-Reason, via auth_request_set).
        if not x_playback_token or not x_playback_object:
            reason = "missing playback token or object"
            raise HTTPException(403, reason, headers={"X-Denied-Reason": reason})
        try:
            tokens.verify(config.signing_key, x_playback_token, x_playback_object)
        except tokens.PlaybackDenied as exc:
            raise HTTPException(403, str(exc), headers={"X-Denied-Reason": str(exc)}) from None
        return Response(status_code=204)

    @app.get("/origin/{key:path}")
    def origin_object(key: str, x_edge_key: Annotated[str | None, Header()] = None) -> FileResponse:
        return origin.serve(store_root, key, x_edge_key, edge_key)

    async def read_batch(request: Request) -> bytes:
        """The body, refused as soon as it is known to be over the limit (declared length,
        then while reading)."""
        limit = config.max_batch_bytes
        too_large = BatchRefused(413, f"batch over {limit} bytes", "too_large")
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise too_large
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large
        return bytes(body)

    async def post_events(request: Request) -> JSONResponse:
        viewer = viewer_of(request)
        if sink is None:
            raise HTTPException(503, "this app runs without Kafka; events are not accepted")
        try:
            events = parse_batch(await read_batch(request), config.max_batch_events)
        except BatchRefused as exc:
            if meters is not None:
                meters.batches_refused.labels(exc.kind).inc()
            raise HTTPException(exc.status, exc.reason) from None
        valid, rejected = check_events(events, viewer)
        if meters is not None:
            for rejection in rejected:
                meters.events_rejected.labels(rejection.rule).inc()
        try:
            await sink.produce(valid)
        except KafkaDeliveryFailed as exc:
            if meters is not None:
                meters.produce_failed.inc(len(valid))
            raise HTTPException(
                503, f"{exc}; nothing of this batch is confirmed, retry it"
            ) from None
        if meters is not None:
            meters.events_accepted.inc(len(valid))
        answer = {"accepted": len(valid), "rejected": [r.answer() for r in rejected]}
        return JSONResponse(answer, status_code=400 if rejected else 200)

    # A plain Starlette route: the handler reads its own body and takes nothing from FastAPI's
    # parameter solving, which cost about 15% of the request thread's CPU at 50 events a batch.
    app.router.add_route("/v1/events", post_events, methods=["POST"])
    return app
