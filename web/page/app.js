// The page: pick an image (file, drag and drop, camera), detect, draw. `window.leafyolo` is the same detector for
// scripts and tests: `await leafyolo.ready`, then `await leafyolo.detect(urlOrBlob)` -> [{box, score, cls, name}].
import { createDetector, readPixels } from './detector.js';
import { letterbox, rgbaToRgb } from './letterbox.js';
import { postprocess, scaleToOriginal } from './postprocess.js';

const PALETTE = ['#ff3838', '#3838ff', '#38c838', '#ff9d97', '#ff701f', '#00c2ff', '#ffb21d', '#cfd231', '#48f90a',
  '#92cc17', '#3ddb86', '#1a9334']; // predict.PALETTE
const $ = (id) => document.getElementById(id);
const canvas = $('view');
let camera = null;

function draw(bitmap, dets) {
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  const lw = Math.max(2, Math.round(Math.max(bitmap.width, bitmap.height) / 320));
  ctx.lineWidth = lw;
  ctx.font = `${6 * lw + 4}px sans-serif`;
  ctx.textBaseline = 'top';
  for (const d of dets) {
    const [x1, y1, x2, y2] = d.box;
    const colour = PALETTE[d.cls % PALETTE.length];
    ctx.strokeStyle = colour;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const text = `${d.name} ${d.score.toFixed(2)}`;
    const tw = ctx.measureText(text).width + 4, th = 6 * lw + 8;
    const ty = y1 - th >= 0 ? y1 - th : y1;
    ctx.fillStyle = colour;
    ctx.fillRect(x1, ty, tw, th);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, x1 + 2, ty + 2);
  }
}

function report(r, det) {
  const ms = (v) => v.toFixed(1);
  $('status').textContent = `${r.detections.length} detections · inference ${ms(r.ms.inference)} ms ` +
    `(letterbox ${ms(r.ms.preprocess)} ms, decode + NMS ${ms(r.ms.postprocess)} ms) · wasm, ${det.threads} ` +
    `thread${det.threads > 1 ? 's' : ''}`;
  $('list').replaceChildren(...r.detections.map((d) => {
    const li = document.createElement('li');
    li.textContent = `${d.name} ${d.score.toFixed(3)} [${d.box.map((v) => v.toFixed(0)).join(', ')}]`;
    return li;
  }));
}

function thresholds() {
  return { confThres: Number($('conf').value), iouThres: Number($('iou').value) };
}

async function run(det, source) {
  const px = await readPixels(source);
  const r = await det.detectPixels(px, thresholds());
  draw(px.bitmap, r.detections);
  report(r, det);
}

async function cameraLoop(det, video) {
  while (camera) {
    const bitmap = await createImageBitmap(video);
    await run(det, bitmap);
    await new Promise((resolve) => requestAnimationFrame(resolve));
  }
}

function wire(det) {
  const { config } = det;
  $('model').textContent = `${config.model} (${config.precision}, ${config.imgsz} px, ${config.names.length} ` +
    `classes: ${config.names.join(', ')}) · onnxruntime-web ${config.ort_version}`;
  $('conf').value = config.conf_thres;
  $('iou').value = config.iou_thres;
  $('file').addEventListener('change', (e) => e.target.files[0] && run(det, e.target.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = [...e.dataTransfer.files].find((f) => f.type.startsWith('image/'));
    if (file) run(det, file);
  });
  const cam = $('camera');
  cam.disabled = !navigator.mediaDevices?.getUserMedia;
  cam.addEventListener('click', async () => {
    if (camera) {
      camera.getTracks().forEach((t) => t.stop());
      camera = null;
      cam.textContent = 'Camera';
      return;
    }
    try {
      camera = await navigator.mediaDevices.getUserMedia({ video: true });
    } catch (err) {
      $('status').textContent = `camera unavailable: ${err.message}`;
      return;
    }
    cam.textContent = 'Stop camera';
    const video = $('video');
    video.srcObject = camera;
    await video.play();
    cameraLoop(det, video);
  });
}

const ready = createDetector(new URL('./', location.href)).then((det) => {
  wire(det);
  $('status').textContent = `ready · wasm, ${det.threads} thread${det.threads > 1 ? 's' : ''} · pick an image`;
  return det;
}).catch((err) => {
  $('status').textContent = `failed to load the model: ${err.message}`;
  throw err;
});

window.leafyolo = {
  ready: ready.then((det) => ({ config: det.config, threads: det.threads, ortVersion: det.ortVersion,
    crossOriginIsolated: self.crossOriginIsolated })),
  async detect(source, opts = {}) {
    const det = await ready;
    return (await det.detectPixels(await readPixels(source), opts)).detections;
  },
  async run(source, opts = {}) { // everything detect() computes, plus the tensors with {raw: true}; arrays are plain
    const det = await ready;
    const r = await det.detectPixels(await readPixels(source), opts);
    for (const k of ['input', 'boxes', 'scores']) if (r[k]) r[k] = Array.from(r[k]);
    return r;
  },
  async benchmark(source, runs = 50, warmup = 10) {
    const det = await ready;
    const px = await readPixels(source);
    const { tensor } = letterbox(rgbaToRgb(px.rgba, px.width, px.height), px.width, px.height, det.config.imgsz);
    return det.benchmark(tensor, runs, warmup);
  },
  lib: { letterbox, postprocess, scaleToOriginal },
};
