# multiprocessing_pipe.py: multiprocessing.Pipe() (duplex: an AF_UNIX socketpair shared by
# the parent and a forked child) carrying objects both ways, and a socket.socketpair used
# by os.fork directly.
import multiprocessing as mp
import os
import socket

def echo(conn):
    while True:
        item = conn.recv()
        if item is None:
            break
        conn.send(("echo", item))
    conn.close()

if __name__ == "__main__":
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    parent.send("before start")  # queued before the fork
    p = ctx.Process(target=echo, args=(child,))
    p.start()
    child.close()
    print(parent.recv())
    for item in [1, [2, 3], {"four": 4}, b"x" * 100000]:
        parent.send(item)
        got = parent.recv()
        print(got[0], type(got[1]).__name__, len(got[1]) if isinstance(got[1], bytes) else got[1])
    parent.send(None)
    p.join()
    print("exitcode", p.exitcode)
    a, b = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        a.close()
        b.sendall(b"from child " + b.recv(100))
        os._exit(0)
    b.close()
    a.sendall(b"hello")
    print(a.recv(100).decode())
    print("status", os.waitpid(pid, 0)[1])
