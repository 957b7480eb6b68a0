// The Colonymesh dashboard: plain JavaScript, no build step, no outside code. It reads the
// node's read-only data endpoints (/ui/api/...) with the dashboard key, which arrives in the
// URL fragment (#key=...), is kept in this tab's session storage and removed from the
// address bar. Every value from the node is inserted as text, never as HTML.
"use strict";

const STATES = { 0: "waiting", 1: "running", 2: "successful", 3: "failed", 4: "cancelled" };
const REFRESH_MS = 5000;

function keyFromFragment() {
  const match = /(?:^|[#&])key=([0-9a-fA-F]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem("colonymesh-key", match[1]);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("colonymesh-key");
}

const KEY = keyFromFragment();

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(what, params) {
  const query = new URLSearchParams(params || {}).toString();
  const response = await fetch(`api/${what}${query ? "?" + query : ""}`, {
    headers: { Authorization: `Bearer ${KEY}` },
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || `${what}: ${response.status}`);
  return body;
}

function param(name) {
  return new URLSearchParams(location.search).get(name);
}

function go(params) {
  const query = new URLSearchParams(params);
  history.pushState(null, "", "?" + query.toString());
  render();
}

function link(text, params) {
  return el("a", {
    href: "?" + new URLSearchParams(params).toString(),
    onclick: (event) => { event.preventDefault(); go(params); },
  }, text);
}

function badge(state) {
  const name = STATES[state] || String(state);
  return el("span", { class: `badge state-${name}` }, name);
}

function time(value) {
  if (!value || value.startsWith("0001-")) return "-";
  return value.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function table(headers, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.length
      ? rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))
      : [el("tr", {}, el("td", { colspan: headers.length, class: "muted" }, "none"))]));
}

function colony() {
  return param("colony") || document.getElementById("colony").value;
}

const VIEWS = {
  async fleet() {
    const cluster = await api("cluster");
    document.getElementById("served").textContent = `served by ${cluster.servedby}`;
    const leader = cluster.leader ? cluster.leader.name : null;
    const gib = (b) => (b / 2 ** 30).toFixed(1);
    const rows = cluster.nodes.map((n) => {
      const s = n.status;
      const role = n.name === leader ? `${n.role} (leader)` : n.role;
      const executors = s ? s.executors.map((e) => `${e.name} (${e.state}, ${e.running})`) : [];
      return [
        n.name, role, n.site,
        el("span", { class: n.up ? "up" : "down" }, n.up ? "up" : "down"),
        s ? s.version : "-", s && s.applied_index !== null ? s.applied_index : "-",
        s ? `${s.cpus} / ${(s.load_milli[0] / 1000).toFixed(2)}` : "-",
        s ? `${gib(s.memory_total_bytes - s.memory_available_bytes)}/${gib(s.memory_total_bytes)} GiB` : "-",
        executors.join(", ") || "-",
      ];
    });
    return [
      el("h2", {}, `Fleet: ${cluster.nodes.length} nodes, term ${cluster.term}, leader ${leader || "none"}`),
      table(["Node", "Role", "Site", "Health", "Version", "Applied", "CPUs / load", "Memory",
        "Executors"], rows),
    ];
  },

  async colonies() {
    const colonies = await api("colonies");
    const rows = colonies.map(({ colony: c, statistics: s }) => [
      link(c.name, { view: "processes", colony: c.name }),
      el("span", { class: "mono" }, c.colonyid),
      `${s.executors} (${s.activeexecutors} active)`,
      s.waitingprocesses, s.runningprocesses, s.successfulprocesses, s.failedprocesses,
      `${s.waitingworkflows + s.runningworkflows} open / ${s.successfulworkflows + s.failedworkflows} done`,
    ]);
    return [el("h2", {}, "Colonies"),
      table(["Colony", "Owner id", "Executors", "Waiting", "Running", "Successful", "Failed",
        "Workflows"], rows)];
  },

  async executors() {
    const executors = await api("executors", { colony: colony() });
    const rows = executors.map((e) => [
      e.executorname, e.executortype, e.state === 1 ? "approved" : e.state === 2 ? "rejected" : "pending",
      time(e.lastheardfromtime), e.location && e.location.description ? e.location.description : "-",
      el("span", { class: "mono" }, e.executorid),
    ]);
    return [el("h2", {}, `Executors of ${colony()}`),
      table(["Name", "Type", "State", "Last heard", "Location", "Id"], rows)];
  },

  async processes() {
    const state = param("state") || "all";
    const processes = await api("processes", { colony: colony(), state });
    const filters = el("div", { class: "filters" }, "State:",
      ["all", "waiting", "running", "successful", "failed"].map((s) =>
        s === state ? el("b", {}, s) : link(s, { view: "processes", colony: colony(), state: s })));
    const rows = processes.map((p) => [
      link(p.processid.slice(0, 12), { view: "process", id: p.processid }),
      p.spec.funcname, p.spec.conditions.executortype, badge(p.state),
      time(p.submissiontime), p.processgraphid
        ? link(p.processgraphid.slice(0, 12), { view: "workflow", id: p.processgraphid }) : "-",
    ]);
    return [el("h2", {}, `Processes of ${colony()}`), filters,
      table(["Process", "Function", "Executor type", "State", "Submitted", "Workflow"], rows)];
  },

  async process() {
    const id = param("id");
    const { process: p, logs } = await api("process", { id });
    const fields = [
      ["Id", el("span", { class: "mono" }, p.processid)], ["Function", p.spec.funcname],
      ["Args", JSON.stringify(p.spec.args || [])], ["State", badge(p.state)],
      ["Colony", p.spec.conditions.colonyname], ["Executor type", p.spec.conditions.executortype],
      ["Assigned to", p.assignedexecutorid || "-"], ["Submitted", time(p.submissiontime)],
      ["Started", time(p.starttime)], ["Ended", time(p.endtime)],
      ["Output", JSON.stringify(p.out || [])], ["Errors", (p.errors || []).join("; ") || "-"],
      ["Workflow", p.processgraphid ? link(p.processgraphid, { view: "workflow", id: p.processgraphid }) : "-"],
    ];
    return [
      el("h2", {}, `Process ${p.spec.funcname}`),
      el("dl", { class: "fields" }, fields.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
      el("h2", {}, `Log (${logs.length} lines)`),
      el("pre", { class: "logs", id: "logs" }, logs.map((l) => l.message).join("")),
    ];
  },

  async workflows() {
    const graphs = await api("workflows", { colony: colony() });
    const rows = graphs.map((g) => [
      link(g.processgraphid.slice(0, 12), { view: "workflow", id: g.processgraphid }),
      badge(g.state), g.processids.length, time(g.submissiontime), time(g.endtime),
    ]);
    return [el("h2", {}, `Workflows of ${colony()}`),
      table(["Workflow", "State", "Processes", "Submitted", "Ended"], rows)];
  },

  async workflow() {
    const id = param("id");
    const { graph, processes } = await api("workflow", { id });
    const width = 170, height = 46, pad = 20;
    const pos = {};
    let maxX = 0, maxY = 0;
    for (const n of graph.nodes) {
      pos[n.id] = { x: n.position.x + pad, y: n.position.y + pad };
      maxX = Math.max(maxX, pos[n.id].x); maxY = Math.max(maxY, pos[n.id].y);
    }
    const lines = graph.edges.map((e) => {
      const a = pos[e.source], b = pos[e.target];
      return svg("line", { x1: a.x + width / 2, y1: a.y + height, x2: b.x + width / 2, y2: b.y });
    });
    const boxes = graph.nodes.map((n) => {
      const p = processes[n.id];
      const state = STATES[p ? p.state : 0];
      const box = svg("g", { class: `node state-${state}`, "data-process": n.id },
        svg("rect", { x: pos[n.id].x, y: pos[n.id].y, width, height, fill: n.style.background || "#fff" }),
        svg("text", { x: pos[n.id].x + 10, y: pos[n.id].y + 19 }, n.data.label),
        svg("text", { x: pos[n.id].x + 10, y: pos[n.id].y + 36, fill: "#5b6477" }, state));
      box.addEventListener("click", () => go({ view: "process", id: n.id }));
      return box;
    });
    const picture = svg("svg", {
      class: "graph", width: maxX + width + 2 * pad, height: maxY + height + 2 * pad,
    }, lines, boxes);
    const rows = graph.processids.map((pid) => {
      const p = processes[pid];
      return [link(p.spec.nodename || p.spec.funcname, { view: "process", id: pid }),
        badge(p.state), (p.parents || []).length, (p.children || []).length];
    });
    return [
      el("h2", {}, "Workflow ", el("span", { class: "mono" }, graph.processgraphid), " ", badge(graph.state)),
      picture,
      el("h2", {}, "Processes"),
      table(["Process", "State", "Parents", "Children"], rows),
    ];
  },
};

async function loadColonies() {
  const select = document.getElementById("colony");
  const colonies = await api("colonies");
  const current = param("colony") || select.value;
  select.replaceChildren(...colonies.map(({ colony: c }) => el("option", { value: c.name }, c.name)));
  if (current) select.value = current;
  select.onchange = () => go({ view: param("view") || "processes", colony: select.value });
}

let rendering = false;
async function render() {
  if (rendering) return;
  rendering = true;
  const main = document.getElementById("main");
  const view = param("view") || "fleet";
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.view === view);
  }
  try {
    if (!KEY) throw new Error("no dashboard key: run `colonymesh dashboard` with the server owner's key (COLONIES_SERVER_PRVKEY) and open the address it prints");
    const content = await (VIEWS[view] || VIEWS.fleet)();
    main.replaceChildren(...[content].flat());
    main.dataset.view = view;
    document.getElementById("status").textContent = `updated ${new Date().toISOString()}`;
  } catch (error) {
    main.replaceChildren(el("p", { class: "error" }, String(error.message || error)));
  } finally {
    rendering = false;
  }
}

for (const a of document.querySelectorAll("#nav a")) {
  a.addEventListener("click", (event) => {
    event.preventDefault();
    go({ view: a.dataset.view, colony: colony() });
  });
}
window.addEventListener("popstate", render);
(async () => {
  try { if (KEY) await loadColonies(); } catch (error) { /* shown by render */ }
  await render();
  setInterval(() => { if (!["process", "workflow"].includes(param("view"))) render(); }, REFRESH_MS);
})();
