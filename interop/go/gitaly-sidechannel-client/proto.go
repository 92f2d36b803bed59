package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Raw protobuf: requests encoded by hand, responses decoded field by field.

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	p := v.(*[]byte)
	*p = append((*p)[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// appendLen appends a length-delimited field (wire type 2).
func appendLen(b []byte, field int, data []byte) []byte {
	b = appendVarint(b, uint64(field)<<3|2)
	b = appendVarint(b, uint64(len(data)))
	return append(b, data...)
}

// uploadPackRequest encodes SSHUploadPackWithSidechannelRequest,
// PostUploadPackWithSidechannelRequest and InfoRefsRequest, which share their layout:
// 1 repository (Repository: 2 storage_name, 3 relative_path), 2 git_config_options,
// 3 git_protocol.
func uploadPackRequest(storage, rel, protocol string) []byte {
	repo := appendLen(appendLen(nil, 2, []byte(storage)), 3, []byte(rel))
	b := appendLen(nil, 1, repo)
	if protocol != "" {
		b = appendLen(b, 3, []byte(protocol))
	}
	return b
}

type field struct {
	num    int
	varint uint64
	bytes  []byte
}

func parseFields(b []byte) ([]field, error) {
	var out []field
	readVarint := func() (uint64, error) {
		var v uint64
		for shift := uint(0); shift < 64; shift += 7 {
			if len(b) == 0 {
				return 0, errors.New("truncated varint")
			}
			c := b[0]
			b = b[1:]
			v |= uint64(c&0x7f) << shift
			if c < 0x80 {
				return v, nil
			}
		}
		return 0, errors.New("varint overflow")
	}
	for len(b) > 0 {
		key, err := readVarint()
		if err != nil {
			return nil, err
		}
		f := field{num: int(key >> 3)}
		switch key & 7 {
		case 0:
			if f.varint, err = readVarint(); err != nil {
				return nil, err
			}
		case 2:
			n, err := readVarint()
			if err != nil || uint64(len(b)) < n {
				return nil, errors.New("truncated field")
			}
			f.bytes, b = b[:n], b[n:]
		default:
			return nil, fmt.Errorf("unexpected wire type %d", key&7)
		}
		out = append(out, f)
	}
	return out, nil
}

// recordStats appends the response's PackfileNegotiationStatistics (field 1) to $GITALY_STATS:
// 1 payload_size, 2 packets, 3 caps, 4 wants, 5 haves, 6 shallows, 7 deepen, 8 filter.
func recordStats(resp []byte) {
	path := os.Getenv("GITALY_STATS")
	if path == "" {
		return
	}
	var stats []byte
	if fs, err := parseFields(resp); err == nil {
		for _, f := range fs {
			if f.num == 1 {
				stats = f.bytes
			}
		}
	}
	names := map[int]string{1: "payload_size", 2: "packets", 4: "wants", 5: "haves", 6: "shallows", 7: "deepen", 8: "filter"}
	var caps []string
	line := []string{}
	fs, _ := parseFields(stats)
	for _, f := range fs {
		switch {
		case f.num == 3:
			caps = append(caps, string(f.bytes))
		case f.num == 7 || f.num == 8:
			line = append(line, fmt.Sprintf("%s=%q", names[f.num], f.bytes))
		case names[f.num] != "":
			line = append(line, fmt.Sprintf("%s=%d", names[f.num], f.varint))
		}
	}
	line = append(line, "caps="+strings.Join(caps, ","))
	if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintln(f, strings.Join(line, " "))
		f.Close()
	}
}
