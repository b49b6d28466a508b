// The live dashboard: renders the `init` snapshot of /ws/events/, applies each event to it, and after a
// dropped connection reconnects with backoff and renders the fresh snapshot. Data from the SSOT is
// written with textContent only, never parsed as HTML.
(function () {
  "use strict";

  const root = document.getElementById("dashboard");
  const config = {
    wsPath: root.dataset.wsPath,
    canApprove: root.dataset.canApprove === "true",
    csrf: root.dataset.csrf,
    apiTasks: root.dataset.apiTasks,
  };
  const MAX_MESSAGES = 30;
  const MAX_AUDIT = 50;
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_CAP_MS = 10000;
  // Closed by the server for these reasons, reconnecting cannot help until the user logs in again.
  const FINAL_CLOSES = { 4401: "Your session has ended: log in again.", 4403: "You may not watch the events." };

  const state = {
    tasks: new Map(),
    tasksTotal: 0,
    agents: new Map(),
    escalations: new Map(),
    messages: [],
    audit: [],
    sync: null,
    clockOffsetMs: 0,
    pingSec: 30,
  };

  // -- small DOM helpers --------------------------------------------------------------------------

  function el(tag, options, children) {
    const node = document.createElement(tag);
    const opts = options || {};
    if (opts.className) node.className = opts.className;
    if (opts.text !== undefined && opts.text !== null) node.textContent = String(opts.text);
    if (opts.title) node.title = String(opts.title);
    if (opts.attrs) {
      Object.keys(opts.attrs).forEach(function (name) {
        node.setAttribute(name, String(opts.attrs[name]));
      });
    }
    (children || []).forEach(function (child) {
      if (child) node.appendChild(child);
    });
    return node;
  }

  function cell(label, children, className) {
    return el("td", { className: className, attrs: { "data-label": label } }, children);
  }

  function token(value) {
    // A CSS class suffix derived from a status: letters, digits and dashes only.
    return String(value || "none").toLowerCase().replace(/[^a-z0-9]+/g, "-");
  }

  function badge(value, family) {
    return el("span", { className: "badge " + family + "-" + token(value), text: value || "—" });
  }

  function now() {
    return Date.now() + state.clockOffsetMs;
  }

  function ago(iso) {
    if (!iso) return "never";
    const seconds = Math.max(0, Math.round((now() - Date.parse(iso)) / 1000));
    if (seconds < 60) return seconds + "s";
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + "m " + (seconds % 60) + "s";
    const hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + "h " + (minutes % 60) + "m";
    return Math.floor(hours / 24) + "d";
  }

  function since(iso, suffix) {
    return el("time", {
      className: "since",
      text: ago(iso) + (iso ? suffix || "" : ""),
      title: iso || "",
      attrs: { "data-since": iso || "", "data-suffix": suffix || "", datetime: iso || "" },
    });
  }

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
  }

  // -- rendering (coalesced to one pass per animation frame) -------------------------------------

  const dirty = new Set();
  let frame = 0;

  function invalidate(part) {
    dirty.add(part);
    if (!frame) frame = window.requestAnimationFrame(flush);
  }

  function flush() {
    frame = 0;
    const parts = Array.from(dirty);
    dirty.clear();
    parts.forEach(function (part) {
      RENDER[part]();
    });
  }

  function taskOrder(a, b) {
    const waitingA = a.status === "awaiting_approval" ? 0 : 1;
    const waitingB = b.status === "awaiting_approval" ? 0 : 1;
    if (waitingA !== waitingB) return waitingA - waitingB;
    return (b.updated_at || "").localeCompare(a.updated_at || "");
  }

  function ciCell(task) {
    const checks = task.ci_status && typeof task.ci_status === "object" ? Object.keys(task.ci_status) : [];
    const detail = checks
      .map(function (name) {
        const check = task.ci_status[name] || {};
        return name + ": " + (check.conclusion || check.state || "?");
      })
      .join("\n");
    if (!task.ci_state && !checks.length) return el("span", { className: "muted", text: "—" });
    return el("span", { className: "badge ci-" + token(task.ci_state), text: task.ci_state || "?", title: detail });
  }

  function prCell(pr) {
    if (!pr || !pr.number) return el("span", { className: "muted", text: "—" });
    const label = "#" + pr.number + (pr.state ? " " + pr.state : "");
    const href = safeUrl(pr.url);
    if (!href) return el("span", { text: label, title: pr.title || "" });
    return el("a", { text: label, title: pr.title || "", attrs: { href: href, rel: "noopener noreferrer", target: "_blank" } });
  }

  function decisionButtons(task) {
    if (!config.canApprove || task.status !== "awaiting_approval") return null;
    const approve = el("button", { className: "approve", text: "Approve", attrs: { type: "button", "data-action": "approve" } });
    const reject = el("button", { className: "reject", text: "Reject", attrs: { type: "button", "data-action": "reject" } });
    approve.addEventListener("click", function () { openDecision("approve", task.task_id); });
    reject.addEventListener("click", function () { openDecision("reject", task.task_id); });
    return el("div", { className: "buttons" }, [approve, reject]);
  }

  function approvalsCount(task) {
    // Awaiting approval: the approvals that count for the version shown, of those the policy needs.
    const counted = task.status === "awaiting_approval" ? task.approvals : null;
    if (!counted) return null;
    return el("span", {
      className: "approvals muted",
      text: counted.have + " of " + counted.need,
      title: "Approvals counted for this version of the task, of those the approval policy needs",
    });
  }

  function taskRow(task) {
    // The row links to the task's page (what changed, the decision bound to its version).
    const link = el("a", { text: task.task_id, attrs: { href: "/dashboard/tasks/" + encodeURIComponent(task.task_id) + "/" } });
    const name = el("div", { className: "task-id" }, [link]);
    const title = task.title ? el("div", { className: "task-title muted", text: task.title }) : null;
    const row = el("tr", { attrs: { "data-task-id": task.task_id, "data-status": task.status } }, [
      cell("Task", [name, title]),
      cell("Status", [
        badge(task.status, "status"),
        approvalsCount(task),
        task.decision_unverified
          ? el("span", {
              className: "badge decision-unverified",
              text: "decision unverified",
              title: "Reached " + task.status + " without a decision of the control plane (see the escalation)",
            })
          : null,
      ]),
      cell("Risk", [badge(task.risk_level, "risk")]),
      cell("Branch", [el("code", { text: task.branch || "—" })]),
      cell("CI", [ciCell(task)]),
      cell("PR", [prCell(task.pr)]),
      cell("Age", [since(task.created_at)]),
      cell("", [decisionButtons(task)], "decide"),
    ]);
    if (task._flash) {
      row.classList.add("flash");
      delete task._flash;
    }
    return row;
  }

  function renderTasks() {
    const tbody = document.querySelector("#tasks tbody");
    const tasks = Array.from(state.tasks.values()).sort(taskOrder);
    const fragment = document.createDocumentFragment();
    tasks.forEach(function (task) {
      fragment.appendChild(taskRow(task));
    });
    tbody.replaceChildren(fragment);
    const waiting = tasks.filter(function (task) { return task.status === "awaiting_approval"; }).length;
    const total = Math.max(state.tasksTotal, tasks.length);
    document.getElementById("tasks-count").textContent =
      (tasks.length < total ? tasks.length + " of " + total : String(total)) + (waiting ? " · " + waiting + " awaiting approval" : "");
    document.getElementById("tasks-empty").hidden = tasks.length > 0;
  }

  function renderAgents() {
    const list = document.getElementById("agents");
    const items = Array.from(state.agents.values())
      .sort(function (a, b) { return a.name.localeCompare(b.name); })
      .map(function (agent) {
        return el("li", { className: "card health-" + token(agent.status), attrs: { "data-agent": agent.name } }, [
          el("div", { className: "agent-name", text: agent.name }),
          el("div", { className: "agent-status", text: agent.status || "unknown" }),
          el("div", { className: "muted" }, [
            el("span", { text: "last write " }),
            since(agent.last_seen, " ago"),
            agent.last_seen_via ? el("span", { text: " · " + agent.last_seen_via }) : null,
          ]),
        ]);
      });
    list.replaceChildren.apply(list, items);
  }

  function renderEscalations() {
    const list = document.getElementById("escalations");
    const items = Array.from(state.escalations.values())
      .sort(function (a, b) { return (b.created_at || "").localeCompare(a.created_at || ""); })
      .map(function (esc) {
        return el("li", { className: "severity-" + token(esc.severity), attrs: { "data-msg-id": esc.msg_id } }, [
          el("div", {}, [
            badge(esc.severity, "severity"),
            el("strong", { text: " " + esc.escalation_type }),
            el("span", { className: "muted", text: " · " + esc.status + " · task " + esc.task_id + " · " }),
            since(esc.created_at, " ago"),
          ]),
          el("div", { className: "detail", text: esc.description }),
        ]);
      });
    list.replaceChildren.apply(list, items);
    document.getElementById("escalations-count").textContent = items.length ? String(items.length) : "";
    document.getElementById("escalations-empty").hidden = items.length > 0;
  }

  function renderMessages() {
    const list = document.getElementById("messages");
    const items = state.messages.map(function (msg) {
      return el("li", { attrs: { "data-msg-id": msg.msg_id } }, [
        el("div", {}, [
          el("strong", { text: msg.type }),
          el("span", { text: " " + msg.from + " → " + msg.to + " · " + msg.task_id + " " }),
          msg.requires_ack ? badge(msg.ack_state, "ack") : null,
        ]),
        el("div", { className: "muted" }, [since(msg.timestamp, " ago"), el("span", { text: " · " + msg.msg_id })]),
      ]);
    });
    list.replaceChildren.apply(list, items);
    document.getElementById("messages-empty").hidden = items.length > 0;
  }

  function renderAudit() {
    const list = document.getElementById("audit");
    const items = state.audit.map(function (entry) {
      const what = [entry.action, entry.task_id, entry.msg_id].filter(Boolean).join(" ");
      return el("li", {}, [
        el("div", {}, [el("strong", { text: entry.actor }), el("span", { text: " " + what })]),
        entry.detail ? el("div", { className: "detail", text: entry.detail }) : null,
        el("div", { className: "muted" }, [since(entry.timestamp, " ago")]),
      ]);
    });
    list.replaceChildren.apply(list, items);
    document.getElementById("audit-empty").hidden = items.length > 0;
  }

  function renderSync() {
    const sync = state.sync || {};
    const node = document.getElementById("sync");
    node.replaceChildren();
    node.classList.toggle("failing", Boolean(sync.failing));
    if (sync.failing) {
      // A failing sync is shown with its reason (it names the file or the step), never hidden.
      const times = sync.consecutive_errors > 1 ? " (" + sync.consecutive_errors + " in a row)" : "";
      node.appendChild(el("strong", { text: "SSOT sync failing" + times + ": " }));
      node.appendChild(el("span", { text: sync.last_error || "unknown error", title: sync.last_error || "" }));
      if (sync.head) node.appendChild(el("span", { text: " · mirrored " + sync.head.slice(0, 10) }));
      return;
    }
    if (!sync.head) {
      node.textContent = "SSOT: not synced yet";
      return;
    }
    node.appendChild(el("span", { text: (sync.branch || "") + "@" + sync.head.slice(0, 10) + " · synced " }));
    node.appendChild(since(sync.last_sync_at, " ago"));
  }

  const RENDER = {
    tasks: renderTasks,
    agents: renderAgents,
    escalations: renderEscalations,
    messages: renderMessages,
    audit: renderAudit,
    sync: renderSync,
  };

  // Elapsed times tick every second without re-rendering anything else.
  window.setInterval(function () {
    document.querySelectorAll("[data-since]").forEach(function (node) {
      const iso = node.getAttribute("data-since");
      node.textContent = ago(iso) + (iso ? node.getAttribute("data-suffix") : "");
    });
  }, 1000);

  // -- applying events ----------------------------------------------------------------------------

  function sawAgent(name, at) {
    // Any write by an agent is its liveness; the monitor's agent_health events carry its status.
    const agent = state.agents.get(name);
    if (!agent || !at) return;
    if (!agent.last_seen || Date.parse(at) > Date.parse(agent.last_seen)) {
      agent.last_seen = at;
      invalidate("agents");
    }
  }

  function putTask(task, flash) {
    if (!task) return;
    if (flash) task._flash = true;
    state.tasks.set(task.task_id, task);
    invalidate("tasks");
  }

  function putMessage(msg) {
    state.messages = [msg].concat(state.messages.filter(function (m) { return m.msg_id !== msg.msg_id; }));
    state.messages.sort(function (a, b) { return (b.timestamp || "").localeCompare(a.timestamp || ""); });
    state.messages = state.messages.slice(0, MAX_MESSAGES);
    invalidate("messages");
  }

  function putEscalation(esc) {
    if (esc.status === "resolved") state.escalations.delete(esc.msg_id);
    else state.escalations.set(esc.msg_id, esc);
    invalidate("escalations");
  }

  const HANDLERS = {
    init: function (ev) {
      state.clockOffsetMs = ev.server_time ? Date.parse(ev.server_time) - Date.now() : 0;
      state.pingSec = ev.ping_sec || state.pingSec;
      state.tasks = new Map(ev.tasks.map(function (task) { return [task.task_id, task]; }));
      state.tasksTotal = ev.tasks_total || ev.tasks.length;
      state.agents = new Map(ev.agents.map(function (agent) { return [agent.name, agent]; }));
      state.escalations = new Map();
      ev.escalations.forEach(putEscalation);
      state.messages = (ev.messages || []).slice(0, MAX_MESSAGES);
      state.audit = (ev.audit || []).slice(0, MAX_AUDIT);
      state.sync = ev.sync || null;
      Object.keys(RENDER).forEach(invalidate);
    },
    task_update: function (ev) {
      if (ev.removed || !ev.task) {
        state.tasks.delete(ev.task_id);
        invalidate("tasks");
        return;
      }
      if (!state.tasks.has(ev.task_id)) state.tasksTotal += 1;
      putTask(ev.task, true);
      sawAgent(ev.task.last_writer, ev.task.updated_at);
    },
    task_approved: function (ev) { putTask(ev.task, true); },
    task_rejected: function (ev) { putTask(ev.task, true); },
    task_override: function (ev) { putTask(ev.task, true); },
    message: function (ev) {
      putMessage(ev.message);
      sawAgent(ev.message.from, ev.message.timestamp);
    },
    ack: function (ev) {
      state.messages.forEach(function (msg) {
        if (msg.msg_id === ev.msg_id) {
          msg.ack_state = "acked";
          msg.acked_at = ev.at;
          invalidate("messages");
        }
      });
      sawAgent(ev.by, ev.at);
    },
    agent_health: function (ev) {
      const agent = ev.agent && typeof ev.agent === "object" ? ev.agent : ev;
      const name = agent.name || ev.agent;
      if (!name) return;
      const current = state.agents.get(name) || { name: name };
      ["status", "status_since", "last_seen", "last_seen_via"].forEach(function (key) {
        if (agent[key] !== undefined) current[key] = agent[key];
      });
      state.agents.set(name, current);
      invalidate("agents");
    },
    escalation: function (ev) { putEscalation(ev.escalation); },
    ci_update: function (ev) {
      const task = state.tasks.get(ev.task_id);
      if (!task) return;
      task.ci_state = ev.ci_state;
      task.ci_status = ev.ci_status;
      putTask(task, true);
    },
    approval_progress: function (ev) {
      // An approval below the count, for the version it names: the row's count, nothing else, changes.
      const task = state.tasks.get(ev.task_id);
      if (!task || task.status !== "awaiting_approval" || ev.blob_sha !== task.blob_sha) return;
      task.approvals = { have: ev.have, need: ev.need };
      putTask(task, true);
    },
    pr_update: function (ev) {
      const task = state.tasks.get(ev.task_id);
      if (!task) return;
      task.pr = ev.pr;
      putTask(task, true);
    },
    sync: function (ev) {
      state.sync = {
        backend: ev.backend,
        branch: ev.branch,
        head: ev.head,
        last_sync_at: ev.last_sync_at,
        failing: Boolean(ev.failing),
        consecutive_errors: ev.consecutive_errors || 0,
        last_error: ev.last_error || "",
      };
      invalidate("sync");
      // Too many changes for one event each: take a fresh snapshot instead.
      if (ev.report && ev.report.reload) reconnectNow();
    },
    audit: function (ev) {
      const entry = ev.entry;
      state.audit = [entry].concat(state.audit.filter(function (e) { return e.id !== entry.id; })).slice(0, MAX_AUDIT);
      invalidate("audit");
    },
    ping: function () {},
  };

  // -- the connection -----------------------------------------------------------------------------

  const connection = document.getElementById("connection");
  let socket = null;
  let attempt = 0;
  let retryTimer = 0;
  let lastHeard = 0;
  let stopped = false;

  function showConnection(kind, text) {
    connection.className = "pill pill-" + kind;
    connection.textContent = text;
    root.dataset.connection = kind;
  }

  function showNotice(text) {
    const notice = document.getElementById("notice");
    notice.textContent = text || "";
    notice.hidden = !text;
  }

  function socketUrl() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + config.wsPath;
  }

  function connect() {
    retryTimer = 0;
    showConnection("connecting", attempt ? "reconnecting…" : "connecting…");
    const ws = new WebSocket(socketUrl());
    socket = ws;
    ws.onmessage = function (message) {
      if (ws !== socket) return;
      lastHeard = Date.now();
      let ev;
      try {
        ev = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      const handler = HANDLERS[ev.type];
      if (!handler) return;
      handler(ev);
      if (ev.type === "init") {
        attempt = 0;
        showConnection("live", "live");
        showNotice("");
      }
    };
    ws.onclose = function (event) {
      if (ws !== socket) return;
      socket = null;
      if (FINAL_CLOSES[event.code]) {
        stopped = true;
        showConnection("offline", "offline");
        showNotice(FINAL_CLOSES[event.code]);
        return;
      }
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (stopped || retryTimer) return;
    const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_FIRST_MS * Math.pow(2, attempt));
    const jittered = Math.round(delay * (0.8 + Math.random() * 0.4));
    attempt += 1;
    showConnection("retrying", "reconnecting in " + Math.ceil(jittered / 1000) + "s");
    retryTimer = window.setTimeout(connect, jittered);
  }

  function reconnectNow() {
    if (retryTimer) window.clearTimeout(retryTimer);
    retryTimer = 0;
    const ws = socket;
    socket = null;
    if (ws) ws.close(4000, "snapshot");
    attempt = 0;
    connect();
  }

  // A connection that has gone quiet for longer than a few pings is dead even if the OS has not noticed.
  window.setInterval(function () {
    if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastHeard > state.pingSec * 2500) {
      const ws = socket;
      socket = null;
      ws.close();
      scheduleReconnect();
    }
  }, 1000);

  // -- approve / reject ---------------------------------------------------------------------------

  const dialog = document.getElementById("decision");
  const form = document.getElementById("decision-form");
  const reasonField = document.getElementById("decision-reason");
  const errorBox = document.getElementById("decision-error");
  const submit = document.getElementById("decision-submit");
  let pending = null;

  function openDecision(action, taskId) {
    const task = state.tasks.get(taskId);
    if (!task) return;
    pending = { action: action, taskId: taskId, expectedSha: task.blob_sha };
    document.getElementById("decision-title").textContent = (action === "approve" ? "Approve " : "Reject ") + taskId;
    document.getElementById("decision-task").textContent = task.title || "";
    document.getElementById("decision-label").textContent =
      action === "approve" ? "Note to the agent (optional)" : "Reason (required)";
    reasonField.value = "";
    reasonField.required = action === "reject";
    errorBox.hidden = true;
    submit.textContent = action === "approve" ? "Approve" : "Reject";
    submit.className = action;
    submit.disabled = false;
    dialog.showModal();
    reasonField.focus();
  }

  document.getElementById("decision-cancel").addEventListener("click", function () {
    pending = null;
    dialog.close();
  });

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!pending) return;
    const reason = reasonField.value.trim();
    if (pending.action === "reject" && !reason) {
      showError("A reason is required to reject a task.");
      return;
    }
    const decision = pending;
    submit.disabled = true;
    const url = config.apiTasks + encodeURIComponent(decision.taskId) + "/" + decision.action + "/";
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": config.csrf },
      body: JSON.stringify({ reason: reason, expected_sha: decision.expectedSha }),
    })
      .then(function (response) {
        return response
          .json()
          .catch(function () { return {}; })
          .then(function (body) { return { ok: response.ok, status: response.status, body: body }; });
      })
      .then(function (result) {
        if (result.ok) {
          pending = null;
          dialog.close();
          return;
        }
        submit.disabled = false;
        showError(String((result.body && result.body.detail) || "The server answered " + result.status + "."));
      })
      .catch(function () {
        submit.disabled = false;
        showError("The server could not be reached; try again.");
      });
  });

  connect();
})();
