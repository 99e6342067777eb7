/* supportbridge web chat. Add it to a page with one tag:
 *   <script src="https://support.example.com/widget.js" async></script>
 * Optional attributes on that tag: data-title="Support", data-color="#0b6bcb" (the accent),
 * data-lang="ru" or "en" (otherwise the browser's language), data-open (open at once).
 * Plain JavaScript, no build step, nothing loaded from elsewhere. Message text is always set as
 * text (textContent), never parsed as HTML.
 */
(function () {
  "use strict";
  if (window.__supportbridgeChat) return; // the tag included twice: one chat
  window.__supportbridgeChat = true;

  var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!script) return;
  var server = new URL(script.src, location.href);
  var socketUrl = (server.protocol === "https:" ? "wss:" : "ws:") + "//" + server.host + "/ws/chat";
  var config = script.dataset || {};
  var lang = String(config.lang || navigator.language || "en").slice(0, 2).toLowerCase() === "ru" ? "ru" : "en";
  var accent = /^#[0-9a-fA-F]{3,8}$/.test(config.color || "") ? config.color : "#0b6bcb";
  var MAX_CHARS = 8192;
  var MAX_FILE_BYTES = 5 * 1024 * 1024;
  var PHOTO_SIDE = 1600; // a phone's photo is scaled down to this, which an agent reads well

  var TEXTS = {
    en: {
      title: "Support",
      open: "Chat with us",
      close: "Close the chat",
      online: "We usually answer within minutes",
      connecting: "Connecting…",
      offline: "No connection — reconnecting…",
      placeholder: "Write a message…",
      send: "Send",
      greeting: "Hello! Ask us anything — the assistant answers at once, and a person takes over when needed.",
      you: "You",
      bot: "Assistant",
      agent: "Support agent",
      sending: "Sending…",
      failed: "Not sent",
      retry: "Try again",
      too_long: "The message is too long.",
      too_fast: "Too many messages at once — wait a moment.",
      too_large: "The file is too large (at most 5 MB).",
      too_many_visitors: "Too many new chats from your network — we will reconnect shortly.",
      busy: "The chat is very busy — try again in a few minutes.",
      too_many_files: "Too many files sent — try again in a few minutes.",
      file_quota: "Files cannot be taken today — please describe it in a message.",
      other: "The message was refused.",
      attach: "Attach a photo or a file",
      file: "File",
      powered: "supportbridge"
    },
    ru: {
      title: "Поддержка",
      open: "Написать нам",
      close: "Закрыть чат",
      online: "Обычно отвечаем за несколько минут",
      connecting: "Подключаемся…",
      offline: "Нет связи — переподключаемся…",
      placeholder: "Напишите сообщение…",
      send: "Отправить",
      greeting: "Здравствуйте! Спросите что угодно — ассистент ответит сразу, а если нужно, подключится человек.",
      you: "Вы",
      bot: "Ассистент",
      agent: "Оператор",
      sending: "Отправляется…",
      failed: "Не отправлено",
      retry: "Повторить",
      too_long: "Сообщение слишком длинное.",
      too_fast: "Слишком много сообщений подряд — подождите немного.",
      too_large: "Файл слишком большой (не больше 5 МБ).",
      too_many_visitors: "Слишком много новых чатов из вашей сети — скоро подключимся снова.",
      busy: "Чат сейчас перегружен — попробуйте через несколько минут.",
      too_many_files: "Слишком много файлов — попробуйте через несколько минут.",
      file_quota: "Сегодня файлы не принимаются — опишите, пожалуйста, словами.",
      other: "Сообщение не принято.",
      attach: "Прикрепить фото или файл",
      file: "Файл",
      powered: "supportbridge"
    }
  };
  var t = TEXTS[lang];
  var title = config.title ? String(config.title).slice(0, 60) : t.title;

  // ---- storage: the brand site's localStorage; a browser that refuses it still chats -------
  var memory = {};
  var storageKey = "supportbridge-chat:" + server.host + ":";
  function load(name, fallback) {
    try {
      var raw = localStorage.getItem(storageKey + name);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return name in memory ? memory[name] : fallback;
    }
  }
  function save(name, value) {
    memory[name] = value;
    try { localStorage.setItem(storageKey + name, JSON.stringify(value)); } catch (e) { /* memory only */ }
  }

  // ---- styles ---------------------------------------------------------------------------
  var CSS = [
    ":host { all: initial; --accent: " + accent + "; }",
    "* { box-sizing: border-box; }",
    ".root { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; color: #17212b; }",
    ".launcher { position: fixed; right: calc(20px + env(safe-area-inset-right)); bottom: calc(20px + env(safe-area-inset-bottom));",
    "  width: 60px; height: 60px; border-radius: 50%; border: 0; background: var(--accent); color: #fff; cursor: pointer;",
    "  box-shadow: 0 6px 20px rgba(16, 24, 40, .28); display: flex; align-items: center; justify-content: center;",
    "  z-index: 2147483646; transition: transform .15s ease; -webkit-tap-highlight-color: transparent; }",
    ".launcher:hover { transform: scale(1.06); }",
    ".launcher:focus-visible, button:focus-visible, textarea:focus-visible { outline: 3px solid rgba(11, 107, 203, .45); outline-offset: 2px; }",
    ".launcher svg { width: 28px; height: 28px; }",
    ".badge { position: absolute; top: -2px; right: -2px; min-width: 22px; height: 22px; padding: 0 6px; border-radius: 11px;",
    "  background: #e5484d; color: #fff; font-size: 12px; font-weight: 700; line-height: 22px; text-align: center; border: 2px solid #fff; }",
    ".panel { position: fixed; right: calc(20px + env(safe-area-inset-right)); bottom: calc(92px + env(safe-area-inset-bottom));",
    "  width: 380px; height: min(640px, calc(100vh - 120px)); background: #f4f6f9; border-radius: 18px; overflow: hidden;",
    "  box-shadow: 0 18px 50px rgba(16, 24, 40, .3); display: flex; flex-direction: column; z-index: 2147483647; }",
    ".panel[hidden] { display: none; }",
    "header { background: var(--accent); color: #fff; padding: 14px 10px 14px 16px; display: flex; align-items: center; gap: 12px; }",
    ".avatar { width: 40px; height: 40px; border-radius: 50%; background: rgba(255,255,255,.22); display: flex;",
    "  align-items: center; justify-content: center; font-weight: 700; font-size: 17px; flex: none; position: relative; }",
    ".avatar::after { content: ''; position: absolute; right: 0; bottom: 0; width: 11px; height: 11px; border-radius: 50%;",
    "  background: #9aa5b1; border: 2px solid var(--accent); }",
    ".online .avatar::after { background: #3ecf8e; }",
    ".heading { flex: 1; min-width: 0; }",
    ".heading strong { display: block; font-size: 16px; font-weight: 650; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }",
    ".status { display: block; font-size: 12.5px; opacity: .88; }",
    ".close { width: 44px; height: 44px; border: 0; border-radius: 50%; background: transparent; color: #fff; cursor: pointer;",
    "  display: flex; align-items: center; justify-content: center; flex: none; }",
    ".close:hover { background: rgba(255,255,255,.16); }",
    ".close svg { width: 22px; height: 22px; }",
    ".log { flex: 1; overflow-y: auto; padding: 16px 14px 8px; display: flex; flex-direction: column; gap: 4px;",
    "  overscroll-behavior: contain; -webkit-overflow-scrolling: touch; }",
    ".row { display: flex; flex-direction: column; max-width: 84%; }",
    ".row.mine { align-self: flex-end; align-items: flex-end; }",
    ".row.theirs { align-self: flex-start; align-items: flex-start; }",
    ".who { font-size: 12px; color: #687785; margin: 8px 4px 2px; }",
    ".bubble { padding: 9px 13px; border-radius: 18px; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 15px; }",
    ".mine .bubble { background: var(--accent); color: #fff; border-bottom-right-radius: 6px; }",
    ".theirs .bubble { background: #fff; color: #17212b; border-bottom-left-radius: 6px; box-shadow: 0 1px 2px rgba(16,24,40,.08); }",
    ".meta { font-size: 11px; color: #8694a1; margin: 2px 6px 4px; }",
    ".failed .bubble { background: #fde8e8; color: #8c1d18; }",
    ".failed .meta { color: #b3261e; }",
    ".pending .bubble { opacity: .7; }",
    ".choices { display: flex; flex-wrap: wrap; gap: 8px; margin: 2px 0 6px; align-self: stretch; }",
    ".choice { min-height: 44px; padding: 10px 16px; border-radius: 22px; border: 1.5px solid var(--accent); background: #fff;",
    "  color: var(--accent); font: inherit; font-weight: 600; cursor: pointer; }",
    ".choice:hover { background: var(--accent); color: #fff; }",
    ".retry { border: 0; background: none; color: #b3261e; font: inherit; font-size: 12px; text-decoration: underline; cursor: pointer; padding: 4px; min-height: 32px; }",
    "form { display: flex; align-items: flex-end; gap: 8px; padding: 10px 10px calc(10px + env(safe-area-inset-bottom)); background: #fff;",
    "  border-top: 1px solid #e3e8ee; margin: 0; }",
    "textarea { flex: 1; resize: none; border: 1px solid #d0d8e0; border-radius: 22px; padding: 11px 16px; font: inherit;",
    "  font-size: 16px; line-height: 1.35; max-height: 120px; min-height: 44px; background: #f8fafc; color: #17212b; outline: none; }",
    "textarea:focus { border-color: var(--accent); background: #fff; }",
    ".send { width: 44px; height: 44px; border-radius: 50%; border: 0; background: var(--accent); color: #fff; cursor: pointer;",
    "  display: flex; align-items: center; justify-content: center; flex: none; }",
    ".send:disabled { opacity: .4; cursor: default; }",
    ".attach { width: 44px; height: 44px; border-radius: 50%; border: 0; background: transparent; color: #687785; cursor: pointer;",
    "  display: flex; align-items: center; justify-content: center; flex: none; }",
    ".attach:hover { background: #eef2f6; color: var(--accent); }",
    ".attach svg { width: 22px; height: 22px; }",
    ".picker { display: none; }",
    ".file { display: block; font-size: 14px; font-weight: 600; }",
    "a.file { color: var(--accent); text-decoration: none; }",
    "a.photo { display: block; margin: -4px -8px 4px; }",
    "a.photo img { display: block; max-width: 100%; max-height: 260px; border-radius: 14px; }",
    ".file + .file, .bubble-text + .file, .file + .bubble-text { margin-top: 4px; }",
    ".send svg { width: 20px; height: 20px; }",
    ".powered { text-align: center; font-size: 11px; color: #97a3ae; background: #fff; padding: 0 0 6px; }",
    "@media (max-width: 480px) {",
    "  .panel { inset: 0; right: 0; bottom: 0; width: 100%; height: 100%; height: 100dvh; border-radius: 0; }",
    "  header { padding-top: calc(12px + env(safe-area-inset-top)); padding-left: calc(16px + env(safe-area-inset-left));",
    "    padding-right: calc(10px + env(safe-area-inset-right)); }",
    "  .row { max-width: 88%; }",
    "  .open .launcher { display: none; }",
    "}",
    "@media (prefers-reduced-motion: reduce) { .launcher { transition: none; } }"
  ].join("\n");

  // ---- DOM (built with createElement: nothing is parsed as HTML) ---------------------------
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function icon(paths) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("fill", "none");
    svg.setAttribute("stroke", "currentColor");
    svg.setAttribute("stroke-width", "2");
    svg.setAttribute("stroke-linecap", "round");
    svg.setAttribute("stroke-linejoin", "round");
    svg.setAttribute("aria-hidden", "true");
    paths.forEach(function (d) {
      var path = document.createElementNS(ns, "path");
      path.setAttribute("d", d);
      svg.appendChild(path);
    });
    return svg;
  }
  var CHAT_ICON = ["M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.9A8 8 0 1 1 21 12z"];
  var CLOSE_ICON = ["M6 6l12 12", "M18 6L6 18"];
  var SEND_ICON = ["M5 12h13", "M12 5l7 7-7 7"];
  var CLIP_ICON = ["M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9"];

  var host = el("div");
  host.id = "supportbridge-chat";
  var shadow = host.attachShadow({ mode: "open" });
  if ("adoptedStyleSheets" in shadow && typeof CSSStyleSheet === "function" && "replaceSync" in CSSStyleSheet.prototype) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS); // a constructed sheet is not an inline style a page's CSP refuses
    shadow.adoptedStyleSheets = [sheet];
  } else {
    shadow.appendChild(el("style", null, CSS));
  }
  var root = el("div", "root");
  shadow.appendChild(root);

  var launcher = el("button", "launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-label", t.open);
  launcher.setAttribute("aria-expanded", "false");
  launcher.appendChild(icon(CHAT_ICON));
  var badge = el("span", "badge");
  badge.hidden = true;
  launcher.appendChild(badge);

  var panel = el("div", "panel");
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  var header = el("header");
  var avatar = el("div", "avatar", title.charAt(0).toUpperCase());
  var heading = el("div", "heading");
  heading.appendChild(el("strong", null, title));
  var status = el("span", "status", t.connecting);
  heading.appendChild(status);
  var closeButton = el("button", "close");
  closeButton.type = "button";
  closeButton.setAttribute("aria-label", t.close);
  closeButton.appendChild(icon(CLOSE_ICON));
  header.appendChild(avatar);
  header.appendChild(heading);
  header.appendChild(closeButton);

  var log = el("div", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");

  var form = el("form");
  var input = el("textarea");
  input.rows = 1;
  input.maxLength = MAX_CHARS;
  input.placeholder = t.placeholder;
  input.setAttribute("aria-label", t.placeholder);
  input.setAttribute("enterkeyhint", "send");
  var sendButton = el("button", "send");
  sendButton.type = "submit";
  sendButton.setAttribute("aria-label", t.send);
  sendButton.disabled = true;
  sendButton.appendChild(icon(SEND_ICON));
  var attachButton = el("button", "attach");
  attachButton.type = "button";
  attachButton.setAttribute("aria-label", t.attach);
  attachButton.title = t.attach;
  attachButton.appendChild(icon(CLIP_ICON));
  var picker = el("input", "picker");
  picker.type = "file";
  picker.tabIndex = -1;
  picker.setAttribute("aria-hidden", "true");
  form.appendChild(attachButton);
  form.appendChild(picker);
  form.appendChild(input);
  form.appendChild(sendButton);

  panel.appendChild(header);
  panel.appendChild(log);
  panel.appendChild(form);
  panel.appendChild(el("div", "powered", t.powered));
  root.appendChild(panel);
  root.appendChild(launcher);

  // ---- state ----------------------------------------------------------------------------
  var messages = []; // {id, author, text, buttons, at, state: "sent" | "pending" | "failed", error}
  var outbox = load("outbox", []); // frames not acknowledged yet: sent again after a reconnect
  var unread = 0;
  var socket = null;
  var ready = false;
  var delay = 1000;
  var reconnectTimer = null;
  var notice = null; // why the server refused to greet us, shown until it does
  var smallScreen = window.matchMedia("(max-width: 480px)");

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function find(id) {
    for (var i = 0; i < messages.length; i++) if (messages[i].id === id) return i;
    return -1;
  }

  function upsert(message) {
    var at = find(message.id);
    if (at >= 0) {
      var known = messages[at];
      message.state = message.state || known.state;
      messages[at] = message;
    } else {
      messages.push(message);
      if (message.author !== "visitor" && panel.hidden) setUnread(unread + 1);
    }
  }

  function setUnread(count) {
    unread = count;
    badge.textContent = count > 9 ? "9+" : String(count);
    badge.hidden = count === 0;
  }

  function time(at) {
    try {
      return new Date(at * 1000).toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
    } catch (e) {
      return "";
    }
  }

  function render() {
    var nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    var nodes = [];
    if (!messages.length) {
      var hello = el("div", "row theirs greeting");
      hello.appendChild(el("div", "who", t.bot));
      hello.appendChild(el("div", "bubble", t.greeting));
      nodes.push(hello);
    }
    var previous = null;
    messages.forEach(function (m, index) {
      var mine = m.author === "visitor";
      var row = el("div", "row " + (mine ? "mine" : "theirs") + (m.state === "pending" ? " pending" : "") + (m.state === "failed" ? " failed" : ""));
      if (!mine && (!previous || previous.author !== m.author)) {
        row.appendChild(el("div", "who", m.author === "agent" ? t.agent : t.bot));
      }
      var bubble = el("div", "bubble");
      // the files an agent sent: a photo shown, a document to open (links only for this visitor)
      (m.links || []).forEach(function (link) {
        var open = el("a", link.photo ? "photo" : "file", link.photo ? undefined : "📄 " + link.name);
        open.href = new URL(link.url, server).href;
        open.target = "_blank";
        open.rel = "noopener";
        if (link.photo) {
          var image = el("img");
          image.src = open.href;
          image.alt = link.name;
          open.appendChild(image);
        }
        bubble.appendChild(open);
      });
      if (m.text) bubble.appendChild(el("span", "bubble-text", m.text));
      if (!(m.links || []).length) {
        (m.files || []).forEach(function (name) { bubble.appendChild(el("span", "file", "📎 " + name)); });
      }
      row.appendChild(bubble);
      if (m.state === "failed") {
        row.appendChild(el("div", "meta", t.failed + " · " + (m.error || t.other)));
        if (m.retryable) {
          var again = el("button", "retry", t.retry);
          again.type = "button";
          again.addEventListener("click", function () { retry(m); });
          row.appendChild(again);
        }
      } else {
        row.appendChild(el("div", "meta", m.state === "pending" ? t.sending : time(m.at)));
      }
      nodes.push(row);
      previous = m;
      // the buttons of the latest reply only: once the visitor answered, they are spent
      if (!mine && index === messages.length - 1 && m.buttons && m.buttons.length) {
        var choices = el("div", "choices"); // the log's whole width, not the bubble's
        m.buttons.forEach(function (button) {
          var choice = el("button", "choice", button.label);
          choice.type = "button";
          choice.addEventListener("click", function () { press(button); });
          choices.appendChild(choice);
        });
        nodes.push(choices);
      }
    });
    log.replaceChildren.apply(log, nodes);
    if (!panel.hidden && messages.length) save("seen", messages[messages.length - 1].id);
    if (nearBottom || (messages.length && messages[messages.length - 1].author === "visitor")) {
      log.scrollTop = log.scrollHeight;
    }
  }

  function setStatus(state) {
    root.classList.toggle("online", state === "online");
    status.textContent = state === "online" ? t.online : notice || (state === "offline" ? t.offline : t.connecting);
  }

  // ---- the socket -----------------------------------------------------------------------
  function connect() {
    if (socket && socket.readyState <= 1) return;
    clearTimeout(reconnectTimer);
    setStatus("connecting");
    socket = new WebSocket(socketUrl);
    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "hello", token: load("token", null), language: lang }));
    };
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      receive(frame);
    };
    socket.onclose = function () {
      ready = false;
      setStatus("offline");
      reconnectTimer = setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  function receive(frame) {
    if (frame.type === "welcome") {
      save("token", frame.token);
      ready = true;
      notice = null;
      delay = 1000;
      setStatus("online");
      messages = [];
      (frame.history || []).forEach(function (m) { m.state = "sent"; messages.push(m); });
      // replies that came while the visitor was away count as unread
      var seen = find(load("seen", null));
      var unseen = 0;
      if (panel.hidden && seen >= 0) {
        messages.slice(seen + 1).forEach(function (m) { if (m.author !== "visitor") unseen += 1; });
      }
      outbox.forEach(function (item) {
        if (find(item.id) < 0) messages.push(shown(item));
      });
      setUnread(unseen);
      render();
      outbox.forEach(transmit);
    } else if (frame.type === "message") {
      frame.state = "sent";
      upsert(frame);
      render();
    } else if (frame.type === "ack") {
      forget(frame.id);
      var at = find(frame.id);
      if (at >= 0) messages[at].state = "sent";
      render();
    } else if (frame.type === "error") {
      refused(frame);
    }
  }

  function refused(frame) {
    if (frame.code === "unavailable") {
      // the server cannot take it now: kept, and sent again when the connection is back
      if (socket) socket.close();
      return;
    }
    if (!frame.id) {
      if (!ready && frame.retry_after) {
        // the greeting was refused by a limit: say why, and greet again once it allows
        notice = t[frame.code] || t.other;
        delay = Math.max(delay, Math.min(frame.retry_after, 3600) * 1000);
        if (socket) socket.close();
      }
      return;
    }
    forget(frame.id);
    var at = find(frame.id);
    if (at >= 0) {
      messages[at].state = "failed";
      messages[at].error = t[frame.code] || t.other;
      var later = frame.code === "too_fast" || frame.code === "busy";
      messages[at].retryable = later && !messages[at].button && !messages[at].files.length;
    }
    render();
  }

  function forget(id) {
    outbox = outbox.filter(function (item) { return item.id !== id; });
    keepOutbox();
  }

  function keepOutbox() {
    // a file's content is kept in this page only: storage would not hold it
    save("outbox", outbox.filter(function (item) { return item.type !== "file"; }));
  }

  function shown(item) {
    return {
      id: item.id, author: "visitor", text: item.text || item.label || "", at: item.at, state: "pending",
      button: item.type === "button", files: item.type === "file" ? [item.name || t.file] : []
    };
  }

  function transmit(item) {
    if (ready && socket && socket.readyState === 1) {
      var frame = { type: item.type, id: item.id };
      if (item.type === "button") { frame.data = item.data; frame.label = item.label; } else { frame.text = item.text; }
      if (item.type === "file") { frame.name = item.name; frame.mime = item.mime; frame.data = item.data; }
      socket.send(JSON.stringify(frame));
    }
  }

  function queue(item) {
    outbox.push(item);
    keepOutbox();
    upsert(shown(item));
    render();
    if (ready) transmit(item); else connect();
  }

  function retry(failed) {
    messages.splice(find(failed.id), 1);
    queue({ type: "message", id: newId(), text: failed.text, at: Date.now() / 1000 });
  }

  function refuseLocally(name, error) {
    upsert({ id: newId(), author: "visitor", text: "", files: [name], at: Date.now() / 1000, state: "failed", error: error });
    render();
  }

  function base64Of(blob, done) {
    var reader = new FileReader();
    reader.onload = function () { done(String(reader.result).split(",", 2)[1] || ""); };
    reader.onerror = function () { done(null); };
    reader.readAsDataURL(blob);
  }

  // A phone's photo (several MB) is sent as a JPEG of at most PHOTO_SIDE pixels a side.
  function scaled(file, done) {
    if (!/^image\/(jpeg|png|webp|heic|heif)$/.test(file.type) || typeof createImageBitmap !== "function") {
      done(file);
      return;
    }
    createImageBitmap(file).then(function (bitmap) {
      var ratio = Math.min(1, PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * ratio);
      canvas.height = Math.round(bitmap.height * ratio);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(function (blob) { done(blob || file); }, "image/jpeg", 0.85);
    }, function () { done(file); });
  }

  function sendFile(file) {
    var name = String(file.name || t.file).slice(0, 255);
    scaled(file, function (blob) {
      if (blob.size > MAX_FILE_BYTES) { refuseLocally(name, t.too_large); return; }
      var photo = blob !== file;
      base64Of(blob, function (data) {
        if (data === null) { refuseLocally(name, t.other); return; }
        queue({
          type: "file", id: newId(), name: photo ? name.replace(/\.[^.]*$/, "") + ".jpg" : name,
          mime: photo ? "image/jpeg" : String(file.type || "").slice(0, 127), data: data, text: "", at: Date.now() / 1000
        });
      });
    });
  }

  function press(button) {
    queue({ type: "button", id: newId(), data: button.data, label: button.label, at: Date.now() / 1000 });
  }

  // ---- opening, closing, writing ----------------------------------------------------------
  var savedOverflow = null;
  function open() {
    panel.hidden = false;
    root.classList.add("open");
    launcher.setAttribute("aria-expanded", "true");
    setUnread(0);
    if (smallScreen.matches) {
      // full screen on a phone: the page behind must not scroll under the finger
      savedOverflow = document.documentElement.style.overflow;
      document.documentElement.style.overflow = "hidden";
    }
    connect();
    render();
    log.scrollTop = log.scrollHeight;
    if (!window.matchMedia("(pointer: coarse)").matches) input.focus();
  }
  function close() {
    panel.hidden = true;
    root.classList.remove("open");
    launcher.setAttribute("aria-expanded", "false");
    if (savedOverflow !== null) {
      document.documentElement.style.overflow = savedOverflow;
      savedOverflow = null;
    }
    launcher.focus();
  }

  function grow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
    sendButton.disabled = !input.value.trim();
  }

  launcher.addEventListener("click", function () { if (panel.hidden) open(); else close(); });
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });
  input.addEventListener("input", grow);
  attachButton.addEventListener("click", function () { picker.click(); });
  picker.addEventListener("change", function () {
    if (picker.files && picker.files[0]) sendFile(picker.files[0]);
    picker.value = ""; // the same file can be picked again
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    queue({ type: "message", id: newId(), text: text.slice(0, MAX_CHARS), at: Date.now() / 1000 });
    input.value = "";
    grow();
  });
  document.addEventListener("visibilitychange", function () {
    // a phone suspends a page in the background and its socket with it
    if (document.visibilityState === "visible" && (load("token", null) || !panel.hidden)) connect();
  });

  function start() {
    document.body.appendChild(host);
    render();
    // a returning visitor connects at once, to see the replies that came while away
    if (load("token", null) || outbox.length) connect();
    if (config.open !== undefined) open();
  }
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
