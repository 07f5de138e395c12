// An HTTP server and a client of it in one Go program, on loopback: with a
// C program this would be a SERVER and a CLIENT span; Go makes these system
// calls without the C library, so the shim sees none of them. Then it runs
// its arguments, if any, as a command: a program it starts is traced.
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
)

func main() {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	go http.Serve(listener, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	response, err := http.Get("http://" + listener.Addr().String() + "/")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(response.Body)
	fmt.Println(response.StatusCode, string(body))
	if len(os.Args) > 1 {
		if err := exec.Command(os.Args[1], os.Args[2:]...).Run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
