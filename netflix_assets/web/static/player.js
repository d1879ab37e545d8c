// The player page: asks the app for a playback (only the variants this browser can decode),
// plays it with hls.js through the edge, and reports the viewing-event contract
// (schema/viewing_event.v1.schema.json) in batches to POST /v1/events.
"use strict";
(function () {
  const root = document.getElementById("player");
  const video = document.getElementById("video");
  const statusLine = document.getElementById("status");
  const params = new URLSearchParams(location.search);
  const HEARTBEAT_MS = Number(params.get("heartbeat_ms")) || 30000;
  const FLUSH_MS = Number(params.get("flush_ms")) || 5000;
  // A short forward buffer makes a throttled network show as stalls at once (the tests use it).
  const MAX_BUFFER_S = Number(params.get("max_buffer_s")) || 30;
  const BATCH = 50;
  const info = {
    title: root.dataset.title,
    user: root.dataset.user,
    profile: root.dataset.profile,
    country: root.dataset.country,
    cdn: root.dataset.cdn,
    codecs: JSON.parse(root.dataset.codecs),
  };
  const os = /Android/.test(navigator.userAgent) ? "android"
    : /Mac OS/.test(navigator.userAgent) ? "macos"
    : /Windows/.test(navigator.userAgent) ? "windows" : "linux";
  // What the tests and the benchmark read back.
  const state = window.__player = {
    sessionId: null, startupMs: null, errors: [], fragmentsLoaded: 0, renditions: [],
    eventsSent: 0, eventsRejected: 0, refused: null, supported: [], stalls: 0, stallsEnded: 0,
    renditionChanges: 0,
  };
  const queue = [];
  let level = null;
  let stallStarted = null;
  let stopped = false;

  function show(text) { statusLine.textContent = text; }

  // hls.js may report "playing" before its LEVEL_SWITCHED event: fall back to the level it plays.
  function playingLevel() {
    const h = window.__hls;
    if (!h || !h.levels) return null;
    return h.levels[h.currentLevel >= 0 ? h.currentLevel : h.loadLevel] || null;
  }

  function event(type, extra) {
    if (!state.sessionId) return;
    const lv = level || playingLevel();
    queue.push(Object.assign({
      schema_version: 1,
      event_id: crypto.randomUUID(),
      session_id: state.sessionId,
      user_id: info.user,
      profile_id: info.profile,
      title_id: info.title,
      device: "web",
      os: os,
      country: info.country,
      cdn: info.cdn,
      event_type: type,
      event_ts: new Date().toISOString(),
      position_ms: Math.max(0, Math.floor(video.currentTime * 1000)),
      rendition: lv ? lv.height + "p" : null,
      bitrate_kbps: lv ? Math.round(lv.bitrate / 1000) : null,
      buffer_ms: bufferedMs(),
    }, extra || {}));
    if (queue.length >= BATCH) flush(false);
  }

  function bufferedMs() {
    const b = video.buffered;
    for (let i = 0; i < b.length; i++) {
      if (b.start(i) <= video.currentTime && video.currentTime <= b.end(i)) {
        return Math.floor((b.end(i) - video.currentTime) * 1000);
      }
    }
    return 0;
  }

  function flush(leaving) {
    if (!queue.length) return Promise.resolve();
    const batch = queue.splice(0, queue.length);
    return fetch("/v1/events", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ events: batch }),
      keepalive: leaving,
      credentials: "same-origin",
    }).then(async (r) => {
      const body = await r.json().catch(() => ({}));
      state.eventsSent += body.accepted || 0;
      state.eventsRejected += (body.rejected || []).length;
      if (r.status >= 500) queue.unshift(...batch);  // not confirmed: send again
    }).catch(() => { queue.unshift(...batch); });
  }

  function post(path) {
    return fetch(path, { method: "POST", credentials: "same-origin", keepalive: true });
  }

  function stop(reason) {
    if (stopped || !state.sessionId) return;
    stopped = true;
    event("stop");
    flush(true);
    post(`/v1/playback/${state.sessionId}/stop`);
    show(reason);
  }

  async function start() {
    if (!window.MediaSource || !window.Hls || !Hls.isSupported()) {
      show("This browser has no Media Source Extensions: it cannot play here.");
      return;
    }
    state.supported = info.codecs.filter(
      (c) => MediaSource.isTypeSupported(`video/mp4; codecs="${c}"`));
    const requested = performance.now();
    const requestedAt = new Date().toISOString();
    const response = await fetch("/v1/playback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ title_id: info.title, codecs: state.supported }),
      credentials: "same-origin",
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      state.refused = { status: response.status, detail: body.detail };
      show(typeof body.detail === "string" ? body.detail : `Playback refused (${response.status})`);
      return;
    }
    state.sessionId = body.session_id;
    event("playback_request", { event_ts: requestedAt, position_ms: 0 });
    const blob = new Blob([body.master], { type: "application/vnd.apple.mpegurl" });
    const hls = new Hls({
      capLevelToPlayerSize: false,
      startLevel: -1,
      maxBufferLength: MAX_BUFFER_S,
      maxMaxBufferLength: MAX_BUFFER_S,
    });
    window.__hls = hls;
    hls.on(Hls.Events.FRAG_LOADED, () => { state.fragmentsLoaded += 1; });
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
      const previous = level;
      level = hls.levels[data.level];
      state.renditions.push(level.height + "p@" + level.bitrate);
      if (previous && state.startupMs !== null) {
        state.renditionChanges += 1;
        event("rendition_change");
      }
    });
    hls.on(Hls.Events.ERROR, (_, data) => {
      if (!data.fatal) return;
      state.errors.push(`${data.type}:${data.details}`);
      event("error", { error_code: String(data.details) });
      flush(false);
      show(`Playback error: ${data.details}`);
      hls.destroy();
    });
    video.addEventListener("playing", () => {
      if (state.startupMs === null) {
        state.startupMs = Math.round(performance.now() - requested);
        event("start", { startup_ms: state.startupMs });
        show("Playing");
      } else if (stallStarted !== null) {
        const stallMs = Math.round(performance.now() - stallStarted);
        stallStarted = null;
        state.stallsEnded += 1;
        event("stall_end", { stall_ms: stallMs });
      }
    });
    video.addEventListener("waiting", () => {
      if (state.startupMs !== null && stallStarted === null && !video.seeking) {
        stallStarted = performance.now();
        state.stalls += 1;
        event("stall_start");
      }
    });
    video.addEventListener("ended", () => stop("Finished"));
    hls.loadSource(URL.createObjectURL(blob));
    hls.attachMedia(video);
    video.muted = true;
    video.play().catch(() => show("Press play to start"));
    setInterval(() => { if (!stopped && state.startupMs !== null) event("heartbeat"); }, HEARTBEAT_MS);
    setInterval(() => { if (!stopped) post(`/v1/playback/${state.sessionId}/keepalive`); },
      Math.min(HEARTBEAT_MS, 30000));
    setInterval(() => flush(false), FLUSH_MS);
  }

  window.addEventListener("pagehide", () => stop("Stopped"));
  window.__flushEvents = () => flush(false);
  start().catch((e) => { state.errors.push(String(e)); show(`Playback failed: ${e}`); });
})();
