# asyncio_epoll.py: asyncio (its event loop is epoll, its self-pipe a socketpair), a
# reader callback on a pipe, epoll edge-triggered by hand, eventfd, a socket pair with
# shutdown, and fstat of a socket and a pipe. Natively and under junction: same output.
import asyncio, socket, os, select, signal
async def f(i):
    await asyncio.sleep(0.002 * i); return i
async def echo_pair():
    a, b = socket.socketpair()
    ra, wa = await asyncio.open_connection(sock=a)
    rb, wb = await asyncio.open_connection(sock=b)
    wa.write(b'hello over a socket pair\n'); await wa.drain()
    line = await rb.readline()
    wa.close(); await wa.wait_closed()
    eof = await rb.read()
    wb.close()
    return line, eof
async def main():
    print(sum(await asyncio.gather(*(f(i) for i in range(50)))))
    print(await echo_pair())
    loop = asyncio.get_running_loop()
    r, w = os.pipe()
    fut = loop.create_future()
    loop.add_reader(r, lambda: fut.set_result(os.read(r, 100)))
    loop.call_later(0.01, os.write, w, b'pipe data')
    print(await fut)
asyncio.run(main())
ep = select.epoll()
r, w = os.pipe()
ep.register(r, select.EPOLLIN | select.EPOLLET)
print(ep.poll(0))
os.write(w, b'x')
print(ep.poll(0), ep.poll(0))
os.write(w, b'y')
print(ep.poll(0))
efd = os.eventfd(3, os.EFD_NONBLOCK)
print(os.eventfd_read(efd))
try: os.eventfd_read(efd)
except BlockingIOError as e: print('eventfd empty:', e.errno)
a, b = socket.socketpair()
a.sendall(b'abc'); b.shutdown(socket.SHUT_WR)
print(b.recv(10), a.recv(10), a.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE), os.fstat(a.fileno()).st_mode >> 12, os.fstat(r).st_mode >> 12)
e1, e2 = select.epoll(), select.epoll()
e1.register(e2.fileno(), select.EPOLLIN)
try:
    e2.register(e1.fileno(), select.EPOLLIN)
    print('epoll loop accepted')
except OSError as e:
    print('epoll loop refused:', e.errno)
