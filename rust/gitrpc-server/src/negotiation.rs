//! What a client asked for in an upload-pack negotiation (Gitaly's
//! `internal/git/stats/packfile_negotiation.go`, ported with its tests): the pkt-lines of the
//! request are scanned as they arrive, up to `done`. For each packet the payload, less one
//! trailing newline, is counted in `payload_size`; `command=`/`agent=` lines name the
//! command and agent; `want` (the first one's further words are the capabilities),
//! `shallow`, `deepen`/`deepen-since`/`deepen-not`, `filter` and `have` are counted or kept.
//! Every packet counts in `packets` except `done`. A malformed line stops the parse, keeping
//! what was found so far (the statistics are informative, never fatal).

use gitrpc_proto::gitaly::PackfileNegotiationStatistics;

/// The largest pkt-line (header included), as git's.
pub const MAX_PKT: usize = 65520;

/// An incremental parser of a negotiation (see the module docs).
#[derive(Debug, Default)]
pub struct Negotiation {
    pub payload_size: i64,
    pub packets: i64,
    /// `None` until a want line announces capabilities.
    pub caps: Option<Vec<String>>,
    pub wants: i64,
    pub haves: i64,
    pub shallows: i64,
    pub deepen: String,
    pub filter: String,
    pub command: String,
    pub user_agent: String,
    /// Bytes of an incomplete packet.
    buf: Vec<u8>,
    state: State,
}

#[derive(Debug, Default, PartialEq)]
enum State {
    #[default]
    Parsing,
    Done,
    Failed(String),
}

impl Negotiation {
    /// Scan more of the request.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while self.state == State::Parsing && !bytes.is_empty() {
            // Complete the packet in progress (or its header) from `bytes`.
            let want = match self.buf.len() {
                n if n < 4 => 4 - n,
                _ => match packet_len(&self.buf[..4]) {
                    Some(len) => len.max(4) - self.buf.len(),
                    None => return self.fail_header(),
                },
            };
            let take = want.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.buf.len() < 4 {
                return;
            }
            let len = match packet_len(&self.buf[..4]) {
                Some(len) => len,
                None => return self.fail_header(),
            };
            if self.buf.len() < len.max(4) {
                continue;
            }
            let packet = std::mem::take(&mut self.buf);
            self.packet(if len < 4 { &[] } else { &packet[4..] });
        }
    }

    fn fail_header(&mut self) {
        let header = String::from_utf8_lossy(&self.buf[..4.min(self.buf.len())]).into_owned();
        self.fail(format!("invalid pkt-line length {header:?}"));
    }

    fn fail(&mut self, why: String) {
        self.state = State::Failed(why);
        self.buf = Vec::new();
    }

    /// One packet's payload (empty for `0000`–`0003`).
    fn packet(&mut self, payload: &[u8]) {
        let data = payload.strip_suffix(b"\n").unwrap_or(payload);
        let data = String::from_utf8_lossy(data);
        self.payload_size += data.len() as i64;
        let split: Vec<&str> = data.split(' ').collect();
        let first = split[0];
        let words = split.len();
        let bad = |what: &str| {
            Err(format!(
                "invalid '{what}' in packet {}: {data}",
                self.packets
            ))
        };
        let result = if let Some(command) = first.strip_prefix("command=") {
            self.command = command.to_string();
            Ok(())
        } else if let Some(agent) = first.strip_prefix("agent=") {
            self.user_agent = agent.to_string();
            Ok(())
        } else {
            match first {
                "want" if words < 2 => bad("want"),
                "want" if words > 2 && self.caps.is_some() => Err(format!(
                    "capabilities announced multiple times in packet {}: {data}",
                    self.packets
                )),
                "want" => {
                    self.wants += 1;
                    if words > 2 {
                        let caps: Vec<String> = split[2..].iter().map(|c| c.to_string()).collect();
                        if let Some(agent) = caps.iter().find_map(|c| c.strip_prefix("agent=")) {
                            self.user_agent = agent.to_string();
                        }
                        self.caps = Some(caps);
                    }
                    Ok(())
                }
                "shallow" if words != 2 => bad("shallow"),
                "shallow" => {
                    self.shallows += 1;
                    Ok(())
                }
                "deepen" | "deepen-since" | "deepen-not" if words != 2 => bad("deepen"),
                "deepen" | "deepen-since" | "deepen-not" => {
                    self.deepen = data.to_string();
                    Ok(())
                }
                "filter" if words != 2 => bad("filter"),
                "filter" => {
                    self.filter = split[1].to_string();
                    Ok(())
                }
                "have" if words != 2 => bad("have"),
                "have" => {
                    self.haves += 1;
                    Ok(())
                }
                "done" => {
                    self.state = State::Done;
                    return;
                }
                _ => Ok(()),
            }
        };
        match result {
            Ok(()) => self.packets += 1,
            Err(e) => self.fail(e),
        }
    }

    /// Why parsing stopped early, if it did.
    pub fn error(&self) -> Option<&str> {
        match &self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    pub fn statistics(&self) -> PackfileNegotiationStatistics {
        PackfileNegotiationStatistics {
            payload_size: self.payload_size,
            packets: self.packets,
            caps: self.caps.clone().unwrap_or_default(),
            wants: self.wants,
            haves: self.haves,
            shallows: self.shallows,
            deepen: self.deepen.clone(),
            filter: self.filter.clone(),
        }
    }
}

/// The length in a pkt-line header (`0000`–`0003` are the special packets); `None` if the
/// header is not four hex digits or names a packet longer than git allows.
fn packet_len(header: &[u8]) -> Option<usize> {
    std::str::from_utf8(header)
        .ok()
        .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .filter(|&len| len <= MAX_PKT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID1: &str = "78fb81a02b03f0013360292ec5106763af32c287";
    const OID2: &str = "0f6394307cd7d4909be96a0c818d8094a4cb0e5b";

    fn pkt(s: &str) -> String {
        format!("{:04x}{s}\n", s.len() + 5)
    }

    /// Parse `input` fed in pieces of every size from 1 byte up, checking they all agree.
    fn parse(input: &str) -> Negotiation {
        let whole = {
            let mut n = Negotiation::default();
            n.feed(input.as_bytes());
            n
        };
        for step in [1, 2, 3, 5, 7, 64] {
            let mut n = Negotiation::default();
            for chunk in input.as_bytes().chunks(step) {
                n.feed(chunk);
            }
            assert_eq!(
                format!("{n:?}"),
                format!("{whole:?}"),
                "fed {step} bytes at a time"
            );
        }
        whole
    }

    fn stats(input: &str) -> PackfileNegotiationStatistics {
        let n = parse(input);
        assert_eq!(n.error(), None);
        n.statistics()
    }

    fn want(caps: &[&str], wants: i64, haves: i64) -> PackfileNegotiationStatistics {
        PackfileNegotiationStatistics {
            caps: caps.iter().map(|c| c.to_string()).collect(),
            wants,
            haves,
            ..Default::default()
        }
    }

    fn without_counts(mut s: PackfileNegotiationStatistics) -> PackfileNegotiationStatistics {
        s.payload_size = 0;
        s.packets = 0;
        s
    }

    #[test]
    fn invalid_pktline_is_an_error() {
        let input = format!(
            "{}0000{}{}",
            pkt(&format!("want {OID1} cap")),
            "0002xyz",
            pkt("done")
        );
        assert!(parse(&input).error().is_some());
    }

    #[test]
    fn single_want() {
        let s = stats(&format!(
            "{}0000{}",
            pkt(&format!("want {OID1} cap")),
            pkt("done")
        ));
        assert_eq!(without_counts(s), want(&["cap"], 1, 0));
    }

    #[test]
    fn missing_caps() {
        let s = stats(&format!(
            "{}0000{}",
            pkt(&format!("want {OID1}")),
            pkt("done")
        ));
        assert_eq!(without_counts(s), want(&[], 1, 0));
    }

    #[test]
    fn have() {
        let input = format!(
            "{}0000{}{}",
            pkt(&format!("want {OID1} cap")),
            pkt(&format!("have {OID2}")),
            pkt("done")
        );
        assert_eq!(without_counts(stats(&input)), want(&["cap"], 1, 1));
    }

    #[test]
    fn multiple_have_rounds() {
        let input = format!(
            "{}0000{}0000{}0000{}",
            pkt(&format!("want {OID1} cap")),
            pkt(&format!("have {OID2}")),
            pkt(&format!("have {OID1}")),
            pkt("done")
        );
        assert_eq!(without_counts(stats(&input)), want(&["cap"], 1, 2));
    }

    #[test]
    fn multiple_wants() {
        let input = format!(
            "{}{}0000{}",
            pkt(&format!("want {OID1} cap")),
            pkt(&format!("want {OID2}")),
            pkt("done")
        );
        assert_eq!(without_counts(stats(&input)), want(&["cap"], 2, 0));
    }

    #[test]
    fn multiple_cap_lines_are_an_error() {
        let input = format!(
            "{}{}0000{}",
            pkt(&format!("want {OID1} cap1")),
            pkt(&format!("want {OID2} cap2")),
            pkt("done")
        );
        let n = parse(&input);
        assert!(n
            .error()
            .unwrap()
            .contains("capabilities announced multiple times"));
        assert_eq!(n.wants, 1, "what was parsed before stays");
    }

    #[test]
    fn deepen_shallow_filter() {
        let base = |lines: &[String]| {
            let mut s = pkt(&format!("want {OID1} cap"));
            for l in lines {
                s.push_str(l);
            }
            s.push_str("0000");
            s.push_str(&pkt("done"));
            without_counts(stats(&s))
        };
        let s = base(&[pkt("deepen 1")]);
        assert_eq!(s.deepen, "deepen 1");
        let s = base(&[pkt("deepen 1"), pkt(&format!("deepen-not {OID2}"))]);
        assert_eq!(s.deepen, format!("deepen-not {OID2}"));
        let s = base(&[pkt(&format!("shallow {OID1}"))]);
        assert_eq!(s.shallows, 1);
        let s = base(&[
            pkt(&format!("shallow {OID1}")),
            pkt(&format!("shallow {OID2}")),
        ]);
        assert_eq!(s.shallows, 2);
        let s = base(&[pkt("filter blob:none")]);
        assert_eq!(s.filter, "blob:none");
        let s = base(&[pkt("filter blob:none"), pkt("filter blob:limit=1m")]);
        assert_eq!(s.filter, "blob:limit=1m");
    }

    #[test]
    fn command_and_agent() {
        let input = format!(
            "{}{}{}0000{}",
            pkt("command=fetch"),
            pkt("agent=git/foobar"),
            pkt(&format!("want {OID1} cap")),
            pkt("done")
        );
        let n = parse(&input);
        assert_eq!(
            (n.command.as_str(), n.user_agent.as_str()),
            ("fetch", "git/foobar")
        );
        let input = format!(
            "{}{}0000{}",
            pkt("command=fetch"),
            pkt(&format!("want {OID1} cap agent=git/foobar")),
            pkt("done")
        );
        let n = parse(&input);
        assert_eq!(n.user_agent, "git/foobar");
        assert_eq!(n.statistics().caps, ["cap", "agent=git/foobar"]);
    }

    /// A protocol v2 fetch: capabilities are lines of their own, a delimiter separates them
    /// from the arguments; counts include every packet but `done`, sizes exclude the headers
    /// and the newline.
    #[test]
    fn v2_fetch_counts() {
        let input = format!(
            "{}{}0001{}{}{}0000",
            pkt("command=fetch"),
            pkt("agent=git/2.47.3"),
            pkt("thin-pack"),
            pkt(&format!("want {OID1}")),
            pkt("done"),
        );
        let n = parse(&input);
        let s = n.statistics();
        assert_eq!((s.wants, s.haves), (1, 0));
        assert!(s.caps.is_empty());
        assert_eq!(s.packets, 5, "command, agent, delim, thin-pack, want");
        let want_line = 5 + OID1.len();
        assert_eq!(s.payload_size, (13 + 16 + 9 + want_line + 4) as i64);
        // Nothing after `done` is looked at.
        let mut n2 = n;
        n2.feed(pkt("have 1234").as_bytes());
        assert_eq!(n2.haves, 0);
    }
}
