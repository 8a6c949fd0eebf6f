extension Assets {
    static let style = #"""
    :root { --bg: #f6f7f9; --card: #fff; --ink: #1d2330; --muted: #6b7280; --line: #dde1e7; --accent: #2f6fde;
            --bad: #c62828; --badbg: #fdecea; --warn: #b26a00; --warnbg: #fff4e0; --ok: #2e7d32; --run: #1565c0; }
    * { box-sizing: border-box; }
    body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
    header { display: flex; gap: 12px; align-items: center; padding: 10px 18px; background: #1d2330; color: #fff; }
    header a { color: #fff; text-decoration: none; }
    .brand { font-weight: 700; letter-spacing: .3px; }
    #crumb { color: #c9d1dc; }
    .live { font-size: 12px; } .live.on { color: #5bd46b; } .live.off { color: #888; }
    main { padding: 16px 18px; }
    a { color: var(--accent); }
    .muted { color: var(--muted); }
    .filters { display: flex; gap: 10px; align-items: center; margin-bottom: 12px; flex-wrap: wrap; }
    .filters select, .filters input { font: inherit; padding: 3px 6px; }
    .workflow { margin-bottom: 22px; }
    .workflow h2 { font-size: 15px; margin: 0 0 8px; }
    .columns { display: flex; gap: 10px; overflow-x: auto; align-items: flex-start; }
    .column { flex: 0 0 220px; background: #eceff3; border-radius: 6px; padding: 6px; max-height: 75vh; overflow-y: auto; }
    .column h3 { font-size: 13px; margin: 2px 4px 6px; display: flex; justify-content: space-between; }
    .card { background: var(--card); border: 1px solid var(--line); border-radius: 5px; padding: 6px 8px; margin-bottom: 6px; }
    .card.problem { border-color: var(--bad); background: var(--badbg); }
    .card .id { font-family: ui-monospace, monospace; font-size: 12px; }
    .card .meta { color: var(--muted); font-size: 12px; }
    .badge { display: inline-block; border-radius: 3px; padding: 0 5px; font-size: 11px; margin-right: 4px; }
    .badge.completed { background: #e3f3e5; color: var(--ok); } .badge.failed { background: var(--badbg); color: var(--bad); }
    .badge.running, .badge.created { background: #e6effc; color: var(--run); }
    .badge.claim { background: #efe7fb; color: #5b2ca0; } .badge.hook { background: #e6effc; color: var(--run); }
    .badge.failed_hook, .badge.timed_out { background: var(--badbg); color: var(--bad); } .badge.refused { background: var(--warnbg); color: var(--warn); }
    .timeline { margin: 8px 0 16px; }
    .bar { display: flex; align-items: center; gap: 8px; margin: 3px 0; }
    .bar .label { width: 160px; flex: none; font-size: 12px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .bar .track { flex: 1; background: #eceff3; border-radius: 3px; height: 16px; position: relative; }
    .bar .fill { position: absolute; top: 0; bottom: 0; background: var(--accent); border-radius: 3px; min-width: 2px; }
    .bar .fill.open { background: repeating-linear-gradient(45deg, #7aa5ee, #7aa5ee 6px, #9dbdf3 6px, #9dbdf3 12px); }
    .bar .data { font-family: ui-monospace, monospace; font-size: 11px; color: var(--muted); max-width: 40%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; margin-bottom: 14px; }
    section h2 { font-size: 14px; margin: 0 0 8px; }
    pre { background: #0f1420; color: #dfe6f0; padding: 10px; border-radius: 5px; overflow: auto; max-height: 420px; font-size: 12px; margin: 6px 0; white-space: pre-wrap; }
    pre.json { background: #f3f5f8; color: var(--ink); }
    table { border-collapse: collapse; width: 100%; font-size: 13px; }
    th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
    tr.problem td { background: var(--badbg); }
    button { font: inherit; padding: 2px 8px; cursor: pointer; }
    .grid { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; }
    @media (max-width: 900px) { .grid { grid-template-columns: 1fr; } }
    .counts span { margin-right: 14px; }
    """#
}
