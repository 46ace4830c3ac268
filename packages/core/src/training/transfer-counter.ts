/** Bytes that cross between host memory and the backend's device memory, counted where the replica makes them cross. */
export class TransferCounter {
  /** Host → device: tensors made from host arrays (pixels, features, labels, masks). */
  uploadBytes = 0;
  /** Device → host: values read back (features, gradients, loss, predictions). */
  downloadBytes = 0;
  /** Reads of values back to the host (each one waits for the device). */
  downloads = 0;

  up(bytes: number): void {
    this.uploadBytes += bytes;
  }

  down(bytes: number): void {
    this.downloadBytes += bytes;
    this.downloads++;
  }

  /** The counts so far, then zero. */
  take(): { uploadBytes: number; downloadBytes: number; downloads: number } {
    const r = { uploadBytes: this.uploadBytes, downloadBytes: this.downloadBytes, downloads: this.downloads };
    this.uploadBytes = 0;
    this.downloadBytes = 0;
    this.downloads = 0;
    return r;
  }
}
