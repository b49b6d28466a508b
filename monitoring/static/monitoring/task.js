// The task page's live notice: while it is open, an event saying the task has another version than the
// one shown (or is gone) shows a warning with a link to the new version. Text only, never HTML.
(function () {
  "use strict";
  const root = document.getElementById("task-page");
  if (!root || !window.WebSocket) return;
  const taskId = root.dataset.taskId;
  const shown = root.dataset.blobSha;
  const notice = document.getElementById("live-change");
  const link = document.getElementById("live-change-link");
  let retry = 1000;

  function changed(sha) {
    if (sha) link.href = root.dataset.pageUrl + "?sha=" + encodeURIComponent(sha);
    notice.hidden = false;
    root.dataset.stale = "true";
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
        return;
      }
      if (ev.task_id !== taskId) return;
      if (ev.task === null && ev.removed) { changed(""); return; }
      if (ev.task && ev.task.blob_sha && ev.task.blob_sha !== shown) changed(ev.task.blob_sha);
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
