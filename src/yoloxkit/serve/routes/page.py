"""The web page: ``GET /`` (with its Content-Security-Policy) and its files under ``/static``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["router", "STATIC_DIR", "PAGE_CSP", "mount_static"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": PAGE_CSP})


def mount_static(app: FastAPI) -> None:
    """Serve the page's files (script, style) under ``/static``."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
