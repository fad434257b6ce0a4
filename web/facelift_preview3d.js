// FaceLift Preview 3D: an interactive 3D Gaussian-splat viewer inside the node (ComfyUI web extension).
//
// Stable extension API only (app.registerExtension, beforeRegisterNodeDef for our own node type, a DOM widget,
// the node's onExecuted UI message); nothing global is patched and every id is namespaced "facelift". The viewer
// library (Spark + three.js, web/lib/facelift_splat_viewer.mjs, built from web_src/) is this pack's own file,
// imported on first use, so the graph editor loads no extra bytes until a preview node is on the canvas. The
// splat comes from ComfyUI's /view endpoint (the .spz the node wrote into the temp folder): no network beyond
// the ComfyUI server. Without WebGL 2 the widget says so and shows the node's rendered preview image instead.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_TYPE = "FaceLiftPreview3D";
const WIDGET_NAME = "facelift_preview3d";
const UI_KEY = "facelift_splat"; // the node's UI message (nodes/preview_nodes.py)
const BUNDLE_URL = new URL("./lib/facelift_splat_viewer.mjs", import.meta.url).href;
const BACKGROUND = 0x2b2b2b;
const HELP = "left-drag: orbit · wheel: zoom · right-drag: pan";

let bundlePromise = null;
function loadBundle() {
  bundlePromise ??= import(BUNDLE_URL).catch((e) => {
    bundlePromise = null;
    throw e;
  });
  return bundlePromise;
}

/** True when this browser can give a WebGL 2 context (Spark needs WebGL 2); checked before loading the bundle. */
function webgl2Available() {
  try {
    const gl = document.createElement("canvas").getContext("webgl2");
    if (!gl) return false;
    gl.getExtension("WEBGL_lose_context")?.loseContext();
    return true;
  } catch {
    return false;
  }
}

function viewUrl(file) {
  const q = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder ?? "", type: file.type ?? "temp" });
  return api.apiURL(`/view?${q}`);
}

function el(tag, props = {}, style = {}) {
  const e = Object.assign(document.createElement(tag), props);
  Object.assign(e.style, style);
  return e;
}

class PreviewWidget {
  constructor(node) {
    this.node = node;
    this.viewer = null;
    this.file = null;
    this.loadToken = 0;

    this.root = el("div", { className: "facelift-preview3d" }, {
      display: "flex", flexDirection: "column", width: "100%", height: "100%", minHeight: "0",
      boxSizing: "border-box", gap: "4px", font: "12px sans-serif", color: "#ccc",
    });
    this.stage = el("div", { className: "facelift-preview3d-stage" }, {
      position: "relative", flex: "1 1 auto", minHeight: "0", background: "#2b2b2b", borderRadius: "4px",
      overflow: "hidden",
    });
    this.message = el("div", { className: "facelift-preview3d-message", textContent: "Run the workflow to see the head in 3D." }, {
      position: "absolute", inset: "0", display: "flex", alignItems: "center", justifyContent: "center",
      textAlign: "center", padding: "8px", pointerEvents: "none",
    });
    this.stage.appendChild(this.message);
    const bar = el("div", {}, { display: "flex", gap: "4px", alignItems: "center", flex: "0 0 auto" });
    this.resetButton = el("button", { textContent: "Reset view", title: "Back to the front view", disabled: true });
    this.saveButton = el("button", { textContent: "Save PNG", title: "Save the current view as a PNG", disabled: true });
    this.status = el("span", { className: "facelift-preview3d-status", textContent: HELP },
      { flex: "1 1 auto", overflow: "hidden", whiteSpace: "nowrap", textOverflow: "ellipsis", opacity: "0.8" });
    for (const b of [this.resetButton, this.saveButton]) {
      Object.assign(b.style, { font: "12px sans-serif", padding: "2px 8px", cursor: "pointer", flex: "0 0 auto",
        whiteSpace: "nowrap" });
      bar.appendChild(b);
    }
    bar.appendChild(this.status);
    this.root.append(this.stage, bar);
    this.setState("idle");
    this.resetButton.addEventListener("click", () => this.viewer?.resetView());
    this.saveButton.addEventListener("click", () => this.savePng());
  }

  setState(state) {
    this.root.dataset.state = state; // idle | loading | ready | error | no-webgl (read by the browser test)
  }

  showMessage(text) {
    this.message.textContent = text;
    this.message.style.display = text ? "flex" : "none";
  }

  async show(file) {
    const token = ++this.loadToken;
    const executedAt = performance.now();
    this.file = file;
    delete this.root.dataset.firstFrameMs;
    this.setState("loading");
    this.showMessage(`Loading ${file.gaussians?.toLocaleString?.() ?? ""} Gaussians…`);
    try {
      if (!webgl2Available()) return this.showFallback(file);
      const bundle = await loadBundle();
      const response = await fetch(viewUrl(file));
      if (!response.ok) throw new Error(`GET /view answered ${response.status} for ${file.filename}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (token !== this.loadToken) return;
      this.viewer ??= new bundle.SplatViewer(this.stage, {
        background: BACKGROUND,
        onFirstFrame: () => {
          this.root.dataset.firstFrameMs = String(Math.round(performance.now() - this.shownAt));
          this.setState("ready");
          this.showMessage("");
        },
      });
      this.shownAt = executedAt;
      await this.viewer.load(bytes, file.filename);
      if (token !== this.loadToken) return;
      this.resetButton.disabled = false;
      this.saveButton.disabled = false;
      const count = file.gaussians ? `${file.gaussians.toLocaleString()} Gaussians · ` : "";
      this.status.textContent = count + HELP;
      this.viewer.resetView();
    } catch (e) {
      if (token !== this.loadToken) return;
      this.setState("error");
      this.showMessage(`Could not show the splat: ${e?.message ?? e}`);
      console.warn("[FaceLift] Preview 3D:", e);
    }
  }

  showFallback(file) {
    this.setState("no-webgl");
    this.showMessage("");
    this.stage.replaceChildren();
    const note = el("div", { className: "facelift-preview3d-message",
      textContent: "WebGL 2 is not available in this browser, so the 3D view cannot run; this is the rendered front view." },
      { padding: "6px", textAlign: "center" });
    this.stage.appendChild(note);
    if (file.preview) {
      const img = el("img", { src: viewUrl(file.preview), alt: "FaceLift front render" },
        { display: "block", margin: "0 auto", maxWidth: "100%", maxHeight: "calc(100% - 40px)", objectFit: "contain" });
      this.stage.appendChild(img);
    }
  }

  async savePng() {
    if (!this.viewer) return;
    const blob = await this.viewer.snapshot();
    const url = URL.createObjectURL(blob);
    const stem = (this.file?.filename ?? "facelift").replace(/\.[^.]+$/, "");
    const a = el("a", { href: url, download: `${stem}_view.png` });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  dispose() {
    this.loadToken++;
    this.viewer?.dispose();
    this.viewer = null;
  }
}

app.registerExtension({
  name: "facelift.preview3d",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== NODE_TYPE) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = onNodeCreated?.apply(this, arguments);
      const preview = new PreviewWidget(this);
      this.faceliftPreview3d = preview;
      this.addDOMWidget(WIDGET_NAME, "facelift_preview3d", preview.root, {
        serialize: false,
        hideOnZoom: false,
        getMinHeight: () => 260,
      });
      const [w, h] = this.size;
      this.setSize([Math.max(w, 400), Math.max(h, 460)]);
      return r;
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      const r = onExecuted?.apply(this, arguments);
      const file = message?.[UI_KEY]?.[0];
      if (file && this.faceliftPreview3d) this.faceliftPreview3d.show(file);
      return r;
    };

    const onRemoved = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function () {
      this.faceliftPreview3d?.dispose();
      return onRemoved?.apply(this, arguments);
    };
  },
});
