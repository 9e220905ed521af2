// Decoding and NMS, operation for operation the Python pipeline's (pipeline/infer/postprocess.py), in float32:
// every intermediate is rounded with Math.fround where numpy computes in float32, so the detections are the same
// numbers, not merely close ones. Outputs: detections in ORIGINAL image pixels.

export const STRIDES = [8, 16, 32];
export const MAX_WH = 7680.0;
export const MAX_NMS = 30000;
const f = Math.fround;

// Anchor points [N * 2] (x, y): grid-cell centres, level-major, row-major within a level.
export function makeAnchors(imgsz, strides = STRIDES) {
  const pts = [];
  for (const s of strides) {
    const n = Math.floor(imgsz / s);
    for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) pts.push((x + 0.5) * s, (y + 0.5) * s);
  }
  return Float32Array.from(pts);
}

// IoU of box `a` with box `b` (each [x1, y1, x2, y2] float32), as box_iou_one computes it.
function iou(a, b) {
  const ix1 = Math.max(a[0], b[0]);
  const iy1 = Math.max(a[1], b[1]);
  const ix2 = Math.min(a[2], b[2]);
  const iy2 = Math.min(a[3], b[3]);
  const inter = f(Math.max(f(ix2 - ix1), 0) * Math.max(f(iy2 - iy1), 0));
  const area = f(f(a[2] - a[0]) * f(a[3] - a[1]));
  const areas = f(f(b[2] - b[0]) * f(b[3] - b[1]));
  return f(inter / Math.max(f(f(area + areas) - inter), f(1e-9)));
}

// Greedy NMS over candidates already sorted by decreasing score; returns kept positions.
function nms(boxes, iouThres) {
  const thr = f(iouThres);
  let order = boxes.map((_, i) => i);
  const keep = [];
  while (order.length) {
    const i = order[0];
    keep.push(i);
    order = order.slice(1).filter((j) => iou(boxes[i], boxes[j]) <= thr);
  }
  return keep;
}

// Raw outputs of one image (boxes [N * 4] ltrb, scores [N * nc]) -> [{box, score, cls}] in letterboxed pixels.
export function postprocess(boxes, scores, nc, imgsz, { confThres = 0.25, iouThres = 0.45, maxDet = 300,
  classAgnostic = false } = {}) {
  const pts = makeAnchors(imgsz);
  const n = pts.length / 2;
  if (boxes.length !== n * 4 || scores.length !== n * nc) {
    throw new Error(`postprocess: ${boxes.length / 4} box rows and ${scores.length / nc} score rows, ` +
      `but imgsz ${imgsz} gives ${n} anchors`);
  }
  const conf = f(confThres);
  let cands = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < nc; c++) if (scores[i * nc + c] > scores[i * nc + best]) best = c;
    const score = scores[i * nc + best];
    if (score > conf) cands.push({ i, score, cls: best });
  }
  cands.sort((a, b) => b.score - a.score || a.i - b.i); // numpy's stable argsort of -score
  cands = cands.slice(0, MAX_NMS);
  const xyxy = cands.map(({ i }) => {
    const px = pts[2 * i], py = pts[2 * i + 1];
    return [f(px - boxes[4 * i]), f(py - boxes[4 * i + 1]), f(px + boxes[4 * i + 2]), f(py + boxes[4 * i + 3])];
  });
  const shifted = xyxy.map((b, k) => {
    const off = classAgnostic ? 0 : f(cands[k].cls * MAX_WH);
    return b.map((v) => f(v + off));
  });
  return nms(shifted, iouThres).slice(0, maxDet).map((k) => ({ box: xyxy[k], score: cands[k].score,
    cls: cands[k].cls }));
}

// Letterboxed pixels -> original pixels, clipped to the image (scale_to_original).
export function scaleToOriginal(dets, ratio, pad, width, height) {
  const r = f(ratio), px = f(pad[0]), py = f(pad[1]);
  const clip = (v, hi) => Math.min(Math.max(v, 0), hi);
  return dets.map((d) => ({ ...d, box: [clip(f(f(d.box[0] - px) / r), width), clip(f(f(d.box[1] - py) / r), height),
    clip(f(f(d.box[2] - px) / r), width), clip(f(f(d.box[3] - py) / r), height)] }));
}
