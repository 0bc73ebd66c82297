// buurtstem sandbox: a Telegram-like chat page over the Bot API emulator (no build step).
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  info: null,
  residents: [],
  groups: [],
  current: null, // {chatId, userId, kind: "private" | "group", title, lang}
  chats: new Map(), // chatId -> Map(messageId -> message)
  after: 0,
  pendingStart: new Map(), // chatId -> {code, link}: opened via a poster's link, START not tapped
};
const LANGUAGE_NAMES = {
  nl: "Nederlands", en: "English", tr: "Türkçe", ar: "العربية", pl: "Polski",
  so: "Soomaali", uk: "Українська", bg: "Български", ro: "Română", ti: "ትግርኛ",
};

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const type = response.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await response.json() : { error: await response.text() };
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function toast(text, kind) {
  const node = el("div", { class: "toast " + (kind || ""), dir: "auto", text, "data-testid": "toast" });
  $("toasts").append(node);
  // A control's report is a few sentences: give people time to read it.
  setTimeout(() => node.remove(), kind === "alert" ? 6000 : kind === "report" ? 10000 : 3500);
}

function initials(name) {
  return (name || "?").trim().slice(0, 1).toUpperCase() || "?";
}

function colour(id) {
  const colours = ["#e17076", "#7bc862", "#e5ca77", "#65aadd", "#a695e7", "#ee7aae", "#6ec9cb", "#faa774"];
  return colours[Math.abs(Number(id)) % colours.length];
}

// ---------------------------------------------------------------- text with entities

const TAGS = {
  bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "pre",
  spoiler: "span", blockquote: "blockquote", expandable_blockquote: "blockquote",
  text_link: "a", url: "a", email: "a", mention: "span", hashtag: "span",
  cashtag: "span", bot_command: "span", phone_number: "span", text_mention: "span",
};

function safeHref(href) {
  return /^(https?:|tg:|mailto:)/i.test(href || "") ? href : null;
}

// Telegram entities count UTF-16 units, which is what JavaScript string indices are.
// The text is only ever put in text nodes: nothing the bot sends becomes markup.
function renderText(text, entities) {
  const root = document.createDocumentFragment();
  const list = (entities || []).filter((e) => TAGS[e.type] && e.length > 0);
  const cuts = new Set([0, text.length]);
  for (const e of list) { cuts.add(e.offset); cuts.add(Math.min(text.length, e.offset + e.length)); }
  const points = [...cuts].sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) {
    const [start, end] = [points[i], points[i + 1]];
    let node = document.createTextNode(text.slice(start, end));
    const active = list
      .filter((e) => e.offset <= start && e.offset + e.length >= end)
      .sort((a, b) => a.offset - b.offset || b.length - a.length);
    for (const e of active.reverse()) {
      const wrapper = document.createElement(TAGS[e.type]);
      if (e.type === "spoiler") wrapper.className = "spoiler";
      else if (TAGS[e.type] === "span") wrapper.className = "entity-" + e.type;
      if (e.type === "text_link") {
        const href = safeHref(e.url);
        if (href) wrapper.href = href;
      } else if (e.type === "url") {
        const raw = text.slice(e.offset, e.offset + e.length);
        wrapper.href = safeHref(raw) || "http://" + raw;
      } else if (e.type === "email") {
        wrapper.href = "mailto:" + text.slice(e.offset, e.offset + e.length);
      }
      if (wrapper.tagName === "A") { wrapper.target = "_blank"; wrapper.rel = "noopener noreferrer"; }
      wrapper.append(node);
      node = wrapper;
    }
    root.append(node);
  }
  return root;
}

// ---------------------------------------------------------------- messages

function store(chatId) {
  if (!state.chats.has(chatId)) state.chats.set(chatId, new Map());
  return state.chats.get(chatId);
}

function applyEvent(event) {
  state.after = Math.max(state.after, event.seq);
  if (event.type === "callback_answer") {
    if (event.text && state.current && event.chat_id === state.current.chatId) {
      toast(event.text, event.show_alert ? "alert" : "");
    }
    return false;
  }
  if (!event.message) return false;
  const chatId = event.chat_id;
  const messages = store(chatId);
  const old = messages.get(event.message.message_id) || {};
  messages.set(event.message.message_id, {
    ...event.message,
    deleted: event.type === "delete",
    edited: old.edited || event.type === "edit",
  });
  if (event.type === "message" && chatId < 0 && !(state.current && state.current.chatId === chatId)) {
    markUnread(chatId);
  }
  return chatId;
}

function markUnread(chatId) {
  const item = document.querySelector(`[data-chat-id="${chatId}"]`);
  if (item) item.classList.add("unread");
}

function time(date) {
  const d = new Date(date * 1000);
  return d.toLocaleTimeString("nl-NL", { hour: "2-digit", minute: "2-digit" });
}

function fileUrl(fileId, download, name) {
  let url = "/api/files/" + encodeURIComponent(fileId);
  if (download) url += "?download=1&name=" + encodeURIComponent(name || "bestand");
  return url;
}

function bubble(message) {
  const fromBot = message.from && message.from.is_bot;
  const outgoing = !fromBot && state.current && message.from && message.from.id === state.current.userId;
  const box = el("div", {
    class: "bubble " + (outgoing ? "out" : "in") + (message.photo ? " has-photo" : ""),
    "data-message-id": message.message_id,
    "data-from-bot": fromBot ? "1" : "0",
  });
  if (!fromBot && !outgoing && state.current.kind === "group") {
    box.append(el("div", { class: "sender", text: message.from.first_name, style: `color:${colour(message.from.id)}` }));
  }
  if (message.photo) {
    const largest = message.photo[message.photo.length - 1];
    const link = el("a", { href: fileUrl(largest.file_id), target: "_blank", rel: "noopener" });
    link.append(el("img", {
      class: "photo", src: fileUrl(largest.file_id), alt: "grafiek", loading: "lazy",
      "data-testid": "photo", width: largest.width, height: largest.height,
    }));
    box.append(link);
  }
  if (message.document) {
    const doc = message.document;
    const bytes = doc.file_size || 0;
    const size = bytes >= 1024 ? (bytes / 1024).toFixed(1) + " KB" : bytes ? bytes + " B" : "";
    box.append(el("a", {
      class: "document", href: fileUrl(doc.file_id, true, doc.file_name),
      download: doc.file_name || "bestand", "data-testid": "document",
    }, el("span", { class: "doc-icon", text: (doc.file_name || "").split(".").pop().toUpperCase().slice(0, 4) || "FILE" }),
      el("span", { class: "doc-meta" },
        el("span", { class: "doc-name", text: doc.file_name || "bestand" }),
        el("span", { class: "doc-size", text: size }))));
  }
  if (message.sticker) box.append(el("div", { class: "sticker", text: message.sticker.emoji || "🖼" }));
  if (message.location) box.append(el("div", { class: "muted", text: "📍 locatie" }));
  if (message.voice) box.append(el("div", { class: "muted", text: "🎤 spraakbericht" }));
  const text = message.text !== undefined ? message.text : message.caption;
  const entities = message.text !== undefined ? message.entities : message.caption_entities;
  if (text) {
    const body = el("div", { class: "text", dir: "auto" });
    body.append(renderText(text, entities));
    box.append(body);
  }
  box.append(el("span", { class: "meta" },
    message.edited ? el("span", { class: "edited", text: "bewerkt" }) : null,
    el("span", { text: time(message.edit_date || message.date) }),
    outgoing ? el("span", { class: "ticks", text: "✓✓" }) : null));
  const wrap = el("div", { class: "row " + (outgoing ? "out" : "in") }, box);
  const rows = (message.reply_markup && message.reply_markup.inline_keyboard) || [];
  if (rows.length) {
    const keyboard = el("div", { class: "keyboard", "data-testid": "keyboard" });
    for (const row of rows) {
      const line = el("div", { class: "kb-row" });
      for (const button of row) {
        if (button.url) {
          line.append(el("a", { class: "kb-button", href: safeHref(button.url) || "#", target: "_blank", rel: "noopener", dir: "auto", text: button.text + " ↗" }));
        } else {
          line.append(el("button", {
            class: "kb-button", type: "button", dir: "auto", text: button.text,
            "data-callback": button.callback_data,
            onclick: (e) => tap(message, button, e.currentTarget),
          }));
        }
      }
      keyboard.append(line);
    }
    wrap.append(keyboard);
  }
  return wrap;
}

function serviceLine(message) {
  if (message.new_chat_members) return "De bot is aan de groep toegevoegd";
  if (message.left_chat_member) return "De bot heeft de groep verlaten";
  return null;
}

function renderChat() {
  const box = $("messages");
  const current = state.current;
  if (!current) return;
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  box.replaceChildren();
  const messages = [...store(current.chatId).values()]
    .filter((m) => !m.deleted)
    .sort((a, b) => a.message_id - b.message_id);
  if (!messages.length) {
    const pending = state.pendingStart.get(current.chatId);
    box.append(el("div", { class: "empty", "data-testid": "empty-chat" }, current.kind !== "private"
      ? el("p", { text: "Hier verschijnen de digests van deze alliantie (grafiek en CSV)." })
      : pending
        ? el("p", { text: `Deze bewoner opent de link van een poster: ${pending.link}. Tik op START, zoals in Telegram: de bot krijgt dan /start ${pending.code}.` })
        : el("p", { text: "Nog geen berichten. Tik op START om met de bot te beginnen." })));
  }
  let day = "";
  for (const message of messages) {
    const label = new Date(message.date * 1000).toLocaleDateString("nl-NL", { day: "numeric", month: "long" });
    if (label !== day) { box.append(el("div", { class: "day", text: label })); day = label; }
    const service = serviceLine(message);
    box.append(service ? el("div", { class: "day service", text: service }) : bubble(message));
  }
  $("start-button").hidden = !(current.kind === "private" && messages.length === 0);
  if (nearBottom || box.dataset.chat !== String(current.chatId)) box.scrollTop = box.scrollHeight;
  box.dataset.chat = String(current.chatId);
}

// ---------------------------------------------------------------- actions

async function tap(message, button, node) {
  node.classList.add("pressed");
  try {
    await api(`/api/chats/${message.chat.id}/tap`, {
      user_id: state.current.userId, message_id: message.message_id, data: button.callback_data,
    });
  } catch (error) {
    toast(error.message, "alert");
  } finally {
    setTimeout(() => node.classList.remove("pressed"), 400);
  }
}

async function send(text) {
  const current = state.current;
  if (!current || !text.trim()) return;
  try {
    await api(`/api/chats/${current.chatId}/send`, { user_id: current.userId, text });
  } catch (error) {
    toast(error.message, "alert");
  }
}

function openChat(chat) {
  state.current = chat;
  document.querySelectorAll(".chat-list li").forEach((li) => {
    li.classList.toggle("active", li.dataset.chatId === String(chat.chatId));
    if (li.dataset.chatId === String(chat.chatId)) {
      li.classList.remove("unread");
      // The resident list scrolls on its own: keep the chosen one in view.
      li.scrollIntoView({ block: "nearest" });
    }
  });
  $("chat-title").textContent = chat.title;
  $("chat-avatar").textContent = initials(chat.area || chat.title);
  $("chat-avatar").style.background = colour(chat.chatId);
  $("chat-sub").textContent = chat.kind === "private"
    ? `chat met @${state.info.bot.username} · Telegram-taal: ${chat.lang || "geen"}`
    : `groep · ${chat.area || ""} · u schrijft als Programmateam`;
  $("text").disabled = false;
  $("send").disabled = false;
  $("text").placeholder = chat.kind === "private" ? `Bericht als ${chat.title}` : "Bericht aan de groep";
  renderChat();
  $("text").focus();
}

function residentChat(r) {
  return { chatId: r.id, userId: r.id, kind: "private", title: r.first_name, lang: r.language_code };
}

function renderLists() {
  const residents = $("residents");
  const scrolled = residents.scrollTop;
  residents.replaceChildren();
  for (const r of state.residents) {
    residents.append(el("li", {
      "data-chat-id": r.id, "data-testid": "resident", class: state.current && state.current.chatId === r.id ? "active" : "",
      onclick: () => openChat(residentChat(r)),
    }, el("span", { class: "avatar small", style: `background:${colour(r.id)}`, text: initials(r.first_name) }),
      el("span", { class: "name", dir: "auto", text: r.first_name }),
      el("span", { class: "badge", text: r.language_code || "–" })));
  }
  if (!state.residents.length) residents.append(el("li", { class: "hint", text: "Nog geen bewoners" }));
  residents.scrollTop = scrolled;
  const groups = $("groups");
  groups.replaceChildren();
  for (const g of state.groups) {
    groups.append(el("li", {
      "data-chat-id": g.id, "data-testid": "group", class: state.current && state.current.chatId === g.id ? "active" : "",
      onclick: () => openChat({ chatId: g.id, userId: state.info.sandbox.staff_user_id, kind: "group", title: g.title, area: g.area, lang: "nl" }),
    }, el("span", { class: "avatar small", style: `background:${colour(g.id)}`, text: initials(g.area || g.title) }),
      el("span", { class: "name", text: g.title })));
  }
}

function renderControls(controls) {
  const box = $("controls");
  box.replaceChildren();
  for (const [name, control] of Object.entries(controls)) {
    const button = el("button", {
      type: "button", class: "control", "data-control": name, text: control.label,
      title: control.help, disabled: !control.available,
    });
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const result = await api(`/api/controls/${name}`, {});
        toast(result.ok ? result.result : result.error, result.ok ? "report" : "alert");
      } catch (error) {
        toast(error.message, "alert");
      } finally {
        button.disabled = false;
      }
    });
    box.append(button);
  }
}

async function refreshState() {
  const data = await api("/api/state");
  state.info = data;
  state.residents = data.residents;
  state.groups = data.groups;
  renderLists();
  renderControls(data.controls);
  const s = data.sandbox;
  $("survey-line").textContent = `${s.survey_title} · versie ${s.survey_version}`;
  $("notes").replaceChildren(...s.notes.map((note) => el("p", { text: note })));
  const links = $("deep-links");
  if (!links.options.length) {
    for (const link of s.deep_links) {
      const label = link.name === link.area ? `${link.name} (hele gebied)` : `${link.name} · ${link.area}`;
      links.append(el("option", { value: link.code, label }));
    }
  }
  const select = $("resident-lang");
  if (!select.options.length) {
    for (const code of [...s.languages, "so", "uk", ""]) {
      select.append(el("option", { value: code, text: code ? `${code} · ${LANGUAGE_NAMES[code] || code}` : "geen taal" }));
    }
  }
}

async function pollEvents() {
  for (;;) {
    try {
      const events = await api(`/api/events?after=${state.after}&timeout=25`);
      let touched = false;
      for (const event of events) {
        const chatId = applyEvent(event);
        if (chatId !== false && state.current && chatId === state.current.chatId) touched = true;
      }
      if (touched) renderChat();
    } catch (error) {
      await new Promise((resolve) => setTimeout(resolve, 1500));
    }
  }
}

function wire() {
  $("new-resident").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("resident-name").value.trim();
    if (!name) return;
    const start = $("resident-link").value.trim();
    try {
      const user = await api("/api/residents", {
        first_name: name, language_code: $("resident-lang").value, start,
      });
      $("resident-name").value = "";
      $("resident-link").value = "";
      if (user.start) state.pendingStart.set(user.id, { code: user.start, link: user.link });
      await refreshState();
      openChat(residentChat({ id: user.id, first_name: user.first_name, language_code: user.language_code }));
    } catch (error) {
      toast(error.message, "alert");
    }
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value;
    $("text").value = "";
    send(text);
  });
  $("start-button").addEventListener("click", () => {
    // A resident who came through a poster's link sends its code with /start, as in Telegram.
    const pending = state.current && state.pendingStart.get(state.current.chatId);
    if (pending) state.pendingStart.delete(state.current.chatId);
    send(pending ? `/start ${pending.code}` : "/start");
  });
}

wire();
refreshState().then(pollEvents).catch((error) => toast("De sandbox is niet bereikbaar: " + error.message, "alert"));
