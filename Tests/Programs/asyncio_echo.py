# asyncio_echo.py: an asyncio TCP echo server and clients in one program (host sockets
# under junction: 127.0.0.1 on a kernel-chosen port), a UDP exchange through a datagram
# endpoint, getaddrinfo of localhost, and socket errors. Same output natively.
import asyncio, socket

async def handle(reader, writer):
    while data := await reader.readline():
        writer.write(data.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()

async def client(port, n):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    for i in range(3):
        writer.write(f"client {n} line {i}\n".encode())
        await writer.drain()
        out.append((await reader.readline()).decode().strip())
    writer.close()
    await writer.wait_closed()
    return out

class Echo(asyncio.DatagramProtocol):
    def connection_made(self, t): self.t = t
    def datagram_received(self, data, addr): self.t.sendto(data[::-1], addr)

class Ask(asyncio.DatagramProtocol):
    def __init__(self, fut): self.fut = fut
    def datagram_received(self, data, addr): self.fut.set_result(data)

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    results = await asyncio.gather(*(client(port, n) for n in range(8)))
    for r in results: print(r)
    server.close()
    await server.wait_closed()
    loop = asyncio.get_running_loop()
    t, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
    fut = loop.create_future()
    c, _ = await loop.create_datagram_endpoint(lambda: Ask(fut), remote_addr=t.get_extra_info("sockname"))
    c.sendto(b"datagram")
    print(await asyncio.wait_for(fut, 10))
    c.close(); t.close()
    try:
        await asyncio.open_connection("127.0.0.1", port)
    except OSError as e:
        print("after close:", e.errno)

asyncio.run(main())
print(sorted({a[4][0] for a in socket.getaddrinfo("localhost", 80, socket.AF_INET)}))
for args in [(99, socket.SOCK_STREAM), (socket.AF_INET, 99)]:
    try: socket.socket(*args)
    except OSError as e: print("socket", args, e.errno)
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind(("::", 0)); s.listen()
c = socket.socket()
try: c.connect(("127.0.0.1", s.getsockname()[1]))
except OSError as e: print("v6only refuses v4:", e.errno)
