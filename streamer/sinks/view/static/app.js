// streamer live view: one tile per camera, all of it over ONE WebSocket per page (/ws).
// The page tells the server which streams it shows (camera + clean/original, as the modes change;
// none while the tab is hidden) and gets their JPEG frames and the stats (every second) back on
// it. One connection whatever the page shows: a browser opens at most six to a server, and one
// MJPEG stream per picture took them all with three cameras in split view.
"use strict";

// the server sends stats every second; nothing at all (stats or frames) for this long counts as
// lost: a half-open connection, a frozen server, a proxy that buffers
const SILENCE_MS = 5000;
const RETRY_MS = [500, 1000, 2000, 4000, 8000];  // reconnect backoff; then every 8 s
const VARIANTS = ["clean", "original"];
const tiles = new Map();
const decoder = new TextDecoder();
let splitDefault = true;
let lostSince = null;  // when the server stopped answering; null while it answers
let socket = null;  // the open (or opening) WebSocket
let sentWant = null;  // the last want message sent on it
let silenceTimer = null;
let retries = 0;

// Opened as /?token=…: the server answered with a cookie that every request carries from now on
// (the WebSocket too). The token leaves the address bar (history, bookmarks, shoulder-surfing)
// and never goes into a request URL, where a proxy's access log would keep it.
if (new URLSearchParams(location.search).has("token")) {
  const clean = new URL(location.href);
  clean.searchParams.delete("token");
  history.replaceState(null, "", clean.pathname + clean.search + clean.hash);
}

function fmt(x, digits) {
  return Number.isFinite(x) ? x.toFixed(digits) : "–";
}

// --- pictures: one <canvas> per stream, drawn from JPEG frames ---------------------------------
// Each frame is decoded off the main thread (createImageBitmap), drawn, and its bitmap closed at
// once. Latest wins here too: while one frame decodes, only the newest next one waits (older ones
// are dropped), so a slow phone skips frames instead of falling behind, and a page left open for
// days holds one canvas per picture and nothing else.
function makePicture(canvas) {
  return { canvas, ctx: canvas.getContext("2d"), busy: false, next: null, off: false };
}

async function showFrame(pic, blob) {
  pic.off = false;
  if (pic.busy) { pic.next = blob; return; }
  pic.busy = true;
  for (let frame = blob; frame; frame = pic.next, pic.next = null) {
    let bitmap = null;
    try {
      bitmap = await createImageBitmap(frame);
    } catch (e) {
      continue;  // a frame that does not decode: the next one will
    }
    if (!pic.off) {
      if (pic.canvas.width !== bitmap.width || pic.canvas.height !== bitmap.height) {
        pic.canvas.width = bitmap.width;
        pic.canvas.height = bitmap.height;
      }
      pic.ctx.drawImage(bitmap, 0, 0);
    }
    bitmap.close();
  }
  pic.busy = false;
  if (pic.off) clearPicture(pic);
}

// the stream is no longer shown: free its picture (once the frame being decoded, if any, is done)
function clearPicture(pic) {
  pic.next = null;
  if (pic.busy) { pic.off = true; return; }
  pic.off = false;
  pic.canvas.width = pic.canvas.height = 0;  // drops the canvas' pixels
}

function onFrame(buffer) {
  const length = new DataView(buffer).getUint16(0);
  const head = JSON.parse(decoder.decode(new Uint8Array(buffer, 2, length)));
  const tile = tiles.get(head.camera);
  if (!tile || !shownStreams(tile).includes(head.v)) return;  // sent before the page changed its mind
  showFrame(tile.pictures[head.v], new Blob([new Uint8Array(buffer, 2 + length)], { type: "image/jpeg" }));
}

// --- which streams the page shows ---------------------------------------------------------------
function shownStreams(tile) {
  if (!tile.streaming) return [];
  const mode = tile.hasOriginal ? tile.mode : "clean";
  return mode === "split" ? ["clean", "original"] : [mode];
}

function sendWant() {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  const want = [];
  if (!document.hidden) {  // a hidden tab gets stats only; its pictures keep their last frame
    for (const tile of tiles.values()) for (const v of shownStreams(tile)) want.push({ camera: tile.camera, v });
  }
  const msg = JSON.stringify({ want });
  if (msg === sentWant) return;
  socket.send(msg);
  sentWant = msg;
}

function applyMode(tile) {
  const { el, hasOriginal } = tile;
  const mode = hasOriginal ? tile.mode : "clean";
  const video = el.querySelector(".video");
  video.dataset.mode = mode;
  el.querySelectorAll(".modes button").forEach(b => b.classList.toggle("on", b.dataset.mode === mode));
  el.querySelector(".modes").hidden = !hasOriginal;
  const shown = shownStreams(tile);
  for (const v of VARIANTS) if (!shown.includes(v)) clearPicture(tile.pictures[v]);
  sendWant();
}

function setSplit(el, pct) {
  el.querySelector(".video").style.setProperty("--split", `${pct}%`);
}

function makeTile(camera) {
  const el = document.getElementById("tile").content.firstElementChild.cloneNode(true);
  el.querySelector(".name").textContent = camera;
  const pictures = { clean: makePicture(el.querySelector("canvas.clean")), original: makePicture(el.querySelector("canvas.original")) };
  const tile = { el, camera, pictures, mode: splitDefault ? "split" : "clean", hasOriginal: false, streaming: false };
  el.querySelectorAll(".modes button").forEach(b => b.addEventListener("click", () => {
    tile.mode = b.dataset.mode;
    applyMode(tile);
  }));
  const slider = el.querySelector(".slider");
  slider.addEventListener("input", () => setSplit(el, slider.value));
  setSplit(el, slider.value);
  const grid = document.getElementById("grid");
  grid.appendChild(el);
  grid.classList.toggle("single", grid.querySelectorAll(".tile").length === 1);
  return tile;
}

// --- numbers ------------------------------------------------------------------------------------
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

function onStats(s) {
  retries = 0;
  document.getElementById("conn").className = "dot ok";
  document.getElementById("offline").hidden = true;
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
  sendWant();
}

// --- the connection -----------------------------------------------------------------------------
// The server does not answer (the run stopped, the network is gone, the token is no longer
// accepted): the pictures are frozen on their last frame and the numbers are old. Say so, on the
// bar and on every tile, until it answers again.
function lost(why) {
  document.getElementById("conn").className = "dot bad";
  lostSince = lostSince || new Date();
  const banner = document.getElementById("offline");
  banner.textContent = `no answer from the server since ${lostSince.toLocaleTimeString()} (${why}); ` +
    "retrying — pictures and numbers may be old";
  banner.hidden = false;
  for (const tile of tiles.values()) tile.el.classList.add("stale");
}

// A WebSocket that fails says nothing of why (no HTTP status): one plain request tells a token
// that is no longer accepted from a server that is gone.
async function whyClosed(code) {
  if (code === 1001) return "the server is stopping";
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 3000);
  try {
    const r = await fetch("api/stats", { cache: "no-store", credentials: "same-origin", signal: abort.signal });
    if (r.status === 401) return "the access token is not accepted: open the page again with ?token=…";
    if (!r.ok) return `HTTP ${r.status}`;
    return "the server refused the page's connection";
  } catch (e) {
    return e.name === "AbortError" ? "no answer" : "cannot connect";
  } finally {
    clearTimeout(timer);
  }
}

function armSilenceTimer() {
  clearTimeout(silenceTimer);
  silenceTimer = setTimeout(() => {
    if (!socket) return;
    drop(socket);
    lost(`nothing within ${SILENCE_MS / 1000} s`);
    reconnect();
  }, SILENCE_MS);
}

function drop(ws) {
  ws.onclose = ws.onmessage = ws.onerror = null;
  ws.close();
  if (socket === ws) socket = null;
}

function reconnect() {
  clearTimeout(silenceTimer);
  setTimeout(connect, RETRY_MS[Math.min(retries, RETRY_MS.length - 1)]);
  retries += 1;
}

function connect() {
  const url = new URL("ws", location.href);  // next to the page, whatever path a proxy serves it under
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.search = url.hash = "";
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  socket = ws;
  sentWant = null;
  armSilenceTimer();
  ws.onopen = () => sendWant();
  ws.onmessage = ev => {
    armSilenceTimer();
    if (typeof ev.data !== "string") onFrame(ev.data);
    else {
      const msg = JSON.parse(ev.data);
      if (msg.type === "stats") onStats(msg);
    }
  };
  ws.onclose = async ev => {
    drop(ws);
    clearTimeout(silenceTimer);
    lost(await whyClosed(ev.code));
    reconnect();
  };
}

document.getElementById("all-split").addEventListener("change", ev => {
  splitDefault = ev.target.checked;
  for (const tile of tiles.values()) { tile.mode = splitDefault ? "split" : "clean"; applyMode(tile); }
});
document.addEventListener("visibilitychange", sendWant);

connect();
