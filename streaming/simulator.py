"""A seeded, reproducible simulator of player events: what the lake and the QoE job consume.

Users have a favourite genre and a device; titles have a Zipf popularity and a genre; sessions
have startup delays, stalls whose rate depends on device and CDN, rendition switches, pauses,
abandonment and completion. A small configurable share of events arrives late (out of order),
duplicated or malformed, because real players do all three.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from operator import itemgetter
from typing import TYPE_CHECKING

import orjson

from schema.events import HEARTBEAT_INTERVAL_MS, SCHEMA_VERSION

if TYPE_CHECKING:
    from netflix_assets.product.simulation import Population

GENRES = ("drama", "comedy", "action", "documentary", "kids", "thriller", "romance", "anime")
COUNTRIES = ("US", "BR", "GB", "DE", "FR", "IN", "JP", "MX", "CA", "ES")
CDNS = ("open-connect", "akamai", "fastly")
DEVICE_OS = {
    "tv": ("tizen", "webos", "android-tv"),
    "mobile": ("ios", "android"),
    "web": ("windows", "macos", "linux"),
    "tablet": ("ipados", "android"),
    "console": ("playstation", "xbox"),
}
DEVICES = tuple(DEVICE_OS)
DEVICE_WEIGHTS = (0.45, 0.25, 0.15, 0.1, 0.05)
LADDER = (
    ("234p", 145),
    ("360p", 365),
    ("432p", 730),
    ("540p", 2000),
    ("720p", 3000),
    ("1080p", 6000),
    ("2160p", 16800),
)
# Stalls per minute of playback, before the CDN factor.
STALL_RATE = {"tv": 0.02, "mobile": 0.08, "web": 0.04, "tablet": 0.05, "console": 0.02}
CDN_FACTOR = {"open-connect": 0.6, "akamai": 1.0, "fastly": 1.2}
MALFORMED_KINDS = ("bad_json", "bad_type", "missing_field", "unknown_event_type", "far_future")


@dataclass(frozen=True)
class SimConfig:
    users: int = 1000
    titles: int = 200
    days: int = 1
    seed: int = 7
    start: date = date(2026, 11, 1)
    sessions_per_user_day: float = 1.5
    malformed_share: float = 0.001
    duplicate_share: float = 0.002
    late_share: float = 0.01
    degrade_cdn: str | None = None
    """A CDN whose sessions stall ten times as often and start three times slower."""
    max_watch_minutes: int = 90
    span_minutes: int | None = None
    """Start every session of a day within this many minutes of midnight UTC instead of across
    the whole day: a busy stretch in which a few hundred users fill real-time QoE windows."""
    population: Population | None = None
    """The product database's accounts, profiles and titles (netflix_assets.product.simulation
    .load_population): viewers are those accounts, in their countries, watching those titles;
    `users` and `titles` are then ignored. None: invented users u<n> and titles t<n>."""


@dataclass(frozen=True)
class SimEvent:
    key: bytes
    value: bytes
    timestamp_ms: int
    """The Kafka record timestamp: when the player created the event (its event time), so a late
    arrival still carries its own day and the lake can find it by date."""
    kind: str = "valid"
    """valid, duplicate, or one of MALFORMED_KINDS."""


def _encode(event: dict) -> bytes:
    wire = event.copy()  # a C-level copy; a filtering comprehension cost 2 µs an event
    del wire["_ms"]
    return orjson.dumps(wire)


@functools.lru_cache(maxsize=64)
def _day_prefix(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%dT")


def _ts(ms: int) -> str:
    """ISO-8601 UTC with milliseconds. Integer arithmetic on a cached date prefix, because
    datetime + strftime per event was an eighth of the simulator's time."""
    day, in_day = divmod(ms, 86_400_000)
    seconds, millis = divmod(in_day, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_day_prefix(day)}{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def _uuid_hex(rng: random.Random) -> str:
    """What uuid.UUID(int=rng.getrandbits(128)).hex returns, without building the object."""
    return f"{rng.getrandbits(128):032x}"


class Simulator:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        # Late arrivals, duplicates and malformed messages draw from their own stream, so the
        # events themselves are the same whether or not they go through `messages()`.
        self.noise = random.Random(f"{config.seed}/noise")
        rng = self.rng
        population = config.population
        if population is not None and not (population.accounts and population.titles):
            raise ValueError(
                f"the population has {len(population.accounts)} accounts and "
                f"{len(population.titles)} titles; simulate the account side first "
                "(netflix-assets simulate --accounts N)"
            )
        n_titles = len(population.titles) if population else config.titles
        zipf = [1.0 / (rank + 1) ** 1.1 for rank in range(n_titles)]
        self.title_cum = list(accumulate(zipf))
        if population is None:
            self.title_ids = [f"t{n}" for n in range(n_titles)]
            self.title_genre = [GENRES[rng.randrange(len(GENRES))] for _ in range(n_titles)]
            self.title_minutes = [rng.randint(22, 140) for _ in range(n_titles)]
        else:
            self.title_ids = [t.title_id for t in population.titles]
            self.title_genre = [
                t.genre if t.genre in GENRES else GENRES[0] for t in population.titles
            ]
            self.title_minutes = [t.minutes for t in population.titles]
        by_genre: dict[str, list[int]] = {g: [] for g in GENRES}
        for index, genre in enumerate(self.title_genre):
            by_genre[genre].append(index)
        self.by_genre = by_genre
        self.users = []
        if population is not None:
            for account in population.accounts:
                device = rng.choices(DEVICES, DEVICE_WEIGHTS)[0]
                self.users.append(
                    {
                        "user_id": account.account_id,
                        "profiles": list(account.profiles),
                        "device": device,
                        "os": rng.choice(DEVICE_OS[device]),
                        "country": account.country,
                        "genre": rng.choice(GENRES),
                        "activity": rng.lognormvariate(0, 0.7),
                    }
                )
            return
        for n in range(config.users):
            device = rng.choices(DEVICES, DEVICE_WEIGHTS)[0]
            self.users.append(
                {
                    "user_id": f"u{n}",
                    "profiles": [f"u{n}-p{k}" for k in range(rng.randint(1, 3))],
                    "device": device,
                    "os": rng.choice(DEVICE_OS[device]),
                    "country": rng.choice(COUNTRIES),
                    "genre": rng.choice(GENRES),
                    "activity": rng.lognormvariate(0, 0.7),
                }
            )

    def _pick_title(self, user: dict) -> int:
        rng = self.rng
        liked = self.by_genre[user["genre"]]
        if liked and rng.random() < 0.4:
            return liked[min(int(rng.expovariate(1 / 3)), len(liked) - 1)]
        return min(
            _bisect(self.title_cum, rng.random() * self.title_cum[-1]), len(self.title_ids) - 1
        )

    def session(self, user: dict, start_ms: int) -> list[dict]:
        """The events of one playback attempt, in event-time order."""
        rng, cfg = self.rng, self.config
        title = self._pick_title(user)
        cdn = rng.choices(CDNS, (0.6, 0.25, 0.15))[0]
        degraded = cdn == cfg.degrade_cdn
        base = {
            "schema_version": SCHEMA_VERSION,
            "session_id": _uuid_hex(rng),
            "user_id": user["user_id"],
            "profile_id": rng.choice(user["profiles"]),
            "title_id": self.title_ids[title],
            "device": user["device"],
            "os": user["os"],
            "country": user["country"],
            "cdn": cdn,
        }
        events: list[dict] = []

        def emit(event_type: str, at: int, position: int, **extra: object) -> None:
            event = dict(base)
            event["event_id"] = _uuid_hex(rng)
            event["event_type"] = event_type
            event["event_ts"] = _ts(at)
            event["_ms"] = at
            event["position_ms"] = position
            event.update(extra)
            events.append(event)

        emit("playback_request", start_ms, 0)
        failure_p = 0.015 * (4 if degraded else 1)
        if rng.random() < failure_p:
            emit("error", start_ms + rng.randint(500, 8000), 0, error_code="PLAYBACK-5001")
            return events
        startup = int(rng.lognormvariate(7.0, 0.45) * (3 if degraded else 1))
        if rng.random() < 0.03 + (0.05 if degraded else 0) + (0.03 if startup > 4000 else 0):
            emit("stop", start_ms + rng.randint(300, max(400, startup)), 0)  # exit before start
            return events
        now = start_ms + startup
        rung = 3 if user["device"] == "mobile" else 5
        emit(
            "start",
            now,
            0,
            startup_ms=startup,
            rendition=LADDER[rung][0],
            bitrate_kbps=LADDER[rung][1],
            buffer_ms=rng.randint(2000, 8000),
        )
        length_ms = self.title_minutes[title] * 60_000
        if rng.random() < 0.35:
            watch_ms = length_ms
        else:
            watch_ms = int(length_ms * min(1.0, rng.expovariate(3.0)))
        watch_ms = max(5_000, min(watch_ms, cfg.max_watch_minutes * 60_000))
        stall_per_ms = STALL_RATE[user["device"]] * CDN_FACTOR[cdn] / 60_000
        if degraded:
            stall_per_ms *= 10
        position = 0
        while position < watch_ms:
            step = min(HEARTBEAT_INTERVAL_MS, watch_ms - position)
            if rng.random() < stall_per_ms * step:
                stall = int(rng.lognormvariate(7.3, 0.6))
                emit(
                    "stall_start",
                    now + step // 2,
                    position + step // 2,
                    rendition=LADDER[rung][0],
                    bitrate_kbps=LADDER[rung][1],
                    buffer_ms=0,
                )
                emit(
                    "stall_end",
                    now + step // 2 + stall,
                    position + step // 2,
                    stall_ms=stall,
                    rendition=LADDER[rung][0],
                    bitrate_kbps=LADDER[rung][1],
                    buffer_ms=0,
                )
                now += stall
                if rung > 0 and rng.random() < 0.6:
                    rung -= 1
                    emit(
                        "rendition_change",
                        now + step // 2 + 1,
                        position + step // 2,
                        rendition=LADDER[rung][0],
                        bitrate_kbps=LADDER[rung][1],
                    )
            elif rng.random() < 0.03 and rung < len(LADDER) - 2:
                rung += 1
                emit(
                    "rendition_change",
                    now + step // 2,
                    position + step // 2,
                    rendition=LADDER[rung][0],
                    bitrate_kbps=LADDER[rung][1],
                )
            if rng.random() < 0.01:
                pause = rng.randint(5_000, 300_000)
                emit("pause", now + step, position + step)
                now += pause
                emit("resume", now + step, position + step)
            now += step
            position += step
            if step == HEARTBEAT_INTERVAL_MS:
                emit(
                    "heartbeat",
                    now,
                    position,
                    rendition=LADDER[rung][0],
                    bitrate_kbps=LADDER[rung][1],
                    buffer_ms=rng.randint(5000, 30000),
                )
        emit("stop", now + 200, position)
        return events

    def events(self) -> Iterator[dict]:
        """Every valid event, day by day, in event-time order; `_ms` is the event time in epoch
        milliseconds and never goes on the wire."""
        rng, cfg = self.rng, self.config
        day0 = int(datetime.combine(cfg.start, datetime.min.time(), UTC).timestamp() * 1000)
        span_ms = cfg.span_minutes * 60_000 if cfg.span_minutes else 86_400_000
        for day in range(cfg.days):
            starts = []
            for user in self.users:
                expected = cfg.sessions_per_user_day * user["activity"]
                count = int(expected) + (1 if rng.random() < expected % 1 else 0)
                for _ in range(count):
                    starts.append((day0 + day * 86_400_000 + rng.randrange(span_ms), user))
            starts.sort(key=lambda s: s[0])
            yield from self._merged(starts)

    def _merged(self, starts: list[tuple[int, dict]]) -> Iterator[dict]:
        """The sessions' events in event-time order (ties: earlier session first) without the
        whole day in memory (10M events would be gigabytes of dicts). Each event is filed in
        the 5-minute bucket of its time, in generation order. A session never emits before it
        starts, so once sessions start in a later bucket every earlier bucket is complete: a
        stable sort by time puts it in the same order as sorting the whole day, and it goes
        out; only the open sessions' later events stay in memory."""
        width = 300_000
        by_time = itemgetter("_ms")
        buckets: dict[int, list[dict]] = {}
        current = None
        for at, user in starts:
            if at // width != current:
                current = at // width
                for index in sorted(i for i in buckets if i < current):
                    yield from sorted(buckets.pop(index), key=by_time)
            for event in sorted(self.session(user, at), key=by_time):
                bucket = buckets.get(event["_ms"] // width)
                if bucket is None:
                    buckets[event["_ms"] // width] = [event]
                else:
                    bucket.append(event)
        for index in sorted(buckets):
            yield from sorted(buckets[index], key=by_time)

    def messages(self) -> Iterator[SimEvent]:
        """Encoded Kafka messages: valid events with late arrivals, duplicates and malformed
        ones mixed in at the configured shares."""
        rng, cfg = self.noise, self.config
        held: list[SimEvent] = []
        for event in self.events():
            message = SimEvent(event["session_id"].encode(), _encode(event), event["_ms"])
            roll = rng.random()
            if roll < cfg.malformed_share:
                yield self.malform(event)
                continue
            if roll < cfg.malformed_share + cfg.late_share:
                held.append(message)  # arrives later, out of order
            else:
                yield message
            if rng.random() < cfg.duplicate_share:
                yield SimEvent(message.key, message.value, message.timestamp_ms, "duplicate")
            if held and rng.random() < 0.01:
                yield held.pop(0)
        yield from held

    def malform(self, event: dict) -> SimEvent:
        kind = MALFORMED_KINDS[self.noise.randrange(len(MALFORMED_KINDS))]
        bad = dict(event)
        key, at = event["session_id"].encode(), event["_ms"]
        if kind == "bad_json":
            return SimEvent(key, _encode(bad)[:-7], at, kind)
        if kind == "bad_type":
            bad["position_ms"] = "twelve"
        elif kind == "missing_field":
            del bad["title_id"]
        elif kind == "unknown_event_type":
            bad["event_type"] = "teleport"
        else:
            bad["event_ts"] = "2099-01-01T00:00:00.000Z"
        return SimEvent(key, _encode(bad), at, kind)


def _bisect(cumulative: list[float], x: float) -> int:
    lo, hi = 0, len(cumulative)
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def day_range(start: date, days: int) -> list[date]:
    return [start + timedelta(days=d) for d in range(days)]
