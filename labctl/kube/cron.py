"""CronJob schedules: what ``spec.schedule`` accepts and when it fires (croniter underneath).

The API server validates a schedule with :func:`schedule_error` and the CronJob controller
asks :func:`scheduled_times` which of its times have come. Kubernetes parses with
robfig/cron's ``ParseStandard``: five fields (minute hour day-of-month month day-of-week)
or a descriptor (``@hourly``, ``@daily`` …). croniter also reads a sixth (seconds) field,
which kube refuses, so the field count is checked here with robfig's wording. ``@every``
(robfig's interval descriptor) is refused: labctl does not implement it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# croniter (with dateutil) is imported where a schedule is read: 13-16 ms of CPU at the start of
# the API server and of the controller manager, on the two cores every component of a lab
# starts on at once, for a kind most labs never create

DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def schedule_error(schedule: str) -> str | None:
    """Why ``schedule`` is not a standard cron expression, or None when it is."""
    text = schedule.strip()
    if text.startswith("@"):
        if text in DESCRIPTORS:
            return None
        if text.startswith("@every"):
            return "labctl does not support @every schedules: use a cron expression such as */5 * * * *"
        return f"unrecognized descriptor: {text}"
    fields = text.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]"
    from croniter import CroniterError, croniter

    try:
        croniter(text)
    except (CroniterError, ValueError) as err:
        return str(err)
    return None


def time_zone_error(name: str) -> str | None:
    """Why ``name`` is not a time zone of the tz database (the controller's and API server's), or None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name}"
    return None


def scheduled_times(schedule: str, time_zone: str | None, earliest: dt.datetime, now: dt.datetime,
                    limit: int = 101) -> tuple[list[dt.datetime], dt.datetime]:
    """The schedule's times in ``(earliest, now]`` (at most ``limit``, the latest ones) and the next one after now.

    Times are computed in ``time_zone`` (UTC when None, the lab's controller manager's zone)
    and returned in UTC.
    """
    from croniter import croniter

    zone = ZoneInfo(time_zone) if time_zone else dt.UTC
    it = croniter(schedule.strip(), earliest.astimezone(zone))
    times: list[dt.datetime] = []
    while True:
        t = it.get_next(dt.datetime).astimezone(dt.UTC)
        if t > now:
            return times, t
        times.append(t)
        if len(times) > limit:
            times.pop(0)
