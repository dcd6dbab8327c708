"""The HTML status page of ``GET /`` (issue 20): one document, no external assets.

The page holds no data of its own: its script fetches ``/api/streams`` every
:data:`REFRESH_SECONDS` seconds and builds the tables with ``textContent`` (stream
names come from publishers: never parsed as HTML).  A token for a server bound
beyond loopback is taken from the page address's fragment (``/#token=...``, which
browsers do not send to the server) and sent as ``Authorization: Bearer``.
"""

from __future__ import annotations

import base64
import hashlib

__all__ = ["REFRESH_SECONDS", "PAGE", "SCRIPT_HASH", "CONTENT_SECURITY_POLICY"]

#: Seconds between two fetches of /api/streams.
REFRESH_SECONDS = 2

_SCRIPT = """
"use strict";
const token = new URLSearchParams(location.hash.slice(1)).get("token");
const headers = token ? {"Authorization": "Bearer " + token} : {};
function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  row.appendChild(td);
  return td;
}
function kbps(bits) { return (bits / 1000).toFixed(0) + " kbit/s"; }
function codec(info) {
  if (!info) return "-";
  return info.codec + (info.fourcc ? " (" + info.fourcc + ")" : "");
}
function render(doc) {
  const body = document.getElementById("streams");
  const rows = [];
  let total = 0;
  for (const [app, entry] of Object.entries(doc.applications)) {
    for (const s of entry.streams) {
      total += 1;
      const row = document.createElement("tr");
      row.className = "stream";
      row.dataset.app = app;
      row.dataset.name = s.name;
      cell(row, app);
      cell(row, s.name).className = "name";
      cell(row, s.publisher ? s.publisher.address + " (" + s.publisher.id + ")" : "waiting");
      cell(row, codec(s.video)).className = "video";
      cell(row, codec(s.audio)).className = "audio";
      cell(row, s.width && s.height ? s.width + "x" + s.height : "-");
      cell(row, s.frame_rate ? s.frame_rate.toFixed(2) : "-");
      cell(row, kbps(s.bitrate_in));
      cell(row, kbps(s.bitrate_out));
      cell(row, s.player_count).className = "players";
      const dropped = s.players.reduce((n, p) => n + p.dropped_frames, 0);
      cell(row, dropped);
      rows.push(row);
      for (const p of s.players) {
        const prow = document.createElement("tr");
        prow.className = "player";
        cell(prow, "");
        cell(prow, "\\u21b3 " + (p.address || "") + " (" + p.id + ")");
        cell(prow, (p.bytes / 1e6).toFixed(2) + " MB sent");
        cell(prow, "dropped " + p.dropped_frames);
        rows.push(prow);
      }
    }
  }
  body.replaceChildren(...rows);
  document.getElementById("count").textContent = String(total);
  document.getElementById("status").textContent = "updated " + new Date().toLocaleTimeString();
}
async function refresh() {
  try {
    const response = await fetch("/api/streams", {headers: headers, cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
  } catch (err) {
    document.getElementById("status").textContent = "error: " + err.message;
  }
}
refresh();
setInterval(refresh, REFRESH_MS);
""".replace("REFRESH_MS", str(REFRESH_SECONDS * 1000))

#: The script's CSP hash: the page runs this script and nothing else.
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()

#: No external assets, no other script, no framing, fetches to this server only.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src '{SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rtmp server status</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; }}
th {{ background: #f3f3f3; }}
tr.player td {{ color: #555; font-size: 90%; }}
#status {{ color: #777; font-size: 90%; }}
</style>
</head>
<body>
<h1>rtmp server</h1>
<p><span id="count">0</span> streams &middot; <span id="status">loading&hellip;</span></p>
<noscript><p>This page needs JavaScript; the same data is at <a href="/api/streams">/api/streams</a>.</p></noscript>
<table>
<thead><tr><th>App</th><th>Stream</th><th>Publisher</th><th>Video</th><th>Audio</th>
<th>Size</th><th>FPS</th><th>In</th><th>Out</th><th>Players</th><th>Dropped</th></tr></thead>
<tbody id="streams"></tbody>
</table>
<script>{_SCRIPT}</script>
</body>
</html>
""".encode()
