//! Commit and tag objects as printed by `git cat-file`: headers, signatures, messages.

/// Messages longer than this are truncated in responses (the full size is reported), as
/// Gitaly does.
pub const MAX_MESSAGE_SIZE: usize = 10 * 1024;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signature {
    pub name: Vec<u8>,
    pub email: Vec<u8>,
    /// Seconds since the epoch.
    pub time: i64,
    /// As written, e.g. `+0100`.
    pub timezone: Vec<u8>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureKind {
    #[default]
    None,
    Pgp,
    X509,
    Ssh,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub author: Signature,
    pub committer: Signature,
    pub encoding: String,
    pub signature: SignatureKind,
    pub subject: Vec<u8>,
    /// The message, truncated to [`MAX_MESSAGE_SIZE`].
    pub body: Vec<u8>,
    /// Size of the full message.
    pub body_size: usize,
    /// `Key: value` lines of the message's last paragraph.
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tag {
    pub id: String,
    pub object: String,
    pub object_type: String,
    pub name: Vec<u8>,
    pub tagger: Option<Signature>,
    pub signature: SignatureKind,
    /// The message without its signature, truncated to [`MAX_MESSAGE_SIZE`].
    pub message: Vec<u8>,
    pub message_size: usize,
}

/// Split a raw object into (header lines, message). Continuation lines (starting with a
/// space) are joined to their header.
/// `(name, value)` header lines of an object.
type Headers<'a> = Vec<(&'a [u8], Vec<u8>)>;

fn split_headers(raw: &[u8]) -> (Headers<'_>, &[u8]) {
    let mut headers: Headers<'_> = Vec::new();
    let mut rest = raw;
    loop {
        let (line, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if line.is_empty() {
            return (headers, tail);
        }
        if line[0] == b' ' {
            if let Some(last) = headers.last_mut() {
                last.1.push(b'\n');
                last.1.extend_from_slice(&line[1..]);
            }
        } else {
            let sp = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
            let value = line.get(sp + 1..).unwrap_or_default().to_vec();
            headers.push((&line[..sp], value));
        }
        rest = tail;
        if rest.is_empty() {
            return (headers, rest);
        }
    }
}

/// Parse `Name <email> 1700000000 +0100`.
pub fn parse_signature(v: &[u8]) -> Signature {
    let open = v.iter().position(|&b| b == b'<');
    let close = v.iter().rposition(|&b| b == b'>');
    let (Some(open), Some(close)) = (open, close) else {
        return Signature {
            name: v.to_vec(),
            ..Default::default()
        };
    };
    if close < open {
        return Signature {
            name: v.to_vec(),
            ..Default::default()
        };
    }
    let name = trim(&v[..open]).to_vec();
    let email = v[open + 1..close].to_vec();
    let rest = String::from_utf8_lossy(&v[close + 1..]).to_string();
    let mut it = rest.split_whitespace();
    let time = it.next().and_then(|t| t.parse::<i64>().ok()).unwrap_or(0);
    let timezone = it.next().unwrap_or("+0000").as_bytes().to_vec();
    Signature {
        name,
        email,
        time,
        timezone,
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

fn signature_kind(sig: &[u8]) -> SignatureKind {
    if sig.starts_with(b"-----BEGIN PGP SIGNATURE-----") {
        SignatureKind::Pgp
    } else if sig.starts_with(b"-----BEGIN SIGNED MESSAGE-----") {
        SignatureKind::X509
    } else if sig.starts_with(b"-----BEGIN SSH SIGNATURE-----") {
        SignatureKind::Ssh
    } else {
        SignatureKind::None
    }
}

/// The first line of a message, without trailing CR.
pub fn subject(message: &[u8]) -> Vec<u8> {
    let first = message.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut end = first.len();
    while end > 0 && first[end - 1] == b'\r' {
        end -= 1;
    }
    first[..end].to_vec()
}

fn truncate(message: &[u8]) -> Vec<u8> {
    message[..message.len().min(MAX_MESSAGE_SIZE)].to_vec()
}

/// `Key: value` lines of the last paragraph (simplified `git interpret-trailers --parse`).
pub fn trailers(message: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let text = trim(message);
    let last = match text.windows(2).rposition(|w| w == b"\n\n") {
        Some(i) => &text[i + 2..],
        None => return Vec::new(),
    };
    let mut out = Vec::new();
    for line in last.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Vec::new();
        };
        let key = &line[..colon];
        if key.is_empty() || !key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
            return Vec::new();
        }
        out.push((key.to_vec(), trim(&line[colon + 1..]).to_vec()));
    }
    out
}

/// Parse a raw commit object.
pub fn parse_commit(id: &str, raw: &[u8]) -> Commit {
    let (headers, message) = split_headers(raw);
    let mut c = Commit {
        id: id.to_string(),
        ..Default::default()
    };
    for (k, v) in headers {
        match k {
            b"tree" => c.tree = String::from_utf8_lossy(&v).into_owned(),
            b"parent" => c.parents.push(String::from_utf8_lossy(&v).into_owned()),
            b"author" => c.author = parse_signature(&v),
            b"committer" => c.committer = parse_signature(&v),
            b"encoding" => c.encoding = String::from_utf8_lossy(&v).into_owned(),
            b"gpgsig" | b"gpgsig-sha256" => c.signature = signature_kind(&v),
            _ => {}
        }
    }
    c.subject = subject(message);
    c.body = truncate(message);
    c.body_size = message.len();
    c.trailers = trailers(message);
    c
}

/// Parse a raw annotated tag object.
pub fn parse_tag(id: &str, raw: &[u8]) -> Tag {
    let (headers, message) = split_headers(raw);
    let mut t = Tag {
        id: id.to_string(),
        ..Default::default()
    };
    for (k, v) in headers {
        match k {
            b"object" => t.object = String::from_utf8_lossy(&v).into_owned(),
            b"type" => t.object_type = String::from_utf8_lossy(&v).into_owned(),
            b"tag" => t.name = v,
            b"tagger" => t.tagger = Some(parse_signature(&v)),
            _ => {}
        }
    }
    let mut body = message;
    for marker in [
        &b"-----BEGIN PGP SIGNATURE-----"[..],
        b"-----BEGIN SIGNED MESSAGE-----",
        b"-----BEGIN SSH SIGNATURE-----",
    ] {
        if let Some(i) = message.windows(marker.len()).position(|w| w == marker) {
            t.signature = signature_kind(&message[i..]);
            body = &message[..i];
            break;
        }
    }
    t.message = truncate(body);
    t.message_size = body.len();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_fields() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent 1111111111111111111111111111111111111111\nauthor A U Thor <a@example.com> 1700000000 +0130\ncommitter C O Mitter <c@example.com> 1700000100 -0800\ngpgsig -----BEGIN SSH SIGNATURE-----\n abc\n -----END SSH SIGNATURE-----\n\nSubject line\r\n\nBody text\n\nSigned-off-by: A <a@example.com>\n";
        let c = parse_commit("abc", raw);
        assert_eq!(c.tree, "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
        assert_eq!(c.parents.len(), 1);
        assert_eq!(c.author.name, b"A U Thor");
        assert_eq!(c.author.email, b"a@example.com");
        assert_eq!(c.author.time, 1700000000);
        assert_eq!(c.author.timezone, b"+0130");
        assert_eq!(c.committer.timezone, b"-0800");
        assert_eq!(c.signature, SignatureKind::Ssh);
        assert_eq!(c.subject, b"Subject line");
        assert!(c.body.starts_with(b"Subject line\r\n\nBody text"));
        assert_eq!(
            c.trailers,
            vec![(b"Signed-off-by".to_vec(), b"A <a@example.com>".to_vec())]
        );
    }

    #[test]
    fn long_message_truncated_with_full_size() {
        let mut raw = b"tree t\nauthor a <a> 1 +0000\ncommitter a <a> 1 +0000\n\n".to_vec();
        raw.extend(std::iter::repeat_n(b'x', MAX_MESSAGE_SIZE + 10));
        let c = parse_commit("x", &raw);
        assert_eq!(c.body.len(), MAX_MESSAGE_SIZE);
        assert_eq!(c.body_size, MAX_MESSAGE_SIZE + 10);
    }
}
