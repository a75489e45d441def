// The live feed page: an EventSource on /events, plus a button that publishes a ping.
"use strict";
(() => {
  const log = document.getElementById("feed-log");
  const status = document.getElementById("feed-status");
  const source = new EventSource("/events");

  source.addEventListener("open", () => {
    status.textContent = "live";
    status.classList.add("live");
  });
  source.addEventListener("error", () => {
    // EventSource reconnects by itself, sending Last-Event-ID to resume.
    status.textContent = "reconnecting…";
    status.classList.remove("live");
  });
  source.addEventListener("message", (event) => {
    const item = JSON.parse(event.data);
    const entry = document.createElement("li");
    entry.className = item.kind;
    entry.dataset.id = item.id;
    const time = new Date(item.at * 1000).toLocaleTimeString();
    entry.textContent = `[${time}] ${item.kind}: ${item.text}`;
    log.prepend(entry);
  });

  document.getElementById("ping").addEventListener("click", async () => {
    await fetch("/api/ping", { method: "POST" });
  });
})();
