/// `GET /`: one small page, plain HTML and a few lines of script. Pick a source and a target
/// photo (and optionally the target's face-parsing label map), press Swap: the result appears
/// beside the inputs with the per-stage timings (from `Server-Timing`) and a download link.
/// Errors are shown in words (the JSON error's message).
enum Page {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>megafs: face swap</title>
    <style>
      body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 70em; }
      h1 { font-size: 1.4em; margin: 0 0 .6em; }
      form { display: grid; grid-template-columns: max-content 1fr; gap: .5em 1em; align-items: center; max-width: 40em; }
      .row { display: contents; }
      button { padding: .4em 1.6em; font-size: 1em; }
      #error { color: #b00020; font-weight: 600; margin: .8em 0; white-space: pre-wrap; }
      #status { color: #555; margin: .8em 0; }
      .images { display: flex; gap: 1em; flex-wrap: wrap; margin-top: 1em; }
      figure { margin: 0; }
      figure img { width: 256px; height: 256px; object-fit: contain; background: #eee; border: 1px solid #ccc; display: block; }
      figcaption { text-align: center; color: #555; }
      table { border-collapse: collapse; margin-top: 1em; }
      td, th { border-bottom: 1px solid #ddd; padding: .15em .8em; text-align: left; }
      td.ms { text-align: right; font-variant-numeric: tabular-nums; }
    </style>
    </head>
    <body>
    <h1>megafs face swap</h1>
    <form id="form">
      <label for="source">Source face</label><input id="source" name="source" type="file" accept="image/png,image/jpeg" required>
      <label for="target">Target photo</label><input id="target" name="target" type="file" accept="image/png,image/jpeg" required>
      <label for="target_mask">Target label map (optional)</label><input id="target_mask" name="target_mask" type="file" accept="image/png">
      <label for="type">Swapper</label><select id="type"><option>ftm</option><option>injection</option><option>lcr</option></select>
      <label for="format">Result format</label><select id="format"><option value="png">PNG</option><option value="jpeg">JPEG</option></select>
      <label for="refine">Refine pass</label><input id="refine" type="checkbox">
      <label for="token">Access token (if the server needs one)</label><input id="token" type="password" autocomplete="off">
      <span></span><button id="swap" type="submit">Swap</button>
    </form>
    <div id="status"></div>
    <div id="error" role="alert"></div>
    <div class="images">
      <figure><img id="source-preview" alt="source"><figcaption>source</figcaption></figure>
      <figure><img id="target-preview" alt="target"><figcaption>target</figcaption></figure>
      <figure><img id="result" alt="result"><figcaption>swapped <a id="download" hidden download>download</a></figcaption></figure>
    </div>
    <table id="timings" hidden><thead><tr><th>stage</th><th>ms</th></tr></thead><tbody></tbody></table>
    <script>
    const $ = (id) => document.getElementById(id);
    function preview(input, img) {
      input.addEventListener("change", () => { if (input.files[0]) img.src = URL.createObjectURL(input.files[0]); });
    }
    preview($("source"), $("source-preview"));
    preview($("target"), $("target-preview"));
    $("form").addEventListener("submit", async (event) => {
      event.preventDefault();
      $("error").textContent = ""; $("status").textContent = "swapping…"; $("swap").disabled = true;
      $("result").removeAttribute("src"); $("download").hidden = true; $("timings").hidden = true;
      const body = new FormData();
      for (const name of ["source", "target", "target_mask"]) {
        if ($(name).files[0]) body.append(name, $(name).files[0]);
      }
      const query = new URLSearchParams({ type: $("type").value, format: $("format").value, refine: $("refine").checked });
      const headers = $("token").value ? { Authorization: "Bearer " + $("token").value } : {};
      const started = performance.now();
      try {
        const response = await fetch("/v1/swap?" + query, { method: "POST", body, headers });
        if (!response.ok) {
          let message = response.status + " " + response.statusText;
          try { const e = await response.json(); message = e.message + " (" + e.error + ", HTTP " + response.status + ")"; } catch (_) {}
          const retry = response.headers.get("Retry-After");
          throw new Error(retry ? message + "; retry in " + retry + " s" : message);
        }
        const blob = await response.blob();
        const url = URL.createObjectURL(blob);
        $("result").src = url;
        $("download").href = url;
        $("download").download = "swapped." + ($("format").value === "jpeg" ? "jpg" : "png");
        $("download").hidden = false;
        const rows = (response.headers.get("Server-Timing") || "").split(",").filter((s) => s.trim())
          .map((s) => { const [name, dur] = s.trim().split(";dur="); return [name, dur]; });
        rows.push(["round trip", (performance.now() - started).toFixed(1)]);
        $("timings").tBodies[0].replaceChildren(...rows.map(([name, dur]) => {
          const tr = document.createElement("tr");
          tr.innerHTML = "<td></td><td class=ms></td>";
          tr.cells[0].textContent = name; tr.cells[1].textContent = dur;
          return tr;
        }));
        $("timings").hidden = false;
        $("status").textContent = "done: " + (response.headers.get("X-Image-Size") || "") + " " + blob.type;
      } catch (err) {
        $("status").textContent = "";
        $("error").textContent = "Swap failed: " + (err.message || err);
      } finally {
        $("swap").disabled = false;
      }
    });
    </script>
    </body>
    </html>
    """#
}
