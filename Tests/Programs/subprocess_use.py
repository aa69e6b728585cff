# subprocess_use.py: python3 subprocess and os.fork (processes under junction): check_output,
# Popen with pipes both ways, a timeout, kill, os.fork with a pipe and waitpid, a shell.
import subprocess, os, sys, signal, time
print(subprocess.check_output(["echo", "hello"]).decode().strip())
p = subprocess.Popen(["tr", "a-z", "A-Z"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
out, _ = p.communicate(b"pipes both ways\n" * 1000)
print(len(out), out[:16], p.returncode)
try:
    subprocess.run(["sleep", "5"], timeout=0.3)
except subprocess.TimeoutExpired:
    print("timeout")
p = subprocess.Popen(["sleep", "10"]); p.kill(); print("killed", p.wait())
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r); os.write(w, b"from child"); os._exit(3)
os.close(w)
print(os.read(r, 100).decode())
_, st = os.waitpid(pid, 0); print("status", os.waitstatus_to_exitcode(st))
print(subprocess.run("echo shell | cat", shell=True, capture_output=True).stdout)
r = subprocess.run(["sh", "-c", "echo err >&2; exit 4"], capture_output=True); print(r.returncode, r.stderr)
