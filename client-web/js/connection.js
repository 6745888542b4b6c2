import { t } from "./i18n.js";

// One WebSocket to the server that comes back by itself: backoff with jitter after a drop, and
// a resume from the last sequence number seen, so a page never needs a reload.

export class Connection {
  /**
   * @param {object} options
   * @param {string} [options.as] "kiosk" to speak with the kiosk's session
   * @param {(msg: object) => void} options.onMessage every message after hello
   * @param {(hello: object) => void} options.onHello
   * @param {(state: "connecting"|"online"|"offline") => void} options.onState
   * @param {() => void} [options.onUnauthorized] the session is gone: log in or pair again
   * @param {(community: object) => void} [options.onCommunity] the office changed the community
   */
  constructor(options) {
    this.options = options;
    this.position = null; // {epoch, seq} of the last event handled
    this.ws = null;
    this.attempt = 0;
    this.online = false;
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const as = this.options.as ? `?as=${this.options.as}` : "";
    return `${scheme}//${location.host}/ws${as}`;
  }

  start() { this.connect(); }

  connect() {
    this.options.onState("connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    let opened = false;
    ws.onopen = () => { opened = true; };
    // Messages are handled one after the other; the hello waits for the community.
    let queue = Promise.resolve();
    ws.onmessage = (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      queue = queue.then(() => this.handle(msg)).catch(() => ws.close());
    };
    ws.onclose = (e) => {
      this.online = false;
      this.options.onState("offline");
      if (e.code === 4001) { this.options.onUnauthorized?.(); return; }
      if (!opened) this.checkSession();
      this.retry();
    };
  }

  async handle(msg) {
    if (msg.type === "hello") {
      this.attempt = 0;
      if (this.position && this.position.epoch !== msg.epoch) this.position = null;
      // hello names the community's version; its content is fetched once and kept.
      this.identity = msg.identity;
      msg.community = await ours(msg.identity, msg.community);
      this.online = true;
      this.options.onState("online");
      this.options.onHello(msg);
      this.send({ type: "subscribe", ...(this.position ? { since: this.position } : {}) });
      return;
    }
    if (msg.type === "community") {
      this.options.onCommunity?.(await ours(this.identity, msg.version));
      return;
    }
    if (msg.type === "snapshot" || msg.type === "resumed") this.position = { epoch: msg.epoch, seq: msg.seq };
    if (msg.type === "event" && this.position) this.position = { ...this.position, seq: msg.event.seq };
    this.options.onMessage(msg);
  }

  async checkSession() {
    try {
      const as = this.options.as ? `?as=${this.options.as}` : "";
      const r = await fetch(`/api/me${as}`);
      // No session, or one that must set its own password before anything else.
      if (r.status === 401 || (r.ok && (await r.json()).must_change_password)) this.options.onUnauthorized?.();
    } catch { /* the server is away; retry() will try again */ }
  }

  retry() {
    const base = Math.min(15000, 1000 * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 4);
    setTimeout(() => this.connect(), base / 2 + Math.random() * base / 2);
  }

  /** Sends if connected; returns whether it was sent. */
  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }
}

/** Shows the link state in the header's indicator (again after a language change). */
export function showLink(state) {
  const link = document.getElementById("link");
  if (!link) return;
  if (state) link.dataset.state = state;
  link.textContent = t(link.dataset.state);
}

const COMMUNITY = "hongfan.community";

/** Community `id` at `version`: from this device's copy, or fetched when it is another one. */
async function community(id, version) {
  try {
    const kept = JSON.parse(localStorage.getItem(COMMUNITY) || "null");
    if (kept?.version === version && kept.community?.id === id) return kept.community;
  } catch { /* a broken copy is fetched again */ }
  const r = await fetch(`/api/community?id=${encodeURIComponent(id)}`);
  if (!r.ok) throw new Error(`community: ${r.status}`);
  const fetched = await r.json();
  localStorage.setItem(COMMUNITY, JSON.stringify({ version, community: fetched }));
  return fetched;
}

/**
 * The identity's community at `version`; a street office's supervisor sees the incidents of
 * each community they run, so theirs has the compounds and categories of all of them.
 */
async function ours(identity, version) {
  let merged = await community(identity.community, version);
  for (const id of (identity.communities ?? []).filter((id) => id !== identity.community)) {
    const r = await fetch(`/api/community?id=${encodeURIComponent(id)}`);
    if (!r.ok) continue;
    const other = await r.json();
    merged = {
      ...merged,
      compounds: [...merged.compounds, ...other.compounds],
      categories: [...merged.categories, ...other.categories.filter((c) => !merged.categories.some((d) => d.id === c.id))],
    };
  }
  return merged;
}

/** An incident as held, with an event's patch merged in (a new one when it was not held). */
export function merge(held, patch) {
  return { ...(held || {}), ...patch };
}

export async function me(as) {
  const r = await fetch(as ? `/api/me?as=${as}` : "/api/me");
  return r.ok ? r.json() : null;
}
