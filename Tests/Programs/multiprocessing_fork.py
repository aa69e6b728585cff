# multiprocessing_fork.py: multiprocessing with the fork context: a Pool (pipes, SemLocks in
# /dev/shm shared by the processes) and a Process with a Queue.
import multiprocessing as mp
def sq(x): return x * x
if __name__ == "__main__":
    ctx = mp.get_context("fork")
    with ctx.Pool(2) as pool:
        print(pool.map(sq, range(10)))
    q = ctx.Queue(); pr = ctx.Process(target=q.put, args=(42,)); pr.start(); print(q.get()); pr.join(); print(pr.exitcode)
