import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import crc32c from 'crc-32/crc32c.js';
import protobuf from 'protobufjs/minimal.js';

/**
 * A TensorBoard event file (`events.out.tfevents.*`), written in TensorFlow's own format so that
 * `tensorboard --logdir DIR` reads it: a sequence of TFRecords (uint64 length, masked CRC-32C of the length,
 * the bytes, masked CRC-32C of the bytes), each holding one serialized `tensorflow.Event` protobuf. The first
 * event carries `file_version: "brain.Event:2"`; every other one a `Summary` of scalar values
 * (`Summary.Value.simple_value`). Field numbers are those of tensorflow/core/util/event.proto and
 * tensorflow/core/framework/summary.proto.
 */

/** Options of an {@link EventFileWriter}. */
export interface EventFileWriterOptions {
  /** Wall-clock source in milliseconds since the epoch. Default: `Date.now`. */
  now?: () => number;
  /** Host name written into the file name, as TensorFlow does. Default: `os.hostname()`. */
  host?: string;
}

const FILE_VERSION = 'brain.Event:2';
const CRC_MASK_DELTA = 0xa282ead8;

/** TFRecord's masked CRC-32C (the mask keeps a CRC of data that holds CRCs from looking like one). */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c.buf(bytes) >>> 0;
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + CRC_MASK_DELTA) >>> 0;
}

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** A serialized `tensorflow.Event` (wall_time = 1, step = 2, file_version = 3, summary = 5). */
export function encodeEvent(event: { wallTime: number; step?: number; fileVersion?: string; scalars?: Record<string, number> }): Uint8Array {
  const w = protobuf.Writer.create();
  w.uint32((1 << 3) | 1).double(event.wallTime);
  if (event.step !== undefined) w.uint32((2 << 3) | 0).int64(event.step);
  if (event.fileVersion !== undefined) w.uint32((3 << 3) | 2).string(event.fileVersion);
  if (event.scalars) {
    w.uint32((5 << 3) | 2).fork(); // Summary
    for (const [tag, value] of Object.entries(event.scalars)) {
      w.uint32((1 << 3) | 2).fork(); // Summary.Value
      w.uint32((1 << 3) | 2).string(tag);
      w.uint32((2 << 3) | 5).float(value);
      w.ldelim();
    }
    w.ldelim();
  }
  return w.finish();
}

/**
 * Appends scalar summaries to one new event file in `dir`. The file is created on the first write (a run that
 * fails before its first step leaves none); writes are synchronous and small (one record per call).
 */
export class EventFileWriter {
  readonly file: string;
  private fd: number | null = null;
  private closed = false;
  private readonly now: () => number;

  constructor(
    private readonly dir: string,
    options: EventFileWriterOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    const t = this.now();
    this.file = path.join(dir, `events.out.tfevents.${Math.floor(t / 1000)}.${options.host ?? hostname()}.${process.pid}`);
  }

  /** Writes `scalars` (tag → value) at `step`. Non-finite values are kept: TensorBoard shows NaN and Inf. */
  addScalars(step: number, scalars: Record<string, number>): void {
    if (Object.keys(scalars).length === 0) return;
    this.write(encodeEvent({ wallTime: this.now() / 1000, step, scalars }));
  }

  /** Flushes to disk and closes the file; later calls do nothing. */
  close(): void {
    this.closed = true;
    if (this.fd === null) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = null;
  }

  private write(event: Uint8Array): void {
    if (this.closed) return;
    if (this.fd === null) {
      mkdirSync(this.dir, { recursive: true });
      this.fd = openSync(this.file, 'a');
      writeSync(this.fd, tfRecord(encodeEvent({ wallTime: this.now() / 1000, fileVersion: FILE_VERSION })));
    }
    writeSync(this.fd, tfRecord(event));
  }
}
