// streamer live view: one tile per camera, MJPEG <img> streams, stats polled from /api/stats.
// Streams are only open while visible, so the server only encodes what someone watches.
"use strict";

const POLL_MS = 1000;
// a poll with no answer by then counts as lost (a stalled request would otherwise freeze the
// numbers silently: e.g. the browser's six connections per server all taken by streams)
const POLL_TIMEOUT_MS = 5000;
const tiles = new Map();
let splitDefault = true;
let lostSince = null;  // when the server stopped answering; null while it answers

// Opened as /?token=…: the server answered with a cookie that every request carries from now on.
// The token leaves the address bar (history, bookmarks, shoulder-surfing) and never goes into a
// request URL, where a proxy's access log would keep it once a second.
if (new URLSearchParams(location.search).has("token")) {
  const clean = new URL(location.href);
  clean.searchParams.delete("token");
  history.replaceState(null, "", clean.pathname + clean.search + clean.hash);
}

function url(path, params) {
  const s = new URLSearchParams(params || {}).toString();
  return s ? `${path}?${s}` : path;
}

function fmt(x, digits) {
  return Number.isFinite(x) ? x.toFixed(digits) : "–";
}

// reopen: the same stream again under a new URL (a browser reuses an image it has for the old one)
function setStream(img, camera, variant, on, reopen) {
  const want = on ? url("stream", { camera, v: variant }) : "";
  if (img.dataset.want === want && !reopen) return;
  img.dataset.want = want;
  if (!on) img.removeAttribute("src");  // closes the HTTP stream
  else img.src = reopen ? `${want}&r=${Date.now()}` : want;
}

function applyMode(tile, reopen) {
  const { el, camera, hasOriginal } = tile;
  const mode = hasOriginal ? tile.mode : "clean";
  const video = el.querySelector(".video");
  video.dataset.mode = mode;
  el.querySelectorAll(".modes button").forEach(b => b.classList.toggle("on", b.dataset.mode === mode));
  el.querySelector(".modes").hidden = !hasOriginal;
  setStream(el.querySelector("img.clean"), camera, "clean", tile.streaming && mode !== "original", reopen);
  setStream(el.querySelector("img.original"), camera, "original", tile.streaming && hasOriginal && mode !== "clean", reopen);
}

function setSplit(el, pct) {
  el.querySelector(".video").style.setProperty("--split", `${pct}%`);
}

function makeTile(camera) {
  const el = document.getElementById("tile").content.firstElementChild.cloneNode(true);
  el.querySelector(".name").textContent = camera;
  const tile = { el, camera, mode: splitDefault ? "split" : "clean", hasOriginal: false, streaming: false };
  el.querySelectorAll(".modes button").forEach(b => b.addEventListener("click", () => {
    tile.mode = b.dataset.mode;
    applyMode(tile);
  }));
  const slider = el.querySelector(".slider");
  slider.addEventListener("input", () => setSplit(el, slider.value));
  setSplit(el, slider.value);
  el.querySelectorAll("img").forEach(img => img.addEventListener("error", () => {
    // stream broke (server restarted, camera gone): retry the same URL in a moment
    const want = img.dataset.want;
    if (!want) return;
    setTimeout(() => { if (img.dataset.want === want) img.src = `${want}&r=${Date.now()}`; }, 2000);
  }));
  const grid = document.getElementById("grid");
  grid.appendChild(el);
  grid.classList.toggle("single", grid.querySelectorAll(".tile").length === 1);
  return tile;
}

function update(tile, cam) {
  const { el } = tile;
  el.classList.remove("stale");
  // down = the pipeline says so and no frame reached the view lately (files report no "up")
  const live = cam.up || (cam.age_s !== null && cam.age_s < 3);
  el.classList.toggle("down", !live);
  el.querySelector(".state").title = live ? "delivering" : "down";
  el.querySelector(".res").textContent = cam.width ? `${cam.width}×${cam.height}` : "";
  if (cam.width && cam.height) {
    el.querySelector(".video").style.aspectRatio = `${cam.width} / ${cam.height}`;
    if (tiles.size === 1) document.getElementById("grid").style.setProperty("--aspect", cam.width / cam.height);
  }
  el.querySelector(".fps").textContent = fmt(cam.fps || cam.sink_fps, 1);
  el.querySelector(".lat").textContent = cam.display_latency_ms ? `${fmt(cam.display_latency_ms, 0)} ms` : "–";
  el.querySelector(".plat").textContent = cam.latency_ms ? `${fmt(cam.latency_ms, 0)} ms` : "–";
  el.querySelector(".drop").textContent = cam.dropped;
  el.querySelector(".rec").textContent = cam.reconnects;
  el.querySelector(".frames").textContent = `${cam.frames_in} / ${cam.frames_out}`;
  el.querySelector(".err").textContent = cam.last_error || "";
  const changed = tile.streaming !== cam.streaming || tile.hasOriginal !== cam.has_original;
  tile.streaming = cam.streaming;
  tile.hasOriginal = cam.has_original;
  if (changed) applyMode(tile);
}

// The server does not answer (the run stopped, the network is gone, the token is no longer
// accepted): the pictures are frozen on their last frame and the numbers are old. Say so, on the
// bar and on every tile, until it answers again.
function lost(error) {
  document.getElementById("conn").className = "dot bad";
  lostSince = lostSince || new Date();
  const why = error.name === "AbortError" ? `none within ${POLL_TIMEOUT_MS / 1000} s` :
    error.status === 401 ? "the access token is not accepted: open the page again with ?token=…" :
    error.status ? `HTTP ${error.status}` : "cannot connect";
  const banner = document.getElementById("offline");
  banner.textContent = `no answer from the server since ${lostSince.toLocaleTimeString()} (${why}); ` +
    "retrying — pictures and numbers may be old";
  banner.hidden = false;
  for (const tile of tiles.values()) tile.el.classList.add("stale");
}

async function poll() {
  const dot = document.getElementById("conn");
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), POLL_TIMEOUT_MS);
  try {
    const r = await fetch(url("api/stats"), { cache: "no-store", credentials: "same-origin", signal: abort.signal });
    if (!r.ok) throw Object.assign(new Error(`HTTP ${r.status}`), { status: r.status });
    const s = await r.json();
    dot.className = "dot ok";
    document.getElementById("offline").hidden = true;
    // back after a loss: the old streams ended with the server that sent them, open them again
    const reopen = lostSince !== null;
    lostSince = null;
    document.getElementById("title").textContent = s.title;
    document.getElementById("model").textContent = s.model || "–";
    document.getElementById("backend").textContent = s.backend || "–";
    document.getElementById("ncams").textContent = s.cameras.length;
    document.getElementById("ncams-word").textContent = s.cameras.length === 1 ? "camera" : "cameras";
    document.getElementById("empty").hidden = s.cameras.length > 0;
    for (const cam of s.cameras) {
      if (!tiles.has(cam.name)) tiles.set(cam.name, makeTile(cam.name));
      update(tiles.get(cam.name), cam);
    }
    if (reopen) for (const tile of tiles.values()) applyMode(tile, true);
  } catch (e) {
    lost(e);
  } finally {
    clearTimeout(timer);
  }
  setTimeout(poll, POLL_MS);
}

document.getElementById("all-split").addEventListener("change", ev => {
  splitDefault = ev.target.checked;
  for (const tile of tiles.values()) { tile.mode = splitDefault ? "split" : "clean"; applyMode(tile); }
});

poll();
