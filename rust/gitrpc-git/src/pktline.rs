//! Where, in what a client sends to `git upload-pack` / `git upload-archive`, it asks for the
//! expensive part: so a `[pack_objects_limiting]` slot is taken when pack generation starts,
//! not while a client idles before (or during) negotiation.
//!
//! [`PackRequest`] follows the pkt-lines of the client's input (split anywhere across
//! chunks) and reports the line that makes git start generating:
//!
//! - upload-pack, protocol v0/v1: the `done` line that ends negotiation. A client that
//!   announced `no-done` (stateless HTTP clients do) may get its pack after a flush of
//!   `have`s instead, so for it the trigger is the first flush after the wants' flush.
//! - upload-pack, protocol v2: a `command=fetch` request (its negotiation rounds are short
//!   request/response exchanges; `ls-refs` needs no slot).
//! - upload-archive: the flush that ends the client's arguments.
//!
//! Holding back that line's bytes until a slot is granted is enough: git acts on a pkt-line
//! only once all of it has arrived.

/// Which service the input goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    UploadPack,
    UploadArchive,
}

/// Bytes of a line kept for inspection (capabilities follow the first want).
const KEEP: usize = 65520;

/// Follows a client's pkt-lines until the pack-generating one (see the module docs).
#[derive(Debug)]
pub struct PackRequest {
    service: Service,
    header: [u8; 4],
    have: usize,
    /// Payload bytes of the current line still to come, and what is kept of it.
    remaining: usize,
    line: Vec<u8>,
    wants: bool,
    no_done: bool,
    flushes_after_wants: usize,
    /// Found, or the input isn't pkt-lines (git will reject it): stop looking.
    finished: bool,
}

impl PackRequest {
    pub fn new(service: Service) -> PackRequest {
        PackRequest {
            service,
            header: [0; 4],
            have: 0,
            remaining: 0,
            line: Vec::new(),
            wants: false,
            no_done: false,
            flushes_after_wants: 0,
            finished: false,
        }
    }

    /// Follow `data`. Returns where in `data` the pack-generating line starts (0 if it began
    /// in an earlier chunk) the first time one completes in it; `None` otherwise.
    pub fn feed(&mut self, data: &[u8]) -> Option<usize> {
        let mut i = 0;
        let mut start = 0;
        while i < data.len() && !self.finished {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len() - i);
                let keep = n.min(KEEP.saturating_sub(self.line.len()));
                self.line.extend_from_slice(&data[i..i + keep]);
                self.remaining -= n;
                i += n;
                if self.remaining == 0 && self.line_done() {
                    return self.found(start);
                }
                continue;
            }
            if self.have == 0 {
                start = i;
            }
            self.header[self.have] = data[i];
            self.have += 1;
            i += 1;
            if self.have < 4 {
                continue;
            }
            self.have = 0;
            let Some(len) = std::str::from_utf8(&self.header)
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok())
            else {
                self.finished = true;
                return None;
            };
            match len {
                0 => {
                    if self.flush() {
                        return self.found(start);
                    }
                }
                1..=3 => {} // delim, response-end
                _ => {
                    self.line.clear();
                    self.remaining = len - 4;
                    if self.remaining == 0 && self.line_done() {
                        return self.found(start);
                    }
                }
            }
        }
        None
    }

    fn found(&mut self, start: usize) -> Option<usize> {
        self.finished = true;
        Some(start)
    }

    /// A flush-pkt: does it start generation?
    fn flush(&mut self) -> bool {
        match self.service {
            Service::UploadArchive => true,
            Service::UploadPack => {
                if self.wants {
                    self.flushes_after_wants += 1;
                }
                self.no_done && self.flushes_after_wants >= 2
            }
        }
    }

    /// A whole line: does it start generation?
    fn line_done(&mut self) -> bool {
        if self.service == Service::UploadArchive {
            return false;
        }
        let line = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        if line == b"done" || line == b"command=fetch" {
            return true;
        }
        if line.starts_with(b"want ") {
            if !self.wants {
                // v0/v1 capabilities follow the first want's object id.
                self.no_done = line.split(|b| *b == b' ').any(|w| w == b"no-done");
            }
            self.wants = true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(s: &str) -> Vec<u8> {
        format!("{:04x}{s}", s.len() + 4).into_bytes()
    }

    fn input(lines: &[&str]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| match *l {
                "0000" | "0001" => l.as_bytes().to_vec(),
                l => pkt(l),
            })
            .collect()
    }

    /// The trigger's offset, fed in one piece and one byte at a time.
    fn trigger(service: Service, data: &[u8]) -> Option<usize> {
        let whole = PackRequest::new(service).feed(data);
        let mut bytewise = PackRequest::new(service);
        let split = (0..data.len()).find(|&i| bytewise.feed(&data[i..=i]).is_some());
        assert_eq!(whole.is_some(), split.is_some());
        if let (Some(w), Some(s)) = (whole, split) {
            // Found on the line's last byte, which starts at `w`.
            assert!(s >= w);
        }
        whole
    }

    const OID: &str = "1234567890123456789012345678901234567890";

    #[test]
    fn v0_clone_triggers_at_done() {
        let want = format!("want {OID} multi_ack_detailed side-band-64k ofs-delta\n");
        let head = input(&[&want, "0000"]);
        let all = [head.clone(), input(&["done\n"])].concat();
        assert_eq!(trigger(Service::UploadPack, &all), Some(head.len()));
        // Wants and haves without done: negotiation only.
        let have = format!("have {OID}\n");
        let nego = [head.clone(), input(&[&have, "0000", &have, "0000"])].concat();
        assert_eq!(trigger(Service::UploadPack, &nego), None);
        // ls-remote: a flush and nothing else.
        assert_eq!(trigger(Service::UploadPack, b"0000"), None);
    }

    #[test]
    fn no_done_triggers_at_the_flush_after_haves() {
        let want = format!("want {OID} side-band-64k no-done\n");
        let have = format!("have {OID}\n");
        let first = input(&[&want, "0000", &have]);
        let all = [first.clone(), input(&["0000"])].concat();
        assert_eq!(trigger(Service::UploadPack, &all), Some(first.len()));
    }

    #[test]
    fn v2_triggers_at_fetch_not_ls_refs() {
        let ls = input(&[
            "command=ls-refs\n",
            "agent=git/2\n",
            "0001",
            "peel\n",
            "0000",
        ]);
        assert_eq!(trigger(Service::UploadPack, &ls), None);
        let want = format!("want {OID}\n");
        let fetch = input(&["command=fetch\n", "0001", &want, "done\n", "0000"]);
        let all = [ls.clone(), fetch].concat();
        assert_eq!(trigger(Service::UploadPack, &all), Some(ls.len()));
    }

    #[test]
    fn archive_triggers_at_the_arguments_flush() {
        let args = input(&["argument --format=tar\n", "argument HEAD\n"]);
        let all = [args.clone(), b"0000".to_vec()].concat();
        assert_eq!(trigger(Service::UploadArchive, &all), Some(args.len()));
    }

    #[test]
    fn garbage_stops_looking() {
        assert_eq!(trigger(Service::UploadPack, b"zzzz0009done\n"), None);
    }
}
