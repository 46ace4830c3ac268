# CPU use per thread of native step-worker processes (bench/step-worker.ts, one oneDNN thread each), sampled from
# /proc/PID/task/*/stat over 10 s of steps: shows what a process spends besides its main thread (V8 GC workers).
# Usage: [NODE_FLAGS="--v8-flag ..."] python3 bench/thread-cpu.py N [images|features] [extra step-worker args]   (Linux only)
import os, sys, time, subprocess
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
n = int(sys.argv[1]); mode = sys.argv[2] if len(sys.argv) > 2 else 'features'
extra = sys.argv[3:]
FLAGS = os.environ.get('NODE_FLAGS', '').split()
procs = [subprocess.Popen(['node', *FLAGS, '--import', 'tsx', 'bench/step-worker.ts', '--backend', 'native', '--mode', mode, '--threads', '1', '--steps', '200', '--warmup', '2'] + extra, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, 'DPTRAIN_NATIVE_THREADS': '1'}) for _ in range(n)]
def snap(pid):
    out = {}
    for t in os.listdir(f'/proc/{pid}/task'):
        try:
            st = open(f'/proc/{pid}/task/{t}/stat').read()
            comm = st[st.index('(')+1:st.rindex(')')]
            f = st[st.rindex(')')+2:].split()
            out[t] = (comm, int(f[11]) + int(f[12]))
        except Exception: pass
    return out
time.sleep(25)
a = [snap(p.pid) for p in procs]; t0 = time.time()
time.sleep(10)
b = [snap(p.pid) for p in procs]; dt = time.time() - t0
hz = os.sysconf('SC_CLK_TCK')
for i in range(n):
    by = {}
    for t, (c, v) in b[i].items():
        d = (v - a[i].get(t, (c, 0))[1]) / hz / dt
        key = 'main' if t == str(procs[i].pid) else f'{c}:{t}'
        by[key] = by.get(key, 0) + d
    print(f'proc {i}: total {sum(by.values()):.2f} cores;', ', '.join(f'{k} {v:.2f}' for k, v in sorted(by.items(), key=lambda x: -x[1]) if v > 0.005))
for p in procs: p.kill()
