// Small enhancements of server-rendered pages; everything works without them.
"use strict";

// On the document: a part a live refresh swaps in submits as well.
function autosubmit() {
  document.addEventListener("change", (event) => {
    if (event.target.matches?.("[data-autosubmit]")) event.target.form.submit();
  });
}

function formatWaiting(seconds) {
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} ${document.documentElement.lang === "ru" ? "мин" : "min"}`;
  const h = document.documentElement.lang === "ru" ? "ч" : "h";
  const m = document.documentElement.lang === "ru" ? "мин" : "min";
  return `${Math.floor(minutes / 60)} ${h} ${String(minutes % 60).padStart(2, "0")} ${m}`;
}

// SLA clocks keep running while the page is open (one timer; parts swapped in join it).
function tickSla() {
  const now = Date.now();
  for (const el of document.querySelectorAll(".sla[data-waiting]")) {
    if (!el.dataset.start) el.dataset.start = String(now - Number(el.dataset.waiting) * 1000);
    const waiting = (now - Number(el.dataset.start)) / 1000;
    const limit = Number(el.dataset.limit);
    el.textContent = formatWaiting(waiting);
    const level = waiting >= limit ? "red" : waiting >= 0.75 * limit ? "amber" : "ok";
    el.className = `sla sla-${level}`;
  }
}

function scrollThread() {
  const composer = document.getElementById("composer");
  if (composer) composer.scrollIntoView({ block: "end" });
}

// Live: the server says what changed; the page fetches itself again and swaps the parts
// marked data-refresh (server-rendered, escaped), leaving what the agent is typing alone.
// The page's live parts fetched again (`only`: just these of them).
async function refresh(only = null) {
  // as many rows as the agent has scrolled through, so the list does not shrink under them
  const url = new URL(location.href);
  const shown = document.querySelectorAll("ul.conversations > li").length;
  if (shown > PAGE_SIZE) url.searchParams.set("limit", String(Math.min(shown, MAX_PAGE_SIZE)));
  const response = await fetch(url, { headers: { Accept: "text/html" } });
  if (!response.ok) return;
  // the conversation went into another (a private chat its person already had): go there
  if (response.redirected && new URL(response.url).pathname !== url.pathname) { location.assign(response.url); return; }
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  // the agent scrolled on while this was fetched: a list of as many rows as now is fetched instead
  if (document.querySelectorAll("ul.conversations > li").length > shown) { refresh(only); return; }
  // the row the agent moved to with j/k stays the one the keyboard is on
  const focused = document.activeElement?.matches(".conversation-row") ? document.activeElement.dataset.conversation : null;
  for (const part of document.querySelectorAll("[data-refresh]")) {
    if (only && !only.includes(part.dataset.refresh)) continue;
    const next = fresh.querySelector(`[data-refresh="${part.dataset.refresh}"]`);
    if (next) part.replaceWith(next);
  }
  if (focused) document.querySelector(`.conversation-row[data-conversation="${CSS.escape(focused)}"]`)?.focus();
  tickSla();
  pageOn();
}

// The list scrolls on: the "more" link at its end loads the next page into it once in view.
const PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 500;
const pager = "IntersectionObserver" in window ? new IntersectionObserver(async (entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    const link = entry.target;
    pager.unobserve(link);
    const response = await fetch(link.href, { headers: { Accept: "text/html" } });
    if (!response.ok) return;  // the link still works by hand
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const list = document.querySelector("ul.conversations");
    if (!list || !link.isConnected) return;
    const shown = new Set([...list.querySelectorAll("[data-conversation]")].map((a) => a.dataset.conversation));
    // a conversation that moved down while the agent scrolled is not listed twice
    for (const item of fresh.querySelectorAll("ul.conversations > li")) {
      const row = item.querySelector("[data-conversation]");
      if (row && !shown.has(row.dataset.conversation)) list.append(item);
    }
    const next = fresh.querySelector("a.more");
    if (next) link.replaceWith(next); else link.remove();
    tickSla();
    pageOn();
  }
}) : null;

function pageOn() {
  const more = document.querySelector("a.more");
  if (pager && more) pager.observe(more);
}

function listen() {
  const live = document.querySelector("[data-live]");
  if (!live) return;
  const conversation = Number(live.dataset.conversation || 0);
  // A burst of events, one fetch, QUIET_MS after its first; a list hears of every message, so
  // while they keep coming it fetches itself at most every LIST_EVERY_MS (neither re-rendering
  // at each one nor waiting for a quiet moment that a busy desk never has).
  const QUIET_MS = 250, LIST_EVERY_MS = 2000;
  let pending = null;
  let fetched = 0;
  const refreshSoon = () => {
    if (pending) return;
    const wait = Math.max(QUIET_MS, fetched + (conversation ? QUIET_MS : LIST_EVERY_MS) - Date.now());
    pending = setTimeout(() => { pending = null; fetched = Date.now(); refresh(); }, wait);
  };
  let delay = 1000;
  const connect = () => {
    const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/inbox`);
    socket.onopen = () => { delay = 1000; colleagues.join(socket, conversation); activity.join(socket); };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.kind === "agent.presence") { colleagues.heard(event, conversation); return; }
      alertAgent(event);
      // "subscribed": whatever happened between rendering and now is fetched once.
      if (event.kind !== "subscribed" && conversation && event.conversation_id !== conversation) return;
      refreshSoon();
    };
    socket.onclose = () => { setTimeout(connect, delay); delay = Math.min(delay * 2, 30000); };
  };
  connect();
  // colleagues' presence changes by itself (a page closed, an agent idle): no event says so
  if (document.querySelector('[data-refresh="colleagues"]')) {
    setInterval(() => refresh(["colleagues"]), COLLEAGUES_EVERY_MS);
  }
}
const COLLEAGUES_EVERY_MS = 30000;

// Who else is on this conversation. This page says where its agent is when it opens, again
// every RENEW_MS and at most every TYPING_MS while they type; others forget a silent page.
const colleagues = (() => {
  const RENEW_MS = 20000, FORGET_MS = 45000, TYPING_MS = 3000, TYPING_SHOWN_MS = 6000;
  const seen = new Map();  // agent id -> {name, until, typingUntil}
  let say = () => {};
  const render = () => {
    const place = document.querySelector(".presence");
    if (!place) return;
    const now = Date.now();
    const names = [];
    for (const [id, agent] of seen) {
      if (agent.until < now) { seen.delete(id); continue; }
      names.push(agent.typingUntil > now ? `${agent.name} (${place.dataset.typing})` : agent.name);
    }
    place.textContent = names.length ? `${place.dataset.viewing} ${names.join(", ")}` : "";
    place.hidden = !names.length;
  };
  setInterval(render, 1000);
  return {
    join(socket, conversation) {
      if (!conversation) return;
      say = (note) => { if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ viewing: conversation, ...note })); };
      say({ hello: true });
      const renew = setInterval(() => say({}), RENEW_MS);
      socket.addEventListener("close", () => { clearInterval(renew); seen.clear(); render(); });
      const textarea = document.querySelector("#composer textarea");
      let typedAt = 0;
      textarea?.addEventListener("input", () => {
        if (Date.now() - typedAt < TYPING_MS) return;
        typedAt = Date.now();
        say({ typing: true });
      });
    },
    heard(event, conversation) {
      const me = document.body.dataset.agent;
      if (event.conversation_id !== conversation || String(event.data.agent_id) === me) return;
      const id = event.data.agent_id;
      if (event.data.left) { seen.delete(id); render(); return; }
      const now = Date.now();
      seen.set(id, { name: event.data.name, until: now + FORGET_MS, typingUntil: event.data.typing ? now + TYPING_SHOWN_MS : 0 });
      if (event.data.hello) say({});
      render();
    },
  };
})();

// The agent uses this page: said on the socket at most every NOTE_MS, so that the agent shows
// online to colleagues and gets conversations; an agent idle for long shows away.
const activity = (() => {
  const NOTE_MS = 30000;
  let used = true;  // a page that opens is in use
  for (const kind of ["keydown", "pointerdown", "pointermove", "scroll", "focus"]) {
    window.addEventListener(kind, () => { used = true; }, { passive: true, capture: true });
  }
  return {
    join(socket) {
      const note = () => {
        if (!used || socket.readyState !== WebSocket.OPEN) return;
        used = false;
        socket.send(JSON.stringify({ active: true }));
      };
      note();
      const every = setInterval(note, NOTE_MS);
      socket.addEventListener("close", () => clearInterval(every));
    },
  };
})();

function composerHelpers() {
  const composer = document.getElementById("composer");
  if (!composer) return;
  const textarea = composer.querySelector("textarea[name=text]");
  const insert = (text) => {
    textarea.value = textarea.value ? `${textarea.value}\n${text}` : text;
    textarea.focus();
  };
  const canned = document.getElementById("canned");
  if (canned) {
    canned.addEventListener("change", () => {
      const option = canned.selectedOptions[0];
      if (option && option.dataset.text) insert(option.dataset.text);
      canned.value = "";
    });
  }
  const search = document.getElementById("kb-search");
  const results = document.getElementById("kb-results");
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      results.replaceChildren();
      const q = search.value.trim();
      if (!q) return;
      const params = new URLSearchParams({ q, language: search.dataset.language });
      const response = await fetch(`/api/kb/search?${params}`);
      if (!response.ok) return;
      for (const hit of (await response.json()).articles) {
        const item = document.createElement("li");
        const title = document.createElement("span");
        title.className = "title";
        const sure = Math.round(hit.confidence * 100);
        title.textContent = sure ? `${hit.title || hit.article_id} · ${sure}%` : hit.title || hit.article_id;
        const answer = document.createElement("span");
        answer.className = "answer";
        answer.textContent = hit.answer;
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = results.dataset.insertLabel;
        button.addEventListener("click", () => { insert(hit.answer); results.replaceChildren(); });
        item.append(title, button, answer);
        results.append(item);
      }
    }, 250);
  });
}

// Desktop notifications and a sound, each switched on for this browser in the list's panel: for
// a conversation that starts waiting, and for a customer's message in a conversation of mine.
const ALERT_KEYS = { desktop: "sb-alert-desktop", sound: "sb-alert-sound" };

function alertSwitches() {
  for (const [kind, key] of Object.entries(ALERT_KEYS)) {
    const box = document.getElementById(`alert-${kind}`);
    if (!box) continue;
    box.checked = localStorage.getItem(key) === "1";
    box.addEventListener("change", async () => {
      if (box.checked && kind === "desktop") {
        const allowed = "Notification" in window && (await Notification.requestPermission()) === "granted";
        box.checked = allowed;  // the browser said no: nothing would be shown
      }
      localStorage.setItem(key, box.checked ? "1" : "0");
    });
  }
}

function alertAgent(event) {
  const body = document.body.dataset;
  let text = null;
  if (event.kind === "conversation.state" && event.data.state === "waiting") {
    text = body.alertWaiting;
  } else if (event.kind === "message.created" && event.data.author === "customer"
             && String(event.data.assignee_id) === body.agent) {
    text = body.alertReply;
  } else if (event.kind === "conversation.state" && String(event.data.assignee_id) === body.agent
             && ["auto_assigned", "reassigned"].includes(event.data.reason)) {
    text = body.alertGiven;
  } else if (event.kind === "conversation.state" && String(event.data.previous_assignee_id) === body.agent
             && String(event.data.assignee_id) !== body.agent) {
    text = `${event.data.assignee_name} ${body.alertTaken}`;
    toast(text);  // told whether or not alerts are switched on: it was theirs
  }
  if (!text) return;
  if (localStorage.getItem(ALERT_KEYS.desktop) === "1" && "Notification" in window
      && Notification.permission === "granted") {
    const shown = new Notification("supportbridge", { body: text, tag: `sb-${event.conversation_id}` });
    shown.onclick = () => { window.focus(); location.href = `/c/${event.conversation_id}`; };
  }
  if (localStorage.getItem(ALERT_KEYS.sound) === "1") beep();
}

function toast(text) {
  const shown = document.createElement("p");
  shown.className = "toast";
  shown.setAttribute("role", "status");
  shown.textContent = text;
  document.body.append(shown);
  setTimeout(() => shown.remove(), 10000);
}

function beep() {
  const audio = new AudioContext();
  const tone = audio.createOscillator();
  const volume = audio.createGain();
  tone.frequency.value = 880;
  volume.gain.value = 0.1;
  tone.connect(volume).connect(audio.destination);
  tone.onended = () => audio.close();
  tone.start();
  tone.stop(audio.currentTime + 0.15);
}

// The keys of the "?" dialog. None acts while the agent types in a field, but Ctrl+Enter sends.
// j/k on a conversation follow the list it was opened from (kept for the browser tab).
function shortcuts() {
  const rows = () => [...document.querySelectorAll(".conversation-row")];
  if (rows().length) {
    sessionStorage.setItem("sb-list", JSON.stringify(rows().map((row) => row.dataset.conversation)));
  }
  const thread = document.querySelector(".thread[data-conversation]");
  const step = (by) => {
    const listed = rows();
    if (listed.length) {
      const at = listed.indexOf(document.activeElement);
      listed[Math.min(Math.max(at + by, 0), listed.length - 1)].focus();
      return;
    }
    if (!thread) return;
    const ids = JSON.parse(sessionStorage.getItem("sb-list") || "[]");
    const at = ids.indexOf(thread.dataset.conversation);
    if (at >= 0 && ids[at + by]) location.href = `/c/${ids[at + by]}`;
  };
  const keys = {
    "?": () => document.getElementById("shortcuts")?.showModal(),
    "/": () => (document.getElementById("search") || document.getElementById("kb-search"))?.focus(),
    j: () => step(1),
    k: () => step(-1),
    r: () => document.querySelector("#composer textarea")?.focus(),
    e: () => document.querySelector("form[action$='/resolve']")?.requestSubmit(),
  };
  document.addEventListener("keydown", (event) => {
    const field = event.target.closest?.("input, textarea, select, [contenteditable]");
    if (field) {
      if (field.matches("#composer textarea") && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        field.form.requestSubmit();
      }
      return;
    }
    const act = keys[event.key];
    if (!act || event.ctrlKey || event.metaKey || event.altKey) return;
    event.preventDefault();
    act();
  });
}

// Files chosen for a reply: one the network would refuse is named before anything is uploaded,
// and with a file the text (its caption) may be empty.
function composerFiles() {
  const input = document.querySelector("#composer input[type=file]");
  if (!input) return;
  const textarea = input.form.querySelector("textarea[name=text]");
  input.addEventListener("change", () => {
    const files = [...input.files];
    const large = files.find((file) => file.size > Number(input.dataset.fileBytes));
    const total = files.reduce((sum, file) => sum + file.size, 0);
    const refusal = large ? `${large.name}: ${input.dataset.tooLarge}`
      : total > Number(input.dataset.replyBytes) ? input.dataset.tooMuch : "";
    input.setCustomValidity(refusal);
    if (refusal) input.reportValidity();
    textarea.required = !files.length;
  });
}

// The days of the "started" filter are the agent's own: the browser's time zone, not UTC.
function browserTimeZone() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const input = document.querySelector("[data-browser-time-zone]");
  if (!zone || !input || new URLSearchParams(location.search).has("tz")) return;
  input.value = zone;
  const name = document.querySelector("[data-time-zone-name]");
  if (name) name.textContent = zone;
}

document.addEventListener("DOMContentLoaded", () => {
  browserTimeZone();
  shortcuts();
  alertSwitches();
  composerHelpers();
  composerFiles();
  autosubmit();
  tickSla();
  setInterval(tickSla, 15000);
  scrollThread();
  pageOn();
  listen();
});

// A form with data-confirm (deleting an article, taking a colleague's conversation) is sent only
// once the agent confirms it; listened for on the document, so parts swapped in live keep it.
document.addEventListener("submit", (event) => {
  const question = event.target.dataset?.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});

// Choosing a label adds it at once; listened for on the document, as the picker is in a part
// live updates swap (the form's button does it without scripts).
document.addEventListener("change", (event) => {
  const picker = event.target.closest?.(".add-label select");
  if (picker && picker.value) picker.form.requestSubmit();
});

// The admin menus close as a menu does: on a click elsewhere, on Escape, when another opens.
function closeMenus(except) {
  for (const menu of document.querySelectorAll("details.navmenu[open]")) {
    if (menu !== except) menu.open = false;
  }
}
document.addEventListener("click", (event) => closeMenus(event.target.closest?.("details.navmenu")));
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeMenus(null);
});
