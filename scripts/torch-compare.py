#!/usr/bin/env python3
"""PyTorch eager on CUDA, forward + backward, for the cases of detloss bench --node: the side-by-side
figures of issue 10. GPU time per call from CUDA events (median of 10 after 3 warm-ups), inputs
already on the device, loss 'mean' and its gradient. Writes torch-compare.json to --out.

    python3 scripts/torch-compare.py --out DIR
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

out = sys.argv[sys.argv.index('--out') + 1] if '--out' in sys.argv else '.'
dev = 'cuda'
torch.manual_seed(0)


def boxes(n, jitter_of=None):
    if jitter_of is not None:
        b = jitter_of + (torch.rand(n, 4, device=dev) - 0.5) * 8
        b[:, 2] = torch.maximum(b[:, 2], b[:, 0] + 1)
        b[:, 3] = torch.maximum(b[:, 3], b[:, 1] + 1)
        return b
    xy = torch.rand(n, 2, device=dev) * 500
    wh = 4 + torch.rand(n, 2, device=dev) * 60
    return torch.cat([xy, xy + wh], 1)


def iou_terms(p, t, eps=1e-7):
    x1, y1, x2, y2 = p.unbind(1)
    a1, b1, a2, b2 = t.unbind(1)
    iw = (torch.minimum(x2, a2) - torch.maximum(x1, a1)).clamp(min=0)
    ih = (torch.minimum(y2, b2) - torch.maximum(y1, b1)).clamp(min=0)
    inter = iw * ih
    union = (x2 - x1) * (y2 - y1) + (a2 - a1) * (b2 - b1) - inter
    iou = inter / (union + eps)
    cw = torch.maximum(x2, a2) - torch.minimum(x1, a1)
    ch = torch.maximum(y2, b2) - torch.minimum(y1, b1)
    return x1, y1, x2, y2, a1, b1, a2, b2, union, iou, cw, ch


def giou(p, t, eps=1e-7):
    *_, union, iou, cw, ch = iou_terms(p, t, eps)
    c = cw * ch
    return (1 - iou + (c - union) / (c + eps)).mean()


def ciou(p, t, eps=1e-7):
    x1, y1, x2, y2, a1, b1, a2, b2, union, iou, cw, ch = iou_terms(p, t, eps)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((x1 + x2 - a1 - a2) ** 2 + (y1 + y2 - b1 - b2) ** 2) / 4
    v = (4 / math.pi ** 2) * (torch.atan((a2 - a1) / (b2 - b1)) - torch.atan((x2 - x1) / (y2 - y1))) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return (1 - iou + rho2 / c2 + alpha * v).mean()


def qfl(logits, labels, scores, beta=2.0):
    s = logits.sigmoid()
    loss = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction='none') * s.pow(beta)
    pos = (labels >= 0) & (labels < logits.shape[1])
    idx = pos.nonzero().squeeze(1)
    lab = labels[idx]
    sc = scores[idx]
    sp = s[idx, lab]
    loss[idx, lab] = F.binary_cross_entropy_with_logits(logits[idx, lab], sc, reduction='none') * (sc - sp).abs().pow(beta)
    return loss.sum(1).mean()


def sigmoid_focal(a, b, alpha=0.25, gamma=2.0):
    # torchvision.ops.sigmoid_focal_loss, written out (torchvision may be absent)
    p = a.sigmoid()
    ce = F.binary_cross_entropy_with_logits(a, b, reduction='none')
    p_t = p * b + (1 - p) * (1 - b)
    loss = ce * ((1 - p_t) ** gamma)
    alpha_t = alpha * b + (1 - alpha) * (1 - b)
    return (alpha_t * loss).mean()


def pairwise_iou(a, b):
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def timed(fn, reps=10, warm=3):
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    times = []
    for r in range(reps + warm):
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        if r >= warm:
            times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2]


def fwd_bwd(loss_fn, x, *rest):
    def run():
        x.grad = None
        loss_fn(x, *rest).backward()
    return run


rows = []
def case(name, n, fn):
    ms = timed(fn)
    rows.append({'case': name, 'n': n, 'torchMs': ms})
    print(f'{name} n={n}: {ms:.3f} ms', flush=True)


for n in [10**4, 10**6, 10**7]:
    t = boxes(n)
    p = boxes(n, t).requires_grad_()
    case('iou_loss{giou}', n, fwd_bwd(giou, p, t))
    case('iou_loss{ciou}', n, fwd_bwd(ciou, p, t))
for n in [10**4, 10**6, 10**7]:
    pr = (torch.rand(n * 4, device=dev) * 6 - 3).requires_grad_()
    tg = torch.rand(n * 4, device=dev) * 6 - 3
    case('smooth_l1 (x4)', n, fwd_bwd(lambda a, b: F.smooth_l1_loss(a, b), pr, tg))
for n in [10**4, 10**5, 10**6]:
    c = 80
    x = (torch.rand(n, c, device=dev) * 12 - 6).requires_grad_()
    tt = (torch.rand(n, c, device=dev) < 0.1).float()
    case('sigmoid_focal (x80)', n, fwd_bwd(sigmoid_focal, x, tt))
    labels = torch.randint(0, c, (n,), device=dev)
    case('cross_entropy c=80', n, fwd_bwd(lambda a, y: F.cross_entropy(a, y, reduction='sum'), x, labels))
    qlabels = torch.where(torch.rand(n, device=dev) < 0.2, torch.randint(0, c, (n,), device=dev), torch.full((n,), c, device=dev))
    scores = torch.rand(n, device=dev)
    case('quality_focal c=80', n, fwd_bwd(qfl, x, qlabels, scores))
for n in [1000, 4000, 10000]:
    a = boxes(n)
    b = boxes(n)
    case('pairwise_iou{iou}', n, lambda: pairwise_iou(a, b))

json.dump({'device': torch.cuda.get_device_name(0), 'torch': torch.__version__, 'rows': rows}, open(f'{out}/torch-compare.json', 'w'), indent=1)
