/* The uploader client (issue 8): upload with progress, review what the server found, choose subjects,
   labels, tracers, scans and variables, verify dates, relabel in bulk through a CSV, draw pixel templates,
   and follow the transfer. Plain JavaScript, no libraries. */
(function () {
  "use strict";

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "checked" || k === "disabled" || k === "hidden" || k === "selected") node[k] = !!attrs[k];
      else if (attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function csrf() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function api(method, url, body, raw) {
    var opts = { method: method, headers: { "X-CSRFToken": csrf() }, credentials: "same-origin" };
    if (body !== undefined) {
      opts.body = raw ? body : JSON.stringify(body);
      opts.headers["Content-Type"] = raw ? "text/csv" : "application/json";
    }
    return fetch(url, opts).then(function (r) {
      var type = r.headers.get("Content-Type") || "";
      var parse = type.indexOf("json") >= 0 ? r.json() : r.text();
      return parse.then(function (data) {
        if (!r.ok) {
          var err = new Error((data && data.error) || ("The server answered " + r.status + "."));
          err.data = data;
          throw err;
        }
        return data;
      });
    });
  }
  function bytes(n) {
    if (n >= 1073741824) return (n / 1073741824).toFixed(1) + " GB";
    if (n >= 1048576) return (n / 1048576).toFixed(1) + " MB";
    if (n >= 1024) return (n / 1024).toFixed(1) + " KB";
    return n + " B";
  }
  function showError(msg) {
    var box = $("#uc-error");
    box.textContent = msg || "";
    box.hidden = !msg;
  }
  // "40 of 40" must not hide the files the import filter dropped.
  function filteredNote(t) {
    return t.filtered ? " (" + t.filtered + " filtered by the import filter, not stored)" : "";
  }
  function progressOf(t) {
    if (t.status === "UPLOADING") return t.size ? Math.round(100 * t.bytes_received / t.size) : 0;
    if (t.status === "IMPORTING" || t.status === "DONE") return t.files_total ? Math.round(100 * t.files_done / t.files_total) : (t.status === "DONE" ? 100 : 0);
    return t.status === "AWAITING" ? 100 : 0;
  }

  /* ---------------------------------------------------------------- a folder, packed as a zip */
  // A picked folder is sent as a plain (stored, uncompressed) zip of its files under their relative paths,
  // so it goes through exactly the archive route's services and checks (safe extraction, size limits,
  // relative paths only). The Blob references the files: nothing is copied into memory but one file at a
  // time, read once for its CRC-32.
  var CRC_TABLE = null;
  function crc32(bytes, crc) {
    if (!CRC_TABLE) {
      CRC_TABLE = new Uint32Array(256);
      for (var n = 0; n < 256; n++) { var c = n; for (var k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1; CRC_TABLE[n] = c >>> 0; }
    }
    crc = crc ^ 0xFFFFFFFF;
    for (var i = 0; i < bytes.length; i++) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xFF] ^ (crc >>> 8);
    return (crc ^ 0xFFFFFFFF) >>> 0;
  }
  var ZIP_MAX_FILES = 65535, ZIP_MAX_BYTES = 0xFFFFFFFF;
  function folderZip(files, onProgress) {
    if (files.length >= ZIP_MAX_FILES) return Promise.reject(new Error("The folder has more than " + (ZIP_MAX_FILES - 1) + " files; upload it in parts or as an archive file."));
    var total = 0;
    files.forEach(function (f) { total += f.size + 100 + f.webkitRelativePath.length * 2; });
    if (total >= ZIP_MAX_BYTES) return Promise.reject(new Error("The folder is larger than 4 GB; upload it in parts or as an archive file."));
    var parts = [], central = [], offset = 0, enc = new TextEncoder(), i = 0;
    var now = new Date(), dosTime = (now.getHours() << 11) | (now.getMinutes() << 5) | (now.getSeconds() >> 1);
    var dosDate = ((now.getFullYear() - 1980) << 9) | ((now.getMonth() + 1) << 5) | now.getDate();
    function header(sig, size) { var b = new DataView(new ArrayBuffer(size)); b.setUint32(0, sig, true); return b; }
    function next() {
      if (i >= files.length) {
        var cdSize = 0;
        central.forEach(function (c) { cdSize += c.byteLength; });
        var end = header(0x06054b50, 22);
        end.setUint16(8, files.length, true); end.setUint16(10, files.length, true);
        end.setUint32(12, cdSize, true); end.setUint32(16, offset, true);
        return Promise.resolve(new Blob(parts.concat(central, [end.buffer]), { type: "application/zip" }));
      }
      var f = files[i], name = enc.encode(f.webkitRelativePath || f.name);
      return f.arrayBuffer().then(function (buf) {
        var crc = crc32(new Uint8Array(buf), 0);
        var local = header(0x04034b50, 30 + name.length);
        local.setUint16(4, 20, true); local.setUint16(6, 0x0800, true); local.setUint16(8, 0, true);
        local.setUint16(10, dosTime, true); local.setUint16(12, dosDate, true); local.setUint32(14, crc, true);
        local.setUint32(18, f.size, true); local.setUint32(22, f.size, true); local.setUint16(26, name.length, true);
        new Uint8Array(local.buffer).set(name, 30);
        var cd = header(0x02014b50, 46 + name.length);
        cd.setUint16(4, 20, true); cd.setUint16(6, 20, true); cd.setUint16(8, 0x0800, true); cd.setUint16(10, 0, true);
        cd.setUint16(12, dosTime, true); cd.setUint16(14, dosDate, true); cd.setUint32(16, crc, true);
        cd.setUint32(20, f.size, true); cd.setUint32(24, f.size, true); cd.setUint16(28, name.length, true);
        cd.setUint32(42, offset, true);
        new Uint8Array(cd.buffer).set(name, 46);
        parts.push(local.buffer, f);  // the File itself, not a copy of its bytes
        central.push(cd.buffer);
        offset += local.byteLength + f.size;
        i += 1;
        if (onProgress) onProgress(i, files.length);
        return next();
      });
    }
    return next();
  }

  /* ---------------------------------------------------------------- start page */
  function start() {
    var form = $("#uc-start");
    if (!form) return;
    function chosen() {
      var folder = $all("input[name=uc-kind]").filter(function (r) { return r.checked; })[0];
      return folder && folder.value === "folder";
    }
    $all("input[name=uc-kind]").forEach(function (r) {
      r.addEventListener("change", function () {
        $("#uc-file-box").hidden = chosen(); $("#uc-folder-box").hidden = !chosen();
      });
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      showError("");
      var picked;
      if (chosen()) {
        var files = Array.prototype.slice.call($("#uc-folder").files);
        if (!files.length) { showError("Choose a folder with DICOM files."); return; }
        var top = (files[0].webkitRelativePath || "folder").split("/")[0] || "folder";
        $("#uc-upload").disabled = true;
        $("#uc-progress").hidden = false;
        picked = folderZip(files, function (done, total) {
          $("#uc-bytes").textContent = "Packing the folder: " + done + " of " + total + " files read";
        }).then(function (blob) { return { body: blob, name: top + ".zip", size: blob.size }; });
      } else {
        var file = $("#uc-file").files[0];
        if (!file) { showError("Choose an archive file."); return; }
        picked = Promise.resolve({ body: file, name: file.name, size: file.size });
      }
      $("#uc-upload").disabled = true;
      picked.then(function (up) { return send(up); }).catch(function (e) { showError(e.message); $("#uc-upload").disabled = false; });
    });
    function send(up) {
      return api("POST", "/upload/client/t/", { project: $("#uc-project").value, name: up.name, size: up.size })
        .then(function (created) {
          $("#uc-progress").hidden = false;
          var xhr = new XMLHttpRequest();
          xhr.open("PUT", created.upload_url);
          xhr.setRequestHeader("X-CSRFToken", csrf());
          xhr.setRequestHeader("Content-Type", "application/octet-stream");
          xhr.upload.onprogress = function (e) {
            if (!e.lengthComputable) return;
            var pct = Math.round(100 * e.loaded / e.total);
            $("#uc-bar").style.width = pct + "%";
            $("#uc-bar").textContent = pct + "%";
            $("#uc-bytes").textContent = bytes(e.loaded) + " of " + bytes(e.total);
          };
          xhr.onload = function () {
            if (xhr.status === 202) { window.location = created.page; return; }
            var msg = "The upload failed.";
            try { msg = JSON.parse(xhr.responseText).error || msg; } catch (e) { /* keep */ }
            showError(msg);
            $("#uc-upload").disabled = false;
          };
          xhr.onerror = function () { showError("The connection was lost during the upload."); $("#uc-upload").disabled = false; };
          xhr.send(up.body);
        });
    }
  }

  /* ---------------------------------------------------------------- transfers page */
  function transfers() {
    var body = $("#uc-transfers tbody");
    function render(data) {
      body.innerHTML = "";
      if (!data.transfers.length) body.appendChild(el("tr", {}, [el("td", { colspan: 6, text: "No transfers yet." })]));
      data.transfers.forEach(function (t) {
        var pct = progressOf(t);
        var detail = t.status === "UPLOADING" ? bytes(t.bytes_received) + " of " + bytes(t.size)
          : (t.files_total ? t.files_done + " of " + t.files_total + " files" + filteredNote(t) : "");
        body.appendChild(el("tr", { "data-id": t.id, "class": "uc-transfer" }, [
          el("td", { text: new Date(t.created).toLocaleString() }),
          el("td", { text: t.file_name }), el("td", { text: t.project }),
          el("td", {}, [el("span", { "class": "badge uc-status", text: t.status_display }),
            t.error ? el("div", { "class": "text-danger uc-small", text: t.error }) : null]),
          el("td", {}, [el("div", { "class": "progress" }, [el("div", { "class": "progress-bar", style: "width:" + pct + "%", text: pct + "%" })]),
            el("div", { "class": "text-muted uc-small", text: detail })]),
          el("td", {}, [el("a", { href: t.page, text: t.status === "AWAITING" ? "Review" : "Open" })])
        ]));
      });
    }
    function poll() {
      api("GET", "/upload/client/transfers.json").then(render).catch(function () { /* retry */ })
        .then(function () { setTimeout(poll, 1000); });
    }
    poll();
  }

  /* ---------------------------------------------------------------- pixel template editor */
  var editor = { rects: null, onDone: null, img: null, scale: 1, drag: null };
  function editorDraw() {
    var c = $("#uc-canvas"), ctx = c.getContext("2d");
    ctx.clearRect(0, 0, c.width, c.height);
    if (editor.img) ctx.drawImage(editor.img, 0, 0, c.width, c.height);
    ctx.fillStyle = "rgba(255,40,40,.55)";
    ctx.strokeStyle = "#ff3030";
    editor.rects.concat(editor.drag ? [editor.drag.rect] : []).forEach(function (r) {
      ctx.fillRect(r[0] * editor.scale, r[1] * editor.scale, (r[2] - r[0]) * editor.scale, (r[3] - r[1]) * editor.scale);
      ctx.strokeRect(r[0] * editor.scale, r[1] * editor.scale, (r[2] - r[0]) * editor.scale, (r[3] - r[1]) * editor.scale);
    });
    var list = $("#uc-rects");
    list.innerHTML = "";
    editor.rects.forEach(function (r, i) {
      var rm = el("button", { type: "button", "class": "btn uc-small", text: "Remove", "aria-label": "Remove rectangle " + (i + 1) });
      rm.addEventListener("click", function () { editor.rects.splice(i, 1); editorDraw(); });
      list.appendChild(el("li", { "class": "uc-rect" }, ["left " + r[0] + ", top " + r[1] + ", right " + r[2] + ", bottom " + r[3] + " ", rm]));
    });
  }
  function imagePoint(ev, bound) {
    var box = $("#uc-canvas").getBoundingClientRect();
    var x = Math.round((ev.clientX - box.left) / editor.scale), y = Math.round((ev.clientY - box.top) / editor.scale);
    return [Math.max(0, Math.min(bound[0], x)), Math.max(0, Math.min(bound[1], y))];
  }
  function editorFocusable() {
    return $all("#uc-editor button, #uc-editor input, #uc-editor select, #uc-editor [tabindex]").filter(function (n) {
      return !n.disabled && !n.hidden && n.offsetParent !== null;
    });
  }
  function editorClose(keep) {
    $("#uc-editor").hidden = true;
    if (keep && editor.onDone) editor.onDone(editor.rects);
    if (editor.opener && editor.opener.focus) editor.opener.focus();
    editor.opener = null;
  }
  // The frame to draw on (1-based over the scan's files); the rectangles apply to every frame of the scan.
  function editorFrame(n) {
    var total = editor.frames;
    $("#uc-frame").value = String(n);
    $("#uc-frame").setAttribute("aria-valuetext", "Frame " + n + " of " + total);
    $("#uc-frame-text").textContent = "Frame " + n + " of " + total;
    editorLoad(editor.url + "?frame=" + n);
  }
  function editorOpen(title, url, rects, onDone, frames) {
    editor.rects = rects.map(function (r) { return r.slice(); });
    editor.onDone = onDone;
    editor.opener = document.activeElement;
    editor.url = url;
    editor.frames = Math.max(1, frames || 1);
    $("#uc-editor-title").textContent = title;
    $("#uc-editor").hidden = false;
    $("#uc-rect-error").textContent = "";
    $("#uc-frame-box").hidden = editor.frames < 2;
    $("#uc-frame").max = String(editor.frames);
    $("#uc-rect-left").focus();
    editorFrame(Math.ceil(editor.frames / 2));
  }
  function editorLoad(src) {
    var img = new Image();
    img.onload = function () {
      if ($("#uc-canvas").dataset.src !== src) return;  // a later frame was chosen meanwhile
      editor.img = img;
      editor.scale = Math.min(512 / img.naturalWidth, 512 / img.naturalHeight);
      var c = $("#uc-canvas");
      c.width = Math.round(img.naturalWidth * editor.scale);
      c.height = Math.round(img.naturalHeight * editor.scale);
      c.dataset.ready = "1";
      editorDraw();
    };
    img.onerror = function () { showError("This scan's images cannot be shown."); };
    $("#uc-canvas").dataset.ready = "";
    $("#uc-canvas").dataset.src = src;
    img.src = src;
  }
  function editorInit() {
    var c = $("#uc-canvas");
    if (!c) return;
    c.addEventListener("mousedown", function (ev) {
      var bound = [editor.img.naturalWidth, editor.img.naturalHeight], p = imagePoint(ev, bound);
      editor.drag = { start: p, bound: bound, rect: [p[0], p[1], p[0], p[1]] };
    });
    c.addEventListener("mousemove", function (ev) {
      if (!editor.drag) return;
      var p = imagePoint(ev, editor.drag.bound), s = editor.drag.start;
      editor.drag.rect = [Math.min(s[0], p[0]), Math.min(s[1], p[1]), Math.max(s[0], p[0]), Math.max(s[1], p[1])];
      editorDraw();
    });
    window.addEventListener("mouseup", function (ev) {
      if (!editor.drag) return;
      var p = imagePoint(ev, editor.drag.bound), s = editor.drag.start;
      var r = [Math.min(s[0], p[0]), Math.min(s[1], p[1]), Math.max(s[0], p[0]), Math.max(s[1], p[1])];
      editor.drag = null;
      if (r[2] > r[0] && r[3] > r[1]) editor.rects.push(r);
      editorDraw();
    });
    var frameTimer = null;
    $("#uc-frame").addEventListener("input", function () {
      var n = parseInt(this.value, 10) || 1;
      $("#uc-frame-text").textContent = "Frame " + n + " of " + editor.frames;
      clearTimeout(frameTimer);
      frameTimer = setTimeout(function () { editorFrame(n); }, 150);
    });
    $("#uc-editor-clear").addEventListener("click", function () { editor.rects = []; editorDraw(); });
    $("#uc-editor-done").addEventListener("click", function () { editorClose(true); });
    $("#uc-editor-cancel").addEventListener("click", function () { editorClose(false); });
    // A rectangle typed in: the keyboard's way to draw one.
    $("#uc-rect-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var v = ["left", "top", "right", "bottom"].map(function (k) { return $("#uc-rect-" + k).value.trim(); });
      var w = editor.img ? editor.img.naturalWidth : 0, h = editor.img ? editor.img.naturalHeight : 0;
      var n = v.map(Number);
      var ok = v.every(function (x) { return /^\d+$/.test(x); }) && n[2] > n[0] && n[3] > n[1] && n[2] <= w && n[3] <= h;
      if (!ok) {
        $("#uc-rect-error").textContent = "Give whole numbers with left < right \u2264 " + w + " and top < bottom \u2264 " + h + ".";
        return;
      }
      $("#uc-rect-error").textContent = "";
      editor.rects.push(n);
      editorDraw();
      ["left", "top", "right", "bottom"].forEach(function (k) { $("#uc-rect-" + k).value = ""; });
      $("#uc-rect-left").focus();
    });
    // A modal dialog: Escape cancels, Tab stays inside.
    $("#uc-editor").addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { ev.preventDefault(); editorClose(false); return; }
      if (ev.key !== "Tab") return;
      var items = editorFocusable();
      if (!items.length) return;
      var first = items[0], last = items[items.length - 1];
      if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
      else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
      else if (items.indexOf(document.activeElement) < 0) { ev.preventDefault(); first.focus(); }
    });
  }

  /* ---------------------------------------------------------------- the transfer page */
  function transfer(id) {
    var base = "/upload/client/t/" + id + "/";
    var state = { rendered: false, pixel: {}, groups: {}, rows: {}, editedLabel: {} };
    editorInit();

    function renderStatus(t) {
      $("#uc-state").textContent = t.status_display;
      $("#uc-state").className = "badge uc-status status-" + t.status;
      var detail = "";
      if (t.status === "UPLOADING") detail = bytes(t.bytes_received) + " of " + bytes(t.size) + " received";
      else if (t.status === "INSPECTING") detail = "Reading the headers…";
      else if (t.status === "AWAITING") detail = "Nothing has been imported yet. Review and confirm below.";
      else if (t.status === "IMPORTING") detail = t.files_done + " of " + t.files_total + " files imported" + filteredNote(t);
      else if (t.status === "DONE") detail = "Finished: " + t.files_done + " of " + t.files_total + " files processed" + filteredNote(t) + ".";
      $("#uc-detail").textContent = detail;
      var show = t.status === "UPLOADING" || t.status === "IMPORTING" || t.status === "DONE";
      $("#uc-prog-wrap").hidden = !show;
      $("#uc-prog").style.width = progressOf(t) + "%";
      $("#uc-prog").textContent = progressOf(t) + "%";
      if (t.status === "FAILED") { showError(t.error); $("#uc-review").hidden = true; }
    }
    function renderResult(t) {
      var box = $("#uc-result");
      if (box.dataset.done) return;
      box.dataset.done = "1";
      box.hidden = false;
      $("#uc-review").hidden = true;
      var s = t.summary || {};
      var list = el("ul", {}, (s.sessions || []).map(function (x) {
        return el("li", { "class": "uc-done-session" }, [
          x.page ? el("a", { href: x.page, text: (x.subject || "") + " / " + (x.label || x.uri) }) : (x.label || x.uri),
          " ", el("span", { "class": "badge status-" + x.status, text: x.status }), " " + (x.files || 0) + " files"]);
      }));
      box.appendChild(el("div", { "class": "card" }, [el("h2", { text: "Imported" }),
        el("p", { text: (s.stored || 0) + " files stored, " + (s.rejected || 0) + " refused, " + (s.filtered || 0) + " filtered." }), list]));
    }
    function poll() {
      api("GET", base + "state").then(function (t) {
        renderStatus(t);
        if (t.status === "AWAITING" && !state.rendered) {
          state.rendered = true;
          return api("GET", base + "state?full=1").then(function (full) { review(full); setTimeout(poll, 2000); });
        }
        if (t.status === "DONE") renderResult(t);
        if (t.status !== "DONE" && t.status !== "FAILED") setTimeout(poll, t.status === "AWAITING" ? 2000 : 700);
      }).catch(function (e) { showError(e.message); setTimeout(poll, 2000); });
    }
    poll();

    /* -- review ------------------------------------------------------ */
    function review(t) {
      var conf = t.settings, sessions = t.inspection.sessions, sugg = t.suggestions, shown = t.shown || {};
      var bulk = conf.allow_bulk_upload && sessions.length > 1;
      var root = $("#uc-review");
      root.hidden = false;
      root.innerHTML = "";
      var info = el("div", { "class": "card uc-small" }, [
        el("div", { text: "Destination: " + conf.destination + ". Anonymization scripts: " + (conf.scripts.join(", ") || "none") + "." }),
        conf.script_error ? el("div", { "class": "text-danger", text: conf.script_error }) : null,
        t.inspection.skipped_total ? el("div", { text: t.inspection.skipped_total + " file(s) in the archive are not DICOM and will be skipped." }) : null]);
      root.appendChild(info);
      root.appendChild(el("h2", { text: sessions.length + " session(s) found" }));
      var dateBox = null;
      if (conf.require_date) {
        dateBox = el("input", { type: "checkbox", id: "uc-dates-unknown" });
        root.appendChild(el("div", { "class": "card" }, [el("p", { text: "Project " + conf.project + " requires the visit date of each session." }),
          el("label", {}, [dateBox, " I don't know the dates of these sessions"])]));
      }
      if (bulk) bulkView(root, conf, sessions, sugg, shown); else singleView(root, conf, sessions, sugg);
      var actions = el("div", { "class": "uc-actions" });
      var go = el("button", { "class": "btn btn-primary", type: "button", id: "uc-confirm", text: "Upload" });
      var cancel = el("button", { "class": "btn btn-danger", type: "button", id: "uc-cancel", text: "Discard" });
      actions.appendChild(go); actions.appendChild(cancel);
      root.appendChild(actions);
      cancel.addEventListener("click", function () {
        api("POST", base + "cancel", {}).then(function () { poll(); }).catch(function (e) { showError(e.message); });
      });
      go.addEventListener("click", function () {
        showError("");
        markWrongDates([]);
        var data = bulk ? bulkData(conf, sessions) : singleData(conf, sessions);
        data.dates_unknown = dateBox ? dateBox.checked : false;
        go.disabled = true;
        api("POST", base + "confirm", data).then(function () { $("#uc-review").hidden = true; poll(); })
          .catch(function (e) {
            showError(e.message); go.disabled = false;
            if (e.data && e.data.wrong_sessions) markWrongDates(e.data.wrong_sessions);
            poll();
          });
      });
    }
    // The sessions whose visit date disagrees with the data: only those rows are marked, the transfer stays.
    function markWrongDates(keys) {
      $all(".uc-wrong-date").forEach(function (n) { n.classList.remove("uc-wrong-date"); });
      $all(".uc-date-note").forEach(function (n) { n.remove(); });
      $all("input[type=date]").forEach(function (inp) { inp.removeAttribute("aria-invalid"); });
      keys.forEach(function (key) {
        var tr = $("#uc-bulk tbody tr[data-key='" + key + "']"), input = tr ? $(".uc-b-date", tr) : $("#uc-visit-date");
        if (tr) tr.classList.add("uc-wrong-date");
        if (!input) return;
        input.setAttribute("aria-invalid", "true");
        input.classList.add("uc-wrong-date");
        input.parentNode.appendChild(el("span", { "class": "uc-date-note text-danger uc-small", role: "alert",
          text: "This date does not match the data." }));
        if (keys[0] === key) input.focus();
      });
    }

    function tracerSelect(conf, id) {
      var sel = el("select", { id: id, "class": "uc-tracer" }, [el("option", { value: "", text: "(none)" })]);
      conf.tracers.forEach(function (tr) { sel.appendChild(el("option", { value: tr, text: tr })); });
      return sel;
    }
    function describeSession(s) {
      return [s.study_date || "", s.study_time || "", s.modalities.join("/"), s.scans.length + " scans", s.files + " files"]
        .filter(Boolean).join(" · ");
    }

    /* -- single session ---------------------------------------------- */
    function singleView(root, conf, sessions, sugg) {
      var table = el("table", { id: "uc-sessions" }, [el("thead", {}, [el("tr", {}, ["", "Study date", "Time", "Modalities", "Scans", "Files", "Series descriptions"].map(function (h) { return el("th", { text: h }); }))])]);
      var tbody = el("tbody");
      sessions.forEach(function (s, i) {
        var radio = el("input", { type: "radio", name: "uc-session", value: s.key, checked: i === 0 });
        radio.addEventListener("change", function () { fillSession(); });
        tbody.appendChild(el("tr", { "data-key": s.key }, [el("td", {}, [radio]), el("td", { text: s.study_date || "" }), el("td", { text: s.study_time || "" }),
          el("td", { text: s.modalities.join(", ") }), el("td", { text: String(s.scans.length) }), el("td", { text: String(s.files) }),
          el("td", { "class": "uc-small", text: s.scans.map(function (x) { return x.description; }).filter(Boolean).join("; ") })]));
      });
      table.appendChild(tbody);
      root.appendChild(table);
      if (conf.allow_bulk_upload === false && sessions.length > 1) root.appendChild(el("p", { "class": "text-muted uc-small", text: "This project uploads one session at a time." }));

      var subjectSel = el("select", { id: "uc-subject" }, [el("option", { value: "", text: "(choose a subject)" })]);
      conf.subjects.forEach(function (sub) { subjectSel.appendChild(el("option", { value: sub, text: sub })); });
      if (conf.allow_create_subject) subjectSel.appendChild(el("option", { value: "__new__", text: "New subject…" }));
      var newSubject = el("input", { type: "text", id: "uc-new-subject", placeholder: "New subject label", hidden: true });
      var label = el("input", { type: "text", id: "uc-label" });
      var grid = el("div", { "class": "uc-grid card", id: "uc-single" }, [
        el("label", { "for": "uc-subject", text: "Subject" }), el("div", {}, [subjectSel, newSubject]),
        el("label", { "for": "uc-label", text: "Session label" }), label,
        // The session's visit (optional): stored on the session and given to the scripts as `visit` (seed 000).
        el("label", { "for": "uc-visit", text: "Visit (optional)" }), el("input", { type: "text", id: "uc-visit" })]);
      var tracerRow = [el("label", { "for": "uc-tracer", text: "PET tracer" }), tracerSelect(conf, "uc-tracer")];
      tracerRow.forEach(function (n) { grid.appendChild(n); });
      var dateRow = conf.require_date ? [el("label", { "for": "uc-visit-date", text: "Visit date" }), el("input", { type: "date", id: "uc-visit-date" })] : [];
      dateRow.forEach(function (n) { grid.appendChild(n); });
      conf.variables.forEach(function (v) {
        grid.appendChild(el("label", { "for": "uc-var-" + v.name, text: v.label }));
        grid.appendChild(el("input", { type: "text", id: "uc-var-" + v.name, "class": "uc-var", "data-name": v.name }));
      });
      root.appendChild(grid);
      root.appendChild(el("h2", { text: "Scans" }));
      var scans = el("table", { id: "uc-scans" });
      root.appendChild(scans);

      label.addEventListener("input", function () { state.editedLabel.single = true; });
      function currentSubject() { return subjectSel.value === "__new__" ? newSubject.value.trim() : subjectSel.value; }
      function refreshLabel() {
        if (state.editedLabel.single) return;
        var key = selectedKey(), subs = {};
        subs[key] = currentSubject();
        api("POST", base + "suggest", { subjects: subs }).then(function (r) {
          if (!state.editedLabel.single) label.value = r.suggestions[key].label;
        }).catch(function () { /* keep the field */ });
      }
      subjectSel.addEventListener("change", function () { newSubject.hidden = subjectSel.value !== "__new__"; refreshLabel(); });
      newSubject.addEventListener("change", refreshLabel);
      function selectedKey() { return ($("input[name=uc-session]:checked") || {}).value; }
      function fillSession() {
        var key = selectedKey(), s = sessions.filter(function (x) { return x.key === key; })[0], sg = sugg[key] || {};
        state.editedLabel.single = false;
        if (sg.subject && conf.subjects.indexOf(sg.subject) >= 0) { subjectSel.value = sg.subject; newSubject.hidden = true; }
        else if (sg.subject && conf.allow_create_subject) { subjectSel.value = "__new__"; newSubject.hidden = false; newSubject.value = sg.subject; }
        label.value = sg.label || "";
        tracerRow.forEach(function (n) { n.hidden = !s.is_pet; });
        scans.innerHTML = "";
        scans.appendChild(el("thead", {}, [el("tr", {}, ["Upload", "Scan", "Description", "Modality", "Files", "Size", "Pixel anonymization"].map(function (h) { return el("th", { text: h }); }))]));
        var tb = el("tbody");
        s.scans.forEach(function (sc) {
          var pk = key + "/" + sc.id, note = el("span", { "class": "uc-small uc-rect-count", text: "" });
          var btn = el("button", { type: "button", "class": "btn uc-small uc-pixels", text: "Review pixels", disabled: !sc.uniform });
          function showCount() { var n = (state.pixel[pk] || []).length; note.textContent = n ? " " + n + " rectangle(s)" : ""; }
          btn.addEventListener("click", function () {
            editorOpen("Scan " + sc.id + " " + sc.description, base + "frame/" + key + "/" + encodeURIComponent(sc.id) + ".png",
              state.pixel[pk] || [], function (rects) { state.pixel[pk] = rects; showCount(); }, sc.frames);
          });
          var out = !!sc.will_be_filtered;
          if (out) btn.disabled = true;
          tb.appendChild(el("tr", { "data-scan": sc.id, "class": out ? "uc-filtered" : null }, [el("td", {}, [
              el("input", { type: "checkbox", "class": "uc-scan", value: sc.id, checked: !out, disabled: out,
                "aria-label": "Upload scan " + sc.id + (out ? " (will be filtered)" : "") }),
              out ? el("span", { "class": "badge uc-will-filter", text: "will be filtered" }) : null]),
            el("td", { text: sc.id }), el("td", { text: sc.description + (!out && sc.filtered ? " (" + sc.filtered + " of " + sc.files + " files will be filtered)" : "") }), el("td", { text: sc.modality }), el("td", { text: String(sc.files) }),
            el("td", { text: sc.columns + "×" + sc.rows }), el("td", {}, [btn, note])]));
        });
        scans.appendChild(tb);
      }
      fillSession();
    }
    function singleData(conf, sessions) {
      var key = ($("input[name=uc-session]:checked") || {}).value, sel = $("#uc-subject");
      var variables = {};
      $all(".uc-var").forEach(function (inp) { variables[inp.dataset.name] = inp.value; });
      var scans = $all(".uc-scan").filter(function (c) { return c.checked; }).map(function (c) { return c.value; });
      var pixel = {};
      scans.forEach(function (sc) { if (state.pixel[key + "/" + sc]) pixel[key + "/" + sc] = state.pixel[key + "/" + sc]; });
      return { sessions: [{ key: key, subject: sel.value === "__new__" ? $("#uc-new-subject").value.trim() : sel.value,
        label: $("#uc-label").value.trim(), tracer: $("#uc-tracer").hidden ? "" : $("#uc-tracer").value,
        visit: $("#uc-visit") ? $("#uc-visit").value.trim() : "", scans: scans, variables: variables, visit_date: $("#uc-visit-date") ? $("#uc-visit-date").value : "" }], pixel: pixel };
    }

    /* -- bulk ---------------------------------------------------------- */
    function bulkView(root, conf, sessions, sugg, shown) {
      root.appendChild(el("p", { "class": "text-muted uc-small", text: "Patient names and IDs are shown to you only, to tell your sessions apart; they are read from the files you sent, before anonymization." }));
      var table = el("table", { id: "uc-bulk" }, [el("thead", {}, [el("tr", {}, ["Upload", "ID", "Patient", "Folder", "Study date", "Study description", "Modalities", "Series", "Files", "Series descriptions", "XNAT Subject ID", "Session Label", "PET Tracer"].concat(conf.require_date ? ["Visit date"] : []).map(function (h) { return el("th", { text: h }); }))])]);
      var tbody = el("tbody");
      sessions.forEach(function (s) {
        var sg = sugg[s.key] || {}, who = shown[s.key] || {};
        var tracer = tracerSelect(conf, "uc-tracer-" + s.key);
        tracer.hidden = !s.is_pet;
        var dropped = s.scans.filter(function (x) { return x.will_be_filtered; }), allOut = dropped.length === s.scans.length;
        var folders = (who.folders || []).map(function (f) { return f || "(top level)"; }).join(", ") + ((who.folders_total || 0) > (who.folders || []).length ? " …" : "");
        var cells = [el("td", {}, [el("input", { type: "checkbox", "class": "uc-include", checked: !allOut, disabled: allOut, "aria-label": "Upload session " + s.key })]), el("td", { text: s.key }),
          el("td", { "class": "uc-patient" }, [el("div", { text: who.patient_name || "(no name)" }), el("div", { "class": "uc-small text-muted", text: "ID " + (who.patient_id || "(none)") + (who.accession ? " · Acc. " + who.accession : "") })]),
          el("td", { "class": "uc-small uc-folder", text: folders }),
          el("td", { text: s.study_date || "" }), el("td", { "class": "uc-small", text: s.study_description || "" }), el("td", { text: s.modalities.join(", ") }),
          el("td", { "class": "uc-series" }, [String(s.scans.length), dropped.length ? el("div", { "class": "uc-small text-danger", text: (allOut ? "all" : dropped.length) + " will be filtered" }) : null]),
          el("td", { text: String(s.files) }), el("td", { "class": "uc-small" }, s.scans.filter(function (x) { return x.description || x.will_be_filtered; }).map(function (x, i) {
            return el("span", { "class": x.will_be_filtered ? "uc-filtered-series" : null }, [(i ? "; " : "") + (x.description || "scan " + x.id), x.will_be_filtered ? el("span", { "class": "badge uc-will-filter", text: "will be filtered" }) : null]);
          })),
          el("td", {}, [el("input", { type: "text", "class": "uc-b-subject", value: sg.subject || "", "aria-label": "Subject of session " + s.key })]),
          el("td", {}, [el("input", { type: "text", "class": "uc-b-label", value: sg.label || "", "aria-label": "Session label of session " + s.key })]), el("td", {}, [tracer])];
        tracer.setAttribute("aria-label", "PET tracer of session " + s.key);
        if (conf.require_date) cells.push(el("td", {}, [el("input", { type: "date", "class": "uc-b-date", "aria-label": "Visit date of session " + s.key })]));
        var tr = el("tr", { "data-key": s.key, "class": allOut ? "uc-filtered" : null }, cells);
        $(".uc-include", tr).addEventListener("change", renderGroups);
        $(".uc-b-subject", tr).addEventListener("change", function () {
          // Every row's subject, and the labels the other rows show: the visit is counted per subject.
          var subs = {}, kept = {};
          $all("#uc-bulk tbody tr").forEach(function (row) {
            subs[row.dataset.key] = $(".uc-b-subject", row).value.trim();
            if (row !== tr) kept[row.dataset.key] = $(".uc-b-label", row).value.trim();
          });
          api("POST", base + "suggest", { subjects: subs, labels: kept }).then(function (r) { $(".uc-b-label", tr).value = r.suggestions[s.key].label; });
        });
        tbody.appendChild(tr);
      });
      table.appendChild(tbody);
      root.appendChild(table);
      var csvInput = el("input", { type: "file", id: "uc-csv-file", accept: ".csv,text/csv", hidden: true });
      var down = el("button", { type: "button", "class": "btn", id: "uc-csv-download", text: "Download CSV" });
      var up = el("button", { type: "button", "class": "btn", id: "uc-csv-upload", text: "Upload CSV" });
      var msg = el("span", { id: "uc-csv-message", "class": "uc-small" });
      root.appendChild(el("div", { "class": "uc-actions" }, [down, up, csvInput, msg]));
      down.addEventListener("click", function () {
        api("POST", base + "manifest.csv", { rows: bulkRows() }).then(function (text) {
          var a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: "upload-" + id + ".csv" });
          document.body.appendChild(a); a.click(); a.remove();
        }).catch(function (e) { msg.textContent = e.message; });
      });
      up.addEventListener("click", function () { csvInput.click(); });
      csvInput.addEventListener("change", function () {
        var f = csvInput.files[0];
        if (!f) return;
        f.text().then(function (text) { return api("POST", base + "manifest", text, true); }).then(function (r) {
          $all("#uc-bulk tbody tr").forEach(function (tr) {
            var row = r.rows[tr.dataset.key];
            if (!row) { tr.remove(); return; }
            $(".uc-b-subject", tr).value = row.subject; $(".uc-b-label", tr).value = row.label;
            $(".uc-tracer", tr).value = row.tracer;
          });
          msg.className = "uc-small"; msg.textContent = "CSV applied: " + r.order.length + " session(s) queued.";
          renderGroups();
        }).catch(function (e) { msg.className = "uc-small text-danger"; msg.textContent = e.message; })
          .then(function () { csvInput.value = ""; });
      });
      root.appendChild(el("h2", { text: "Pixel anonymization" }));
      root.appendChild(el("p", { "class": "text-muted uc-small", text: "Scans are grouped by modality, rows and columns: one template covers every scan of its group." }));
      var groups = el("div", { id: "uc-groups" });
      root.appendChild(groups);
      function renderGroups() {
        groups.innerHTML = "";
        var keys = $all("#uc-bulk tbody tr").filter(function (tr) { return $(".uc-include", tr).checked; }).map(function (tr) { return tr.dataset.key; });
        var found = {};
        sessions.filter(function (s) { return keys.indexOf(s.key) >= 0; }).forEach(function (s) {
          s.scans.forEach(function (sc) {
            if (!sc.uniform || sc.will_be_filtered) return;
            var g = sc.modality + "|" + sc.rows + "|" + sc.columns;
            (found[g] = found[g] || []).push([s.key, sc]);
          });
        });
        state.groups = found;
        Object.keys(found).sort().forEach(function (g) {
          var parts = g.split("|"), first = found[g][0];
          var note = el("span", { "class": "uc-small", text: (state.pixel["group:" + g] || []).length ? " " + state.pixel["group:" + g].length + " rectangle(s)" : "" });
          var btn = el("button", { type: "button", "class": "btn uc-small uc-group-pixels", text: "Review pixels" });
          btn.addEventListener("click", function () {
            editorOpen(parts[0] + " " + parts[2] + "×" + parts[1], base + "frame/" + first[0] + "/" + encodeURIComponent(first[1].id) + ".png",
              state.pixel["group:" + g] || [], function (rects) { state.pixel["group:" + g] = rects; renderGroups(); }, first[1].frames);
          });
          groups.appendChild(el("div", { "class": "card uc-group", "data-group": g }, [
            el("strong", { text: parts[0] + " · " + parts[2] + "×" + parts[1] + " · " + found[g].length + " scan(s)" }), " ", btn, note]));
        });
      }
      renderGroups();
    }
    function bulkRows() {
      var rows = {};
      $all("#uc-bulk tbody tr").forEach(function (tr) {
        if (!$(".uc-include", tr).checked) return;
        rows[tr.dataset.key] = { subject: $(".uc-b-subject", tr).value.trim(), label: $(".uc-b-label", tr).value.trim(),
          tracer: $(".uc-tracer", tr).hidden ? "" : $(".uc-tracer", tr).value };
      });
      return rows;
    }
    function bulkData() {
      var rows = bulkRows(), pixel = {};
      Object.keys(state.groups).forEach(function (g) {
        var rects = state.pixel["group:" + g];
        if (!rects || !rects.length) return;
        state.groups[g].forEach(function (pair) { if (rows[pair[0]]) pixel[pair[0] + "/" + pair[1].id] = rects; });
      });
      return { sessions: Object.keys(rows).map(function (key) {
        var tr = $("#uc-bulk tbody tr[data-key='" + key + "']"), date = $(".uc-b-date", tr);
        return { key: key, subject: rows[key].subject, label: rows[key].label, tracer: rows[key].tracer, visit_date: date ? date.value : "" };
      }), pixel: pixel };
    }
  }

  window.UploadClient = { start: start, transfers: transfers, transfer: transfer };
})();
