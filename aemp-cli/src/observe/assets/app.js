// aemp observe: renders the observer's view, sent by the server as
// server-sent events (one JSON document per change), without reloading.
// Everything from the network is inserted as text, never as HTML.
"use strict";

(function () {
  const token = new URLSearchParams(location.search).get("token");
  const query = token ? "?token=" + encodeURIComponent(token) : "";
  const SVG = "http://www.w3.org/2000/svg";
  let view = null;
  let updates = 0;

  // ---- building elements ----------------------------------------------
  function build(el, attrs, kids) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof window.Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const h = (tag, attrs, ...kids) => build(document.createElement(tag), attrs, kids);
  const s = (tag, attrs, ...kids) => build(document.createElementNS(SVG, tag), attrs, kids);
  const $ = (sel) => document.querySelector(sel);
  function fill(el, ...kids) {
    el.replaceChildren();
    build(el, {}, kids);
  }

  // ---- numbers ----------------------------------------------------------
  function num(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    const a = Math.abs(x);
    if (a >= 1e9) return (x / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (x / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (x / 1e3).toFixed(1) + "k";
    return digits ? x.toFixed(digits) : String(Math.round(x));
  }
  function bytes(x) {
    if (x === null || x === undefined) return "–";
    if (x >= 1 << 30) return (x / (1 << 30)).toFixed(1) + " GiB";
    if (x >= 1 << 20) return (x / (1 << 20)).toFixed(1) + " MiB";
    if (x >= 1 << 10) return (x / (1 << 10)).toFixed(1) + " KiB";
    return x + " B";
  }
  function duration(secs) {
    if (secs === null || secs === undefined) return "–";
    if (secs < 60) return secs.toFixed(0) + " s";
    if (secs < 3600) return Math.floor(secs / 60) + " min " + Math.floor(secs % 60) + " s";
    if (secs < 86400) return Math.floor(secs / 3600) + " h " + Math.floor((secs % 3600) / 60) + " min";
    return Math.floor(secs / 86400) + " d " + Math.floor((secs % 86400) / 3600) + " h";
  }
  const clock = (t) => new Date(t * 1000).toLocaleTimeString();
  const nodeOf = (port) => String(port).split("#")[0];
  const badge = (cls, text) => h("span", { class: "badge " + cls }, text);
  const lastSample = (n) => (n.history.length ? n.history[n.history.length - 1] : null);

  // ---- the selected node lives in the URL's fragment ----------------------
  function selected() {
    const m = location.hash.match(/^#node=(.*)$/);
    if (m) return decodeURIComponent(m[1]);
    return view && view.nodes.length ? view.nodes[0].id : null;
  }
  function select(id) {
    location.hash = "#node=" + encodeURIComponent(id);
  }
  window.addEventListener("hashchange", () => view && render());

  // ---- sections -----------------------------------------------------------
  function renderNodes() {
    const sel = selected();
    const rows = view.nodes.map((n) => {
      const st = n.stats;
      const last = lastSample(n);
      const state = n.up ? "up" : "down";
      const mons = st ? st.monitors.local + " / " + st.monitors.from_peers + " / " + st.monitors.on_peers : "–";
      const cls = [n.id === sel ? "selected" : "", n.up ? "" : "stale"].join(" ").trim() || null;
      return h("tr", { "data-node": n.id, "data-state": state, class: cls, onclick: () => select(n.id) },
        h("td", {}, n.id),
        h("td", {}, badge(state, state), n.aemp === false ? h("span", { class: "muted" }, " no figures") : null),
        h("td", { class: "num" }, st ? duration(st.uptime) : "–"),
        h("td", { class: "num" }, st ? num(st.ports) : "–"),
        h("td", { class: "num" }, st ? st.named_ports.length : "–"),
        h("td", { class: "num", title: "local / from peers / on peers" }, mons),
        h("td", { class: "num" }, last ? num(last[1], 1) : "–"),
        h("td", { class: "num" }, st ? num(st.queue_depth) : "–"),
        h("td", { class: "num" }, st ? num(st.queue_high_water) : "–"));
    });
    fill($("#nodes tbody"), rows);
  }

  // The figures of link `l` in the direction a -> b (`ab`) or b -> a.
  function linkFigures(l) {
    const a = l.from_a, b = l.from_b;
    const pick = (x, y) => (x !== null && x !== undefined ? x : y);
    return {
      ab: pick(a && a.sent_per_s, b && b.received_per_s),
      ba: pick(a && a.received_per_s, b && b.sent_per_s),
      sent: pick(a && a.bytes_sent, b && b.bytes_received),
      received: pick(a && a.bytes_received, b && b.bytes_sent),
      queued: (a ? a.send_queue_bytes : 0) + (b ? b.send_queue_bytes : 0),
      framing: a && a.send_framing ? a.send_framing + " / " + a.recv_framing : b && b.send_framing ? b.recv_framing + " / " + b.send_framing : "–",
      auth: pick(a && a.auth, b && b.auth) || "–",
      tls: a ? a.tls : b ? b.tls : false,
      age: pick(a && a.age, b && b.age),
      reconnects: Math.max(a ? a.reconnects : 0, b ? b.reconnects : 0),
    };
  }

  function renderLinks() {
    const rows = view.links.map((l) => {
      const f = linkFigures(l);
      const state = l.up ? "up" : "down";
      return h("tr", { "data-link": l.a + " " + l.b, "data-state": state },
        h("td", {}, l.a + " — " + l.b),
        h("td", {}, badge(state, state)),
        h("td", { class: "num" }, num(f.ab, 1)),
        h("td", { class: "num" }, num(f.ba, 1)),
        h("td", { class: "num" }, bytes(f.sent)),
        h("td", { class: "num" }, bytes(f.received)),
        h("td", { class: "num" }, bytes(f.queued)),
        h("td", {}, f.framing),
        h("td", {}, f.auth),
        h("td", {}, f.tls ? "yes" : "no"),
        h("td", { class: "num" }, duration(f.age)),
        h("td", { class: "num" }, f.reconnects));
    });
    fill($("#links tbody"), rows);
  }

  function renderGraph() {
    const svg = $("#graph");
    const W = 420, H = 320, cx = W / 2, cy = H / 2, r = Math.min(W, H) / 2 - 48;
    const pos = {};
    view.nodes.forEach((n, i) => {
      const k = view.nodes.length;
      const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(k, 1);
      pos[n.id] = k === 1 ? [cx, cy] : [cx + r * Math.cos(angle), cy + r * Math.sin(angle)];
    });
    const sel = selected();
    const lines = view.links.filter((l) => pos[l.a] && pos[l.b]).map((l) => {
      const [x1, y1] = pos[l.a], [x2, y2] = pos[l.b];
      const f = linkFigures(l);
      const rate = (f.ab || 0) + (f.ba || 0);
      return s("g", {},
        s("line", { class: "link" + (l.up ? "" : " down"), "data-link": l.a + " " + l.b, x1, y1, x2, y2 },
          s("title", {}, l.a + " — " + l.b)),
        l.up ? s("text", { class: "rate", x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4 }, num(rate, 1) + " msg/s") : null);
    });
    const nodes = view.nodes.map((n) => {
      const [x, y] = pos[n.id];
      const label = n.id.length > 24 ? n.id.slice(0, 22) + "…" : n.id;
      return s("g", { class: "node " + (n.up ? "up" : "down") + (n.id === sel ? " selected" : ""), "data-node": n.id, onclick: () => select(n.id) },
        s("circle", { cx: x, cy: y, r: 14 }, s("title", {}, n.id)),
        // Labels outside the circle of nodes, away from the links.
        s("text", { x, y: y < cy - 1 ? y - 20 : y + 28 }, label));
    });
    fill(svg, lines, nodes);
  }

  function chart(title, points, format) {
    const W = 300, H = 70, pad = 4;
    if (points.length < 2) {
      return s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}` }, s("text", { x: 6, y: 14 }, title + ": waiting for samples"));
    }
    const t0 = points[0][0], t1 = points[points.length - 1][0];
    const max = Math.max(1, ...points.map((p) => p[1]));
    const xy = points.map(([t, v]) => [pad + ((W - 2 * pad) * (t - t0)) / Math.max(t1 - t0, 1e-3), H - pad - ((H - 2 * pad - 12) * v) / max]);
    return s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" },
      s("polyline", { points: xy.map((p) => p.join(",")).join(" ") }),
      s("text", { x: 6, y: 11 }, `${title}: ${format(points[points.length - 1][1])} (max ${format(max)})`));
  }

  function figure(label, value) {
    return h("div", { class: "figure" }, h("b", {}, value), h("span", {}, label));
  }

  function renderNode() {
    const id = selected();
    const n = view.nodes.find((x) => x.id === id);
    fill($("#node-title"), n ? n.id : "(select one)");
    const box = $("#node-detail");
    if (!n) return fill(box, h("p", { class: "muted" }, "no node"));
    const st = n.stats;
    const parts = [h("p", {}, badge(n.up ? "up" : "down", n.up ? "up" : "down"),
      n.stats_at ? h("span", { class: "muted" }, "  figures of " + clock(n.stats_at)) : null)];
    if (!st) {
      parts.push(h("p", { class: "muted" }, n.aemp === false
        ? "This node does not give figures (an AnyEvent::MP 0.9 node): its links come from its up_nodes answer."
        : "No figures received from this node yet."));
    } else {
      const last = lastSample(n);
      parts.push(h("div", { class: "figures" },
        figure("uptime", duration(st.uptime)),
        figure("ports", num(st.ports)),
        figure("named ports", st.named_ports.length),
        figure("messages dispatched", num(st.messages_dispatched)),
        figure("messages / s", last ? num(last[1], 1) : "–"),
        figure("queue now / peak", num(st.queue_depth) + " / " + num(st.queue_high_water)),
        figure("monitors local / from peers", st.monitors.local + " / " + st.monitors.from_peers),
        figure("monitors on peers", st.monitors.on_peers)));
      parts.push(h("div", { class: "charts" },
        chart("messages / s", n.history.map((p) => [p[0], p[1]]), (v) => num(v, 1)),
        chart("queue depth", n.history.map((p) => [p[0], p[2]]), (v) => num(v)),
        chart("bytes in / s", n.history.map((p) => [p[0], p[3]]), bytes),
        chart("bytes out / s", n.history.map((p) => [p[0], p[4]]), bytes)));
      parts.push(h("h3", {}, "Named ports"),
        st.named_ports.length ? h("ul", { class: "plain" }, st.named_ports.map((p) => h("li", {}, h("code", {}, p)))) : h("p", { class: "muted" }, "none"));
    }
    const groups = Object.entries(n.groups || {});
    parts.push(h("h3", {}, "Global groups"),
      groups.length
        ? h("ul", { class: "plain" }, groups.map(([g, ports]) => h("li", { "data-node-group": g }, h("b", {}, g), " ", ports.map((p) => h("code", {}, p + " ")))))
        : h("p", { class: "muted" }, "none"));
    fill(box, parts);
  }

  function renderSupervisors() {
    const byPort = {};
    for (const sv of view.supervisors) byPort[sv.port] = sv;
    const roots = view.supervisors.filter((sv) => !sv.parent || !byPort[sv.parent]);
    const box = $("#supervisors");
    if (!roots.length) return fill(box, h("p", { class: "muted" }, "none found"));
    function tree(sv, seen) {
      seen.add(sv.port);
      const rows = (sv.children || []).map((c) => {
        const nested = c.kind === "supervisor" && c.port && byPort[c.port] && !seen.has(c.port) ? tree(byPort[c.port], seen) : null;
        return [
          h("tr", { "data-child": c.id, "data-status": c.status, "data-child-node": c.node || "", "data-restarts": c.total_restarts, "data-supervisor": sv.port },
            h("td", {}, c.id),
            h("td", {}, badge(c.status, c.status)),
            h("td", {}, c.kind),
            h("td", {}, c.node || "–"),
            h("td", { class: "num" }, c.total_restarts),
            h("td", {}, c.port ? h("code", {}, c.port) : "–")),
          nested ? h("tr", {}, h("td", { colspan: 6 }, h("div", { class: "nested" }, nested))) : null,
        ];
      });
      return h("div", { class: "tree", "data-tree": sv.port },
        h("div", {}, h("span", { class: "sup" }, sv.port), "  ",
          h("span", { class: "muted" }, `${sv.strategy}, restarts ${sv.total_restarts} (${sv.recent_restarts} recent)`)),
        h("table", {}, h("thead", {}, h("tr", {}, ["child", "status", "kind", "node", "restarts", "port"].map((t) => h("th", {}, t)))),
          h("tbody", {}, rows)));
    }
    const seen = new Set();
    fill(box, roots.map((r) => tree(r, seen)));
  }

  function renderGroups() {
    const box = $("#groups");
    const groups = Object.entries(view.groups);
    if (!groups.length) return fill(box, h("p", { class: "muted" }, "none"));
    const up = {};
    for (const n of view.nodes) up[n.id] = n.up;
    fill(box, groups.map(([g, ports]) => [
      h("h3", {}, g, h("span", { class: "muted" }, ` (${ports.length})`)),
      h("ul", { class: "plain" }, ports.map((p) => h("li", { "data-group": g, "data-member": p },
        badge(up[nodeOf(p)] ? "up" : "down", nodeOf(p)), " ", h("code", {}, p)))),
    ]));
  }

  function renderEvents() {
    fill($("#events"), view.events.map((e) => h("li", { class: e.kind }, h("span", { class: "t" }, clock(e.at)), h("span", { class: e.kind }, e.text))));
  }

  function render() {
    fill($("#observer"), "observer " + view.observer);
    fill($("#updated"), view.updated ? "updated " + clock(view.updated) : "");
    renderNodes();
    renderLinks();
    renderGraph();
    renderNode();
    renderSupervisors();
    renderGroups();
    renderEvents();
    updates += 1;
    document.body.dataset.updates = String(updates);
  }

  function live(on) {
    const el = $("#live");
    el.className = "badge " + (on ? "on" : "off");
    el.dataset.live = on ? "yes" : "no";
    el.textContent = on ? "live" : "reconnecting";
  }

  function connect() {
    // EventSource reconnects by itself after an error.
    const es = new EventSource("events" + query);
    es.onopen = () => live(true);
    es.onerror = () => live(false);
    es.onmessage = (e) => {
      view = JSON.parse(e.data);
      render();
    };
  }

  document.addEventListener("DOMContentLoaded", connect);
})();
