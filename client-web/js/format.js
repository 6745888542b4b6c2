// Times in Asia/Shanghai whatever the device's zone; durations as a clock.

const timeFmt = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false,
});

export function formatTime(ms) { return timeFmt.format(new Date(ms)); }

/** 75 s → "1:15", 3 h 5 m → "3:05:00", days → "2天 3:05:00". */
export function formatSpan(ms) {
  const neg = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400); s %= 86400;
  const h = Math.floor(s / 3600); s %= 3600;
  const m = Math.floor(s / 60); s %= 60;
  const pad = (n) => String(n).padStart(2, "0");
  const clock = h > 0 || d > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
  return (neg ? "-" : "") + (d > 0 ? `${d}天 ${clock}` : clock);
}

/**
 * A span of time in words, as precise as it matters: seconds only under an hour, minutes under
 * a day, then days and hours. 200 s → "3分20秒", 5 h 10 m → "5小时10分", 50 h → "2天2小时".
 */
export function formatLeft(ms, language = "zh") {
  const zh = language === "zh";
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const unit = zh ? { d: "天", h: "小时", m: "分", s: "秒" } : { d: " d ", h: " h ", m: " min ", s: " s" };
  const parts = d > 0 ? [[d, "d"], [h, "h"]] : h > 0 ? [[h, "h"], [m, "m"]] : m > 0 ? [[m, "m"], [sec, "s"]] : [[sec, "s"]];
  return parts.filter(([n], i) => n > 0 || i === 0).map(([n, u]) => `${n}${unit[u]}`).join("").trim();
}

/** Milliseconds as a number and a unit a person picks: 1 800 000 → [30, "minutes"]. */
export function durationParts(ms) {
  const minutes = Math.round(ms / 60000);
  if (minutes % 1440 === 0) return [minutes / 1440, "days"];
  if (minutes % 60 === 0) return [minutes / 60, "hours"];
  return [minutes, "minutes"];
}

/**
 * The nodes of `children` to put on a page: nested lists flattened, what is left out (null,
 * undefined, false) left out. DOM's own `append` and `replaceChildren` would print "null".
 */
export function kept(children) {
  return children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false);
}

/** Replaces what `node` holds with `children`, as `el` would put them. */
export function put(node, ...children) {
  node.replaceChildren(...kept(children));
  return node;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...kept(children));
  return node;
}

let toastTimer;
export function toast(text) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
}
