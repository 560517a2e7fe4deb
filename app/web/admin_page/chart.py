"""The dashboard's last-24-hours chart: bar geometry for an inline SVG (no JavaScript, no assets)."""

from __future__ import annotations

__all__ = ["chart"]


def chart(hours: list[dict], *, width: int = 480, height: int = 120) -> dict:
    """Bar geometry for an inline SVG: per hour, a received bar and, beside it, done over failed."""
    peak = max([1] + [max(h["received"], h["done"] + h["failed"]) for h in hours])
    slot = width / max(1, len(hours))
    bars = []
    for i, hour in enumerate(hours):
        x = i * slot
        received_h = height * hour["received"] / peak
        done_h, failed_h = height * hour["done"] / peak, height * hour["failed"] / peak
        bars.append(
            {
                "hour": hour,
                "received": (
                    round(x + 1, 1),
                    round(height - received_h, 1),
                    round(slot / 2 - 1, 1),
                    round(received_h, 1),
                ),
                "done": (round(x + slot / 2, 1), round(height - done_h, 1), round(slot / 2 - 1, 1), round(done_h, 1)),
                "failed": (
                    round(x + slot / 2, 1),
                    round(height - done_h - failed_h, 1),
                    round(slot / 2 - 1, 1),
                    round(failed_h, 1),
                ),
            }
        )
    return {"width": width, "height": height, "peak": peak, "bars": bars}
