// The mock portal's inspector: reads the control API's paginated listings (long-polled with their cursors)
// and drives its actions. Every value from the server is rendered as text (textContent), never as HTML, and
// secret values are masked once more here, whatever the server sent.
"use strict";

(() => {
  const API = "/_portal";
  const TOKEN_KEY = "mock-portal-control-token";
  const PAGE = 200; // records per request
  const KEEP = 500; // rows a table keeps (the oldest go first)
  const WAIT = 25; // seconds a long poll waits for something new
  const SECRET_KEYS = new Set(["access_token", "refresh_token", "application_token", "client_secret", "auth"]);
  const SECRET_TEXT = new RegExp(
    "((?:access_token|refresh_token|application_token|client_secret)(?:\\]|%5D)?=|(?<![\\w\\[%])auth=)" +
      "[^&\\s\"']+",
    "gi",
  );
  const SECRET_JSON = /("(?:access_token|refresh_token|application_token|client_secret)"\s*:\s*")(?:[^"\\]|\\.)*"/gi;

  const $ = (id) => document.getElementById(id);
  const state = { portal: "", generation: 0, controllers: [], token: sessionStorage.getItem(TOKEN_KEY) };

  // ------------------------------------------------------------------ masking and decoding

  function maskText(text) {
    return String(text).replace(SECRET_TEXT, "$1***").replace(SECRET_JSON, '$1***"');
  }

  function mask(value) {
    if (Array.isArray(value)) return value.map(mask);
    if (value !== null && typeof value === "object") {
      const out = Object.create(null);
      for (const [key, item] of Object.entries(value)) {
        const secret = SECRET_KEYS.has(key.toLowerCase()) && item !== "" && item !== null;
        out[key] = secret && typeof item !== "object" ? "***" : mask(item);
      }
      return out;
    }
    return typeof value === "string" ? maskText(value) : value;
  }

  // a form body as PHP's parse_str reads it (a[b][c]=v, a[]=v), for display only
  function decodeForm(text) {
    const root = Object.create(null);
    for (const [key, value] of new URLSearchParams(text)) {
      const match = /^([^[\]]+)((?:\[[^\]]*\])*)$/.exec(key);
      const path = match ? [match[1], ...Array.from(match[2].matchAll(/\[([^\]]*)\]/g), (m) => m[1])] : [key];
      let node = root;
      path.forEach((part, index) => {
        let name = part;
        if (name === "") name = String(Object.keys(node).length);
        if (index === path.length - 1) {
          node[name] = value;
        } else {
          if (node[name] === null || typeof node[name] !== "object") node[name] = Object.create(null);
          node = node[name];
        }
      });
    }
    return root;
  }

  function decodeBody(body) {
    const text = String(body ?? "");
    const trimmed = text.trimStart();
    if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
      try {
        return JSON.stringify(mask(JSON.parse(text)), null, 2);
      } catch (_) {
        return maskText(text);
      }
    }
    return JSON.stringify(mask(decodeForm(text)), null, 2);
  }

  // ------------------------------------------------------------------ HTTP

  class Unauthorized extends Error {}

  async function api(method, path, params, body, signal) {
    const url = new URL(API + path, location.origin);
    for (const [key, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
    }
    const headers = { Accept: "application/json" };
    if (state.token) headers.Authorization = "Bearer " + state.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    if (response.status === 401) {
      askForToken(state.token ? "that token was refused" : "");
      throw new Unauthorized("the control token is required");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const reason = data && data.error_description ? data.error_description : response.statusText;
      throw new Error(maskText(`${response.status} ${reason}`));
    }
    return { data, cursor: response.headers.get("X-Cursor"), next: response.headers.get("X-Next-After") };
  }

  function setStatus(text, kind) {
    const status = $("status");
    status.textContent = text;
    status.className = kind || "";
  }

  // ------------------------------------------------------------------ the control token

  let tokenWaiters = [];

  function askForToken(problem) {
    $("token-form").hidden = false;
    $("token-error").textContent = problem;
    setStatus("control token needed", "bad");
  }

  function tokenReady() {
    return new Promise((resolve) => tokenWaiters.push(resolve));
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const given = $("token").value.trim();
    $("token").value = "";
    if (!given) return;
    state.token = given;
    sessionStorage.setItem(TOKEN_KEY, given);
    $("token-form").hidden = true;
    $("token-error").textContent = "";
    const waiters = tokenWaiters;
    tokenWaiters = [];
    waiters.forEach((resolve) => resolve());
  });

  // ------------------------------------------------------------------ rendering (text only)

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (className) td.className = className;
    return td;
  }

  function detailsCell(summary, text) {
    const td = document.createElement("td");
    const details = document.createElement("details");
    const label = document.createElement("summary");
    label.textContent = summary;
    const pre = document.createElement("pre");
    pre.textContent = text;
    details.append(label, pre);
    td.append(details);
    return td;
  }

  function append(tableId, row, countId) {
    const body = $(tableId).tBodies[0];
    body.append(row);
    while (body.rows.length > KEEP) body.deleteRow(0);
    $(countId).textContent = String(body.rows.length);
  }

  function deliveryRow(d) {
    const row = document.createElement("tr");
    row.className = "delivery outcome-" + String(d.outcome).replace(/[^a-z_]/g, "");
    row.dataset.event = String(d.event || "");
    row.dataset.outcome = String(d.outcome || "");
    row.append(
      cell(d.id),
      cell(d.started_at),
      cell(d.event, "event"),
      cell(d.outcome, "outcome"),
      cell(d.status),
      cell(typeof d.latency_ms === "number" ? d.latency_ms.toFixed(1) : "", "latency"),
      cell(maskText(d.target || "")),
    );
    const extra = [d.error, d.reason].filter(Boolean).map(maskText).join("; ");
    const answer = d.response_excerpt ? "\n\nanswer: " + maskText(d.response_excerpt) : "";
    const text = decodeBody(d.body) + (extra ? "\n\n" + extra : "") + answer;
    const td = detailsCell(`${d.body_bytes} bytes`, text);
    td.querySelector("pre").className = "body";
    row.append(td);
    return row;
  }

  function callRow(c) {
    const row = document.createElement("tr");
    row.className = "call";
    row.dataset.method = String(c.method || "");
    row.append(
      cell(c.id),
      cell(c.method, "method"),
      cell(c.status),
      cell(c.error),
      cell(c.client_id),
      cell(c.token_id),
    );
    const text = "params: " + JSON.stringify(mask(c.params), null, 2) + "\n\nresult: " +
      JSON.stringify(mask(c.result), null, 2);
    row.append(detailsCell("show", text));
    return row;
  }

  function fillTable(tableId, rows) {
    $(tableId).tBodies[0].replaceChildren(...rows);
  }

  // ------------------------------------------------------------------ portals and apps

  async function refreshPortals(signal) {
    const { data } = await api("GET", "/portals", { limit: 100 }, undefined, signal);
    const select = $("portal");
    const chosen = state.portal || (data[0] && data[0].domain) || "";
    const options = data.map((p) => {
      const option = document.createElement("option");
      option.value = p.domain;
      option.textContent = p.domain;
      return option;
    });
    select.replaceChildren(...options);
    select.value = chosen;
    fillTable(
      "portals",
      data.map((p) => {
        const row = document.createElement("tr");
        row.dataset.domain = p.domain;
        const dropped = p.records && p.records.dropped ? Object.values(p.records.dropped).reduce((a, b) => a + b, 0) : 0;
        row.append(
          cell(p.domain),
          cell(p.member_id),
          cell(p.status),
          cell((p.apps || []).length),
          cell(p.sessions),
          cell(p.deliveries),
          cell(p.rest_calls),
          cell(dropped),
        );
        return row;
      }),
    );
    return chosen;
  }

  async function refreshApps(signal) {
    const { data } = await api("GET", "/apps", { portal: state.portal, limit: 100 }, undefined, signal);
    fillTable(
      "apps",
      data.map((a) => {
        const row = document.createElement("tr");
        row.dataset.clientId = a.client_id;
        row.append(
          cell(a.client_id, "client-id"),
          cell(a.installed ? "yes" : "no"),
          cell(a.active ? "yes" : "no"),
          cell(a.version),
          cell((a.scopes || []).join(",")),
          cell(maskText(a.install_url || "")),
        );
        return row;
      }),
    );
  }

  // ------------------------------------------------------------------ live listings

  // Follows one listing from its start: pages of PAGE records while there is more, then long polls past the
  // cursor the last page reported (?after=CURSOR&min=1&timeout=WAIT). Stops when the generation changes.
  async function follow(path, filters, tableId, countId, render, generation, signal) {
    let after = null;
    while (generation === state.generation) {
      const caughtUp = after !== null;
      try {
        const params = { portal: state.portal, limit: PAGE, after, ...filters };
        if (caughtUp) Object.assign(params, { min: 1, timeout: WAIT });
        const page = await api("GET", path, params, undefined, signal);
        if (generation !== state.generation) return;
        page.data.forEach((item) => append(tableId, render(item), countId));
        if (page.cursor !== null) after = Number(page.cursor);
        else if (after === null) after = 0;
        if (page.data.length) onNews();
        setStatus("live", "good");
      } catch (error) {
        if (generation !== state.generation || signal.aborted) return;
        if (error instanceof Unauthorized) {
          await tokenReady();
          continue;
        }
        setStatus("disconnected: " + error.message, "bad");
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }

  let newsTimer = null;
  function onNews() {
    // portals and apps change with the records (installs, sessions): refresh them, at most twice a second
    if (newsTimer) return;
    newsTimer = setTimeout(() => {
      newsTimer = null;
      refreshSide().catch(() => {});
    }, 500);
  }

  async function refreshSide() {
    await refreshPortals();
    await refreshApps();
  }

  function restart() {
    state.controllers.forEach((c) => c.abort());
    state.generation += 1;
    const generation = state.generation;
    fillTable("deliveries", []);
    fillTable("calls", []);
    $("deliveries-count").textContent = "0";
    $("calls-count").textContent = "0";
    const deliveries = new AbortController();
    const calls = new AbortController();
    state.controllers = [deliveries, calls];
    const event = $("filter-event").value.trim().toUpperCase();
    const outcome = $("filter-outcome").value;
    const method = $("filter-method").value.trim();
    follow("/deliveries", { event, outcome }, "deliveries", "deliveries-count", deliveryRow, generation,
      deliveries.signal);
    follow("/rest-calls", { method }, "calls", "calls-count", callRow, generation, calls.signal);
  }

  // ------------------------------------------------------------------ actions

  function summary(deliveries) {
    const list = deliveries || [];
    const outcomes = list.map((d) => `${d.event} ${d.outcome}`).join(", ");
    return `${list.length} ${list.length === 1 ? "delivery" : "deliveries"}${outcomes ? ": " + outcomes : ""}`;
  }

  function report(text, kind) {
    const out = $("action-result");
    out.textContent = text;
    out.className = kind || "";
  }

  async function act(button, run) {
    button.disabled = true;
    report("working...", "");
    try {
      report(await run(), "good");
    } catch (error) {
      report(error instanceof Unauthorized ? "the control token is required" : maskText(error.message), "bad");
    } finally {
      button.disabled = false;
      onNews();
    }
  }

  function positive(id, what) {
    const value = $(id).value.trim();
    if (!/^[1-9][0-9]{0,14}$/.test(value)) throw new Error(`${what} must be a positive integer`);
    return Number(value);
  }

  $("start-session").addEventListener("click", (event) =>
    act(event.currentTarget, async () => {
      const body = { portal: state.portal || undefined };
      const connector = $("connector").value.trim();
      if (connector) body.connector_id = connector;
      if ($("shape").value) body.shape = $("shape").value;
      const { data } = await api("POST", "/sessions", {}, body);
      $("session-id").value = String(data.session_id);
      $("chat-id").value = String(data.chat_id);
      return `session ${data.session_id} started in chat ${data.chat_id}; ${summary(data.deliveries)}`;
    }),
  );

  $("send-message").addEventListener("click", (event) =>
    act(event.currentTarget, async () => {
      const chat = positive("chat-id", "the chat");
      const text = $("message-text").value;
      if (!text.trim()) throw new Error("the text must not be empty");
      const { data } = await api("POST", "/messages", {}, { portal: state.portal || undefined, chat_id: chat, text });
      return `message ${data.message_id} sent in chat ${data.chat_id}; ${summary(data.deliveries)}`;
    }),
  );

  $("finish-session").addEventListener("click", (event) =>
    act(event.currentTarget, async () => {
      const session = positive("session-id", "the session");
      const { data } = await api("POST", `/sessions/${session}/finish`, {}, { portal: state.portal || undefined });
      return `session ${data.session_id} finished; ${summary(data.deliveries)}`;
    }),
  );

  $("write-bot").addEventListener("click", (event) =>
    act(event.currentTarget, async () => {
      const bot = positive("bot-id", "the bot");
      const text = $("bot-text").value;
      if (!text.trim()) throw new Error("the text must not be empty");
      const { data } = await api("POST", `/bots/${bot}/messages`, {}, { portal: state.portal || undefined, text });
      return `message ${data.message_id} written to bot ${data.bot_id}; ${summary(data.deliveries)}`;
    }),
  );

  // ------------------------------------------------------------------ start

  let filterTimer = null;
  for (const id of ["filter-event", "filter-method"]) {
    $(id).addEventListener("input", () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(restart, 300);
    });
  }
  $("filter-outcome").addEventListener("change", restart);
  $("portal").addEventListener("change", () => {
    state.portal = $("portal").value;
    refreshApps().catch(() => {});
    restart();
  });

  async function start() {
    for (;;) {
      try {
        state.portal = await refreshPortals();
        await refreshApps();
        break;
      } catch (error) {
        if (error instanceof Unauthorized) {
          await tokenReady();
          continue;
        }
        setStatus("disconnected: " + error.message, "bad");
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
    restart();
    setInterval(() => refreshSide().catch(() => {}), 5000);
  }

  start();
})();
