// FaceLift's interactive 3D Gaussian-splat viewer: Spark (World Labs, MIT) on three.js (MIT), one canvas.
// Bundled by web_src/build.mjs into web/lib/facelift_splat_viewer.mjs, which the FaceLift Preview 3D widget
// (web/facelift_preview3d.js) imports on first use. Nothing here touches globals or the network: the splat
// arrives as bytes from the caller.
//
// Orientation. The files it shows are in the 3DGS/OpenCV axes (y down, the face toward -z: what
// facelift_models.formats.export writes by default, = the frame of FaceLift's front camera centred on the head).
// The mesh is turned 180 deg about X into three.js's y-up world (as ComfyUI's own Load 3D does), so the
// default camera at +z, looking at the origin, sees exactly FaceLift Render's front frame: radius 2.7,
// 50 deg field of view (across the shorter side of the canvas).
import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { SparkRenderer, SplatMesh } from "@sparkjsdev/spark";

export const THREE_REVISION = THREE.REVISION;

// The official FaceLift camera (facelift_models.cameras: OFFICIAL_RADIUS, OFFICIAL_FOV_DEG).
export const DEFAULT_RADIUS = 2.7;
export const DEFAULT_FOV_DEG = 50;
// How long to keep redrawing after a load while the splat is not on screen yet (Spark sorts in a worker);
// after that, only Spark's onDirty and the controls trigger frames.
const MAX_WAIT_FOR_CONTENT_MS = 300_000;

export class SplatViewer {
  /**
   * @param {HTMLElement} container  element the canvas fills (its size drives the canvas size)
   * @param {{background?: number, radius?: number, fovDeg?: number, onFirstFrame?: (ms: number) => void}} opts
   */
  constructor(container, opts = {}) {
    this.container = container;
    this.radius = opts.radius ?? DEFAULT_RADIUS;
    this.fovDeg = opts.fovDeg ?? DEFAULT_FOV_DEG;
    this.background = new THREE.Color(opts.background ?? 0x2b2b2b);
    this.onFirstFrame = opts.onFirstFrame ?? null;
    this.mesh = null;
    this._raf = 0;
    this._waitingForContent = false;
    this._loadStart = 0;
    this._disposed = false;

    // preserveDrawingBuffer: 'Save PNG' copies exactly the frame on screen (an extra render for the snapshot
    // could catch Spark between two sort updates).
    this.renderer = new THREE.WebGLRenderer({ antialias: false, alpha: false, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(1);
    this.renderer.setClearColor(this.background, 1);
    const canvas = this.renderer.domElement;
    canvas.style.display = "block";
    canvas.style.width = "100%";
    canvas.style.height = "100%";
    canvas.style.touchAction = "none";
    canvas.tabIndex = 0;
    container.appendChild(canvas);

    this.scene = new THREE.Scene();
    this.scene.background = this.background;
    this.camera = new THREE.PerspectiveCamera(this.fovDeg, 1, 0.01, 100);
    this.spark = new SparkRenderer({ renderer: this.renderer, onDirty: () => this.requestRender() });
    this.scene.add(this.spark);

    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.enableDamping = false;
    this.controls.zoomSpeed = 0.8;
    this.controls.minDistance = 0.3;
    this.controls.maxDistance = 20;
    this.controls.addEventListener("change", () => this.requestRender());

    // Keep the graph editor from also reacting to what the viewer consumes (drag, wheel, context menu).
    for (const type of ["pointerdown", "pointermove", "pointerup", "wheel", "contextmenu", "dblclick", "keydown"]) {
      canvas.addEventListener(type, (e) => {
        e.stopPropagation();
        if (type === "contextmenu" || type === "wheel") e.preventDefault();
      }, { passive: false });
    }

    this._resizeObserver = new ResizeObserver(() => this._resize());
    this._resizeObserver.observe(container);
    this._resize();
    this.resetView();
  }

  /** The camera of FaceLift Render's front frame: on +z at the official radius, looking at the head's centre. */
  resetView() {
    this.camera.up.set(0, 1, 0);
    this.camera.position.set(0, 0, this.radius);
    this.controls.target.set(0, 0, 0);
    this.controls.update();
    this.requestRender();
  }

  /** Show a splat file given as bytes (.spz, .splat, .ply, ...; the type is taken from fileName). */
  async load(bytes, fileName) {
    this._loadStart = performance.now();
    const mesh = new SplatMesh({ fileBytes: bytes, fileName });
    mesh.quaternion.set(1, 0, 0, 0); // OpenCV axes (y down, face toward -z) -> three.js y up, face toward +z
    await mesh.initialized;
    if (this._disposed) {
      mesh.dispose?.();
      return;
    }
    if (this.mesh) {
      this.scene.remove(this.mesh);
      this.mesh.dispose?.();
    }
    this.mesh = mesh;
    this.scene.add(mesh);
    this._waitingForContent = true;
    this.requestRender();
  }

  requestRender() {
    if (this._raf || this._disposed) return;
    this._raf = requestAnimationFrame(() => {
      this._raf = 0;
      this.render();
    });
  }

  render() {
    if (this._disposed) return;
    this.renderer.render(this.scene, this.camera);
    if (this._waitingForContent) {
      // Spark sorts in a worker: the first frames after loading may still be empty. Keep drawing until the
      // splat shows, then report the time it took (once per load).
      if (this._frameHasContent()) {
        this._waitingForContent = false;
        this.onFirstFrame?.(performance.now() - this._loadStart);
      } else if (performance.now() - this._loadStart < MAX_WAIT_FOR_CONTENT_MS) {
        this.requestRender();
      }
    }
  }

  /** PNG of the frame on screen, at the canvas's resolution. */
  snapshot() {
    return new Promise((resolve, reject) =>
      this.renderer.domElement.toBlob((b) => (b ? resolve(b) : reject(new Error("canvas.toBlob gave nothing"))),
        "image/png"));
  }

  dispose() {
    this._disposed = true;
    if (this._raf) cancelAnimationFrame(this._raf);
    this._resizeObserver.disconnect();
    this.controls.dispose();
    if (this.mesh) this.mesh.dispose?.();
    this.spark.dispose?.();
    this.renderer.dispose();
    this.renderer.forceContextLoss?.();
    this.renderer.domElement.remove();
  }

  _resize() {
    const w = Math.max(1, Math.floor(this.container.clientWidth));
    const h = Math.max(1, Math.floor(this.container.clientHeight));
    const size = this.renderer.getSize(new THREE.Vector2());
    if (size.x === w && size.y === h) return;
    this.renderer.setSize(w, h, false);
    const aspect = w / h;
    // 50 deg across the shorter side, like FaceLift's square renders (three.js's fov is the vertical one).
    const half = THREE.MathUtils.degToRad(this.fovDeg / 2);
    this.camera.fov = aspect >= 1 ? this.fovDeg : THREE.MathUtils.radToDeg(2 * Math.atan(Math.tan(half) / aspect));
    this.camera.aspect = aspect;
    this.camera.updateProjectionMatrix();
    this.requestRender();
  }

  /** The frame just drawn shows the splat: some pixels are the background (the frame was really drawn, not
   *  a blank buffer after a resize) and some are not (splats are on it). */
  _frameHasContent() {
    const gl = this.renderer.getContext();
    const w = gl.drawingBufferWidth;
    const h = gl.drawingBufferHeight;
    const px = new Uint8Array(w * h * 4);
    gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, px);
    const hex = this.background.getHex(); // sRGB bytes, as on screen (Color.r/g/b are linear)
    const bg = [(hex >> 16) & 255, (hex >> 8) & 255, hex & 255];
    let background = 0;
    let other = 0;
    for (let i = 0; i < px.length; i += 4 * 3) {
      const d = Math.abs(px[i] - bg[0]) + Math.abs(px[i + 1] - bg[1]) + Math.abs(px[i + 2] - bg[2]);
      if (d <= 3) background++;
      else if (d > 24) other++;
    }
    const samples = px.length / 12;
    return background > 0.01 * samples && other > 0.001 * samples;
  }
}
