"""The latency picture for a diagnosis thread. CloudWatch draws it (GetMetricWidgetImage, the latency
check's own metric query), so no plotting library is needed; a failed render costs only the picture."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from .catalog import TableSpec
from .diagnostics.layout import instance_for
from .gateways import GatewayError, Gateways

log = logging.getLogger(__name__)
HOURS = 3  # the latency check's window


@dataclass(frozen=True)
class Picture:
    png: bytes
    filename: str
    title: str


def latency_picture(gw: Gateways, spec: TableSpec) -> Picture | None:
    try:
        task = gw.dms.task(spec.dms_task)
        try:
            found: str | Exception = gw.dms.instance(task.instance_arn)
        except GatewayError as exc:
            found = exc
        instance, notes = instance_for(spec, found)
        if instance is None:
            raise GatewayError(notes[0])
        png = gw.dms.latency_image(instance, task.resource_id, HOURS)
    except GatewayError as exc:
        log.info("no latency picture for %s: %s", spec.name, exc)
        return None
    return Picture(png, f"cdc-latency-{spec.name}.png",
                   f"{spec.name}: CDCLatencySource / CDCLatencyTarget, last {HOURS} hours")
