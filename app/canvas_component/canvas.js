// The cluster canvas: vis-network (the library the HTML export inlines) in a Streamlit
// component frame, spoken to with Streamlit's component messages directly (no build step).
// Positions come precomputed from the app and physics is off, so a 1,000-account cluster is
// drawn as soon as its data arrive. A click selects (sent back as select_node / select_edge),
// a double-click expands (sent back as expand); the legend toggles edge kinds.
(function () {
  "use strict";
  var network = null, nodes = null, edges = null, fitToken = null, hiddenTypes = {}, hiddenKinds = null;
  var camera = null;  // the investigator's zoom and centre, kept across the frame's resizes
  var lastArgs = null;

  function post(type, extra) {
    var msg = {isStreamlitMessage: true, type: type};
    for (var k in extra) msg[k] = extra[k];
    window.parent.postMessage(msg, "*");
  }
  function send(action, data) {
    post("streamlit:setComponentValue", {value: {action: action, data: data, timestamp: Date.now()}, dataType: "json"});
  }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function visNode(n) {
    var out = {id: n.id, label: n.label, size: n.size, shape: n.shape, color: n.color,
               font: {size: n.font}, kind: n.kind, members: n.members, hidden: !!hiddenKinds[n.kind]};
    if (n.x !== null && n.x !== undefined) { out.x = n.x; out.y = n.y; }
    return out;
  }
  function visEdge(e) {
    return {id: e.id, from: e.from, to: e.to, width: e.width, type: e.type, weight: e.weight,
            color: {color: e.color, opacity: e.type === "LINKED" ? 0.85 : 0.35},
            dashes: e.type === "MATCHES" || e.type === "HUB", hidden: !!hiddenTypes[e.type]};
  }
  function drawLegend(data) {
    var legend = document.getElementById("legend");
    legend.textContent = "";
    data.legend.forEach(function (k) {
      var item = legend.appendChild(el("span", undefined, "legend-item" + (hiddenKinds[k[0]] ? " off" : "")));
      item.dataset.kind = k[0];
      item.title = "Click to hide or show these nodes";
      var sw = item.appendChild(el("span", undefined, "sw sw-" + k[3]));
      sw.style.background = k[2];
      item.appendChild(document.createTextNode(k[1] + " (" + k[4] + ")" + (hiddenKinds[k[0]] ? " hidden" : "")));
      item.addEventListener("click", function () {
        hiddenKinds[k[0]] = !hiddenKinds[k[0]];
        nodes.update(nodes.get({filter: function (n) { return n.kind === k[0]; }})
                     .map(function (n) { return {id: n.id, hidden: hiddenKinds[k[0]]}; }));
        drawLegend(lastArgs.data);
        count();
      });
    });
    var kinds = document.getElementById("edgekinds");
    kinds.textContent = "";
    kinds.appendChild(document.createTextNode("edges: "));
    data.edge_legend.forEach(function (t) {
      var label = kinds.appendChild(el("label", undefined, "edge-kind"));
      label.dataset.type = t[0];
      var box = label.appendChild(el("input")); box.type = "checkbox"; box.checked = !hiddenTypes[t[0]];
      var sw = label.appendChild(el("span", " \u2014 ")); sw.style.color = t[1]; sw.style.fontWeight = "bold";
      label.appendChild(document.createTextNode(t[0] + " (" + t[2] + ")"));
      box.addEventListener("change", function () {
        hiddenTypes[t[0]] = !box.checked;
        edges.update(edges.get({filter: function (e) { return e.type === t[0]; }})
                     .map(function (e) { return {id: e.id, hidden: !box.checked}; }));
      });
    });
  }
  function sync(ds, items) {
    var ids = {};
    items.forEach(function (i) { ids[i.id] = true; });
    ds.remove(ds.getIds().filter(function (id) { return !ids[id]; }));
    ds.update(items);
  }
  function render(args) {
    var data = args.data;
    lastArgs = args;
    if (hiddenKinds === null) {  // crowded kinds start hidden; the legend shows them again
      hiddenKinds = {};
      (data.hidden_kinds || []).forEach(function (k) { hiddenKinds[k] = true; });
    }
    document.getElementById("mynetwork").style.height = (args.height - 64) + "px";
    drawLegend(data);
    var nodeItems = data.nodes.map(visNode), edgeItems = data.edges.map(visEdge);
    if (network === null) {
      nodes = new vis.DataSet(nodeItems);
      edges = new vis.DataSet(edgeItems);
      network = new vis.Network(document.getElementById("mynetwork"), {nodes: nodes, edges: edges}, {
        // No physics, and no automatic fit when data change (vis fits after "stabilizing").
        physics: {enabled: false, stabilization: {enabled: false, fit: false}},
        layout: {improvedLayout: false},
        interaction: {hover: true, hideEdgesOnDrag: edgeItems.length > 3000, tooltipDelay: 150, multiselect: false},
        nodes: {borderWidth: 1, font: {face: "system-ui, sans-serif", strokeWidth: 3, strokeColor: "#ffffff"},
                scaling: {label: {drawThreshold: 7}}},
        edges: {smooth: false, selectionWidth: 3, hoverWidth: 1.5}
      });
      window.canvasNetwork = network;
      // Streamlit resizes the frame while it redraws the page; vis-network rescales the view
      // with the frame's width, so the zoom the investigator chose is put back instead.
      var save = function () { camera = {scale: network.getScale(), position: network.getViewPosition()}; };
      network.on("zoom", save);
      network.on("dragEnd", save);
      network.on("resize", function () {
        if (camera) setTimeout(function () { network.moveTo({scale: camera.scale, position: camera.position, animation: false}); }, 0);
      });
      network.on("click", function (p) {
        if (p.nodes.length) send("select_node", {type: "tap", target_id: String(p.nodes[0]), target_group: "nodes"});
        else if (p.edges.length) send("select_edge", {type: "tap", target_id: String(p.edges[0]), target_group: "edges"});
      });
      network.on("doubleClick", function (p) {
        if (p.nodes.length) send("expand", {node_ids: [String(p.nodes[0])]});
      });
      network.on("afterDrawing", function () {
        document.body.dataset.drawn = String(nodes.length);
        window.canvasReady = true;
      });
    } else {
      sync(nodes, nodeItems);
      sync(edges, edgeItems);
    }
    if (data.fit !== fitToken) {  // fit what is shown, not the crowded kinds hidden outside it
      fitToken = data.fit;
      network.fit({nodes: nodes.getIds({filter: function (n) { return !n.hidden; }}), animation: false});
      camera = {scale: network.getScale(), position: network.getViewPosition()};
    }
    if (data.selected && nodes.get(data.selected)) network.selectNodes([data.selected]);
    count();
    window.canvasData = data;
    post("streamlit:setFrameHeight", {height: args.height});
  }
  function shownEdges() {
    return edges.get({filter: function (e) {
      if (e.hidden) return false;
      var a = nodes.get(e.from), b = nodes.get(e.to);
      return a && b && !a.hidden && !b.hidden;
    }});
  }
  function count() {
    document.body.dataset.nodes = String(nodes.get({filter: function (n) { return !n.hidden; }}).length);
    document.body.dataset.edges = String(shownEdges().length);
  }
  // What the tests (and a curious investigator) can read: the drawn nodes and edges, the zoom.
  window.canvasView = function () {
    return {nodes: nodes ? nodes.get({filter: function (n) { return !n.hidden; }}) : [], edges: edges ? shownEdges() : [],
            scale: network ? network.getScale() : 0,
            positions: network ? network.getPositions() : {}};
  };
  // Where a node is drawn, in this frame's coordinates.
  window.canvasPoint = function (id) {
    var p = network.canvasToDOM(network.getPositions([id])[id]);
    var box = document.getElementById("mynetwork").getBoundingClientRect();
    return {x: box.left + p.x, y: box.top + p.y};
  };
  function segmentGap(px, py, a, b) {
    var dx = b.x - a.x, dy = b.y - a.y, len = dx * dx + dy * dy;
    var t = len ? Math.max(0, Math.min(1, ((px - a.x) * dx + (py - a.y) * dy) / len)) : 0;
    return Math.hypot(px - (a.x + t * dx), py - (a.y + t * dy));
  }
  // The edge of ``type`` whose midpoint is drawn farthest from any node and any other edge
  // (a click there cannot hit something else), and that point.
  window.canvasLoneEdge = function (type) {
    var pos = network.getPositions(), shown = nodes.get({filter: function (n) { return !n.hidden; }});
    var all = shownEdges(), best = null, bestGap = -1;
    all.filter(function (e) { return e.type === type; }).slice(0, 400).forEach(function (e) {
      var mx = (pos[e.from].x + pos[e.to].x) / 2, my = (pos[e.from].y + pos[e.to].y) / 2, gap = Infinity;
      shown.forEach(function (n) { gap = Math.min(gap, Math.hypot(pos[n.id].x - mx, pos[n.id].y - my) - n.size); });
      all.forEach(function (o) { if (o.id !== e.id) gap = Math.min(gap, segmentGap(mx, my, pos[o.from], pos[o.to])); });
      var dom = network.canvasToDOM({x: mx, y: my}), box = document.getElementById("mynetwork").getBoundingClientRect();
      var inside = dom.x > 10 && dom.y > 10 && dom.x < box.width - 10 && dom.y < box.height - 10;
      if (inside && gap > bestGap) { bestGap = gap; best = {id: e.id, x: box.left + dom.x, y: box.top + dom.y}; }
    });
    return best;
  };
  // The node of ``kinds`` drawn farthest from any other (a click on it cannot hit another).
  window.canvasLoneNode = function (kinds) {
    var pos = network.getPositions(), shown = nodes.get({filter: function (n) { return !n.hidden; }});
    var best = null, bestGap = -1;
    shown.forEach(function (n) {
      if (kinds.indexOf(n.kind) < 0) return;
      var gap = Infinity;
      shown.forEach(function (m) {
        if (m.id === n.id) return;
        var dx = pos[m.id].x - pos[n.id].x, dy = pos[m.id].y - pos[n.id].y;
        gap = Math.min(gap, Math.sqrt(dx * dx + dy * dy) - m.size - n.size);
      });
      var dom = network.canvasToDOM(pos[n.id]), box = document.getElementById("mynetwork").getBoundingClientRect();
      var inside = dom.x > 10 && dom.y > 10 && dom.x < box.width - 10 && dom.y < box.height - 10;
      if (inside && gap > bestGap) { bestGap = gap; best = n.id; }
    });
    return best;
  };
  window.addEventListener("message", function (event) {
    if (event.data && event.data.type === "streamlit:render") render(event.data.args);
  });
  window.addEventListener("resize", function () { if (network) network.redraw(); });
  post("streamlit:componentReady", {apiVersion: 1});
})();
