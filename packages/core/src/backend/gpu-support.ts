/**
 * Which NVIDIA GPUs tfjs-node-gpu 4.22 can drive, by compute capability.
 *
 * tfjs-node-gpu 4.22 bundles libtensorflow 2.9.1, built for CUDA 11.2 / cuDNN 8.1 with
 * TF_CUDA_COMPUTE_CAPABILITIES = sm_35,sm_50,sm_60,sm_70,sm_75,compute_80 (TensorFlow's release build scripts).
 * TensorFlow's cuda_configure.bzl turns `compute_80` into both `--cuda-gpu-arch=sm_80` (SASS) and
 * `--cuda-include-ptx=sm_80` (PTX), so 8.x runs machine code; SASS is binary-compatible within a major
 * version (minor >= the built one), PTX is JIT-compiled by the driver for any newer GPU. Sources and the
 * reasoning: docs/backends.md, "GPU support".
 */

/** What tfjs-node-gpu 4.22 does on a GPU of a given compute capability. */
export type TfjsNodeGpuVerdict = 'native' | 'ptx-jit' | 'unsupported';

/** Architectures in libtensorflow 2.9.1's GPU kernels: SASS for each, PTX for the last. */
export const TFJS_NODE_GPU_SASS: readonly string[] = ['3.5', '5.0', '6.0', '7.0', '7.5', '8.0'];
/** The one architecture whose PTX is embedded (forward-compatible through a driver JIT). */
export const TFJS_NODE_GPU_PTX = '8.0';
/** First compute-capability major that CUDA 11.2 + cuDNN 8.1 cannot drive at all (Blackwell). */
export const FIRST_UNSUPPORTED_MAJOR = 10;

/** A compute capability as [major, minor]; null when the text is not "M.m". */
export function parseComputeCapability(text: string | null | undefined): [number, number] | null {
  const m = /^\s*(\d+)\.(\d+)\s*$/.exec(text ?? '');
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** Verdict for one compute capability ("8.0", "9.0", ...); null capability (unknown) gives null. */
export function tfjsNodeGpuVerdict(computeCapability: string | null): TfjsNodeGpuVerdict | null {
  const cc = parseComputeCapability(computeCapability);
  if (!cc) return null;
  const [major, minor] = cc;
  if (major >= FIRST_UNSUPPORTED_MAJOR) return 'unsupported';
  // SASS runs on a GPU of the same major and an equal or higher minor
  const sass = TFJS_NODE_GPU_SASS.map(parseComputeCapability).some((b) => b !== null && b[0] === major && b[1] <= minor);
  if (sass) return 'native';
  const ptx = parseComputeCapability(TFJS_NODE_GPU_PTX)!;
  if (major > ptx[0] || (major === ptx[0] && minor >= ptx[1])) return 'ptx-jit';
  return 'unsupported';
}

/** One sentence for the verdict, for logs and `dptrain doctor`. */
export function explainVerdict(verdict: TfjsNodeGpuVerdict | null, computeCapability: string | null): string {
  switch (verdict) {
    case 'native':
      return `compute capability ${computeCapability}: tfjs-node-gpu 4.22 has machine code (SASS) for it`;
    case 'ptx-jit':
      return (
        `compute capability ${computeCapability}: tfjs-node-gpu 4.22 has no machine code for it; the driver JIT-compiles ` +
        `TensorFlow's compute_80 PTX on first use, which can take 30 minutes or more (kept in the CUDA cache afterwards, ` +
        `raise CUDA_CACHE_MAXSIZE to 4294967296 so it fits)`
      );
    case 'unsupported':
      return `compute capability ${computeCapability}: tfjs-node-gpu 4.22 (CUDA 11.2, cuDNN 8.1) cannot run on it`;
    default:
      return 'compute capability unknown: the driver did not report it and the GPU name is not in the table';
  }
}

/**
 * Compute capability by GPU name, for drivers older than 510 (whose nvidia-smi lacks `compute_cap`). Patterns are
 * matched in order against the name nvidia-smi prints; the first match wins. Source: NVIDIA's CUDA GPUs list.
 */
export const COMPUTE_CAPABILITY_BY_NAME: readonly (readonly [RegExp, string])[] = [
  [/\bB200\b|\bB100\b|\bGB200\b/i, '10.0'],
  [/RTX PRO 6000 Blackwell|RTX 50\d0/i, '12.0'],
  [/\bH100\b|\bH200\b|\bH800\b|\bGH200\b/i, '9.0'],
  [/\bL4\b|\bL40S?\b|RTX 40\d0|RTX 6000 Ada|RTX [2-5]000 Ada/i, '8.9'],
  [/\bA100\b|\bA800\b|\bA30\b/i, '8.0'],
  [/\bA10G?\b|\bA40\b|\bA16\b|\bA2\b|RTX A\d000|RTX 30\d0/i, '8.6'],
  [/\bT4\b|RTX 20\d0|Quadro RTX|TITAN RTX|GTX 16\d0/i, '7.5'],
  [/\bV100\b|TITAN V\b/i, '7.0'],
  [/\bP100\b/i, '6.0'],
  [/\bP40\b|\bP4\b|GTX 10\d0|TITAN Xp|TITAN X \(Pascal\)/i, '6.1'],
  [/\bM60\b|\bM40\b|GTX 9\d0|TITAN X\b/i, '5.2'],
  [/\bK80\b/i, '3.7'],
  [/\bK40\b|\bK20X?\b/i, '3.5'],
];

/** Compute capability of a GPU from its name alone; null when the name is not in the table. */
export function computeCapabilityByName(name: string): string | null {
  for (const [re, cc] of COMPUTE_CAPABILITY_BY_NAME) if (re.test(name)) return cc;
  return null;
}
