// mutascope report: interactive tile maps drawn from the embedded payload.
// Vanilla JS, no network: everything it needs is in <script id="mutascope-data">.
// Only the selected matrix is drawn; each probe x kind id array is decoded on
// first use and cached, so large screens open quickly.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("mutascope-data").textContent);
  var CLASSES = D.classes; // [[label, colour], ...]: not mutated, silent, max-only, min-only, both, other
  var NOT_MUTATED = 0, SILENT = 1, MAX_ONLY = 2, MIN_ONLY = 3, BOTH = 4, OTHER = 5;
  var NONE = D.none, UNKNOWN = D.unknown;
  var hasMaxMin = D.kinds.indexOf("max") >= 0 && D.kinds.indexOf("min") >= 0;
  var cache = {};
  var state = { probe: 0, matrix: 0, mode: hasMaxMin ? "paper" : D.kinds[0], tile: -1, cell: 10 };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  // Phenotype ids of every tile for one probe and kind (little-endian, as written).
  function ids(p, kind) {
    var key = p + "\u0000" + kind, a = cache[key];
    if (a) return a;
    var bin = atob(D.ids[D.probes[p].id][kind]), n = bin.length, buf = new Uint8Array(n);
    for (var i = 0; i < n; i++) buf[i] = bin.charCodeAt(i);
    a = D.width === 2 ? new Uint16Array(buf.buffer) : new Uint32Array(buf.buffer);
    cache[key] = a;
    return a;
  }
  function isNsm(v) { return v !== NONE && v !== 0; }

  function tileClass(p, t) {
    if (state.mode !== "paper") {
      var v = ids(p, state.mode)[t];
      if (v === NONE) return NOT_MUTATED;
      if (v === 0) return SILENT;
      return state.mode === "max" ? MAX_ONLY : state.mode === "min" ? MIN_ONLY : OTHER;
    }
    var mutated = false, mx = false, mn = false, other = false;
    for (var k = 0; k < D.kinds.length; k++) {
      var kind = D.kinds[k], x = ids(p, kind)[t];
      if (x === NONE) continue;
      mutated = true;
      if (x !== 0) { if (kind === "max") mx = true; else if (kind === "min") mn = true; else other = true; }
    }
    if (mx && mn) return BOTH;
    if (mx) return MAX_ONLY;
    if (mn) return MIN_ONLY;
    if (other) return OTHER;
    return mutated ? SILENT : NOT_MUTATED;
  }

  // -- matrix list and overview ---------------------------------------------
  function matrixCounts(p, m) {
    var nsm = 0, n = 0, probe = D.probes[p].id;
    for (var k = 0; k < D.kinds.length; k++) {
      nsm += D.counts[probe][D.kinds[k]][m];
      n += D.mutants[probe][D.kinds[k]][m];
    }
    return [nsm, n];
  }
  function label(m) { var x = D.matrices[m]; return "L" + x.layer + " " + x.matrix; }

  function fillMatrixSelect() {
    var sel = $("matrix-select"), keep = state.matrix;
    sel.textContent = "";
    for (var m = 0; m < D.matrices.length; m++) {
      var c = matrixCounts(state.probe, m);
      sel.appendChild(el("option", { value: String(m) }, label(m) + "  (" + c[0] + " / " + c[1] + " NSM)"));
    }
    sel.value = String(keep);
  }

  function cmap(rate) {
    var lut = D.cmap, x = Math.max(0, Math.min(1, rate)) * (lut.length - 1);
    return lut[Math.round(x)];
  }

  function buildOverview() {
    var table = $("overview"), layers = [], names = [], where = {};
    D.matrices.forEach(function (x, m) {
      if (layers.indexOf(x.layer) < 0) layers.push(x.layer);
      if (names.indexOf(x.matrix) < 0) names.push(x.matrix);
      where[x.layer + "/" + x.matrix] = m;
    });
    names.sort(function (a, b) { return D.matrix_order.indexOf(a) - D.matrix_order.indexOf(b); });
    table.textContent = "";
    var head = el("tr");
    head.appendChild(el("th", null, "layer"));
    names.forEach(function (n) { head.appendChild(el("th", null, n)); });
    table.appendChild(head);
    layers.forEach(function (layer) {
      var tr = el("tr");
      tr.appendChild(el("th", null, String(layer)));
      names.forEach(function (n) {
        var m = where[layer + "/" + n];
        var td = el("td", { "class": m === undefined ? "cell empty" : "cell" });
        if (m !== undefined) {
          td.dataset.matrix = String(m);
          td.addEventListener("click", function () { selectMatrix(m); });
        }
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    paintOverview();
  }

  function paintOverview() {
    var cells = $("overview").querySelectorAll("td.cell[data-matrix]");
    for (var i = 0; i < cells.length; i++) {
      var td = cells[i], m = Number(td.dataset.matrix), c = matrixCounts(state.probe, m);
      var rate = c[1] ? c[0] / c[1] : 0;
      td.style.background = c[1] ? cmap(rate) : "#fff";
      td.style.color = rate > 0.6 ? "#000" : "#fff";
      td.textContent = c[1] ? Math.round(100 * rate) + "%" : "";
      td.title = label(m) + ": " + c[0] + " NSM of " + c[1] + " mutants";
      td.classList.toggle("sel", m === state.matrix);
    }
  }

  // -- the tile map -----------------------------------------------------------
  function draw() {
    var x = D.matrices[state.matrix], canvas = $("tilemap");
    var maxW = Math.max(240, Math.min(900, ($("mapbox").parentNode.clientWidth || 900) - 40));
    var cell = Math.max(2, Math.min(28, Math.floor(maxW / x.cols), Math.floor(900 / x.rows)));
    state.cell = cell;
    canvas.width = x.cols * cell;
    canvas.height = x.rows * cell;
    canvas.dataset.cell = String(cell);
    canvas.dataset.rows = String(x.rows);
    canvas.dataset.cols = String(x.cols);
    canvas.dataset.layer = String(x.layer);
    canvas.dataset.matrix = x.matrix;
    var ctx = canvas.getContext("2d"), gap = cell >= 6 ? 1 : 0;
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    var present = {};
    for (var r = 0; r < x.rows; r++) {
      for (var c = 0; c < x.cols; c++) {
        var cls = tileClass(state.probe, x.offset + r * x.cols + c);
        present[cls] = true;
        if (cls === NOT_MUTATED) continue;
        ctx.fillStyle = CLASSES[cls][1];
        ctx.fillRect(c * cell, r * cell, cell - gap, cell - gap);
      }
    }
    if (state.tile >= 0) {
      var t = state.tile - x.offset, tr = Math.floor(t / x.cols), tc = t % x.cols;
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 2;
      ctx.strokeRect(tc * cell + 1, tr * cell + 1, Math.max(cell - 2, 1), Math.max(cell - 2, 1));
    }
    var c2 = matrixCounts(state.probe, state.matrix);
    $("map-title").textContent = "Layer " + x.layer + " " + x.matrix + ": " + x.rows + " x " + x.cols +
      " tiles of " + D.tile[0] + " x " + D.tile[1] + " (matrix " + x.height + " x " + x.width +
      "), " + c2[0] + " NSM of " + c2[1] + " mutants for " + D.probes[state.probe].id;
    drawLegend(present);
  }

  function drawLegend(present) {
    var box = $("legend");
    box.textContent = "";
    var order = state.mode === "paper" ? [MAX_ONLY, MIN_ONLY, BOTH, OTHER, SILENT, NOT_MUTATED] :
      [state.mode === "max" ? MAX_ONLY : state.mode === "min" ? MIN_ONLY : OTHER, SILENT, NOT_MUTATED];
    order.forEach(function (cls) {
      if (cls === OTHER && !present[OTHER] && state.mode === "paper") return;
      if (cls === NOT_MUTATED && !present[NOT_MUTATED]) return;
      var sw = el("span", { "class": "sw" });
      sw.style.background = CLASSES[cls][1];
      box.appendChild(sw);
      var name = CLASSES[cls][0];
      if (state.mode !== "paper" && cls !== SILENT && cls !== NOT_MUTATED) name = "NSM (" + state.mode + ")";
      box.appendChild(document.createTextNode(name));
    });
  }

  function tileAt(ev) {
    var canvas = $("tilemap"), rect = canvas.getBoundingClientRect(), x = D.matrices[state.matrix];
    var sx = canvas.width / rect.width, sy = canvas.height / rect.height;
    var c = Math.floor((ev.clientX - rect.left) * sx / state.cell), r = Math.floor((ev.clientY - rect.top) * sy / state.cell);
    if (r < 0 || c < 0 || r >= x.rows || c >= x.cols) return null;
    return { r: r, c: c, t: x.offset + r * x.cols + c };
  }

  function bounds(x, r, c) {
    var r0 = r * D.tile[0], c0 = c * D.tile[1];
    return "elements [" + r0 + ":" + Math.min(r0 + D.tile[0], x.height) + ", " + c0 + ":" + Math.min(c0 + D.tile[1], x.width) + "]";
  }

  function describe(v) { return v === NONE ? "not mutated" : v === 0 ? "silent" : v === UNKNOWN ? "NSM" : "NSM #" + v; }

  function showTooltip(ev) {
    var hit = tileAt(ev), tip = $("tooltip");
    if (!hit) { tip.style.display = "none"; return; }
    var x = D.matrices[state.matrix], lines = [];
    lines.push("L" + x.layer + " " + x.matrix + " tile (" + hit.r + ", " + hit.c + ")");
    lines.push(bounds(x, hit.r, hit.c));
    D.kinds.forEach(function (kind) {
      var v = ids(state.probe, kind)[hit.t], across = 0, mutated = 0;
      for (var p = 0; p < D.probes.length; p++) {
        var w = ids(p, kind)[hit.t];
        if (w !== NONE) mutated++;
        if (isNsm(w)) across++;
      }
      lines.push(kind + ": " + describe(v) + (mutated ? "; NSM in " + across + " of " + mutated + " probes" : ""));
    });
    tip.textContent = "";
    lines.forEach(function (l, i) { if (i) tip.appendChild(el("br")); tip.appendChild(document.createTextNode(l)); });
    tip.style.display = "block";
    tip.style.left = (ev.clientX + 14) + "px";
    tip.style.top = (ev.clientY + 14) + "px";
  }

  function textOf(p, v) {
    var rec = D.texts[D.probes[p].id][String(v)];
    return rec || null;
  }

  function showDetail(hit) {
    var x = D.matrices[state.matrix], probe = D.probes[state.probe], box = $("detail");
    state.tile = hit.t;
    box.textContent = "";
    box.dataset.tile = hit.r + "," + hit.c;
    box.appendChild(el("h3", null, "Layer " + x.layer + " " + x.matrix + " tile (" + hit.r + ", " + hit.c + "), probe " + probe.id));
    box.appendChild(el("div", { "class": "meta" }, bounds(x, hit.r, hit.c)));
    var wt = el("div", { "class": "mutant wt" });
    wt.appendChild(el("h4", null, probe.kind === "choice" ? "Unmutated answers (WT)" : "Unmutated output (WT)"));
    wt.appendChild(el("pre", { "class": "out", "data-kind": "wt" }, probe.wt));
    box.appendChild(wt);
    D.kinds.forEach(function (kind) {
      var v = ids(state.probe, kind)[hit.t];
      if (v === NONE) return;
      var div = el("div", { "class": "mutant" });
      div.appendChild(el("h4", null, kind + " mutant: " + (v === 0 ? "silent (output identical to WT)" : "NSM")));
      if (v !== 0) {
        var rec = v === UNKNOWN ? null : textOf(state.probe, v);
        var meta = [];
        if (v !== UNKNOWN) meta.push("phenotype #" + v);
        if (rec && rec[1] !== null) meta.push("diverges at token " + rec[1]);
        if (rec && rec[2] !== null) meta.push("similarity to WT " + rec[2].toFixed(3));
        if (rec && rec[4] !== null) meta.push("severity " + rec[4]);
        if (rec && rec[3] !== null) meta.push("category " + rec[3]);
        if (meta.length) div.appendChild(el("div", { "class": "meta" }, meta.join(" \u00b7 ")));
        div.appendChild(el("pre", { "class": "out mutant-output", "data-kind": kind },
          rec ? rec[0] : "(this output is not embedded: the report keeps the " + D.max_texts +
            " most frequent distinct outputs per probe; read it from the results file)"));
      }
      box.appendChild(div);
    });
    draw();
  }

  // -- selection ----------------------------------------------------------------
  function selectMatrix(m) {
    state.matrix = m;
    state.tile = -1;
    $("matrix-select").value = String(m);
    $("detail").textContent = "";
    $("detail").appendChild(el("p", { "class": "note" }, "Click a tile to see its mutants' outputs."));
    paintOverview();
    draw();
  }

  function init() {
    var ps = $("probe-select");
    D.probes.forEach(function (p, i) {
      ps.appendChild(el("option", { value: String(i) }, p.id + (p.kind === "choice" ? " (" + p.n_questions + " questions)" : "")));
    });
    var ms = $("mode-select");
    if (hasMaxMin) ms.appendChild(el("option", { value: "paper" }, "max / min (paper colouring)"));
    D.kinds.forEach(function (k) { ms.appendChild(el("option", { value: k }, "NSM under " + k)); });
    ms.value = state.mode;
    // start on the matrix with most NSMs over all probes and kinds
    var best = 0, bestN = -1;
    for (var m = 0; m < D.matrices.length; m++) {
      var n = 0;
      for (var p = 0; p < D.probes.length; p++) n += matrixCounts(p, m)[0];
      if (n > bestN) { best = m; bestN = n; }
    }
    state.matrix = best;
    fillMatrixSelect();
    buildOverview();
    ps.addEventListener("change", function () {
      state.probe = Number(ps.value);
      fillMatrixSelect();
      paintOverview();
      if (state.tile >= 0) {
        var x = D.matrices[state.matrix], t = state.tile - x.offset;
        showDetail({ r: Math.floor(t / x.cols), c: t % x.cols, t: state.tile });
      } else draw();
    });
    $("matrix-select").addEventListener("change", function () { selectMatrix(Number($("matrix-select").value)); });
    ms.addEventListener("change", function () { state.mode = ms.value; draw(); });
    var canvas = $("tilemap");
    canvas.addEventListener("mousemove", showTooltip);
    canvas.addEventListener("mouseleave", function () { $("tooltip").style.display = "none"; });
    canvas.addEventListener("click", function (ev) { var hit = tileAt(ev); if (hit) showDetail(hit); });
    window.addEventListener("resize", draw);
    selectMatrix(best);
    sortableTables();
    document.body.dataset.ready = "1";
    window.mutascopeReady = performance.now();
  }

  // Click a statistics table header to sort by that column (numbers numerically).
  function sortableTables() {
    var tables = document.querySelectorAll("table.stats");
    for (var i = 0; i < tables.length; i++) (function (table) {
      var heads = table.querySelectorAll("thead th");
      for (var j = 0; j < heads.length; j++) (function (th, col) {
        th.addEventListener("click", function () {
          var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
          var dir = th.dataset.dir === "asc" ? -1 : 1;
          th.dataset.dir = dir === 1 ? "asc" : "desc";
          rows.sort(function (a, b) {
            var x = a.cells[col].dataset.v !== undefined ? a.cells[col].dataset.v : a.cells[col].textContent;
            var y = b.cells[col].dataset.v !== undefined ? b.cells[col].dataset.v : b.cells[col].textContent;
            var nx = parseFloat(x), ny = parseFloat(y);
            if (!isNaN(nx) && !isNaN(ny)) return dir * (nx - ny);
            return dir * String(x).localeCompare(String(y));
          });
          rows.forEach(function (r) { body.appendChild(r); });
        });
      })(heads[j], j);
    })(tables[i]);
  }

  if (D.matrices.length) init();
  else { document.body.dataset.ready = "1"; window.mutascopeReady = performance.now(); }
})();
