/* memscope dashboard renderer: plain JavaScript, no library, no network.
   Program strings (names, types, paths) only ever reach the page through
   textContent / setAttribute, never through HTML markup. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("memscope-data").textContent);
  var SVGNS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#2f6fdb", "#f08c00", "#2f9e44", "#d6336c", "#7048e8", "#0c8599",
    "#e8590c", "#5c940d", "#ae3ec9", "#1098ad", "#a61e4d", "#495057"];
  var OTHER_COLOR = "#adb5bd";

  // ---- helpers --------------------------------------------------------------------
  function fmtBytes(n) {
    if (n === null || n === undefined || n < 0) return "n/a";
    if (n < 1024) return Math.round(n) + " B";
    var u = ["KiB", "MiB", "GiB", "TiB"], i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
    return (n < 100 ? n.toFixed(1) : n.toFixed(0)) + " " + u[i];
  }
  function fmtNs(ns) {
    if (ns === null || ns === undefined || ns < 0) return "n/a";
    if (ns < 1000) return Math.round(ns) + " ns";
    var units = [["µs", 1e3], ["ms", 1e6], ["s", 1e9]];
    for (var i = 0; i < units.length; i++) {
      var v = ns / units[i][1];
      if (v < 1000 || i === units.length - 1) return (v < 1000 ? +v.toPrecision(3) : Math.round(v)) + " " + units[i][0];
    }
  }
  function fmtInt(n) { return (n === undefined || n === null) ? "n/a" : Number(n).toLocaleString("en-US"); }
  function el(tag, attrs, kids) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    if (kids) kids.forEach(function (c) { if (c !== null && c !== undefined) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return e;
  }
  function sv(tag, attrs, parent) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) for (var k in attrs) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    }
    if (parent) parent.appendChild(e);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function empty(node, msg) { clear(node); node.appendChild(el("div", { cls: "empty", text: msg })); }
  var tip = document.getElementById("tip");
  function showTip(ev, text) {
    tip.textContent = text; tip.hidden = false;
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    if (x + w > window.innerWidth - 8) x = ev.clientX - w - 14;
    if (y + h > window.innerHeight - 8) y = ev.clientY - h - 14;
    tip.style.left = Math.max(4, x) + "px"; tip.style.top = Math.max(4, y) + "px";
  }
  function hideTip() { tip.hidden = true; }
  function tipOn(node, textf) {
    node.addEventListener("mousemove", function (ev) { showTip(ev, typeof textf === "function" ? textf(ev) : textf); });
    node.addEventListener("mouseleave", hideTip);
  }
  function niceTicks(lo, hi, n) {
    var span = hi - lo; if (span <= 0) return [lo];
    var step = Math.pow(10, Math.floor(Math.log10(span / n)));
    var err = span / n / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var out = [], t = Math.ceil(lo / step) * step;
    for (; t <= hi + step * 1e-9; t += step) out.push(t);
    return out;
  }
  function byteTicks(hi, n) {
    if (hi <= 0) return [0];
    var base = hi >= 1073741824 ? 1073741824 : hi >= 1048576 ? 1048576 : hi >= 1024 ? 1024 : 1;
    return niceTicks(0, hi / base, n).map(function (t) { return t * base; });
  }
  function color(i, label) { return label === "(other)" ? OTHER_COLOR : PALETTE[i % PALETTE.length]; }
  function width(node, fallback) { return Math.max(320, node.clientWidth || fallback || 900); }
  // a horizontal brush on an svg plot area: calls done(x0, x1) in pixels
  function brush(svg, x, y, w, h, done) {
    var rect = sv("rect", { x: x, y: y, width: w, height: h, fill: "transparent", "class": "brush-area", style: "cursor:crosshair" }, svg);
    var sel = sv("rect", { y: y, height: h, fill: "rgba(47,111,219,.15)", stroke: "#2f6fdb", "stroke-width": 1, visibility: "hidden", "class": "brush-sel" }, svg);
    var start = null;
    function px(ev) { var r = svg.getBoundingClientRect(); return Math.min(x + w, Math.max(x, (ev.clientX - r.left) * (svg.viewBox.baseVal.width / r.width))); }
    rect.addEventListener("mousedown", function (ev) { start = px(ev); sel.setAttribute("x", start); sel.setAttribute("width", 0); sel.setAttribute("visibility", "visible"); ev.preventDefault(); });
    window.addEventListener("mousemove", function (ev) {
      if (start === null) return;
      var cur = px(ev); sel.setAttribute("x", Math.min(start, cur)); sel.setAttribute("width", Math.abs(cur - start));
    });
    window.addEventListener("mouseup", function (ev) {
      if (start === null) return;
      var cur = px(ev), a = Math.min(start, cur), b = Math.max(start, cur); start = null;
      sel.setAttribute("visibility", "hidden");
      if (b - a >= 3) done(a, b);
    });
    return rect;
  }
  function timeAxis(svg, x0, x1, y, lo, hi, gridTop) {
    var g = sv("g", { "class": "axis" }, svg);
    sv("line", { x1: x0, x2: x1, y1: y, y2: y }, g);
    var ticks = niceTicks(lo, hi, Math.max(2, Math.floor((x1 - x0) / 110)));
    ticks.forEach(function (t) {
      var x = x0 + (t - lo) / (hi - lo || 1) * (x1 - x0);
      if (gridTop !== undefined) sv("line", { x1: x, x2: x, y1: gridTop, y2: y, stroke: "#eef1f4" }, g);
      sv("line", { x1: x, x2: x, y1: y, y2: y + 4 }, g);
      sv("text", { x: x, y: y + 16, "text-anchor": "middle", text: fmtNs(t) }, g);
    });
    return g;
  }

  var O = D.overview, I = D.info, S = D.series, SPAN = Math.max(D.span, 1);
  document.getElementById("run-name").textContent = I.name;
  document.title = "memscope · " + I.name;

  // ---- overview ---------------------------------------------------------------------
  var HL = D.headline || { status: "none", text: "", labels: {} }, LB = HL.labels || {};
  var P = D.process || { available: false, t: [], rss: [], peak: -1, peak_t: -1 };
  var CENS = D.censuses || [], CS = D.census_series || { t: [], values: [], labels: [], keys: [], reasons: [], named: [] };
  function pct(part, whole) {
    if (!(whole > 0) || part < 0) return "n/a";
    var p = 100 * part / whole;
    return (p > 0 && p < 1) ? "<1%" : Math.round(p) + "%";
  }
  function renderHeadline() {
    var box = document.getElementById("ov-headline");
    box.setAttribute("data-status", HL.status);
    box.appendChild(el("div", { cls: "hl-text", id: "headline-text", text: HL.text }));
    if (HL.process_peak_bytes > 0 && HL.named_bytes >= 0) {
      // the process peak as a bar: what the names retain, and the rest
      var share = Math.max(0, Math.min(1, HL.named_bytes / HL.process_peak_bytes));
      var bar = el("div", { cls: "hl-bar", role: "img", "aria-label": HL.text });
      bar.appendChild(el("span", { cls: "named", style: "width:" + (100 * share).toFixed(2) + "%", title: LB.named + ": " + fmtBytes(HL.named_bytes) }));
      var own = HL.memscope_bytes > 0 ? Math.max(0, Math.min(1 - share, HL.memscope_bytes / HL.process_peak_bytes)) : 0;
      bar.appendChild(el("span", { cls: "unnamed", style: "width:" + (100 * (1 - share - own)).toFixed(2) + "%", title: LB.unnamed + ": " + fmtBytes(HL.unnamed_bytes) }));
      if (own > 0) bar.appendChild(el("span", { cls: "own", style: "width:" + (100 * own).toFixed(2) + "%", title: LB.memscope + ": " + fmtBytes(HL.memscope_bytes) }));
      box.appendChild(bar);
    }
    var dl = el("dl", { cls: "hl-rows" });
    function row(k, v, cls) { dl.appendChild(el("dt", { text: k, cls: cls || "" })); dl.appendChild(el("dd", { text: v, cls: cls || "" })); }
    row(LB.process_peak, HL.process_peak_bytes >= 0 ? fmtBytes(HL.process_peak_bytes) + " at " + fmtNs(HL.process_peak_t) : "not known: this capture has no process memory record");
    row(LB.named, HL.named_bytes >= 0 ? fmtBytes(HL.named_bytes) + " (" + fmtBytes(HL.named_shared_bytes) + " of it shared by several names) — census at " + fmtNs(HL.census_t) + " (" + HL.census_reason + ")" + (HL.census_rss_bytes >= 0 ? ", resident " + fmtBytes(HL.census_rss_bytes) + " then" : "") : "not known: no census in this capture");
    if (HL.unnamed_bytes >= 0) row(LB.unnamed, fmtBytes(HL.unnamed_bytes) + " (" + pct(HL.unnamed_bytes, HL.process_peak_bytes) + " of the peak)");
    if (HL.memscope_bytes >= 0) row(LB.memscope, fmtBytes(HL.memscope_bytes) + " (" + pct(HL.memscope_bytes, HL.process_peak_bytes) + " of the peak)");
    row(LB.bound, fmtBytes(O.peak) + (O.peak_t >= 0 ? " at " + fmtNs(O.peak_t) + " · " + fmtInt(O.peak_bindings) + " live bindings" : ""), "muted");
    box.appendChild(dl);
  }
  function renderOverview() {
    renderHeadline();
    var cards = document.getElementById("ov-cards");
    function card(v, k, d, hot) { cards.appendChild(el("div", { cls: "card" + (hot ? " hot" : ""), "data-k": k }, [el("div", { cls: "v", text: v }), el("div", { cls: "k", text: k }), d ? el("div", { cls: "d", text: d }) : null])); }
    card(HL.process_peak_bytes >= 0 ? fmtBytes(HL.process_peak_bytes) : "not known", LB.process_peak, HL.process_peak_bytes >= 0 ? "at " + fmtNs(HL.process_peak_t) : "no process memory in this capture");
    card(HL.named_bytes >= 0 ? fmtBytes(HL.named_bytes) : "not known", LB.named, HL.named_bytes >= 0 ? pct(HL.named_bytes, HL.process_peak_bytes) + " of the peak · census at " + fmtNs(HL.census_t) : "no census in this capture");
    if (HL.unnamed_bytes >= 0) card(fmtBytes(HL.unnamed_bytes), LB.unnamed, pct(HL.unnamed_bytes, HL.process_peak_bytes) + " of the peak");
    if (HL.memscope_bytes >= 0) card(fmtBytes(HL.memscope_bytes), LB.memscope, pct(HL.memscope_bytes, HL.process_peak_bytes) + " of the peak");
    card(fmtBytes(O.peak), LB.bound, O.peak_t >= 0 ? "at " + fmtNs(O.peak_t) + " · " + fmtInt(O.peak_bindings) + " live bindings" : "");
    card(fmtBytes(O.active_bytes), "still bound at end (bind-time sizes)", fmtInt(O.active_bindings) + " live bindings");
    card(fmtNs(O.duration), "duration", fmtInt(O.events) + " events · from the run's start" + (O.first_event > 0 ? " (first event at " + fmtNs(O.first_event) + ")" : ""));
    card(fmtInt(CENS.length), "censuses", CENS.length ? fmtNs(CENS.reduce(function (a, c) { return a + c.cost_ns; }, 0)) + " of heap walks" : "none in this capture");
    card(fmtInt(O.binds), "bindings", fmtInt(O.unbinds) + " del · " + fmtInt(O.objects_finalized) + " objects freed");
    card(fmtInt(O.variables), "variables", fmtInt(O.types) + " types");
    card(fmtInt(O.scopes), "scopes", fmtInt(O.scopes_entered) + " scope instances");
    card(fmtInt(O.threads) + " / " + fmtInt(O.tasks) + " / " + fmtInt(O.processes), "threads / tasks / processes");
    if (I.leak_check === "on" || O.leaks) card(fmtInt(O.leaks), "leaks", O.leaks ? fmtBytes(O.leak_bytes) + " retained" : "none found (leak check on)", O.leaks > 0);
    else card("off", "leak check", I.leak_check ? "leak check " + I.leak_check : "");
    card(fmtInt(O.buffers), "buffer variables", fmtBytes(O.buffer_bytes) + " outside the heap");
    card(fmtInt(O.aliases), "shared-object name pairs");
    var info = document.getElementById("ov-info");
    function item(k, v) {
      if (v === "" || v === undefined || v === null) return;
      if (info.childNodes.length) info.appendChild(document.createTextNode("   ·   "));
      info.appendChild(el("span", null, [el("b", { text: k + ": " }), String(v)]));
    }
    item("mode", I.mode); item("python", I.python); item("pids", (I.pids || []).join(", "));
    item("started", I.start); item("sampled", I.sampled); item("memscope", I.version);
    var c = I.counters || {};
    var ks = Object.keys(c).sort();
    if (ks.length) item("tracker", ks.map(function (k) { return k + " " + fmtInt(c[k]); }).join(", "));
    if (O.errors) item("errors", O.errors);
    var ex = I.extra || {};
    Object.keys(ex).sort().forEach(function (k) { item(k, ex[k]); });
  }


  // ---- raw detail: every binding, decompressed only when asked for -----------------
  var RAWH = D.raw || null, rawPromise = null;
  function rawAvailable() { return !!(RAWH && RAWH.n > 0 && typeof DecompressionStream === "function"); }
  function loadRaw() {
    if (rawPromise) return rawPromise;
    rawPromise = (async function () {
      var t = performance.now();
      var txt = document.getElementById("memscope-raw").textContent.trim();
      var bin = atob(txt), u = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) u[i] = bin.charCodeAt(i);
      var stream = new Blob([u]).stream().pipeThrough(new DecompressionStream("deflate"));
      var buf = await new Response(stream).arrayBuffer();
      var cols = {}, src = new Uint8Array(buf), n = RAWH.n, planes = RAWH.layout === "planes";
      RAWH.cols.forEach(function (c) {
        var T = c[1] === "f64" ? Float64Array : c[1] === "i32" ? Int32Array : Uint8Array;
        var w = T.BYTES_PER_ELEMENT;
        if (!planes || w === 1) { cols[c[0]] = new T(buf, c[2], n); return; }
        // stored as byte planes (the first byte of every value, then the second...)
        var dst = new Uint8Array(n * w);
        for (var j = 0; j < w; j++) {
          for (var i = 0, p = c[2] + j * n, k = j; i < n; i++, k += w) dst[k] = src[p + i];
        }
        cols[c[0]] = new T(dst.buffer);
      });
      // raw times count from the first binding; the page from the run's start
      var off = RAWH.t_offset || 0;
      if (off) for (var j = 0; j < RAWH.n; j++) cols.t_bind[j] += off;
      document.body.setAttribute("data-raw-ms", String(Math.round(performance.now() - t)));
      return cols;
    })();
    return rawPromise;
  }
  function rawNote() {
    if (!RAWH) return "";
    return RAWH.omitted > 0 ? "raw detail holds the first " + fmtInt(RAWH.n) + " of " + fmtInt(RAWH.total) + " bindings to end (" + fmtInt(RAWH.omitted) + " left out above the limit of " + fmtInt(RAWH.limit) + "; every binding is in the JSON reports: memscope report -f json)" : "";
  }
  // exact tracked bytes from the raw bindings over [lo, hi]: each object counted once, at
  // its latest size, while any binding names it (the analysis's accounting); returns
  // [[t, total after t], ...] for every change in the range plus the value at lo
  function rawTotals(C, lo, hi) {
    var n = RAWH.n, ev = [], i;
    for (i = 0; i < n; i++) {
      if (C.t_bind[i] > hi) continue;
      ev.push([C.t_bind[i], 1, i]);
      var h = C.held[i];
      if (h >= 0 && C.t_bind[i] + h <= hi) ev.push([C.t_bind[i] + h, 0, i]);
    }
    ev.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1] || a[2] - b[2]; });
    var live = new Map(), total = 0, pts = [], atLo = 0, seenLo = false;
    for (var k = 0; k < ev.length; k++) {
      var e = ev[k], t = e[0], o = C.obj[e[2]], rec = live.get(o);
      if (t > lo && !seenLo) { atLo = total; seenLo = true; pts.push([lo, total]); }
      if (e[1]) {
        if (!rec) { rec = { n: 0, b: 0 }; live.set(o, rec); }
        rec.n++; total += C.bytes[e[2]] - rec.b; rec.b = C.bytes[e[2]];
      } else if (rec) {
        rec.n--; if (rec.n <= 0) { total -= rec.b; live.delete(o); }
      }
      if (t >= lo) pts.push([t, total]);
    }
    if (!seenLo) pts.push([lo, total]);
    return pts;
  }

  // ---- memory over time --------------------------------------------------------------
  // layers: "census" (what each name retained at each census: heap walks) or "bind" (the
  // bytes bound at bind time, stacked by a grouping); the resident-memory line of the
  // process is drawn over either, with its peak (the high-water mark) and the censuses
  var HAS_CENSUS = CENS.length > 0 && CS.t.length > 0;
  var mem = { grouping: "var", lo: 0, hi: SPAN, layers: HAS_CENSUS ? "census" : "bind", scale: "process", top: 10 };
  // the peak as the chart shows it: the highest bucket, at the recorded peak time when
  // that falls in the bucket (it does whenever the replay and the analysis agree)
  var ST0 = S.t0 || 0;
  var PEAK = (function () {
    var bi = -1, v = -1;
    S.total.forEach(function (x, i) { if (x > v) { v = x; bi = i; } });
    if (bi < 0 || v <= 0) return { t: -1, v: 0 };
    var lo = S.t[bi], hi = lo + S.step;
    return { t: (O.peak_t >= lo && O.peak_t <= hi) ? O.peak_t : lo + S.step / 2, v: v };
  })();
  function seg(id, items, key, done) {
    var box = document.getElementById(id);
    items.forEach(function (g) {
      var at = { text: g[1], type: "button" };
      at["data-" + key] = g[0];
      var b = el("button", at);
      if (g[0] === mem[key]) b.className = "on";
      if (g[2]) b.disabled = true;
      b.addEventListener("click", function () {
        mem[key] = g[0];
        Array.prototype.forEach.call(box.children, function (c) { c.className = c === b ? "on" : ""; });
        if (done) done();
        renderMemory();
      });
      box.appendChild(b);
    });
  }
  function syncGroupings() {
    Array.prototype.forEach.call(document.getElementById("mem-groupings").children, function (c) { c.disabled = mem.layers === "census"; });
  }
  // a nav click scrolls a panel below the sticky header, whatever height it wrapped to
  function keepHeadingsClear() {
    var top = document.querySelector(".top");
    var set = function () { document.documentElement.style.setProperty("--top-h", top.offsetHeight + "px"); };
    set();
    window.addEventListener("resize", set);
  }
  function renderMemoryControls() {
    seg("mem-layers", [["census", "retained (censuses)", !HAS_CENSUS], ["bind", "bound at bind time"]], "layers", syncGroupings);
    seg("mem-groupings", [["var", "variable"], ["scope", "scope"], ["type", "type"], ["thread", "thread"], ["task", "task"]], "grouping");
    seg("mem-scale", [["process", "whole process", !P.rss.length && P.peak < 0], ["vars", "variables"]], "scale");
    seg("mem-top", [[10, "10"], [20, "20"], [30, "30"]], "top");
    syncGroupings();
    document.getElementById("mem-reset").addEventListener("click", function () { mem.lo = 0; mem.hi = SPAN; renderMemory(); });
  }
  // the largest ``n`` layers drawn, the rest summed into (other) exactly; ``inside``:
  // the layers so summed (largest first), for the legend and the hover
  function fold(grp, n) {
    var keys = grp.keys || grp.labels, keep = [], spec = [], rest = [], other = -1;
    keys.forEach(function (k, i) { if (k === "(other)") other = i; else if (k === "(shared)") spec.push(i); else if (keep.length < n) keep.push(i); else rest.push(i); });
    var peakOf = function (i) { return grp.peaks ? grp.peaks[i] : Math.max.apply(null, [0].concat(grp.values[i])); };
    var inside = rest.map(function (i) { return { label: grp.labels[i], peak: peakOf(i) }; });
    if (!rest.length) { return { labels: grp.labels, keys: keys, values: grp.values, peaks: grp.peaks, inside: [], folded: grp.folded || 0 }; }
    var osum = (other >= 0 ? grp.values[other] : grp.values[0]).map(function (v) { return other >= 0 ? v : 0; });
    rest.forEach(function (i) { grp.values[i].forEach(function (v, j) { osum[j] += v; }); });
    var idx = keep.concat(spec);
    return {
      labels: idx.map(function (i) { return grp.labels[i]; }).concat([other >= 0 ? grp.labels[other] : "(other)"]),
      keys: idx.map(function (i) { return keys[i]; }).concat(["(other)"]),
      values: idx.map(function (i) { return grp.values[i]; }).concat([osum]),
      peaks: grp.peaks ? idx.map(function (i) { return grp.peaks[i]; }).concat([Math.max.apply(null, [0].concat(osum))]) : null,
      inside: inside, folded: (grp.folded || 0) + rest.length
    };
  }
  function otherTitle(g) {
    var parts = g.inside.slice(0, 12).map(function (q) { return q.label + " (peak " + fmtBytes(q.peak) + ")"; });
    var more = (g.folded || 0) - parts.length;
    return "(other) sums " + (parts.length ? parts.join(", ") : "") + (more > 0 ? (parts.length ? " and " : "") + fmtInt(more) + " smaller group" + (more === 1 ? "" : "s") : "") + (g.inside.length ? ". Click to show more layers; hover the chart for their bytes at a moment." : ".");
  }
  function legendItem(g, gi, c, note) {
    var other = g.keys[gi] === "(other)";
    var item = el("span", { title: other ? otherTitle(g) : g.keys[gi], cls: "item" + (other ? " other" : "") }, [el("i", { style: "background:" + c }), el("b", { cls: "lbl", text: g.labels[gi] }), el("em", { text: note })]);
    if (other && g.inside.length) item.addEventListener("click", function () {
      mem.top = Math.min(30, mem.top + 10);
      Array.prototype.forEach.call(document.getElementById("mem-top").children, function (b) { b.className = +b.dataset.top === mem.top ? "on" : ""; });
      renderMemory();
    });
    return item;
  }
  function censusTotal(i) { var s = 0; CS.values.forEach(function (v) { s += v[i]; }); return s; }
  function rssAt(t) {  // the latest sample at or before t (-1 before the first)
    var v = -1;
    for (var i = 0; i < P.t.length && P.t[i] <= t; i++) v = P.rss[i];
    return v;
  }
  function renderMemory() {
    var box = document.getElementById("mem-chart"), legend = document.getElementById("mem-legend");
    clear(legend);
    document.getElementById("mem-reset").disabled = (mem.lo <= 0 && mem.hi >= SPAN);
    if (!O.binds && !P.rss.length && !HAS_CENSUS) { empty(box, "No bindings, process memory or census were recorded in this run, so there is no memory to chart."); return; }
    clear(box);
    var W = width(box), H = 330, ml = 74, mr = 18, mt = 16, mb = 34, pw = W - ml - mr, ph = H - mt - mb;
    var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": "memory over time" }, box);
    var censusView = mem.layers === "census";
    var full = censusView ? { labels: CS.labels, keys: CS.keys, values: CS.values } : (S.groups[mem.grouping] || { labels: [], keys: [], values: [] });
    var grp = fold(full, mem.top);
    var ts = S.t, step = S.step, n = ts.length;
    var i0 = Math.max(0, Math.floor((mem.lo - ST0) / step)), i1 = Math.min(n - 1, Math.ceil((mem.hi - ST0) / step));
    var ymax = 0, i;
    if (censusView) { for (i = 0; i < CS.t.length; i++) if (CS.t[i] >= mem.lo && CS.t[i] <= mem.hi) ymax = Math.max(ymax, censusTotal(i)); }
    else for (i = i0; i <= i1; i++) if (S.total[i] > ymax) ymax = S.total[i];
    if (mem.scale === "process") {
      for (i = 0; i < P.t.length; i++) if (P.t[i] >= mem.lo && P.t[i] <= mem.hi) ymax = Math.max(ymax, P.rss[i]);
      if (P.peak_t >= mem.lo && P.peak_t <= mem.hi) ymax = Math.max(ymax, P.peak);
    }
    ymax = ymax > 0 ? ymax * 1.08 : 1;
    var yt = byteTicks(ymax, 5); ymax = Math.max(ymax, yt[yt.length - 1]);
    function X(t) { return ml + (t - mem.lo) / (mem.hi - mem.lo) * pw; }
    function Y(v) { return mt + ph - v / ymax * ph; }
    var grid = sv("g", { "class": "axis" }, svg);
    yt.forEach(function (v) { sv("line", { x1: ml, x2: ml + pw, y1: Y(v), y2: Y(v), stroke: "#eef1f4" }, grid); sv("text", { x: ml - 8, y: Y(v) + 4, "text-anchor": "end", text: fmtBytes(v) }, grid); });
    timeAxis(svg, ml, ml + pw, mt + ph, mem.lo, mem.hi);
    var clipId = "memclip";
    var cp = sv("clipPath", { id: clipId }, sv("defs", null, svg)); sv("rect", { x: ml, y: mt - 2, width: pw, height: ph + 2 }, cp);
    var layers = sv("g", { "clip-path": "url(#" + clipId + ")" }, svg);
    if (censusView) {
      // each census is a heap walk at one moment: a stacked bar at its time
      var bw = Math.max(6, Math.min(18, pw / Math.max(CS.t.length, 1) / 3));
      var cbase = CS.t.map(function () { return 0; });
      grp.values.forEach(function (vals, gi) {
        var c = color(gi, grp.keys[gi] === "(other)" ? "(other)" : grp.labels[gi]);
        var g = sv("g", { "class": "layer census-layer", "data-label": grp.labels[gi] }, layers);
        var mx = 0;
        vals.forEach(function (v) { mx = Math.max(mx, v); });
        if (mx <= 0) return;  // a layer no census found anything in
        vals.forEach(function (v, ci) {
          if (v <= 0) return;
          var x = Math.max(ml, Math.min(ml + pw - bw, X(CS.t[ci]) - bw / 2)), y0 = Y(cbase[ci]), y1 = Y(cbase[ci] + v);
          sv("rect", { x: x.toFixed(1), y: y1.toFixed(1), width: bw, height: Math.max(0.5, y0 - y1).toFixed(1), fill: c, "fill-opacity": 0.85 }, g);
          cbase[ci] += v;
        });
        legend.appendChild(legendItem(grp, gi, c, "max " + fmtBytes(mx)));
      });
    } else {
      // stacked step areas, one path per group
      var base = new Array(n).fill(0);
      grp.values.forEach(function (vals, gi) {
        var top = [], d = "";
        for (var i = i0; i <= i1; i++) top[i] = base[i] + vals[i];
        var pts = [];
        for (i = i0; i <= i1; i++) { var xa = X(ts[i]), xb = X(ts[i] + step); pts.push([xa, Y(top[i])], [xb, Y(top[i])]); }
        var low = [];
        for (i = i1; i >= i0; i--) { var xa2 = X(ts[i]), xb2 = X(ts[i] + step); low.push([xb2, Y(base[i])], [xa2, Y(base[i])]); }
        if (!pts.length) return;
        d = "M" + pts.concat(low).map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join("L") + "Z";
        var c = color(gi, grp.labels[gi]);
        sv("path", { d: d, fill: c, "fill-opacity": 0.85, "data-label": grp.labels[gi], "class": "layer" }, layers);
        for (i = i0; i <= i1; i++) base[i] = top[i];
        var mx = grp.peaks ? grp.peaks[gi] : 0;
        if (!grp.peaks) for (i = 0; i < n; i++) if (vals[i] > mx) mx = vals[i];
        legend.appendChild(legendItem(grp, gi, c, "peak " + fmtBytes(mx)));
      });
      // the bind-time peak
      if (PEAK.t >= 0 && PEAK.t >= mem.lo && PEAK.t <= mem.hi) {
        var px = X(PEAK.t), py = Y(PEAK.v);
        var pk = sv("g", { "class": "peak" }, svg);
        sv("line", { x1: px, x2: px, y1: mt, y2: mt + ph, stroke: "#868e96", "stroke-dasharray": "4 3", "stroke-width": 1.2 }, pk);
        sv("circle", { cx: px, cy: py, r: 4, fill: "#868e96" }, pk);
        var lbl = "bind-time peak " + fmtBytes(PEAK.v) + " at " + fmtNs(PEAK.t);
        var right = px > ml + pw * 0.7;
        sv("text", { x: right ? px - 6 : px + 6, y: mt + 28, "text-anchor": right ? "end" : "start", fill: "#495057", "font-size": 11.5, "font-weight": 600, text: lbl, id: "peak-label" }, pk);
      }
    }
    // the process's resident memory: a line over the layers, and its peak
    if (P.rss.length) {
      var d2 = "", prevY = null;
      for (i = 0; i < P.t.length; i++) {
        var xx = X(P.t[i]).toFixed(1), yy = Y(P.rss[i]).toFixed(1);
        d2 += (d2 ? "L" + xx + "," + prevY + "L" : "M") + xx + "," + yy;  // steps: a sample holds until the next
        prevY = yy;
      }
      sv("path", { d: d2, fill: "none", stroke: "#0b7285", "stroke-width": 2, "class": "rss-line", "data-points": P.t.length }, layers);
      legend.appendChild(el("span", { cls: "item line" }, [el("i", { cls: "ln rss" }), el("b", { cls: "lbl", text: "resident memory of the process" }), el("em", { text: "sampled " + fmtInt(P.t.length) + " times" })]));
    }
    if (P.peak >= 0 && P.peak_t >= mem.lo && P.peak_t <= mem.hi) {
      var qx = X(P.peak_t), qy = Y(P.peak);
      var rp = sv("g", { "class": "rss-peak" }, svg);
      sv("line", { x1: qx, x2: qx, y1: mt, y2: mt + ph, stroke: "#d64545", "stroke-dasharray": "4 3", "stroke-width": 1.2 }, rp);
      if (qy >= mt) sv("circle", { cx: qx, cy: qy, r: 4, fill: "#d64545" }, rp);
      var r2 = qx > ml + pw * 0.7;
      sv("text", { x: r2 ? qx - 6 : qx + 6, y: mt + 12, "text-anchor": r2 ? "end" : "start", fill: "#a61b1b", "font-size": 12, "font-weight": 600, text: LB.process_peak + " " + fmtBytes(P.peak) + " at " + fmtNs(P.peak_t), id: "rss-peak-label" }, rp);
    }
    // census marks: a tick under the axis per census, with its reason
    var marks = sv("g", { "class": "census-marks" }, svg), lastLabel = -1e9;
    CENS.forEach(function (c) {
      if (c.t < mem.lo || c.t > mem.hi) return;
      var cx = X(c.t), g = sv("g", { "class": "census-mark", "data-reason": c.reason, "data-t": c.t }, marks);
      sv("path", { d: "M" + cx.toFixed(1) + "," + (mt + ph - 9) + "l-4,-7h8z", fill: "#5f3dc4" }, g);
      var anchor = cx > ml + pw - 24 ? "end" : cx < ml + 24 ? "start" : "middle";
      if (cx - lastLabel > 46) { sv("text", { x: cx, y: mt + ph - 19, "text-anchor": anchor, "font-size": 10, fill: "#5f3dc4", text: c.reason }, g); lastLabel = cx; }
      tipOn(g, "census at " + fmtNs(c.t) + " (" + c.reason + ")\nnamed variables retain " + fmtBytes(c.named) + " (" + fmtBytes(c.shared) + " shared)\nresident " + fmtBytes(c.rss) + " · " + fmtInt(c.objects) + " objects walked in " + fmtNs(c.cost_ns));
    });
    if (CENS.length) legend.appendChild(el("span", { cls: "item" }, [el("i", { cls: "tri" }), el("b", { cls: "lbl", text: "census (heap walk)" }), el("em", { text: fmtInt(CENS.length) + " in this run" })]));
    var hover = sv("line", { y1: mt, y2: mt + ph, stroke: "#1f2933", "stroke-width": 0.8, visibility: "hidden" }, svg);
    var area = brush(svg, ml, mt, pw, ph, function (a, b) {
      var lo = mem.lo + (a - ml) / pw * (mem.hi - mem.lo), hi = mem.lo + (b - ml) / pw * (mem.hi - mem.lo);
      if (hi - lo < step) hi = lo + step;
      mem.lo = lo; mem.hi = hi; renderMemory();
    });
    area.addEventListener("mousemove", function (ev) {
      var r = svg.getBoundingClientRect(), x = (ev.clientX - r.left) * (W / r.width);
      var t = mem.lo + (x - ml) / pw * (mem.hi - mem.lo);
      hover.setAttribute("x1", x); hover.setAttribute("x2", x); hover.setAttribute("visibility", "visible");
      var lines = [], rows;
      var rv = rssAt(t);
      if (rv >= 0) lines.push("resident " + fmtBytes(rv) + " at " + fmtNs(t));
      if (censusView) {
        var ci = -1, best = Infinity;
        CS.t.forEach(function (ct, k) { var dd = Math.abs(ct - t); if (dd < best) { best = dd; ci = k; } });
        if (ci >= 0) {
          lines.push("census at " + fmtNs(CS.t[ci]) + " (" + CS.reasons[ci] + "): names retain total " + fmtBytes(CS.named[ci]));
          rows = full.values.map(function (v, gi) { return [v[ci], full.labels[gi]]; }).filter(function (q) { return q[0] > 0; });
        } else rows = [];
      } else {
        var i = Math.min(n - 1, Math.max(0, Math.floor((t - ST0) / step)));
        if (n) lines.push(fmtNs(ts[i]) + " – " + fmtNs(ts[i] + step) + "   total " + fmtBytes(S.total[i]) + " bound at bind time");
        rows = n ? full.values.map(function (v, gi) { return [v[i], full.labels[gi]]; }).filter(function (q) { return q[0] > 0; }) : [];
      }
      rows.sort(function (a, b) { return b[0] - a[0]; });
      rows.slice(0, 12).forEach(function (q) { lines.push(fmtBytes(q[0]) + "  " + q[1]); });
      showTip(ev, lines.join("\n"));
    });
    area.addEventListener("mouseleave", function () { hover.setAttribute("visibility", "hidden"); hideTip(); });
    if (!grp.values.length) sv("text", { x: ml + pw / 2, y: mt + ph / 2, "text-anchor": "middle", fill: "#616e7c", text: censusView ? "no census listed a variable" : "nothing tracked in this grouping" }, svg);
    if (censusView) {
      document.getElementById("mem-res").textContent = "Bars: what each named variable retained at each census (a heap walk at that moment: bytes freed if that name alone were dropped); shared by several names counted once. Line: the process's resident memory, sampled over time; the red mark is its peak (the kernel's high-water mark). Between censuses nothing is measured per name.";
      document.getElementById("mem-raw-note").textContent = "";
      return;
    }
    var res = document.getElementById("mem-res");
    res.textContent = "Layers: the bytes each name pointed to when it was bound (bind-time sizes: a list filled after binding reads as its size then). Resolution: " + fmtInt(n) + " steps of " + fmtNs(step) + "; each step shows the moment its total was highest." +
      (grp.folded ? " (other) is the exact sum of " + fmtInt(grp.folded) + (grp.folded === 1 ? " smaller group" : " smaller groups") + " (its legend entry names them; hover the chart for each one's bytes at a moment)." : "") +
      (grp.missed ? " " + fmtInt(grp.missed) + " group(s) summed into (other) while the capture streamed have a larger peak than a layer shown (the layers are the largest of the groups followed from their first binding)." : "");
    var note = document.getElementById("mem-raw-note");
    note.textContent = "";
    // zoomed to a few buckets or less: redraw the total from the raw bindings, exactly
    var zoomed = mem.hi - mem.lo < SPAN;
    if (zoomed && rawAvailable() && RAWH.omitted === 0 && (mem.hi - mem.lo) <= step * 200) {
      var want = mem.lo + ":" + mem.hi;
      note.textContent = "loading the raw bindings…";
      loadRaw().then(function (C) {
        if (mem.lo + ":" + mem.hi !== want) return;
        var pts = rawTotals(C, mem.lo, mem.hi), rmax = 0;
        pts.forEach(function (p) { if (p[1] > rmax) rmax = p[1]; });
        var scale = rmax > ymax ? ymax / rmax : 1;  // never clip (same axis unless larger)
        var d = "", prev = null;
        pts.forEach(function (p) {
          var x = Math.max(ml, Math.min(ml + pw, X(p[0]))).toFixed(1), y = Y(p[1] * scale).toFixed(1);
          d += (d ? "L" + x + "," + (prev === null ? y : prev) + "L" : "M") + x + "," + y;
          prev = y;
        });
        if (prev !== null) d += "L" + (ml + pw) + "," + prev;
        sv("path", { d: d, fill: "none", stroke: "#1f2933", "stroke-width": 1.6, "class": "raw-total", "data-points": pts.length, "data-max": rmax }, layers);
        note.textContent = "Black line: tracked bytes from every raw binding at full resolution (" + fmtInt(pts.length) + " changes in this range, highest " + fmtBytes(rmax) + ").";
        note.setAttribute("data-raw-max", String(rmax));
      }).catch(function (e) { note.textContent = "raw detail unavailable: " + e; });
    } else if (zoomed && rawAvailable() && RAWH.omitted > 0) {
      note.textContent = "Full-resolution redraw needs every binding; " + rawNote() + ".";
    } else if (zoomed && rawAvailable()) {
      note.textContent = "Zoom in further (" + fmtNs(step * 200) + " or less) to redraw from the raw bindings at full resolution.";
    }
  }

  // ---- variables table ------------------------------------------------------------
  var VCOLS = [
    { k: "var", t: "variable", cls: "name" }, { k: "scope", t: "scope", cls: "mono" },
    { k: "where", t: "file:line", cls: "mono muted", v: function (r) { return shortPath(r.file) + ":" + r.line; } },
    { k: "types", t: "type", cls: "mono", v: function (r) { return r.types.join(", "); } },
  ].concat(HAS_CENSUS ? [
    // from the census nearest the process's peak (-1: not listed there) and over all
    { k: "retained", t: "retained", num: 1, b: 1, title: "bytes freed if this name alone were dropped, at the census nearest the process peak" },
    { k: "retained_max", t: "max retained", num: 1, b: 1, title: "the most any census found this name retaining" },
    { k: "census_shared", t: "shared", num: 1, b: 1, title: "bytes this name reaches that other names reach too (census nearest the peak)" },
    { k: "census_shallow", t: "shallow", num: 1, b: 1, title: "the object's own size at the census nearest the peak" }
  ] : []).concat([
    { k: "peak", t: "bound at bind", num: 1, b: 1, title: "bytes bound at bind time (shallow/deep as recorded): the largest of this variable's bindings" },
    { k: "shallow", t: "shallow at bind", num: 1, b: 1 }, { k: "deep", t: "deep at bind", num: 1, b: 1 },
    { k: "lifetime", t: "lifetime", num: 1, f: fmtNs },
    { k: "binds", t: "binds", num: 1, f: fmtInt },
    { k: "aliases", t: "aliases", cls: "mono", v: function (r) { return r.aliases.join(", "); } },
    { k: "threads", t: "thread", v: function (r) { return r.threads.map(function (t) { return t === "?" ? "not recorded" : t; }).join(", "); } }
  ]);
  function shortPath(p) { var s = String(p).split(/[\\/]/); return s.length > 2 ? "…/" + s.slice(-2).join("/") : p; }
  var vt = { key: HAS_CENSUS ? "retained" : "peak", dir: -1, filter: "", open: {}, limit: 300 };
  // ties: the most retained in any census, then the bytes bound at bind time
  function tie(a, b) { return ((b.retained_max || -1) - (a.retained_max || -1)) || (b.peak - a.peak); }
  function cellValue(c, r) { return c.v ? c.v(r) : r[c.k]; }
  function renderVarHead() {
    var tr = el("tr");
    VCOLS.forEach(function (c) {
      var th = el("th", { text: c.t, "data-key": c.k, cls: c.num ? "num" : "" });
      if (c.title) th.title = c.title;
      if (c.k === vt.key) th.setAttribute("aria-sort", vt.dir > 0 ? "ascending" : "descending");
      th.addEventListener("click", function () {
        if (vt.key === c.k) vt.dir = -vt.dir; else { vt.key = c.k; vt.dir = c.num ? -1 : 1; }
        renderVarHead(); renderVarBody();
      });
      tr.appendChild(th);
    });
    var thead = document.querySelector("#var-table thead"); clear(thead); thead.appendChild(tr);
  }
  function renderVarBody() {
    var tbody = document.querySelector("#var-table tbody"); clear(tbody);
    var f = vt.filter.toLowerCase();
    var rows = D.vars.filter(function (r) {
      if (!f) return true;
      return (r.var + "\u0000" + r.scope + "\u0000" + r.module + "\u0000" + r.file + ":" + r.line + "\u0000" + r.types.join(",") + "\u0000" + r.threads.join(",")).toLowerCase().indexOf(f) >= 0;
    });
    var col = VCOLS.filter(function (c) { return c.k === vt.key; })[0] || VCOLS[4];
    rows.sort(function (a, b) {
      var x = cellValue(col, a), y = cellValue(col, b);
      if (typeof x === "number") return (x - y) * vt.dir || tie(a, b);
      x = String(x).toLowerCase(); y = String(y).toLowerCase();
      return (x < y ? -1 : x > y ? 1 : 0) * vt.dir || tie(a, b);
    });
    var shown = rows.slice(0, vt.limit);
    document.getElementById("var-count").textContent = "showing " + shown.length + " of " + rows.length + " matching variables" + (D.vars_omitted ? " (" + fmtInt(D.vars_omitted) + " smaller variables not included in this report)" : "");
    if (!rows.length) { var tr0 = el("tr"); tr0.appendChild(el("td", { colspan: VCOLS.length, cls: "muted", text: D.vars.length ? "No variable matches the filter." : "No variables were recorded." })); tbody.appendChild(tr0); return; }
    shown.forEach(function (r) {
      var tr = el("tr", { cls: "row" + (r.leak ? " leak" : ""), "data-key": r.key });
      VCOLS.forEach(function (c) {
        var v = cellValue(c, r), td;
        if (c.b) td = el("td", { cls: "num", text: v < 0 && c.k !== "peak" && c.k !== "shallow" && c.k !== "deep" ? "—" : fmtBytes(v) });
        else if (c.f) td = el("td", { cls: "num", text: c.f(v) });
        else td = el("td", { cls: c.cls || "", text: v });
        if (c.k === "var") {
          if (r.leak) td.appendChild(el("span", { cls: "badge red", text: "leak" }));
          if (r.live) td.appendChild(el("span", { cls: "badge gray", text: "live" }));
        }
        if (c.k === "where") td.title = r.file + ":" + r.line;
        if (c.k === "lifetime" && r.live) td.textContent = "≥ " + fmtNs(v);
        tr.appendChild(td);
      });
      tr.addEventListener("click", function () { vt.open[r.key] = !vt.open[r.key]; renderVarBody(); });
      tbody.appendChild(tr);
      if (vt.open[r.key]) tbody.appendChild(historyRow(r));
    });
    if (rows.length > shown.length) {
      var more = el("tr"), td = el("td", { colspan: VCOLS.length });
      var btn = el("button", { cls: "btn", type: "button", text: "Show " + Math.min(300, rows.length - shown.length) + " more" });
      btn.addEventListener("click", function () { vt.limit += 300; renderVarBody(); });
      td.appendChild(btn); more.appendChild(td); tbody.appendChild(more);
    }
  }
  function historyRow(r) {
    var tr = el("tr", { cls: "hist", "data-history-of": r.key }), td = el("td", { colspan: VCOLS.length });
    td.appendChild(el("div", { cls: "hint", text: r.module + ":" + r.scope + "." + r.var + " — " + r.file + ":" + r.line + " — " + fmtInt(r.binds) + " binds, " + fmtBytes(r.total) + " bound in all" + (r.history.length < r.binds ? "; latest " + r.history.length + " shown" : "") }));
    if (HAS_CENSUS) td.appendChild(censusDetail(r));
    var t = el("table", { cls: "mini" }), h = el("tr");
    ["bound at", "until", "held for", "type", "shallow", "deep", "ended by", "thread", "task", "aliases"].forEach(function (x) { h.appendChild(el("th", { text: x })); });
    t.appendChild(h);
    r.history.forEach(function (e) {
      var row = el("tr");
      [fmtNs(e[0]), e[1] >= 0 ? fmtNs(e[1]) : "end of run", e[1] >= 0 ? fmtNs(e[1] - e[0]) : "live", e[2], fmtBytes(e[3]), fmtBytes(e[4]), e[5].replace("_", " "), e[6], e[7], String(e[8])].forEach(function (x) { row.appendChild(el("td", { text: x })); });
      t.appendChild(row);
    });
    td.appendChild(t);
    if (rawAvailable() && r.index >= 0 && r.history.length < r.binds) {
      var full = el("div", { cls: "full-history" });
      var btn = el("button", { cls: "btn", type: "button", text: "Show the full history (" + fmtInt(r.binds) + " bindings)" });
      btn.addEventListener("click", function (ev) { ev.stopPropagation(); fullHistory(r, full, 0); });
      full.appendChild(btn);
      td.appendChild(full);
    }
    tr.appendChild(td);
    return tr;
  }
  // what the censuses found this name retaining, over time: a small chart and the numbers
  function censusDetail(r) {
    var box = el("div", { cls: "census-detail", "data-census-of": r.key });
    var pts = r.census || [];
    if (!pts.length) { box.appendChild(el("div", { cls: "hint", text: "No census listed this variable (not live at a census, or retaining under 1 KiB)." })); return box; }
    box.appendChild(el("div", { cls: "hint", text: "Retained over time (censuses): " + pts.map(function (p) { return fmtBytes(p[1]) + " at " + fmtNs(p[0]); }).join(" · ") }));
    var W = 520, H = 90, ml = 60, mr = 10, mt = 8, mb = 20, pw = W - ml - mr, ph = H - mt - mb;
    var mx = 1; pts.forEach(function (p) { mx = Math.max(mx, p[1], p[2]); });
    var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": "retained over time", "class": "census-spark" }, box);
    function X(t) { return ml + t / SPAN * pw; }
    function Y(v) { return mt + ph - v / mx * ph; }
    var ax = sv("g", { "class": "axis" }, svg);
    sv("line", { x1: ml, x2: ml + pw, y1: mt + ph, y2: mt + ph }, ax);
    sv("text", { x: ml - 6, y: mt + 8, "text-anchor": "end", text: fmtBytes(mx) }, ax);
    sv("text", { x: ml - 6, y: mt + ph, "text-anchor": "end", text: "0" }, ax);
    sv("text", { x: ml, y: H - 4, text: "0" }, ax); sv("text", { x: ml + pw, y: H - 4, "text-anchor": "end", text: fmtNs(SPAN) }, ax);
    sv("path", { d: pts.map(function (p, i) { return (i ? "L" : "M") + X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1); }).join(""), fill: "none", stroke: "#2f6fdb", "stroke-width": 1.6 }, svg);
    pts.forEach(function (p) {
      var c = sv("circle", { cx: X(p[0]).toFixed(1), cy: Y(p[1]).toFixed(1), r: 3.5, fill: "#2f6fdb", "class": "census-point" }, svg);
      tipOn(c, "census at " + fmtNs(p[0]) + "\nretained " + fmtBytes(p[1]) + "\nshallow " + fmtBytes(p[2]));
    });
    return box;
  }
  var HIST_PAGE = 100;
  function fullHistory(r, box, page) {
    clear(box); box.appendChild(el("div", { cls: "hint", text: "decompressing the raw bindings…" }));
    loadRaw().then(function (C) {
      var idx = [], n = RAWH.n;
      for (var i = 0; i < n; i++) if (C["var"][i] === r.index) idx.push(i);
      // the raw detail is in the order bindings ended: show them in bind order
      idx.sort(function (a, b) { return C.t_bind[a] - C.t_bind[b] || a - b; });
      var pages = Math.max(1, Math.ceil(idx.length / HIST_PAGE));
      page = Math.max(0, Math.min(page, pages - 1));
      clear(box);
      var nav = el("div", { cls: "controls" });
      var prev = el("button", { cls: "btn", type: "button", text: "‹ earlier", "data-act": "prev" }), next = el("button", { cls: "btn", type: "button", text: "later ›", "data-act": "next" });
      prev.disabled = page === 0; next.disabled = page >= pages - 1;
      prev.addEventListener("click", function (ev) { ev.stopPropagation(); fullHistory(r, box, page - 1); });
      next.addEventListener("click", function (ev) { ev.stopPropagation(); fullHistory(r, box, page + 1); });
      nav.appendChild(prev); nav.appendChild(next);
      nav.appendChild(el("span", { cls: "hint page-info", text: "all " + fmtInt(idx.length) + " bindings in bind order, page " + (page + 1) + " of " + pages + (RAWH.omitted > 0 ? "; " + rawNote() : "") }));
      box.appendChild(nav);
      var t = el("table", { cls: "mini full" }), h = el("tr");
      ["#", "bound at", "until", "held for", "type", "bytes", "shallow", "deep", "ended by", "thread", "task", "process", "line", "aliases"].forEach(function (x) { h.appendChild(el("th", { text: x })); });
      t.appendChild(h);
      idx.slice(page * HIST_PAGE, (page + 1) * HIST_PAGE).forEach(function (i, j) {
        var row = el("tr"), held = C.held[i], tb = C.t_bind[i];
        [String(page * HIST_PAGE + j + 1), fmtNs(tb), held >= 0 ? fmtNs(tb + held) : "end of run", held >= 0 ? fmtNs(held) : "live", RAWH.types[C.type[i]], fmtBytes(C.bytes[i]), fmtBytes(C.size[i]), fmtBytes(C.deep[i]), RAWH.ends[C.end[i]].replace("_", " "), (RAWH.threads[C.thread[i]] === "?" ? "not recorded" : RAWH.threads[C.thread[i]]), RAWH.tasks[C.task[i]], String(C.pid[i]), String(C.line[i]), String(C.aliases[i])].forEach(function (x) { row.appendChild(el("td", { text: x })); });
        t.appendChild(row);
      });
      box.appendChild(t);
    }).catch(function (e) { clear(box); box.appendChild(el("div", { cls: "hint", text: "raw detail unavailable: " + e })); });
  }
  function renderVariables() {
    renderVarHead(); renderVarBody();
    var inp = document.getElementById("var-filter"), timer = null;
    inp.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(function () { vt.filter = inp.value; vt.limit = 300; renderVarBody(); }, 80); });
  }

  // ---- lifecycle gantt --------------------------------------------------------------
  var gz = { lo: 0, hi: SPAN };
  function renderGantt() {
    var box = document.getElementById("gantt"), G = D.gantt;
    document.getElementById("gantt-reset").disabled = (gz.lo <= 0 && gz.hi >= SPAN);
    if (!G.rows.length) { empty(box, "No bindings were recorded, so there are no lifetimes to show."); return; }
    clear(box);
    var W = width(box), lw = Math.min(300, Math.max(180, W * 0.24)), mr = 16, mt = 30, rh = 20, sh = 22;
    var pw = W - lw - mr;
    var lines = [], lastScope = null;
    G.rows.forEach(function (r) {
      var sk = r.module + ":" + r.scope;
      if (sk !== lastScope) { lines.push({ scope: r }); lastScope = sk; }
      lines.push({ row: r });
    });
    var H = mt + lines.reduce(function (a, l) { return a + (l.scope ? sh : rh); }, 0) + 8;
    var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": "lifecycle timeline" }, box);
    function X(t) { return lw + (t - gz.lo) / (gz.hi - gz.lo) * pw; }
    timeAxis(svg, lw, lw + pw, mt - 8, gz.lo, gz.hi, H);
    // the axis was drawn at the top: flip its labels above the line
    Array.prototype.forEach.call(svg.querySelectorAll(".axis text"), function (t) { t.setAttribute("y", mt - 14); });
    var cp = sv("clipPath", { id: "ganttclip" }, sv("defs", null, svg)); sv("rect", { x: lw, y: 0, width: pw, height: H }, cp);
    var y = mt, maxB = 1;
    G.rows.forEach(function (r) { if (r.peak > maxB) maxB = r.peak; });
    var minw = (gz.hi - gz.lo) / pw; // one pixel in ns
    lines.forEach(function (l) {
      if (l.scope) {
        sv("rect", { x: 0, y: y, width: W, height: sh, fill: "#f0f3f7" }, svg);
        sv("text", { x: 8, y: y + 15, "font-size": 12, "font-weight": 650, fill: "#1f2933", text: (l.scope.module === "__main__" ? "" : l.scope.module + " : ") + l.scope.scope, "class": "scope-label" }, svg);
        y += sh; return;
      }
      var r = l.row, g = sv("g", { "class": "gantt-row" + (r.leak ? " leak" : ""), "data-key": r.key }, svg);
      sv("line", { x1: 0, x2: W, y1: y + rh, y2: y + rh, stroke: "#f3f4f6" }, g);
      var label = sv("text", { x: 20, y: y + 14, "font-size": 12, fill: r.leak ? "#a61b1b" : "#1f2933", "font-family": "ui-monospace,Menlo,Consolas,monospace", text: r.var, "class": "var-label" }, g);
      tipOn(label, r.module + ":" + r.scope + "." + r.var + "\npeak " + fmtBytes(r.peak) + " · " + fmtInt(r.binds) + " binds" + (r.leak ? "\nLEAKED: see the Leaks panel" : ""));
      if (r.leak) sv("text", { x: lw - 8, y: y + 14, "text-anchor": "end", "font-size": 10.5, fill: "#d64545", "font-weight": 700, text: "LEAK" }, g);
      var bars = sv("g", { "clip-path": "url(#ganttclip)" }, g);
      function draw(segs, yy, hh, kind) {
        var last = null;
        segs.forEach(function (s) {
          if (s[1] < gz.lo || s[0] > gz.hi) return;
          if (last && s[0] - last.e < minw) { last.e = Math.max(last.e, s[1]); last.b = Math.max(last.b, s[2]); last.n += s[3]; last.f = last.f || s[4]; return; }
          if (last) out(last);
          last = { s: s[0], e: s[1], b: s[2], n: s[3], f: s[4] };
        });
        if (last) out(last);
        function out(q) {
          var x0 = X(q.s), x1 = Math.max(X(q.e), x0 + 2);
          var fill = kind === "bind" ? (q.f ? "#d64545" : "#2f6fdb") : (q.f ? "#f08080" : "#9aa5b1");
          var op = kind === "bind" ? 0.45 + 0.55 * Math.sqrt(Math.max(q.b, 0) / maxB) : 0.9;
          var rc = sv("rect", { x: x0.toFixed(1), y: yy, width: (x1 - x0).toFixed(1), height: hh, rx: 2, fill: fill, "fill-opacity": op.toFixed(2), "class": kind === "bind" ? "seg-bind" : "seg-obj" }, bars);
          tipOn(rc, (kind === "bind" ? "binding of " : "object first bound to ") + r.scope + "." + r.var + (q.f ? "  (LEAKED)" : "") + "\n" + fmtNs(q.s) + " → " + fmtNs(q.e) + "   (" + fmtNs(q.e - q.s) + ")\n" + (q.n > 1 ? fmtInt(q.n) + " merged · largest " : "") + fmtBytes(q.b));
        }
      }
      draw(r.objs, y + 14, 4, "obj");
      draw(r.segs, y + 3, 10, "bind");
      y += rh;
    });
    brush(svg, lw, 0, pw, H, function (a, b) {
      var lo = gz.lo + (a - lw) / pw * (gz.hi - gz.lo), hi = gz.lo + (b - lw) / pw * (gz.hi - gz.lo);
      gz.lo = lo; gz.hi = Math.max(hi, lo + 1); renderGantt();
    }).setAttribute("fill-opacity", 0);
    // the brush sits on top; forward hover to bars under it
    var note = document.getElementById("gantt-note");
    note.textContent = (G.omitted ? fmtInt(G.rows.length) + " largest variables shown; " + fmtInt(G.omitted) + " smaller ones are in the table above. " : "") + "Thin grey bars: how long the object lived (finalization seen in full mode); red: leaked.";
    var area = svg.querySelector(".brush-area");
    area.addEventListener("mousemove", function (ev) {
      area.style.pointerEvents = "none";
      var under = document.elementFromPoint(ev.clientX, ev.clientY);
      area.style.pointerEvents = "";
      if (under && under.dispatchEvent && (under.classList.contains("seg-bind") || under.classList.contains("seg-obj"))) {
        under.dispatchEvent(new MouseEvent("mousemove", { clientX: ev.clientX, clientY: ev.clientY }));
      } else hideTip();
    });
    area.addEventListener("mouseleave", hideTip);
  }

  // a binding whose call was not recorded (a sampled function instance) has no thread
  function threadName(key) { return key === "?" ? "thread not recorded (calls sampled out)" : "thread " + key; }

  // ---- scopes ----------------------------------------------------------------------
  function renderScopes() {
    var box = document.getElementById("icicle"), T = D.scope_tree;
    if (!T.peak) { empty(box, "No scope held tracked memory."); }
    else {
      clear(box);
      var depth = 0;
      (function walk(n, d) { depth = Math.max(depth, d); n.children.forEach(function (c) { walk(c, d + 1); }); })(T, 0);
      var W = width(box), rh = 30, H = (depth + 1) * rh + 4;
      var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": "scopes icicle" }, box);
      var colors = ["#1f2933", "#2f6fdb", "#4c8bf5", "#74a7f7", "#9cc1fa", "#c3dafc"];
      (function lay(n, x, w, d, path) {
        var g = sv("g", { "class": "ice", "data-name": n.name }, svg);
        var fill = colors[Math.min(d, colors.length - 1)];
        var rc = sv("rect", { x: x + 0.5, y: d * rh + 0.5, width: Math.max(w - 1, 0.5), height: rh - 2, rx: 3, fill: fill }, g);
        var full = path.concat([n.name]).join(" › ");
        tipOn(rc, full + "\n" + fmtBytes(n.peak) + ": the sum of the peaks of its scopes (bind-time bytes), each at its own moment" + (d === 0 ? ", so it can exceed the run's bind-time peak of " + fmtBytes(O.peak) : ""));
        if (w > 46) {
          var lbl = (d === 0 ? "all scopes: Σ of each scope's peak " : n.name + "  ") + fmtBytes(n.peak), maxc = Math.floor((w - 10) / 6.6);
          if (lbl.length > maxc) lbl = maxc > 10 ? n.name.slice(0, maxc - 1) + "…" : n.name.slice(0, Math.max(1, maxc - 1)) + "…";
          var tx = sv("text", { x: x + 6, y: d * rh + 19, "font-size": 12, fill: d >= 3 ? "#1f2933" : "#fff", text: lbl }, g);
          tx.style.pointerEvents = "none";
        }
        var sum = n.children.reduce(function (a, c) { return a + c.peak; }, 0) || 1, cx = x;
        var scale = Math.max(sum, n.peak);
        n.children.forEach(function (c) { var cw = w * c.peak / scale; lay(c, cx, cw, d + 1, path.concat([n.name])); cx += cw; });
      })(T, 0, W, 0, []);
      box.appendChild(el("p", { cls: "hint", id: "icicle-note", text: "Each box is the sum of the peaks of the scopes under it (bind-time bytes, each scope's peak at its own moment, not at one time): the whole row can exceed the run's bind-time peak (" + fmtBytes(O.peak) + ")." }));
    }
    var table = document.getElementById("scope-table");
    var head = el("tr"); ["scope", "module", "binds", "bytes bound", "peak", "live at end"].forEach(function (x, i) { head.appendChild(el("th", { text: x, cls: i >= 2 ? "num" : "" })); });
    table.tHead.appendChild(head);
    D.scopes.forEach(function (s) {
      table.tBodies[0].appendChild(el("tr", null, [el("td", { cls: "name", text: s.scope }), el("td", { cls: "mono", text: s.module }), el("td", { cls: "num", text: fmtInt(s.binds) }), el("td", { cls: "num", text: fmtBytes(s.bytes) }), el("td", { cls: "num", text: fmtBytes(s.peak) }), el("td", { cls: "num", text: fmtInt(s.active) })]));
    });
  }

  // ---- leaks -----------------------------------------------------------------------
  function renderLeaks() {
    var box = document.getElementById("leak-list");
    if (!D.leaks.length) {
      empty(box, I.leak_check === "on" ? "No leaks found: no object made in a scope that ended is still reachable from a global, a class, a pending task or a running thread, other than through a live name." : "Leak check " + (I.leak_check || "off") + " (nothing was looked for: this is not a clean bill of health).");
      return;
    }
    box.appendChild(el("p", { cls: "hint", text: fmtInt(O.leaks) + " object(s) made in a scope that ended, still reachable, " + fmtBytes(O.leak_bytes) + " retained in all; one card per site and holder chain. Each shows where it was made and the chain that holds it (no keys or values are shown)." }));
    D.leaks.slice().sort(function (a, b) { return b.size - a.size; }).forEach(function (lk) {
      var card = el("div", { cls: "leakcard", "data-var": lk.var });
      card.appendChild(el("h3", null, [el("span", { cls: "mono", text: lk.scope + "." + lk.var }), " — ", el("span", { text: (lk.count > 1 ? fmtInt(lk.count) + " × " : "") + lk.type }), el("span", { cls: "badge red", text: fmtBytes(lk.size) })]));
      card.appendChild(el("div", { cls: "where", text: "created in " + lk.module + ":" + lk.scope + " at " + lk.file + ":" + lk.line + (lk.t >= 0 ? (lk.at_end ? " · found at the run's end (" + fmtNs(lk.t) + ")" : " · found at " + fmtNs(lk.t)) : "") }));
      var ul = el("ul", { cls: "chain" });
      if (!lk.holders.length) ul.appendChild(el("li", { text: "holder not identified" }));
      lk.holders.forEach(function (h) { ul.appendChild(el("li", { cls: "mono", text: h })); });
      card.appendChild(ul);
      box.appendChild(card);
    });
  }

  // ---- relationships graph ---------------------------------------------------------
  function renderGraph() {
    var box = document.getElementById("graph"), Gr = D.graph;
    if (!Gr.nodes.length) { empty(box, "No two names shared an object and no holder kept a tracked object alive."); return; }
    clear(box);
    var W = width(box);
    var N = Gr.nodes.map(function (n) { return { n: n, x: 0, y: 0, vx: 0, vy: 0 }; });
    var idx = {}; N.forEach(function (p, i) { idx[p.n.id] = i; });
    var E = Gr.edges.map(function (e) { return { a: idx[e.a], b: idx[e.b], e: e }; }).filter(function (e) { return e.a !== undefined && e.b !== undefined; });
    // connected components, each laid out by a deterministic force layout
    // (Fruchterman-Reingold), then packed in rows, largest first
    var parent = N.map(function (_, i) { return i; });
    function find(i) { while (parent[i] !== i) { parent[i] = parent[parent[i]]; i = parent[i]; } return i; }
    E.forEach(function (e) { parent[find(e.a)] = find(e.b); });
    var comps = {};
    N.forEach(function (p, i) { var r = find(i); (comps[r] = comps[r] || []).push(i); });
    var list = Object.keys(comps).map(function (k) { return comps[k]; }).sort(function (a, b) { return b.length - a.length; });
    var k = 80, boxes = [];
    list.forEach(function (c) {
      var inC = {}; c.forEach(function (i, j) { inC[i] = 1; var a = 2 * Math.PI * j / c.length; N[i].x = Math.cos(a) * k; N[i].y = Math.sin(a) * k; });
      var ce = E.filter(function (e) { return inC[e.a]; });
      for (var it = 0; it < 250 && c.length > 1; it++) {
        var temp = k * (1 - it / 250) + 0.5;
        c.forEach(function (i) { N[i].vx = 0; N[i].vy = 0; });
        for (var a = 0; a < c.length; a++) for (var b = a + 1; b < c.length; b++) {
          var p = N[c[a]], q = N[c[b]], dx = p.x - q.x, dy = p.y - q.y, d2 = dx * dx + dy * dy + 0.01, f = k * k / d2;
          p.vx += dx * f; p.vy += dy * f; q.vx -= dx * f; q.vy -= dy * f;
        }
        ce.forEach(function (e) {
          var p = N[e.a], q = N[e.b], dx = p.x - q.x, dy = p.y - q.y, d = Math.sqrt(dx * dx + dy * dy) + 0.01, f = d / k;
          p.vx -= dx * f; p.vy -= dy * f; q.vx += dx * f; q.vy += dy * f;
        });
        c.forEach(function (i) {
          var p = N[i]; p.vx -= p.x * 0.03; p.vy -= p.y * 0.03;
          var l = Math.sqrt(p.vx * p.vx + p.vy * p.vy) + 0.01, s = Math.min(l, temp) / l;
          p.x += p.vx * s; p.y += p.vy * s;
        });
      }
      // labels run to the right: stand wide components upright
      var sx = 0, sy = 0;
      c.forEach(function (i) { sx = Math.max(sx, Math.abs(N[i].x)); sy = Math.max(sy, Math.abs(N[i].y)); });
      if (sx > sy) c.forEach(function (i) { var t = N[i].x; N[i].x = N[i].y; N[i].y = t; });
      var x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      c.forEach(function (i) { x0 = Math.min(x0, N[i].x); x1 = Math.max(x1, N[i].x); y0 = Math.min(y0, N[i].y); y1 = Math.max(y1, N[i].y); });
      boxes.push({ c: c, x0: x0, y0: y0, w: x1 - x0 + 310, h: y1 - y0 + 40 });
    });
    var cx = 30, cy = 20, rowH = 0, maxW = W - 20;
    boxes.forEach(function (b) {
      if (cx + b.w > maxW && cx > 30) { cx = 30; cy += rowH + 20; rowH = 0; }
      b.c.forEach(function (i) { N[i].x = N[i].x - b.x0 + cx; N[i].y = N[i].y - b.y0 + cy + 20; });
      cx += b.w + 20; rowH = Math.max(rowH, b.h);
    });
    var H = cy + rowH + 20;
    var sc = 1;
    N.forEach(function (p) { if (p.x + 240 > W) sc = Math.min(sc, (W - 240) / p.x); });
    if (sc < 1) N.forEach(function (p) { p.x *= sc; });
    var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": "relationships" }, box);
    if (Gr.omitted_nodes) box.appendChild(el("div", { cls: "hint", text: "The " + fmtInt(N.length) + " most connected names are shown; " + fmtInt(Gr.omitted_nodes) + " more names and " + fmtInt(Gr.omitted_edges) + " links are left out." }));
    var ge = sv("g", null, svg);
    E.forEach(function (e) {
      var p = N[e.a], q = N[e.b], holds = e.e.kind === "holds";
      var ln = sv("line", { x1: p.x, y1: p.y, x2: q.x, y2: q.y, stroke: holds ? "#d64545" : "#2f6fdb", "stroke-width": Math.min(6, 1.2 + Math.log2(e.e.n)), "stroke-opacity": 0.7, "stroke-dasharray": holds ? "5 4" : "", "class": "edge edge-" + e.e.kind }, ge);
      tipOn(ln, holds ? e.e.a + "\nholds " + e.e.b : e.e.a + "  ⇄  " + e.e.b + "\nbound to the same object " + fmtInt(e.e.n) + " time(s)");
    });
    N.forEach(function (p) {
      var holder = p.n.kind === "holder";
      var g = sv("g", { "class": "node", "data-id": p.n.id }, svg);
      var r = holder ? 6 : 5 + Math.min(9, Math.log2(Math.max(p.n.bytes, 1)) / 2.5);
      var c = holder ? sv("rect", { x: p.x - r, y: p.y - r, width: 2 * r, height: 2 * r, fill: "#d64545" }, g) : sv("circle", { cx: p.x, cy: p.y, r: r, fill: "#2f6fdb", stroke: "#fff", "stroke-width": 1.5 }, g);
      tipOn(c, p.n.id + (p.n.bytes >= 0 ? "\npeak " + fmtBytes(p.n.bytes) : "") + "\n" + fmtInt(p.n.deg) + " link(s)");
      var label = p.n.id.length > 42 ? p.n.id.slice(0, 40) + "…" : p.n.id;
      var right = false;
      sv("text", { x: right ? p.x - r - 4 : p.x + r + 4, y: p.y + 4, "text-anchor": right ? "end" : "start", "font-size": 11.5, fill: "#1f2933", "font-family": holder ? "" : "ui-monospace,Menlo,Consolas,monospace", text: label, "paint-order": "stroke", stroke: "#fff", "stroke-width": 3 }, g);
    });
  }

  // ---- buffers ----------------------------------------------------------------------
  function renderBuffers() {
    var sum = document.getElementById("buf-summary"), table = document.getElementById("buf-table");
    if (!D.buffers.length) { table.parentNode.style.display = "none"; empty(sum, "No variable held a buffer (NumPy, ctypes, mmap, bytes-like) in this run" + (I.mode === "fast" ? "; buffer addresses are recorded in full mode." : ".")); return; }
    sum.appendChild(el("span", null, [el("b", { text: fmtInt(D.buffers.length) + " buffer variable(s)" }), " holding " + fmtBytes(O.buffer_bytes) + " of buffer memory."]));
    var head = el("tr"); ["variable", "scope", "type", "address", "buffer", "bytes", "binds", "lifetime", "shares buffer with"].forEach(function (x, i) { head.appendChild(el("th", { text: x, cls: (i >= 4 && i <= 7) ? "num" : "" })); });
    table.tHead.appendChild(head);
    D.buffers.forEach(function (b) {
      table.tBodies[0].appendChild(el("tr", { "data-key": b.key }, [el("td", { cls: "name", text: b.var }), el("td", { cls: "mono", text: b.scope }), el("td", { cls: "mono", text: b.types.join(", ") }), el("td", { cls: "mono muted", text: b.addr }), el("td", { cls: "num", text: fmtBytes(b.bufsize) }), el("td", { cls: "num", text: fmtBytes(b.bytes) }), el("td", { cls: "num", text: fmtInt(b.binds) }), el("td", { cls: "num", text: (b.live ? "≥ " : "") + fmtNs(b.lifetime) }), el("td", { cls: "mono", text: b.shares.length ? b.shares.join(", ") : "—" })]));
    });
  }

  // ---- lanes ----------------------------------------------------------------------
  function renderLanes() {
    var box = document.getElementById("lane-chart"), L = D.lanes;
    var lanes = [];
    L.thread.forEach(function (t) { lanes.push({ kind: "thread", l: t }); });
    L.task.forEach(function (t) { lanes.push({ kind: "task", l: t }); });
    if (!lanes.length) { empty(box, "No thread or task recorded a binding."); }
    else {
      clear(box);
      var W = width(box), lw = 220, mr = 16, mt = 30, rh = 46, pw = W - lw - mr, H = mt + lanes.length * rh + 6;
      var svg = sv("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": "lanes" }, box);
      timeAxis(svg, lw, lw + pw, mt - 8, 0, SPAN, H);
      Array.prototype.forEach.call(svg.querySelectorAll(".axis text"), function (t) { t.setAttribute("y", mt - 14); });
      function X(t) { return lw + t / SPAN * pw; }
      lanes.forEach(function (ln, i) {
        var y = mt + i * rh, l = ln.l, g = sv("g", { "class": "lane", "data-kind": ln.kind, "data-key": l.key }, svg);
        sv("rect", { x: 0, y: y, width: W, height: rh - 2, fill: i % 2 ? "#fafbfc" : "#fff" }, g);
        sv("text", { x: 10, y: y + 18, "font-size": 12.5, "font-weight": 600, fill: "#1f2933", text: ln.kind === "task" ? (l.key === "-" ? "outside asyncio tasks" : "task " + l.key) : threadName(l.key) }, g);
        sv("text", { x: 10, y: y + 34, "font-size": 11, fill: "#616e7c", text: fmtInt(l.binds) + " binds · peak " + fmtBytes(l.peak) }, g);
        var grp = S.groups[ln.kind], gi = grp ? grp.keys.indexOf(l.key) : -1;
        sv("rect", { x: X(l.first), y: y + rh - 9, width: Math.max(2, X(l.last) - X(l.first)), height: 4, rx: 2, fill: "#cbd2d9", "class": "lane-span" }, g);
        if (gi >= 0) {
          var vals = grp.values[gi], mx = 0; vals.forEach(function (v) { if (v > mx) mx = v; });
          if (mx > 0) {
            var pts = ["M" + X(0) + "," + (y + rh - 10)];
            vals.forEach(function (v, j) { var yy = y + rh - 10 - v / mx * (rh - 16); pts.push("L" + X(S.t[j]).toFixed(1) + "," + yy.toFixed(1) + "L" + X(S.t[j] + S.step).toFixed(1) + "," + yy.toFixed(1)); });
            pts.push("L" + X(SPAN) + "," + (y + rh - 10) + "Z");
            var p = sv("path", { d: pts.join(""), fill: PALETTE[i % PALETTE.length], "fill-opacity": 0.55, stroke: PALETTE[i % PALETTE.length], "stroke-width": 0.8 }, g);
            tipOn(p, (ln.kind === "task" ? "task " + l.key : threadName(l.key)) + "\nactive " + fmtNs(l.first) + " → " + fmtNs(l.last) + "\npeak " + fmtBytes(l.peak) + " (lane scaled to its own peak)");
          }
        }
      });
    }
    var pl = document.getElementById("proc-list");
    (L.proc || []).forEach(function (p) {
      pl.appendChild(el("div", { "class": "proc" }, [el("b", { text: "process " + p.key }), (p.ppid ? " · parent " + p.ppid : "") + (p.argv0 ? " · " + p.argv0 : "") + (p.binds >= 0 ? " · " + fmtInt(p.binds) + " binds" : "")]));
    });
  }

  var panels = [keepHeadingsClear, renderOverview, function () { renderMemoryControls(); renderMemory(); }, renderVariables, function () {
    document.getElementById("gantt-reset").addEventListener("click", function () { gz.lo = 0; gz.hi = SPAN; renderGantt(); });
    renderGantt();
  }, renderScopes, renderLeaks, renderGraph, renderBuffers, renderLanes];
  panels.forEach(function (p) {
    try { p(); } catch (e) { console.error("memscope dashboard: a panel failed to render", e); }
  });
  var resizeTimer = null;
  window.addEventListener("resize", function () { clearTimeout(resizeTimer); resizeTimer = setTimeout(function () { renderMemory(); renderGantt(); }, 150); });
  document.body.setAttribute("data-render-ms", String(Math.round(performance.now())));
  document.body.setAttribute("data-ready", "1");
})();
