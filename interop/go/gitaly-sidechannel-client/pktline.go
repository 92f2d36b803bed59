package main

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
)

// pkt-lines, side-band, and gitlab-shell's proxying of an SSH upload-pack session.

const (
	pktData  = -1
	pktFlush = 0
	pktDelim = 1
)

func readPkt(r io.Reader) ([]byte, int, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, err
	}
	n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("bad pkt-line header %q", hdr[:])
	}
	if n < 4 {
		return nil, int(n), nil
	}
	buf := make([]byte, n-4)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, 0, err
	}
	return buf, pktData, nil
}

func writePkt(w *bytes.Buffer, s string) { fmt.Fprintf(w, "%04x%s", len(s)+4, s) }

// eachSideband reads side-band packets (band byte + data) until EOF.
func eachSideband(r io.Reader, fn func(band byte, data []byte) error) error {
	for {
		data, kind, err := readPkt(r)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if kind != pktData || len(data) == 0 {
			return fmt.Errorf("invalid side-band packet (kind %d)", kind)
		}
		if err := fn(data[0], data[1:]); err != nil {
			return err
		}
	}
}

// proxyPktLine is gitlab-shell's side of SSHUploadPackWithSidechannel (Gitaly's
// stream.ProxyPktLine): stdin → request (then "0000"); side-band response → stdout (band 1)
// and stderr (band 2). Returns when the server closes the sidechannel.
func proxyPktLine(sc sideConn, stdin io.Reader, stdout, stderr io.Writer) error {
	request := make(chan error, 1)
	go func() {
		if _, err := io.Copy(sc, stdin); err != nil {
			request <- err
			return
		}
		request <- sc.CloseWrite()
	}()
	response := make(chan error, 1)
	go func() {
		response <- eachSideband(sc, func(band byte, data []byte) (err error) {
			switch band {
			case 1:
				_, err = stdout.Write(data)
			case 2:
				_, err = stderr.Write(data)
			default:
				err = fmt.Errorf("unexpected band %d", band)
			}
			return err
		})
	}()
	for {
		select {
		case err := <-response:
			return err
		case err := <-request:
			if err != nil {
				return err
			}
		}
	}
}
