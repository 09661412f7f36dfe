// Plots (plotly.js) and the ring's link graph (cytoscape.js), drawn from the page's JSON data.
// Prompt text is attacker-controlled: plotly reads hover text as HTML-like markup, so it is
// escaped first; cytoscape draws labels on a canvas; the detail panel uses textContent.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const layout = (title) => ({ title: { text: title }, margin: { t: 40, r: 10, b: 40, l: 50 }, height: 280 });
  const config = { displaylogo: false, responsive: true };

  function escapeMarkup(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  }
  window.dgEscapeMarkup = escapeMarkup;

  function plot(id, traces, title, extra) {
    const el = document.getElementById(id);
    if (el && window.Plotly) { window.Plotly.newPlot(el, traces, { ...layout(title), ...(extra || {}) }, config); }
  }

  if (data.page === "overview") {
    plot("plot-traffic", [{ x: data.traffic.map((r) => r.day), y: data.traffic.map((r) => r.calls), type: "bar", name: "calls" }], "Calls per day");
    plot("plot-flags", [{ x: data.runs.map((r) => r.finished_at), y: data.runs.map((r) => r.n_flagged), type: "scatter", mode: "lines+markers", name: "flagged accounts" }], "Flagged accounts per detection run");
    const actions = Array.from(new Set(data.decisions.map((r) => r.action)));
    plot("plot-decisions", actions.map((a) => {
      const rows = data.decisions.filter((r) => r.action === a);
      return { x: rows.map((r) => r.day), y: rows.map((r) => r.n), type: "bar", name: a };
    }), "Decisions per day", { barmode: "stack", xaxis: { type: "category" } });
  }

  if (data.page === "clusters" && data.map.length) {
    // the 20 largest clusters get their own colour; the rest share one grey trace
    const sizes = new Map();
    data.map.forEach((p) => sizes.set(p.cluster_id, (sizes.get(p.cluster_id) || 0) + 1));
    const top = new Set(Array.from(sizes.keys()).sort((a, b) => sizes.get(b) - sizes.get(a)).slice(0, 20));
    const groups = new Map();
    data.map.forEach((p) => {
      const key = top.has(p.cluster_id) ? p.cluster_id : "other clusters";
      if (!groups.has(key)) { groups.set(key, []); }
      groups.get(key).push(p);
    });
    const traces = Array.from(groups.entries()).map(([name, pts]) => ({
      x: pts.map((p) => p.x), y: pts.map((p) => p.y), type: "scatter", mode: "markers",
      name: name,
      text: pts.map((p) => escapeMarkup(p.cluster_id + ": " + (p.prompt === null ? "" : p.prompt.slice(0, 200)))),
      hoverinfo: "text", marker: name === "other clusters" ? { size: 4, color: "#ccc" } : { size: 6 },
    }));
    const el = document.getElementById("plot-map");
    window.Plotly.newPlot(el, traces, { ...layout("Prompt embeddings (PCA), coloured by cluster"), height: 520 }, config);
  }

  if (data.page === "ring") {
    plot("plot-timeline", [{ x: data.timeline.map((r) => r.hour), y: data.timeline.map((r) => r.calls), type: "bar", name: "calls" }], "Calls per hour by the ring's members");
    const colours = { account: "#d9534f", payment: "#f0ad4e", signup_ip: "#5bc0de", client_ip: "#0275d8", user_agent: "#5cb85c", template: "#8e44ad", cluster: "#7f8c8d" };
    const elements = data.graph.nodes.map((n) => ({ data: { ...n, colour: colours[n.kind] || "#999" } }))
      .concat(data.graph.edges.map((e) => ({ data: e })));
    const cy = window.cytoscape({
      container: document.getElementById("graph"),
      elements: elements,
      layout: { name: "cose", animate: false, randomize: false, nodeRepulsion: 8000 },
      style: [
        { selector: "node", style: { "background-color": "data(colour)", width: 14, height: 14, "font-size": 7 } },
        { selector: "node.show, node:selected", style: { label: "data(label)", "z-index": 10, "text-background-color": "#fff", "text-background-opacity": 0.85 } },
        { selector: "node[kind = 'account']", style: { shape: "ellipse", width: 10, height: 10 } },
        { selector: "node[kind != 'account']", style: { shape: "round-rectangle" } },
        { selector: "edge", style: { width: 0.6, "line-color": "#bbb", "curve-style": "haystack" } },
        { selector: ":selected", style: { "border-width": 3, "border-color": "#111" } },
      ],
      wheelSensitivity: 0.3,
    });
    window.dgGraph = cy;
    const count = document.getElementById("graph-count");
    count.textContent = cy.nodes().length + " nodes, " + cy.edges().length + " links";
    const detail = document.getElementById("graph-detail");
    const show = (event) => {
      const n = event.target.data();
      const lines = [n.kind + ": " + (n.detail || n.label)];
      if (n.kind === "account") { lines.push("score " + n.score + (n.flagged ? " (flagged)" : "")); }
      else { lines.push("shared by " + n.members + " members"); }
      detail.textContent = lines.join(" — ");
    };
    cy.on("mouseover tap", "node", (event) => { event.target.addClass("show"); show(event); });
    cy.on("mouseout", "node", (event) => { event.target.removeClass("show"); });
    cy.on("dbltap", "node[kind = 'account']", (event) => {
      window.location.assign("/accounts/" + encodeURIComponent(event.target.data("label")));
    });
  }
})();
