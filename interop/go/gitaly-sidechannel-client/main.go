// Command gitaly-sidechannel-client is a Gitaly client written against the wire alone, the
// way gitlab-shell and gitlab-workhorse talk to Gitaly: every connection starts with the
// "backchannel" magic and runs a yamux client session (hashicorp/yamux); gRPC runs on the
// first stream; the server opens one more stream per sidechannel call ("sidechannel" +
// int64 id, answered "ok"). No generated protobuf code: requests are encoded by hand and
// sent with a raw codec.
//
// Modes:
//
//	ssh [ssh options] HOST COMMAND  a GIT_SSH_COMMAND, like gitlab-shell: git-upload-pack
//	                                 through SSHUploadPackWithSidechannel (side-band output)
//	http LISTEN                      a smart-HTTP front end, like workhorse: info/refs through
//	                                 InfoRefsUploadPack, POST git-upload-pack through
//	                                 PostUploadPackWithSidechannel; prints http://ADDR first
//	fetch ssh|http STORAGE/REL OID   a protocol v2 fetch of OID; writes the pack to stdout
//	                                 (pipe it into git index-pack --stdin)
//
// Environment: GITALY_ADDRESS (unix:/path, tcp://host:port, tls://host:port), GITALY_TOKEN
// (the server's auth secret: a v2 token is sent), GITALY_TLS_CA (PEM file to trust),
// GITALY_STATS (file to which each call's PackfileNegotiationStatistics is appended),
// GITALY_REMOTE_IP and GITALY_USER_ID (sent as the remote_ip and user_id metadata).
//
// Build (Debian packages golang-go, golang-github-hashicorp-yamux-dev,
// golang-google-grpc-dev; GOPATH mode, offline):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= go build -o OUT .
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"strings"

	"google.golang.org/grpc"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: gitaly-sidechannel-client ssh|http|fetch ...")
	}
	var err error
	switch os.Args[1] {
	case "ssh":
		err = runSSH(os.Args[2:])
	case "http":
		if len(os.Args) != 3 {
			fail("usage: gitaly-sidechannel-client http LISTEN_ADDR")
		}
		err = runHTTP(os.Args[2])
	case "fetch":
		if len(os.Args) != 5 {
			fail("usage: gitaly-sidechannel-client fetch ssh|http STORAGE/REL OID")
		}
		err = runFetch(os.Args[2], os.Args[3], os.Args[4])
	default:
		fail("unknown mode " + os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "gitaly-sidechannel-client: "+msg)
	os.Exit(1)
}

// ---- modes ----

// runSSH is a GIT_SSH_COMMAND: git runs it as `... ssh [-p PORT] [-o OPT] HOST COMMAND`
// with COMMAND = git-upload-pack '/STORAGE/REL' (single-quoted path).
func runSSH(args []string) error {
	if len(args) > 0 && args[0] == "-G" {
		os.Exit(0) // git's `ssh -G` probe (ssh.variant=auto): behave like OpenSSH, as gitrpc-ssh does
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-p" || a == "-o" || a == "-l" || a == "-i" || a == "-F":
			i++
		case strings.HasPrefix(a, "-") && len(rest) == 0:
			// -4, -6, -oSendEnv=GIT_PROTOCOL, ...
		default:
			rest = append(rest, a)
		}
	}
	if len(rest) < 2 {
		return errors.New("expected HOST COMMAND")
	}
	command := strings.Join(rest[1:], " ")
	sp := strings.IndexByte(command, ' ')
	if sp < 0 || command[:sp] != "git-upload-pack" {
		return fmt.Errorf("only git-upload-pack is supported, got %q", command)
	}
	path := strings.TrimPrefix(strings.Trim(strings.TrimSpace(command[sp+1:]), "'"), "/")
	slash := strings.IndexByte(path, '/')
	if slash <= 0 {
		return fmt.Errorf("path must be STORAGE/REL, got %q", path)
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	req := uploadPackRequest(path[:slash], path[slash+1:], os.Getenv("GIT_PROTOCOL"))
	resp, err := c.sidechannelCall("/gitaly.SSHService/SSHUploadPackWithSidechannel", req, func(sc sideConn) error {
		return proxyPktLine(sc, os.Stdin, os.Stdout, os.Stderr)
	})
	if err != nil {
		return err
	}
	recordStats(resp)
	return nil
}

// runHTTP serves /STORAGE/REL/info/refs?service=git-upload-pack and
// /STORAGE/REL/git-upload-pack as workhorse does (fetches only).
func runHTTP(listen string) error {
	c, err := newClient()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("http://%s\n", ln.Addr())
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/")
		protocol := ""
		if r.Header.Get("Git-Protocol") == "version=2" {
			protocol = "version=2"
		}
		var repo string
		switch {
		case r.Method == "GET" && strings.HasSuffix(p, "/info/refs") && r.URL.Query().Get("service") == "git-upload-pack":
			repo = strings.TrimSuffix(p, "/info/refs")
		case r.Method == "POST" && strings.HasSuffix(p, "/git-upload-pack"):
			repo = strings.TrimSuffix(p, "/git-upload-pack")
		default:
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		slash := strings.IndexByte(repo, '/')
		if slash <= 0 {
			http.Error(w, "bad repository path", http.StatusNotFound)
			return
		}
		req := uploadPackRequest(repo[:slash], repo[slash+1:], protocol)
		w.Header().Set("Cache-Control", "no-cache")
		if r.Method == "GET" {
			if err := c.infoRefs(w, req); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
			return
		}
		body := io.Reader(r.Body)
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = gz
		}
		w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
		resp, err := c.sidechannelCall("/gitaly.SmartHTTPService/PostUploadPackWithSidechannel", req, func(sc sideConn) error {
			if _, err := io.Copy(sc, body); err != nil {
				return fmt.Errorf("copy request body: %w", err)
			}
			if err := sc.CloseWrite(); err != nil {
				return fmt.Errorf("close request body: %w", err)
			}
			_, err := io.Copy(w, sc)
			return err
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "gitaly-sidechannel-client: PostUploadPackWithSidechannel: %v\n", err)
			return // headers may be out already; git sees a broken response
		}
		recordStats(resp)
	}))
}

// infoRefs relays the server-streaming InfoRefsUploadPack (InfoRefsResponse: 1 data).
func (c *client) infoRefs(w http.ResponseWriter, req []byte) error {
	desc := &grpc.StreamDesc{ServerStreams: true}
	stream, err := c.conn.NewStream(c.context(context.Background()), desc,
		"/gitaly.SmartHTTPService/InfoRefsUploadPack", grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	if err := stream.SendMsg(&req); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
	for {
		var msg []byte
		err := stream.RecvMsg(&msg)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		fs, err := parseFields(msg)
		if err != nil {
			return err
		}
		for _, f := range fs {
			if f.num == 1 {
				w.Write(f.bytes)
			}
		}
	}
}

// runFetch does one protocol v2 fetch of oid (no haves, no thin pack, no progress) and writes
// the pack to stdout.
func runFetch(variant, repo, oid string) error {
	slash := strings.IndexByte(repo, '/')
	if slash <= 0 {
		return fmt.Errorf("repository must be STORAGE/REL, got %q", repo)
	}
	var request bytes.Buffer
	writePkt(&request, "command=fetch\n")
	request.WriteString("0001")
	writePkt(&request, "no-progress\n")
	writePkt(&request, "want "+oid+"\n")
	writePkt(&request, "done\n")
	request.WriteString("0000")
	method := "/gitaly.SmartHTTPService/PostUploadPackWithSidechannel"
	if variant == "ssh" {
		method = "/gitaly.SSHService/SSHUploadPackWithSidechannel"
		request.WriteString("0000") // end of the v2 session
	} else if variant != "http" {
		return fmt.Errorf("variant must be ssh or http, got %q", variant)
	}
	c, err := newClient()
	if err != nil {
		return err
	}
	req := uploadPackRequest(repo[:slash], repo[slash+1:], "version=2")
	resp, err := c.sidechannelCall(method, req, func(sc sideConn) error {
		if _, err := sc.Write(request.Bytes()); err != nil {
			return err
		}
		if err := sc.CloseWrite(); err != nil {
			return err
		}
		if variant == "http" {
			return readPackResponse(sc)
		}
		// SSH: upload-pack's stdout arrives in band 1 of a side-band stream and starts with
		// the capability advertisement.
		pr, pw := io.Pipe()
		parsed := make(chan error, 1)
		go func() {
			err := skipAdvertisement(pr)
			if err == nil {
				err = readPackResponse(pr)
			}
			io.Copy(ioutil.Discard, pr)
			parsed <- err
		}()
		err := eachSideband(sc, func(band byte, data []byte) error {
			switch band {
			case 1:
				_, err := pw.Write(data)
				return err
			case 2:
				_, err := os.Stderr.Write(data)
				return err
			}
			return fmt.Errorf("unexpected band %d", band)
		})
		pw.CloseWithError(err)
		if perr := <-parsed; perr != nil {
			return perr
		}
		return err
	})
	if err != nil {
		return err
	}
	recordStats(resp)
	return nil
}

func skipAdvertisement(r io.Reader) error {
	for {
		_, kind, err := readPkt(r)
		if err != nil {
			return fmt.Errorf("capability advertisement: %w", err)
		}
		if kind == pktFlush {
			return nil
		}
	}
}

// readPackResponse skips to the "packfile" section and copies its band-1 data to stdout.
func readPackResponse(r io.Reader) error {
	for {
		data, kind, err := readPkt(r)
		if err != nil {
			return fmt.Errorf("fetch response: %w", err)
		}
		if kind == pktData && string(data) == "packfile\n" {
			break
		}
	}
	for {
		data, kind, err := readPkt(r)
		if err != nil {
			return fmt.Errorf("packfile section: %w", err)
		}
		if kind == pktFlush {
			return nil
		}
		if kind != pktData || len(data) == 0 {
			return fmt.Errorf("unexpected packet in packfile section (kind %d)", kind)
		}
		switch data[0] {
		case 1:
			if _, err := os.Stdout.Write(data[1:]); err != nil {
				return err
			}
		case 2:
			os.Stderr.Write(data[1:])
		default:
			return fmt.Errorf("remote error: %s", data[1:])
		}
	}
}
