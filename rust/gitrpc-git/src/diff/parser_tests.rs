//! Unit tests of the CommitDiff parser on git's own output (made with git 2.47:
//! `git diff --patch --raw --find-renames=30% --abbrev=40 --full-index`). Gitaly's
//! `TestCommitDiff_limits` table runs on this repository too (three files a.aa, b.bb, c.cc).

use super::*;

/// Gitaly's three-file repository (`TestCommitDiff_limits`).
const LIMITS: &str = r#"
:100644 100644 6f8a38cd879498e783366f340c30dcbfb9022d67 449b07274bce2614efa340c4af18c38c7ffb6afa M	a.aa
:100644 100644 087179c43bb45390012bcce100ee4d2c9a67c8eb 02b71401bdd54b103cc6fcf85ece8fc89902ec2c M	b.bb
:100644 100644 3f394a50964fac0c397bd84de7664118cffa3d96 c792c5a7e05973325fcf44ca1781f9788c4683fe M	c.cc

diff --git a/a.aa b/a.aa
index 6f8a38cd879498e783366f340c30dcbfb9022d67..449b07274bce2614efa340c4af18c38c7ffb6afa 100644
--- a/a.aa
+++ b/a.aa
@@ -1,7 +1,7 @@
 a
 a
 a
-a
+b
 a
 a
 a
diff --git a/b.bb b/b.bb
index 087179c43bb45390012bcce100ee4d2c9a67c8eb..02b71401bdd54b103cc6fcf85ece8fc89902ec2c 100644
--- a/b.bb
+++ b/b.bb
@@ -2,7 +2,13 @@ b
 b
 b
 
-this line is a bit longer and will change
+multiple
+lines
+are
+inserted
+into
+the
+middle
 b
 b
 b
diff --git a/c.cc b/c.cc
index 3f394a50964fac0c397bd84de7664118cffa3d96..c792c5a7e05973325fcf44ca1781f9788c4683fe 100644
--- a/c.cc
+++ b/c.cc
@@ -1,7 +1,7 @@
-will change up front
+some changes up front
 c
 c
 c
 c
 c
-will change in the end
+some changes in the end
"#;

#[derive(Debug, PartialEq, Eq)]
struct Seen {
    path: String,
    collapsed: bool,
    overflow: bool,
    too_large: bool,
    patch: Vec<u8>,
    added: i32,
    removed: i32,
}

async fn parse(input: &str, limits: Limits) -> Vec<Seen> {
    parse_bytes(input.as_bytes(), limits).await.unwrap()
}

async fn parse_bytes(input: &[u8], limits: Limits) -> Result<Vec<Seen>, DiffError> {
    let mut p = Parser::new(input, 40, limits, PatchBuf::new(None, 1 << 20)).await?;
    let mut out = Vec::new();
    while let Some(d) = p.next().await? {
        let complete = p.patch().is_complete();
        let patch = p.patch().to_vec().unwrap();
        assert!(complete || patch.is_empty());
        // Every sent patch is stored whole.
        if !d.collapsed && !d.too_large && !d.overflow_marker {
            assert!(complete, "{d:?}");
        }
        out.push(Seen {
            path: String::from_utf8_lossy(&d.from_path).into_owned(),
            collapsed: d.collapsed,
            overflow: d.overflow_marker,
            too_large: d.too_large,
            patch: if complete {
                patch
            } else {
                b"<dropped>".to_vec()
            },
            added: d.lines_added,
            removed: d.lines_removed,
        });
    }
    Ok(out)
}

fn enforced() -> Limits {
    Limits {
        enforce_limits: true,
        max_files: 9000,
        max_lines: 9000,
        max_bytes: 9000,
        max_patch_bytes: 9000,
        ..Default::default()
    }
}

/// (path, collapsed, overflow, too_large) of each response.
fn flags(s: &[Seen]) -> Vec<(&str, bool, bool, bool)> {
    s.iter()
        .map(|d| (d.path.as_str(), d.collapsed, d.overflow, d.too_large))
        .collect()
}

const F: bool = false;
const T: bool = true;

#[tokio::test]
async fn gitalys_limits_table() {
    let input = &LIMITS[1..];
    let all = parse(input, Limits::default()).await;
    assert_eq!(
        flags(&all),
        [("a.aa", F, F, F), ("b.bb", F, F, F), ("c.cc", F, F, F)]
    );
    assert_eq!(
        all[0].patch,
        b"@@ -1,7 +1,7 @@\n a\n a\n a\n-a\n+b\n a\n a\n a\n"
    );
    assert_eq!((all[1].added, all[1].removed), (7, 1));
    /// (path, collapsed, overflow, too_large) per file answered.
    type Flags<'a> = Vec<(&'a str, bool, bool, bool)>;
    let cases: Vec<(&str, Limits, Flags)> = vec![
        (
            "max files",
            Limits {
                max_files: 2,
                ..enforced()
            },
            vec![("a.aa", F, F, F), ("b.bb", F, F, F), ("", F, T, F)],
        ),
        (
            "max files, all paths",
            Limits {
                max_files: 2,
                collect_all_paths: true,
                ..enforced()
            },
            vec![("a.aa", F, F, F), ("b.bb", F, F, F), ("c.cc", F, T, F)],
        ),
        (
            "max lines",
            Limits {
                max_lines: 30,
                ..enforced()
            },
            vec![("a.aa", F, F, F), ("b.bb", F, F, F), ("", F, T, F)],
        ),
        (
            "max lines, all paths",
            Limits {
                max_lines: 30,
                collect_all_paths: true,
                ..enforced()
            },
            vec![("a.aa", F, F, F), ("b.bb", F, F, F), ("c.cc", F, T, F)],
        ),
        (
            "max bytes",
            Limits {
                max_bytes: 150,
                ..enforced()
            },
            vec![("a.aa", F, F, F), ("b.bb", F, F, F), ("", F, T, F)],
        ),
        (
            "max bytes, all paths",
            Limits {
                max_bytes: 150,
                collect_all_paths: true,
                ..enforced()
            },
            vec![("a.aa", F, F, F), ("b.bb", F, F, F), ("c.cc", F, T, F)],
        ),
        (
            "patch bytes by extension",
            Limits {
                max_patch_bytes: 10,
                max_patch_bytes_for_extension: [(b".bb".to_vec(), 9000)].into(),
                ..enforced()
            },
            vec![("a.aa", F, F, T), ("b.bb", F, F, F), ("c.cc", F, F, T)],
        ),
        (
            "safe files",
            Limits {
                collapse_diffs: true,
                safe_max_files: 1,
                safe_max_lines: 9000,
                safe_max_bytes: 9000,
                ..enforced()
            },
            vec![("a.aa", F, F, F), ("b.bb", T, F, F), ("c.cc", T, F, F)],
        ),
        (
            "safe lines",
            Limits {
                collapse_diffs: true,
                safe_max_files: 9000,
                safe_max_lines: 20,
                safe_max_bytes: 9000,
                ..enforced()
            },
            vec![("a.aa", F, F, F), ("b.bb", T, F, F), ("c.cc", F, F, F)],
        ),
        (
            "safe bytes",
            Limits {
                collapse_diffs: true,
                safe_max_files: 9000,
                safe_max_lines: 9000,
                safe_max_bytes: 120,
                ..enforced()
            },
            vec![("a.aa", F, F, F), ("b.bb", T, F, F), ("c.cc", F, F, F)],
        ),
        // max_patch_bytes 0: every file with a patch section is too large.
        (
            "max patch bytes 0",
            Limits {
                max_patch_bytes: 0,
                ..enforced()
            },
            vec![("a.aa", F, F, T), ("b.bb", F, F, T), ("c.cc", F, F, T)],
        ),
        // A negative max_files overflows at the first file.
        (
            "negative max files",
            Limits {
                max_files: -1,
                ..enforced()
            },
            vec![("", F, T, F)],
        ),
        // Without enforce_limits the max values don't count.
        (
            "not enforced",
            Limits {
                max_files: 1,
                max_patch_bytes: 1,
                ..Default::default()
            },
            vec![("a.aa", F, F, F), ("b.bb", F, F, F), ("c.cc", F, F, F)],
        ),
    ];
    for (name, limits, want) in cases {
        let got = parse(input, limits).await;
        assert_eq!(flags(&got), want, "{name}");
        for d in &got {
            if d.collapsed || d.too_large || d.overflow {
                assert!(d.patch.is_empty(), "{name}: {d:?}");
            } else {
                assert_eq!(
                    d.patch,
                    all.iter().find(|a| a.path == d.path).unwrap().patch,
                    "{name}"
                );
            }
        }
    }
    // After an overflow with collect_all_paths, later files keep their counts but no patch.
    let got = parse(
        input,
        Limits {
            max_files: 1,
            collect_all_paths: true,
            ..enforced()
        },
    )
    .await;
    assert_eq!(
        flags(&got),
        [("a.aa", F, F, F), ("b.bb", F, T, F), ("c.cc", F, T, F)]
    );
    assert_eq!(
        (got[2].added, got[2].removed, got[2].patch.len()),
        (2, 2, 0)
    );
}

#[tokio::test]
async fn collapsed_patches_are_not_stored() {
    // safe_max_files 0: every patch is collapsed; its bytes are given up as soon as the
    // first content line shows it will be (the parser asserts nothing sent was dropped).
    let input = &LIMITS[1..];
    let got = parse(
        input,
        Limits {
            collapse_diffs: true,
            ..Default::default()
        },
    )
    .await;
    assert!(got.iter().all(|d| d.collapsed && d.patch.is_empty()));
}

#[tokio::test]
async fn type_changes_binary_renames_and_empty_patches() {
    let a = "8d14cbf983b3fad683171c9418998d9f68340823";
    let b = "3f899ea7ab51da801dbacbf633c168b0591d7765";
    let c = "587be6b4c3f93f93c489c0111bba5596147a26cb";
    let d = "d5d0b8b4c4c9e936890870f6799cfbb5ba984470";
    let e = "4a270318359d8c2a960136495bceeae9eee22424";
    let z = "0000000000000000000000000000000000000000";
    let input = format!(
        ":100644 100644 {d} {e} M\tbin\n\
         :100644 100644 {c} {c} R100\t\"caf\\351.txt\"\t\"caf\\3512.txt\"\n\
         :120000 100644 {a} {b} T\tlink\n\
         :100644 100755 {c} {c} M\tmode\n\
         :100644 100644 {c} {e} M\tws\n\
         \n\
         diff --git a/bin b/bin\n\
         index {d}..{e} 100644\n\
         Binary files a/bin and b/bin differ\n\
         diff --git \"a/caf\\351.txt\" \"b/caf\\3512.txt\"\n\
         similarity index 100%\n\
         rename from \"caf\\351.txt\"\n\
         rename to \"caf\\3512.txt\"\n\
         diff --git a/link b/link\n\
         deleted file mode 120000\n\
         index {a}..{z}\n\
         --- a/link\n\
         +++ /dev/null\n\
         @@ -1 +0,0 @@\n\
         -a.txt\n\
         \\ No newline at end of file\n\
         diff --git a/link b/link\n\
         new file mode 100644\n\
         index {z}..{b}\n\
         --- /dev/null\n\
         +++ b/link\n\
         @@ -0,0 +1 @@\n\
         +now a file\n\
         diff --git a/mode b/mode\n\
         old mode 100644\n\
         new mode 100755\n"
    );
    let mut p = Parser::new(
        input.as_bytes(),
        40,
        Limits::default(),
        PatchBuf::new(None, 1 << 20),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    while let Some(d) = p.next().await.unwrap() {
        got.push((d, p.patch().to_vec().unwrap()));
    }
    assert_eq!(got.len(), 6);
    assert!(got[0].0.binary);
    assert_eq!(got[0].1, b"Binary files a/bin and b/bin differ\n");
    assert_eq!(got[1].0.from_path, b"caf\xe9.txt");
    assert_eq!(got[1].0.to_path, b"caf\xe92.txt");
    assert!(got[1].1.is_empty());
    // The type change: a deletion, then an addition.
    let (del, add) = (&got[2].0, &got[3].0);
    assert_eq!(
        (del.old_mode, del.new_mode, del.to_id.as_str()),
        (0o120000, 0, z)
    );
    assert_eq!(
        got[2].1,
        b"@@ -1 +0,0 @@\n-a.txt\n\\ No newline at end of file\n"
    );
    assert_eq!((del.lines_added, del.lines_removed), (0, 1));
    assert_eq!(
        (
            add.old_mode,
            add.new_mode,
            add.from_id.as_str(),
            add.to_id.as_str()
        ),
        (0, 0o100644, z, b)
    );
    assert_eq!(got[3].1, b"@@ -0,0 +1 @@\n+now a file\n");
    // A mode change has a header and no patch; a file without a section (whitespace
    // ignored) has neither.
    assert_eq!(
        (got[4].0.to_path.as_slice(), got[4].1.len()),
        (&b"mode"[..], 0)
    );
    assert_eq!(
        (got[5].0.to_path.as_slice(), got[5].1.len()),
        (&b"ws"[..], 0)
    );
}

#[tokio::test]
async fn long_lines_and_word_diff() {
    let a = "de980441c3ab03a8c07dda1ad27b8a11f39deb1e";
    let b = "7be73ce3c1b1cdaea86e8168dfee8575175953bf";
    let long = "x".repeat(600_000);
    let input = format!(
        ":100644 100644 {a} {b} M\tw\n\ndiff --git a/w b/w\nindex {a}..{b} 100644\n--- a/w\n+++ b/w\n\
         @@ -1 +1 @@\n file with \n-multiple\n+changed\n  words\n~\n+{long}"
    );
    let got = parse(&input, Limits::default()).await;
    assert_eq!((got[0].added, got[0].removed), (2, 1));
    let want = format!("@@ -1 +1 @@\n file with \n-multiple\n+changed\n  words\n~\n+{long}");
    assert_eq!(got[0].patch, want.as_bytes());
    // With max_patch_bytes the long patch is too large, and was never stored.
    let got = parse(
        &input,
        Limits {
            max_patch_bytes: 1000,
            ..enforced()
        },
    )
    .await;
    assert!(got[0].too_large && got[0].patch.is_empty());
}

#[tokio::test]
async fn parse_failures() {
    let e = parse_bytes(b":100644 100644 x y M\ta\n\n", Limits::default())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "raw line regexp mismatch");
    let a = "de980441c3ab03a8c07dda1ad27b8a11f39deb1e";
    let input = format!(":100644 100644 {a} {a} M\ta\n\nnot a header\n");
    let e = parse_bytes(input.as_bytes(), Limits::default())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "diff header regexp mismatch");
    // No output at all (an unknown revision): no files.
    assert!(parse_bytes(b"", Limits::default())
        .await
        .unwrap()
        .is_empty());
}

#[test]
fn patch_limit_by_extension_is_gos() {
    let l = Limits {
        enforce_limits: true,
        max_patch_bytes: 1,
        max_patch_bytes_for_extension: [
            (b".gz".to_vec(), 2),
            (b"Makefile".to_vec(), 3),
            (b".gitignore".to_vec(), 4),
        ]
        .into(),
        ..Default::default()
    };
    assert_eq!(l.max_patch_bytes_for(b"dir/a.tar.gz"), 2);
    assert_eq!(l.max_patch_bytes_for(b"src/Makefile"), 3);
    assert_eq!(l.max_patch_bytes_for(b".gitignore"), 4);
    assert_eq!(l.max_patch_bytes_for(b"a.gz/b"), 1);
    assert_eq!(l.max_patch_bytes_for(b"dir.gz/"), 2);
    assert_eq!(go_base(b""), b".");
    assert_eq!(go_base(b"///"), b"/");
    assert_eq!(go_ext(b"a.b.c"), b".c");
}

#[test]
fn upper_bounds_are_plain_min() {
    let l = Limits {
        enforce_limits: true,
        max_files: 1 << 40,
        max_lines: -5,
        max_bytes: 1 << 40,
        max_patch_bytes: 1 << 40,
        safe_max_files: 1 << 40,
        safe_max_lines: 1 << 40,
        safe_max_bytes: 1 << 40,
        max_patch_bytes_for_extension: [(b".x".to_vec(), 1 << 40)].into(),
        ..Default::default()
    }
    .normalised();
    assert_eq!(
        (l.max_files, l.max_lines, l.max_bytes, l.max_patch_bytes),
        (5000, -5, 25_600_000, 512_000)
    );
    assert_eq!(
        (l.safe_max_files, l.safe_max_lines, l.safe_max_bytes),
        (500, 25_000, 2_560_000)
    );
    assert_eq!(l.max_patch_bytes_for(b"a.x"), 1 << 40);
}
