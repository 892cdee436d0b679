// The CLI's usage texts: `detloss --help` and each command's `--help`, and the exit statuses they share.

export const EXIT = `Exit status: 0 when everything passed, 1 on a failure, 2 when the machine lacks
something (Chromium, puppeteer-core, webgpu, a WebGPU adapter, a build) or the
arguments are wrong.`;

export const MAIN_USAGE = `usage: detloss parity [files or folders...] [--node] [--ops op1,op2]
       detloss bench [--full] [--node] [--ops op1,op2] [--n 1e4,1e5] [--reps 5] [--out dir | --save]
       detloss bench --probe-plans [--full] [--ops op1,op2] [--reps 3] [--out dir]
       detloss <command> --help

  parity  checks fixture cases on the GPU and on the float64 CPU reference
  bench   times detloss against TF.js and a copy kernel (needs a clone of the repository)

${EXIT}`;

export const PARITY_USAGE = `usage: detloss parity [files or folders of fixtures...] [--node] [--ops op1,op2]

  Runs every fixture case on the GPU and on the CPU reference, compares both
  with the case's tolerance (each element, and each array as a whole by its L2
  error), prints one line per case and closes with "N passed, M failed". With no files or folders, the fixtures shipped with the
  package (a subset of the repository's test/fixtures).
  --node    on Node's WebGPU (the webgpu package, Dawn) instead of headless
            Chromium (the puppeteer-core package and a Chromium)
  --ops     only these ops; an op named here without a GPU kernel fails
  --help    this text

${EXIT}`;

export const BENCH_USAGE = `usage: detloss bench [--full] [--node] [--ops op1,op2] [--n 1e4,1e5] [--reps 5] [--out dir | --save] [--verbose]
       detloss bench --probe-plans [--full] [--ops op1,op2] [--reps 3] [--out dir]

  Times detloss (GPU, GPU-resident, CPU reference) against TF.js (webgpu, cpu)
  and a copy kernel of the same bytes, interleaved, median of --reps runs after
  warm-up, in headless Chromium; prints a line per case and a table naming the
  adapter. Runs from a clone of the repository (npm ci && npm run bench).
  In the table, ×N is the other's median time divided by detloss's: detloss
  takes 1/N of the time. Columns no case has a number in are left out.
  (default) the quick preset: iou_loss{ciou}, smooth_l1, sigmoid_focal at
            N = 1e4 and 1e5, cross_entropy c=80 at 1e4 rows
  --full    the long set: eight ops at N = 1e4 to 1e6 and pairwise IoU (about
            35 minutes on a software adapter)
  --ops     only these ops (every variant of each), at the preset's sizes
  --n       these sizes instead of the preset's
  --reps    timed runs of each contender (default 5; with --full 7)
  --node    on Node's WebGPU (the webgpu package, Dawn), no browser: adds 10
            resident calls with one wait, GPU time from timestamps and the
            launch plan; --full goes to N = 1e7
  --out     where the results go (default bench/results/local, not committed):
            latest.json, .svg, .md, or with --node node-<vendor>-<device>.json, .md
  --save    write them to bench/results instead, once the run is complete
            (with --node a committed file is never overwritten: the new one
            gets a timestamp suffix)
  --verbose every warm-up and timed run, and the launch plan
  --probe-plans
            instead of the contenders, detloss's launch plans against each
            other on Node's WebGPU (software; hardware at 64k to 4M threads;
            a thread, subgroup or workgroup per row; scalar kernels beside
            vec4), GPU time from timestamps beside the copy kernel over the
            same bytes, one line per plan; writes plan-probe.json to --out.
            Sizes fill a large GPU with --full, a tenth of that without
            (about 1e7 elements a case); --reps defaults to 3 (--full 7)
  --help    this text

${EXIT}`;
