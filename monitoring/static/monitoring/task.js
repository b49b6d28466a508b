// The task page, live while it is open: an event saying the task has another version than the one shown
// (or is gone) shows a warning with a link to the new version; an approval of the version shown (another
// approver's, below the policy's count) moves its count and adds its author. Text only, never HTML.
(function () {
  "use strict";
  const root = document.getElementById("task-page");
  if (!root || !window.WebSocket) return;
  const taskId = root.dataset.taskId;
  const shown = root.dataset.blobSha;
  const notice = document.getElementById("live-change");
  const link = document.getElementById("live-change-link");
  const have = document.getElementById("policy-have");
  const by = document.getElementById("policy-by");
  let retry = 1000;

  function changed(sha) {
    if (sha) link.href = root.dataset.pageUrl + "?sha=" + encodeURIComponent(sha);
    notice.hidden = false;
    root.dataset.stale = "true";
  }

  // The version shown has `count` approvals; `name` is the one just recorded, when the event says who.
  // A count from a task summary says nobody: the names shown may no longer be the ones counted, so they go.
  function counted(count, name) {
    if (!have || typeof count !== "number" || root.dataset.stale === "true") return;
    const names = Array.prototype.map.call(by.querySelectorAll(".approver"), function (e) { return e.textContent; });
    have.textContent = String(count);
    if (name) {
      if (names.indexOf(name) !== -1) return;
      by.append(document.createTextNode(names.length ? ", " : ": "));
      const added = document.createElement("span");
      added.className = "approver";
      added.textContent = name;
      by.append(added);
    } else if (names.length !== count) {
      by.replaceChildren();
    }
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + root.dataset.wsPath);
    socket.onopen = function () { retry = 1000; root.dataset.live = "true"; };
    socket.onmessage = function (message) {
      let ev;
      try { ev = JSON.parse(message.data); } catch (e) { return; }
      if (ev.type === "init") {
        const mine = (ev.tasks || []).find(function (t) { return t.task_id === taskId; });
        if (mine && mine.blob_sha !== shown) changed(mine.blob_sha);
        else if (mine && mine.approvals) counted(mine.approvals.have, "");
        return;
      }
      if (ev.task_id !== taskId) return;
      if (ev.type === "approval_progress") {
        if (ev.blob_sha === shown) counted(ev.have, ev.by);
        return;
      }
      if (ev.task === null && ev.removed) { changed(""); return; }
      if (ev.task && ev.task.blob_sha && ev.task.blob_sha !== shown) changed(ev.task.blob_sha);
      else if (ev.task && ev.task.approvals) counted(ev.task.approvals.have, "");
    };
    socket.onclose = function (ev) {
      root.dataset.live = "false";
      if (ev.code === 4401 || ev.code === 4403) return;
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }
  connect();
})();
