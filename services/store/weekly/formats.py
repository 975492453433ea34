"""The weekly report's formats: names, media types, file names and content negotiation."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InvalidInput


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extension: str
    disposition: str | None  # None: no Content-Disposition (JSON is an API answer)

    def filename(self, week: str) -> str:
        return f"truce-weekly-{week}.{self.extension}"


FORMATS = {
    f.name: f
    for f in (
        Format("json", "application/json", "json", None),
        Format("md", "text/markdown; charset=utf-8", "md", "inline"),
        Format("html", "text/html; charset=utf-8", "html", "inline"),
        Format("csv", "text/csv; charset=utf-8", "csv", "attachment"),
        Format("hxl", "text/csv; charset=utf-8", "hxl.csv", "attachment"),
    )
}
_MEDIA = {
    "application/json": "json",
    "text/markdown": "md",
    "text/x-markdown": "md",
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/csv": "csv",
    "*/*": "json",
    "application/*": "json",
}
DEFAULT = FORMATS["json"]


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def from_accept(accept: str | None) -> Format:
    """The client's most preferred format we serve (RFC 9110 q-values; the earlier of
    equals); JSON when the header is absent or names nothing we serve."""
    best: tuple[float, int, str] | None = None
    for position, item in enumerate((accept or "").split(",")):
        media, *params = (part.strip() for part in item.split(";"))
        name = _MEDIA.get(media.lower())
        q = _quality(params)
        if name and q > 0 and (best is None or (q, -position) > (best[0], best[1])):
            best = (q, -position, name)
    return FORMATS[best[2]] if best else DEFAULT


def choose(format_: str | None, accept: str | None) -> Format:
    """``?format=`` wins over the Accept header; an unknown format is a 422."""
    if format_ is None:
        return from_accept(accept)
    if format_ not in FORMATS:
        raise InvalidInput(
            f"format {format_!r} is not one of {', '.join(FORMATS)}",
            errors=[{"loc": ["query", "format"], "msg": f"expected one of {list(FORMATS)}"}],
        )
    return FORMATS[format_]
