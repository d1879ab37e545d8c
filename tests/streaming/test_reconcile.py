"""Window-by-window reconciliation of the stream's records with the batch's (pure Python)."""

from __future__ import annotations

from streaming.reconcile import late_reports, reconcile


def window(title: str, start: str, end: str, **metrics) -> dict:
    return {"title_id": title, "window_start": start, "window_end": end, **metrics}


def test_matching_windows_and_open_ones() -> None:
    stream = [
        {"kind": "concurrent_viewers", **window("t1", "10:00", "10:01", viewers=3)},
        {"kind": "late_event", "event_id": "e1", "title_id": "t1"},
    ]
    batch = [window("t1", "10:00", "10:01", viewers=3), window("t1", "10:05", "10:06", viewers=1)]
    outcome = reconcile("concurrent_viewers", stream, batch)
    assert outcome.ok and outcome.matched == 1 and outcome.open_windows == 1
    assert outcome.compared == 1


def test_missing_extra_and_differing_are_named() -> None:
    stream = [window("t1", "10:00", "10:01", viewers=3), window("t9", "10:00", "10:01", viewers=1)]
    batch = [
        window("t1", "10:00", "10:01", viewers=4),
        window("t2", "10:00", "10:01", viewers=2),
        window("t3", "10:05", "10:06", viewers=2),
    ]
    outcome = reconcile("concurrent_viewers", stream, batch, closed_until="10:06")
    assert not outcome.ok
    assert outcome.missing_in_stream == [("t2", "10:00"), ("t3", "10:05")]
    assert outcome.extra_in_stream == [("t9", "10:00")]
    assert [(m.key, m.field, m.stream, m.batch) for m in outcome.differing] == [
        (("t1", "10:00"), "viewers", 3, 4)
    ]
    assert (outcome.matched, outcome.compared) == (0, 4)


def test_floats_compare_to_rounding_and_none_exactly() -> None:
    stream = [window("t1", "10:00", "10:05", p95=2775.0, rate=None)]
    assert reconcile(
        "concurrent_viewers",
        stream,
        [window("t1", "10:00", "10:05", p95=2774.9999999999995, rate=None)],
    ).ok
    assert not reconcile(
        "concurrent_viewers", stream, [window("t1", "10:00", "10:05", p95=2775.0, rate=0.0)]
    ).ok


def test_a_stream_that_published_nothing_fails() -> None:
    outcome = reconcile("concurrent_viewers", [], [window("t1", "10:00", "10:01", viewers=1)])
    assert not outcome.ok and outcome.missing_in_stream == [("t1", "10:00")]
    assert reconcile("concurrent_viewers", [], []).ok


def test_late_reports_are_the_late_event_records() -> None:
    records = [
        {"kind": "late_event", "event_id": "a", "watermark_ts": "w1"},
        {"kind": "late_event", "event_id": "a", "watermark_ts": "w2"},
        {"kind": "qoe_window", "event_id": "b", "watermark_ts": "w3"},
        {"kind": "late_event", "event_id": "c", "watermark_ts": None},
    ]
    assert late_reports(records) == [("a", "w1"), ("a", "w2")]


def test_a_window_published_twice_differently_fails_identical_copies_do_not() -> None:
    batch = [window("t1", "10:00", "10:01", viewers=3)]
    twice = [window("t1", "10:00", "10:01", viewers=3)] * 2
    assert reconcile("concurrent_viewers", twice, batch).ok
    partial = [window("t1", "10:00", "10:01", viewers=3), window("t1", "10:00", "10:01", viewers=1)]
    outcome = reconcile("concurrent_viewers", partial, batch)
    assert not outcome.ok and outcome.republished == [("t1", "10:00")]
