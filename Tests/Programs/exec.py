# exec.py: execve from python3 (with a second thread running, handlers installed, a
# signal ignored, a close-on-exec pipe end and an inheritable one) into busybox sh, which
# reports with builtins only (after execs that fail with ENOENT, EACCES and ENOEXEC): its arguments and environment, which descriptors survived,
# and /proc/self/status (one thread, ignored signals kept, handlers reset).
import os, sys, signal, threading, time, tempfile
# Failures return to the caller with Linux's errno.
for path in ['/nonexistent', '/etc/passwd', '/etc']:
    try: os.execv(path, ['x'])
    except OSError as e: print(path, e.errno)
d = tempfile.mkdtemp()
with open(d + '/notelf', 'w') as f: f.write('hello')
os.chmod(d + '/notelf', 0o755)
try: os.execv(d + '/notelf', ['x'])
except OSError as e: print('not ELF', e.errno)
signal.signal(signal.SIGUSR1, lambda s, f: None)
signal.signal(signal.SIGUSR2, signal.SIG_IGN)
r, w = os.pipe()
os.dup2(r, 20, inheritable=False)  # numbers the new program will not reuse
os.dup2(w, 21, inheritable=True)
r, w = 20, 21
threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
sys.stdout.flush()
script = '''
echo "exec ok: $0 $1 $X"
[ -e /proc/self/fd/$1 ] && echo "close-on-exec fd: open" || echo "close-on-exec fd: closed"
[ -e /proc/self/fd/$2 ] && echo "inheritable fd: open" || echo "inheritable fd: closed"
while read k v; do case $k in Name:|Threads:|SigIgn:|SigCgt:|SigBlk:) echo "$k $v";; esac; done < /proc/self/status
'''
os.execve('/bin/busybox', ['sh', '-c', script, 'exec.py', str(r), str(w)], {'X': 'from-env', 'PATH': '/bin'})
