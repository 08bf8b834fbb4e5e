"""The public share page ``/a/<token>`` and its preview image: server-rendered HTML, no login, no script, no
tracking, no third-party request unless a tile server is configured (SHARE_TILE_URL).

Nothing is cached (``no-store``): revoking the link or hiding the activity must close the page at once.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, render_template, url_for

from domain import offload
from domain.algorithms import share_render
from domain.errors import Refusal
from domain.sharing import service

blp = Blueprint("share_pages", __name__, template_folder="templates")

MAP_W, MAP_H = 640, 400
CHART_W, CHART_H = 640, 140


def _headers(tile_url: str) -> dict[str, str]:
    tile_origin = ""
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        tile_origin = f" {parts.scheme}://{parts.netloc}"
    return {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Robots-Tag": "noindex, nofollow",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": (f"default-src 'none'; img-src 'self' data:{tile_origin}; "
                                    "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
                                    "frame-ancestors 'none'"),
    }


def _duration(seconds: float | None) -> str:
    s = round(seconds or 0)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _figures(shared: service.SharedActivity) -> list[tuple[str, str]]:
    f = shared.figures
    distance_km = (f.get("distance_m") or 0.0) / 1000.0
    moving = f.get("moving_time_s") or 0.0
    out = [("Distance", f"{distance_km:.2f} km"), ("Moving time", _duration(moving))]
    speed = f.get("avg_speed_mps")
    if speed:
        if shared.sport_type in ("running", "walking", "hiking"):
            pace = 1000.0 / speed
            out.append(("Pace", f"{int(pace // 60)}:{round(pace % 60):02d} /km"))
        else:
            out.append(("Speed", f"{speed * 3.6:.1f} km/h"))
    gain = f.get("elevation_gain_m")
    out.append(("Elevation", f"{gain:.0f} m" if gain is not None else "–"))
    return out


def _when(shared: service.SharedActivity) -> str:
    local: datetime | None = shared.start_date_local
    return local.strftime("%A %-d %B %Y, %H:%M") if local else ""


def not_found() -> Response:
    return Response(render_template("share_404.html"), status=404, headers=_headers(""))


@blp.route("/a/<token>")
def page(token: str) -> Response:
    try:
        shared = service.shared_activity(token)
    except Refusal:
        return not_found()
    tile_url = current_app.config["SHARE_TILE_URL"]
    projection = share_render.fit(shared.lines, MAP_W, MAP_H, tile_zoom=bool(tile_url))
    routes = share_render.route_paths(shared.lines, projection)
    background = share_render.tiles(projection, tile_url) if tile_url else []
    profile_line, profile_area = share_render.profile_paths(*shared.profile, CHART_W, CHART_H)
    figures = _figures(shared)
    summary = " · ".join(f"{k} {v}" for k, v in figures)
    html = render_template(
        "share.html", s=shared, when=_when(shared), figures=figures, summary=summary, routes=routes,
        tiles=background, map_w=MAP_W, map_h=MAP_H, chart_w=CHART_W, chart_h=CHART_H,
        profile_line=profile_line, profile_area=profile_area,
        page_url=url_for("share_pages.page", token=token, _external=True),
        image_url=url_for("share_pages.preview", token=token, _external=True))
    return Response(html, mimetype="text/html", headers=_headers(tile_url))


@blp.route("/a/<token>/preview.png")
def preview(token: str) -> Response:
    try:
        shared = service.shared_activity(token)
    except Refusal:
        return not_found()
    subtitle = "\n".join(f"{k}: {v}" for k, v in _figures(shared))
    png = offload.cpu(share_render.preview_png, shared.lines, shared.profile, shared.name, subtitle)
    return Response(png, mimetype="image/png", headers=_headers(""))
