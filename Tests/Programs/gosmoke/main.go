// gosmoke: an unmodified Go program (static, its own runtime: threads by clone, futexes,
// epoll netpoller, signals through sigaltstacks, timers): 100 goroutines, a condition
// variable ping-pong, files, a signal to itself, a timer. Built at test time with the
// Debian Go toolchain; natively and under junction the output must be the same.
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"time"
)

func main() {
	runtime.GOMAXPROCS(4)
	var wg sync.WaitGroup
	results := make(chan int, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(time.Millisecond * time.Duration(i%10))
			s := 0
			for j := 0; j < 100000; j++ {
				s += j % (i + 1)
			}
			results <- s
		}(i)
	}
	wg.Wait()
	close(results)
	var all []int
	for r := range results {
		all = append(all, r)
	}
	sort.Ints(all)
	fmt.Println("goroutines:", len(all), all[0], all[len(all)-1])
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	turn := 0
	done := make(chan bool)
	go func() {
		for i := 0; i < 10000; i++ {
			mu.Lock()
			for turn != 1 {
				cond.Wait()
			}
			turn = 0
			cond.Signal()
			mu.Unlock()
		}
		done <- true
	}()
	for i := 0; i < 10000; i++ {
		mu.Lock()
		turn = 1
		cond.Signal()
		for turn != 0 {
			cond.Wait()
		}
		mu.Unlock()
	}
	<-done
	fmt.Println("condvar ping-pong done")
	data, err := os.ReadFile("/etc/passwd")
	fmt.Println("read /etc/passwd:", err == nil, len(data) > 0)
	fmt.Printf("sha256: %x\n", sha256.Sum256([]byte("junction")))
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR1)
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	select {
	case s := <-c:
		fmt.Println("signal:", s)
	case <-time.After(2 * time.Second):
		fmt.Println("signal: timeout")
	}
	// Read the start time before creating the timer: a precise timer may fire exactly
	// 20 ms after its own creation, which is less than 20 ms after a later start.
	start := time.Now()
	timer := time.NewTimer(20 * time.Millisecond)
	<-timer.C
	fmt.Println("timer fired:", time.Since(start) >= 20*time.Millisecond)
	f, _ := os.CreateTemp("", "go-junction")
	f.WriteString("hello")
	f.Close()
	b, _ := os.ReadFile(f.Name())
	os.Remove(f.Name())
	fmt.Println("temp file:", string(b))
}
