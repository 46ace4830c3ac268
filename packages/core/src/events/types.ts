/**
 * Events that a run emits, in process or across the cluster. The dashboard is a pure reducer over
 * these; the plain logger, pino JSON log and Prometheus metrics all consume the same stream.
 * Every event carries `time` (ms since epoch, from the run's injectable clock).
 */
export type PhaseName = 'head' | 'fine_tune';
export type WorkerState = 'joining' | 'idle' | 'computing' | 'lost';
export type ProgressTask = 'validate' | 'extract_features' | 'evaluate' | 'predict' | 'decode';

export interface WorkerInfo {
  /** Stable id the coordinator gives the worker (e.g. "w1"). */
  id: string;
  /** Host name the worker reported. */
  host: string;
  /** Backend in use on the worker (e.g. "wasm", "tensorflow", "native"). */
  backend: string;
  /** Device description (e.g. "cpu x1", "GPU 0: NVIDIA H100"). */
  device: string;
  /** Largest per-step batch the worker said it can take. */
  batchCapacity: number;
  /** tensorflow-gpu workers: the GPU and tfjs-node-gpu 4.22's verdict on it. Default: absent. */
  gpu?: { name: string; computeCapability: string | null; tfjsNodeGpu: 'native' | 'ptx-jit' | 'unsupported' | null };
  /** Precision the worker computes in ('fp32', 'bf16'); absent from workers that do not say. */
  precision?: string;
  /** An agent (`dptrain worker --nproc-per-node`): how many local workers stand behind this one peer. Default: absent (one). */
  localWorkers?: number;
}

/** One local worker of an agent in a step: its id on the agent and the samples and compute time of its share. */
export interface LocalWorkerStat {
  id: string;
  samples: number;
  computeMs: number;
}

export interface StepWorkerStat {
  id: string;
  samples: number;
  computeMs: number;
  bytesIn: number;
  bytesOut: number;
  /** An agent: how its samples were shared among its local workers in this step. Absent for a plain worker. */
  local?: LocalWorkerStat[];
}

export type RunEvent =
  | {
      type: 'run_started';
      time: number;
      runId: string;
      runDir: string;
      backend: string;
      device: string;
      workers: number;
      trainSamples: number;
      valSamples: number;
      testSamples: number;
      classes: string[];
      precision?: string;
    }
  | { type: 'phase_started'; time: number; phase: PhaseName; epochs: number; stepsPerEpoch: number; learningRate: number; trainableParams: number }
  | { type: 'epoch_started'; time: number; phase: PhaseName; epoch: number }
  | {
      type: 'step_completed';
      time: number;
      phase: PhaseName;
      epoch: number;
      step: number;
      stepInEpoch: number;
      stepsPerEpoch: number;
      loss: number;
      samples: number;
      stepMs: number;
      learningRate: number;
      workers: StepWorkerStat[];
      straggler?: string;
    }
  | {
      type: 'epoch_completed';
      time: number;
      phase: PhaseName;
      epoch: number;
      trainLoss: number;
      trainAccuracy: number;
      valLoss: number;
      valAccuracy: number;
      learningRate: number;
      epochMs: number;
    }
  | { type: 'worker_joined'; time: number; worker: WorkerInfo }
  | { type: 'worker_lost'; time: number; id: string; reason: string }
  | { type: 'worker_heartbeat'; time: number; id: string; bytesIn: number; bytesOut: number }
  | { type: 'waiting_for_workers'; time: number; connected: number; required: number }
  | { type: 'checkpoint_written'; time: number; path: string; step: number }
  | { type: 'early_stopping'; time: number; wait: number; patience: number; stopped: boolean }
  | { type: 'lr_changed'; time: number; learningRate: number; reason: string }
  | { type: 'progress'; time: number; task: ProgressTask; done: number; total: number }
  /** `count` > 1: a summary of that many rejections of `code` from `address` that were not reported one by one. */
  | { type: 'frame_rejected'; time: number; workerId?: string; code: string; reason: string; address?: string; count?: number }
  | { type: 'run_completed'; time: number; valAccuracy: number; valLoss: number; steps: number; wallMs: number; submissionPath?: string }
  | { type: 'log'; time: number; level: 'debug' | 'info' | 'warn' | 'error'; message: string };

export type RunEventType = RunEvent['type'];

/** Anything that wants the event stream. */
export type RunEventListener = (event: RunEvent) => void;
