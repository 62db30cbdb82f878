// poke2video app: press on the image and drag; the response video follows the drag and loops on release.
// Tools: "one arrow" (a drag replaces the arrows), "add arrows" (each drag adds one, all act at once),
// "pins" (a press holds that pixel still). Every arrow and pin is listed with a button that removes it.
// Plain JS, no build step. Talks to the JSON API of server.py (see /docs).
"use strict";

const THROTTLE_MS = 80;     // at most one poke request in flight, and at most one per THROTTLE_MS
const BUSY_BACKOFF_MS = 300; // after a 429, wait this long before asking again
const FRAME_MS = 125;       // 8 frames/s, as the downloaded videos
const HOLD_TICKS = 4;       // the last frame stays this many ticks before the loop restarts
const DISPLAY_SIDE = 512;   // CSS pixels of the canvas's longer side
const PNG_MAX_SIDE = 128;   // frames of larger images come as JPEG: 15x faster to encode at 512 px
const ARROW = "rgb(255, 40, 40)", TARGET = "rgb(40, 220, 255)", OUTLINE = "rgb(0, 0, 0)", PIN = "rgb(255, 255, 255)";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const counters = { requests: 0, responses: 0, applied: 0, dropped: 0, errors: 0, arrows: 0, frames: 0, pins: 0 };

const state = {
  model: null,
  image: null,       // {image_id, name, width, height, url, bitmap}
  mode: null,
  drag: null,        // {source: [x, y], target: [x, y]} while the pointer is down
  pokes: [],         // the arrows kept after release, in the order they were drawn
  pins: [],          // [x, y] pixels held still
  tool: "one",       // "one" | "add" | "pins"
  pointerId: null,
  frames: [],        // decoded frames of the response being played
  shown: null,       // {image_id, source, target, mode} that produced `frames`
  tick: 0,
  seq: 0,            // request counter: a response older than the newest applied one, or older than
  applied: 0,        // the last image or mode switch (minSeq), is dropped
  minSeq: 0,
  inFlight: false,
  sentKey: null,
  lastSent: 0,
  timer: null,
};

// ---- drawing ---------------------------------------------------------------------------------------

function toCanvas([x, y]) {
  return [(x + 0.5) * canvas.width / state.image.width, (y + 0.5) * canvas.height / state.image.height];
}

function currentFrame() {
  const k = state.tick % (1 + state.frames.length + HOLD_TICKS);
  if (k === 0 || state.frames.length === 0) return state.image.bitmap;
  return state.frames[Math.min(k, state.frames.length) - 1];
}

function drawArrow(poke) {
  const [sx, sy] = toCanvas(poke.source), [tx, ty] = toCanvas(poke.target);
  const unit = Math.max(1, canvas.width / 256);
  const length = Math.hypot(tx - sx, ty - sy);
  ctx.lineCap = "round";
  if (length > 0.5) {
    const head = Math.min(0.45 * length, 9 * unit), angle = Math.atan2(ty - sy, tx - sx);
    const wing = (side) => [tx - head * Math.cos(angle + side * 0.5), ty - head * Math.sin(angle + side * 0.5)];
    for (const [colour, width] of [[OUTLINE, 5 * unit], [ARROW, 2.5 * unit]]) {
      ctx.strokeStyle = colour; ctx.lineWidth = width;
      ctx.beginPath(); ctx.moveTo(sx, sy); ctx.lineTo(tx, ty);
      ctx.moveTo(...wing(1)); ctx.lineTo(tx, ty); ctx.lineTo(...wing(-1));
      ctx.stroke();
    }
  }
  for (const [colour, radius] of [[OUTLINE, 5 * unit], [TARGET, 3.5 * unit]]) {
    ctx.fillStyle = colour; ctx.beginPath(); ctx.arc(tx, ty, radius, 0, 2 * Math.PI); ctx.fill();
  }
  counters.arrows += 1;
}

function drawPin(pin) {
  const [x, y] = toCanvas(pin);
  const unit = Math.max(1, canvas.width / 256);
  for (const [colour, width] of [[OUTLINE, 5 * unit], [PIN, 2.5 * unit]]) {
    ctx.strokeStyle = colour; ctx.lineWidth = width;
    ctx.beginPath(); ctx.arc(x, y, 6 * unit, 0, 2 * Math.PI); ctx.stroke();
  }
  counters.pins += 1;
}

// The arrows that act now: the kept ones, and the one being dragged (alone with the "one arrow" tool).
function activePokes() {
  if (!state.drag) return state.pokes;
  return state.tool === "one" ? [state.drag] : [...state.pokes, state.drag];
}

function draw() {
  if (!state.image) return;
  ctx.imageSmoothingEnabled = canvas.width / state.image.width < 3;   // small images: crisp pixels
  ctx.drawImage(currentFrame(), 0, 0, canvas.width, canvas.height);
  activePokes().forEach(drawArrow);
  state.pins.forEach(drawPin);
  showCounters();
}

function showCounters() {
  const status = $("status");
  for (const [name, value] of Object.entries(counters)) status.dataset[name] = String(value);
  status.dataset.busy = state.inFlight || state.timer ? "1" : "0";   // a poke is waiting or running
  status.dataset.pokes = String(state.pokes.length);
  status.dataset.pinned = String(state.pins.length);
  status.textContent = `${counters.requests} requests · ${counters.applied} shown · ${counters.dropped} dropped`;
}

setInterval(() => {
  if (!state.image || state.frames.length === 0) return;
  state.tick += 1;
  draw();
}, FRAME_MS);

// ---- requests --------------------------------------------------------------------------------------

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message || "";
}

async function api(path, options) {
  const response = await fetch(path, options);
  if (response.ok) return response;
  let detail = `${response.status} ${response.statusText}`;
  try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
  const error = new Error(detail);
  error.status = response.status;
  throw error;
}

function postJson(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function decodeFrame(base64, format) {
  const img = new Image();
  img.src = `data:image/${format};base64,${base64}`;
  return img.decode().then(() => img);
}

// The body of /api/poke for what is on the canvas: source and target for one arrow and no pin (the API's
// first form), else every arrow as "pokes" and the pins; null with no arrow.
function pokeRequest() {
  const pokes = activePokes();
  if (!state.image || pokes.length === 0) return null;
  const request = { image_id: state.image.image_id, mode: state.mode };
  if (pokes.length === 1 && state.pins.length === 0) return { ...request, source: pokes[0].source, target: pokes[0].target };
  return { ...request, pokes: pokes.map(({ source, target }) => ({ source, target })), pins: state.pins };
}

function schedule() {
  const request = pokeRequest();
  if (!request || state.inFlight || state.timer) return;
  const wait = state.lastSent + THROTTLE_MS - performance.now();
  if (wait > 0) {
    state.timer = setTimeout(() => { state.timer = null; schedule(); showCounters(); }, wait);
    showCounters();
    return;
  }
  const key = JSON.stringify(request);
  const format = Math.max(state.image.width, state.image.height) > PNG_MAX_SIDE ? "jpeg" : "png";
  if (key !== state.sentKey) send(request, key, format);
}

async function send(request, key, format) {
  const seq = ++state.seq;
  state.sentKey = key;
  state.inFlight = true;
  state.lastSent = performance.now();
  counters.requests += 1;
  showCounters();
  const started = performance.now();
  try {
    const body = await (await postJson("/api/poke", { ...request, format })).json();
    const frames = await Promise.all(body.frames.map((frame) => decodeFrame(frame, body.format)));
    counters.responses += 1;
    if (seq <= state.applied || seq < state.minSeq) { counters.dropped += 1; return; }
    state.applied = seq;
    counters.applied += 1;
    counters.frames = frames.length;
    state.frames = frames;
    state.shown = request;
    state.tick = 0;
    $("timing").textContent = `${body.ms.toFixed(0)} ms per video (model) · ` +
      `${(performance.now() - started).toFixed(0)} ms round trip · ${frames.length} frames`;
    $("download-mp4").disabled = $("download-gif").disabled = false;
    showError("");
    draw();
  } catch (error) {
    counters.errors += 1;
    if (error.status === 429) { state.sentKey = null; state.lastSent = performance.now() + BUSY_BACKOFF_MS; }
    if (seq >= state.minSeq) showError(error.message);
  } finally {
    state.inFlight = false;
    showCounters();
    schedule();
  }
}

// ---- pointer: mouse, touch and pen through Pointer Events ------------------------------------------

function imagePoint(event) {
  const rect = canvas.getBoundingClientRect();
  const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
  const x = (event.clientX - rect.left) / rect.width * state.image.width - 0.5;
  const y = (event.clientY - rect.top) / rect.height * state.image.height - 0.5;
  return [clamp(x, state.image.width - 1), clamp(y, state.image.height - 1)];
}

canvas.addEventListener("pointerdown", (event) => {
  if (!state.image || event.button > 0 || state.drag) return;
  event.preventDefault();
  if (state.tool === "pins") { addPin(imagePoint(event)); return; }
  if (state.tool === "add" && state.pokes.length >= state.model.max_pokes) {
    showError(`at most ${state.model.max_pokes} arrows at once; remove one first`);
    return;
  }
  try { canvas.setPointerCapture(event.pointerId); } catch (_) { /* not an active pointer: no capture */ }
  state.pointerId = event.pointerId;
  const point = imagePoint(event);
  state.drag = { source: point, target: point };
  state.frames = [];
  draw();
});

canvas.addEventListener("pointermove", (event) => {
  if (!state.drag || event.pointerId !== state.pointerId) return;
  state.drag.target = imagePoint(event);
  draw();
  schedule();
});

function release(event) {
  if (!state.drag || event.pointerId !== state.pointerId) return;
  if (event.type === "pointerup") state.drag.target = imagePoint(event);
  state.pokes = activePokes();
  state.drag = null;
  changed();   // the final pokes; their response loops until the next change
}
canvas.addEventListener("pointerup", release);
canvas.addEventListener("pointercancel", release);

// ---- arrows and pins: the list, removal, tools -----------------------------------------------------

function addPin(point) {
  if (state.pins.length >= state.model.max_pins) {
    showError(state.model.max_pins ? `at most ${state.model.max_pins} pins; remove one first`
      : "this model takes no pins (it draws its frames, there is no flow to hold)");
    return;
  }
  state.pins.push(point);
  changed(true);
}

// After the arrows or pins changed: list them and ask for the new answer (`stale`: an answer on its way
// for the old ones is dropped; no arrow left: the image alone).
function changed(stale = false) {
  if (stale) { state.minSeq = state.seq + 1; state.sentKey = null; }
  listMarks();
  if (state.pokes.length === 0) {
    Object.assign(state, { frames: [], shown: null, sentKey: null });
    $("download-mp4").disabled = $("download-gif").disabled = true;
  }
  draw();
  schedule();
}

const shown = (point) => `(${point.map((v) => v.toFixed(1)).join(", ")})`;

function listMarks() {
  const items = [
    ...state.pokes.map((poke, i) => [`arrow ${i + 1}: ${shown(poke.source)} → ${shown(poke.target)}`, state.pokes, i]),
    ...state.pins.map((pin, i) => [`pin ${i + 1}: ${shown(pin)}`, state.pins, i]),
  ];
  $("marks").replaceChildren(...items.map(([text, list, index]) => {
    const item = document.createElement("li");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "remove";
    remove.setAttribute("aria-label", `remove ${text.split(":")[0]}`);
    remove.addEventListener("click", () => { list.splice(index, 1); changed(true); });
    item.append(`${text} `, remove);
    return item;
  }));
  $("clear-marks").disabled = items.length === 0;
}

$("clear-marks").addEventListener("click", () => { state.pokes = []; state.pins = []; changed(true); });
for (const radio of document.querySelectorAll("input[name=tool]")) {
  radio.addEventListener("change", () => { state.tool = radio.value; });
}

// ---- images, examples, modes, downloads ------------------------------------------------------------

async function selectImage(info) {
  const bitmap = new Image();
  bitmap.src = info.url;
  await bitmap.decode();
  state.image = { ...info, bitmap };
  state.minSeq = state.seq + 1;
  Object.assign(state, { drag: null, pokes: [], pins: [], frames: [], shown: null, sentKey: null, tick: 0 });
  listMarks();
  const scale = DISPLAY_SIDE / Math.max(info.width, info.height);
  const ratio = window.devicePixelRatio || 1;
  canvas.style.width = `${Math.round(info.width * scale)}px`;
  canvas.width = Math.round(info.width * scale * ratio);
  canvas.height = Math.round(info.height * scale * ratio);
  $("download-mp4").disabled = $("download-gif").disabled = true;
  for (const button of document.querySelectorAll("#examples button")) {
    button.classList.toggle("active", button.dataset.imageId === info.image_id);
  }
  showError("");
  draw();
}

async function loadExamples() {
  const examples = await (await api("/api/examples")).json();
  for (const example of examples) {
    const button = document.createElement("button");
    button.type = "button";
    button.id = `example-${example.name}`;
    button.dataset.imageId = example.image_id;
    button.title = example.background ? "a poke on the background should move nothing" : example.species;
    const thumbnail = document.createElement("img");
    thumbnail.alt = "";
    thumbnail.src = example.url;
    const label = document.createElement("span");
    label.textContent = example.name;
    button.append(thumbnail, label);
    button.addEventListener("click", () => selectImage(example).catch((e) => showError(e.message)));
    $("examples").append(button);
  }
  if (examples.length && !state.image) await selectImage(examples[0]);
}

async function loadModel() {
  const model = await (await api("/api/model")).json();
  state.model = model;
  state.mode = model.default_mode;
  $("model").textContent = `${model.name} · ${model.resolution} px · ${model.frames} frames · ` +
    `${(model.parameters / 1e6).toFixed(2)} M parameters`;
  $("modes").hidden = model.modes.length < 2;
  $("tool-pins").disabled = model.max_pins === 0;
  for (const radio of document.querySelectorAll("input[name=mode]")) {
    radio.disabled = !model.modes.includes(radio.value);
    radio.checked = radio.value === state.mode;
    radio.addEventListener("change", () => {
      state.mode = radio.value;
      state.minSeq = state.seq + 1;
      state.sentKey = null;
      schedule();
    });
  }
}

$("upload").addEventListener("change", async () => {
  const file = $("upload").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file);
  try {
    const info = await (await api("/api/images", { method: "POST", body: form })).json();
    await selectImage(info);
  } catch (error) {
    showError(error.message);
  } finally {
    $("upload").value = "";
  }
});

async function download(format) {
  if (!state.shown) return;
  const button = $(`download-${format}`);
  button.disabled = true;
  try {
    const response = await postJson("/api/video", { ...state.shown, format, overlay: true });
    const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement("a");
    link.href = url;
    link.download = match ? match[1] : `poke2video.${format}`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (error) {
    showError(error.message);
  } finally {
    button.disabled = false;
  }
}
$("download-mp4").addEventListener("click", () => download("mp4"));
$("download-gif").addEventListener("click", () => download("gif"));

Promise.all([loadModel(), loadExamples()]).catch((error) => showError(`cannot start: ${error.message}`));
