/** One image of the data set. */
export interface Sample {
  /** 'labelled' (train.csv / class folders) or 'test' (test.csv). */
  split: 'labelled' | 'test';
  /** Position in its split's list, identical on every machine that reads the same data. */
  index: number;
  /** `image_name` as in the CSV (or `class/file.jpg` for the folder layout). */
  name: string;
  /** Absolute path of the image file. */
  path: string;
  /** Class index, or -1 for unlabelled test images. */
  label: number;
  /** 1-based line of the CSV that named it (header is line 1); undefined for the folder layout. */
  line?: number;
}

/** A data set as read from disk (no pixels decoded yet). */
export interface Dataset {
  layout: 'competition' | 'folders';
  /** The data directory. */
  root: string;
  /** Class names, index = label. */
  classNames: string[];
  /** Labelled samples, in file order. */
  labelled: Sample[];
  /** Unlabelled test samples (test.csv), in file order; empty if there is none. */
  test: Sample[];
  /** Hash of the sample lists (names + labels), so a worker can prove it reads the same data. */
  hash: string;
  /**
   * Problems found while reading the CSVs (malformed rows, bad or out-of-range labels, duplicated names).
   * The rows at fault are not in `labelled`/`test`; `validateDataset` reports them with the image checks.
   * Absent or empty when the CSVs were clean.
   */
  readCulprits?: Culprit[];
  /** Folder every image must stay inside once symlinks are resolved (competition: SceneImages/). Default: none (the folder layout, whose class folders may be links). */
  imagesRoot?: string;
}

/** One bad input found by validation. */
export interface Culprit {
  /** File (image path or CSV path) at fault. */
  file: string;
  /** CSV line, when the culprit came from a CSV row. */
  line?: number;
  /**
   * Stable reason code: 'missing' | 'corrupt' | 'not_image' (also a FIFO, device or directory) | 'outside_root' (a symlink
   * escaping the image folder) | 'too_large' | 'bad_label' | 'label_out_of_range' | 'malformed_row' | 'duplicate'.
   */
  reason: string;
  /** Human-readable explanation. */
  message: string;
}
