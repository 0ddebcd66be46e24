// The prearchive list refreshes its rows from list.json every few seconds (no page reload); checked rows stay checked.
(function () {
  const table = document.getElementById("sessions");
  if (!table) return;
  const body = table.tBodies[0];
  const all = document.getElementById("select-all");
  if (all) all.addEventListener("change", () => body.querySelectorAll("input[name=session]").forEach(c => { c.checked = all.checked; }));
  function cell(text, cls) { const td = document.createElement("td"); if (cls) td.className = cls; td.textContent = text; return td; }
  function render(rows) {
    const checked = new Set([...body.querySelectorAll("input[name=session]:checked")].map(c => c.value));
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      const tr = document.createElement("tr");
      tr.dataset.session = r.id; tr.dataset.status = r.status;
      const box = document.createElement("input");
      box.type = "checkbox"; box.name = "session"; box.value = r.id; box.checked = checked.has(String(r.id));
      box.setAttribute("aria-label", "Select " + r.label);
      const first = document.createElement("td"); first.appendChild(box); tr.appendChild(first);
      tr.appendChild(cell(r.project)); tr.appendChild(cell(r.subject));
      const name = document.createElement("td"); const a = document.createElement("a");
      a.href = r.url; a.textContent = r.label; name.appendChild(a); tr.appendChild(name);
      tr.appendChild(cell(r.scan_date)); tr.appendChild(cell(r.uploaded));
      const st = document.createElement("td"); st.className = "c-status"; const badge = document.createElement("span");
      badge.className = "badge status-" + r.status; badge.title = r.status; badge.textContent = r.status_text;
      st.appendChild(badge); tr.appendChild(st);
      tr.appendChild(cell(String(r.files), "c-files")); tr.appendChild(cell(r.last_file_text, "c-last"));
      tr.appendChild(cell(r.build_at ? "at about " + r.build_at_text : r.receiving_note, "c-build"));
      tr.appendChild(cell(r.source));
      frag.appendChild(tr);
    }
    if (!rows.length) {
      const tr = document.createElement("tr"); tr.className = "empty";
      const td = cell("No sessions in the prearchive match.", "text-muted"); td.colSpan = 11; tr.appendChild(td); frag.appendChild(tr);
    }
    body.replaceChildren(frag);
  }
  async function poll() {
    try {
      const r = await fetch(table.dataset.json, {credentials: "same-origin", headers: {"Accept": "application/json"}});
      if (r.ok) { render((await r.json()).sessions); table.dataset.refreshed = String(Date.now()); }
    } catch (e) { /* the next poll tries again */ }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 2000);
})();
