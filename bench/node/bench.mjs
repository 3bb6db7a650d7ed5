// BullMQ's side of bench/compare.py: the same worker and client protocol as the Python
// systems (apps/*.py, compare_client.py), on BullMQ's defaults.
//
//   node bench.mjs worker --url redis://127.0.0.1:PORT/0 --concurrency 5
//   node bench.mjs client --url ... --mode single|bulk|fill|paced --jobs N [--interval-ms 2]
//
// The job: INCR compare:done, and for a job with its enqueue time `t` (seconds, float) in
// the data, RPUSH compare:lat <start - t in ms>. Client modes print JSON lines as
// compare_client.py does (ready / warm / done) and wait for "go" on stdin between them.
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

const QUEUE = "compare";
const DONE_KEY = "compare:done";
const LATENCY_KEY = "compare:lat";
const FILL_CHUNK = 1000;
const WARMUP_ENQUEUES = 200;
const LATENCY_WARMUP_JOBS = 20;

function parseArgs(argv) {
  const [command, ...rest] = argv;
  const opts = { command };
  for (let i = 0; i < rest.length; i += 2) {
    opts[rest[i].replace(/^--/, "").replace(/-/g, "_")] = rest[i + 1];
  }
  return opts;
}

const nowS = () => (performance.timeOrigin + performance.now()) / 1000;
const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const cpuS = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function waitForGo() {
  const { value, done } = await stdinLines.next();
  if (done || value.trim() !== "go") process.exit(2);
}

function connection(url, worker) {
  // BullMQ requires maxRetriesPerRequest: null on a worker's connection.
  return new IORedis(url, worker ? { maxRetriesPerRequest: null } : {});
}

async function runWorker(opts) {
  const counter = connection(opts.url, false);
  const worker = new Worker(
    QUEUE,
    async (job) => {
      const t = job.data.t;
      const lat = typeof t === "number" ? (nowS() - t) * 1000 : null;
      await counter.incr(DONE_KEY);
      if (lat !== null) await counter.rpush(LATENCY_KEY, lat.toFixed(4));
    },
    { connection: connection(opts.url, true), concurrency: Number(opts.concurrency) },
  );
  const stop = async () => {
    await worker.close();
    await counter.quit();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

async function runClient(opts) {
  const queue = new Queue(QUEUE, { connection: connection(opts.url, false) });
  await queue.waitUntilReady();
  const jobs = Number(opts.jobs);
  const one = (data) => queue.add("noop", data);
  if (opts.mode === "fill") {
    for (let start = 0; start < jobs; start += FILL_CHUNK) {
      const end = Math.min(jobs, start + FILL_CHUNK);
      const chunk = [];
      for (let i = start; i < end; i++) chunk.push({ name: "noop", data: { i } });
      await queue.addBulk(chunk);
    }
    emit("done", { jobs });
  } else if (opts.mode === "paced") {
    emit("ready");
    await waitForGo();
    for (let i = 0; i < LATENCY_WARMUP_JOBS; i++) await one({ i: -1 - i });
    emit("warm");
    await waitForGo();
    const interval = Number(opts.interval_ms ?? 2);
    const first = performance.now();
    for (let i = 0; i < jobs; i++) {
      const wait = first + i * interval - performance.now();
      if (wait > 0) await sleep(wait);
      await one({ i, t: nowS() });
    }
    emit("done", { seconds: (performance.now() - first) / 1000, jobs });
  } else {
    for (let i = 0; i < WARMUP_ENQUEUES; i++) await one({ i: -1 - i });
    const payloads = Array.from({ length: jobs }, (_, i) => ({ i }));
    emit("ready");
    await waitForGo();
    const cpu = cpuS();
    const started = performance.now();
    if (opts.mode === "bulk") {
      await queue.addBulk(payloads.map((data) => ({ name: "noop", data })));
    } else {
      for (const data of payloads) await one(data);
    }
    const seconds = (performance.now() - started) / 1000;
    emit("done", { seconds, cpu_s: cpuS() - cpu, jobs });
  }
  await queue.close();
  process.exit(0);
}

const opts = parseArgs(process.argv.slice(2));
if (opts.command === "worker") await runWorker(opts);
else if (opts.command === "client") await runClient(opts);
else {
  process.stderr.write("usage: node bench.mjs worker|client --url URL ...\n");
  process.exit(2);
}
