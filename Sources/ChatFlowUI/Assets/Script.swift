extension Assets {
    static let script = #"""
    "use strict";
    // ChatFlow's page: renders from /api/… and follows /api/events (server-sent events).
    const meta = (name) => { const m = document.querySelector(`meta[name="${name}"]`); return m ? m.content : null; };
    const page = meta("chatflow-page"), token = meta("chatflow-token"), actionsOn = meta("chatflow-actions") === "on";
    const main = document.getElementById("main");
    let clockSkew = 0;  // server time − browser time, so ages do not depend on the browser's clock

    function el(tag, attrs, ...children) {
      const node = document.createElement(tag);
      for (const [key, value] of Object.entries(attrs || {})) {
        if (value === undefined || value === null || value === false) continue;
        if (key === "class") node.className = value; else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value);
      }
      for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
      return node;
    }
    async function api(path, options) {
      const response = await fetch(path, options);
      const body = await response.json();
      if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
      return body;
    }
    async function act(path, body) {
      try {
        await api(path, { method: "POST", headers: { "Content-Type": "application/json", "X-ChatFlow-Token": token }, body: JSON.stringify(body || {}) });
      } catch (error) { alert(error.message); }
    }
    const now = () => Date.now() / 1000 + clockSkew;
    function duration(seconds) {
      seconds = Math.max(0, Math.round(seconds));
      if (seconds < 60) return `${seconds}s`;
      if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
      if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor(seconds % 3600 / 60)}m`;
      return `${Math.floor(seconds / 86400)}d ${Math.floor(seconds % 86400 / 3600)}h`;
    }
    const since = (time) => el("span", { class: "since", "data-since": time }, duration(now() - time));
    setInterval(() => { for (const node of document.querySelectorAll("[data-since]")) node.textContent = duration(now() - Number(node.dataset.since)); }, 1000);
    const time = (seconds) => seconds ? new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19) + "Z" : "–";

    // Live: one event stream; the browser reconnects with Last-Event-ID and the server replays.
    function live(onChange, onRescan) {
      const light = document.getElementById("live");
      const source = new EventSource("/api/events");
      source.onopen = () => { light.className = "live on"; };
      source.onerror = () => { light.className = "live off"; };
      source.addEventListener("change", (event) => onChange(JSON.parse(event.data).instance_id));
      source.addEventListener("rescan", () => onRescan());
    }

    // The board: a column per phase, per workflow; a card per instance.
    function card(c) {
      const problem = c.problems.length > 0;
      return el("div", { class: "card" + (problem ? " problem" : ""), id: `card-${c.instance_id}`, "data-status": c.status },
        el("div", {}, el("a", { class: "id", href: `/instances/${c.instance_id}` }, c.instance_id), " ",
          el("span", { class: `badge ${c.status}` }, c.status)),
        el("div", { class: "meta" }, el("a", { href: `/features/${encodeURIComponent(c.feature_id)}` }, c.feature_id),
          " · age ", since(c.created_at), " · in phase ", since(c.phase_started_at)),
        c.claim ? el("div", {}, el("span", { class: "badge claim" }, `claimed by ${c.claim.owner}`)) : null,
        c.running_hooks.map((h) => el("div", {}, el("span", { class: "badge hook" }, `▶ ${h.hook} #${h.transition}`))),
        c.problems.map((p) => el("div", {}, el("span", { class: `badge ${p.kind === "failed" ? "failed_hook" : p.kind}` }, `${p.hook} #${p.transition}: ${p.outcome}`))));
    }
    async function board() {
      const params = new URLSearchParams(location.search);
      const filters = el("div", { class: "filters" },
        el("label", {}, "feature ", el("input", { id: "feature", value: params.get("feature") || "", placeholder: "all", size: 14 })),
        el("label", {}, "status ", el("select", { id: "status" }, ["", "running", "completed", "failed"].map((s) =>
          el("option", { value: s, selected: (params.get("status") || "") === s }, s || "all")))),
        el("span", { id: "count", class: "muted" }));
      const apply = () => {
        const next = new URLSearchParams();
        for (const key of ["feature", "status"]) { const v = document.getElementById(key).value; if (v) next.set(key, v); }
        history.replaceState(null, "", next.toString() ? `?${next}` : "/");
        load();
      };
      filters.querySelector("#feature").addEventListener("change", apply);
      filters.querySelector("#status").addEventListener("change", apply);
      const area = el("div", { id: "board" });
      main.replaceChildren(filters, area);
      let cards = new Map();
      const query = () => { const q = new URLSearchParams(location.search); return q.toString() ? `?${q}` : ""; };
      const rowKey = (c) => `${c.workflow_name}: ${c.phases.join(" → ")}`;
      const order = (a, b) => (b.problems.length - a.problems.length) || (a.phase_started_at - b.phase_started_at);
      // One card changed: moved, redrawn or removed in place (a whole redraw at 1,000 cards
      // on every event would cost the page more than the server). A new row: redraw all.
      function update(id, c) {
        const old = document.getElementById(`card-${id}`);
        const oldColumn = old ? old.parentElement : null;
        if (old) old.remove();
        if (c) {
          const row = [...area.querySelectorAll(".workflow")].find((w) => w.dataset.key === rowKey(c));
          const column = row && [...row.querySelectorAll(".column")].find((k) => k.dataset.phase === c.current_phase);
          if (!column) return render();
          const next = [...column.querySelectorAll(".card")].find((other) => order(c, cards.get(other.id.slice(5)) || c) < 0);
          column.insertBefore(card(c), next || null);
          column.querySelector("h3 .muted").textContent = column.querySelectorAll(".card").length;
        }
        if (oldColumn) oldColumn.querySelector("h3 .muted").textContent = oldColumn.querySelectorAll(".card").length;
        document.getElementById("count").textContent = `${cards.size} instances`;
      }
      function render() {
        const workflows = new Map();
        // One row per workflow: its name and its phases (two schemas of one name are two rows).
        for (const c of cards.values()) {
          const key = rowKey(c);
          if (!workflows.has(key)) workflows.set(key, { phases: c.phases, cards: [] });
          workflows.get(key).cards.push(c);
        }
        const sections = [...workflows.entries()].sort().map(([name, w]) => {
          const columns = w.phases.map((phase) => {
            const inPhase = w.cards.filter((c) => c.current_phase === phase).sort(order);
            return el("div", { class: "column", "data-phase": phase }, el("h3", {}, el("span", {}, phase), el("span", { class: "muted" }, inPhase.length)),
              inPhase.map(card));
          });
          return el("div", { class: "workflow", "data-key": name }, el("h2", {}, name), el("div", { class: "columns" }, columns));
        });
        area.replaceChildren(...(sections.length ? sections : [el("p", { class: "muted" }, "No instances.")]));
        document.getElementById("count").textContent = `${cards.size} instances`;
      }
      async function load() {
        const body = await api(`/api/board${query()}`);
        clockSkew = body.now - Date.now() / 1000;
        cards = new Map(body.instances.map((c) => [c.instance_id, c]));
        render();
      }
      await load();
      live(async (id) => {
        const q = new URLSearchParams(location.search); q.set("id", id);
        try {
          const body = await api(`/api/board?${q}`);
          const c = body.instances[0];
          const wanted = !q.get("status") || c.status === q.get("status") || (q.get("status") === "running" && c.status === "created");
          const feature = q.get("feature");
          if (wanted && (!feature || c.feature_id === feature)) { cards.set(id, c); return update(id, c); }
        } catch (error) { /* gone or unreadable: off the board */ }
        cards.delete(id);
        update(id, null);
      }, load);
    }

    // An instance: its timeline, variables and meta, hook runs with their logs, artifacts.
    async function instance() {
      const id = meta("chatflow-id");
      document.getElementById("crumb").textContent = `› ${id}`;
      let following = null;
      async function render() {
        const [doc, runs, artifacts] = await Promise.all([
          api(`/api/instances/${id}`), api(`/api/instances/${id}/runs`), api(`/api/instances/${id}/artifacts`)]);
        const history = doc.history;
        const end = now();
        const spans = history.map((e) => (e.ended_at || end) - e.started_at);
        const longest = Math.max(1, ...spans);
        const timeline = el("div", { class: "timeline" }, history.map((entry, index) => el("div", { class: "bar", "data-phase": entry.phase },
          el("span", { class: "label" }, `${index}. ${entry.phase}`),
          el("span", { class: "track" }, el("span", { class: "fill" + (entry.ended_at ? "" : " open"), style: `width: ${Math.max(0.5, 100 * spans[index] / longest)}%` })),
          el("span", { class: "muted" }, duration(spans[index])),
          el("span", { class: "data", title: entry.trigger_data_snapshot ? JSON.stringify(entry.trigger_data_snapshot) : "" },
            entry.trigger_data_snapshot ? JSON.stringify(entry.trigger_data_snapshot) : ""))));
        const head = el("section", {}, el("h2", {}, id, " ", el("span", { class: `badge ${doc.status}` }, doc.status)),
          el("div", { class: "meta" }, "feature ", el("a", { href: `/features/${encodeURIComponent(doc.feature_id)}` }, doc.feature_id),
            ` · workflow ${doc.workflow_name} · phase `, el("b", { id: "phase" }, doc.current_phase), ` · transition ${doc.transition}`,
            " · created ", time(doc.created_at), " · updated ", time(doc.updated_at)),
          doc.current_entry && doc.current_entry.claim ? el("div", {}, el("span", { class: "badge claim" }, `claimed by ${doc.current_entry.claim.owner} until ${time(doc.current_entry.claim.expires_at)}`)) : null,
          actionsOn ? el("div", { class: "filters" },
            el("button", { onclick: () => act(`/api/instances/${id}/trigger`, { expect_transition: doc.transition, force: true }) }, "Trigger next"),
            el("select", { id: "to" }, doc.workflow_schema.phases.map((p) => el("option", { value: p.name }, p.name))),
            el("button", { onclick: () => act(`/api/instances/${id}/trigger`, { to: document.getElementById("to").value, expect_transition: doc.transition, force: true }) }, "Trigger --to"),
            doc.current_entry && doc.current_entry.claim ? el("button", { onclick: () => act(`/api/instances/${id}/release`) }, "Release claim") : null) : null);
        const runRows = runs.map((r) => {
          const bad = !r.running && r.exit_code !== 0;
          const outcome = r.running ? `running (${r.elapsed}s)` : r.timed_out ? "timed out" : r.refused ? `refused: ${r.error}` :
            r.signal !== null && r.signal !== undefined ? `signal ${r.signal}` : r.error ? r.error : `exit ${r.exit_code}`;
          const took = r.running ? "" : duration(r.ended_at - r.started_at);
          return el("tr", { class: bad ? "problem" : "" }, el("td", {}, `#${r.transition}`), el("td", {}, r.hook), el("td", {}, r.attempt || 1),
            el("td", {}, outcome), el("td", {}, took),
            el("td", {}, el("button", { class: "log", onclick: () => showLog(r.transition, r.hook, r.running) }, r.running ? "follow" : "log"),
              actionsOn && !r.running ? el("button", { onclick: () => act(`/api/instances/${id}/rerun`, { transition: r.transition, hook: r.hook }) }, "rerun") : null));
        });
        const sections = [head,
          el("section", {}, el("h2", {}, "Timeline"), timeline),
          el("div", { class: "grid" },
            el("section", {}, el("h2", {}, "Variables"), el("pre", { class: "json", id: "variables" }, JSON.stringify(doc.variables, null, 2))),
            el("section", {}, el("h2", {}, "Meta"), el("pre", { class: "json" }, JSON.stringify(doc.meta, null, 2)))),
          el("section", {}, el("h2", {}, "Hook runs"),
            runs.length ? el("table", {}, el("tr", {}, ["transition", "hook", "attempt", "outcome", "took", ""].map((h) => el("th", {}, h))), runRows)
              : el("p", { class: "muted" }, "No hook runs recorded."),
            el("pre", { id: "log", hidden: true })),
          el("section", {}, el("h2", {}, "Artifacts"), artifacts.length ? el("ul", {}, artifacts.map((name) =>
            el("li", {}, el("a", { href: `/api/instances/${id}/artifacts/${encodeURIComponent(name)}`, download: name }, name)))) : el("p", { class: "muted" }, "None."))];
        const logOpen = document.getElementById("log");
        const keep = logOpen && !logOpen.hidden ? logOpen : null;
        main.replaceChildren(...sections);
        if (keep) document.getElementById("log").replaceWith(keep);
      }
      async function showLog(transition, hook, running) {
        if (following) following.abort();
        const pre = document.getElementById("log");
        pre.hidden = false;
        pre.textContent = "";
        pre.dataset.hook = hook;
        const query = `transition=${transition}&hook=${encodeURIComponent(hook)}`;
        if (!running) { pre.textContent = (await api(`/api/instances/${id}/logs?${query}`)).text; return; }
        following = new AbortController();
        const response = await fetch(`/api/instances/${id}/logs/follow?${query}`, { signal: following.signal });
        const reader = response.body.getReader(), decoder = new TextDecoder();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          pre.textContent += decoder.decode(value, { stream: true });
          pre.scrollTop = pre.scrollHeight;
        }
      }
      await render();
      live((changed) => { if (changed === id) render(); }, render);
    }

    // A feature: its counts and instances.
    async function feature() {
      const name = meta("chatflow-feature");
      document.getElementById("crumb").textContent = `› ${name}`;
      async function render() {
        const f = await api(`/api/features/${encodeURIComponent(name)}`);
        clockSkew = 0;
        main.replaceChildren(
          el("section", {}, el("h2", {}, `Feature ${f.feature_id} `, el("span", { class: `badge ${f.status}` }, f.status)),
            el("div", { class: "counts" }, el("span", {}, `${f.total_instances} instances`), el("span", {}, `${f.running_count} running`),
              el("span", {}, `${f.completed_count} completed`), el("span", {}, `${f.failed_count} failed`))),
          el("section", {}, el("table", {}, el("tr", {}, ["instance", "phase", "status", "age", "in phase", "hooks"].map((h) => el("th", {}, h))),
            f.instances.map((c) => el("tr", { class: c.problems.length ? "problem" : "" },
              el("td", {}, el("a", { href: `/instances/${c.instance_id}` }, c.instance_id)), el("td", {}, c.current_phase),
              el("td", {}, c.status), el("td", {}, since(c.created_at)), el("td", {}, since(c.phase_started_at)),
              el("td", {}, c.problems.map((p) => `${p.hook}: ${p.outcome}`).join(", ")))))));
      }
      await render();
      live(() => render(), render);
    }

    ({ board, instance, feature })[page]().catch((error) => { main.replaceChildren(el("p", { class: "problem" }, `Error: ${error.message}`)); });
    """#
}
