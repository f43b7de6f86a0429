"use strict";
// The local console: draws the simulated workspace from api/state (polled every second) and sends what the
// person does to api/… (the simulator signs it and posts it to the bot as Slack would).
// Every string from the bot or the workspace is put in the page as text (append/textContent), never as markup.

(() => {
  const $ = (id) => document.getElementById(id);
  const query = new URLSearchParams(location.search);
  const ui = {
    user: query.get("user") || localStorage.getItem("console.user") || "U0KARI",
    tab: "channel",
    state: null,
    shown: {},        // what each region shows, to redraw only what changed (and keep focus and scroll)
    modalKey: "",
    flashes: [],
  };

  // ---- building the page from data ----

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "checked" || name === "value" || name === "selected") node[name] = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  // Replaces a node's children; like el(), it takes nested lists and skips null.
  function put(node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  }

  const unescape = (s) => String(s).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  const safeUrl = (url) => /^(https?:|mailto:)/i.test(url) ? url : null;
  const plain = (obj) => (obj && typeof obj === "object" ? String(obj.text ?? "") : String(obj ?? ""));

  // Slack mrkdwn: <…> tokens (links, mentions, dates) are set aside first, then *bold*, _italic_, ~strike~
  // and `code` are applied, then the tokens are put back as nodes.
  const STYLES = [
    [/`([^`\n]+)`/, "code"],
    [/(?<![\w*])\*(?!\s)([^*\n]+?)\*(?![\w*])/, "b"],
    [/(?<![\w_])_(?!\s)([^_\n]+?)_(?![\w_])/, "i"],
    [/(?<![\w~])~(?!\s)([^~\n]+?)~(?![\w~])/, "s"],
  ];

  function mrkdwn(text) {
    const tokens = [];
    const marked = String(text ?? "").replace(/<([^<>\n]*)>/g, (_, inner) => {
      tokens.push(inner);
      return "\u0001" + (tokens.length - 1) + "\u0002";
    });
    return styled(marked, tokens, 0);
  }

  function styled(text, tokens, from) {
    for (let k = from; k < STYLES.length; k++) {
      const match = STYLES[k][0].exec(text);
      if (match) {
        return [
          styled(text.slice(0, match.index), tokens, k + 1),
          el(STYLES[k][1], {}, styled(match[1], tokens, k + 1)),
          styled(text.slice(match.index + match[0].length), tokens, k),
        ];
      }
    }
    return text.split(/\u0001(\d+)\u0002/).map((part, i) => (i % 2 ? token(tokens[Number(part)]) : unescape(part)));
  }

  function token(inner) {
    const bar = inner.indexOf("|");
    const target = bar < 0 ? inner : inner.slice(0, bar);
    const label = bar < 0 ? "" : unescape(inner.slice(bar + 1));
    const names = ui.state ? ui.state.names : {};
    if (target.startsWith("@")) return el("span", { class: "mention" }, "@" + (names[target.slice(1)] || label || target.slice(1)));
    if (target.startsWith("#")) return el("span", { class: "mention" }, "#" + (label || target.slice(1)));
    if (target.startsWith("!date^")) return label || target;
    if (target.startsWith("!subteam^")) return el("span", { class: "mention" }, label || "@group");
    if (target.startsWith("!")) return el("span", { class: "mention" }, "@" + (label || target.slice(1)));
    const permalink = /\/archives\/([A-Z0-9]+)\/p(\d+)(\d{6})$/.exec(target);
    if (permalink) {
      const ts = permalink[2] + "." + permalink[3];
      return el("a", { href: "#m-" + ts, onclick: () => showTab(permalink[1].startsWith("D") ? "dms" : "channel") }, label || "message");
    }
    const href = safeUrl(unescape(target));
    return href ? el("a", { href, target: "_blank", rel: "noopener noreferrer" }, label || href) : label || unescape(target);
  }

  const textOf = (obj) => (obj && obj.type === "mrkdwn" ? mrkdwn(obj.text) : plain(obj));

  // ---- Block Kit ----

  function blocks(list, ctx) {
    return el("div", { class: "blocks" }, (list || []).map((b, i) => block(b, { ...ctx, blockId: b.block_id || "b" + i })));
  }

  function block(b, ctx) {
    switch (b.type) {
      case "header":
        return el("h3", { class: "b-header" }, plain(b.text));
      case "section":
        return el("div", { class: "b-section" },
          el("div", {},
            b.text ? el("div", { class: "text" }, textOf(b.text)) : null,
            b.fields ? el("div", { class: "fields" }, b.fields.map((f) => el("div", { class: "text" }, textOf(f)))) : null),
          b.accessory ? element(b.accessory, ctx, true) : null);
      case "context":
        return el("div", { class: "b-context" },
          (b.elements || []).map((e) => el("span", { class: "text" }, e.type === "image" ? "[" + (e.alt_text || "image") + "]" : textOf(e))));
      case "divider":
        return el("hr");
      case "actions":
        return el("div", { class: "b-actions" }, (b.elements || []).map((e) => element(e, ctx, true)));
      case "image":
        return el("div", { class: "muted" }, "[image: " + (b.alt_text || "") + "]");
      case "input":
        return input(b, ctx);
      default:
        return el("div", { class: "text" }, b.text ? textOf(b.text) : el("span", { class: "muted" }, "[" + b.type + " block]"));
    }
  }

  function input(b, ctx) {
    const error = (ctx.errors || {})[ctx.blockId];
    const e = b.element || {};
    const id = "f-" + ctx.blockId;
    return el("div", { class: "b-input" + (error ? " invalid" : ""), "data-block-id": ctx.blockId },
      el("label", { for: id }, plain(b.label), b.optional ? el("span", { class: "muted" }, " (optional)") : null),
      element(e, { ...ctx, inputId: id }, Boolean(b.dispatch_action)),
      b.hint ? el("div", { class: "hint" }, plain(b.hint)) : null,
      error ? el("div", { class: "error", role: "alert" }, error) : null);
  }

  // An interactive element. Its wrapper carries data-action so that readState can find it; `dispatch` says
  // whether a change is sent to the bot at once (block_actions), as Slack does outside input blocks.
  function element(e, ctx, dispatch) {
    if (e.type === "button") return button(e, ctx);
    if (e.type === "image") return el("span", { class: "muted" }, "[" + (e.alt_text || "image") + "]");
    const prior = ((ctx.prior || {})[ctx.blockId] || {})[e.action_id];
    const wrap = el("div", { "data-action": e.action_id, "data-block": ctx.blockId, "data-type": e.type });
    wrap.elementOptions = options(e);  // checkboxes and radio buttons read their picks from here
    wrap.append(...[control(e, ctx, prior, wrap)].flat());
    if (dispatch) wrap.addEventListener("change", () => send(ctx, { type: e.type, action_id: e.action_id, block_id: ctx.blockId, ...read(wrap) }));
    return wrap;
  }

  function button(e, ctx) {
    return el("button", {
      type: "button",
      class: "btn" + (e.style ? " " + e.style : ""),
      "data-action-id": e.action_id,
      onclick: () => {
        if (e.confirm && !window.confirm([plain(e.confirm.title), plain(e.confirm.text)].filter(Boolean).join("\n\n"))) return;
        const href = e.url && safeUrl(e.url);
        if (href) window.open(href, "_blank", "noopener");
        send(ctx, { type: "button", action_id: e.action_id, block_id: ctx.blockId, value: e.value, text: e.text });
      },
    }, plain(e.text));
  }

  function options(e) {
    return (e.options || []).concat(...(e.option_groups || []).map((g) => g.options || []));
  }

  function selectOf(list, chosen, placeholder, id) {
    const select = el("select", { id });
    select.optionObjects = [];
    fill(select, list, chosen, placeholder);
    return select;
  }

  function fill(select, list, chosen, placeholder) {
    const all = chosen && !list.some((o) => o.value === chosen.value) ? [chosen, ...list] : list;
    select.optionObjects = all;
    put(select,
      el("option", { value: "" }, placeholder ? plain(placeholder) : "Choose…"),
      all.map((o, i) => el("option", { value: String(i), selected: Boolean(chosen) && o.value === chosen.value }, plain(o.text))));
  }

  function control(e, ctx, prior, wrap) {
    const id = ctx.inputId;
    switch (e.type) {
      case "plain_text_input":
      case "email_text_input":
      case "url_text_input":
      case "number_input": {
        const value = prior ? prior.value ?? "" : e.initial_value ?? "";
        const attrs = { id, value, placeholder: e.placeholder ? plain(e.placeholder) : null, maxlength: e.max_length };
        return e.multiline ? el("textarea", { ...attrs, rows: 3 }) : el("input", { ...attrs, type: "text" });
      }
      case "static_select":
      case "overflow":
        return selectOf(options(e), prior ? prior.selected_option : e.initial_option, e.type === "overflow" ? "⋯" : e.placeholder, id);
      case "external_select": {
        const select = selectOf([], prior ? prior.selected_option : e.initial_option, e.placeholder, id);
        const search = el("input", { type: "search", class: "search", placeholder: "Type to search", "aria-label": "search" });
        const least = e.min_query_length ?? 3;
        let timer = null;
        const load = async () => {
          if (search.value.length < least) return;
          const answer = await post("suggest", {
            view_id: ctx.viewId, action_id: e.action_id, block_id: ctx.blockId, value: search.value, values: readState($("modal")),
          });
          const chosen = read(wrap).selected_option;
          fill(select, answer.options || [], chosen, e.placeholder);
        };
        search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(load, 300); });
        search.addEventListener("change", (event) => event.stopPropagation());
        setTimeout(load, 0);
        return [search, select];
      }
      case "conversations_select": {
        const channels = ((ui.state && ui.state.channels) || []).map((c) => ({ text: { type: "plain_text", text: "#" + c }, value: c }));
        const chosen = prior ? prior.selected_conversation : e.initial_conversation;
        return selectOf(channels, channels.find((c) => c.value === chosen), e.placeholder || "Pick a channel…", id);
      }
      case "users_select": {
        const people = ((ui.state && ui.state.users) || []).map((u) => ({ text: { type: "plain_text", text: u.name }, value: u.id }));
        const chosen = prior ? prior.selected_user : e.initial_user;
        return selectOf(people, people.find((p) => p.value === chosen), e.placeholder || "Pick a person…", id);
      }
      case "radio_buttons":
      case "checkboxes": {
        const kind = e.type === "checkboxes" ? "checkbox" : "radio";
        const picked = e.type === "checkboxes"
          ? (prior ? prior.selected_options : e.initial_options) || []
          : [(prior ? prior.selected_option : e.initial_option)].filter(Boolean);
        const name = ctx.blockId + "/" + e.action_id;
        return (e.options || []).map((o, i) => el("label", { class: "choice" },
          el("input", { type: kind, name, value: String(i), checked: picked.some((p) => p.value === o.value) }), " ", textOf(o.text),
          o.description ? el("span", { class: "muted" }, " — ", textOf(o.description)) : null));
      }
      case "datepicker":
        return el("input", { id, type: "date", value: (prior ? prior.selected_date : e.initial_date) || "" });
      case "timepicker":
        return el("input", { id, type: "time", value: (prior ? prior.selected_time : e.initial_time) || "" });
      default:
        return el("span", { class: "muted" }, "[" + e.type + "]");
    }
  }

  // The element's state as Slack sends it in view.state.values.
  function read(wrap) {
    const type = wrap.dataset.type;
    const field = wrap.querySelector("input:not(.search), textarea, select");
    const chosenOption = (select) => (select && select.value !== "" ? select.optionObjects[Number(select.value)] : null);
    switch (type) {
      case "plain_text_input":
      case "email_text_input":
      case "url_text_input":
      case "number_input":
        return { type, value: field.value === "" ? null : field.value };
      case "static_select":
      case "external_select":
      case "overflow":
        return { type, selected_option: chosenOption(wrap.querySelector("select")) };
      case "users_select": {
        const option = chosenOption(field);
        return { type, selected_user: option ? option.value : null };
      }
      case "conversations_select": {
        const option = chosenOption(field);
        return { type, selected_conversation: option ? option.value : null };
      }
      case "radio_buttons":
      case "checkboxes": {
        const picked = [...wrap.querySelectorAll("input:checked")].map((box) => wrap.elementOptions[Number(box.value)]);
        return type === "checkboxes" ? { type, selected_options: picked } : { type, selected_option: picked[0] || null };
      }
      case "datepicker":
        return { type, selected_date: field.value || null };
      case "timepicker":
        return { type, selected_time: field.value || null };
      default:
        return { type };
    }
  }

  function readState(container) {
    const values = {};
    if (!container) return values;
    for (const wrap of container.querySelectorAll("[data-action]")) {
      (values[wrap.dataset.block] ||= {})[wrap.dataset.action] = read(wrap);
    }
    return values;
  }

  // ---- talking to the simulator ----

  async function post(what, body) {
    try {
      const response = await fetch("api/" + what, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ user: ui.user, ...body }),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) flash(answer.error || "the console answered HTTP " + response.status);
      return answer;
    } catch (error) {
      flash("The simulators do not answer: is onboarding-bot simulate still running?");
      return {};
    }
  }

  async function act(what, body) {
    const answer = await post(what, body);
    await refresh();
    return answer;
  }

  function send(ctx, action) {
    if (ctx.where === "modal") return act("action", { action, view_id: ctx.viewId, values: readState($("modal")) });
    if (ctx.where === "home") return act("action", { action, home: true, values: readState($("pane")) });
    return act("action", { action, channel: ctx.channel, ts: ctx.ts });
  }

  function flash(text) {
    ui.flashes.push({ text, until: Date.now() + 8000 });
    drawNotes();
  }

  // ---- the regions of the page ----

  function message(m, ctx) {
    const names = ui.state.names;
    return el("article", { class: "msg", id: "m-" + m.ts },
      el("div", { class: "meta" }, el("strong", {}, names[m.user] || m.user || "Onboarding"), m.edited ? el("span", { class: "muted" }, " (edited)") : null),
      m.blocks && m.blocks.length ? blocks(m.blocks, { ...ctx, ts: m.ts }) : el("div", { class: "text" }, mrkdwn(m.text)),
      m.replies && m.replies.length
        ? el("div", { class: "thread" },
          el("div", { class: "muted small" }, m.replies.length + (m.replies.length === 1 ? " reply" : " replies")),
          m.replies.map((r) => message(r, ctx)))
        : null);
  }

  function drawPane(state) {
    const section = ui.tab === "channel" ? state.channel.messages : ui.tab === "dms" ? state.dms : state.home;
    const key = JSON.stringify([ui.user, ui.tab, section, state.names]);
    if (ui.shown.pane === key) return;
    ui.shown.pane = key;
    const pane = $("pane");
    if (ui.tab === "home") {
      put(pane, state.home ? blocks(state.home.blocks, { where: "home" }) : el("p", { class: "muted" }, "Opening App Home…"));
      return;
    }
    const channel = ui.tab === "channel" ? state.channel.id : "D" + ui.user.slice(1);
    const title = ui.tab === "channel" ? "#onboarding — the team channel" : "Direct messages from the bot";
    put(pane, el("h2", {}, title),
      section.length ? section.map((m) => message(m, { where: "message", channel })) : el("p", { class: "muted" }, "Nothing here yet."));
  }

  function drawPrivate(state) {
    const key = JSON.stringify([ui.user, state.private, state.names]);
    if (ui.shown.private === key) return;
    ui.shown.private = key;
    put($("private"), state.private.length ? el("h3", { class: "muted small" }, "Only visible to you") : null,
      state.private.map((p) => message({ ...p, ts: "", user: "U0BOT" }, { where: "message", channel: p.channel })));
  }

  function drawNotes() {
    const now = Date.now();
    ui.flashes = ui.flashes.filter((f) => f.until > now);
    const notes = ((ui.state && ui.state.notes) || []).concat(ui.flashes.map((f) => f.text));
    const key = JSON.stringify(notes);
    if (ui.shown.notes === key) return;
    ui.shown.notes = key;
    put($("notes"), ...notes.map((n) => el("div", {}, n)));
  }

  function drawPeople(state) {
    const key = JSON.stringify([ui.user, state.users]);
    if (ui.shown.people === key) return;
    ui.shown.people = key;
    put($("who"), ...state.users.map((u) => el("option", { value: u.id, selected: u.id === ui.user }, u.name + " (" + u.role + ")")));
    $("bot").textContent = "bot: " + state.bot_url;
  }

  function drawModal(modal) {
    const box = $("modal");
    const key = modal ? JSON.stringify([modal.view.id, modal.view.hash, modal.errors]) : "";
    if (key === ui.modalKey) return;
    ui.modalKey = key;
    // What the person typed survives a redraw of the same modal (inline errors, views.update), as in Slack.
    const prior = modal && box.dataset.view === modal.view.id ? readState(box) : {};
    put(box);
    box.hidden = !modal;
    box.dataset.view = modal ? modal.view.id : "";
    if (!modal) return;
    const view = modal.view;
    const known = new Set((view.blocks || []).map((b) => b.block_id));
    const stray = Object.entries(modal.errors).filter(([id]) => !known.has(id));
    const ctx = { where: "modal", viewId: view.id, prior, errors: modal.errors };
    box.append(el("div", { class: "dialog", role: "dialog", "aria-modal": "true", "aria-label": plain(view.title) },
      el("h2", {}, plain(view.title)),
      el("div", { class: "dialog-body" },
        stray.map(([id, text]) => el("div", { class: "b-input invalid" }, el("div", { class: "error", role: "alert" }, id + ": " + text))),
        blocks(view.blocks, ctx)),
      el("div", { class: "dialog-buttons" },
        el("button", { type: "button", class: "btn", id: "modal-close", onclick: () => act("close", { view_id: view.id }) },
          view.close ? plain(view.close) : "Cancel"),
        view.submit ? el("button", { type: "button", class: "btn primary", id: "modal-submit", onclick: submit }, plain(view.submit)) : null)));
    const first = box.querySelector("input:not([type=checkbox]):not([type=radio]), textarea");
    if (first && !Object.keys(prior).length) first.focus();
  }

  async function submit(event) {
    const box = $("modal");
    event.target.disabled = true;
    await act("submit", { view_id: box.dataset.view, values: readState(box) });
    event.target.disabled = false;
  }

  function showTab(tab) {
    ui.tab = tab;
    for (const t of document.querySelectorAll(".tab")) t.setAttribute("aria-current", String(t.dataset.tab === tab));
    if (tab === "home") post("home", {}).then(refresh);
    if (ui.state) drawPane(ui.state);
  }

  let refreshing = null;
  async function refresh() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      try {
        const response = await fetch("api/state?user=" + encodeURIComponent(ui.user), { cache: "no-store" });
        if (!response.ok) throw new Error("HTTP " + response.status);
        const state = await response.json();
        ui.state = state;
        drawPeople(state);
        drawPane(state);
        drawPrivate(state);
        drawModal(state.modal);
        drawNotes();
        document.body.dataset.ready = "true";
      } catch (error) {
        flash("The simulators do not answer (" + error.message + "): is onboarding-bot simulate still running?");
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  }

  // ---- wiring ----

  $("who").addEventListener("change", (event) => {
    ui.user = event.target.value;
    localStorage.setItem("console.user", ui.user);
    ui.shown = {};
    ui.modalKey = "";
    showTab(ui.tab);
    refresh();
  });
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("message").value.trim();
    if (!text) return;
    if (!text.startsWith("/")) {
      flash("Only slash commands reach the bot here: try /addcompany");
      return;
    }
    $("message").value = "";
    act("command", { text });
  });

  showTab("channel");
  refresh();
  setInterval(() => { refresh(); drawNotes(); }, 1000);
})();
