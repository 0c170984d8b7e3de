// Go peer for benches/suite.rs: the suite's workloads written with goroutines and channels.
//
// Usage: peer WORKLOAD ARGS...; prints one flat JSON object of numbers (seconds per
// operation, bytes per process) and exits. The suite runs it several times, in the same run
// as csp, and sets GOMAXPROCS where a row asks for it.
//
//	commstime LOOPS                 prefix -> delta -> succ -> prefix, delta -> consumer
//	pingpong ROUNDS                 round trip between two goroutines
//	oneway MESSAGES CAPACITY        8-byte messages over a buffered channel
//	onewaybytes MESSAGES CAPACITY SIZE  SIZE-byte messages over a buffered channel
//	stressedalt CHANNELS WRITERS SELECTIONS   one reader selecting over CHANNELS channels
//	ring PROCESSES ROUNDS           a token passed around a ring of goroutines
//	start COUNT                     start and join one goroutine, COUNT times
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func arg(i int) int {
	if len(os.Args) <= i {
		fail("missing argument %d", i)
	}
	n, err := strconv.Atoi(os.Args[i])
	if err != nil {
		fail("argument %d: %v", i, err)
	}
	return n
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go peer: "+format+"\n", args...)
	os.Exit(2)
}

func emit(result map[string]float64) {
	result["gomaxprocs"] = float64(runtime.GOMAXPROCS(0))
	text, err := json.Marshal(result)
	if err != nil {
		fail("%v", err)
	}
	fmt.Println(string(text))
}

func commstime(loops int) {
	a, b, c, d := make(chan int64), make(chan int64), make(chan int64), make(chan int64)
	go func() { // prefix(0)
		a <- 0
		for {
			a <- <-b
		}
	}()
	go func() { // delta, sequential: the consumer first, then succ
		for {
			v := <-a
			d <- v
			c <- v
		}
	}()
	go func() { // succ
		for {
			b <- <-c + 1
		}
	}()
	<-d // warm up: the network is running
	started := time.Now()
	for i := 0; i < loops; i++ {
		<-d
	}
	elapsed := time.Since(started).Seconds()
	emit(map[string]float64{"per_loop": elapsed / float64(loops)})
}

func pingpong(rounds int) {
	ping, pong := make(chan int64), make(chan int64)
	go func() {
		for {
			pong <- <-ping
		}
	}()
	ping <- 0
	<-pong
	started := time.Now()
	for i := 0; i < rounds; i++ {
		ping <- int64(i)
		<-pong
	}
	elapsed := time.Since(started).Seconds()
	emit(map[string]float64{"round_trip": elapsed / float64(rounds)})
}

func oneway(messages, capacity int) {
	ch := make(chan uint64, capacity)
	go func() {
		for i := 0; i <= messages; i++ {
			ch <- uint64(i)
		}
	}()
	<-ch
	started := time.Now()
	var sum uint64
	for i := 0; i < messages; i++ {
		sum += <-ch
	}
	elapsed := time.Since(started).Seconds()
	if sum == 0 {
		fail("nothing received")
	}
	emit(map[string]float64{"per_message": elapsed / float64(messages)})
}

// onewaybytes: as oneway, with SIZE-byte messages, each a fresh copy of one buffer.
func onewaybytes(messages, capacity, size int) {
	ch := make(chan []byte, capacity)
	template := make([]byte, size)
	for i := range template {
		template[i] = 7
	}
	go func() {
		for i := 0; i <= messages; i++ {
			message := make([]byte, size)
			copy(message, template)
			ch <- message
		}
	}()
	<-ch
	started := time.Now()
	total := 0
	for i := 0; i < messages; i++ {
		total += len(<-ch)
	}
	elapsed := time.Since(started).Seconds()
	if total != messages*size {
		fail("lost bytes")
	}
	emit(map[string]float64{"per_message": elapsed / float64(messages)})
}

// stressedalt: CHANNELS channels, each written by WRITERS goroutines forever (each writes its
// own number); one reader selects until every writer has been heard from (all are running),
// then SELECTIONS times, timed, with a literal 10-case select (when CHANNELS is 10), and as
// many again with reflect.Select.
func stressedalt(channels, writers, selections int) {
	chans := make([]chan int, channels)
	for i := range chans {
		chans[i] = make(chan int)
		for w := 0; w < writers; w++ {
			go func(ch chan int, id int) {
				for {
					ch <- id
				}
			}(chans[i], i*writers+w)
		}
	}
	cases := make([]reflect.SelectCase, channels)
	for i, ch := range chans {
		cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)}
	}
	reflectOnce := func() int {
		_, v, _ := reflect.Select(cases)
		return int(v.Int())
	}
	selectOnce := reflectOnce
	if channels == 10 {
		c := chans
		selectOnce = func() int {
			var v int
			select {
			case v = <-c[0]:
			case v = <-c[1]:
			case v = <-c[2]:
			case v = <-c[3]:
			case v = <-c[4]:
			case v = <-c[5]:
			case v = <-c[6]:
			case v = <-c[7]:
			case v = <-c[8]:
			case v = <-c[9]:
			}
			return v
		}
	}
	unheard := make([]bool, channels*writers)
	left := len(unheard)
	for i := range unheard {
		unheard[i] = true
	}
	deadline := time.Now().Add(time.Minute)
	for left > 0 && time.Now().Before(deadline) {
		id := selectOnce()
		if unheard[id] {
			unheard[id] = false
			left--
		}
	}
	if left > 0 {
		fail("%d writers not heard from within a minute", left)
	}
	result := map[string]float64{}
	counts := make([]int, channels)
	timed := func(once func() int) float64 {
		started := time.Now()
		for i := 0; i < selections; i++ {
			counts[once()/writers]++
		}
		return time.Since(started).Seconds() / float64(selections)
	}
	if channels == 10 {
		result["select_per_op"] = timed(selectOnce)
	}
	result["reflect_per_op"] = timed(reflectOnce)
	for i, n := range counts {
		if n == 0 {
			fail("channel %d was never chosen", i)
		}
	}
	emit(result)
}

// residentBytes is this process's resident set size, from /proc/self/statm.
func residentBytes() float64 {
	text, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fail("%v", err)
	}
	fields := strings.Fields(string(text))
	pages, err := strconv.Atoi(fields[1])
	if err != nil {
		fail("%v", err)
	}
	return float64(pages * os.Getpagesize())
}

// ring: PROCESSES goroutines in a ring; goroutine 0 (here: main) starts the token, one round
// warms up (every goroutine started and has run), then ROUNDS rounds are timed.
func ring(processes, rounds int) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore := residentBytes()
	chans := make([]chan int64, processes)
	for i := range chans {
		chans[i] = make(chan int64)
	}
	for i := 1; i < processes; i++ {
		go func(in, out chan int64) {
			for {
				out <- (<-in) + 1
			}
		}(chans[i-1], chans[i])
	}
	first, last := chans[0], chans[processes-1]
	first <- 0
	token := <-last // one round: every goroutine is running
	runtime.ReadMemStats(&after)
	rssAfter := residentBytes()
	started := time.Now()
	for r := 0; r < rounds; r++ {
		first <- token
		token = <-last
	}
	elapsed := time.Since(started).Seconds()
	if token != int64(processes-1)*int64(rounds+1) {
		fail("token %d after %d rounds", token, rounds)
	}
	n := float64(processes)
	emit(map[string]float64{
		"per_hop":        elapsed / (float64(rounds) * n),
		"sys_per_proc":   (float64(after.Sys) - float64(before.Sys)) / n,
		"heap_per_proc":  (float64(after.HeapSys) - float64(before.HeapSys)) / n,
		"stack_per_proc": (float64(after.StackSys) - float64(before.StackSys)) / n,
		"rss_per_proc":   (rssAfter - rssBefore) / n,
	})
}

func start(count int) {
	run := func() {
		done := make(chan struct{})
		go func() { close(done) }()
		<-done
	}
	for i := 0; i < count/10+1; i++ {
		run()
	}
	started := time.Now()
	for i := 0; i < count; i++ {
		run()
	}
	emit(map[string]float64{"per_start": time.Since(started).Seconds() / float64(count)})
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: peer commstime|pingpong|oneway|onewaybytes|stressedalt|ring|start ARGS...")
	}
	switch os.Args[1] {
	case "commstime":
		commstime(arg(2))
	case "pingpong":
		pingpong(arg(2))
	case "oneway":
		oneway(arg(2), arg(3))
	case "onewaybytes":
		onewaybytes(arg(2), arg(3), arg(4))
	case "stressedalt":
		stressedalt(arg(2), arg(3), arg(4))
	case "ring":
		ring(arg(2), arg(3))
	case "start":
		start(arg(2))
	default:
		fail("unknown workload %q", os.Args[1])
	}
}
