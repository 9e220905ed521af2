// The detector: config.json (written by the `web` stage), one onnxruntime-web (wasm) session, and the same pre-
// and post-processing as Python's `leafyolo predict`.
import * as ort from './ort/ort.wasm.min.mjs';
import { letterbox, rgbaToRgb } from './letterbox.js';
import { postprocess, scaleToOriginal } from './postprocess.js';

// Threads: ?threads=N in the page URL, else up to 4 when the page is cross-origin isolated (SharedArrayBuffer).
export function threadCount() {
  const asked = Number(new URLSearchParams(location.search).get('threads'));
  if (asked > 0) return asked;
  return self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
}

// A Blob, File, URL string or ImageBitmap -> { rgba, width, height } as decoded pixels (EXIF orientation applied,
// no colour management: the file's own values, as PIL reads them).
export async function readPixels(source) {
  let bitmap = source;
  if (!(source instanceof ImageBitmap)) {
    const blob = typeof source === 'string' ? await (await fetch(source)).blob() : source;
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image', colorSpaceConversion: 'none',
      premultiplyAlpha: 'none' });
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  return { rgba: ctx.getImageData(0, 0, bitmap.width, bitmap.height).data, width: bitmap.width,
    height: bitmap.height, bitmap };
}

export async function createDetector(base = new URL('./', import.meta.url)) {
  const config = await (await fetch(new URL('config.json', base))).json();
  ort.env.wasm.wasmPaths = new URL('ort/', base).href;
  ort.env.wasm.numThreads = threadCount();
  const session = await ort.InferenceSession.create(new URL(config.model, base).href,
    { executionProviders: ['wasm'] });
  const S = config.imgsz;

  async function infer(tensor) {
    const out = await session.run({ [config.input]: new ort.Tensor('float32', tensor, [1, 3, S, S]) });
    return { boxes: out.boxes.data, scores: out.scores.data };
  }

  // Pixels -> detections in original pixels, with the time of each step (ms) and, with `raw`, the tensors.
  async function detectPixels({ rgba, width, height }, opts = {}) {
    const o = { confThres: config.conf_thres, iouThres: config.iou_thres, maxDet: config.max_det, ...opts };
    const t0 = performance.now();
    const { tensor, ratio, pad } = letterbox(rgbaToRgb(rgba, width, height), width, height, S);
    const t1 = performance.now();
    const { boxes, scores } = await infer(tensor);
    const t2 = performance.now();
    const dets = scaleToOriginal(postprocess(boxes, scores, config.names.length, S, o), ratio, pad, width, height)
      .map((d) => ({ ...d, name: config.names[d.cls] ?? String(d.cls) }));
    const t3 = performance.now();
    const result = { detections: dets, ratio, pad, width, height,
      ms: { preprocess: t1 - t0, inference: t2 - t1, postprocess: t3 - t2 } };
    if (o.raw) Object.assign(result, { input: tensor, boxes, scores });
    return result;
  }

  // Inference-only timings (ms) of `runs` calls on one letterboxed tensor, after `warmup` untimed calls.
  async function benchmark(tensor, runs = 50, warmup = 10) {
    for (let i = 0; i < warmup; i++) await infer(tensor);
    const times = [];
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      await infer(tensor);
      times.push(performance.now() - t);
    }
    return times;
  }

  return { config, detectPixels, benchmark, infer, threads: ort.env.wasm.numThreads, ortVersion: ort.env.versions };
}
