/**
 * Parent-death detection for local workers: the parent (`dptrain single`, the demo) gives the worker a pipe as its
 * stdin and never writes to it. The kernel closes the pipe when the parent dies, however it dies (`kill -9`
 * included), so end-of-file on stdin means the parent is gone.
 */
export function onParentGone(onGone: () => void, stdin: NodeJS.ReadableStream = process.stdin): () => void {
  let fired = false;
  const fire = (): void => {
    if (fired) return;
    fired = true;
    onGone();
  };
  stdin.on('end', fire);
  stdin.on('close', fire);
  stdin.on('error', fire);
  // read (and drop) whatever comes, so that 'end' is seen
  stdin.on('data', () => undefined);
  stdin.resume();
  return () => {
    fired = true;
    stdin.off('end', fire);
    stdin.off('close', fire);
    stdin.off('error', fire);
    stdin.pause();
  };
}
