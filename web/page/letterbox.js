// Letterbox pre-processing, pixel for pixel the Python pipeline's (pipeline/data/letterbox.py + predict.preprocess):
// resize keeping aspect with Pillow's BILINEAR resampling (its 8-bit fixed-point code, libImaging/Resample.c),
// centre on a grey (114) square, then RGB float32 NCHW in [0, 1].

export const PAD_VALUE = 114;
const PRECISION_BITS = 32 - 8 - 2;

// Python's round(): half to even.
export function roundHalfEven(x) {
  const fl = Math.floor(x);
  const d = x - fl;
  if (d > 0.5) return fl + 1;
  if (d < 0.5) return fl;
  return fl % 2 === 0 ? fl : fl + 1;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle) filter, support 1.
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1.0);
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1.0 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0.0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1.0 ? 1.0 - t : 0.0;
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0.0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS)) : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

function clip8(v) {
  if (v >= (1 << PRECISION_BITS) * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / (1 << PRECISION_BITS));
}

// One separable pass over RGB (3 bytes per pixel). `horizontal`: resample along x, else along y.
function pass(src, w, h, outLen, horizontal) {
  const inSize = horizontal ? w : h;
  const { bounds, kk, ksize } = coefficients(inSize, outLen);
  const ow = horizontal ? outLen : w;
  const oh = horizontal ? h : outLen;
  const out = new Uint8Array(ow * oh * 3);
  const half = 1 << (PRECISION_BITS - 1);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const o = horizontal ? x : y;
      const min = bounds[o * 2];
      const n = bounds[o * 2 + 1];
      let s0 = half, s1 = half, s2 = half;
      for (let k = 0; k < n; k++) {
        const c = kk[o * ksize + k];
        const i = horizontal ? (y * w + min + k) * 3 : ((min + k) * w + x) * 3;
        s0 += src[i] * c;
        s1 += src[i + 1] * c;
        s2 += src[i + 2] * c;
      }
      const j = (y * ow + x) * 3;
      out[j] = clip8(s0);
      out[j + 1] = clip8(s1);
      out[j + 2] = clip8(s2);
    }
  }
  return out;
}

// Pillow's Image.resize((nw, nh), BILINEAR) on packed RGB bytes.
export function resizeBilinear(rgb, w, h, nw, nh) {
  let out = rgb;
  if (nw !== w) out = pass(out, w, h, nw, true);
  if (nh !== h) out = pass(out, nw, h, nh, false);
  return out;
}

// RGBA (canvas ImageData) -> packed RGB; alpha is dropped, as PIL's convert("RGB") does.
export function rgbaToRgb(rgba, w, h) {
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0, j = 0; i < w * h * 4; i += 4, j += 3) {
    rgb[j] = rgba[i];
    rgb[j + 1] = rgba[i + 1];
    rgb[j + 2] = rgba[i + 2];
  }
  return rgb;
}

// Packed RGB (w x h) -> { tensor: Float32Array [1, 3, S, S], ratio, pad: [padx, pady] }.
export function letterbox(rgb, w, h, imgsz) {
  const ratio = Math.min(imgsz / h, imgsz / w);
  const nw = Math.max(1, roundHalfEven(w * ratio));
  const nh = Math.max(1, roundHalfEven(h * ratio));
  const resized = resizeBilinear(rgb, w, h, nw, nh);
  const padx = Math.floor((imgsz - nw) / 2);
  const pady = Math.floor((imgsz - nh) / 2);
  const plane = imgsz * imgsz;
  const tensor = new Float32Array(3 * plane).fill(Math.fround(PAD_VALUE / 255));
  for (let y = 0; y < nh; y++) {
    for (let x = 0; x < nw; x++) {
      const i = (y * nw + x) * 3;
      const o = (y + pady) * imgsz + x + padx;
      tensor[o] = resized[i] / 255;
      tensor[plane + o] = resized[i + 1] / 255;
      tensor[2 * plane + o] = resized[i + 2] / 255;
    }
  }
  return { tensor, ratio, pad: [padx, pady] };
}
