// The compressed uploader: XHR upload with a progress bar (percent and bytes), then poll the import job.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const projects = JSON.parse(document.getElementById("upload-projects").textContent);
  const $ = (id) => document.getElementById(id);
  window.uploadProgressLog = [];

  function fmtBytes(n) {
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }
  function text(el, value) { el.textContent = value; }
  function cell(row, value) { const td = document.createElement("td"); td.textContent = value; row.appendChild(td); return td; }

  function projectChanged() {
    const p = projects.find((x) => x.id === $("project").value);
    const list = $("subject-list"); list.innerHTML = "";
    const tracer = $("pet_tracer"); tracer.length = 1;
    if (!p) { text($("destination"), ""); text($("subject-help"), ""); return; }
    text($("destination"), p.auto_archive
      ? "Destination: the archive (this project auto-archives)."
      : "Destination: the prearchive, for review before archiving.");
    p.subjects.forEach((s) => { const o = document.createElement("option"); o.value = s; list.appendChild(o); });
    text($("subject-help"), p.allow_create_subject ? "" : "This project does not allow new subjects: choose an existing one.");
    p.tracers.forEach((t) => tracer.add(new Option(t, t)));
  }
  $("project").addEventListener("change", projectChanged);

  function fail(message) {
    const box = $("form-error"); text(box, message); box.hidden = false;
    $("upload-button").disabled = false;
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    $("form-error").hidden = true;
    const file = $("file").files[0];
    if (!$("project").value) return fail("Choose a project.");
    if (!file) return fail("Choose a .zip, .tar, .tar.gz or .tgz file.");
    if (!/\.(zip|tar|tar\.gz|tgz)$/i.test(file.name)) return fail("Upload a .zip, .tar, .tar.gz or .tgz file.");
    const p = projects.find((x) => x.id === $("project").value);
    const subject = $("subject").value.trim();
    if (p && !p.allow_create_subject && subject && p.subjects.indexOf(subject) < 0)
      return fail("This project does not allow new subjects: choose an existing one.");
    const q = new URLSearchParams({ project: $("project").value, subject: subject,
      session: $("session").value.trim(), pet_tracer: $("pet_tracer").value, name: file.name });
    $("upload-button").disabled = true;
    $("progress-card").hidden = false;
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/upload/jobs?" + q.toString());
    xhr.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = function (e) {
      if (!e.lengthComputable) return;
      const pct = Math.floor((100 * e.loaded) / e.total);
      window.uploadProgressLog.push(pct);
      const bar = $("upload-bar"); bar.style.width = pct + "%"; text(bar, pct + "%");
      text($("upload-bytes"), fmtBytes(e.loaded) + " of " + fmtBytes(e.total) + " (" + pct + "%)");
    };
    xhr.onload = function () {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status !== 202) { $("progress-card").hidden = true; return fail(body.error || "The upload failed (HTTP " + xhr.status + ")."); }
      const bar = $("upload-bar"); bar.style.width = "100%"; text(bar, "100%");
      text($("import-text"), "Queued for import…");
      poll(body.status_url);
    };
    xhr.onerror = function () { $("progress-card").hidden = true; fail("The upload was interrupted; nothing was imported."); };
    xhr.send(file);
  });

  function poll(url) {
    fetch(url, { credentials: "same-origin" }).then((r) => r.json()).then(function (job) {
      const bar = $("import-bar");
      if (job.files_total > 0) {
        const pct = Math.floor((100 * job.files_done) / job.files_total);
        bar.style.width = pct + "%";
        text($("import-text"), job.files_done + " of " + job.files_total + " files imported");
      } else {
        text($("import-text"), job.status === "QUEUED" ? "Queued for import…" : "Checking and unpacking the archive…");
      }
      if (job.status === "DONE" || job.status === "FAILED") return showSummary(job);
      setTimeout(() => poll(url), 500);
    }).catch(() => setTimeout(() => poll(url), 1500));
  }

  function showSummary(job) {
    $("summary-card").hidden = false;
    const s = job.summary || {};
    if (job.error) { const e = $("summary-error"); text(e, job.error); e.hidden = false; }
    else { $("import-bar").style.width = "100%"; }
    const sessions = s.sessions || [];
    const created = sessions.filter((x) => x.created).length;
    // A refused upload made no session: its reason alone, not "0 session(s)".
    if (!job.error || sessions.length) {
      text($("summary-counts"), sessions.length + " session(s): " + created + " created, " + (sessions.length - created) +
        " appended. Files stored: " + ((s.stored || 0) + (s.duplicates || 0)) + ". Files skipped: " + (s.skipped_total || 0) + ".");
    }
    const tbody = $("summary-sessions").querySelector("tbody");
    sessions.forEach(function (x) {
      const tr = document.createElement("tr");
      cell(tr, x.label || x.uri); cell(tr, x.subject || ""); cell(tr, x.project || ""); cell(tr, x.files || "");
      const st = cell(tr, ""); const badge = document.createElement("span");
      badge.className = "badge status-" + (x.status || ""); badge.textContent = x.status || ""; st.appendChild(badge);
      const links = cell(tr, "");
      if (x.page) { const a = document.createElement("a"); a.href = x.page; a.textContent = "Open in prearchive"; a.className = "session-link"; links.appendChild(a); links.appendChild(document.createTextNode(" · ")); }
      const r = document.createElement("a"); r.href = x.uri + "?format=json"; r.textContent = "REST"; links.appendChild(r);
      tbody.appendChild(tr);
    });
    const skipped = s.skipped || [];
    if (skipped.length) {
      const h = document.createElement("h2"); h.textContent = "Skipped files"; $("summary-skipped").appendChild(h);
      const ul = document.createElement("ul");
      skipped.forEach((x) => { const li = document.createElement("li"); li.textContent = x.name + ": " + x.reason; ul.appendChild(li); });
      $("summary-skipped").appendChild(ul);
    }
  }
})();
