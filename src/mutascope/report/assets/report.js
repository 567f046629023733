// mutascope report: interactive tile maps drawn from the embedded payload.
// Vanilla JS, no network: everything it needs is in <script id="mutascope-data">.
// Only the selected matrix is drawn; each probe x kind id (and effect) array is
// decoded on first use and cached, so large screens open quickly.
// Colour modes: "paper" (max/min NSM classes), a kind (NSM under that kind), or
// "effect:KIND" (the effect size on a log scale shared by all matrices of a probe).
// Beside the map, two marginal strips summarise each tile row and column in the
// current mode (NSM rate, or median effect); super-weight axes are marked.
// An adaptive screen's unmeasured tiles carry an estimated effect (D.estimated): they are
// drawn lighter and hatched, with their own legend entry, never as measured tiles.
// Tiles refined by `mutascope zoom` are drawn at the resolution of single weights
// in their own section (D.zoom), reachable from a zoomed tile's detail.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("mutascope-data").textContent);
  var CLASSES = D.classes; // [[label, colour], ...]: not mutated, silent, max-only, min-only, both, other
  var NOT_MUTATED = 0, SILENT = 1, MAX_ONLY = 2, MIN_ONLY = 3, BOTH = 4, OTHER = 5;
  var NONE = D.none, UNKNOWN = D.unknown, UNFILLED = D.unfilled;
  var hasMaxMin = D.kinds.indexOf("max") >= 0 && D.kinds.indexOf("min") >= 0;
  var EFFECT_KINDS = D.kinds.filter(function (k) {
    return D.probes.some(function (p) { return D.effects[p.id] && D.effects[p.id][k]; });
  });
  var MARK_COLOUR = "#000000";
  var cache = {}, fcache = {}, ecache = {}, HALF = null;
  var ESTIMATED = D.estimated || {}, HATCH = "#555555";
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

  // Effect sizes of every tile for one probe and kind: float16 (little-endian) decoded
  // through a 65536-entry table; null when the screen recorded none.
  function halfTable() {
    if (HALF) return HALF;
    HALF = new Float32Array(65536);
    for (var h = 0; h < 65536; h++) {
      var sign = (h & 0x8000) ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
      HALF[h] = e === 0 ? sign * f * Math.pow(2, -24) : e === 31 ? (f ? NaN : sign * Infinity) :
        sign * (1 + f / 1024) * Math.pow(2, e - 15);
    }
    return HALF;
  }
  function effects(p, kind) {
    var probe = D.probes[p].id;
    return halfArray(D.effects[probe] && D.effects[probe][kind], p + "\u0000" + kind, fcache);
  }
  // The estimated effects of an adaptive screen's unmeasured tiles (NaN where measured).
  function estimates(p, kind) {
    var probe = D.probes[p].id;
    return halfArray(ESTIMATED[probe] && ESTIMATED[probe][kind], p + "\u0000" + kind, ecache);
  }
  function estimatedAt(p, kind, t) { var a = estimates(p, kind); return a ? a[t] : NaN; }
  function halfArray(enc, key, store) {
    if (!enc) return null;
    var a = store[key];
    if (a) return a;
    var bin = atob(enc), n = bin.length, buf = new Uint8Array(n);
    for (var i = 0; i < n; i++) buf[i] = bin.charCodeAt(i);
    var u = new Uint16Array(buf.buffer), table = halfTable();
    a = new Float32Array(u.length);
    for (var j = 0; j < u.length; j++) a[j] = table[u[j]];
    store[key] = a;
    return a;
  }
  function effectAt(p, kind, t) { var a = effects(p, kind); return a ? a[t] : NaN; }
  function isEffectMode() { return state.mode.indexOf("effect:") === 0; }
  function modeKind() { return isEffectMode() ? state.mode.slice(7) : state.mode; }
  function fmtEffect(v) {
    if (v !== v) return "not measured";
    var a = Math.abs(v), text = a >= 1000 ? v.toFixed(0) : a >= 0.01 || a === 0 ? v.toPrecision(3) : v.toExponential(1);
    return text + " " + D.effect_unit;
  }
  // Log colour of an effect on the probe's shared scale [floor, top]; zero and
  // negative effects, and unmeasured ones, have their own colours.
  function effectColour(p, v) {
    if (v !== v) return D.effect_colours.unmeasured;
    if (v <= 0) return D.effect_colours.nonpositive;
    var sc = D.effect_scale[D.probes[p].id];
    if (!sc) return D.effect_colours.unmeasured;
    var lo = Math.log(sc[0]), hi = Math.log(sc[1]);
    return cmap((Math.log(Math.max(v, sc[0])) - lo) / (hi - lo));
  }
  // An estimated tile: its colour halfway to white, under dark diagonal hatching.
  function lighten(hex) {
    var n = parseInt(hex.slice(1), 16), out = "#";
    [16, 8, 0].forEach(function (sh) {
      var v = (n >> sh) & 255;
      out += ("0" + Math.round(v + (255 - v) * 0.55).toString(16)).slice(-2);
    });
    return out;
  }
  function hatch(ctx, x0, y0, w, h) {
    ctx.save();
    ctx.beginPath();
    ctx.rect(x0, y0, w, h);
    ctx.clip();
    ctx.strokeStyle = HATCH;
    ctx.lineWidth = 1;
    ctx.beginPath();
    var step = Math.max(3, Math.floor(Math.min(w, h) / 3));
    for (var d = -h; d < w; d += step) { ctx.moveTo(x0 + d, y0 + h); ctx.lineTo(x0 + d + h, y0); }
    ctx.stroke();
    ctx.restore();
  }
  // Whether tile t of probe p has an estimate under the kinds shown (an unmeasured adaptive tile).
  function isEstimated(p, t, kind) {
    var kinds = kind === "paper" ? D.kinds : [kind];
    for (var k = 0; k < kinds.length; k++) {
      var e = estimatedAt(p, kinds[k], t);
      if (e === e) return true;
    }
    return false;
  }
  function median(values) {
    if (!values.length) return NaN;
    values.sort(function (a, b) { return a - b; });
    var h = values.length >> 1;
    return values.length % 2 ? values[h] : (values[h - 1] + values[h]) / 2;
  }
  function marksOf(m) { return (D.marks || []).filter(function (k) { return k.m === m; }); }

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
    var present = {}, effectMode = isEffectMode(), kind = modeKind(), nEstimated = 0;
    canvas.dataset.mode = state.mode;
    for (var r = 0; r < x.rows; r++) {
      for (var c = 0; c < x.cols; c++) {
        var t = x.offset + r * x.cols + c;
        if (effectMode) {
          if (ids(state.probe, kind)[t] === NONE) {
            var est = estimatedAt(state.probe, kind, t);
            if (est !== est) continue;
            ctx.fillStyle = lighten(effectColour(state.probe, est));  // estimated: lighter, hatched
            ctx.fillRect(c * cell, r * cell, cell - gap, cell - gap);
            hatch(ctx, c * cell, r * cell, cell - gap, cell - gap);
            nEstimated++;
            continue;
          }
          ctx.fillStyle = effectColour(state.probe, effectAt(state.probe, kind, t));
        } else {
          var cls = tileClass(state.probe, t);
          if (cls === NOT_MUTATED && isEstimated(state.probe, t, state.mode)) {
            hatch(ctx, c * cell, r * cell, cell - gap, cell - gap);  // unmeasured: no call, an estimate only
            nEstimated++;
            continue;
          }
          present[cls] = true;
          if (cls === NOT_MUTATED) continue;
          ctx.fillStyle = CLASSES[cls][1];
        }
        ctx.fillRect(c * cell, r * cell, cell - gap, cell - gap);
      }
    }
    canvas.dataset.estimated = String(nEstimated);
    var marks = marksOf(state.matrix);
    canvas.dataset.marks = marks.map(function (k) { return k.axis + ":" + k.index; }).join(";");
    ctx.save();
    ctx.setLineDash([Math.max(2, cell / 3), Math.max(2, cell / 4)]);
    ctx.strokeStyle = MARK_COLOUR;
    ctx.lineWidth = 2;
    marks.forEach(function (k) {
      if (k.axis === "col" && k.index < x.cols) ctx.strokeRect(k.index * cell + 1, 1, cell - 2, x.rows * cell - 2);
      if (k.axis === "row" && k.index < x.rows) ctx.strokeRect(1, k.index * cell + 1, x.cols * cell - 2, cell - 2);
    });
    ctx.restore();
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
    if (effectMode) drawEffectLegend(); else drawLegend(present);
    if (nEstimated) estimatedLegend(effectMode);
    drawStrips(x, cell, marks);
    showNotice();
  }

  // -- marginal strips: one value per tile row (right) and column (below) -------
  function axisValue(x, axis, i) {
    var kind = modeKind(), n = axis === "row" ? x.cols : x.rows, values = [], nsm = 0, mutated = 0;
    var kinds = state.mode === "paper" ? D.kinds : [kind];
    for (var j = 0; j < n; j++) {
      var t = x.offset + (axis === "row" ? i * x.cols + j : j * x.cols + i);
      kinds.forEach(function (k) {
        var v = ids(state.probe, k)[t];
        if (v === NONE) return;
        mutated++;
        if (v !== 0) nsm++;
        if (isEffectMode()) { var e = effectAt(state.probe, k, t); if (e === e) values.push(e); }
      });
    }
    if (isEffectMode()) return { value: median(values), n: values.length, effect: true };
    return { value: mutated ? nsm / mutated : NaN, n: mutated, nsm: nsm, effect: false };
  }
  function stripColour(a) {
    if (a.effect) return a.n ? effectColour(state.probe, a.value) : "#FFFFFF";
    return a.n ? cmap(a.value) : "#FFFFFF";
  }
  function drawStrips(x, cell, marks) {
    var rows = $("strip-rows"), cols = $("strip-cols"), w = Math.max(8, Math.min(cell, 16));
    rows.width = w; rows.height = x.rows * cell;
    cols.width = x.cols * cell; cols.height = w;
    rows.dataset.cell = cols.dataset.cell = String(cell);
    var rc = rows.getContext("2d"), cc = cols.getContext("2d");
    rc.fillStyle = cc.fillStyle = "#FFFFFF";
    rc.fillRect(0, 0, rows.width, rows.height);
    cc.fillRect(0, 0, cols.width, cols.height);
    for (var r = 0; r < x.rows; r++) { rc.fillStyle = stripColour(axisValue(x, "row", r)); rc.fillRect(0, r * cell, w, cell); }
    for (var c = 0; c < x.cols; c++) { cc.fillStyle = stripColour(axisValue(x, "col", c)); cc.fillRect(c * cell, 0, cell, w); }
    marks.forEach(function (k) {  // a black wedge at each marked axis
      var ctx = k.axis === "row" ? rc : cc, mid = (k.index + 0.5) * cell, s = Math.max(3, w / 2);
      ctx.fillStyle = MARK_COLOUR;
      ctx.beginPath();
      if (k.axis === "row") { ctx.moveTo(0, mid - s); ctx.lineTo(s, mid); ctx.lineTo(0, mid + s); }
      else { ctx.moveTo(mid - s, 0); ctx.lineTo(mid, s); ctx.lineTo(mid + s, 0); }
      ctx.closePath();
      ctx.fill();
    });
    rows.dataset.label = cols.dataset.label = isEffectMode() ? "median effect" : "NSM rate";
  }
  function stripTooltip(ev, axis) {
    var canvas = $(axis === "row" ? "strip-rows" : "strip-cols"), rect = canvas.getBoundingClientRect();
    var x = D.matrices[state.matrix], tip = $("tooltip");
    var pos = axis === "row" ? (ev.clientY - rect.top) * canvas.height / rect.height : (ev.clientX - rect.left) * canvas.width / rect.width;
    var i = Math.floor(pos / state.cell);
    if (i < 0 || i >= (axis === "row" ? x.rows : x.cols)) { tip.style.display = "none"; return; }
    var a = axisValue(x, axis, i), lines = [];
    lines.push("L" + x.layer + " " + x.matrix + " tile " + (axis === "row" ? "row " : "column ") + i);
    lines.push(a.effect ? "median effect (" + modeKind() + "): " + fmtEffect(a.value) + " over " + a.n + " tiles" :
      "NSM rate: " + (a.n ? (100 * a.value).toFixed(0) + "% (" + a.nsm + " of " + a.n + ")" : "not mutated"));
    marksOf(state.matrix).forEach(function (k) { if (k.axis === axis && k.index === i) lines.push("super weights: " + k.reason); });
    tipLines(ev, lines);
  }

  // -- the saturation notice ----------------------------------------------------
  function showNotice() {
    var box = $("saturation-notice"), probe = D.probes[state.probe].id;
    var flag = D.saturated[probe] ? D.saturated[probe][state.matrix] : "";
    box.textContent = "";
    if (!flag || isEffectMode()) { box.style.display = "none"; box.dataset.saturated = ""; return; }
    var rate = D.nsm_rate[probe][state.matrix];
    box.dataset.saturated = flag;
    box.style.display = "block";
    box.appendChild(document.createTextNode("The NSM call is saturated in this matrix: " + Math.round(100 * rate) +
      "% of its max/min mutants are NSMs for " + probe + " (" + (flag === "high" ? "above 90%" : "below 10%") +
      "), so the NSM map is nearly flat and says little. "));
    if (EFFECT_KINDS.length) {
      var b = el("button", { type: "button", id: "to-effect" }, "Show effect sizes");
      b.addEventListener("click", function () { setMode("effect:" + EFFECT_KINDS[0]); });
      box.appendChild(document.createTextNode("The effect size still ranks its tiles: "));
      box.appendChild(b);
    } else {
      box.appendChild(document.createTextNode("This screen has no effect sizes (reference engine)."));
    }
  }
  function setMode(mode) { state.mode = mode; $("mode-select").value = mode; draw(); }

  function drawEffectLegend() {
    var box = $("legend"), probe = D.probes[state.probe].id, sc = D.effect_scale[probe];
    box.textContent = "";
    if (sc) {
      var bar = el("canvas", { id: "colorbar", width: "160", height: "12" }), ctx = bar.getContext("2d");
      for (var i = 0; i < 160; i++) { ctx.fillStyle = cmap(i / 159); ctx.fillRect(i, 0, 1, 12); }
      box.appendChild(document.createTextNode(fmtEffect(sc[0]) + " "));
      box.appendChild(bar);
      box.appendChild(document.createTextNode(" " + fmtEffect(sc[1]) + " (" + D.effect_name + " under " + modeKind() +
        ", log scale shared by every matrix of " + probe + "; smaller positive effects drawn at the floor)"));
    }
    [["nonpositive", "\u2264 0 (WT output no less likely)"], ["unmeasured", "not measured"]].forEach(function (c) {
      var sw = el("span", { "class": "sw" });
      sw.style.background = D.effect_colours[c[0]];
      box.appendChild(sw);
      box.appendChild(document.createTextNode(c[1]));
    });
  }

  // The legend entry of estimated tiles: a hatched swatch, drawn like the tiles.
  function estimatedLegend(effectMode) {
    var box = $("legend"), sw = el("canvas", { "class": "sw estimated", width: "12", height: "12" });
    var ctx = sw.getContext("2d");
    ctx.fillStyle = effectMode ? lighten(cmap(0.5)) : "#ffffff";
    ctx.fillRect(0, 0, 12, 12);
    hatch(ctx, 0, 0, 12, 12);
    box.appendChild(sw);
    box.appendChild(el("span", { id: "legend-estimated" }, effectMode ?
      "estimated (not measured): an adaptive screen's surrogate, colour lightened" :
      "estimated (not measured): no call; its estimated effect is in the effect view"));
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

  function describe(v) {
    return v === NONE ? "not mutated" : v === 0 ? "silent" : v === UNKNOWN ? "NSM" :
      v === UNFILLED ? "NSM (output not filled)" : "NSM #" + v;
  }
  function tipLines(ev, lines) {
    var tip = $("tooltip");
    tip.textContent = "";
    lines.forEach(function (l, i) { if (i) tip.appendChild(el("br")); tip.appendChild(document.createTextNode(l)); });
    tip.style.display = "block";
    tip.style.left = (ev.clientX + 14) + "px";
    tip.style.top = (ev.clientY + 14) + "px";
  }

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
      var e = v === NONE ? NaN : effectAt(state.probe, kind, hit.t);
      var est = v === NONE ? estimatedAt(state.probe, kind, hit.t) : NaN;
      if (est === est) {
        lines.push(kind + ": not measured; estimated effect " + fmtEffect(est) + " (an estimate, not a measurement)");
        return;
      }
      lines.push(kind + ": " + describe(v) + (e === e ? ", effect " + fmtEffect(e) : "") +
        (mutated ? "; NSM in " + across + " of " + mutated + " probes" : ""));
    });
    marksOf(state.matrix).forEach(function (k) {
      if ((k.axis === "row" && k.index === hit.r) || (k.axis === "col" && k.index === hit.c))
        lines.push("super weights (" + k.axis + " " + k.index + "): " + k.reason);
    });
    tipLines(ev, lines);
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
    var zoomed = zoomEntriesAt(x.layer, x.matrix, hit.r, hit.c);
    if (zoomed.length) {
      var zp = el("p", { "class": "zoomed-link" }, "Zoomed (" + zoomed.map(function (i) {
        return D.zoom[i].kind + ", " + D.zoom[i].probe; }).join("; ") + "): ");
      var zb = el("button", { type: "button" }, "show its regions inside the tile");
      zb.addEventListener("click", function () { selectZoom(pickZoom(zoomed)); $("zoom").scrollIntoView(); });
      zp.appendChild(zb);
      box.appendChild(zp);
    }
    var wt = el("div", { "class": "mutant wt" });
    wt.appendChild(el("h4", null, probe.kind === "choice" ? "Unmutated answers (WT)" : "Unmutated output (WT)"));
    wt.appendChild(el("pre", { "class": "out", "data-kind": "wt" }, probe.wt));
    box.appendChild(wt);
    D.kinds.forEach(function (kind) {
      var v = ids(state.probe, kind)[hit.t];
      if (v === NONE) {
        var est = estimatedAt(state.probe, kind, hit.t);
        if (est === est) box.appendChild(el("div", { "class": "mutant estimated", "data-kind": kind }, kind +
          " mutant: not measured by the adaptive screen; estimated effect (" + D.effect_name + "): " + fmtEffect(est) +
          " (an estimate, not a measurement; `mutascope show` gives its interval)"));
        return;
      }
      var div = el("div", { "class": "mutant" }), e = effectAt(state.probe, kind, hit.t);
      div.appendChild(el("h4", null, kind + " mutant: " + (v === 0 ? "silent (output identical to WT)" :
        v === UNFILLED ? "NSM (output not filled)" : "NSM")));
      if (e === e) div.appendChild(el("div", { "class": "meta effect", "data-kind": kind }, "effect (" + D.effect_name + "): " + fmtEffect(e)));
      if (v === UNFILLED) {
        var site = x.layer + "." + x.matrix + "." + hit.r + "." + hit.c;
        div.appendChild(el("p", { "class": "unfilled", "data-kind": kind }, "This NSM's output is not filled: the " +
          "screen stored its call and effect size only (--outputs calls). Compute it with:"));
        div.appendChild(el("pre", { "class": "out fill-command", "data-kind": kind }, "mutascope fill " + D.file + " --site " + site));
      } else if (v !== 0) {
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
    EFFECT_KINDS.forEach(function (k) { ms.appendChild(el("option", { value: "effect:" + k }, "effect size under " + k + " (log)")); });
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
    ["row", "col"].forEach(function (axis) {
      var strip = $(axis === "row" ? "strip-rows" : "strip-cols");
      strip.addEventListener("mousemove", function (ev) { stripTooltip(ev, axis); });
      strip.addEventListener("mouseleave", function () { $("tooltip").style.display = "none"; });
    });
    canvas.addEventListener("click", function (ev) { var hit = tileAt(ev); if (hit) showDetail(hit); });
    window.addEventListener("resize", draw);
    selectMatrix(best);
    sortableTables();
    document.body.dataset.ready = "1";
    window.mutascopeReady = performance.now();
  }


  // -- zoomed tiles (mutascope zoom) -------------------------------------------
  // Each entry of D.zoom is one zoomed (site, kind, probe): the tile drawn at the
  // resolution of single weights, every screened region painted with its effect as a
  // share of the tile's (smaller regions over larger), followed regions outlined in
  // orange, the carrier (smallest region with at least half the effect) in black.
  var ZOOM = { entry: -1, cell: 1 };
  function zoomEntriesAt(layer, matrix, row, col) {
    var out = [];
    (D.zoom || []).forEach(function (z, i) {
      if (z.layer === layer && z.matrix === matrix && z.row === row && z.col === col) out.push(i);
    });
    return out;
  }
  function pickZoom(list) {  // the entry of the probe shown on the map, else the first
    var probe = D.probes[state.probe] ? D.probes[state.probe].id : null;
    for (var i = 0; i < list.length; i++) if (D.zoom[list[i]].probe === probe) return list[i];
    return list[0];
  }
  function zoomColour(z, drop) {
    if (!(z.parent > 0) || drop <= 0) return D.effect_colours.nonpositive;
    return cmap(Math.min(1, drop / z.parent));
  }
  function selectZoom(i) {
    ZOOM.entry = i;
    $("zoom-select").value = String(i);
    drawZoom();
  }
  function drawZoom() {
    var z = D.zoom[ZOOM.entry], canvas = $("zoommap"), t = z.tile;
    var cell = Math.max(1, Math.min(12, Math.floor(640 / t[3]), Math.floor(640 / t[2])));
    ZOOM.cell = cell;
    canvas.width = t[3] * cell;
    canvas.height = t[2] * cell;
    canvas.dataset.cell = String(cell);
    canvas.dataset.site = z.site;
    canvas.dataset.kind = z.kind;
    canvas.dataset.probe = z.probe;
    canvas.dataset.regions = String(z.regions.length);
    var ctx = canvas.getContext("2d");
    var order = z.regions.slice().sort(function (a, b) { return b[2] * b[3] - a[2] * a[3] || a[4] - b[4]; });
    order.forEach(function (r) {
      ctx.fillStyle = zoomColour(z, r[5]);
      ctx.fillRect((r[1] - t[1]) * cell, (r[0] - t[0]) * cell, r[3] * cell, r[2] * cell);
    });
    function outline(r, colour, width) {
      ctx.strokeStyle = colour;
      ctx.lineWidth = width;
      ctx.strokeRect((r[1] - t[1]) * cell + width / 2, (r[0] - t[0]) * cell + width / 2,
        Math.max(1, r[3] * cell - width), Math.max(1, r[2] * cell - width));
    }
    z.regions.forEach(function (r) { if (r[6] && r[4] > 0) outline(r, "#D55E00", 1); });
    if (z.verdict !== "none") outline(z.carrier, "#000000", 2);
    $("zoom-sentence").textContent = z.sentence;
    var box = $("zoom-legend");
    box.textContent = "";
    var bar = el("canvas", { width: "160", height: "12" }), bctx = bar.getContext("2d");
    for (var i = 0; i < 160; i++) { bctx.fillStyle = cmap(i / 159); bctx.fillRect(i, 0, 1, 12); }
    bar.style.verticalAlign = "middle";
    box.appendChild(document.createTextNode("0 "));
    box.appendChild(bar);
    box.appendChild(document.createTextNode(" 1 (" + D.effect_name + " as a share of the tile's " +
      fmtEffect(z.parent) + "; shares above 1 drawn at 1)"));
    var sw = el("span", { "class": "sw" });
    sw.style.background = D.effect_colours.nonpositive;
    box.appendChild(sw);
    box.appendChild(document.createTextNode("\u2264 0"));
  }
  function zoomTooltip(ev) {
    var z = D.zoom[ZOOM.entry], canvas = $("zoommap"), rect = canvas.getBoundingClientRect();
    var scale = canvas.width / rect.width, t = z.tile;
    var r = t[0] + Math.floor((ev.clientY - rect.top) * scale / ZOOM.cell);
    var c = t[1] + Math.floor((ev.clientX - rect.left) * scale / ZOOM.cell);
    var best = null;
    z.regions.forEach(function (x) {
      if (r >= x[0] && r < x[0] + x[2] && c >= x[1] && c < x[1] + x[3] && (!best || x[2] * x[3] < best[2] * best[3])) best = x;
    });
    if (!best) { $("tooltip").style.display = "none"; return; }
    var share = z.parent > 0 ? " (" + Math.round(100 * best[5] / z.parent) + " % of the tile's)" : "";
    tipLines(ev, ["weight [" + r + ", " + c + "] of L" + z.layer + " " + z.matrix,
      "smallest region screened holding it: [" + best[0] + ":" + (best[0] + best[2]) + "," + best[1] + ":" +
        (best[1] + best[3]) + "], " + best[2] * best[3] + " weights, level " + best[4],
      "effect " + fmtEffect(best[5]) + share + "; " + (best[7] ? "NSM" : "silent") +
        (best[6] ? "; followed" : "")]);
  }
  function initZoom() {
    if (!D.zoom || !D.zoom.length || !$("zoommap")) return;
    var sel = $("zoom-select");
    D.zoom.forEach(function (z, i) {
      sel.appendChild(el("option", { value: String(i) }, z.site + " " + z.kind + ", " + z.probe + ": " + z.verdict));
    });
    sel.addEventListener("change", function () { selectZoom(Number(sel.value)); });
    var canvas = $("zoommap");
    canvas.addEventListener("mousemove", zoomTooltip);
    canvas.addEventListener("mouseleave", function () { $("tooltip").style.display = "none"; });
    selectZoom(0);
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

  if (D.matrices.length) { initZoom(); init(); }
  else { initZoom(); document.body.dataset.ready = "1"; window.mutascopeReady = performance.now(); }
})();
