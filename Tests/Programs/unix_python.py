# unix_python.py: Python's AF_UNIX users, in one process with threads: socketserver's
# UnixStreamServer, asyncio's unix server, multiprocessing.connection over a unix
# address, socket.send_fds/recv_fds. argv[1]: a directory for the socket names.
import asyncio, os, socket, socketserver, sys, threading
from multiprocessing.connection import Client, Listener

d = sys.argv[1]

# socketserver.UnixStreamServer with a line-echoing handler.
class Upper(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line.upper())

path = os.path.join(d, "ss.sock")
with socketserver.ThreadingUnixStreamServer(path, Upper) as server:
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.connect(path)
        f = c.makefile("rwb")
        for word in [b"alpha\n", b"beta\n", b"gamma\n"]:
            f.write(word)
            f.flush()
            print("socketserver:", f.readline().decode().strip())
        print("peer name:", os.path.basename(c.getpeername()))
        f.close()
    server.shutdown()
print("socket file kind:", "socket" if os.path.exists(path) and __import__("stat").S_ISSOCK(os.stat(path).st_mode) else "?")

# asyncio.start_unix_server and open_unix_connection.
async def main():
    async def echo(reader, writer):
        while data := await reader.read(100):
            writer.write(data[::-1])
            await writer.drain()
        writer.close()
    apath = os.path.join(d, "aio.sock")
    server = await asyncio.start_unix_server(echo, apath)
    async with server:
        reader, writer = await asyncio.open_unix_connection(apath)
        for msg in [b"hello", b"unix", b"sockets"]:
            writer.write(msg)
            await writer.drain()
            print("asyncio:", (await reader.read(100)).decode())
        writer.close()
        await writer.wait_closed()
    # Abstract names too.
    server = await asyncio.start_unix_server(echo, "\0junction-py-abstract")
    async with server:
        reader, writer = await asyncio.open_unix_connection("\0junction-py-abstract")
        writer.write(b"abstract")
        print("asyncio abstract:", (await reader.read(100)).decode())
        writer.close()
asyncio.run(main())

# multiprocessing.connection: Listener/Client over a unix address, with authentication.
mpath = os.path.join(d, "mp.sock")
with Listener(mpath, family="AF_UNIX", authkey=b"secret") as listener:
    results = []
    def client():
        with Client(mpath, family="AF_UNIX", authkey=b"secret") as conn:
            conn.send({"numbers": [1, 2, 3], "text": "junction"})
            results.append(conn.recv())
    t = threading.Thread(target=client)
    t.start()
    with listener.accept() as conn:
        msg = conn.recv()
        conn.send(sum(msg["numbers"]))
        print("multiprocessing got:", sorted(msg.items()))
    t.join()
    print("multiprocessing reply:", results)

# send_fds / recv_fds.
a, b = socket.socketpair()
r, w = os.pipe()
socket.send_fds(a, [b"pipe end"], [w])
msg, fds, flags, addr = socket.recv_fds(b, 100, 4)
os.write(fds[0], b"written through a passed descriptor")
os.close(fds[0]); os.close(w)
print("recv_fds:", msg.decode(), len(fds), os.read(r, 100).decode())
a2, b2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
a2.send(b"one"); a2.send(b"two")
print("datagrams:", b2.recv(10), b2.recv(10))
print("credentials:", b.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)[:4] == os.getpid().to_bytes(4, "little"))
