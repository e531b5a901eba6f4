"""The built-in sample app at ROOT/sample-app: static files, served as they are.

The app is plain JavaScript that does the whole SMART App Launch itself (see
launcher/static/sample-app/app.js); the server only hands out three files.
ROOT/sample-app is the app's launch URL and its redirect_uri, so the page is
served there without a trailing slash, and the page refers to its assets as
`sample-app/app.js` (relative, so a --public-url with a path prefix works).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, request, send_from_directory

from mockehr.paths import launcher_dir

ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
HEADERS = {
    "Cache-Control": "no-cache",  # teaching material gets edited: always revalidate
    # The EHR frame (same origin) shows the app in an iframe, so frame-ancestors is 'self', not 'none'.
    # connect-src stays open: an EHR launch may name any FHIR server as iss.
    "Content-Security-Policy": "default-src 'self'; connect-src 'self' http: https:; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'self'",
    # The page's URL carries the authorization code on the way back: never leak it in a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def build_blueprint() -> Blueprint:
    folder = launcher_dir() / "static" / "sample-app"
    bp = Blueprint("sample_app", __name__)

    def serve(name: str, mimetype: str) -> Response:
        response = send_from_directory(folder, name, mimetype=mimetype, max_age=0)
        response.headers.update(HEADERS)
        return response

    @bp.get("/sample-app")
    def page():
        return serve("index.html", "text/html")

    @bp.get("/sample-app/")
    def with_slash():
        # One launch URL, one redirect_uri: the server pins a public client to the first one it sees.
        # Relative, so it stays right behind a proxy that serves mockehr under a path prefix.
        query = request.query_string.decode("latin-1")
        return redirect("../sample-app" + (f"?{query}" if query else ""), 308)

    @bp.get("/sample-app/<name>")
    def asset(name: str):
        if name not in ASSETS:
            abort(404)
        return serve(name, ASSETS[name])

    return bp
