import { Worker } from 'node:worker_threads';

/**
 * How many bytes may wait for the hashing worker, across every upload of the process. A chunk
 * that would go past it is not shadowed: that upload's shadow stops where it is (its state still
 * covers the bytes it was given, a checkpoint short of the upload's end), so the worker never
 * slows a request and never holds more than this in memory.
 */
export const SHADOW_BUDGET_BYTES = 32 * 1024 * 1024;

/**
 * Bytes a shadow gathers before it posts them to the worker: request bodies arrive in 16–64 KiB
 * pieces, and a message (and a copy) per piece costs more than batching them.
 */
export const SHADOW_BATCH_BYTES = 1024 * 1024;

/** How long `save` waits for the worker before giving up on the checkpoint. */
export const SHADOW_SAVE_TIMEOUT_MS = 10_000;

/** A saved shadow state and how many bytes of the upload it covers. */
export interface ShadowState {
  state: Buffer;
  bytes: number;
}

/** One upload's shadow hash in the worker. */
export interface ShadowHandle {
  /**
   * Hashes a copy of `chunk` in the worker, if the budget allows; else the shadow stops for good
   * (later chunks are not hashed: it would miss bytes).
   */
  update(chunk: Uint8Array): void;
  /** The saved state of every byte the shadow was given; null if it was closed or its worker is gone. */
  save(): Promise<ShadowState | null>;
  close(): void;
}

type ToWorker =
  | { t: 'data'; h: number; bytes: Uint8Array }
  | { t: 'save'; h: number; r: number }
  | { t: 'close'; h: number };
type FromWorker = { t: 'consumed'; n: number } | { t: 'saved'; r: number; state: Uint8Array | null };

/**
 * The worker's program. Each shadow is a saved 116-byte state, loaded into one shared hash-wasm
 * instance for each chunk, so a thousand open uploads cost a thousand small states, not a
 * thousand WebAssembly memories. Messages are handled strictly in order.
 */
function workerSource(hashWasmPath: string): string {
  return `
const { parentPort } = require('node:worker_threads');
const { createSHA256 } = require(${JSON.stringify(hashWasmPath)});
const ready = createSHA256();
const states = new Map();
let queue = Promise.resolve();
parentPort.on('message', (m) => {
  queue = queue.then(async () => {
    const h = await ready;
    if (m.t === 'data') {
      const s = states.get(m.h);
      if (s === undefined) h.init(); else h.load(s);
      h.update(m.bytes);
      states.set(m.h, h.save());
      parentPort.postMessage({ t: 'consumed', n: m.bytes.byteLength });
    } else if (m.t === 'save') {
      let s = states.get(m.h);
      if (s === undefined) { h.init(); s = h.save(); }
      parentPort.postMessage({ t: 'saved', r: m.r, state: s });
    } else if (m.t === 'close') {
      states.delete(m.h);
    }
  });
});`;
}

/**
 * A worker thread that hashes copies of upload bytes with hash-wasm, whose state can be saved,
 * while the request hashes them with node:crypto, whose state cannot. At the end of an append
 * the shadow's state is the checkpoint recorded with the session, so a chunk or the final PUT
 * that lands on another process resumes from it instead of re-reading every stored byte.
 * Started on first use; a worker that dies fails the checkpoints in flight (null) and is
 * started again for the next upload.
 */
export class HashShadow {
  private worker: Worker | undefined;
  private pendingBytes = 0;
  private nextHandle = 1;
  private nextRequest = 1;
  private readonly saves = new Map<number, (state: Buffer | null) => void>();
  private closed = false;

  private readonly batchBytes: number;

  constructor(
    private readonly budgetBytes = SHADOW_BUDGET_BYTES,
    batchBytes = SHADOW_BATCH_BYTES,
  ) {
    this.batchBytes = Math.max(1, Math.min(batchBytes, budgetBytes));
  }

  /** A new shadow of an upload's bytes from its first byte. */
  open(): ShadowHandle {
    const h = this.nextHandle++;
    // The worker this shadow's state lives in: one restarted since has lost it.
    const worker = this.ensureWorker();
    let alive = worker !== undefined;
    let stopped = false;
    let given = 0;
    // Bytes gathered for the next message (a copy: only the pieces' bytes, not the pooled buffers behind them).
    let staged: Uint8Array | undefined;
    let stagedBytes = 0;
    const current = (): boolean => alive && worker === this.worker;
    const giveUp = (): void => {
      if (!alive) return;
      alive = false;
      if (worker === this.worker) worker?.postMessage({ t: 'close', h } satisfies ToWorker);
    };
    /** Posts the gathered bytes, if the budget allows; else the shadow stops for good. */
    const post = (): void => {
      if (!staged || stagedBytes === 0) return;
      const bytes = stagedBytes === staged.byteLength ? staged : staged.subarray(0, stagedBytes);
      staged = undefined;
      stagedBytes = 0;
      if (stopped || this.pendingBytes + bytes.byteLength > this.budgetBytes) {
        stopped = true;
        return;
      }
      this.pendingBytes += bytes.byteLength;
      given += bytes.byteLength;
      worker!.postMessage({ t: 'data', h, bytes } satisfies ToWorker, [bytes.buffer as ArrayBuffer]);
    };
    return {
      update: (chunk) => {
        if (!current()) return giveUp();
        for (let offset = 0; offset < chunk.byteLength && !stopped; ) {
          staged ??= new Uint8Array(this.batchBytes);
          const n = Math.min(chunk.byteLength - offset, staged.byteLength - stagedBytes);
          staged.set(chunk.subarray(offset, offset + n), stagedBytes);
          stagedBytes += n;
          offset += n;
          if (stagedBytes === staged.byteLength) post();
        }
      },
      save: () => {
        if (!current()) return Promise.resolve(null);
        post();
        const r = this.nextRequest++;
        const bytes = given;
        return new Promise<ShadowState | null>((resolve) => {
          const finish = (state: Buffer | null): void => {
            clearTimeout(timer);
            this.saves.delete(r);
            resolve(state ? { state, bytes } : null);
          };
          const timer = setTimeout(() => finish(null), SHADOW_SAVE_TIMEOUT_MS);
          timer.unref();
          this.saves.set(r, finish);
          worker!.postMessage({ t: 'save', h, r } satisfies ToWorker);
        });
      },
      close: () => {
        staged = undefined;
        giveUp();
      },
    };
  }

  /** Stops the worker; later shadows give up at once. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    this.failSaves();
    await worker?.terminate();
  }

  private ensureWorker(): Worker | undefined {
    if (this.closed) return undefined;
    if (this.worker) return this.worker;
    const worker = new Worker(workerSource(require.resolve('hash-wasm')), { eval: true });
    worker.unref();
    worker.on('message', (m: FromWorker) => {
      if (m.t === 'consumed') this.pendingBytes -= m.n;
      else this.saves.get(m.r)?.(m.state ? Buffer.from(m.state) : null);
    });
    const lost = (): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.pendingBytes = 0;
      this.failSaves();
    };
    worker.on('error', lost);
    worker.on('exit', lost);
    this.worker = worker;
    return worker;
  }

  private failSaves(): void {
    for (const finish of [...this.saves.values()]) finish(null);
  }
}
