/**
 * The baseline a user would port: AP-Loss and Rank & Sort as the authors' Python computes them
 * (cccorn/AP-loss `AP_loss`, kemaloksuz/RankSortLoss `RankSort`), written in plain JavaScript. One
 * positive at a time, each step a whole-array operation into fresh float32 arrays (what a tensor
 * library does), over the negatives above the lowest positive score minus delta. Returns the loss
 * and the update, as the ops do.
 */

function split(logits: Float32Array, targets: Float32Array, delta: number) {
  const fg: number[] = [];
  for (let i = 0; i < targets.length; i++) if (targets[i] > 0) fg.push(i);
  let min = Infinity;
  for (const i of fg) min = Math.min(min, logits[i]);
  const bg: number[] = [];
  for (let i = 0; i < targets.length; i++) if (targets[i] === 0 && logits[i] >= min - delta) bg.push(i);
  return { fg, bg, fgLogits: Float32Array.from(fg, (i) => logits[i]), bgLogits: Float32Array.from(bg, (i) => logits[i]) };
}

/** clamp((x - at) / (2 delta) + 0.5, 0, 1) into a fresh array. */
function relations(x: Float32Array, at: number, delta: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let k = 0; k < x.length; k++) out[k] = Math.min(1, Math.max(0, (x[k] - at) / (2 * delta) + 0.5));
  return out;
}

const sum = (x: Float32Array) => {
  let s = 0;
  for (let k = 0; k < x.length; k++) s += x[k];
  return s;
};

/** AP-Loss, the authors' loop. */
export function apLossAuthorsLoop(logits: Float32Array, targets: Float32Array, delta = 1): { loss: number[]; grad: Float32Array } {
  const grad = new Float32Array(logits.length);
  const { fg, bg, fgLogits, bgLogits } = split(logits, targets, delta);
  if (fg.length === 0) return { loss: [0], grad };
  const order = fg.map((_, a) => a).sort((a, b) => fgLogits[a] - fgLogits[b] || a - b);
  const fgGrad = new Float32Array(fg.length);
  let bgGrad = new Float32Array(bg.length);
  let maxPrec = 0;
  let precSum = 0;
  for (const ii of order) {
    const fgRel = relations(fgLogits, fgLogits[ii], delta);
    const bgRel = relations(bgLogits, fgLogits[ii], delta);
    const rankPos = 1 + sum(fgRel) - fgRel[ii];
    const fpNum = sum(bgRel);
    const rank = rankPos + fpNum;
    const prec = rankPos / rank;
    const scale = maxPrec <= prec ? 1 : (1 - maxPrec) / (1 - prec);
    if (maxPrec <= prec) maxPrec = prec;
    const next = new Float32Array(bg.length);
    for (let k = 0; k < bg.length; k++) next[k] = bgGrad[k] + (bgRel[k] / rank) * scale;
    bgGrad = next;
    fgGrad[ii] = -(1 - maxPrec);
    precSum += maxPrec;
  }
  fg.forEach((i, a) => (grad[i] = fgGrad[a] / fg.length));
  bg.forEach((j, k) => (grad[j] = bgGrad[k] / fg.length));
  return { loss: [1 - precSum / fg.length], grad };
}

/** Rank & Sort, the authors' loop. */
export function rankSortAuthorsLoop(logits: Float32Array, targets: Float32Array, delta = 0.5): { loss: number[]; grad: Float32Array } {
  const grad = new Float32Array(logits.length);
  const { fg, bg, fgLogits, bgLogits } = split(logits, targets, delta);
  if (fg.length === 0) return { loss: [0, 0], grad };
  const y = Float32Array.from(fg, (i) => targets[i]);
  const fgGrad = new Float32Array(fg.length);
  let bgGrad = new Float32Array(bg.length);
  let rankSum = 0;
  let sortSum = 0;
  for (let ii = 0; ii < fg.length; ii++) {
    const fgRel = relations(fgLogits, fgLogits[ii], delta);
    const bgRel = relations(bgLogits, fgLogits[ii], delta);
    const rankPos = sum(fgRel);
    const fpNum = sum(bgRel);
    const rankingError = fpNum / (rankPos + fpNum);
    const weighted = fgRel.map((h, k) => h * (1 - y[k]));
    const iouRel = y.map((v) => +(v >= y[ii]));
    const targetOrder = fgRel.map((h, k) => h * iouRel[k]);
    const sortingError = sum(weighted) / rankPos - sum(targetOrder.map((h, k) => h * (1 - y[k]))) / sum(targetOrder);
    rankSum += rankingError;
    sortSum += sortingError;
    if (fpNum > 1e-10) {
      fgGrad[ii] -= rankingError;
      const next = new Float32Array(bg.length);
      for (let k = 0; k < bg.length; k++) next[k] = bgGrad[k] + bgRel[k] * (rankingError / fpNum);
      bgGrad = next;
    }
    const missorted = fgRel.map((h, k) => h * (1 - iouRel[k]));
    const denom = sum(missorted);
    if (denom > 1e-10) {
      fgGrad[ii] -= sortingError;
      for (let k = 0; k < fg.length; k++) fgGrad[k] += missorted[k] * (sortingError / denom);
    }
  }
  fg.forEach((i, a) => (grad[i] = fgGrad[a] / fg.length));
  bg.forEach((j, k) => (grad[j] = bgGrad[k] / fg.length));
  return { loss: [rankSum / fg.length, sortSum / fg.length], grad };
}
