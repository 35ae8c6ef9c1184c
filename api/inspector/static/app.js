// Memory inspector: see, correct and delete what the agent remembers, from the same origin as the API.
// Plain browser JavaScript, no build step. Libraries (loaded by index.html when installed):
// window.supabase (supabase-js, production sign-in) and window.LivekitClient (voice calls).
"use strict";

const TOKEN_KEY = "memory-inspector.token";
const CALL_REFRESH_MS = 3000;
const SOURCES = { voice: "voice call", chat: "chat", api: "edited by you" };
const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  config: null,
  me: null,
  supabase: null,
  memories: [],
  threads: [],
  selectedThread: null,
  room: null,
  poll: null,
};

// ---------- helpers ----------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function when(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function notify(message) {
  $("notice").textContent = message;
  $("error").hidden = true;
}

function fail(error) {
  const message = error instanceof Error ? error.message : String(error);
  $("error").textContent = message;
  $("error").hidden = false;
  $("notice").textContent = "";
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${await currentToken()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    signOut("Your session has ended: sign in again.");
    throw new ApiError(401, "Your session has ended: sign in again.");
  }
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const data = await response.json();
      if (typeof data.detail === "string") detail = data.detail;
      else if (Array.isArray(data.detail) && data.detail[0]?.msg) detail = data.detail[0].msg;
    } catch (_) { /* not JSON: keep the status line */ }
    throw new ApiError(response.status, detail);
  }
  if (response.status === 204) return null;
  return response;
}

async function apiJson(method, path, body) {
  const response = await api(method, path, body);
  return response ? response.json() : null;
}

async function currentToken() {
  if (state.supabase) {
    const { data } = await state.supabase.auth.getSession();  // refreshed by supabase-js when needed
    if (data.session) state.token = data.session.access_token;
  }
  return state.token;
}

function memoryPath(memory) {
  return `/me/memories/${encodeURIComponent(memory.category)}/${encodeURIComponent(memory.key)}`;
}

// ---------- sign-in ----------

async function loadConfig() {
  const response = await fetch("/inspector-config");
  state.config = await response.json();
  $("signin-dev").hidden = !state.config.dev_login;
  const canSupabase = Boolean(state.config.supabase_url && state.config.supabase_anon_key && window.supabase);
  $("signin-supabase").hidden = !canSupabase;
  if (canSupabase) {
    state.supabase = window.supabase.createClient(state.config.supabase_url, state.config.supabase_anon_key);
    const { data } = await state.supabase.auth.getSession();
    if (data.session) state.token = data.session.access_token;
  }
}

async function signIn(token) {
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    state.me = await apiJson("GET", "/me");
  } catch (error) {
    if (error.status !== 401) fail(error);
    $("signin").hidden = false;
    return;
  }
  $("signin").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("who-email").textContent = state.me.email || state.me.user_id;
  showConsent(state.me.memory_enabled);
  $("call-start").disabled = !state.config.voice;
  if (!state.config.voice) $("call-state").textContent = "unavailable: LiveKit is not configured on this server";
  showTab("memories");
  await loadThreads();  // first: memories link to their conversations by title
  await loadMemories();
}

function signOut(message) {
  state.me = null;  // first: the call ending below must not reload anything
  endCall();
  if (state.supabase) state.supabase.auth.signOut().catch(() => {});
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("app").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  $("memory-groups").replaceChildren();
  $("thread-list").replaceChildren();
  if (message) notify(message);
}

async function devLogin() {
  try {
    const response = await fetch("/dev-login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ identity: $("dev-identity").value.trim() || "developer@localhost" }),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.detail || "the development sign-in failed");
    await signIn(data.access_token);
  } catch (error) {
    fail(error);
  }
}

async function supabaseLogin(event) {
  event.preventDefault();
  const { data, error } = await state.supabase.auth.signInWithPassword({
    email: $("sb-email").value,
    password: $("sb-password").value,
  });
  if (error) return fail(`Supabase sign-in failed: ${error.message}`);
  await signIn(data.session.access_token);
}

// ---------- memories ----------

async function loadMemories() {
  const params = new URLSearchParams();
  const query = $("search").value.trim();
  const category = $("category-filter").value;
  if (query) params.set("query", query);
  if (category) params.set("category", category);
  try {
    const data = await apiJson("GET", `/me/memories?${params}`);
    state.memories = data.memories;
    if (!query && !category) updateCategories(data.memories);
    renderMemories();
  } catch (error) {
    fail(error);
  }
}

function updateCategories(memories) {
  const select = $("category-filter");
  const chosen = select.value;
  const categories = [...new Set(memories.map((m) => m.category))].sort();
  select.replaceChildren(el("option", { value: "" }, "All categories"), ...categories.map((c) => el("option", { value: c }, c)));
  select.value = categories.includes(chosen) ? chosen : "";
}

function renderMemories() {
  const groups = new Map();
  for (const memory of state.memories) {
    if (!groups.has(memory.category)) groups.set(memory.category, []);
    groups.get(memory.category).push(memory);
  }
  const sections = [...groups.keys()].sort().map((category) =>
    el("section", { class: "group", "aria-label": category, dataset: { category } },
      el("h3", {}, category),
      el("ul", {}, groups.get(category).map(memoryRow)),
    ),
  );
  $("memory-groups").replaceChildren(...sections);
  $("memories-empty").hidden = state.memories.length > 0;
  $("memories-empty").textContent = $("search").value.trim() ? "No memory matches your search." : "Nothing remembered yet.";
}

function memoryRow(memory) {
  const label = `${memory.category}/${memory.key}`;
  const value = el("span", { class: "value" }, memory.value);
  const meta = el("div", { class: "meta" },
    el("span", { class: "badge", title: `source: ${memory.source || "unknown"}` }, SOURCES[memory.source] || memory.source || "unknown source"),
    memory.thread_id ? conversationLink(memory.thread_id) : null,
    el("span", {}, `updated ${when(memory.updated_at)}`),
  );
  const row = el("li", { class: "memory", "aria-label": label, dataset: { key: label } },
    el("span", { class: "key" }, memory.key.replaceAll("_", " ")),
    value,
    el("div", { class: "actions" },
      el("button", { type: "button", onclick: () => editMemory(row, memory) }, "Edit"),
      el("button", { type: "button", onclick: () => forgetMemory(memory) }, "Forget"),
    ),
    meta,
  );
  return row;
}

function conversationLink(threadId) {
  const thread = state.threads.find((t) => t.id === threadId);
  if (!thread) return el("span", { class: "muted" }, "from a deleted conversation");
  return el("button", { type: "button", class: "link", onclick: () => openThread(threadId) },
    `from “${thread.title || "Untitled conversation"}”`);
}

function editMemory(row, memory) {
  const input = el("input", { value: memory.value, "aria-label": `New value for ${memory.key.replaceAll("_", " ")}`, maxlength: "2000" });
  const save = async () => {
    try {
      await apiJson("PUT", memoryPath(memory), { value: input.value });
      notify(`Saved “${memory.key.replaceAll("_", " ")}”.`);
      await loadMemories();
    } catch (error) {
      fail(error);
    }
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") save();
    if (event.key === "Escape") renderMemories();
  });
  row.querySelector(".value").replaceWith(input);
  row.querySelector(".actions").replaceChildren(
    el("button", { type: "button", onclick: save }, "Save"),
    el("button", { type: "button", onclick: renderMemories }, "Cancel"),
  );
  input.focus();
}

async function forgetMemory(memory) {
  try {
    await api("DELETE", memoryPath(memory));
    notify(`Forgot “${memory.key.replaceAll("_", " ")}”.`);
    await loadMemories();
  } catch (error) {
    fail(error);
  }
}

function showConsent(enabled) {
  $("consent").checked = enabled;
  $("consent-off").hidden = enabled;
}

async function setConsent() {
  const enabled = $("consent").checked;
  try {
    const result = await apiJson("PATCH", "/me", { memory_enabled: enabled });
    state.me.memory_enabled = result.memory_enabled;
    showConsent(result.memory_enabled);
    notify(enabled ? "The agent may remember new things about you." : "The agent will not remember anything new about you.");
  } catch (error) {
    $("consent").checked = !enabled;
    fail(error);
  }
}

// ---------- conversations ----------

async function loadThreads() {
  try {
    const threads = [];
    let after = null;
    do {
      const data = await apiJson("GET", `/me/threads${after ? `?after=${encodeURIComponent(after)}` : ""}`);
      threads.push(...data.threads);
      after = data.has_more ? data.after : null;
    } while (after);
    state.threads = threads;
    renderThreads();
  } catch (error) {
    fail(error);
  }
}

function renderThreads() {
  const items = state.threads.map((thread) =>
    el("li", { class: thread.id === state.selectedThread ? "selected" : "" },
      el("button", { type: "button", onclick: () => openThread(thread.id) },
        el("div", {}, thread.title || "Untitled conversation"),
        el("div", { class: "muted" }, el("span", { class: "badge" }, thread.source), " ", when(thread.created_at)),
      ),
    ),
  );
  $("thread-list").replaceChildren(...(items.length ? items : [el("li", { class: "muted" }, "No conversations yet.")]));
}

async function openThread(threadId) {
  showTab("conversations");
  state.selectedThread = threadId;
  renderThreads();
  const pane = $("transcript");
  try {
    const thread = await apiJson("GET", `/me/threads/${encodeURIComponent(threadId)}`);
    const learnt = state.memories.filter((m) => m.thread_id === threadId).length;
    pane.replaceChildren(
      el("h2", {}, thread.title || "Untitled conversation"),
      el("p", { class: "muted" }, `${thread.source === "voice" ? "Voice call" : "Chat"} · ${when(thread.created_at)}`),
      el("div", { class: "thread-actions" },
        el("button", { type: "button", onclick: () => forgetFromThread(thread) }, "Forget what was learnt in this conversation"),
        " ",
        el("button", { type: "button", class: "danger", onclick: () => deleteThread(thread) }, "Delete conversation"),
      ),
      learnt ? el("p", { class: "muted" }, `${learnt} memor${learnt === 1 ? "y" : "ies"} came from this conversation.`) : null,
      el("ol", { class: "messages", "aria-label": "Transcript" },
        thread.messages.map((m) =>
          el("li", { class: `message ${m.role}` }, el("span", { class: "who" }, m.role === "user" ? "You" : "Agent"), m.text),
        ),
      ),
    );
  } catch (error) {
    pane.replaceChildren(el("p", { class: "muted" }, "This conversation could not be loaded."));
    fail(error);
  }
}

async function forgetFromThread(thread) {
  try {
    const result = await apiJson("DELETE", `/me/threads/${encodeURIComponent(thread.id)}/memories`);
    notify(`Forgot ${result.forgotten} memor${result.forgotten === 1 ? "y" : "ies"} learnt in “${thread.title || thread.id}”.`);
    await loadMemories();
  } catch (error) {
    fail(error);
  }
}

async function deleteThread(thread) {
  if (!window.confirm(`Delete “${thread.title || thread.id}” and its messages? Memories learnt in it stay.`)) return;
  try {
    await api("DELETE", `/me/threads/${encodeURIComponent(thread.id)}`);
    state.selectedThread = null;
    $("transcript").replaceChildren(el("p", { class: "muted" }, "Conversation deleted."));
    notify("Conversation deleted.");
    await loadThreads();
    renderMemories();
  } catch (error) {
    fail(error);
  }
}

// ---------- account ----------

async function exportData() {
  try {
    const response = await api("GET", "/me/export");
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: `memory-export-${state.me.user_id}.json` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    notify("Your data was downloaded.");
  } catch (error) {
    fail(error);
  }
}

async function deleteAccount() {
  try {
    await api("DELETE", "/me");
    $("delete-confirm").hidden = true;
    signOut("Your account and all its data were deleted. You are signed out.");
  } catch (error) {
    fail(error);
  }
}

// ---------- voice ----------

function setCallState(text) {
  $("call-state").textContent = text;
}

async function startCall() {
  const lk = window.LivekitClient;
  if (!lk) return fail("The voice library is not installed on this server (run scripts/setup.sh).");
  setCallState("fetching a call token…");
  $("call-start").disabled = true;
  try {
    const grant = await apiJson("POST", "/livekit/token", {});
    const room = new lk.Room({ adaptiveStream: true, dynacast: true });
    state.room = room;
    room.on(lk.RoomEvent.ConnectionStateChanged, (connection) => setCallState(connection));
    room.on(lk.RoomEvent.Disconnected, () => finishCall("disconnected"));
    room.on(lk.RoomEvent.TrackSubscribed, (track) => {
      if (track.kind === "audio") document.body.append(track.attach());
    });
    room.registerTextStreamHandler("lk.transcription", (reader, participant) => readTranscription(reader, participant));
    setCallState("connecting");
    await room.connect(grant.url, grant.token);
    await room.localParticipant.setMicrophoneEnabled(true);
    $("call-end").hidden = false;
    // what the agent learns during the call shows up in Memories while it happens
    state.poll = setInterval(refreshDuringCall, CALL_REFRESH_MS);
  } catch (error) {
    finishCall("not connected");
    fail(`The call could not start: ${error.message}`);
  }
}

async function readTranscription(reader, participant) {
  const segment = reader.info.attributes?.["lk.segment_id"] || reader.info.id;
  const speaker = participant.identity === state.me?.user_id ? "You" : "Agent";
  let line = $("live-transcript").querySelector(`[data-segment="${CSS.escape(segment)}"]`);
  if (!line) {
    line = el("li", { dataset: { segment } }, el("span", { class: "who" }, speaker), el("span", { class: "text" }));
    $("live-transcript").append(line);
  }
  const text = line.querySelector(".text");
  for await (const chunk of reader) text.textContent += chunk;
}

function refreshDuringCall() {
  if (document.querySelector("#memory-groups input")) return;  // never under the user's fingers mid-edit
  loadMemories();
}

function finishCall(text) {
  clearInterval(state.poll);
  state.poll = null;
  const hadCall = state.room !== null;
  state.room = null;
  $("call-end").hidden = true;
  $("call-start").disabled = !state.config?.voice;
  setCallState(text);
  if (hadCall && state.me) {
    loadThreads();  // the agent saves the call's transcript as a conversation
    loadMemories();
  }
}

function endCall() {
  if (state.room) state.room.disconnect();
}

// ---------- wiring ----------

function showTab(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.id === `tab-${name}`;
    tab.setAttribute("aria-selected", String(selected));
    $(tab.getAttribute("aria-controls")).hidden = !selected;
  }
}

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

async function main() {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => showTab(tab.id.slice(4)));
  }
  $("dev-login").addEventListener("click", devLogin);
  $("supabase-form").addEventListener("submit", supabaseLogin);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token-input").value.trim());
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  $("search").addEventListener("input", debounce(loadMemories, 250));
  $("category-filter").addEventListener("change", loadMemories);
  $("consent").addEventListener("change", setConsent);
  $("export").addEventListener("click", exportData);
  $("delete-account").addEventListener("click", () => { $("delete-confirm").hidden = false; });
  $("delete-account-cancel").addEventListener("click", () => { $("delete-confirm").hidden = true; });
  $("delete-account-confirm").addEventListener("click", deleteAccount);
  $("call-start").addEventListener("click", startCall);
  $("call-end").addEventListener("click", endCall);
  try {
    await loadConfig();
  } catch (error) {
    fail(`The server did not answer: ${error.message}`);
  }
  if (state.token) await signIn(state.token);
  else $("signin").hidden = false;
  document.body.dataset.ready = "true";
}

main();
