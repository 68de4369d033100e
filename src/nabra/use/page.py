"""The server's two pages: plain HTML and a little JavaScript, nothing from a CDN."""

PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Nabra</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
 h1{font-size:1.4rem} .box{border:1px solid #ccc;border-radius:8px;padding:1rem;margin:1rem 0}
 button{padding:.4rem .9rem;margin-right:.4rem} .ar{direction:rtl;font-size:1.15rem;line-height:1.7}
 .bar{display:flex;align-items:center;margin:.15rem 0} .bar span{width:6rem} .bar div{background:#4a7bd0;height:.9rem}
 .bar em{margin-left:.4rem;font-style:normal;color:#555} #status{color:#555} .err{color:#b00}
 #answer p{overflow-wrap:anywhere}
</style></head><body>
<h1>Nabra: Arabic speech analysis</h1>
<div class="box">
 <p>Upload a clip (up to {{MAX_MB}} MB, {{MAX_S}} s) or record one.</p>
 <input type="file" id="file" accept="audio/*">
 <button id="send">Analyze</button> <button id="rec">Record</button>
 <label>tasks <input id="tasks" value="asr,ssum,did,ser" size="16"></label>
 <p id="status"></p>
</div>
<div id="result"></div>
<script>
const $ = (id) => document.getElementById(id);
function esc(t){return String(t).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));}
function bars(title, probs){
  let h = `<h3>${title}</h3>`;
  for (const [k, v] of Object.entries(probs).sort((a, b) => b[1] - a[1]))
    h += `<div class="bar"><span>${esc(k)}</span><div style="width:${(v*20).toFixed(2)}rem"></div><em>${(v*100).toFixed(1)}%</em></div>`;
  return h;
}
function show(r){
  let h = `<div class="box" id="answer"><p>${esc(r.file || "")} — ${Number(r.duration).toFixed(1)} s</p>`;
  if (r.asr) h += `<h3>Transcript</h3><p class="ar" id="transcript">${esc(r.asr.text)}</p>`;
  if (r.ssum) h += `<h3>Summary</h3><p class="ar" id="summary">${esc(r.ssum.text)}</p>`;
  if (r.did) h += bars(`Dialect: ${esc(r.did.label)}`, r.did.probabilities);
  if (r.ser) h += bars(`Emotion: ${esc(r.ser.label)}`, r.ser.probabilities);
  $("result").innerHTML = h + "</div>";
}
async function send(blob, name){
  $("status").textContent = "analyzing…"; $("status").className = "";
  const form = new FormData(); form.append("file", blob, name); form.append("tasks", $("tasks").value);
  try {
    const resp = await fetch("/v1/analyze", {method: "POST", body: form});
    const body = await resp.json();
    if (!resp.ok) throw new Error(typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail));
    $("status").textContent = "done"; show(body);
  } catch (e) { $("status").textContent = "error: " + e.message; $("status").className = "err"; }
}
$("send").onclick = () => { const f = $("file").files[0]; if (f) send(f, f.name); else $("status").textContent = "choose a file first"; };
function wav(buffer){  // mono 16-bit PCM at the buffer's rate: what every reader opens
  const x = buffer.getChannelData(0), n = x.length, out = new DataView(new ArrayBuffer(44 + 2*n)), r = buffer.sampleRate;
  const s = (o, t) => { for (let i = 0; i < t.length; i++) out.setUint8(o + i, t.charCodeAt(i)); };
  s(0,"RIFF"); out.setUint32(4, 36 + 2*n, true); s(8,"WAVE"); s(12,"fmt "); out.setUint32(16,16,true);
  out.setUint16(20,1,true); out.setUint16(22,1,true); out.setUint32(24,r,true); out.setUint32(28,2*r,true);
  out.setUint16(32,2,true); out.setUint16(34,16,true); s(36,"data"); out.setUint32(40,2*n,true);
  for (let i = 0; i < n; i++) out.setInt16(44 + 2*i, Math.max(-1, Math.min(1, x[i])) * 32767, true);
  return new Blob([out], {type: "audio/wav"});
}
let recorder = null;
$("rec").onclick = async () => {
  if (recorder) { recorder.stop(); return; }
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const parts = []; recorder = new MediaRecorder(stream);
  recorder.ondataavailable = (e) => parts.push(e.data);
  recorder.onstop = async () => {
    stream.getTracks().forEach(t => t.stop()); recorder = null; $("rec").textContent = "Record";
    const ctx = new AudioContext(), buf = await ctx.decodeAudioData(await new Blob(parts).arrayBuffer());
    send(wav(buf), "recording.wav");
  };
  recorder.start(); $("rec").textContent = "Stop";
};
// ?clip=URL analyzes the clip at URL as an upload would (used by the page's own test): a data: URL or one
// of this server's own, never another site's (a link must not make the page fetch what it names).
const clip = new URLSearchParams(location.search).get("clip");
const clipUrl = clip && new URL(clip, location.href);
if (clipUrl && (clipUrl.protocol === "data:" || clipUrl.origin === location.origin))
  fetch(clipUrl).then(r => r.blob()).then(b => send(b, clip.startsWith("data:") ? "clip.wav" : clip.split("/").pop()));
</script></body></html>
"""

DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Nabra API</title>
<style>body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:.1rem .3rem} li{margin:.4rem 0}</style></head><body>
<h1>Nabra API</h1><p>The OpenAPI description: <a href="/openapi.json">/openapi.json</a>.</p><ul id="ops"></ul>
<pre>curl -F file=@call.wav -F tasks=asr,did http://127.0.0.1:8000/v1/analyze</pre>
<script>
fetch("/openapi.json").then(r => r.json()).then(api => {
  const ops = document.getElementById("ops");
  for (const [path, methods] of Object.entries(api.paths))
    for (const [method, op] of Object.entries(methods)) {
      const li = document.createElement("li");
      li.innerHTML = `<code>${method.toUpperCase()} ${path}</code> — ${op.summary || ""}: ${op.description || ""}`;
      ops.appendChild(li);
    }
});
</script></body></html>
"""
