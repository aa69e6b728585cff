# proc.py: /proc/self as a program sees it: cmdline, comm, status, exe, fd links, maps,
# a host file (cpuinfo), cwd, self. Natively and under junction: the same output.
import os, sys
def read(p): return open(p, 'rb').read()
print('cmdline', read('/proc/self/cmdline').split(b'\0')[1:3])
print('comm', read('/proc/self/comm'))
status = dict(l.split(':\t', 1) for l in read('/proc/self/status').decode().splitlines() if ':\t' in l)
print('status', status['Name'], status['Pid'] == str(os.getpid()), status['Tgid'] == str(os.getpid()), status['Uid'].split()[0])
print('exe', os.readlink('/proc/self/exe'), os.readlink('/proc/%d/exe' % os.getpid()))
print('fds', sorted(x for x in os.listdir('/proc/self/fd') if int(x) < 4))
r, w = os.pipe()
print('pipe link', os.readlink('/proc/self/fd/%d' % r).startswith('pipe:['))
f = open('/etc/hostname')
print('file link', os.readlink('/proc/self/fd/%d' % f.fileno()))
maps = read('/proc/self/maps').decode().splitlines()
print('maps has the program', any(l.endswith(os.path.realpath(sys.executable)) for l in maps), 'stack', any(l.endswith('[stack]') for l in maps), 'heap', any(l.endswith('[heap]') for l in maps), 'vdso', any(l.endswith('[vdso]') for l in maps))
import mmap
m = mmap.mmap(-1, 1 << 20)

maps2 = read('/proc/self/maps').decode().splitlines()
print('a new mapping shows', len(maps2) >= len(maps))
print('cpuinfo from the host', read('/proc/cpuinfo').startswith(b'processor'))
print('cwd', os.readlink('/proc/self/cwd') == os.getcwd())
print('self', os.readlink('/proc/self') == str(os.getpid()))
