package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

const (
	backchannelMagic   = "backchannel"
	sidechannelMagic   = "sidechannel"
	sidechannelKey     = "gitaly-sidechannel-id"
	sidechannelTimeout = 5 * time.Second
	maxChunk           = 65520 - 4 // pktline.MaxPktSize minus the length header
)

// The backchannel dial (magic bytes, yamux client session, gRPC on the first stream) and the
// sidechannel registry (server-opened streams matched to calls by id).

type registry struct {
	mu      sync.Mutex
	next    int64
	waiters map[int64]chan net.Conn
}

func (r *registry) register() (int64, chan net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.next
	r.next++
	ch := make(chan net.Conn, 1)
	r.waiters[id] = ch
	return id, ch
}

// take removes the waiter of id (nil if there is none).
func (r *registry) take(id int64) chan net.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := r.waiters[id]
	delete(r.waiters, id)
	return ch
}

// remove de-registers id; a waiter still waiting then sees its channel closed.
func (r *registry) remove(id int64) {
	if ch := r.take(id); ch != nil {
		close(ch)
	}
}

func dialRaw(ctx context.Context, address string) (net.Conn, error) {
	var d net.Dialer
	switch {
	case strings.HasPrefix(address, "unix:"):
		path := strings.TrimPrefix(strings.TrimPrefix(address, "unix:"), "//")
		return d.DialContext(ctx, "unix", path)
	case strings.HasPrefix(address, "tcp://"):
		return d.DialContext(ctx, "tcp", strings.TrimPrefix(address, "tcp://"))
	case strings.HasPrefix(address, "tls://"):
		hostport := strings.TrimPrefix(address, "tls://")
		host, _, err := net.SplitHostPort(hostport)
		if err != nil {
			return nil, err
		}
		cfg := &tls.Config{ServerName: host, NextProtos: []string{"h2"}}
		if ca := os.Getenv("GITALY_TLS_CA"); ca != "" {
			pem, err := ioutil.ReadFile(ca)
			if err != nil {
				return nil, err
			}
			cfg.RootCAs = x509.NewCertPool()
			cfg.RootCAs.AppendCertsFromPEM(pem)
		}
		td := tls.Dialer{Config: cfg}
		return td.DialContext(ctx, "tcp", hostport)
	}
	return nil, fmt.Errorf("unsupported address %q", address)
}

// sessionConn is the gRPC connection: the first yamux stream. Closing it closes the session.
type sessionConn struct {
	*yamux.Stream
	session *yamux.Session
}

func (c *sessionConn) Close() error {
	c.Stream.Close()
	return c.session.Close()
}

// dialBackchannel does what Gitaly's backchannel ClientHandshake does for every transport
// connection grpc-go makes: magic bytes, yamux client session, first stream for gRPC, and a
// goroutine accepting the server's sidechannel streams.
func (r *registry) dialBackchannel(ctx context.Context, address string) (net.Conn, error) {
	raw, err := dialRaw(ctx, address)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		raw.SetDeadline(dl)
	}
	if _, err := raw.Write([]byte(backchannelMagic)); err != nil {
		raw.Close()
		return nil, err
	}
	cfg := yamux.DefaultConfig()
	cfg.EnableKeepAlive = false // as Gitaly: gRPC keepalives do that job
	cfg.LogOutput = ioutil.Discard
	session, err := yamux.Client(raw, cfg)
	if err != nil {
		raw.Close()
		return nil, err
	}
	stream, err := session.OpenStream()
	if err != nil {
		session.Close()
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	go r.acceptSidechannels(session)
	return &sessionConn{Stream: stream, session: session}, nil
}

func (r *registry) acceptSidechannels(session *yamux.Session) {
	for {
		stream, err := session.AcceptStream()
		if err != nil {
			return
		}
		go r.handshake(stream)
	}
}

// handshake: "sidechannel" + int64 big-endian id from the server; "ok" back.
func (r *registry) handshake(stream *yamux.Stream) {
	stream.SetDeadline(time.Now().Add(sidechannelTimeout))
	var hdr [len(sidechannelMagic) + 8]byte
	if _, err := io.ReadFull(stream, hdr[:]); err != nil || string(hdr[:len(sidechannelMagic)]) != sidechannelMagic {
		stream.Close()
		return
	}
	ch := r.take(int64(binary.BigEndian.Uint64(hdr[len(sidechannelMagic):])))
	if ch == nil {
		stream.Close()
		return
	}
	if _, err := stream.Write([]byte("ok")); err != nil {
		stream.Close()
		close(ch)
		return
	}
	stream.SetDeadline(time.Time{})
	ch <- stream
}

type client struct {
	conn *grpc.ClientConn
	reg  *registry
}

func newClient() (*client, error) {
	address := os.Getenv("GITALY_ADDRESS")
	if address == "" {
		return nil, errors.New("set GITALY_ADDRESS")
	}
	reg := &registry{waiters: map[int64]chan net.Conn{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := grpc.DialContext(ctx, "passthrough:///gitaly",
		grpc.WithInsecure(), // TLS, if any, is under yamux
		grpc.WithBlock(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return reg.dialBackchannel(ctx, address)
		}))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	return &client{conn: conn, reg: reg}, nil
}

func (c *client) context(ctx context.Context) context.Context {
	// Who the client is, as gitlab-shell and workhorse tell Gitaly.
	for _, kv := range [][2]string{{"remote_ip", "GITALY_REMOTE_IP"}, {"user_id", "GITALY_USER_ID"}} {
		if v := os.Getenv(kv[1]); v != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, kv[0], v)
		}
	}
	if secret := os.Getenv("GITALY_TOKEN"); secret != "" {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts))
		token := "Bearer v2." + hex.EncodeToString(mac.Sum(nil)) + "." + ts
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", token)
	}
	return ctx
}

// sideConn frames what the client writes as the sidechannel expects: 4 hex digits (length
// including themselves) + at most 65516 bytes, header and payload in one write; "0000" ends
// the request (CloseWrite). Reads are raw.
type sideConn struct{ net.Conn }

func (s sideConn) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > maxChunk {
			chunk = chunk[:maxChunk]
		}
		buf := make([]byte, 4+len(chunk))
		copy(buf, fmt.Sprintf("%04x", len(chunk)+4))
		copy(buf[4:], chunk)
		if _, err := s.Conn.Write(buf); err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

func (s sideConn) CloseWrite() error {
	_, err := s.Conn.Write([]byte("0000"))
	return err
}

var errCallbackDidNotRun = errors.New("sidechannel: callback de-registered without having run")

// sidechannelCall runs a unary sidechannel RPC as Gitaly's RegisterSidechannel + Waiter do:
// the id goes into the metadata, the callback runs on the stream the server opens, and the
// call succeeds when both the RPC and the callback do.
func (c *client) sidechannelCall(method string, req []byte, callback func(sideConn) error) ([]byte, error) {
	id, ch := c.reg.register()
	ctx := metadata.AppendToOutgoingContext(c.context(context.Background()), sidechannelKey, strconv.FormatInt(id, 10))
	done := make(chan error, 1)
	go func() {
		stream, ok := <-ch
		if !ok || stream == nil {
			done <- errCallbackDidNotRun
			return
		}
		defer stream.Close()
		done <- callback(sideConn{stream})
	}()
	var resp []byte
	err := c.conn.Invoke(ctx, method, &req, &resp, grpc.ForceCodec(rawCodec{}))
	c.reg.remove(id)
	if err != nil {
		return nil, err
	}
	if err := <-done; err != nil {
		return nil, err
	}
	return resp, nil
}
