//! A commit's signatures and the text they sign (GetCommitSignatures), parsed as git's
//! `parse_buffer_signed_by_header` and Gitaly's `ParseCommit` do; and a commit's message
//! (GetCommitMessages).

/// The signatures of a raw commit (`gpgsig` / `gpgsig-sha256` headers, continuation lines
/// joined, without their last newline; git only checks the first) and the payload they sign:
/// the object without them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignedCommit {
    pub signatures: Vec<Vec<u8>>,
    pub payload: Vec<u8>,
}

fn is_signature_header(key: &[u8]) -> bool {
    key == b"gpgsig" || key == b"gpgsig-sha256"
}

fn cut(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let sp = line.iter().position(|&b| b == b' ')?;
    Some((&line[..sp], &line[sp + 1..]))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Signature,
    /// Headers after a signature: part of the payload, not parsed.
    Unexpected,
}

/// Split a raw commit into its signatures and signed payload.
pub fn signed_commit(raw: &[u8]) -> SignedCommit {
    let mut payload = Vec::with_capacity(raw.len());
    let mut sigs: Vec<Vec<u8>> = Vec::new();
    let mut state = State::Header;
    let mut rest = raw;
    while !rest.is_empty() {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let line = &rest[..end];
        rest = &rest[end..];
        if line == b"\n" {
            // The message: everything from here is signed as is.
            payload.extend_from_slice(line);
            payload.extend_from_slice(rest);
            break;
        }
        if state == State::Signature {
            if let Some(more) = line.strip_prefix(b" ") {
                if let Some(last) = sigs.last_mut() {
                    last.extend_from_slice(more);
                }
                continue;
            }
            if let Some((_, value)) = cut(line).filter(|(k, _)| is_signature_header(k)) {
                sigs.push(value.to_vec());
                continue;
            }
            state = State::Unexpected;
        }
        match state {
            State::Header => {
                // A header line without a space is dropped (as git and Gitaly do).
                let Some((key, value)) = cut(line) else {
                    continue;
                };
                if is_signature_header(key) {
                    let mut v = value.strip_suffix(b"\n").unwrap_or(value).to_vec();
                    v.push(b'\n');
                    sigs.push(v);
                    state = State::Signature;
                    continue;
                }
                payload.extend_from_slice(line);
            }
            State::Unexpected | State::Signature => payload.extend_from_slice(line),
        }
    }
    for s in &mut sigs {
        if s.last() == Some(&b'\n') {
            s.pop();
        }
    }
    SignedCommit {
        signatures: sigs,
        payload,
    }
}

/// A raw commit's message: everything after the first empty line, whole (empty if none).
pub fn commit_message(raw: &[u8]) -> &[u8] {
    match raw.windows(2).position(|w| w == b"\n\n") {
        Some(i) => &raw[i + 2..],
        None => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "tree 798e5474fafac9754ee6b82ab17af8d70df4fbd3\nparent 86f06b3f55e6334abb99fc168e2dd925895c4e49\nauthor A <a@x> 1699964265 +0100\ncommitter A <a@x> 1699964265 +0100\n";

    #[test]
    fn a_signed_commit_splits_into_signature_and_payload() {
        let raw = format!(
            "{HEAD}gpgsig -----BEGIN SSH SIGNATURE-----\n U1NIU0lH\n \n -----END SSH SIGNATURE-----\n\nsubject\n\nbody\n"
        );
        let s = signed_commit(raw.as_bytes());
        assert_eq!(
            s.signatures,
            vec![
                b"-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n\n-----END SSH SIGNATURE-----".to_vec()
            ]
        );
        assert_eq!(
            String::from_utf8(s.payload).unwrap(),
            format!("{HEAD}\nsubject\n\nbody\n")
        );
    }

    #[test]
    fn headers_after_the_signature_stay_in_the_payload() {
        let raw = format!("{HEAD}gpgsig-sha256 one\n two\ngpgsig second\n more\nmergetag x\n\nmsg");
        let s = signed_commit(raw.as_bytes());
        assert_eq!(
            s.signatures,
            vec![b"one\ntwo".to_vec(), b"second\nmore".to_vec()]
        );
        assert_eq!(
            String::from_utf8(s.payload).unwrap(),
            format!("{HEAD}mergetag x\n\nmsg")
        );
    }

    #[test]
    fn unsigned_commits_have_no_signature() {
        let raw = format!("{HEAD}\nmsg\n");
        let s = signed_commit(raw.as_bytes());
        assert!(s.signatures.is_empty());
        assert_eq!(s.payload, raw.as_bytes());
    }

    #[test]
    fn messages() {
        assert_eq!(
            commit_message(b"tree x\n\nsubject\n\nbody\n"),
            b"subject\n\nbody\n"
        );
        assert_eq!(commit_message(b"tree x\n\n"), b"");
        assert_eq!(commit_message(b"tree x\n"), b"");
    }
}
