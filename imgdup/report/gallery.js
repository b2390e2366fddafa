"use strict";
// The imgdup gallery: renders one page of clusters at a time from the embedded plan, lets the
// reader change decisions, and exports the plan (the same JSON document `imgdup apply` reads).
// Every name from the file system is set with textContent, never parsed as HTML.
(function () {
  const data = JSON.parse(document.getElementById("imgdup-data").textContent);
  const plan = data.plan;
  const clusters = plan.clusters;
  const thumbs = data.thumbs;
  const rootLabel = data.root_labels;
  const PER_PAGE = 20;
  const LABEL = { keep: "keep", remove: "remove", review: "leave" };
  const NEXT = { keep: "remove", remove: "review", review: "keep" };
  const original = clusters.map((c) => c.members.map((m) => m.action));
  // The decisions live only in this page: what was last exported (at first, the scan's plan),
  // to ask before a reload or a closed tab drops decisions made since.
  const decisions = () => clusters.map((c) => c.members.map((m) => m.action).join()).join("\n");
  let exportedDecisions = decisions();
  const scanKeep = clusters.map((c) => c.keep);
  const scanReason = clusters.map((c) => c.keep_reason);
  const scanSingle = original.map((a) => a.filter((x) => x === "keep").length === 1);
  const settings = plan.settings || {};
  const THRESHOLD = Number.isInteger(settings.threshold) ? settings.threshold : 0;  // read as apply reads it
  // What two plain hashes say about the distance (imgdup.policy.distance): all of it without the
  // region rule and rotations, an upper bound with rotations (another orientation may be nearer),
  // nothing with the region rule (it needs the region hashes, which the page does not have).
  const PLAIN = settings.regions ? "none" : settings.rotations ? "bound" : "exact";
  const BITS = [0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4];
  let view = [];
  let page = 0;
  let focusC = 0;
  let focusM = 0;

  const $ = (id) => document.getElementById(id);
  // A name as the text report shows it (imgdup.report.text.display_path): a byte that is not
  // UTF-8 (a lone surrogate U+DC80-U+DCFF in the JSON, see imgdup.names) as \xNN, a backslash as
  // \\ (else a<TAB>b.jpg and a\tb.jpg would read the same), and whatever Python's isprintable()
  // refuses (a category C or Z character but the space) as Python's escape: \t, \x1b, \u200b,
  // \U000e0041. An invisible one (a zero-width space) made two names read the same, and a
  // right-to-left override turned the end of a name around (QA pass 35). A character newer than
  // Python's Unicode database is escaped by the text report alone.
  const ESCAPES = { 9: "\\t", 10: "\\n", 13: "\\r", 92: "\\\\" };
  function shown(name) {
    return name.replace(/(?! )[\p{C}\p{Z}]|\\/gu, (ch) => {
      const c = ch.codePointAt(0);
      if (ESCAPES[c]) return ESCAPES[c];
      if (c >= 0xdc80 && c <= 0xdcff) return "\\x" + (c - 0xdc00).toString(16);
      const hex = c.toString(16);
      return c < 0x100 ? "\\x" + hex.padStart(2, "0") : c < 0x10000 ? "\\u" + hex.padStart(4, "0") : "\\U" + hex.padStart(8, "0");
    });
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function human(n) {
    // As the text report writes it (human_bytes): up to GiB, and a tie (6,400 B = 6.25 KiB) to
    // the even digit, as Python's format does; toFixed rounds it up ("6.3" beside "6.2").
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    if (i === 0) return n + " B";
    const tenths = n * 10; // exact: n is a whole number of bytes over a power of two
    const down = Math.floor(tenths);
    const rounded = tenths - down === 0.5 ? down + (down % 2) : Math.round(tenths);
    return (rounded / 10).toFixed(1) + " " + units[i];
  }
  function count(n, word) { // "1 cluster", "2 clusters" (it read "1 clusters holding 3 files")
    return n + " " + word + (n === 1 ? "" : "s");
  }
  function kind(path) {
    const dot = path.lastIndexOf(".");
    return dot > path.lastIndexOf("/") ? path.slice(dot + 1).toUpperCase() : "no extension";
  }
  // A file with a hard link outside the scanned folders frees nothing (the plan says
  // "frees_space": false), as the text and JSON reports count it.
  function frees(m) { return m.action === "remove" && m.frees_space !== false ? m.bytes : 0; }
  function freed(c) {
    let s = 0;
    for (const m of c.members) s += frees(m);
    return s;
  }
  function order(c) {
    // the kept file first (shown large), then the others in plan order
    const keeper = c.members.find((m) => m.path === c.keep) || c.members.find((m) => m.action === "keep");
    return keeper ? [keeper, ...c.members.filter((m) => m !== keeper)] : c.members;
  }

  // Distances the page knows: {d, exact} (exact false: at most d), or null (not known here).
  function pair(ci, a, b) {
    if (a === b || a.sha256 === b.sha256) return { d: 0, exact: true };
    // The scan measured each member against its kept file (a reference member against the keeper).
    const single = scanSingle[ci];
    for (const [x, y] of [[a, b], [b, a]]) {
      if (x.path === scanKeep[ci] && (single || y.reference)) return { d: y.distance, exact: true };
    }
    if (PLAIN === "none" || typeof a.hash !== "string" || typeof b.hash !== "string" || a.hash.length !== b.hash.length) return null;
    let d = 0;
    for (let i = 0; i < a.hash.length; i++) d += BITS[parseInt(a.hash[i], 16) ^ parseInt(b.hash[i], 16)];
    return Number.isNaN(d) ? null : { d, exact: PLAIN === "exact" };
  }
  // Per member: a file not kept, its distance to the nearest kept file (what apply checks against
  // the threshold); a kept one, its distance to the cluster's kept file (shown large).
  function distances(ci) {
    const c = clusters[ci];
    const kept = c.members.filter((m) => m.action === "keep");
    const keeper = order(c)[0];
    // The scan's number is to the nearest of the scan's kept files: right while they all stay kept.
    const scanKept = c.members.filter((m, j) => original[ci][j] === "keep");
    const stays = scanKept.every((m) => m.action === "keep");
    return c.members.map((m, j) => {
      if (m.action === "keep") return m === keeper ? { d: 0, exact: true } : pair(ci, m, keeper);
      let best = null, exact = true;
      let rest = kept;
      if (stays && original[ci][j] !== "keep") {
        best = m.distance;
        rest = kept.filter((k) => !scanKept.includes(k));
      }
      for (const k of rest) {
        const p = pair(ci, m, k);
        if (!p || !p.exact) exact = false;
        if (p && (best === null || p.d < best)) best = p.d;
      }
      return best === null ? null : { d: best, exact: exact || best === 0 };
    });
  }
  // Files marked remove that apply may not find within the threshold of a kept file: apply
  // measures again and skips the whole cluster. {beyond, unknown}: counts.
  function risk(ci) {
    const c = clusters[ci];
    const out = { beyond: 0, unknown: 0 };
    if (c.members.every((m, j) => m.action === original[ci][j])) return out;  // the scan's own decisions
    distances(ci).forEach((p, j) => {
      if (c.members[j].action !== "remove" || (p && p.d <= THRESHOLD)) return;
      if (p && p.exact) out.beyond++;
      else out.unknown++;
    });
    return out;
  }
  function riskText(r) {
    if (r.beyond) return r.beyond + " to remove beyond the threshold (" + THRESHOLD + ") of every kept file: apply will skip this cluster";
    if (r.unknown) return r.unknown + " to remove not known to be within the threshold (" + THRESHOLD + ") of a kept file: apply measures again and skips this cluster if one is not";
    return "";
  }
  function risky() {
    return clusters.map((c, i) => i).filter((i) => { const r = risk(i); return r.beyond + r.unknown > 0; });
  }
  function rootsOf(c) { return new Set(c.members.map((m) => m.root)); }
  // A folder as the page names it: a root as its files read; a reference folder inside a scanned
  // one has no root label, and reads as the scan names its split (plan.sets).
  const setName = new Map((plan.sets || []).map((t) => [t.root, t.name]));
  function folderName(f) { return shown(Object.hasOwn(rootLabel, f) ? rootLabel[f] : setName.get(f) || f); }
  // The folders a cluster spans: the members' splits (a reference folder inside the scanned
  // one is a split of its own: -d data --reference data/train), else their roots.
  function spanOf(c) {
    // The scan's own word, over every name of every member (a hard link's, a reference folder's
    // link's): a member listed under its test name was read as test alone, and a leak was hidden.
    if (c.spans && c.spans.length > 1) return new Set(c.spans);
    return new Set(c.members.map((m) => (m.split ? "split:" + m.split : m.root)));
  }
  function conflict(c) {
    if (c.conflict || (c.label_conflict && c.label_conflict.length)) return true;
    const labels = new Set(c.members.filter((m) => m.label !== undefined && m.label !== null).map((m) => String(m.label)));
    return labels.size > 1;
  }
  function broken(c) {
    // The last copy is never removed: apply refuses a cluster that removes without keeping.
    return c.members.some((m) => m.action === "remove") && !c.members.some((m) => m.action === "keep");
  }

  // The rows of the roots table a member counts in: its root's and its hard links' roots' (test/a.jpg
  // that is train/z.jpg too counted under test alone, beside a header and a filter that say train; QA pass 35).
  function rowsOf(per, m) {
    const rows = [per.get(m.root)];
    for (const n of m.hardlinks || []) {
      const p = per.get(plan.roots.find((r) => n.startsWith(r.replace(/\/+$/, "") + "/")));
      if (!rows.includes(p)) rows.push(p);
    }
    return rows.filter(Boolean);
  }
  function summary() {
    let files = 0, remove = 0, review = 0, bytes = 0;
    const per = new Map(plan.roots.map((r) => [r, { files: 0, remove: 0, bytes: 0 }]));
    for (const c of clusters) {
      for (const m of c.members) {
        files++;
        const rows = rowsOf(per, m);
        for (const p of rows) p.files++;
        if (m.action === "remove") { remove++; bytes += frees(m); for (const p of rows) { p.remove++; p.bytes += frees(m); } }
        if (m.action === "review") review++;
      }
    }
    return { files, remove, review, bytes, per };
  }
  const refCount = (plan.reference_clusters || []).length;
  function drawSummary() {
    const s = summary();
    const scanned = plan.summary || {};
    $("summary").textContent =
      (scanned.files !== undefined ? count(scanned.files, "file") + " scanned, " : "") +
      count(clusters.length, "cluster") + " holding " + count(s.files, "file") + ": " + s.remove + " to remove (" + human(s.bytes) +
      " to free), " + s.review + " left alone" +
      (scanned.failures ? ", " + scanned.failures + " unreadable (listed at the end)" : "") +
      (scanned.label_conflicts ? ", " + scanned.label_conflicts + (scanned.label_conflicts === 1 ? " label conflict" : " label conflicts") +
        ((plan.linked_label_conflicts || []).length ? " (files under several labels listed at the end)" : "") : "") +
      (plan.settings ? " · " + plan.settings.hash + ", threshold " + plan.settings.threshold : "") +
      // the page's own summary said so, but only until this redraw replaced it on load
      (refCount ? " · " + refCount + (refCount === 1 ? " cluster" : " clusters") +
        " only inside the reference (never acted on, below)" : "");
    const body = $("roots").tBodies[0];
    body.textContent = "";
    for (const [root, p] of s.per) {
      const tr = el("tr");
      const name = el("td", "", shown(rootLabel[root]));  // a folder name: any bytes, as a file name
      name.title = shown(root);
      tr.append(name, el("td", "", String(p.files)), el("td", "", String(p.remove)), el("td", "", human(p.bytes)));
      body.append(tr);
    }
    let changed = 0;
    clusters.forEach((c, i) => c.members.forEach((m, j) => { if (m.action !== original[i][j]) changed++; }));
    const bad = clusters.filter(broken).length;
    const skip = risky().length;
    $("changes").textContent = (changed ? changed + (changed === 1 ? " decision changed" : " decisions changed") : "no decision changed") +
      (decisions() !== exportedDecisions ? " (not exported yet)" : "") +
      (bad ? " · " + bad + (bad === 1 ? " cluster removes" : " clusters remove") + " every copy: keep one before exporting" : "") +
      (skip ? " · apply may skip " + skip + (skip === 1 ? " cluster" : " clusters") + ": a file to remove is not known to be within the threshold of a kept file" : "");
  }

  function filterSort() {
    const review = $("f-review").checked, between = $("f-roots").checked, conf = $("f-conflict").checked;
    view = [];
    clusters.forEach((c, i) => {
      if (review && !c.members.some((m) => m.action === "review")) return;
      if (between && spanOf(c).size < 2) return;
      if (conf && !conflict(c)) return;
      view.push(i);
    });
    const key = $("sort").value;
    const score = {
      bytes: (c) => freed(c),
      size: (c) => c.members.length,
      distance: (c) => c.diameter,
    }[key];
    if (score) view.sort((a, b) => score(clusters[b]) - score(clusters[a]) || a - b);
    page = 0;
    focusC = 0;
    focusM = 0;
  }

  function tile(ci, mi, big, dist) {
    const c = clusters[ci];
    const m = c.members[mi];
    const box = el("div", "file " + m.action + (big ? " big" : ""));
    if (original[ci][mi] !== m.action) box.classList.add("changed");
    const t = el("div", "thumb");
    const src = thumbs[m.sha256];
    if (src) {
      const img = el("img");
      img.loading = "lazy";
      img.decoding = "async";
      img.alt = shown(m.relpath);
      img.src = src;
      t.append(img);
    } else {
      t.append(el("span", "info", "(no preview)"));
    }
    box.append(t);
    const act = el("div", "", "");
    act.append(el("span", "act", LABEL[m.action]));
    if (m.path !== c.keep) {
      const p = dist[mi];
      // How the scan's link was made (a border peeled off, a part of the picture...), for the scan's keeper.
      const how = m.linked_by && m.linked_by !== "whole image" && !m.via && c.keep === scanKeep[ci] ? " (" + m.linked_by + ")" : "";
      const d = el("span", "info distance", " · distance " + (p ? (p.exact ? "" : "≤ ") + p.d : "—") + how);
      if (!p) d.title = "not known in the page (the region rule needs more than the plain hash); imgdup apply measures it";
      if (m.action === "remove" && !(p && p.d <= THRESHOLD)) d.classList.add("bad");
      act.append(d);
    }
    // Beyond the threshold of the scan's kept file: the member it joined the cluster through.
    const via = m.via && c.keep === scanKeep[ci] ? c.members.find((x) => x.path === m.via) : null;
    box.append(act);
    const name = el("div", "name", shown(rootLabel[m.root] + "/" + m.relpath));
    name.title = shown(m.path);
    box.append(name);
    box.append(el("div", "info", m.width + "×" + m.height + " · " + shown(kind(m.path)) + " · " + human(m.bytes)));
    if (via) box.append(el("div", "info via", "joined through " + shown(rootLabel[via.root] + "/" + via.relpath) + " at " + m.via_distance +
      (m.linked_by && m.linked_by !== "whole image" ? " (" + m.linked_by + ")" : "")));
    const tags = el("div", "tags");
    for (const key of ["label", "split", "role"]) {
      if (m[key] !== undefined && m[key] !== null && m[key] !== "") tags.append(el("span", "", key + ": " + shown(String(m[key]))));
    }
    if (m.reference) tags.append(el("span", "", "reference (never removed)"));
    // apply removes it only if every frame matches a kept file's: a GIF is not its still frame
    if (m.frames > 1) tags.append(el("span", "", m.frames + " frames (animation or pages)"));
    if (m.hardlinks && m.hardlinks.length) tags.append(el("span", "", "+" + m.hardlinks.length + " hard link(s)"));
    if (m.frees_space === false) tags.append(el("span", "nofree", "frees no space: a hard link outside the scanned folders keeps it"));
    if (tags.childNodes.length) box.append(tags);
    if (m.path === c.keep && c.keep_reason) box.append(el("div", "reason", "kept: " + c.keep_reason));
    const acts = el("div", "acts");
    for (const action of ["keep", "remove", "review"]) {
      const b = el("button", "set-" + action, LABEL[action]);
      b.type = "button";
      b.setAttribute("aria-pressed", String(m.action === action));
      if (m.reference && action !== "keep") {
        b.disabled = true;  // apply refuses a plan that touches a reference file
        b.title = "a reference file is always kept";
      }
      b.addEventListener("click", () => setAction(ci, mi, action));
      acts.append(b);
    }
    box.append(acts);
    const only = el("button", "only", "keep only this one");
    only.type = "button";
    only.addEventListener("click", () => keepOnly(ci, mi));
    box.append(only);
    return box;
  }

  function card(i, pos) {
    const c = clusters[i];
    const box = el("section", "cluster");
    box.dataset.cluster = String(c.id);
    box.dataset.pos = String(pos);
    const h = el("h2", "", "Cluster " + c.id + " ");
    // The folders it spans, as the "between roots" filter reads them: a hard link's too (QA pass 35).
    const roots = (c.spans && c.spans.length > 1 ? c.spans : [...rootsOf(c)]).map(folderName);
    const joined = c.members.filter((m) => m.via).length;  // beyond the threshold, in through others
    h.append(el("span", "meta", c.members.length + " files · distance up to " + c.diameter +
      (joined ? " (" + joined + " joined through others)" : "") + " · frees " +
      human(freed(c)) + " · " + roots.join(", ")));
    if (conflict(c)) h.append(el("span", "bad", " · label conflict"));
    if (broken(c)) h.append(el("span", "bad", " · removes every copy: keep one"));
    const warn = riskText(risk(i));
    if (warn) h.append(el("span", "bad skip", " · " + warn));
    box.append(h);
    const row = el("div", "row");
    const keeper = c.members.find((m) => m.path === c.keep) || c.members.find((m) => m.action === "keep");
    const dist = distances(i);
    if (keeper) row.append(tile(i, c.members.indexOf(keeper), true, dist));
    const others = el("div", "others");
    c.members.forEach((m, j) => { if (m !== keeper) others.append(tile(i, j, false, dist)); });
    row.append(others);
    box.append(row);
    box.addEventListener("click", () => { focusC = pos; markFocus(false); });
    return box;
  }

  function render() {
    const main = $("clusters");
    const pages = Math.max(1, Math.ceil(view.length / PER_PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    const frag = document.createDocumentFragment();
    const first = page * PER_PAGE;
    view.slice(first, first + PER_PAGE).forEach((i, k) => frag.append(card(i, k)));
    // With no cluster at all there is no filter to blame (QA pass 33: it said "matches the filters").
    if (!view.length) frag.append(el("p", "", clusters.length ? "No cluster matches the filters." : "No duplicates found."));
    main.textContent = "";
    main.append(frag);
    $("page").textContent = "page " + (page + 1) + " of " + pages + " (" + count(view.length, "cluster") + ")";
    drawSummary();
    markFocus(false);
  }

  function markFocus(scroll) {
    const cards = document.querySelectorAll(".cluster");
    cards.forEach((e) => e.classList.remove("focus"));
    document.querySelectorAll(".file.focus").forEach((e) => e.classList.remove("focus"));
    if (!cards.length) return;
    focusC = Math.min(Math.max(focusC, 0), cards.length - 1);
    const card = cards[focusC];
    card.classList.add("focus");
    const files = card.querySelectorAll(".file");
    focusM = Math.min(Math.max(focusM, 0), files.length - 1);
    files[focusM].classList.add("focus");
    if (!scroll) return;
    // The card, then the file: a card taller than the window is "in view" at its top, and the
    // keys went on acting on a file below it that the reviewer could not see (QA pass 33).
    card.scrollIntoView({ block: "nearest" });
    files[focusM].scrollIntoView({ block: "nearest" });
  }

  function rerenderCard(ci, mi) {
    const c = clusters[ci];
    // The keeper's name and reason follow the decisions: the scan's reason only for the scan's keeper.
    c.keep_reason = c.keep === scanKeep[ci] ? scanReason[ci] : c.keep ? "chosen in review" : "";
    const pos = view.slice(page * PER_PAGE, page * PER_PAGE + PER_PAGE).indexOf(ci);
    const old = document.querySelector('.cluster[data-pos="' + pos + '"]');
    if (pos >= 0 && old) {
      old.replaceWith(card(ci, pos));
      // The focus follows the file just decided on, wherever the card now shows it.
      focusC = pos;
      focusM = order(c).indexOf(c.members[mi]);
    }
    drawSummary();
    markFocus(pos >= 0 && !!old);  // the file decided on stays in view where the card now shows it
  }
  function setAction(ci, mi, action) {
    const c = clusters[ci];
    const m = c.members[mi];
    if (m.reference) return;  // always kept (the buttons are disabled; this covers the keys)
    m.action = action;
    if (action === "keep" && !c.members.some((o) => o.path === c.keep && o.action === "keep")) c.keep = m.path;
    if (c.keep === m.path && action !== "keep") {
      const other = c.members.find((o) => o.action === "keep");
      c.keep = other ? other.path : null;
    }
    rerenderCard(ci, mi);
  }
  function keepOnly(ci, mi) {
    const c = clusters[ci];
    // Reference files stay kept: "only this one" among the files that may be removed.
    c.members.forEach((m, j) => { m.action = j === mi || m.reference ? "keep" : "remove"; });
    c.keep = c.members[mi].path;
    rerenderCard(ci, mi);
  }
  function focusedFile() {
    const card = document.querySelectorAll(".cluster")[focusC];
    if (!card) return null;
    const ci = view[page * PER_PAGE + focusC];
    const c = clusters[ci];
    return [ci, c.members.indexOf(order(c)[focusM])];
  }

  function exported() {
    const s = summary();
    const doc = Object.assign({}, plan);
    doc.summary = Object.assign({}, plan.summary, { to_remove: s.remove, to_review: s.review, bytes_to_remove: s.bytes });
    // Big whole numbers travel as strings in the page (see html.py); the plan holds numbers
    // (negative too: a file dated before 1970).
    return JSON.stringify(doc, null, 1).replace(/"(mtime_ns|inode|device)": "(-?\d+)"/g, '"$1": $2') + "\n";
  }
  let warning = "";  // said with every export message, so a plan that apply may partly skip is never silent
  function exportCheck() {
    const bad = clusters.filter(broken);
    if (bad.length) {
      $("copied").textContent = "not exported: cluster " + bad[0].id + " removes every copy; keep one first";
      return null;
    }
    const skip = risky();
    warning = skip.length ? " · warning: apply may skip " + skip.length + (skip.length === 1 ? " cluster" : " clusters") +
      " (first: cluster " + clusters[skip[0]].id + "): " + riskText(risk(skip[0])) : "";
    const text = exported();
    exportedDecisions = decisions();
    drawSummary();
    // Kept hidden: a shown text box lays out the whole plan (12 s for the 16.7 MB plan of
    // 50,000 files, the page frozen); only the copy that falls back to selecting it shows it.
    $("plan-out").value = text;
    return text;
  }
  // Each download gets its own name (local date and time, a token of this page load, then a count
  // within one second): with one fixed name the browser saved a second download as
  // "imgdup-plan (1).json", and the command this page gave applied the first, stale one. The
  // token: the page opened again (reloaded, another report) counts afresh, and a download in the
  // same second as one before it took that one's name.
  const used = new Set();
  const token = Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, "0");
  function planName() {
    const d = new Date();
    const p = (n) => String(n).padStart(2, "0");
    const stem = "imgdup-plan-" + d.getFullYear() + p(d.getMonth() + 1) + p(d.getDate()) + "-" +
      p(d.getHours()) + p(d.getMinutes()) + p(d.getSeconds()) + "-" + token;
    let name = stem + ".json";
    for (let n = 2; used.has(name); n++) name = stem + "-" + n + ".json";
    used.add(name);
    return name;
  }
  $("download").addEventListener("click", () => {
    const text = exportCheck();
    if (text === null) return;
    const name = planName();
    const a = el("a");
    a.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    $("copied").textContent = "plan downloaded as " + name + "; apply it with: imgdup apply " + name + warning;
  });
  $("copy").addEventListener("click", () => {
    const text = exportCheck();
    if (text === null) return;
    const done = () => { $("copied").textContent = "plan copied to the clipboard" + warning; };
    const fallback = () => {
      const out = $("plan-out");
      out.hidden = false;
      out.select();
      const ok = document.execCommand && document.execCommand("copy");
      $("copied").textContent = (ok ? "plan copied to the clipboard" : "select the text below and copy it") + warning;
    };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  });

  window.addEventListener("beforeunload", (ev) => {
    if (decisions() === exportedDecisions) return;
    ev.preventDefault();  // the browser asks whether to leave: decisions made since the last export would be lost
    ev.returnValue = "";
  });
  for (const id of ["sort", "f-review", "f-roots", "f-conflict"]) $(id).addEventListener("change", () => { filterSort(); render(); });
  $("prev").addEventListener("click", () => { page--; focusC = 0; render(); window.scrollTo(0, 0); });
  $("next").addEventListener("click", () => { page++; focusC = 0; render(); window.scrollTo(0, 0); });
  document.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement ||
        ev.target instanceof HTMLTextAreaElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const f = focusedFile();
    switch (ev.key) {
      case "j": focusC++; focusM = 0; markFocus(true); break;
      case "k": focusC--; focusM = 0; markFocus(true); break;
      case "l": case "ArrowRight": focusM++; markFocus(true); break;
      case "h": case "ArrowLeft": focusM--; markFocus(true); break;
      case " ": if (f) setAction(f[0], f[1], NEXT[clusters[f[0]].members[f[1]].action]); break;
      case "Enter": if (f) keepOnly(f[0], f[1]); break;
      case "n": page++; focusC = 0; render(); window.scrollTo(0, 0); break;
      case "p": page--; focusC = 0; render(); window.scrollTo(0, 0); break;
      default: return;
    }
    ev.preventDefault();
  });

  filterSort();
  render();
  performance.mark("imgdup-first-screen"); // read by benchmarks/bench_report.py
})();
