"""The digest's chart: companies synced OK and failed per day, as a stacked bar chart in a PNG.

Drawn with Pillow and its bundled font, so it looks the same on every machine. The two colours are from the
Okabe–Ito palette (blue and vermillion), which people with the common colour-vision deficiencies tell apart;
the legend, the axis titles and a count above each bar carry the figures for anyone who cannot.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

from PIL import Image, ImageDraw, ImageFont

from bot.services.digest import DayHealth

WIDTH, HEIGHT = 1000, 520
OK_COLOUR = (0, 114, 178)  # Okabe–Ito blue
FAILED_COLOUR = (213, 94, 0)  # Okabe–Ito vermillion
INK = (29, 28, 29)  # Slack's text colour
MUTED = (97, 96, 97)
GRID = (221, 221, 221)
BACKGROUND = (255, 255, 255)
LEFT, RIGHT, TOP, BOTTOM = 86, 28, 96, 92


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def title(days: Sequence[DayHealth]) -> str:
    """'Sync health, 11 to 24 Nov 2026' (the bundled font has no en dash)."""
    return f"Sync health, {_span(days[0].day, days[-1].day)}"


def _span(first: date, last: date) -> str:
    if first.year != last.year:
        return f"{first:%-d %b %Y} to {last:%-d %b %Y}"
    if first.month != last.month:
        return f"{first:%-d %b} to {last:%-d %b %Y}"
    return f"{first:%-d} to {last:%-d %b %Y}"


def _step(top: int) -> int:
    """A round tick step that puts at most six gridlines up to `top`."""
    for magnitude in (1, 10, 100, 1_000, 10_000, 100_000):
        for base in (1, 2, 5):
            if top <= base * magnitude * 6:
                return base * magnitude
    return 1_000_000


def draw(days: Sequence[DayHealth], *, zone: str) -> bytes:
    """The chart of a series of days, as PNG bytes (WIDTH × HEIGHT)."""
    if not days:
        raise ValueError("a chart needs at least one day")
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    pen = ImageDraw.Draw(image)
    heading, label, small = _font(24), _font(16), _font(14)

    pen.text((LEFT, 22), title(days), font=heading, fill=INK)
    _legend(pen, label, right=WIDTH - RIGHT, top=62)

    plot_left, plot_right, plot_top, plot_bottom = LEFT, WIDTH - RIGHT, TOP + 10, HEIGHT - BOTTOM
    most = max(day.ok + day.failed for day in days)
    step = _step(max(most, 1))
    ceiling = max(step, -(-max(most, 1) // step) * step)
    scale = (plot_bottom - plot_top) / ceiling

    for value in range(0, ceiling + 1, step):
        y = plot_bottom - value * scale
        pen.line([(plot_left, y), (plot_right, y)], fill=GRID if value else MUTED, width=1)
        pen.text((plot_left - 10, y), str(value), font=small, fill=MUTED, anchor="rm")
    _vertical(image, "companies", font=label, centre=(24, (plot_top + plot_bottom) // 2))

    slot = (plot_right - plot_left) / len(days)
    bar = slot * 0.62
    for n, day in enumerate(days):
        centre = plot_left + slot * (n + 0.5)
        x0, x1 = centre - bar / 2, centre + bar / 2
        ok_top = plot_bottom - day.ok * scale
        failed_top = ok_top - day.failed * scale
        if day.ok:
            pen.rectangle([(x0, ok_top), (x1, plot_bottom - 1)], fill=OK_COLOUR)
        if day.failed:
            pen.rectangle([(x0, failed_top), (x1, ok_top - 1)], fill=FAILED_COLOUR)
        total = day.ok + day.failed
        pen.text((centre, failed_top - 4), str(total), font=small, fill=INK if total else MUTED, anchor="md")
        pen.text((centre, plot_bottom + 8), f"{day.day:%a}", font=small, fill=MUTED, anchor="ma")
        pen.text((centre, plot_bottom + 26), f"{day.day:%-d %b}", font=small, fill=INK, anchor="ma")
    pen.text(((plot_left + plot_right) // 2, HEIGHT - 22), f"day ({zone})", font=label, fill=INK, anchor="md")
    if not most:
        middle = ((plot_left + plot_right) // 2, (plot_top + plot_bottom) // 2)
        pen.text(middle, f"No sync run finished in these {len(days)} days", font=label, fill=MUTED, anchor="mm")

    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _legend(
    pen: ImageDraw.ImageDraw, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, *, right: int, top: int
) -> None:
    entries = (("synced OK", OK_COLOUR), ("failed, no successful run", FAILED_COLOUR))
    x = right
    for text, colour in reversed(entries):
        width = int(pen.textlength(text, font=font))
        x -= width
        pen.text((x, top + 8), text, font=font, fill=INK, anchor="lm")
        x -= 22
        pen.rectangle([(x, top), (x + 16, top + 16)], fill=colour)
        x -= 24


def _vertical(
    image: Image.Image, text: str, *, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, centre: tuple[int, int]
) -> None:
    """Text turned a quarter to the left (the y axis' title), centred on `centre`."""
    box = font.getbbox(text)
    label = Image.new("RGBA", (int(box[2]) + 4, int(box[3]) + 4), (255, 255, 255, 0))
    ImageDraw.Draw(label).text((2, 2), text, font=font, fill=(*INK, 255))
    turned = label.rotate(90, expand=True)
    image.paste(turned, (centre[0] - turned.width // 2, centre[1] - turned.height // 2), turned)
