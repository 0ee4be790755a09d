// BullMQ 5 as a peer in Sentinel's queue-core benchmark (bench/queue_core.py).
//
//   node drain.mjs --redis-url redis://127.0.0.1:PORT/0 --jobs 20000 [--processes 1] [--concurrency 50]
//                  [--chunk 1000] [--mode drain|add] [--pause] [--progress 0,5,10,10,95]
//
// Adds N no-op jobs with Queue.addBulk (in chunks), then starts K worker processes (each one
// Worker with the given concurrency and an empty processor) and times the drain: from the moment
// every worker is connected and told to run until the last job has completed. BullMQ's defaults
// otherwise (completed jobs are kept, as Sentinel keeps results). `--mode add` times addBulk alone.
// With `--pause` it prints {"phase":"loaded"} after adding and waits for a line on stdin, so that
// the caller can read Redis's counters between the two phases. With `--progress P1,P2,…` each job
// reports those percentages with `job.updateProgress` (awaited, one after the other, each an object
// with the step and a message, as Sentinel's run reports them) before it completes: the progress
// scale a Sentinel run reports, written the way a BullMQ user would write it. The last line on stdout is one JSON
// object: {"name","jobs","seconds","jobs_per_s","load_seconds","load_jobs_per_s",...}.
import { fork } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { Queue, Worker } from "bullmq";

const QUEUE = "bench";
const { values: opts } = parseArgs({
  options: {
    "redis-url": { type: "string" },
    jobs: { type: "string", default: "20000" },
    processes: { type: "string", default: "1" },
    concurrency: { type: "string", default: "50" },
    chunk: { type: "string", default: "1000" },
    mode: { type: "string", default: "drain" },
    pause: { type: "boolean", default: false },
    worker: { type: "boolean", default: false },
    progress: { type: "string", default: "" },
  },
});

function connection(url) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379), db: Number(u.pathname.slice(1) || 0) };
}

async function runWorker() {
  // One worker process: connect, say ready, run when told, report completions, close when told.
  const scale = opts.progress ? opts.progress.split(",").map(Number) : [];
  const processor = scale.length
    ? async (job) => {
        for (const pct of scale) {
          await job.updateProgress({ pct, cur: 1, total: 1, step: "No-op", msg: `Reached ${pct}%` });
        }
      }
    : async () => {};
  const worker = new Worker(QUEUE, processor, {
    connection: connection(opts["redis-url"]),
    concurrency: Number(opts.concurrency),
    autorun: false,
  });
  let completed = 0;
  let reported = 0;
  worker.on("completed", () => {
    completed += 1;
  });
  const ticker = setInterval(() => {
    if (completed !== reported) {
      reported = completed;
      process.send({ completed });
    }
  }, 5);
  await worker.waitUntilReady();
  process.send({ ready: true });
  process.on("message", async (msg) => {
    if (msg.go) {
      worker.run();
    } else if (msg.stop) {
      clearInterval(ticker);
      await worker.close();
      process.exit(0);
    }
  });
}

async function waitForLine() {
  const lines = createInterface({ input: process.stdin });
  await once(lines, "line");
  lines.close();
}

async function main() {
  const url = opts["redis-url"];
  const jobs = Number(opts.jobs);
  const processes = Number(opts.processes);
  const chunk = Number(opts.chunk);
  const queue = new Queue(QUEUE, { connection: connection(url) });
  await queue.waitUntilReady();

  const loadStart = performance.now();
  for (let i = 0; i < jobs; i += chunk) {
    const n = Math.min(chunk, jobs - i);
    await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: "noop", data: { i: i + k } })));
  }
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const out = {
    name: opts.mode === "add" ? "bullmq-addBulk" : `bullmq-node x${processes}${opts.progress ? " +progress" : ""}`,
    progress: opts.progress,
    jobs,
    processes,
    concurrency: Number(opts.concurrency),
    load_seconds: loadSeconds,
    load_jobs_per_s: jobs / loadSeconds,
    bullmq: (await import("bullmq/package.json", { with: { type: "json" } })).default.version,
  };
  if (opts.mode === "add") {
    Object.assign(out, { seconds: loadSeconds, jobs_per_s: jobs / loadSeconds });
    console.log(JSON.stringify(out));
    await queue.close();
    return;
  }
  if (opts.pause) {
    console.log(JSON.stringify({ phase: "loaded" }));
    await waitForLine();
  }

  const children = Array.from({ length: processes }, () =>
    fork(new URL(import.meta.url).pathname, [...process.argv.slice(2), "--worker"], { stdio: "inherit" }),
  );
  const counts = new Array(processes).fill(0);
  let ready = 0;
  let start = 0;
  const done = new Promise((resolve) => {
    children.forEach((child, n) => {
      child.on("message", (msg) => {
        if (msg.ready) {
          ready += 1;
          if (ready === processes) {
            start = performance.now();
            for (const c of children) c.send({ go: true });
          }
        } else if (msg.completed !== undefined) {
          counts[n] = msg.completed;
          if (counts.reduce((a, b) => a + b, 0) >= jobs) resolve(performance.now());
        }
      });
    });
  });
  const end = await done;
  const seconds = (end - start) / 1000;
  for (const c of children) c.send({ stop: true });
  await Promise.all(children.map((c) => once(c, "exit")));
  await queue.close();
  Object.assign(out, { seconds, jobs_per_s: jobs / seconds });
  console.log(JSON.stringify(out));
}

if (opts.worker) {
  await runWorker();
} else {
  await main();
}
