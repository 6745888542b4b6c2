// The board's shell, cached so the installed app opens at once on a phone with a poor signal.
// Only the page's own files are cached, and each is refreshed from the network when it can be:
// incidents, sessions and the API are never cached (they travel over the live WebSocket).

const CACHE = "hongfan-shell";
const SHELL = ["/board", "/css/hongfan.css", "/js/board.js", "/js/answer.js", "/js/pickers.js", "/js/slip.js", "/js/connection.js", "/js/format.js", "/js/i18n.js", "/icon.svg", "/manifest.webmanifest"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !SHELL.includes(url.pathname)) return;
  // Network first: a new version is used as soon as it is reachable; the cache when it is not.
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        const copy = response.clone();
        caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        return response;
      })
      .catch(() => caches.match(event.request)),
  );
});
