"""The operator's dashboard: static files shipped in this package and served by the gateway
itself at `/dashboard` (no build step, no CDN, no external fonts)."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

ASSETS = {"dashboard.js": "application/javascript", "dashboard.css": "text/css"}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
"""Only our own files may load or connect; the page renders data as text, never as markup."""


def read(name: str) -> bytes:
    """A file of this package, read once when the routes are added."""
    return resources.files(__package__).joinpath(name).read_bytes()


def add_dashboard_routes(app: web.Application) -> None:
    """`GET /dashboard` (the page) and `GET /dashboard/<asset>`; the page asks for the admin token."""
    page = read("index.html")
    assets = {name: (read(name), kind) for name, kind in ASSETS.items()}

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8", headers=HEADERS)

    async def asset(request: web.Request) -> web.Response:
        found = assets.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        body, kind = found
        return web.Response(body=body, content_type=kind, charset="utf-8", headers=HEADERS)

    app.router.add_get("/dashboard", index)
    app.router.add_get("/dashboard/", index)
    app.router.add_get("/dashboard/{name}", asset)
