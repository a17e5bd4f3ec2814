// peerchat's service worker: keeps the app shell (the page, its script, its wasm) so a
// second visit loads nothing but this file's update check, and the app opens offline.
// platforms/web/build.sh fills in the version (a hash of the shell) and the shell's files;
// a new build changes this file, so browsers install the new shell on their next visit and
// drop the old one. MQTT goes over a WebSocket, which a service worker never sees.
const VERSION = "@VERSION@";
const SHELL = @SHELL@;
const CACHE = `peerchat-shell-${VERSION}`;

self.addEventListener("install", (event) => {
    event.waitUntil(
        caches.open(CACHE)
            .then((cache) => cache.addAll(SHELL))
            // The new shell serves the next load, not only once every tab is closed.
            .then(() => self.skipWaiting()),
    );
});

self.addEventListener("activate", (event) => {
    event.waitUntil(
        caches.keys()
            .then((names) => Promise.all(names
                .filter((name) => name.startsWith("peerchat-shell-") && name !== CACHE)
                .map((name) => caches.delete(name))))
            .then(() => self.clients.claim()),
    );
});

self.addEventListener("fetch", (event) => {
    const request = event.request;
    if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) {
        return;
    }
    // Any page of the app is the shell's page (the server field travels in the query).
    const key = request.mode === "navigate" ? "./" : request;
    event.respondWith(
        caches.open(CACHE)
            .then((cache) => cache.match(key, { ignoreSearch: request.mode === "navigate" }))
            .then((cached) => cached || fetch(request)),
    );
});
