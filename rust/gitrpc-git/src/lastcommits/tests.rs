use super::*;

const A: &str = "0a7071c198ddc7c303ff05bd1848180e78a0d2d0";
const B: &str = "76100bc17cac77f426938d3d96df4d04eba3159c";
const C: &str = "52e13217a3940e21ce95db5d61f192ea8b067284";
const D: &str = "7203a9e2732ee7918b3c4945c5a8654b04fa117c";
const R: &str = "e4d909afed68604b04740d806e5dc273c11880df";

/// `git log --full-history --sparse --raw -z` over `d/` of a small history (as git 2.47
/// prints it): A (TREESAME) ← B (merge of C and D) ← C changes d/a, D changes d/b and a
/// nested d/sub/x; R (root) adds both.
fn stream() -> Vec<u8> {
    let raw = |s: &str| format!(":100644 100644 {R} {A} {s}");
    let mut v = Vec::new();
    v.extend(format!("\x01{A} {B}\0").bytes());
    v.extend(format!("\x01{B} {C} {D}\0").bytes());
    v.extend(format!("\x01{C} {R}\0\n{}\0d/a\0", raw("M")).bytes());
    v.extend(format!("\x01{D} {R}\0\n{}\0d/b\0{}\0d/sub/x\0", raw("M"), raw("M")).bytes());
    v.extend(format!("\x01{R} \0\n{}\0d/a\0{}\0d/b\0", raw("A"), raw("A")).bytes());
    v
}

fn rec(commit: &str, parents: &[&str], changed: &[&str]) -> Record {
    Record {
        commit: commit.into(),
        parents: parents.iter().map(|p| p.to_string()).collect(),
        changed: changed.iter().map(|c| c.as_bytes().to_vec()).collect(),
    }
}

fn expected() -> Vec<Record> {
    vec![
        rec(A, &[B], &[]),
        rec(B, &[C, D], &[]),
        rec(C, &[R], &["a"]),
        rec(D, &[R], &["b", "sub"]),
        rec(R, &[], &["a", "b"]),
    ]
}

#[test]
fn parses_records_split_anywhere() {
    let s = stream();
    for cut in 0..=s.len() {
        let mut p = LogParser::new(b"d");
        let mut out = Vec::new();
        p.feed(&s[..cut], &mut out).unwrap();
        p.feed(&s[cut..], &mut out).unwrap();
        p.finish(&mut out).unwrap();
        assert_eq!(out, expected(), "cut at {cut}");
    }
    // Byte by byte.
    let mut p = LogParser::new(b"d");
    let mut out = Vec::new();
    for b in &s {
        p.feed(std::slice::from_ref(b), &mut out).unwrap();
    }
    p.finish(&mut out).unwrap();
    assert_eq!(out, expected());
}

#[test]
fn paths_that_look_like_records_are_paths() {
    let raw = format!(":100644 100644 {R} {A} M");
    let s = format!("\x01{A} {B}\0\n{raw}\0\x01odd\0{raw}\0:colon\0\x01{B} \0");
    let mut p = LogParser::new(b"");
    let mut out = Vec::new();
    p.feed(s.as_bytes(), &mut out).unwrap();
    p.finish(&mut out).unwrap();
    assert_eq!(
        out,
        vec![rec(A, &[B], &["\x01odd", ":colon"]), rec(B, &[], &[])]
    );
}

#[test]
fn garbage_is_a_protocol_error() {
    for bad in ["hello\0", "\x01not-hex\0", "\x01abc 12g\0"] {
        let mut p = LogParser::new(b"");
        let mut out = Vec::new();
        assert!(p.feed(bad.as_bytes(), &mut out).is_err(), "{bad:?}");
    }
    let mut p = LogParser::new(b"");
    let mut out = Vec::new();
    p.feed(format!("\x01{A} \0:100644 x M\0").as_bytes(), &mut out)
        .unwrap();
    assert!(p.finish(&mut out).is_err(), "raw line without its path");
}

fn dir(entries: &[(&str, &str)]) -> Dir {
    Dir {
        oid: Some(format!("{entries:?}")),
        entries: entries
            .iter()
            .map(|(n, o)| (n.as_bytes().to_vec(), (0o100644, o.to_string())))
            .collect(),
    }
}

fn names(n: &[&str]) -> Vec<Vec<u8>> {
    n.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn entries_follow_first_treesame_parents() {
    let mut w = Walk::new(A, names(&["a", "b", "c"]));
    let recs = expected();
    // A is TREESAME: everything goes to B.
    assert!(w.step(recs[0].clone()).is_none());
    // B merges C and D; in B, a is C's, b is D's, c is the same everywhere.
    let m = w
        .step(recs[1].clone())
        .expect("a merge with waiting entries");
    let mine = dir(&[("a", "a2"), ("b", "b2"), ("c", "c")]);
    let c = dir(&[("a", "a2"), ("b", "b1"), ("c", "c")]);
    let d = dir(&[("a", "a1"), ("b", "b2"), ("c", "c")]);
    w.resolve_merge(m, &mine, &[&c, &d]);
    // C changed a; c goes on to R.
    assert!(w.step(recs[2].clone()).is_none());
    assert!(!w.is_done());
    // D changed b.
    assert!(w.step(recs[3].clone()).is_none());
    assert!(!w.is_done());
    // R is the root: it added c.
    assert!(w.step(recs[4].clone()).is_none());
    assert!(w.is_done());
    assert!(w.leftovers().is_empty());
    assert_eq!(
        w.into_answers(),
        vec![Some(C.into()), Some(D.into()), Some(R.into())]
    );
}

#[test]
fn a_merge_that_changed_an_entry_answers_it() {
    let mut w = Walk::new(B, names(&["evil", "gone"]));
    let m = w.step(rec(B, &[C, D], &[])).unwrap();
    // "evil" differs from both parents; "gone" is absent here and in D only.
    let mine = dir(&[("evil", "3")]);
    let c = dir(&[("evil", "1"), ("gone", "x")]);
    let d = dir(&[("evil", "2")]);
    w.resolve_merge(m, &mine, &[&c, &d]);
    let left = w.leftovers();
    assert_eq!(left, vec![(D.to_string(), 1)]);
    let answers = w.into_answers();
    assert_eq!(answers, vec![Some(B.into()), None]);
}

#[test]
fn same_directory_in_the_first_parent_follows_it() {
    let mut w = Walk::new(B, names(&["x"]));
    let m = w.step(rec(B, &[C, D], &[])).unwrap();
    w.merge_to_first(m);
    assert!(w.step(rec(D, &[R], &["x"])).is_none(), "not on x's chain");
    assert!(!w.is_done());
    w.step(rec(C, &[R], &["x"]));
    assert_eq!(w.into_answers(), vec![Some(C.into())]);
}

#[test]
fn commits_printed_before_the_chain_reached_them_are_left_over() {
    // Clock skew: R is printed before C hands x to it.
    let mut w = Walk::new(C, names(&["x", "y"]));
    w.step(rec(R, &[], &["x", "y"]));
    w.step(rec(C, &[R], &["y"]));
    assert!(!w.is_done());
    assert_eq!(w.leftovers(), vec![(R.to_string(), 0)]);
    w.answer(0, R);
    assert!(w.is_done());
    assert_eq!(w.into_answers(), vec![Some(R.into()), Some(C.into())]);
}

#[test]
fn no_entries_is_done_at_once() {
    let w = Walk::new(A, Vec::new());
    assert!(w.is_done());
}
