// The CLI's usage texts: `detloss --help` and each command's `--help`, and the exit statuses they share.

export const EXIT = `Exit status: 0 when everything passed, 1 on a failure, 2 when the machine lacks
something (Chromium, puppeteer-core, webgpu, a WebGPU adapter, a build) or the
arguments are wrong.`;

export const MAIN_USAGE = `usage: detloss parity [files or folders...] [--node] [--ops op1,op2]
       detloss bench [--full] [--node] [--ops op1,op2] [--n 1e4,1e5] [--reps 5] [--out dir | --save]
       detloss bench --probe-plans [--full] [--ops op1,op2] [--reps 3] [--out dir]
       detloss bench --node --tuned [--n 1e6] [--budget ms] [--reps 7] [--out dir | --save]
       detloss tune --node [--ops op1,op2{variant}] [--sizes 1e6] [--budget ms] [--reps 5] [--out plans.json] [--plans old.json]
       detloss <command> --help

  parity  checks fixture cases on the GPU and on the float64 CPU reference
  bench   times detloss against TF.js and a copy kernel (needs a clone of the repository)
  tune    times launch plans on this machine's GPU and writes the fastest as a plan record

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
       detloss bench --node --tuned [--n 1e6] [--budget ms] [--reps 7] [--out dir | --save]

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
  --tuned   instead of the contenders, the default launch plan against tuned
            plans on Node's WebGPU (needs --node): a second context on the
            same device runs tune() for iou_loss{ciou}, smooth_l1,
            sigmoid_focal (N logits) and cross_entropy (N rows, c = 80) at
            --n (default 1e6), printing each measurement and its choices; then
            both contexts take turns on each case's resident calls (default,
            tuned, default, ...), 2 warm-up rounds and --reps timed ones
            (default 7), GPU time from timestamps and wall time. Prints and
            writes node-<vendor>-<device>-tuned.json, .md: per case both
            medians, default / tuned, and the tuned plan each call ran
  --budget  with --tuned, the most milliseconds tuning may spend (default
            120000; it ends sooner when the search is done)
  --help    this text

${EXIT}`;

export const TUNE_USAGE = `usage: detloss tune --node [--ops op1,op2{variant}] [--sizes 1e6] [--budget ms] [--reps 5]
                    [--out plans.json] [--plans old.json]

  Times candidate launch plans (threads, workgroup size, vector width, the
  reduction tree, who computes a row) for each op family and size class named,
  on Node's WebGPU, within a time budget, and keeps the fastest of each
  (Detloss.tune()). Prints a line per measurement on stderr, then a table of
  the choices (each against the default plan, timed in the same run) and the
  time tuning took, and writes the plan record as JSON: load it with
  createDetloss({ plans: JSON.parse(text) }). A record holds for this adapter
  and this version of detloss; others ignore it with a warning.
  --node    required: tuning runs on Node's WebGPU (the webgpu package, Dawn).
            In a browser, call dl.tune() and keep the record it returns
  --ops     the ops to tune, comma-separated; a variant as iou_loss:ciou or
            iou_loss{ciou}; row ops at their default row length (c = 80).
            Ops of one family share a plan (smooth_l1 and l1: 'regression').
            Default: smooth_l1, iou_loss{ciou}, sigmoid_focal, cross_entropy
  --sizes   sizes to tune at, in output elements (rows for a row op); each
            picks its size class, the nearest power of ten (default 1e6)
  --budget  most milliseconds to spend (default 20000): a measurement starts
            only where it is expected to end in time, and tuning ends sooner
            when the search is done. The default plan's pipelines are compiled
            first, outside it
  --reps    timed calls per candidate, the fastest counts (default 5)
  --out     where the record goes (default plans.json in this folder)
  --plans   an earlier record to start from: its plans are loaded, and the
            new record holds them with this run's (a family and size tuned
            again is replaced)
  --help    this text

Exit status: 0 when every family named got a plan, 1 when one got no
measurement within the budget (the record is written all the same) or on a
failure, 2 when the machine lacks something (webgpu, a WebGPU adapter) or the
arguments are wrong (a --plans file that is not a plan record included).`;
