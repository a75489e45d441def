// The chat page: one WebSocket to /ws/chat; messages are JSON objects.
"use strict";
(() => {
  const log = document.getElementById("chat-log");
  const status = document.getElementById("chat-status");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-text");
  const send = document.getElementById("chat-send");

  const params = new URLSearchParams(location.search);
  const name = params.get("name") || `guest-${Math.floor(Math.random() * 10000)}`;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws/chat?name=${encodeURIComponent(name)}`);

  function add(text, kind) {
    const item = document.createElement("li");
    item.className = kind;
    item.textContent = text;
    log.append(item);
    log.scrollTop = log.scrollHeight;
  }

  socket.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "welcome") {
      // The server sends this once we are a member: from now on we miss nothing.
      status.textContent = `connected as ${message.user} (${message.members} online)`;
      status.classList.add("live");
      input.disabled = send.disabled = false;
      input.focus();
    } else if (message.type === "message") {
      add(`${message.user}: ${message.text}`, "message");
    } else if (message.type === "presence") {
      add(`${message.user} ${message.event} (${message.members} online)`, "presence");
    }
  });
  socket.addEventListener("close", (event) => {
    status.textContent = `disconnected (${event.code}${event.reason ? ": " + event.reason : ""}); reload to rejoin`;
    status.classList.remove("live");
    input.disabled = send.disabled = true;
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) socket.send(input.value);
    input.value = "";
  });
})();
